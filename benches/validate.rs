//! Validations per second per core, for the valid examples of every shipped form.
//!
//! Run with `cargo bench --bench validate`. One thread, so the figure is per core. The target
//! (issue 3) is at least 100,000 validations/s for the leave form: compiled schemas and rules
//! are built once at load and reused for every submission.

use carimbo::catalog::Catalog;
use carimbo::forms::ValidationContext;
use carimbo::i18n::Lang;
use serde_json::Value;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn merge(base: &Value, over: Option<&Value>) -> Value {
    let mut out = base.clone();
    if let (Some(Value::Object(o)), Value::Object(b)) = (over, &mut out) {
        for (k, v) in o {
            match (b.get_mut(k), v) {
                (Some(Value::Object(bm)), Value::Object(om)) => bm.extend(om.clone()),
                _ => {
                    b.insert(k.clone(), v.clone());
                }
            }
        }
    }
    out
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let load_start = Instant::now();
    let report = Catalog::load_paths(&[root.join("forms"), root.join("workflows")]);
    assert!(report.problems.is_empty(), "the shipped definitions must load cleanly");
    println!("loaded and compiled {} forms in {:.1} ms", report.catalog.forms.len(), load_start.elapsed().as_secs_f64() * 1e3);
    println!("{:<40} {:>8} {:>14} {:>10}", "form", "examples", "validations/s", "µs each");
    let mut total = 0.0;
    for (id, form) in &report.catalog.forms {
        let def: Value = serde_json::from_slice(&std::fs::read(root.join(format!("forms/{id}.json"))).unwrap()).unwrap();
        let ex = &def["examples"];
        let cases: Vec<(Value, ValidationContext)> = ex["valid"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["data"].clone(), ValidationContext::from_value(&merge(&ex["context"], e.get("context"))).unwrap()))
            .collect();
        // Warm up, then run for a fixed time.
        for (d, c) in &cases {
            form.validate(d, c, Lang::En).expect("valid example");
        }
        let budget = Duration::from_millis(400);
        let start = Instant::now();
        let mut n: u64 = 0;
        while start.elapsed() < budget {
            for _ in 0..64 {
                for (d, c) in &cases {
                    black_box(form.validate(black_box(d), c, Lang::En).is_ok());
                    n += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let rate = n as f64 / secs;
        total += rate;
        println!("{:<40} {:>8} {:>14.0} {:>10.2}", id, cases.len(), rate, 1e6 / rate);
    }
    println!("mean over {} forms: {:.0} validations/s per core", report.catalog.forms.len(), total / report.catalog.forms.len() as f64);
}
