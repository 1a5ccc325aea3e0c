//! Server benchmark, run with `cargo bench --bench server` (release build).
//!
//! The real server (`carimbo::http::serve_on`) on the sled store in a temporary directory, and
//! 64 concurrent clients on loopback, each a thread with its own keep-alive connection, doing
//! signed submit → approve cycles for ~20 s:
//!
//! 1. the staff member asks for the signing payload of a one-day leave request,
//! 2. signs it with their demo key (`seeds/pki/people/<id>.key.pem`) and submits it,
//! 3. their supervisor asks for the payload of approving it (a fresh one: it binds the case's
//!    previous event hash, which the submission just changed),
//! 4. signs it and approves.
//!
//! Printed: cycles/s, durable acts/s (a submission and an approval per cycle), requests/s, and
//! p50 / p99 / max latency of each call type, plus anything that was not the expected status.
//! Signing happens in the client threads on the same machine and is timed apart.
//!
//! Clients are spread over the 27 staff accounts (p005–p014, p021–p027, p031–p040); their
//! supervisors (p003, p004, p016, p017, p029, p030) approve. Six approvers make far more calls a
//! second than the default per-account API limit (200/s), so the bench's server allows 100,000/s
//! (`serve --api-rate-per-account`; the limit is still checked on every call). Sessions are
//! opened in-process rather than through `POST /api/v1/session`: 33 sign-ins from one address
//! would hit the login limit (30 a minute),
//! and a sign-in's cost is argon2, not what this measures.
//!
//! After the run it prints the process's CPU time and the client threads' share of it (the load
//! generator runs on the same cores), the resident memory, and the store alone doing the same
//! appends (a submission and an approval per case, 64 threads, a fresh sled store) with the
//! ratio server ÷ store.
//!
//! `CARIMBO_BENCH_PG=postgres://…` runs it on PostgreSQL (in a new schema per run, the store-only
//! figure in another), e.g. with the database `source .ci/postgres.sh` starts.
//!
//! `CARIMBO_BENCH_SECS` (default 20) and `CARIMBO_BENCH_CLIENTS` (default 64) change the run;
//! `CARIMBO_BENCH_TSA=off` runs it without signature time-stamps (by default the demo TSA
//! stamps every act in-process, as `carimbo serve` does with the seeds).

#[path = "common/workload.rs"]
mod workload;

use carimbo::http::{AppState, Paths, api::session_lifetime};
use carimbo::signing::Signer;
use carimbo::store::{SledStore, Store};
use chrono::{Datelike, Duration as Days, Utc, Weekday};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

const LEAVE: &str = "absence-and-annual-leave";
const CALLS: [&str; 4] = ["payload (submit)", "submit", "payload (approve)", "approve"];

fn staff() -> Vec<String> {
    let mut ids: Vec<String> = (5..=14).chain(21..=27).chain(31..=40).map(|n| format!("p{n:03}")).collect();
    ids.sort();
    ids
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// One signed-in person with their demo key.
#[derive(Clone)]
struct Person {
    token: String,
    signer: Arc<Signer>,
}

struct Client {
    agent: ureq::Agent,
    base: String,
}

impl Client {
    fn post(&self, who: &Person, path: &str, body: &Value) -> Result<(u16, Value), String> {
        let mut r = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", who.token))
            .send_json(body)
            .map_err(|e| format!("{path}: {e}"))?;
        let status = r.status().as_u16();
        let body = r.body_mut().read_json::<Value>().unwrap_or(Value::Null);
        Ok((status, body))
    }

    /// Fetches the payload for `what` and signs it; returns the `signed` object.
    fn signed(&self, who: &Person, what: &Value, t: &mut Timings, call: usize) -> Result<Value, String> {
        let started = Instant::now();
        let (status, body) = self.post(who, "/api/v1/signing-payload", what)?;
        t.record(call, started.elapsed(), status, 200);
        if status != 200 {
            return Err(format!("payload: {status} {body}"));
        }
        let started = Instant::now();
        let canonical = body["canonical"].as_str().ok_or("no canonical payload")?;
        let jws = who.signer.sign(canonical.as_bytes(), Utc::now()).map_err(|e| e.to_string())?;
        t.signing.push(started.elapsed());
        Ok(json!({"payload": body["payload"], "signature": serde_json::from_str::<Value>(&jws.to_json()).map_err(|e| e.to_string())?}))
    }
}

#[derive(Default)]
struct Timings {
    calls: [Vec<Duration>; 4],
    signing: Vec<Duration>,
    cycles: Vec<Duration>,
    /// "call → status" for answers that were not the expected status.
    unexpected: BTreeMap<String, usize>,
    /// CPU seconds the client threads used (the load generator, signing included).
    client_cpu: f64,
}

impl Timings {
    fn record(&mut self, call: usize, d: Duration, status: u16, expected: u16) {
        if status == expected {
            self.calls[call].push(d);
        } else {
            *self.unexpected.entry(format!("{} → {status}", CALLS[call])).or_default() += 1;
        }
    }

    fn merge(&mut self, other: Timings) {
        for (a, b) in self.calls.iter_mut().zip(other.calls) {
            a.extend(b);
        }
        self.signing.extend(other.signing);
        self.cycles.extend(other.cycles);
        self.client_cpu += other.client_cpu;
        for (k, v) in other.unexpected {
            *self.unexpected.entry(k).or_default() += v;
        }
    }
}

fn percentiles(mut v: Vec<Duration>) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!("p50 {:7.2} ms   p99 {:7.2} ms   max {:7.2} ms   (n = {})", ms(at(0.50)), ms(at(0.99)), ms(*v.last().unwrap()), v.len())
}

/// A Monday at least two weeks ahead (holidays do not matter for a one-day request: a holiday
/// Monday would be refused, so the next week is taken then).
fn leave_day(holidays: &[String]) -> String {
    let mut day = Utc::now().date_naive() + Days::days(14);
    while day.weekday() != Weekday::Mon || holidays.contains(&day.to_string()) {
        day += Days::days(1);
    }
    day.to_string()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = env_number("CARIMBO_BENCH_SECS", 20);
    let clients = env_number("CARIMBO_BENCH_CLIENTS", 64) as usize;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root.join("target/tmp")).expect("target/tmp");
    let data_dir = tempfile::tempdir_in(root.join("target/tmp")).expect("a data directory");
    // `CARIMBO_BENCH_PG=postgres://…` runs the same bench on PostgreSQL, in a schema of its own.
    let pg = std::env::var("CARIMBO_BENCH_PG").ok().filter(|v| !v.is_empty());
    let schema = format!("bench_{}", std::process::id());
    let open_store = |schema: &str| -> Arc<dyn Store> {
        match &pg {
            Some(conn) => Arc::new(carimbo::store::PgStore::open_in_schema(conn, schema).expect("the PostgreSQL store opens")),
            None => Arc::new(SledStore::open(data_dir.path().join(format!("store-{schema}"))).expect("a sled store")),
        }
    };
    let backend = if pg.is_some() { "PostgreSQL" } else { "sled" };
    let mut state = AppState::with_store(
        {
            // The seeded people sign with key files: their qualified steps are met under the demo rule.
            let mut paths = Paths::from_root(&root, data_dir.path());
            paths.device_rule = carimbo::signing::DeviceRule::RelaxedForDemo;
            // Six supervisors approve for 27 staff: at the target rate each makes ~500 API calls
            // a second, over the default per-account limit of 200 (still checked on every call).
            paths.api_rate_per_account = 100_000;
            paths
        },
        open_store(&schema),
    )
    .expect("the server state opens");
    // `CARIMBO_BENCH_TSA=off` measures the server without signature time-stamps (JAdES B-B).
    if std::env::var("CARIMBO_BENCH_TSA").is_ok_and(|v| v == "off") {
        state.stamping = carimbo::tsa::TimeStamping::Off;
    }
    println!("{}", state.stamping.describe());
    let state = Arc::new(state);

    // The server, on its own runtime (as `carimbo serve` runs it).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = state.clone();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            carimbo::http::serve_on(served, listener, async {
                let _ = stopped.await;
            })
            .await
        })
    });

    let directory = state.cases.directory();
    let person = |id: &str| {
        let key = std::fs::read(root.join(format!("seeds/pki/people/{id}.key.pem"))).expect("demo key");
        let chain = std::fs::read(root.join(format!("seeds/pki/people/{id}.pem"))).expect("demo certificate");
        let (token, _) = state.sessions.open(id, Utc::now(), session_lifetime());
        Person { token, signer: Arc::new(Signer::from_pem(&key, &chain).expect("key and certificate match")) }
    };
    let mut people: BTreeMap<String, Person> = BTreeMap::new();
    let pairs: Vec<(Person, Person)> = staff()
        .iter()
        .map(|s| {
            let sup = directory.person(s).and_then(|p| p.supervisor.clone()).expect("every staff member has a supervisor");
            let staff = people.entry(s.clone()).or_insert_with(|| person(s)).clone();
            let approver = people.entry(sup.clone()).or_insert_with(|| person(&sup)).clone();
            (staff, approver)
        })
        .collect();
    let calendar: Value =
        serde_json::from_slice(&std::fs::read(root.join("forms/reference/macau-public-holidays.json")).expect("calendar")).expect("calendar JSON");
    let holidays: Vec<String> = calendar["holidays"].as_array().into_iter().flatten().filter_map(|h| h["date"].as_str().map(str::to_string)).collect();
    let day = leave_day(&holidays);
    let data = json!({"leave_type": "annual", "start_date": day, "end_date": day});

    println!(
        "server benchmark on {backend}: {clients} clients, {secs} s, {} staff accounts and {} approvers, sled store in {}",
        pairs.len(),
        people.len() - pairs.len(),
        data_dir.path().display()
    );
    let ready = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|i| {
            let (staff, approver) = pairs[i % pairs.len()].clone();
            let (base, data, ready) = (base.clone(), data.clone(), ready.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
                let client = Client { agent, base };
                let mut n = 0usize;
                let mut cycle = |t: &mut Timings| -> Result<(), String> {
                    n += 1;
                    let started = Instant::now();
                    let key = format!("bench-{i}-{n}");
                    let signed = client.signed(&staff, &json!({"kind": "submit", "form": LEAVE, "data": data, "idempotency_key": key}), t, 0)?;
                    let at = Instant::now();
                    let (status, body) =
                        client.post(&staff, "/api/v1/cases", &json!({"form": LEAVE, "data": data, "idempotency_key": key, "signed": signed}))?;
                    t.record(1, at.elapsed(), status, 201);
                    let case = body["case"]["id"].as_str().ok_or_else(|| format!("submit: {status} {body}"))?.to_string();
                    let signed = client.signed(&approver, &json!({"kind": "act", "case": case, "step": "supervisor", "action": "approve"}), t, 2)?;
                    let at = Instant::now();
                    let (status, body) =
                        client.post(&approver, &format!("/api/v1/cases/{case}/acts"), &json!({"step": "supervisor", "action": "approve", "signed": signed}))?;
                    t.record(3, at.elapsed(), status, 200);
                    if status != 200 {
                        return Err(format!("approve: {status} {body}"));
                    }
                    t.cycles.push(started.elapsed());
                    Ok(())
                };
                // One warm-up cycle each (connections open, certificate chains enter the
                // verifier's cache), not counted; then everyone starts together.
                let warmed = cycle(&mut Timings::default());
                ready.wait();
                if let Err(e) = warmed {
                    eprintln!("client {i} warm-up: {e}");
                }
                let end = Instant::now() + Duration::from_secs(secs);
                let cpu_before = thread_cpu_seconds();
                let (mut t, mut errors) = (Timings::default(), 0);
                while Instant::now() < end {
                    if let Err(e) = cycle(&mut t) {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("client {i}: {e}");
                        }
                        // A refused call (e.g. 429 from the per-account limit) is not retried in
                        // a tight loop.
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
                t.client_cpu = thread_cpu_seconds() - cpu_before;
                t
            })
        })
        .collect();
    ready.wait();
    let started = Instant::now();
    let process_cpu_before = process_cpu_seconds();
    let mut all = Timings::default();
    for t in threads {
        all.merge(t.join().expect("a client thread"));
    }
    // Cycles still running at the deadline finish and count, so the rate is over the real time.
    let elapsed = started.elapsed().as_secs_f64();
    let process_cpu = process_cpu_seconds() - process_cpu_before;
    let rss_after = resident_mib();
    let _ = stop.send(());
    let _ = server.join();
    report(&all, elapsed);
    println!(
        "CPU               {process_cpu:8.1} s of the process in {elapsed:.1} s on {} cores; the load generator (client threads, signing included) {:.1} s = {:.0}%",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        all.client_cpu,
        100.0 * all.client_cpu / process_cpu.max(f64::EPSILON)
    );
    println!("resident memory   {rss_after:8.1} MiB after the run ({} cases stored)", all.cycles.len() + clients);
    let server_acts = 2.0 * all.cycles.len() as f64 / elapsed;
    let store_acts = store_only(open_store(&format!("{schema}_alone")), clients, secs.min(10));
    println!("store alone       {store_acts:8.1} durable acts/s (the same two appends per cycle, {clients} threads, {backend}, no HTTP)");
    println!("server ÷ store    {:8.2}", server_acts / store_acts.max(f64::EPSILON));
}

/// The store alone doing the bench's acts (a submission and an approval per case, the same
/// shape of append), on a fresh store of the same kind, as `cargo bench --bench store -- acts` does.
fn store_only(store: Arc<dyn Store>, clients: usize, secs: u64) -> f64 {
    let (acts, took) = workload::run_cycles(store, clients, Duration::from_secs(secs), "");
    acts as f64 / took.as_secs_f64()
}

/// CPU seconds (user + system) of the calling thread, from /proc (Linux).
fn thread_cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/thread-self/stat")
}

fn process_cpu_seconds() -> f64 {
    proc_cpu_seconds("/proc/self/stat")
}

/// Fields 14 and 15 of a stat file (utime, stime), in clock ticks of 1/100 s as Linux reports them.
fn proc_cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else { return 0.0 };
    // The command name (field 2) may hold spaces; the fields after it start past its ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// The process's resident set size in MiB (VmRSS of /proc/self/status).
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}

fn report(all: &Timings, elapsed: f64) {
    let cycles = all.cycles.len() as f64;
    let requests: usize = all.calls.iter().map(Vec::len).sum::<usize>() + all.unexpected.values().sum::<usize>();
    println!("cycles/s          {:8.1}   ({} signed submit → approve cycles in {:.1} s)", cycles / elapsed, all.cycles.len(), elapsed);
    println!("durable acts/s    {:8.1}   (a submission and an approval per cycle)", 2.0 * cycles / elapsed);
    println!("requests/s        {:8.1}", requests as f64 / elapsed);
    for (name, v) in CALLS.iter().zip(&all.calls) {
        println!("{name:18}{}", percentiles(v.clone()));
    }
    println!("{:18}{}", "whole cycle", percentiles(all.cycles.clone()));
    println!("{:18}{}", "signing (client)", percentiles(all.signing.clone()));
    if all.unexpected.is_empty() {
        println!("every answer had the expected status");
    } else {
        for (k, v) in &all.unexpected {
            println!("unexpected: {k} × {v}");
        }
    }
}
