//! `/metrics`: every mapping's figures in the Prometheus text exposition format (version 0.0.4),
//! rendered by a pure function from the reports `status` shows.

use std::fmt::Write;

use crate::engine::allocations::StoredLimit;
use crate::engine::state::SyncState;

use super::report::MappingReport;

/// The content type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

struct Family<'a> {
    out: &'a mut String,
}

impl Family<'_> {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let _ = writeln!(self.out, "{name}{{{}}} {value}", labels.join(","));
    }

    /// Each of `figures` as a family with a sample per item of `items` that has a value,
    /// labelled `label` = `label_of(item)`.
    fn figures<T>(
        &mut self,
        figures: &[Figure<T>],
        items: &[T],
        label: &str,
        label_of: fn(&T) -> &str,
    ) {
        for (name, kind, help, value) in figures {
            self.head(name, kind, help);
            for item in items {
                if let Some(v) = value(item) {
                    self.sample(name, &[(label, label_of(item))], v);
                }
            }
        }
    }
}

/// A metric family of at most one number per item (a mapping, an org limit): name, type, help,
/// value (`None`: no sample for that item).
type Figure<T> = (
    &'static str,
    &'static str,
    &'static str,
    fn(&T) -> Option<f64>,
);

/// The per-mapping figures, in the order they are exposed.
const FIGURES: [Figure<MappingReport>; 10] = [
    (
        "forcesync_rows",
        "gauge",
        "Rows in the mapping's Postgres table.",
        |r| Some(r.rows as f64),
    ),
    (
        "forcesync_pending_writes",
        "gauge",
        "Application writes not yet sent to Salesforce.",
        |r| Some(r.pending_writes as f64),
    ),
    (
        "forcesync_failed_writes",
        "gauge",
        "Application writes Salesforce refused, not yet retried or ignored.",
        |r| Some(r.failed_writes as f64),
    ),
    (
        "forcesync_read_errors",
        "gauge",
        "Salesforce records the read side could not apply, still open.",
        |r| Some(r.read_errors as f64),
    ),
    (
        "forcesync_paused",
        "gauge",
        "1 when an operator paused the mapping.",
        |r| Some(if r.paused { 1.0 } else { 0.0 }),
    ),
    (
        "forcesync_change_lag_seconds",
        "gauge",
        "Seconds between the Salesforce commit of the last change applied and its arrival in Postgres.",
        |r| r.lag_seconds,
    ),
    (
        "forcesync_conflicts_total",
        "counter",
        "Conflicts recorded (a field changed on both sides).",
        |r| Some(r.conflicts as f64),
    ),
    (
        "forcesync_records_read_total",
        "counter",
        "Salesforce records read and applied.",
        |r| Some(r.records_read as f64),
    ),
    (
        "forcesync_records_written_total",
        "counter",
        "Records written to Salesforce.",
        |r| Some(r.records_written as f64),
    ),
    (
        "forcesync_write_errors_total",
        "counter",
        "Writes Salesforce refused.",
        |r| Some(r.write_errors as f64),
    ),
];

/// The exposition of `reports` (pure).
pub fn render(reports: &[MappingReport]) -> String {
    let mut out = String::new();
    let mut f = Family { out: &mut out };
    f.head(
        "forcesync_mapping_state",
        "gauge",
        "1 for the state the mapping is in, 0 for the others.",
    );
    for r in reports {
        let current = r.state.split_whitespace().next().unwrap_or("");
        for state in SyncState::ALL {
            let on = if state.as_str() == current { 1.0 } else { 0.0 };
            f.sample(
                "forcesync_mapping_state",
                &[("mapping", &r.mapping), ("state", state.as_str())],
                on,
            );
        }
    }
    f.figures(&FIGURES, reports, "mapping", |r| &r.mapping);
    f.head(
        "forcesync_api_calls_total",
        "counter",
        "Salesforce API calls made today (UTC) for the mapping, by kind.",
    );
    for r in reports {
        for (kind, n) in &r.api_calls {
            f.sample(
                "forcesync_api_calls_total",
                &[("mapping", &r.mapping), ("kind", kind)],
                *n as f64,
            );
        }
    }
    out
}

/// The figures of each org limit.
const LIMIT_FIGURES: [Figure<StoredLimit>; 2] = [
    (
        "forcesync_org_limit_max",
        "gauge",
        "The org's allocation as last read from /limits (DurableStreamingApiConcurrentClients, DailyDeliveredPlatformEvents).",
        |l| Some(l.max as f64),
    ),
    (
        "forcesync_org_limit_remaining",
        "gauge",
        "What is left of the org's allocation as last read from /limits.",
        |l| Some(l.remaining as f64),
    ),
];

/// The exposition of the org's watched allocations (pure): max and remaining of each.
pub fn render_limits(limits: &[StoredLimit]) -> String {
    let mut out = String::new();
    if limits.is_empty() {
        return out;
    }
    let mut f = Family { out: &mut out };
    f.figures(&LIMIT_FIGURES, limits, "limit", |l| &l.name);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::report::tests::sample;

    #[test]
    fn every_sample_line_is_a_declared_family_with_a_number() {
        let text = render(&[sample()]);
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let name = parts.next().unwrap();
                assert!(matches!(parts.next(), Some("gauge" | "counter")), "{line}");
                declared.insert(name.to_owned());
            } else if !line.starts_with('#') {
                let name = line.split('{').next().unwrap();
                assert!(declared.contains(name), "undeclared: {line}");
                let value = line.rsplit(' ').next().unwrap();
                value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
            }
        }
    }

    #[test]
    fn the_figures_of_a_mapping_are_exposed_with_its_label() {
        let text = render(&[sample()]);
        for line in [
            "forcesync_mapping_state{mapping=\"Account\",state=\"STREAMING\"} 1",
            "forcesync_mapping_state{mapping=\"Account\",state=\"PAUSED\"} 0",
            "forcesync_pending_writes{mapping=\"Account\"} 3",
            "forcesync_change_lag_seconds{mapping=\"Account\"} 0.038",
            "forcesync_api_calls_total{mapping=\"Account\",kind=\"Query\"} 5",
            "forcesync_conflicts_total{mapping=\"Account\"} 2",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
    }

    #[test]
    fn the_watched_allocations_are_exposed_by_name() {
        let limits = [crate::engine::allocations::StoredLimit {
            name: "DurableStreamingApiConcurrentClients".into(),
            max: 20,
            remaining: 19,
            read_at: chrono::Utc::now(),
        }];
        let text = render_limits(&limits);
        assert!(text.contains(
            "forcesync_org_limit_remaining{limit=\"DurableStreamingApiConcurrentClients\"} 19"
        ));
        assert!(text.contains("# TYPE forcesync_org_limit_max gauge"));
        assert_eq!(render_limits(&[]), "");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
