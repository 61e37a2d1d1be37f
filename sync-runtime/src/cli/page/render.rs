//! The status page's HTML (pure functions over [`super::model`]): the overview, a mapping's
//! page, the login form, the reload confirmation and error pages.
//!
//! Every value goes through maud, which escapes it: a record named `<script>` is text.

use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use serde_json::Value;

use crate::cli::report::{ago, MappingReport};
use crate::engine::activity::Lag;

use super::model::{duration, hc_err_parts, Detail, MappingRow, Overview, Paged, PAGE_SIZE};

/// A page: title, the CSRF token (`None` on the login page) and the body.
fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · forcesync" }
                link rel="stylesheet" href="/assets/page.css";
                script src="/assets/page.js" defer {}
            }
            body {
                header {
                    nav aria-label="forcesync" {
                        a href="/" { "forcesync" }
                        " · "
                        span { (title) }
                    }
                }
                main id="main" { (body) }
            }
        }
    }
}

/// `2026-01-31 12:00:00 UTC (5 s ago)`, machine-readable in `datetime`.
fn time(at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Markup {
    match at {
        Some(at) => html! {
            time datetime=(at.to_rfc3339()) {
                (at.format("%Y-%m-%d %H:%M:%S UTC")) " (" (ago(at, now)) ")"
            }
        },
        None => html! { "never" },
    }
}

fn lag(l: Option<Lag>) -> Markup {
    match l {
        Some(l) => html! {
            span title={ (l.samples) " changes" } { (duration(l.p50_ms)) " / " (duration(l.p99_ms)) }
        },
        None => html! { span class="dim" { "–" } },
    }
}

/// The rows in the table: counted, or Postgres' estimate of a large one, marked as such.
fn rows(r: &MappingReport) -> Markup {
    match r.rows_estimated {
        true => html! {
            span title="Postgres' estimate (pg_class.reltuples): a table this large is not counted on every refresh; `forcesync status` counts it" {
                "≈ " (r.rows)
            }
        },
        false => html! { (r.rows) },
    }
}

fn json(v: Option<&Value>) -> String {
    v.map_or_else(|| "null".to_owned(), Value::to_string)
}

fn state_class(state: &str) -> &'static str {
    match state.split_whitespace().next().unwrap_or("") {
        "STREAMING" | "POLLING" => "ok",
        "LOADING" | "RELOADING" | "INITIAL" => "busy",
        "PAUSED" => "paused",
        _ => "bad",
    }
}

fn progress(p: Option<(i64, Option<i64>)>) -> Markup {
    match p {
        Some((done, Some(total))) if total > 0 => html! {
            progress max=(total) value=(done.min(total)) aria-label="rows loaded" { (done) " of " (total) }
            " " (done) " / " (total)
        },
        Some((done, _)) => html! { progress aria-label="rows loaded" {} " " (done) " rows" },
        None => html! {},
    }
}

fn usage(used: u64, max: u64) -> Markup {
    let pct = if max > 0 {
        used as f64 * 100.0 / max as f64
    } else {
        0.0
    };
    html! {
        meter min="0" max=(max) value=(used.min(max)) high=(max * 9 / 10) aria-label="API calls today" {}
        " " (used) " of " (max) " (" (format!("{pct:.1}")) " %)"
    }
}

/// The overview's self-updating part (also served alone for the refresh).
pub fn overview_live(o: &Overview) -> Markup {
    html! {
        p {
            "Org API usage today: "
            @match o.org_usage {
                Some((used, max)) => { (usage(used, max)) }
                None => { span class="dim" { "not known yet (no call made)" } }
            }
            " · updated " (time(Some(o.now), o.now))
        }
        div class="scroll" {
            table class="cards" {
                caption { "Mappings (" (o.mappings.len()) ")" }
                thead {
                    tr {
                        th scope="col" { "Mapping" }
                        th scope="col" { "State" }
                        th scope="col" { "Held by" }
                        th scope="col" { "Access" }
                        th scope="col" { "Transport" }
                        th scope="col" class="num" { "Rows" }
                        th scope="col" class="num" { abbr title="changes in the last hour, Salesforce to Postgres" { "SF→PG 1 h" } }
                        th scope="col" class="num" { abbr title="changes in the last hour, Postgres to Salesforce" { "PG→SF 1 h" } }
                        th scope="col" { abbr title="latency p50 / p99 over the last 5 minutes, Salesforce to Postgres" { "Lag SF→PG" } }
                        th scope="col" { abbr title="latency p50 / p99 over the last 5 minutes, Postgres to Salesforce" { "Lag PG→SF" } }
                        th scope="col" class="num" { "Pending" }
                        th scope="col" class="num" { "Failed" }
                        th scope="col" class="num" { "Read errors" }
                        th scope="col" class="num" { "Conflicts" }
                        th scope="col" { "API calls today" }
                    }
                }
                tbody {
                    @for m in &o.mappings { (overview_row(m)) }
                }
            }
        }
    }
}

fn overview_row(m: &MappingRow) -> Markup {
    let r = &m.report;
    html! {
        tr data-mapping=(r.mapping) {
            th scope="row" { a href={ "/mappings/" (r.mapping) } { (r.mapping) } }
            td data-label="State" {
                span class={ "state " (state_class(&r.state)) } data-state=(r.state) { (r.state) }
                @if let Some(msg) = &r.message { br; small { (msg) } }
                @if m.progress.is_some() { br; (progress(m.progress)) }
            }
            td data-label="Held by" { (m.holder) }
            td data-label="Access" { (r.access.replace('_', "-")) }
            td data-label="Transport" { (m.transport) }
            td class="num" data-label="Rows" { (rows(r)) }
            td class="num" data-label="SF→PG, 1 h" data-field="changes-in" { (m.changes_in) }
            td class="num" data-label="PG→SF, 1 h" data-field="changes-out" { (m.changes_out) }
            td data-label="Lag SF→PG" { (lag(m.lag_in)) }
            td data-label="Lag PG→SF" { (lag(m.lag_out)) }
            td class="num" data-label="Pending" { (r.pending_writes) }
            td class="num" data-label="Failed" data-field="failed" {
                @if r.failed_writes > 0 { a class="bad" href={ "/mappings/" (r.mapping) "#failed" } { (r.failed_writes) } }
                @else { "0" }
            }
            td class="num" data-label="Read errors" { (r.read_errors) }
            td class="num" data-label="Conflicts" { (r.conflicts) }
            td data-label="API calls today" {
                (r.api_calls_today())
                @if m.budget > 0 { " of " (m.budget) " budget" }
            }
        }
    }
}

/// The overview page.
pub fn overview(o: &Overview) -> Markup {
    layout(
        "Status",
        html! {
            h1 { "Status" }
            p class="dim" { "Instance " (o.instance) ". Times in UTC." }
            section id="live" data-refresh="/?part=live" aria-live="polite" { (overview_live(o)) }
        },
    )
}

fn action(path: &str, csrf: &str, label: &str, hidden: &[(&str, &str)], class: &str) -> Markup {
    html! {
        form method="post" action=(path) class="inline" {
            input type="hidden" name="csrf" value=(csrf);
            @for (k, v) in hidden { input type="hidden" name=(k) value=(v); }
            button type="submit" class=(class) { (label) }
        }
    }
}

/// What an action did, from its fixed code (never text taken from the request).
pub fn done_message(done: &str, n: u64) -> Option<String> {
    Some(match done {
        "retry" => format!("{n} failed writes requeued; the writer sends them again"),
        "ignore" => format!("{n} failed writes marked ignored"),
        "pause" => "Paused (a running engine stops the mapping within seconds)".to_owned(),
        "resume" => "Resumed".to_owned(),
        "reload" => "Reload started; the state shows its progress".to_owned(),
        _ => return None,
    })
}

/// One page of `p` as a table (`head`: the column names; `cells`: a row's cells) above its
/// `pager`, or `empty` when the page has no row.
fn paged_table<T>(
    p: &Paged<T>,
    empty: &str,
    table_id: Option<&str>,
    head: &[&str],
    cells: impl Fn(&T) -> Markup,
    pager: Markup,
) -> Markup {
    html! {
        @if p.rows.is_empty() { p class="dim" { (empty) } }
        @else {
            div class="scroll" { table id=[table_id] {
                thead { tr { @for h in head { th scope="col" { (h) } } } }
                tbody { @for row in &p.rows { tr { (cells(row)) } } }
            } }
            (pager)
        }
    }
}

fn pager<T>(what: &str, param: &str, p: &Paged<T>, base: &str) -> Markup {
    html! {
        nav class="pager" aria-label={ (what) " pages" } {
            @if let Some(total) = p.total { (total) " in all · page " (p.page) " of " (p.pages()) }
            @else { "page " (p.page) }
            @if p.page > 1 { " " a href={ (base) "&" (param) "=" (p.page - 1) } { "previous" } }
            @if p.more { " " a href={ (base) "&" (param) "=" (p.page + 1) } { "next" } }
        }
    }
}

/// The mapping page's address with its record filter (and the pages of the recent changes,
/// which live in the self-updating part).
fn detail_base(d: &Detail) -> String {
    let filter = d.query.filter().unwrap_or("");
    format!(
        "/mappings/{}?id={}",
        d.row.report.mapping,
        url::form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
    )
}

/// The mapping page's self-updating part: its summary line and recent changes.
pub fn detail_live(d: &Detail) -> Markup {
    let r = &d.row.report;
    let base = detail_base(d);
    html! {
        dl class="summary" {
            dt { "State" } dd { span class={ "state " (state_class(&r.state)) } data-state=(r.state) { (r.state) } (progress(d.row.progress)) }
            @if let Some(msg) = &r.message { dt { "Why" } dd { (msg) } }
            dt { "Held by" } dd { (d.row.holder) }
            dt { "Access" } dd { (r.access.replace('_', "-")) }
            dt { "Transport" } dd { (d.row.transport) }
            dt { "Rows" } dd { (rows(r)) }
            dt { "Changes, last hour" } dd { (d.row.changes_in) " SF→PG · " (d.row.changes_out) " PG→SF" }
            dt { "Lag p50 / p99, last 5 min" } dd { "SF→PG " (lag(d.row.lag_in)) " · PG→SF " (lag(d.row.lag_out)) }
            dt { "Pending writes" } dd { (r.pending_writes) }
            dt { "API calls today" } dd {
                @if d.row.budget > 0 { (usage(r.api_calls_today(), d.row.budget)) } @else { (r.api_calls_today()) " (no budget set)" }
            }
            dt { "Last sync" } dd { (time(r.last_sync, d.now)) }
            @if let Some(e) = &r.last_error { dt { "Last error" } dd { (e) } }
        }
        section aria-labelledby="received-h" {
            h2 id="received-h" { "Recent changes, Salesforce → Postgres" }
            (paged_table(&d.received, "None since this instance started.", Some("received"),
                &["When", "Change", "Record Id", "Fields", "Latency"], |c| html! {
                    td { (time(Some(c.at), d.now)) } td { (c.kind) } td { code { (c.sfid) } }
                    td { (c.fields.join(", ")) }
                    td { @if let Some(ms) = c.latency_ms { (duration(ms)) } @else { "–" } }
                }, pager("Changes Salesforce to Postgres", "received_page", &d.received, &base)))
        }
        section aria-labelledby="sent-h" {
            h2 id="sent-h" { "Recent changes, Postgres → Salesforce" }
            (paged_table(&d.sent, "None.", Some("sent"),
                &["When", "Change", "Row", "Record Id", "Fields", "Latency"], |s| html! {
                    td { (time(s.at, d.now)) } td { (s.action.as_deref().unwrap_or("?")) }
                    td { (s.record_id.map_or_else(|| "?".to_owned(), |r| r.to_string())) }
                    td { code { (s.sfid.as_deref().unwrap_or("")) } }
                    td { (s.fields.join(", ")) }
                    td { @if let Some(ms) = s.latency_ms { (duration(ms)) } @else { "–" } }
                }, pager("Changes Postgres to Salesforce", "sent_page", &d.sent, &base)))
        }
    }
}

/// A mapping's page; `csrf` goes into every action's form.
pub fn detail(d: &Detail, csrf: &str) -> Markup {
    let r = &d.row.report;
    let name = r.mapping.as_str();
    let base_path = format!("/mappings/{name}");
    let filter = d.query.filter().unwrap_or("");
    let base = detail_base(d);
    let mut live = format!("{base}&part=live");
    for (param, page) in [
        ("received_page", d.query.received_page),
        ("sent_page", d.query.sent_page),
    ] {
        if let Some(page) = page {
            live.push_str(&format!("&{param}={page}"));
        }
    }
    html! {
        h1 { (name) }
        @if let Some(msg) = d.query.done.as_deref().and_then(|c| done_message(c, d.query.n.unwrap_or(0))) {
            p role="status" class="done" { (msg) }
        }
        div class="actions" {
            @if r.paused { (action(&format!("{base_path}/resume"), csrf, "Resume", &[], "")) }
            @else { (action(&format!("{base_path}/pause"), csrf, "Pause", &[], "")) }
            (action(&format!("{base_path}/reload"), csrf, "Reload…", &[], ""))
        }
        section id="live" data-refresh=(live) aria-live="polite" { (detail_live(d)) }
        form method="get" action=(base_path) class="filter" role="search" {
            label for="id-filter" { "Record Id" }
            input id="id-filter" type="search" name="id" value=(filter) placeholder="001… or row id";
            button type="submit" { "Filter" }
            @if !filter.is_empty() { " " a href=(base_path) { "clear" } }
        }
        section id="failed" aria-labelledby="failed-h" {
            h2 id="failed-h" { "Failed writes" }
            @if d.failed.rows.is_empty() { p class="dim" { "No failed writes." } }
            @else {
                div class="actions" {
                    (action(&format!("{base_path}/retry"), csrf, "Retry all", &[("all", "1")], ""))
                    (action(&format!("{base_path}/ignore"), csrf, "Ignore all", &[("all", "1")], "quiet"))
                }
                (failed_list(&d.failed, d, &base_path, csrf))
                (pager("Failed writes", "failed_page", &d.failed, &base))
            }
        }
        section id="read-errors" aria-labelledby="errors-h" {
            h2 id="errors-h" { "Read errors" }
            (paged_table(&d.read_errors, "No read errors.", None,
                &["When", "Record Id", "Field", "Reason"], |e| html! {
                    td { (time(Some(e.at), d.now)) } td { code { (e.sfid.as_deref().unwrap_or("?")) } }
                    td { (e.field.as_deref().unwrap_or("")) } td { (e.reason) }
                }, pager("Read errors", "errors_page", &d.read_errors, &base)))
        }
        section id="conflicts" aria-labelledby="conflicts-h" {
            h2 id="conflicts-h" { "Conflicts" }
            (paged_table(&d.conflicts, "No conflicts recorded.", None,
                &["When", "Record Id", "Field", "Postgres", "Salesforce", "Decision"], |c| html! {
                    td { (time(Some(c.at), d.now)) } td { code { (c.sfid.as_deref().unwrap_or("?")) } }
                    td { (c.field) } td { code { (json(c.postgres_value.as_ref())) } }
                    td { code { (json(c.salesforce_value.as_ref())) } }
                    td { (c.decision) " (" (c.policy) ")" }
                }, pager("Conflicts", "conflicts_page", &d.conflicts, &base)))
        }
    }
}

fn failed_list(
    failed: &Paged<super::model::Failed>,
    d: &Detail,
    base_path: &str,
    csrf: &str,
) -> Markup {
    html! {
        ul class="failed" {
            @for f in &failed.rows {
                li data-failed-id=(f.id) {
                    p {
                        strong { "#" (f.id) " " (f.action.as_deref().unwrap_or("?")) }
                        " row " (f.record_id.map_or_else(|| "?".to_owned(), |r| r.to_string()))
                        " " code { (f.sfid.as_deref().unwrap_or("(new)")) }
                        " · " (time(f.at, d.now))
                    }
                    p class="message" { (f.message.as_deref().unwrap_or("no message")) }
                    @if let Some(err) = &f.hc_err {
                        @if let Some((code, message, fields)) = hc_err_parts(err) {
                            p { "_hc_err: " code { (code) } " · " (message)
                                @if !fields.is_empty() { " · fields: " (fields.join(", ")) } }
                        } @else {
                            p { "_hc_err: " code { (err) } }
                        }
                    }
                    details {
                        summary { "Values" }
                        p { "Sent: " code { (json(f.values.as_ref())) } }
                        p { "Row now: " @if f.row.is_some() { code { (json(f.row.as_ref())) } } @else { "(the row is gone)" } }
                    }
                    div class="actions" {
                        @let id = f.id.to_string();
                        (action(&format!("{base_path}/retry"), csrf, &format!("Retry #{id}"), &[("id", id.as_str())], ""))
                        (action(&format!("{base_path}/ignore"), csrf, &format!("Ignore #{id}"), &[("id", id.as_str())], "quiet"))
                    }
                }
            }
        }
        p class="dim" { "Up to " (PAGE_SIZE) " per page, newest first." }
    }
}

/// A mapping's full page.
pub fn detail_page(d: &Detail, csrf: &str) -> Markup {
    layout(&d.row.report.mapping, detail(d, csrf))
}

/// The reload confirmation.
pub fn confirm_reload(name: &str, csrf: &str) -> Markup {
    layout(
        "Reload",
        html! {
            h1 { "Reload " (name) "?" }
            p { "A reload reads every " (name) " record from Salesforce again into a shadow table and then swaps it in; the application keeps reading the current table meanwhile. It uses API calls and cannot be undone once started." }
            div class="actions" {
                (action(&format!("/mappings/{name}/reload"), csrf, &format!("Reload {name} now"), &[("confirm", "yes")], "danger"))
                a href={ "/mappings/" (name) } { "Cancel" }
            }
        },
    )
}

/// The login form (`wrong`: the previous attempt failed).
pub fn login(wrong: bool) -> Markup {
    layout(
        "Sign in",
        html! {
            h1 { "Sign in" }
            @if wrong { p role="alert" class="bad" { "That is not the admin token." } }
            form method="post" action="/login" {
                label for="token" { "Admin token (" code { "FORCESYNC_ADMIN_TOKEN" } ")" }
                input id="token" type="password" name="token" required autocomplete="current-password";
                button type="submit" { "Sign in" }
            }
        },
    )
}

/// An error page (`message` is escaped like everything else).
pub fn error(title: &str, message: &str) -> Markup {
    layout(
        title,
        html! {
            h1 { (title) }
            p role="alert" { (message) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

#[cfg(test)]
mod tests;
