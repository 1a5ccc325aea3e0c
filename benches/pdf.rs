//! Time to render and seal the printable record of a 20-step case (the leave case with 21 acts
//! of the evidence benchmark: the head returns it nine times), in each language: reading the
//! bundle (definitions loaded, events replayed), layout, font subset, PDF/A file, CMS seal with
//! a time-stamp from the demo TSA in-process. `cargo bench --bench pdf`.

#[path = "../tests/common/evidence_case.rs"]
mod evidence_case;

use std::time::Instant;

use carimbo::i18n::Lang;
use carimbo::signing::timestamp::{DEFAULT_TSA_POLICY, TsaSigner};

fn main() {
    let h = evidence_case::Harness::new();
    let id = evidence_case::twenty_acts_case(&h);
    let bundle = h.export(&id, "p022");
    let dir = h.service.directory();
    let service = evidence_case::seeds().join("pki/service");
    let key = carimbo::pdf::PdfSeal::from_pem(&std::fs::read(service.join("service.key.pem")).unwrap(), &std::fs::read(service.join("service.pem")).unwrap())
        .unwrap();
    let tsa_dir = evidence_case::seeds().join("pki/tsa");
    let tsa = TsaSigner::from_pem(&std::fs::read(tsa_dir.join("tsa.key.pem")).unwrap(), &std::fs::read(tsa_dir.join("tsa.pem")).unwrap(), DEFAULT_TSA_POLICY)
        .unwrap();
    let stamp = |b: &[u8]| tsa.stamp(b, 1, chrono::Utc::now()).map(Some);
    println!("{} events, {} signatures", bundle.events.len(), bundle.events.iter().filter(|e| e.body.get("signature").is_some()).count());
    for lang in Lang::ALL {
        let people = |p: &str| carimbo::http::pages::person_label(lang, &dir, p);
        let runs = 20;
        let mut size = 0;
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                let pdf = carimbo::pdf::print(std::hint::black_box(&bundle), lang, &people, &key, &stamp, chrono::Utc::now()).unwrap();
                size = pdf.len();
                start.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let bytes = bundle.to_bytes();
        let start = Instant::now();
        let _ = carimbo::pdf::render(&bundle, &bytes, lang, &people, chrono::Utc::now()).unwrap();
        let render_only = start.elapsed().as_secs_f64() * 1000.0;
        println!(
            "{lang}: render and seal p50 {:.1} ms, p90 {:.1} ms (render alone {render_only:.1} ms); {} KiB",
            times[runs / 2],
            times[runs * 9 / 10],
            size / 1024
        );
    }
}
