//! The status page on `forcesync run`'s listener: the overview (`/`), a mapping's page
//! (`/mappings/<name>`), the operator's actions (`POST /mappings/<name>/{retry,ignore,pause,
//! resume,reload}`, the same operations as the commands of the same names) and the login form.
//!
//! Server-rendered HTML ([`render`]) with one small script that refreshes the live part; access
//! decided by [`auth`]; data read by [`data`]. `/healthz`, `/readyz` and `/metrics` are not
//! served here and need no token.

pub mod auth;
pub mod data;
pub mod model;
pub mod render;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::Markup;
use serde::Deserialize;

use crate::adapter::{MappingDescriptor, Registry};
use crate::engine::state::StateStore;
use crate::engine::writer::admin::{self as writer_admin, Action, Selection};
use crate::engine::Engine;

use auth::{Access, Guard};
use data::Live;
use model::DetailQuery;

const CSS: &str = include_str!("assets/page.css");
const JS: &str = include_str!("assets/page.js");

struct Inner {
    database_url: String,
    registry: &'static Registry,
    guard: Guard,
    live: Live,
    engine: Option<Arc<Engine>>,
    /// The page's shared connection (reopened when it closes).
    db: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
    /// Mappings reloading from the page now.
    reloading: Arc<Mutex<HashSet<&'static str>>>,
}

/// The page's state: the settings, the guard and (under `run`) the engine.
#[derive(Clone)]
pub struct Page(Arc<Inner>);

impl Page {
    /// A page over `database_url`; `engine`: the running engine (lease holders, the org's API
    /// usage, reloads), `None` where there is none.
    pub fn new(
        database_url: String,
        registry: &'static Registry,
        guard: Guard,
        engine: Option<Arc<Engine>>,
    ) -> Page {
        let live = Live {
            held: engine.as_ref().map(|e| e.held.clone()),
            client: engine.as_ref().map(|e| e.client.clone()),
        };
        Page(Arc::new(Inner {
            database_url,
            registry,
            guard,
            live,
            engine,
            db: tokio::sync::Mutex::new(None),
            reloading: Arc::default(),
        }))
    }

    async fn db(&self) -> Result<Arc<tokio_postgres::Client>, String> {
        let mut slot = self.0.db.lock().await;
        if let Some(db) = slot.as_ref().filter(|db| !db.is_closed()) {
            return Ok(db.clone());
        }
        let db = Arc::new(
            crate::engine::connect(&self.0.database_url)
                .await
                .map_err(|e| e.to_string())?,
        );
        *slot = Some(db.clone());
        Ok(db)
    }

    fn access(&self, headers: &HeaderMap) -> Option<Access> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let cookie = headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| auth::cookie_value(c, auth::COOKIE));
        self.0.guard.decide(authorization, cookie)
    }

    /// Whether a GET may see the page; the login form or a refusal otherwise.
    fn check_view(&self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        match self.access(headers) {
            Some(Access::Granted) => Ok(()),
            Some(Access::Login) => Err(Box::new(see_other("/login"))),
            None => Err(Box::new(refused(
                StatusCode::UNAUTHORIZED,
                "The admin token is wrong.",
            ))),
        }
    }

    /// Whether an action may run: a session (or the bearer token) and the CSRF token.
    fn check_action(&self, headers: &HeaderMap, csrf: Option<&str>) -> Result<(), Box<Response>> {
        match self.access(headers) {
            Some(Access::Granted) => {}
            _ => {
                return Err(Box::new(refused(
                    StatusCode::UNAUTHORIZED,
                    "Sign in with the admin token first.",
                )))
            }
        }
        let bearer = self.0.guard.requires_token()
            && headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|a| a.starts_with("Bearer "));
        // A bearer header is never sent by a browser on its own: scripts need no CSRF token.
        if bearer || self.0.guard.csrf_ok(csrf) {
            Ok(())
        } else {
            Err(Box::new(refused(
                StatusCode::FORBIDDEN,
                "This action is missing its form's token (CSRF); reload the page and try again.",
            )))
        }
    }

    fn mapping(&self, name: &str) -> Result<&'static MappingDescriptor, Box<Response>> {
        self.0.registry.mapping(name).ok_or_else(|| {
            Box::new(refused(
                StatusCode::NOT_FOUND,
                &format!("There is no mapping named `{name}`."),
            ))
        })
    }
}

/// The page's routes, to merge into the listener's router.
pub fn routes(page: Page) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/mappings/{name}", get(mapping_page))
        .route("/mappings/{name}/{action}", post(act))
        .route("/login", get(login_form).post(login))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/assets/page.css", get(|| async { asset("text/css", CSS) }))
        .route(
            "/assets/page.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .with_state(page)
}

fn secure(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    secure(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn html(status: StatusCode, markup: Markup) -> Response {
    secure(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            markup.into_string(),
        )
            .into_response(),
    )
}

fn refused(status: StatusCode, message: &str) -> Response {
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Refused",
        StatusCode::UNAUTHORIZED => "Sign in needed",
        _ => "Error",
    };
    html(status, render::error(title, message))
}

/// A failure to read the figures: said on the page, logged, never with a secret (the errors
/// come from Postgres and name no password).
fn unavailable(e: impl std::fmt::Display) -> Response {
    tracing::warn!("status page: {e}");
    refused(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("The figures cannot be read now: {e}"),
    )
}

fn see_other(location: &str) -> Response {
    secure(
        (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location.to_owned())],
        )
            .into_response(),
    )
}

#[derive(Debug, Default, Deserialize)]
struct OverviewQuery {
    part: Option<String>,
}

async fn overview(
    State(page): State<Page>,
    headers: HeaderMap,
    Query(q): Query<OverviewQuery>,
) -> Response {
    if let Err(r) = page.check_view(&headers) {
        return *r;
    }
    let db = match page.db().await {
        Ok(db) => db,
        Err(e) => return unavailable(e),
    };
    match data::overview(&db, page.0.registry, &page.0.live).await {
        Ok(o) if q.part.as_deref() == Some("live") => {
            html(StatusCode::OK, render::overview_live(&o))
        }
        Ok(o) => html(StatusCode::OK, render::overview(&o)),
        Err(e) => unavailable(e),
    }
}

async fn mapping_page(
    State(page): State<Page>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Response {
    if let Err(r) = page.check_view(&headers) {
        return *r;
    }
    let mapping = match page.mapping(&name) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let db = match page.db().await {
        Ok(db) => db,
        Err(e) => return unavailable(e),
    };
    let live_only = q.part.as_deref() == Some("live");
    match data::detail(&db, page.0.registry, &page.0.live, mapping, q).await {
        Ok(d) if live_only => html(StatusCode::OK, render::detail_live(&d)),
        Ok(d) => html(
            StatusCode::OK,
            render::detail_page(&d, &page.0.guard.csrf_token()),
        ),
        Err(e) => unavailable(e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ActionForm {
    csrf: Option<String>,
    id: Option<String>,
    all: Option<String>,
    confirm: Option<String>,
}

async fn act(
    State(page): State<Page>,
    headers: HeaderMap,
    Path((name, action)): Path<(String, String)>,
    form: Result<Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let form = form.map(|Form(f)| f).unwrap_or_default();
    if let Err(r) = page.check_action(&headers, form.csrf.as_deref()) {
        return *r;
    }
    let mapping = match page.mapping(&name) {
        Ok(m) => m,
        Err(r) => return *r,
    };
    let back =
        |done: &str, n: u64| see_other(&format!("/mappings/{}?done={done}&n={n}", mapping.object));
    match action.as_str() {
        "retry" | "ignore" => {
            let selection = match (form.all.is_some(), form.id.as_deref().map(str::trim)) {
                (true, _) => Selection::All,
                (false, Some(id)) => match id.parse::<i32>() {
                    Ok(id) => Selection::Entries(vec![id]),
                    Err(_) => {
                        return refused(
                            StatusCode::BAD_REQUEST,
                            "Say which failed write: its number, or all.",
                        )
                    }
                },
                (false, None) => {
                    return refused(
                        StatusCode::BAD_REQUEST,
                        "Say which failed write: its number, or all.",
                    )
                }
            };
            let mut db = match crate::engine::connect(&page.0.database_url).await {
                Ok(db) => db,
                Err(e) => return unavailable(e),
            };
            let schema = page.0.registry.schema;
            let act = if action == "retry" {
                Action::Retry
            } else {
                Action::Ignore
            };
            let result = writer_admin::act(&mut db, schema, &[mapping], &selection, act).await;
            match result {
                Ok(n) => {
                    tracing::info!(mapping = mapping.object, action = %action, n, "status page: failed writes");
                    back(&action, n)
                }
                Err(e) => unavailable(crate::engine::db::describe(&e)),
            }
        }
        "pause" | "resume" => {
            let paused = action == "pause";
            let db = match page.db().await {
                Ok(db) => db,
                Err(e) => return unavailable(e),
            };
            let states = StateStore::new(page.0.registry.schema);
            let done = async {
                states.ensure(&*db, mapping.object, mapping.table).await?;
                states.set_paused(&*db, mapping.object, paused).await
            }
            .await;
            match done {
                Ok(_) => {
                    tracing::info!(mapping = mapping.object, action = %action, "status page: mapping");
                    back(&action, 0)
                }
                Err(e) => unavailable(crate::engine::db::describe(&e)),
            }
        }
        "reload" => {
            if form.confirm.as_deref() != Some("yes") {
                return html(
                    StatusCode::OK,
                    render::confirm_reload(mapping.object, &page.0.guard.csrf_token()),
                );
            }
            match start_reload(&page, mapping) {
                Ok(()) => back("reload", 0),
                Err(message) => refused(StatusCode::CONFLICT, &message),
            }
        }
        other => refused(
            StatusCode::NOT_FOUND,
            &format!("There is no action `{other}`."),
        ),
    }
}

/// Starts `forcesync reload`'s work for `mapping` in this process (a shadow-table reload).
fn start_reload(page: &Page, mapping: &'static MappingDescriptor) -> Result<(), String> {
    let Some(engine) = page.0.engine.clone() else {
        return Err("Reloading needs the running engine; use `forcesync reload`.".to_owned());
    };
    let mctx = engine.context(mapping).map_err(|e| e.to_string())?;
    if !page
        .0
        .reloading
        .lock()
        .map_err(|_| "the reload registry is unusable".to_owned())?
        .insert(mapping.object)
    {
        return Err(format!("{} is already reloading.", mapping.object));
    }
    let reloading = page.0.reloading.clone();
    tracing::info!(mapping = mapping.object, "status page: reload started");
    tokio::spawn(async move {
        match crate::engine::driver::load(&mctx, true).await {
            Ok(report) => tracing::info!(
                mapping = mapping.object,
                rows = report.rows,
                "status page: reload finished"
            ),
            Err(e) => tracing::warn!(mapping = mapping.object, "status page: reload failed: {e}"),
        }
        if let Ok(mut r) = reloading.lock() {
            r.remove(mapping.object);
        }
    });
    Ok(())
}

async fn login_form(State(page): State<Page>) -> Response {
    if !page.0.guard.requires_token() {
        return see_other("/");
    }
    html(StatusCode::OK, render::login(false))
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(page): State<Page>, Form(form): Form<LoginForm>) -> Response {
    match page.0.guard.session() {
        Some(session) if page.0.guard.token_matches(&form.token) => {
            let mut r = see_other("/");
            if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&session)) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Some(_) => {
            tracing::warn!("status page: a sign-in with a wrong admin token");
            html(StatusCode::UNAUTHORIZED, render::login(true))
        }
        None => see_other("/"),
    }
}
