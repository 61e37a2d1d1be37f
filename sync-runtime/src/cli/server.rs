//! The daemon's HTTP listener: `/healthz` (the process answers), `/readyz` (Postgres reachable,
//! tables migrated, every mapping loaded) and `/metrics` (Prometheus text, see [`super::metrics`]).

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::sync::watch;

use crate::adapter::Registry;

use super::{metrics, report};

#[derive(Clone)]
struct Ctx {
    database_url: String,
    registry: &'static Registry,
}

/// Serves until `shutdown` turns true. Returns the bound address through `bound` once listening.
pub async fn serve(
    listen: SocketAddr,
    database_url: String,
    registry: &'static Registry,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_handler))
        .with_state(Ctx {
            database_url,
            registry,
        });
    tokio::spawn(async move {
        let stop = async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    return;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!("HTTP listener stopped: {e}");
        }
    });
    Ok(addr)
}

async fn reports(ctx: &Ctx) -> Result<Vec<report::MappingReport>, String> {
    let db = crate::engine::connect(&ctx.database_url)
        .await
        .map_err(|e| e.to_string())?;
    report::gather(&db, ctx.registry, &[])
        .await
        .map_err(|e| e.to_string())
}

async fn readyz(State(ctx): State<Ctx>) -> Response {
    match reports(&ctx).await {
        Ok(reports) => {
            let waiting: Vec<String> = reports
                .iter()
                .filter(|r| !r.loaded)
                .map(|r| format!("{} is {}", r.mapping, r.state))
                .collect();
            if waiting.is_empty() {
                (StatusCode::OK, "ready\n").into_response()
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", waiting.join(", ")),
                )
                    .into_response()
            }
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")).into_response(),
    }
}

async fn limits(ctx: &Ctx) -> Vec<crate::engine::allocations::StoredLimit> {
    match crate::engine::connect(&ctx.database_url).await {
        Ok(db) => report::gather_limits(&db, ctx.registry)
            .await
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn metrics_handler(State(ctx): State<Ctx>) -> Response {
    match reports(&ctx).await {
        Ok(reports) => {
            let mut text = metrics::render(&reports);
            text.push_str(&metrics::render_limits(&limits(&ctx).await));
            text.push_str("# HELP forcesync_up 1 when the figures could be read from Postgres.\n# TYPE forcesync_up gauge\nforcesync_up 1\n");
            ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
        }
        Err(e) => {
            tracing::warn!("metrics: {e}");
            (
                [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
                "# HELP forcesync_up 1 when the figures could be read from Postgres.\n# TYPE forcesync_up gauge\nforcesync_up 0\n",
            )
                .into_response()
        }
    }
}
