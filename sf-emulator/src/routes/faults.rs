//! The request-fault middleware: applies the org's request faults (`org::faults`: latency,
//! `503 SERVER_UNAVAILABLE` / `500 UNKNOWN_EXCEPTION` with Salesforce-shaped bodies, connection
//! resets, hangs, truncated bodies) to every request but the control plane (`/__emulator/…`),
//! and answers ambiguous writes (`org::chaos::writes`): applied, then answered 500, dropped,
//! or left hanging.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::data::error::json_response;
use crate::org::chaos::writes::AmbiguousMode;
use crate::org::faults::{mix, Outcome, CONTROL_PREFIX, DEFAULT_HANG_MS};
use crate::org::Org;

/// The 503 body Salesforce's API answers while an instance is unavailable.
pub fn unavailable_response() -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &json!([{
            "message": "Server is temporarily unavailable. Please try again later.",
            "errorCode": "SERVER_UNAVAILABLE",
        }]),
    )
}

/// The 500 body of an unexpected server-side failure.
pub fn server_error_response(n: u64) -> Response {
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &json!([{
            "message": format!(
                "An unexpected error occurred. Please include this ErrorId if you contact support: {:08}-{:05} ({})",
                mix(n) % 100_000_000,
                mix(n ^ 1) % 100_000,
                -((mix(n ^ 2) % 1_000_000_000) as i64),
            ),
            "errorCode": "UNKNOWN_EXCEPTION",
        }]),
    )
}

/// Middleware applying request faults to everything but the control plane.
pub async fn layer(State(org): State<Org>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with(CONTROL_PREFIX) {
        return next.run(req).await;
    }
    let faults = org.faults();
    let (latency, outcome) = faults.decide(path);
    let ambiguous = org.chaos().writes.take(req.method().as_str(), path);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match outcome {
        Outcome::Pass => {}
        Outcome::Unavailable => return unavailable_response(),
        Outcome::ServerError => return server_error_response(faults.injected().1),
        Outcome::Reset => return reset_response(),
        Outcome::Hang(d) => {
            tokio::time::sleep(d).await;
            return reset_response();
        }
        Outcome::Truncate => return truncate(next.run(req).await).await,
    }
    // Bulk 2.0 job requests are not transactions: an ingest job's writes are slowed when the
    // job runs (`bulk2::ingest::process`).
    let slow = org.chaos().slow.due()
        && crate::org::chaos::writes::is_write(req.method().as_str())
        && path.starts_with("/services/data/")
        && !path.contains("/jobs/");
    let resp = match slow
        .then(|| org.chaos().slow.begin(org.stamp_ms()))
        .flatten()
    {
        Some(running) => {
            tokio::time::sleep(running.delay).await;
            let resp = crate::org::chaos::slow::STAMP
                .scope(running.stamp, next.run(req))
                .await;
            drop(running);
            resp
        }
        None => next.run(req).await,
    };
    match ambiguous {
        None => resp,
        Some(AmbiguousMode::ServerError) => server_error_response(faults.injected().1),
        Some(AmbiguousMode::Drop) => reset_response(),
        Some(AmbiguousMode::Hang) => {
            let hang = match faults.get().hang_ms {
                0 => DEFAULT_HANG_MS,
                ms => ms,
            };
            tokio::time::sleep(Duration::from_millis(hang)).await;
            reset_response()
        }
    }
}

/// An answer whose body fails at once: the server closes the connection without a complete
/// response (the client sees a reset / incomplete message).
pub fn reset_response() -> Response {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "injected connection reset",
        ))
    });
    Response::new(Body::from_stream(stream))
}

/// `resp` with its headers (and its full `Content-Length`) but only the first half of its
/// body, then a closed connection.
async fn truncate(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.insert(
        axum::http::header::CONTENT_LENGTH,
        axum::http::HeaderValue::from(bytes.len().max(1) as u64),
    );
    // The first half goes out (and is flushed) before the connection fails.
    let stream = futures_util::stream::unfold(Some(half), |half| async move {
        match half {
            Some(bytes) => Some((Ok(bytes), None)),
            None => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "injected truncated body",
                    )),
                    None,
                ))
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}
