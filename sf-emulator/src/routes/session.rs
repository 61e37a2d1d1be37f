//! Request authentication plumbing: the `Authed` extractor (accepts `Authorization: Bearer <t>`
//! or `OAuth <t>`, counts the API request per endpoint and against `DailyApiRequests`, answers
//! 401 INVALID_SESSION_ID / 403 REQUEST_LIMIT_EXCEEDED), the Bulk 1.0 `X-SFDC-Session` helper,
//! the `ApiVersion` extractor for `/services/data/vXX.X/…`, and the middleware adding
//! `Sforce-Limit-Info` to REST responses. Session storage itself lives in `Org`.

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use crate::data::error::ApiError;
use crate::org::{Org, Session};

/// The token of `Authorization: Bearer <t>` or `Authorization: OAuth <t>`.
pub fn bearer_token(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth") {
        let t = token.trim();
        (!t.is_empty()).then(|| t.to_string())
    } else {
        None
    }
}

/// The token of Bulk 1.0's `X-SFDC-Session` header (falls back to `Authorization`).
pub fn sfdc_session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get("X-SFDC-Session")
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| bearer_token(headers))
}

/// The endpoint name API counters use: `GET /services/data/{version}/sobjects/{object}`.
pub fn endpoint_name(parts: &Parts) -> String {
    let path = parts
        .extensions
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| parts.uri.path().to_string());
    format!("{} {}", parts.method, path)
}

/// Validates a session token and counts the request. Shared by `Authed` and callers with
/// their own token source (Bulk 1.0, CometD).
pub fn authenticate(org: &Org, token: Option<String>, endpoint: &str) -> Result<Session, ApiError> {
    let token = token.ok_or_else(ApiError::invalid_session)?;
    let session = org.session(&token).ok_or_else(ApiError::invalid_session)?;
    org.count_api_request(endpoint)?;
    Ok(session)
}

/// Marks a request dispatched internally by `/composite/batch`: authenticated but not counted
/// again (the batch counts as one API call).
#[derive(Clone, Copy, Debug)]
pub struct SubRequest;

/// An authenticated, counted API request.
#[derive(Clone, Debug)]
pub struct Authed {
    pub session: Session,
}

impl FromRequestParts<Org> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, org: &Org) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<SubRequest>().is_some() {
            let token = bearer_token(&parts.headers).ok_or_else(ApiError::invalid_session)?;
            let session = org.session(&token).ok_or_else(ApiError::invalid_session)?;
            return Ok(Authed { session });
        }
        let endpoint = endpoint_name(parts);
        authenticate(org, bearer_token(&parts.headers), &endpoint).map(|session| Authed { session })
    }
}

/// `XX.X` from a path `/services/data/vXX.X/…` (any version ≥ 20.0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiVersion(pub String);

/// Parses `v59.0` → `59.0`; None unless it is a version ≥ 20.0 of the form `vNN.N`.
pub fn parse_version(seg: &str) -> Option<String> {
    let v = seg.strip_prefix('v')?;
    let (major, minor) = v.split_once('.')?;
    let m: u32 = major.parse().ok()?;
    if minor.is_empty() || !minor.chars().all(|c| c.is_ascii_digit()) || !(20..=999).contains(&m) {
        return None;
    }
    Some(format!("{m}.{minor}"))
}

impl ApiVersion {
    /// The major version number (59 for `59.0`).
    pub fn major(&self) -> u32 {
        self.0
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ApiVersion {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let path = parts.uri.path();
        let seg = path
            .strip_prefix("/services/data/")
            .or_else(|| path.strip_prefix("/services/async/"))
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("");
        let seg = if path.starts_with("/services/async/") {
            format!("v{seg}")
        } else {
            seg.to_string()
        };
        parse_version(&seg)
            .map(ApiVersion)
            .ok_or_else(ApiError::not_found)
    }
}

/// Adds `Sforce-Limit-Info: api-usage=N/M` to responses under `/services/data/vXX.X/`.
pub async fn limit_info(State(org): State<Org>, req: Request, next: Next) -> Response {
    let versioned = req
        .uri()
        .path()
        .strip_prefix("/services/data/")
        .is_some_and(|rest| rest.starts_with('v'));
    let mut resp = next.run(req).await;
    if versioned && resp.status() != StatusCode::UNAUTHORIZED {
        if let Ok(v) = HeaderValue::from_str(&org.limit_info()) {
            resp.headers_mut().insert("Sforce-Limit-Info", v);
        }
    }
    resp
}
