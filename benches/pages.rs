//! The pages of daily work at scale, run with `cargo bench --bench pages` (release build).
//!
//! The real server (`carimbo::http::serve_on`) on a sled store holding N cases, N = 10,000,
//! 100,000 and 1,000,000 (`CARIMBO_BENCH_MAX_CASES` caps it). 200 of them are real leave
//! requests filed by p005 and waiting for their supervisor p003, signed with the demo keys and
//! submitted through `CaseService` as the server records them; the rest are other people's cases,
//! written in bulk without a flush per case (the shape `cargo bench --bench store -- inbox` uses).
//! At each N, over HTTP with a session cookie as a browser sends it:
//!
//! - `GET /inbox` as p003 (200 open items, each row with its form's summary),
//! - `GET /cases` as p005 ("My cases", 200 cases with where each one is),
//!
//! each read 200 times after one warm-up read; printed: p50, p99 and max, the page's size, and
//! the server's resident memory. Target (issue 15): p99 < 10 ms and flat from 10k to 1M.

#[path = "../tests/common/evidence_case.rs"]
mod evidence_case;
#[path = "common/workload.rs"]
#[allow(dead_code)]
mod workload;

use carimbo::http::{AppState, Paths, api::session_lifetime};
use carimbo::store::SledStore;
use chrono::{Duration as Minutes, TimeZone, Utc};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REAL_CASES: usize = 200;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let max: u64 = std::env::var("CARIMBO_BENCH_MAX_CASES").ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(1_000_000);
    let sizes: Vec<u64> = [10_000u64, 100_000, 1_000_000].into_iter().filter(|n| *n <= max).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(root.join("target/tmp")).expect("target/tmp");
    let data_dir = tempfile::tempdir_in(root.join("target/tmp")).expect("a data directory");
    let sled = Arc::new(SledStore::open(data_dir.path().join("store")).expect("a sled store"));
    let state = Arc::new(
        AppState::with_store(
            {
                // The seeded people sign with key files: their qualified steps are met under the demo rule.
                let mut paths = Paths::from_root(&root, data_dir.path());
                paths.device_rule = carimbo::signing::DeviceRule::RelaxedForDemo;
                paths
            },
            sled.clone(),
        )
        .expect("the server state opens"),
    );

    let started = Instant::now();
    let harness = evidence_case::Harness::with_service(state.cases.clone(), None);
    let mut ids = Vec::with_capacity(REAL_CASES);
    for i in 0..REAL_CASES {
        ids.push(harness.submit("p005", "absence-and-annual-leave", &evidence_case::leave(&format!("pages bench {i}")), &format!("pages-{i}")));
    }
    println!("{REAL_CASES} signed leave requests of p005 waiting for p003, filed in {:.1} s", started.elapsed().as_secs_f64());

    let (base, stop, server) = serve(state.clone());
    let cookie = |who: &str| format!("carimbo_session={}", state.sessions.open(who, Utc::now(), session_lifetime()).0);
    let pages = [("inbox of p003", "/inbox", cookie("p003"), "p003"), ("my cases of p005", "/cases", cookie("p005"), "p005")];
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();

    println!("{:>10}  {:<18} {:>9} {:>9} {:>9} {:>9} {:>10}", "cases", "page", "p50", "p99", "max", "size", "resident");
    let mut stored = REAL_CASES as u64;
    for n in sizes {
        let load = Instant::now();
        fill(&sled, stored, n);
        let rate = (n - stored) as f64 / load.elapsed().as_secs_f64();
        stored = n;
        for (name, path, cookie, who) in &pages {
            let (times, size) = read_page(&agent, &format!("{base}{path}"), cookie, who, &ids);
            let ms = |q: f64| times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1].as_secs_f64() * 1e3;
            println!("{n:>10}  {name:<18} {:>6.2} ms {:>6.2} ms {:>6.2} ms {:>6} kB {:>6.0} MiB", ms(0.5), ms(0.99), ms(1.0), size / 1024, resident_mib());
        }
        println!("{:>10}  (other people's cases written at {rate:.0}/s)", "");
    }
    let _ = stop.send(());
    let _ = server.join();
}

/// The server on its own runtime, as `carimbo serve` runs it; its address, its stop and its thread.
fn serve(state: Arc<AppState>) -> (String, tokio::sync::oneshot::Sender<()>, std::thread::JoinHandle<std::io::Result<()>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            carimbo::http::serve_on(state, listener, async {
                let _ = stopped.await;
            })
            .await
        })
    });
    (base, stop, server)
}

/// Other people's cases up to `n` in all: each a submission waiting for one of 5,000 approvers,
/// from one of 20,000 staff, none of them p003 or p005.
fn fill(store: &Arc<SledStore>, from: u64, n: u64) {
    let base = Utc.with_ymd_and_hms(2024, 1, 1, 8, 0, 0).unwrap();
    let threads = 2u64;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let mut i = from + t;
                while i < n {
                    let at = base + Minutes::minutes(i as i64);
                    let case = format!("bulk-{i:08}");
                    store.append_unsynced(workload::submission(&case, &format!("staff-{}", i % 20_000), &format!("approver-{}", i % 5_000), at)).unwrap();
                    i += threads;
                }
            })
        })
        .collect();
    workers.into_iter().for_each(|w| w.join().expect("a loading thread"));
    store.sync().expect("the store flushes");
}

/// 200 timed reads of one page after a warm-up read that must list every case of `ids`, sorted;
/// and the page's size in bytes.
fn read_page(agent: &ureq::Agent, url: &str, cookie: &str, who: &str, ids: &[String]) -> (Vec<Duration>, usize) {
    let get = || {
        let t = Instant::now();
        let mut r = agent.get(url).header("cookie", cookie).call().expect("the page answers");
        let status = r.status().as_u16();
        let body = r.body_mut().read_to_string().expect("a page");
        (t.elapsed(), status, body)
    };
    let (_, status, body) = get();
    assert_eq!(status, 200, "{url} as {who}: {body}");
    let missing = ids.iter().filter(|id| !body.contains(id.as_str())).count();
    assert_eq!(missing, 0, "{url} as {who} lists every one of the {} real cases", ids.len());
    let mut times: Vec<Duration> = (0..200).map(|_| get().0).collect();
    times.sort();
    (times, body.len())
}

/// The process's resident set size in MiB (VmRSS of /proc/self/status).
fn resident_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok()).map_or(0.0, |kb| kb / 1024.0)
}
