//! Offline verification time of evidence bundles, built on a temporary sled store with real
//! signatures, exported, then verified again and again: a leave request returned three times
//! and resubmitted (29 events, 13 signatures of which 2 are service seals), and one with 21 acts
//! on its steps (the head returns it nine times), and that one again as B-LTA (every act with
//! a signature time-stamp of the demo TSA, the bundle with an archive time-stamp).
//! `cargo bench --bench evidence`.

#[path = "../tests/common/evidence_case.rs"]
mod evidence_case;

use std::time::Instant;

fn main() {
    let h = evidence_case::Harness::new();
    let long = evidence_case::long_case(&h);
    let twenty = evidence_case::twenty_acts_case(&h);
    for (what, id) in [("3 returns", long), ("21 acts", twenty)] {
        measure(what, &h.export(&id, "p022").to_bytes());
    }
    let stamped = evidence_case::Harness::new().with_demo_tsa();
    let id = evidence_case::twenty_acts_case(&stamped);
    let bundle = stamped.export(&id, "p022");
    let vd = carimbo::evidence::ltv::ValidationData::default();
    let at = carimbo::pki::history::parse_utc_z(&bundle.exported_at).unwrap();
    let token = stamped.stamp(&carimbo::evidence::ltv::next_stamp_input(&bundle, &vd), at);
    measure("21 acts, B-LTA: every act time-stamped, one archive time-stamp", &carimbo::evidence::ltv::with_archive_stamp(bundle, vd, &token).to_bytes());
}

fn measure(what: &str, bundle: &[u8]) {
    let bundle = bundle.to_vec();
    let first = carimbo::evidence::verify(&bundle, chrono::Utc::now());
    assert!(first.passed, "{}", first.to_text());
    let runs = 30;
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let report = carimbo::evidence::verify(std::hint::black_box(&bundle), chrono::Utc::now());
            assert!(report.passed);
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // The part spent reading the definitions (schema compilation, rules, the form's examples).
    let parsed: carimbo::evidence::EvidenceBundle = serde_json::from_slice(&bundle).unwrap();
    let d = &parsed.definitions;
    let mut sources: Vec<carimbo::catalog::SourceFile> =
        d.reference.iter().map(|r| carimbo::catalog::SourceFile::new(r.name.clone(), r.text.clone().into_bytes())).collect();
    sources.push(carimbo::catalog::SourceFile::new(d.form.name.clone(), d.form.text.clone().into_bytes()));
    sources.push(carimbo::catalog::SourceFile::new(d.workflow.name.clone(), d.workflow.text.clone().into_bytes()));
    let mut loads: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            assert!(carimbo::catalog::Catalog::load_sources(std::hint::black_box(&sources)).problems.is_empty());
            start.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    loads.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = times.iter().sum::<f64>() / runs as f64;
    println!(
        "evidence bundle verification ({what}): {} events, {} signatures, {} bytes: median {:.1} ms, min {:.1} ms, max {:.1} ms, mean {:.1} ms over {runs} runs (each run builds its own verifier: no chain cache carried over)",
        first.events_checked,
        first.signatures.len(),
        bundle.len(),
        times[runs / 2],
        times[0],
        times[runs - 1],
        mean
    );
    println!("  of which loading the bundled definitions as carimbo check does: median {:.1} ms", loads[runs / 2]);
}
