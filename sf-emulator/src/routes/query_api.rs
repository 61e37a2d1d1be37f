//! REST query endpoints: `GET /services/data/vXX.X/query?q=` and `/queryAll?q=`, and the
//! `nextRecordsUrl` cursors behind them. A cursor snapshots the matching record Ids once, so
//! every later page is a slice lookup (no re-run, no re-sort). Locators look like Salesforce's
//! (`01gEM0000000001AAA-2000`: cursor id, then the offset of the page) and carry everything
//! needed to continue, so they resolve under both `/query/<locator>` and `/queryAll/<locator>`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use parking_lot::Mutex;

use crate::data::error::{ApiError, JSON_UTF8};
use crate::data::ids::SfId;
use crate::data::soql::bind::{self, Bound, Output};
use crate::data::soql::exec::{self, Outcome};
use crate::data::soql::render::{self, Node};
use crate::data::soql::user::VirtualUser;
use crate::data::soql::SoqlError;
use crate::org::Org;
use crate::routes::session::Authed;

/// Default and maximum page size; `Sforce-Query-Options: batchSize` may lower it to 200.
pub const MAX_BATCH: usize = 2000;
const MIN_BATCH: usize = 200;
/// A cursor not touched for this long is gone (`INVALID_QUERY_LOCATOR`).
const CURSOR_IDLE: Duration = Duration::from_secs(15 * 60);
/// Open cursors kept per org; the least recently used one is dropped beyond this.
const MAX_CURSORS: usize = 64;

/// A parsed and bound query, ready to run.
pub struct Prepared {
    pub bound: Bound,
    pub nodes: Vec<Node>,
}

/// Parses and binds `soql` against the org.
pub fn prepare(org: &Org, soql: &str) -> Result<Prepared, SoqlError> {
    let q = crate::data::soql::parse(soql)?;
    let today = bind::today_of_ms(org.now_ms());
    let user = VirtualUser::new(org.user_id(), &org.config().username).map(Arc::new);
    let bound = bind::bind(&org.schema(), soql, &q, today, user.as_ref())?;
    let nodes = match &bound.output {
        Output::Fields(cols) => render::tree(cols),
        _ => Vec::new(),
    };
    Ok(Prepared { bound, nodes })
}

/// A SOQL error as the REST API answers it (400 with the error array).
pub fn soql_error(e: SoqlError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, e.code.as_str(), e.message)
}

struct Cursor {
    prepared: Arc<Prepared>,
    ids: Arc<Vec<SfId>>,
    batch: usize,
    last_used: Instant,
}

/// Open query cursors of one org.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<HashMap<SfId, Cursor>>,
    counter: AtomicU64,
}

impl Cursors {
    fn open(&self, prepared: Arc<Prepared>, ids: Arc<Vec<SfId>>, batch: usize) -> SfId {
        let id = SfId::generate("01g", self.counter.fetch_add(1, Ordering::Relaxed) + 1);
        let mut open = self.open.lock();
        let now = Instant::now();
        open.retain(|_, c| now.duration_since(c.last_used) < CURSOR_IDLE);
        if open.len() >= MAX_CURSORS {
            if let Some(oldest) = open
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| *k)
            {
                open.remove(&oldest);
            }
        }
        open.insert(
            id,
            Cursor {
                prepared,
                ids,
                batch,
                last_used: now,
            },
        );
        id
    }

    fn resume(&self, id: &SfId) -> Option<(Arc<Prepared>, Arc<Vec<SfId>>, usize)> {
        let mut open = self.open.lock();
        let c = open.get_mut(id)?;
        if c.last_used.elapsed() >= CURSOR_IDLE {
            open.remove(id);
            return None;
        }
        c.last_used = Instant::now();
        Some((c.prepared.clone(), c.ids.clone(), c.batch))
    }

    fn close(&self, id: &SfId) {
        self.open.lock().remove(id);
    }
}

/// The query routes (mounted under `/services/data/{version}`).
pub fn routes() -> Router<Org> {
    let cursors = Arc::new(Cursors::default());
    Router::new()
        .route("/services/data/{version}/query", get(query))
        .route("/services/data/{version}/queryAll", get(query_all))
        // simple-salesforce calls `query/?q=…` and `queryAll/?q=…`.
        .route("/services/data/{version}/query/", get(query))
        .route("/services/data/{version}/queryAll/", get(query_all))
        .route("/services/data/{version}/query/{locator}", get(next_page))
        .route(
            "/services/data/{version}/queryAll/{locator}",
            get(next_page),
        )
        .layer(Extension(cursors))
}

#[derive(serde::Deserialize)]
struct QueryParams {
    q: Option<String>,
}

/// `v59.0` → `59.0`.
fn version_number(v: &str) -> Result<&str, ApiError> {
    v.strip_prefix('v')
        .filter(|n| {
            n.split_once('.')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
        })
        .ok_or_else(ApiError::not_found)
}

/// `Sforce-Query-Options: batchSize=N` clamped to 200..=2000.
fn batch_size(headers: &HeaderMap) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split([',', ';'])
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(MAX_BATCH, |n| n.clamp(MIN_BATCH, MAX_BATCH))
}

async fn query(
    State(org): State<Org>,
    Extension(cursors): Extension<Arc<Cursors>>,
    _auth: Authed,
    Path(version): Path<String>,
    Query(p): Query<QueryParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(org, cursors, &version, p.q, batch_size(&headers), false).await
}

async fn query_all(
    State(org): State<Org>,
    Extension(cursors): Extension<Arc<Cursors>>,
    _auth: Authed,
    Path(version): Path<String>,
    Query(p): Query<QueryParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    run(org, cursors, &version, p.q, batch_size(&headers), true).await
}

async fn run(
    org: Org,
    cursors: Arc<Cursors>,
    version: &str,
    q: Option<String>,
    batch: usize,
    all_rows: bool,
) -> Result<Response, ApiError> {
    let version = version_number(version)?.to_string();
    let q = q.filter(|q| !q.trim().is_empty()).ok_or_else(|| {
        ApiError::bad_request("MALFORMED_QUERY", "A query string has to be specified")
    })?;
    org.chaos().queries.timeout()?;
    let batch = org.chaos().queries.page(batch);
    if all_rows {
        crate::org::recycle_bin::purge_expired(&org);
    }
    let body = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let prepared = Arc::new(prepare(&org, &q).map_err(soql_error)?);
        let outcome = {
            let store = org.read();
            exec::execute(&store, &prepared.bound, all_rows)
        };
        Ok(match outcome {
            Outcome::Count(n) => count_body(n),
            Outcome::Aggregates(aggs) => aggregate_body(&aggs),
            Outcome::Rows(ids) => {
                let ids = Arc::new(ids);
                let cursor =
                    (ids.len() > batch).then(|| cursors.open(prepared.clone(), ids.clone(), batch));
                page_body(&org, &prepared, &ids, 0, batch, cursor, &version)
            }
        })
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
    })??;
    Ok(json_response_bytes(StatusCode::OK, body))
}

fn invalid_locator() -> ApiError {
    ApiError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator")
}

async fn next_page(
    State(org): State<Org>,
    Extension(cursors): Extension<Arc<Cursors>>,
    _auth: Authed,
    Path((version, locator)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let version = version_number(&version)?.to_string();
    let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid_locator)?;
    let id = SfId::parse(id).map_err(|_| invalid_locator())?;
    let offset: usize = offset.parse().map_err(|_| invalid_locator())?;
    let (prepared, ids, batch) = cursors.resume(&id).ok_or_else(invalid_locator)?;
    if org.chaos().queries.lose_locator() {
        cursors.close(&id);
        return Err(invalid_locator());
    }
    if offset == 0 || offset >= ids.len() {
        return Err(invalid_locator());
    }
    let body = tokio::task::spawn_blocking(move || {
        let end = offset + batch;
        let next = (end < ids.len()).then_some(id);
        if next.is_none() {
            cursors.close(&id);
        }
        page_body(&org, &prepared, &ids, offset, batch, next, &version)
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            e.to_string(),
        )
    })?;
    Ok(json_response_bytes(StatusCode::OK, body))
}

fn count_body(n: usize) -> Vec<u8> {
    format!("{{\"totalSize\":{n},\"done\":true,\"records\":[]}}").into_bytes()
}

fn aggregate_body(aggs: &[(String, i64)]) -> Vec<u8> {
    let mut out = b"{\"totalSize\":1,\"done\":true,\"records\":[{\"attributes\":{\"type\":\"AggregateResult\"}".to_vec();
    for (name, n) in aggs {
        out.push(b',');
        render::json_str(&mut out, name);
        out.push(b':');
        out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes());
    }
    out.extend_from_slice(b"}]}");
    out
}

/// One page: `{"totalSize","done"[,"nextRecordsUrl"],"records":[...]}`.
fn page_body(
    org: &Org,
    prepared: &Prepared,
    ids: &[SfId],
    offset: usize,
    batch: usize,
    cursor: Option<SfId>,
    version: &str,
) -> Vec<u8> {
    let end = (offset + batch).min(ids.len());
    let mut out = Vec::with_capacity((end - offset) * 256 + 128);
    out.extend_from_slice(b"{\"totalSize\":");
    out.extend_from_slice(itoa::Buffer::new().format(ids.len()).as_bytes());
    match cursor {
        Some(c) if end < ids.len() => {
            out.extend_from_slice(b",\"done\":false,\"nextRecordsUrl\":\"/services/data/v");
            out.extend_from_slice(version.as_bytes());
            out.extend_from_slice(b"/query/");
            out.extend_from_slice(c.as_str().as_bytes());
            out.push(b'-');
            out.extend_from_slice(itoa::Buffer::new().format(end).as_bytes());
            out.push(b'"');
        }
        _ => out.extend_from_slice(b",\"done\":true"),
    }
    out.extend_from_slice(b",\"records\":[");
    let store = org.read();
    let table = store.table(prepared.bound.object_index);
    let mut first = true;
    render::in_storage_order(
        &ids[offset..end],
        &mut out,
        // A record purged since the query ran is skipped.
        |id| table.get(id),
        |rec, buf| {
            render::write_json_record(
                buf,
                &store,
                &prepared.bound.object,
                rec,
                &prepared.nodes,
                version,
            )
        },
        |out| {
            if !first {
                out.push(b',');
            }
            first = false;
        },
    );
    out.extend_from_slice(b"]}");
    out
}

/// A JSON body (already serialized) with Salesforce's content type.
fn json_response_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = axum::response::IntoResponse::into_response((status, body));
    resp.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(JSON_UTF8),
    );
    resp
}

/// SOQL errors keep Salesforce's codes.
impl From<SoqlError> for ApiError {
    fn from(e: SoqlError) -> ApiError {
        soql_error(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn batch_size_header_is_clamped() {
        let mut h = HeaderMap::new();
        assert_eq!(batch_size(&h), 2000);
        h.insert(
            "Sforce-Query-Options",
            HeaderValue::from_static("batchSize=500"),
        );
        assert_eq!(batch_size(&h), 500);
        h.insert(
            "Sforce-Query-Options",
            HeaderValue::from_static("batchSize=10"),
        );
        assert_eq!(batch_size(&h), 200);
        h.insert(
            "Sforce-Query-Options",
            HeaderValue::from_static("batchSize=99999"),
        );
        assert_eq!(batch_size(&h), 2000);
    }
}
