# Sourced by .ci/run: makes a PostgreSQL server listen on 127.0.0.1 for the store tests and exports
# CARIMBO_TEST_PG. Idempotent: installs the Debian packages only when PostgreSQL is missing, creates
# its own cluster (not Debian's `main`) in a directory of its own once, and starts it only when it is
# not already answering. fsync and synchronous_commit stay on: the tests and the benchmark measure
# durable commits.

CARIMBO_PG_PORT="${CARIMBO_PG_PORT:-55432}"
CARIMBO_PG_DIR="${CARIMBO_PG_DIR:-/var/tmp/carimbo-ci-pg}"

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "installing PostgreSQL from Debian's packages"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"

# initdb and the server refuse to run as root: run them as the `postgres` user the package made.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if ! "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$CARIMBO_PG_PORT"; then
  if [ ! -f "$CARIMBO_PG_DIR/PG_VERSION" ]; then
    mkdir -p "$CARIMBO_PG_DIR"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$CARIMBO_PG_DIR"
    as_pg "$PG_BIN/initdb" -D "$CARIMBO_PG_DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  fi
  # A server killed a moment ago may still hold its lock file or shared memory: try again.
  for attempt in 1 2 3 4 5; do
    if as_pg "$PG_BIN/pg_ctl" -D "$CARIMBO_PG_DIR" -l "$CARIMBO_PG_DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $CARIMBO_PG_PORT -c unix_socket_directories=$CARIMBO_PG_DIR -c max_connections=300" start >/dev/null; then
      break
    fi
    if [ "$attempt" = 5 ]; then
      tail -n 20 "$CARIMBO_PG_DIR/server.log" >&2
      echo "PostgreSQL did not start" >&2
      false
    fi
    sleep 2
  done
fi

pg_admin() {
  as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$CARIMBO_PG_DIR" -p "$CARIMBO_PG_PORT" -U postgres -d postgres "$@"
}
if [ "$(pg_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'carimbo'")" != 1 ]; then
  pg_admin -c "CREATE ROLE carimbo LOGIN PASSWORD 'carimbo'"
fi
if [ "$(pg_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'carimbo_test'")" != 1 ]; then
  pg_admin -c "CREATE DATABASE carimbo_test OWNER carimbo"
fi

export CARIMBO_TEST_PG="host=127.0.0.1 port=$CARIMBO_PG_PORT user=carimbo password=carimbo dbname=carimbo_test"
# For the database crash test (tests/it/crash_pg.rs): crash this cluster (an immediate stop: no
# checkpoint, WAL recovery at the next start) and start it again.
as_pg_prefix=""
[ "$(id -u)" = 0 ] && as_pg_prefix="runuser -u postgres -- "
export CARIMBO_TEST_PG_CRASH="${as_pg_prefix}$PG_BIN/pg_ctl -D $CARIMBO_PG_DIR -m immediate stop"
export CARIMBO_TEST_PG_START="${as_pg_prefix}$PG_BIN/pg_ctl -D $CARIMBO_PG_DIR -l $CARIMBO_PG_DIR/server.log -w -t 60 -o '-c listen_addresses=127.0.0.1 -p $CARIMBO_PG_PORT -c unix_socket_directories=$CARIMBO_PG_DIR -c max_connections=300' start"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$CARIMBO_PG_PORT; CARIMBO_TEST_PG=\"$CARIMBO_TEST_PG\""
