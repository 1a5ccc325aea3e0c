//! Durable acts per second on each store, in one run: `cargo bench --bench store_backends`.
//!
//! The workload is `benches/store.rs`'s: each client does submit → approve cycles (create a case
//! with one event, then append one approve event, both with idempotency keys, inbox and parties),
//! for ~3 s, at 1, 8 and 64 clients (`CARIMBO_BENCH_CLIENTS=1,8,64`). Every append returns only
//! once durable: sled by its group commit (flush + fdatasync), PostgreSQL by a synchronous commit
//! (WAL flushed; PostgreSQL shares one WAL flush between concurrent commits).
//!
//! PostgreSQL runs when `CARIMBO_TEST_PG` names a database (as for the tests; a fresh schema is
//! used and dropped) and is skipped otherwise. Printed per store and client count: acts/s, and
//! the durable syncs behind them (sled: its flushes; PostgreSQL: WAL syncs from `pg_stat_wal`,
//! server-wide, so other load on the server counts too).

use carimbo::store::{PgOptions, PgStore, SledStore, Store};
use chrono::Utc;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[path = "common/workload.rs"]
mod workload;

fn main() {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(root).unwrap();
    let counts: Vec<usize> =
        std::env::var("CARIMBO_BENCH_CLIENTS").ok().map(|v| v.split(',').filter_map(|c| c.trim().parse().ok()).collect()).unwrap_or_else(|| vec![1, 8, 64]);
    let secs: u64 = std::env::var("CARIMBO_BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3);
    let pg = std::env::var("CARIMBO_TEST_PG").ok().filter(|c| !c.trim().is_empty());

    println!("durable acts/s (submit → approve cycles, {secs} s per row)");
    println!("{:<12} {:>8} {:>10} {:>12} {:>14}", "store", "clients", "acts/s", "syncs/s", "acts per sync");
    let mut table = Vec::new();
    for &clients in &counts {
        let dir = tempfile::tempdir_in(root).unwrap();
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let before = store.durability_stats().flushes;
        let (acts, elapsed) = run(store.clone(), clients, Duration::from_secs(secs));
        let syncs = store.durability_stats().flushes - before;
        table.push(("sled", clients, print_row("sled", clients, acts, elapsed, Some(syncs))));
    }
    match &pg {
        None => println!("{:<12} SKIPPED: CARIMBO_TEST_PG is not set (see docs/storage.md)", "postgresql"),
        Some(conn) => {
            let schema = format!("bench_{}_{}", std::process::id(), Utc::now().timestamp());
            let max = counts.iter().copied().max().unwrap_or(1) as u32;
            let store = Arc::new(PgStore::open_with(conn, PgOptions { schema: Some(schema.clone()), pool_size: max, ..PgOptions::default() }).unwrap());
            let mut admin = postgres::Client::connect(conn, postgres::NoTls).unwrap();
            let wal_syncs = |c: &mut postgres::Client| c.query_one("SELECT wal_sync FROM pg_stat_wal", &[]).ok().map(|r| r.get::<_, i64>(0) as u64);
            for &clients in &counts {
                let before = wal_syncs(&mut admin);
                let (acts, elapsed) = run(store.clone(), clients, Duration::from_secs(secs));
                let syncs = before.zip(wal_syncs(&mut admin)).map(|(b, a)| a - b);
                table.push(("postgresql", clients, print_row("postgresql", clients, acts, elapsed, syncs)));
            }
            drop(store);
            let _ = admin.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"));
        }
    }
    if pg.is_some() {
        println!("PostgreSQL beside sled:");
        for &clients in &counts {
            let get = |name| table.iter().find(|(s, c, _)| *s == name && *c == clients).map(|r| r.2);
            if let (Some(s), Some(p)) = (get("sled"), get("postgresql")) {
                println!("  {clients:>3} clients: sled {s:.0} acts/s, PostgreSQL {p:.0} acts/s ({:.2}×)", p / s);
            }
        }
    }
}

fn print_row(store: &str, clients: usize, acts: u64, elapsed: Duration, syncs: Option<u64>) -> f64 {
    let secs = elapsed.as_secs_f64();
    let rate = acts as f64 / secs;
    let (per_s, per_sync) = match syncs {
        Some(n) => (format!("{:.0}", n as f64 / secs), format!("{:.1}", acts as f64 / n.max(1) as f64)),
        None => ("?".into(), "?".into()),
    };
    println!("{store:<12} {clients:>8} {rate:>10.0} {per_s:>12} {per_sync:>14}");
    rate
}

/// `clients` threads doing submit → approve until the budget is spent: (acts, time taken).
fn run(store: Arc<dyn Store>, clients: usize, budget: Duration) -> (u64, Duration) {
    workload::run_cycles(store, clients, budget, &format!("r{}-", Utc::now().timestamp_micros()))
}
