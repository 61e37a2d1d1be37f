//! Sending calls: one retry loop for the whole client.
//!
//! Every call carries the session token and `Sforce-Call-Options: client=<id>`, is counted by
//! [`CallKind`], passes the daily budgets first, and has its `Sforce-Limit-Info` read. Failures are
//! classified ([`super::error`]); the loop refreshes the session once on `INVALID_SESSION_ID`,
//! retries [`ErrorClass::Indefinite`] failures (and [`ErrorClass::Ambiguous`] ones of reads) with
//! exponential backoff and jitter ([`super::backoff`]), waits [`RetryPolicy::limit_delay`]
//! on `REQUEST_LIMIT_EXCEEDED`, and hands everything else back at once.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde::de::DeserializeOwned;

use super::backoff;
use super::error::{classify_response, classify_transport, ErrorClass, SfError, SfErrorKind};
use super::{CallKind, Client, Config};

/// The most a response's announced length reserves before its body arrives (a Bulk result page
/// is at most a few tens of MB).
const MAX_PREALLOCATED: u64 = 64 * 1024 * 1024;

/// The org's daily API usage, from `Sforce-Limit-Info: api-usage=used/max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiUsage {
    pub used: u64,
    pub max: u64,
}

impl ApiUsage {
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

/// Reads `api-usage=N/M` out of a `Sforce-Limit-Info` value (other entries such as
/// `api-bursts=…` or `per-app-api-usage=…(appName=x)` may follow, separated by `;`).
pub fn parse_limit_info(value: &str) -> Option<ApiUsage> {
    value.split([';', ',']).find_map(|part| {
        let (name, usage) = part.trim().split_once('=')?;
        if name.trim() != "api-usage" {
            return None;
        }
        let (used, max) = usage.trim().split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    })
}

/// How failed calls are retried.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Retries of one call after indefinite failures (not counting session refreshes).
    pub max_retries: usize,
    /// First backoff delay; doubles each retry up to `max_delay`.
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Add a random share (up to the delay itself) to every delay.
    pub jitter: bool,
    /// Wait after `REQUEST_LIMIT_EXCEEDED` (the org's daily limit) before trying again.
    pub limit_delay: Duration,
    /// Retries after `REQUEST_LIMIT_EXCEEDED` before the error is handed back.
    pub limit_retries: usize,
}

impl Default for RetryPolicy {
    /// 8 retries from 250 ms doubling to 30 s, with jitter; 5 minutes once after a limit error.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 8,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            jitter: true,
            limit_delay: Duration::from_secs(300),
            limit_retries: 1,
        }
    }
}

impl RetryPolicy {
    /// `max_retries` delays doubling from `min_delay` up to `max_delay`; the rest (jitter, the
    /// wait after a limit error) as the default.
    pub fn doubling(max_retries: usize, min_delay: Duration, max_delay: Duration) -> Self {
        RetryPolicy {
            max_retries,
            min_delay,
            max_delay,
            ..RetryPolicy::default()
        }
    }

    /// The delays before each retry, in order (at most `max_retries` of them).
    pub fn schedule(&self) -> impl Iterator<Item = Duration> {
        let (min, max, jitter) = (self.min_delay, self.max_delay, self.jitter);
        (1..=self.max_retries).map(move |retry| {
            let share = if jitter { backoff::random_share() } else { 0.0 };
            backoff::delay(min, max, u32::try_from(retry).unwrap_or(u32::MAX), share)
        })
    }
}

/// What the retry loop does with a failure (pure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    /// Retry after the next backoff delay.
    Backoff,
    /// Retry after [`RetryPolicy::limit_delay`] (the org's request limit).
    LimitWait,
    /// Hand the error to the caller.
    GiveUp,
}

/// Indefinite failures are retried; ambiguous ones only when the call is an idempotent read.
pub fn retry_decision(error: &SfError, write: bool) -> RetryDecision {
    if error.kind == SfErrorKind::BudgetExhausted {
        return RetryDecision::GiveUp;
    }
    match error.class {
        ErrorClass::Indefinite if error.is_request_limit() => RetryDecision::LimitWait,
        ErrorClass::Indefinite => RetryDecision::Backoff,
        ErrorClass::Ambiguous if !write => RetryDecision::Backoff,
        _ => RetryDecision::GiveUp,
    }
}

/// Makes ring the process's TLS crypto provider, which reqwest needs before it builds a client
/// (forcesync uses ring rather than aws-lc-rs: same TLS, a much shorter first build). The first
/// install wins; later calls change nothing. Apps that build their own reqwest or rustls clients
/// in the same process may call it first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The reqwest client: rustls, HTTP/1.1 and HTTP/2, gzip, optionally a cookie store.
pub(crate) fn build_http(config: &Config, cookies: bool) -> Result<reqwest::Client, SfError> {
    install_crypto_provider();
    reqwest::Client::builder()
        .gzip(true)
        .cookie_store(cookies)
        .connect_timeout(config.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| {
            SfError::new(
                SfErrorKind::Transport,
                ErrorClass::Definite,
                "TRANSPORT",
                format!("building the HTTP client: {e}"),
            )
        })
}

/// A request body.
#[derive(Clone, Debug)]
pub(crate) enum Body {
    Empty,
    Json(Vec<u8>),
    Csv(Vec<u8>),
}

/// One call, as the retry loop sends it (possibly several times).
#[derive(Clone, Debug)]
pub(crate) struct Request {
    method: Method,
    /// A path on the instance (`/services/data/…`) or an absolute URL.
    target: String,
    kind: CallKind,
    query: Vec<(String, String)>,
    body: Body,
    headers: Vec<(&'static str, String)>,
    write: bool,
    retry: bool,
    timeout: Option<Duration>,
}

impl Request {
    pub(crate) fn new(method: Method, kind: CallKind, target: impl Into<String>) -> Request {
        let write = !matches!(method, Method::GET | Method::HEAD);
        Request {
            method,
            target: target.into(),
            kind,
            query: Vec::new(),
            body: Body::Empty,
            headers: Vec::new(),
            write,
            retry: true,
            timeout: None,
        }
    }

    pub(crate) fn get(kind: CallKind, target: impl Into<String>) -> Request {
        Request::new(Method::GET, kind, target)
    }

    pub(crate) fn json(mut self, body: &serde_json::Value) -> Request {
        self.body = Body::Json(serde_json::to_vec(body).expect("JSON values serialize"));
        self
    }

    pub(crate) fn csv(mut self, body: Vec<u8>) -> Request {
        self.body = Body::Csv(body);
        self
    }

    pub(crate) fn query(mut self, name: &str, value: impl Into<String>) -> Request {
        self.query.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Request {
        self.headers.push((name, value.into()));
        self
    }

    /// Marks a POST that only reads (query job creation excepted, e.g. Collections retrieve).
    pub(crate) fn read_only(mut self) -> Request {
        self.write = false;
        self
    }

    /// Sends once: failures go straight back (the CometD loop reconnects by itself).
    pub(crate) fn no_retry(mut self) -> Request {
        self.retry = false;
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }
}

/// A successful answer, read whole (callers page, so one answer is bounded).
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Response {
    pub(crate) fn json<T: DeserializeOwned>(&self) -> Result<T, SfError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| SfError::decode(format!("unexpected answer (HTTP {}): {e}", self.status)))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Client {
    /// Sends `request` through the retry loop on the client's own connection pool.
    pub(crate) async fn send(&self, request: Request) -> Result<Response, SfError> {
        let http = self.inner.http.clone();
        self.send_via(&http, request).await
    }

    /// Sends `request` through the retry loop on `http` (the CometD client has its own, for its
    /// own cookie jar).
    pub(crate) async fn send_via(
        &self,
        http: &reqwest::Client,
        request: Request,
    ) -> Result<Response, SfError> {
        let policy = self.inner.config.retry.clone();
        let mut schedule = policy.schedule();
        let mut limit_waits = 0;
        let mut refreshed = false;
        loop {
            if request.kind.is_budgeted() {
                if let Some(refusal) = self.budget_refusal() {
                    return Err(refusal);
                }
            }
            let outcome = match self.session().await {
                Ok(session) => self.attempt(http, &request, &session).await,
                Err(e) => Err((e, None)),
            };
            let (error, generation) = match outcome {
                Ok(response) => return Ok(response),
                Err(failure) => failure,
            };
            if error.is_invalid_session() && !refreshed {
                refreshed = true;
                tracing::info!("Salesforce session expired; logging in again");
                self.renew_session(generation).await?;
                continue;
            }
            if !request.retry {
                return Err(error);
            }
            let delay = match retry_decision(&error, request.write) {
                RetryDecision::GiveUp => None,
                RetryDecision::Backoff => schedule.next(),
                RetryDecision::LimitWait => {
                    limit_waits += 1;
                    (limit_waits <= policy.limit_retries).then_some(policy.limit_delay)
                }
            };
            let Some(delay) = delay else {
                return Err(error);
            };
            tracing::warn!(error = %error, delay_ms = delay.as_millis() as u64, "Salesforce call failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// One HTTP exchange. Errors come with the session generation used (for a refresh).
    async fn attempt(
        &self,
        http: &reqwest::Client,
        request: &Request,
        session: &super::auth::Session,
    ) -> Result<Response, (SfError, Option<u64>)> {
        let generation = Some(session.generation);
        let url = if request.target.starts_with("http://") || request.target.starts_with("https://")
        {
            request.target.clone()
        } else {
            format!("{}{}", session.instance_url, request.target)
        };
        let mut builder = http
            .request(request.method.clone(), &url)
            .bearer_auth(session.token.expose())
            .header(
                "Sforce-Call-Options",
                format!("client={}", self.inner.config.call_client),
            )
            .timeout(request.timeout.unwrap_or(self.inner.config.request_timeout));
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        builder = match &request.body {
            Body::Empty => builder,
            Body::Json(bytes) => builder
                .header("Content-Type", "application/json")
                .body(bytes.clone()),
            Body::Csv(bytes) => builder
                .header("Content-Type", "text/csv")
                .body(bytes.clone()),
        };
        self.count_call(request.kind);
        let mut response = builder
            .send()
            .await
            .map_err(|e| (classify_transport(&e, request.write), generation))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        if let Some(usage) = headers
            .get("Sforce-Limit-Info")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_limit_info)
        {
            self.record_usage(usage);
        }
        // Read into one buffer of the announced length: collecting the chunks first and copying
        // them after (`bytes()`) held a large Bulk result page twice at once.
        let mut body = BytesMut::with_capacity(
            response
                .content_length()
                .map_or(0, |n| n.min(MAX_PREALLOCATED) as usize),
        );
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| (classify_transport(&e, request.write), generation))?
        {
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        if (200..300).contains(&status) {
            Ok(Response {
                status,
                headers,
                body,
            })
        } else {
            Err((classify_response(status, &body, request.write), generation))
        }
    }

    /// GET a JSON document.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        kind: CallKind,
        target: impl Into<String>,
    ) -> Result<T, SfError> {
        self.send(Request::get(kind, target)).await?.json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_info_is_read_with_or_without_other_entries() {
        assert_eq!(
            parse_limit_info("api-usage=18/5000"),
            Some(ApiUsage {
                used: 18,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info("api-usage=25/5000; per-app-api-usage=17/250(appName=sample)"),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        assert_eq!(
            parse_limit_info("api-bursts=1/750; api-usage=3/100"),
            Some(ApiUsage { used: 3, max: 100 })
        );
        assert_eq!(
            parse_limit_info("per-app-api-usage=17/250(appName=x)"),
            None
        );
        assert_eq!(parse_limit_info("api-usage=abc"), None);
        assert_eq!(
            ApiUsage {
                used: 120,
                max: 100
            }
            .remaining(),
            0
        );
    }

    #[test]
    fn the_backoff_schedule_doubles_up_to_the_cap_and_stops() {
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::doubling(6, Duration::from_millis(100), Duration::from_millis(1000))
        };
        let delays: Vec<u128> = policy.schedule().map(|d| d.as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn jitter_keeps_each_delay_between_its_base_and_twice_it() {
        let policy = RetryPolicy::doubling(5, Duration::from_millis(100), Duration::from_secs(10));
        for _ in 0..20 {
            let delays: Vec<Duration> = policy.schedule().collect();
            assert_eq!(delays.len(), 5);
            for (i, d) in delays.iter().enumerate() {
                let base = Duration::from_millis(100 << i);
                assert!(*d >= base && *d <= base * 2, "retry {i}: {d:?}");
            }
        }
    }

    #[test]
    fn only_indefinite_failures_and_ambiguous_reads_are_retried() {
        let lock = SfError::api(Some(400), "UNABLE_TO_LOCK_ROW", "locked", vec![]);
        assert_eq!(retry_decision(&lock, true), RetryDecision::Backoff);
        let limit = SfError::api(Some(403), "REQUEST_LIMIT_EXCEEDED", "limit", vec![]);
        assert_eq!(retry_decision(&limit, false), RetryDecision::LimitWait);
        let invalid = SfError::api(Some(400), "INVALID_FIELD", "no", vec![]);
        assert_eq!(retry_decision(&invalid, false), RetryDecision::GiveUp);
        let ambiguous = classify_response(500, b"[]", true);
        assert_eq!(ambiguous.class, ErrorClass::Ambiguous);
        assert_eq!(retry_decision(&ambiguous, true), RetryDecision::GiveUp);
        let mut read = ambiguous.clone();
        read.class = ErrorClass::Ambiguous;
        assert_eq!(retry_decision(&read, false), RetryDecision::Backoff);
        assert_eq!(
            retry_decision(&SfError::budget("used".into()), false),
            RetryDecision::GiveUp
        );
    }
}
