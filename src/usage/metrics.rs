//! The usage report as Prometheus metrics, in the OpenMetrics text format (which Prometheus
//! scrapes natively), written by the Prometheus project's own `prometheus-client` crate so
//! escaping, naming (`_total` on counters) and the `# EOF` terminator follow the specification.
//!
//! The figures are not instrumented live: the whole set is rebuilt from a report, once per
//! snapshot. Counters are per form, department and month of submission; since a case is always
//! counted in the month it was submitted, each series only grows while its cases move on (unless
//! the directory moves a person to another department, which moves their cases' counts too).
//!
//! OpenMetrics has a summary type but `prometheus-client` does not implement it, so the
//! completion-time percentiles are a gauge with a `quantile` label, read like a summary's.

use super::UsageReport;
use chrono::{DateTime, Utc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type Labels = Vec<(String, String)>;
type Counters = Family<Labels, Counter>;
type Gauges = Family<Labels, Gauge>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Every figure of the report (all rows, unfiltered) plus how the report was made.
pub fn exposition(report: &UsageReport, computed_at: DateTime<Utc>, took: Duration) -> String {
    let mut registry = Registry::default();
    let counter = |registry: &mut Registry, name: &str, help: &str| {
        let family = Counters::default();
        registry.register(name, help, family.clone());
        family
    };
    let submitted = counter(&mut registry, "carimbo_cases_submitted", "Cases submitted, by form, submitter's department and month of submission (Macau time)");
    let completed = counter(&mut registry, "carimbo_cases_completed", "Cases completed, counted in their month of submission");
    let rejected = counter(&mut registry, "carimbo_cases_rejected", "Cases rejected, counted in their month of submission");
    let returned = counter(&mut registry, "carimbo_cases_returned", "Return-for-correction decisions, counted in their case's month of submission");
    let withdrawn = counter(&mut registry, "carimbo_cases_withdrawn", "Cases withdrawn by their submitter, counted in their month of submission");
    let signatures = counter(&mut registry, "carimbo_signatures", "Signatures on submissions, resubmissions and acts, by the level verification established");
    let in_progress = Gauges::default();
    registry.register(
        "carimbo_cases_in_progress",
        "Cases without a final decision (open, or returned to the submitter), by month of submission",
        in_progress.clone(),
    );
    let past_deadline = Gauges::default();
    registry.register("carimbo_cases_past_deadline", "Open cases with a step waiting at or past its deadline, by form and department", past_deadline.clone());
    let ttc = Family::<Labels, FloatGauge>::default();
    registry.register(
        "carimbo_time_to_completion_seconds",
        "Time from first submission to completion, nearest-rank percentile (quantile 0.5 and 0.9) over the completed cases of a form, department and month",
        ttc.clone(),
    );

    let mut overdue: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    for (key, f) in report.rows() {
        let base = [("form", key.form.as_str()), ("department", key.department.as_str())];
        let month = key.month.to_string();
        let row = labels(&[base[0], base[1], ("month", &month)]);
        for (family, n) in [(&submitted, f.submitted), (&completed, f.completed), (&rejected, f.rejected), (&returned, f.returned), (&withdrawn, f.withdrawn)] {
            family.get_or_create(&row).inc_by(n);
        }
        in_progress.get_or_create(&row).set(f.in_progress as i64);
        *overdue.entry((key.form.as_str(), key.department.as_str())).or_default() += f.past_deadline as i64;
        for (level, n) in [("simple", f.signatures.simple), ("advanced", f.signatures.advanced), ("qualified", f.signatures.qualified)] {
            if n > 0 {
                signatures.get_or_create(&labels(&[base[0], base[1], ("month", &month), ("level", level)])).inc_by(n);
            }
        }
        for (quantile, value) in [("0.5", f.time_to_completion.p50_seconds), ("0.9", f.time_to_completion.p90_seconds)] {
            if let Some(v) = value {
                ttc.get_or_create(&labels(&[base[0], base[1], ("month", &month), ("quantile", quantile)])).set(v as f64);
            }
        }
    }
    for ((form, department), n) in overdue {
        past_deadline.get_or_create(&labels(&[("form", form), ("department", department)])).set(n);
    }

    let duration = FloatGauge::default();
    duration.set(took.as_secs_f64());
    registry.register("carimbo_usage_report_duration_seconds", "How long reading the store and computing the usage report took", duration);
    let at = FloatGauge::default();
    at.set(computed_at.timestamp_millis() as f64 / 1000.0);
    registry.register("carimbo_usage_report_timestamp_seconds", "When the usage report was computed (Unix time); it is recomputed at most once a minute", at);
    let cases = Gauge::<i64>::default();
    cases.set(report.cases_read as i64);
    registry.register("carimbo_usage_report_cases", "Cases read for the usage report", cases);
    let problems = Gauge::<i64>::default();
    problems.set(report.problems.len() as i64);
    registry.register("carimbo_usage_report_problems", "Cases the usage report could not count fully (see GET /api/v1/usage)", problems);

    let mut text = String::new();
    // Writing to a String cannot fail.
    encode(&mut text, &registry).expect("the exposition encodes into a String");
    text
}
