//! Tests of the status page's rendering: what each page shows for given data.

use super::*;
use crate::cli::admin::{Conflict, ReadError};
use crate::cli::page::model::{DetailQuery, Failed, Sent};
use crate::engine::activity::Change;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-01T00:01:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn row(name: &str) -> MappingRow {
    let mut report = crate::cli::report::tests::sample();
    report.mapping = name.to_owned();
    MappingRow {
        report,
        holder: "this instance".into(),
        transport: "streaming (Change Data Capture)".into(),
        budget: 1000,
        changes_in: 12,
        changes_out: 3,
        lag_in: Some(Lag {
            p50_ms: 38,
            p99_ms: 1_250,
            samples: 12,
        }),
        lag_out: None,
        progress: None,
    }
}

fn detail(name: &str) -> Detail {
    Detail {
            now: now(),
            row: row(name),
            query: DetailQuery::default(),
            received: Paged::slice(
                vec![Change {
                at: now(),
                kind: "UPDATE".into(),
                sfid: "001000000000001AAA".into(),
                fields: vec!["Name".into(), "Phone".into()],
                    latency_ms: Some(42),
                }],
                1,
            ),
            sent: Paged::probed(
                vec![Sent {
                at: Some(now()),
                action: Some("INSERT".into()),
                record_id: Some(7),
                sfid: Some("001000000000002AAA".into()),
                fields: vec!["name".into()],
                latency_ms: Some(90),
                }],
                1,
            ),
            failed: Paged::counted(
                vec![Failed {
                    id: 12,
                    action: Some("INSERT".into()),
                    record_id: Some(3),
                    sfid: None,
                    message: Some("FIELD_CUSTOM_VALIDATION_EXCEPTION: <b>no</b>".into()),
                    hc_err: Some(
                        "{\"errorCode\":\"FIELD_CUSTOM_VALIDATION_EXCEPTION\",\"message\":\"<i>no</i>\",\"fields\":[\"Name\"]}"
                            .into(),
                    ),
                    values: Some(serde_json::json!({"name": "<script>alert(1)</script>"})),
                    row: None,
                    at: Some(now()),
                }],
                1,
                120,
            ),
            read_errors: Paged::counted(
                vec![ReadError {
                    id: 1,
                    mapping: name.into(),
                    sfid: Some("001x".into()),
                    field: Some("Phone".into()),
                    reason: "value too long".into(),
                    at: now(),
                }],
                1,
                1,
            ),
            conflicts: Paged::counted(
                vec![Conflict::fixture(name, "001y", now())],
                1,
                1,
            ),
        }
}

#[test]
fn the_overview_has_a_row_per_mapping_with_its_figures() {
    let o = Overview {
        now: now(),
        instance: "host pid 1".into(),
        mappings: vec![row("Account"), row("Contact")],
        org_usage: Some((250, 5000)),
    };
    let html = overview(&o).into_string();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("name=\"viewport\""));
    assert!(html.contains("href=\"/mappings/Account\""));
    assert!(html.contains("href=\"/mappings/Contact\""));
    assert!(html.contains("data-state=\"STREAMING\""));
    assert!(html.contains("38 ms / 1.2 s"));
    assert!(html.contains("250 of 5000 (5.0 %)"));
    assert!(html.contains("7 of 1000 budget"));
    assert!(html.contains("data-refresh=\"/?part=live\""));
    assert!(html.contains("2026-01-01 00:01:00 UTC (0 s ago)"));
}

#[test]
fn a_large_table_shows_its_estimate_marked_as_one() {
    let mut r = row("Account");
    r.report.rows = 1_250_000;
    assert!(overview_row(&r).into_string().contains(">1250000</td>"));
    r.report.rows_estimated = true;
    let html = overview_row(&r).into_string();
    assert!(html.contains("≈ 1250000"), "{html}");
    assert!(html.contains("not counted on every refresh"));
}

#[test]
fn a_loading_mapping_shows_a_progress_bar() {
    let mut r = row("Account");
    r.report.state = "LOADING".into();
    r.progress = Some((250, Some(1000)));
    let html = overview_row(&r).into_string();
    assert!(html.contains("<progress max=\"1000\" value=\"250\""));
}

#[test]
fn values_from_salesforce_and_postgres_are_text() {
    let mut d = detail("Account");
    d.row.report.message = Some("<img src=x onerror=alert(1)>".into());
    d.received.rows[0].sfid = "<script>alert(2)</script>".into();
    let html = detail_page(&d, "tok").into_string();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img src=x"));
    assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
    assert!(html.contains("&lt;b&gt;no&lt;/b&gt;"));
}

#[test]
fn a_mapping_page_lists_failures_with_their_actions_and_pages() {
    let html = detail_page(&detail("Account"), "csrf-tok").into_string();
    assert!(html.contains("FIELD_CUSTOM_VALIDATION_EXCEPTION"));
    assert!(html.contains(
            "_hc_err: <code>FIELD_CUSTOM_VALIDATION_EXCEPTION</code> · &lt;i&gt;no&lt;/i&gt; · fields: Name"
        ));
    assert!(html.contains("action=\"/mappings/Account/retry\""));
    assert!(html.contains("name=\"id\" value=\"12\""));
    assert!(html.contains("name=\"csrf\" value=\"csrf-tok\""));
    assert!(html.contains("Retry all"));
    assert!(html.contains("120 in all · page 1 of 3"));
    assert!(html.contains("href=\"/mappings/Account?id=&amp;failed_page=2\""));
    assert!(html.contains("value too long"));
    assert!(html.contains("salesforce (salesforce_wins)"));
    assert!(html.contains("001000000000001AAA"));
    assert!(html.contains("Name, Phone"));
    assert!(html.contains("(the row is gone)"));
    // Every action is a POST form.
    assert_eq!(
        html.matches("<form method=\"post\"").count(),
        html.matches("name=\"csrf\"").count()
    );
}

#[test]
fn only_known_action_codes_make_a_message() {
    assert_eq!(
        done_message("retry", 2).as_deref(),
        Some("2 failed writes requeued; the writer sends them again")
    );
    assert_eq!(done_message("<script>", 1), None);
}

#[test]
fn the_login_form_never_shows_a_token() {
    let html = login(true).into_string();
    assert!(html.contains("type=\"password\""));
    assert!(html.contains("That is not the admin token."));
    assert!(!html.contains("value=\""));
}
