//! Floor 2, the org and its services. `Org` (this file): the shared state of one emulated org
//! (cheap to clone, an `Arc`): schema, record store behind a `parking_lot::RwLock`, sessions,
//! API counters and limits, the emulated clock, validation rules / after-save updates / write
//! faults, and the CDC log. The services operating on it are the submodules: the single write
//! path (`write`, `Org::write`), automation (`rules`), the recycle bin, change-event
//! publishing (`cdc`), chaos and request-fault settings (`chaos`, `faults`), credentials and
//! streaming client state, persistence and seeding. They use the data floor (`crate::data`)
//! and never the routes or the server.

pub mod cdc;
pub mod chaos;
pub mod config;
pub mod credentials;
pub mod faults;
pub mod persist;
pub mod recycle_bin;
pub mod rules;
pub mod seed;
pub mod streaming;
pub mod write;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use axum::http::StatusCode;
use parking_lot::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use serde_json::{json, Value as Json};

use crate::data::error::ApiError;
use crate::data::ids::SfId;
use crate::data::schema::OrgSchema;
use crate::data::store::Store;
use crate::org::cdc::CdcLog;
use crate::org::config::Config;
use crate::org::rules::{AfterSave, ValidationRule};

/// An authenticated API session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub user_id: SfId,
    pub org_id: SfId,
    pub issued_ms: i64,
    pub expires_ms: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct LimitEntry {
    max: u64,
    used: u64,
}

/// Limits reported by `/limits` besides `DailyApiRequests` (name, default max).
const LIMIT_DEFAULTS: &[(&str, u64)] = &[
    ("ActiveScratchOrgs", 3),
    ("ConcurrentAsyncGetReportInstances", 200),
    ("ConcurrentSyncReportRuns", 20),
    ("DailyAsyncApexExecutions", 250_000),
    ("DailyBulkApiBatches", 15_000),
    ("DailyBulkApiRequests", 10_000),
    ("DailyBulkV2QueryFileStorageMB", 976_562),
    ("DailyBulkV2QueryJobs", 10_000),
    ("DailyDeliveredPlatformEvents", 10_000),
    ("DailyDurableGenericStreamingApiEvents", 10_000),
    ("DailyDurableStreamingApiEvents", 10_000),
    ("DailyGenericStreamingApiEvents", 10_000),
    ("DailyStandardVolumePlatformEvents", 10_000),
    ("DailyStreamingApiEvents", 10_000),
    ("DailyWorkflowEmails", 390),
    ("DataStorageMB", 1_024),
    ("DurableStreamingApiConcurrentClients", 20),
    ("FileStorageMB", 1_024),
    ("HourlyAsyncReportRuns", 1_200),
    ("HourlyDashboardRefreshes", 200),
    ("HourlyDashboardResults", 5_000),
    ("HourlyODataCallout", 10_000),
    ("HourlySyncReportRuns", 500),
    ("HourlyTimeBasedWorkflow", 50),
    ("MassEmail", 10),
    ("SingleEmail", 15),
    ("StreamingApiConcurrentClients", 20),
];

pub(crate) struct OrgInner {
    /// The metadata as of now: replaced whole when an administrator adds a field
    /// (`add_custom_field`); holders of an older `Arc` keep a consistent older view.
    schema: RwLock<Arc<OrgSchema>>,
    pub(crate) store: crate::data::tracked::Tracked<Store>,
    pub(crate) config: Config,
    faults: crate::org::faults::Faults,
    chaos: crate::org::chaos::Chaos,
    pub(crate) cdc: CdcLog,
    auth: crate::org::credentials::AuthState,
    streaming: crate::org::streaming::Hub,
    sessions: Mutex<HashMap<String, Session>>,
    session_seconds: AtomicU64,
    api_window: Mutex<crate::data::api_window::ApiWindow>,
    api_max: AtomicU64,
    endpoint_counts: Mutex<BTreeMap<String, u64>>,
    limits: Mutex<BTreeMap<String, LimitEntry>>,
    clock_offset_ms: AtomicI64,
    last_stamp_ms: AtomicI64,
    pub(crate) rules: RwLock<Vec<ValidationRule>>,
    pub(crate) after_save: RwLock<Vec<AfterSave>>,
    pub(crate) lock_failures: AtomicU32,
    base_url: RwLock<String>,
    org_id: SfId,
    user_id: SfId,
}

/// The emulated org. Clone freely: clones share state.
#[derive(Clone)]
pub struct Org {
    pub(crate) inner: Arc<OrgInner>,
}

impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Org")
            .field("org_id", &self.inner.org_id)
            .field("base_url", &*self.inner.base_url.read())
            .finish()
    }
}

impl Org {
    /// A new empty org over `schema`.
    pub fn new(schema: OrgSchema, config: Config) -> Org {
        let schema = Arc::new(schema);
        let store = Store::new(&schema);
        let cdc = CdcLog::default();
        for o in &schema.objects {
            cdc.set_object(o.clone());
        }
        let limits = LIMIT_DEFAULTS
            .iter()
            .map(|(k, m)| (k.to_string(), LimitEntry { max: *m, used: 0 }))
            .collect();
        Org {
            inner: Arc::new(OrgInner {
                store: crate::data::tracked::Tracked::new(store),
                cdc,
                faults: crate::org::faults::Faults::default(),
                chaos: crate::org::chaos::Chaos::default(),
                auth: crate::org::credentials::AuthState::default(),
                streaming: crate::org::streaming::Hub::new(
                    std::time::Duration::from_millis(config.streaming_connect_timeout_ms),
                    std::time::Duration::from_millis(config.streaming_client_expiry_ms),
                )
                .with_pubsub_keepalive(std::time::Duration::from_millis(
                    config.pubsub_keepalive_ms,
                )),
                sessions: Mutex::new(HashMap::new()),
                session_seconds: AtomicU64::new(config.session_seconds),
                api_window: Mutex::new(crate::data::api_window::ApiWindow::default()),
                api_max: AtomicU64::new(config.api_limit),
                endpoint_counts: Mutex::new(BTreeMap::new()),
                limits: Mutex::new(limits),
                clock_offset_ms: AtomicI64::new(0),
                last_stamp_ms: AtomicI64::new(0),
                rules: RwLock::new(Vec::new()),
                after_save: RwLock::new(Vec::new()),
                lock_failures: AtomicU32::new(0),
                base_url: RwLock::new(String::new()),
                org_id: SfId::generate("00D", 1),
                user_id: SfId::generate("005", 1),
                schema: RwLock::new(schema),
                config,
            }),
        }
    }

    /// The object metadata as of now (it changes only by `add_custom_field`; field
    /// positions never move, so an older copy still reads records right).
    pub fn schema(&self) -> Arc<OrgSchema> {
        self.inner.schema.read().clone()
    }

    /// Adds a custom field to `object`, as an administrator does in Setup (see
    /// `ObjectSchema::with_custom_field` for what is accepted): from now on describe shows it,
    /// writes and SOQL accept it, stored records read it as null, and change events carry it
    /// (Pub/Sub events with a new schema and `schema_id`; events published before keep
    /// theirs). Returns the object's new metadata.
    pub fn add_custom_field(
        &self,
        object: &str,
        field: &Json,
    ) -> Result<Arc<crate::data::schema::ObjectSchema>, ApiError> {
        // Under the store's write lock: no transaction runs across the change (a transaction
        // reads the schema once it holds that lock).
        let mut st = self.inner.store.write();
        let current = self.schema();
        let oi = current.object_index(object).ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("The requested resource does not exist: no object {object:?}"),
            )
        })?;
        let changed = current.objects[oi]
            .with_custom_field(field)
            .map_err(|m| ApiError::bad_request("INVALID_FIELD", m))?;
        let next = Arc::new(current.with_object(oi, changed));
        let o = next.objects[oi].clone();
        st.table_mut(oi)
            .set_object(o.clone(), &next.rule_fields(oi));
        self.inner.cdc.set_object(o.clone());
        *self.inner.schema.write() = next;
        Ok(o)
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Read access to all records. Keep it short: writers wait.
    pub fn read(&self) -> RwLockReadGuard<'_, Store> {
        self.inner.store.read()
    }

    /// Write access to the store for bulk loading (seeding, persistence). Normal writes go
    /// through `Org::write`.
    pub fn store_mut(&self) -> RwLockWriteGuard<'_, Store> {
        self.inner.store.write()
    }

    /// The CDC log.
    pub fn cdc(&self) -> &CdcLog {
        &self.inner.cdc
    }

    /// Request faults (latency, 503/500 shares) applied by `routes::faults::layer`.
    pub fn faults(&self) -> &crate::org::faults::Faults {
        &self.inner.faults
    }

    /// Chaos-test faults: ambiguous writes, query and Bulk faults, targeted lock failures,
    /// slow transactions (`crate::org::chaos`).
    pub fn chaos(&self) -> &crate::org::chaos::Chaos {
        &self.inner.chaos
    }

    /// Counts every write-lock acquisition of the store: persistence saves when it moved.
    pub fn data_generation(&self) -> u64 {
        self.inner.store.generation()
    }

    /// Authentication state: refresh tokens and the JWT verification key.
    pub fn auth(&self) -> &crate::org::credentials::AuthState {
        &self.inner.auth
    }

    /// Streaming state: CometD clients and their timing.
    pub fn streaming(&self) -> &crate::org::streaming::Hub {
        &self.inner.streaming
    }

    /// The org's Id (`00D…`).
    pub fn org_id(&self) -> SfId {
        self.inner.org_id
    }

    /// The admin user's Id (`005…`): the only user, owner and modifier of every record.
    pub fn user_id(&self) -> SfId {
        self.inner.user_id
    }

    /// The base URL the emulator answers on (`http://127.0.0.1:8484`), set by `server::start`.
    pub fn base_url(&self) -> String {
        self.inner.base_url.read().clone()
    }

    pub fn set_base_url(&self, url: &str) {
        *self.inner.base_url.write() = url.trim_end_matches('/').to_string();
    }

    /// The identity URL `…/id/<org>/<user>`.
    pub fn identity_url(&self) -> String {
        format!(
            "{}/id/{}/{}",
            self.base_url(),
            self.org_id(),
            self.user_id()
        )
    }

    // ---- clock ----

    /// Emulated now, epoch ms (wall clock plus the advance set by `advance_clock`).
    pub fn now_ms(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        wall + self.inner.clock_offset_ms.load(Ordering::Relaxed)
    }

    /// Moves emulated time forward (CDC retention, session expiry).
    pub fn advance_clock(&self, ms: i64) {
        self.inner.clock_offset_ms.fetch_add(ms, Ordering::Relaxed);
    }

    /// Timestamp for system fields: emulated now truncated to whole seconds (Salesforce stores
    /// datetimes with second precision), never going backwards.
    pub fn stamp_ms(&self) -> i64 {
        let now = self.now_ms();
        let s = now - now.rem_euclid(1000);
        let prev = self.inner.last_stamp_ms.fetch_max(s, Ordering::Relaxed);
        s.max(prev)
    }

    /// A timestamp strictly after `ms` (one second later, second precision) that stamps after
    /// it never go below: emulated automation changing a record after a write.
    pub fn stamp_after(&self, ms: i64) -> i64 {
        let s = self.stamp_ms().max(ms + 1000);
        let prev = self.inner.last_stamp_ms.fetch_max(s, Ordering::Relaxed);
        s.max(prev)
    }

    /// `(clock offset, last system stamp)` in ms, for persistence.
    pub(crate) fn clock_state(&self) -> (i64, i64) {
        (
            self.inner.clock_offset_ms.load(Ordering::Relaxed),
            self.inner.last_stamp_ms.load(Ordering::Relaxed),
        )
    }

    /// Restores the clock saved by `clock_state` (never moves either value backwards).
    pub(crate) fn restore_clock(&self, offset_ms: i64, last_stamp_ms: i64) {
        self.inner
            .clock_offset_ms
            .fetch_max(offset_ms, Ordering::Relaxed);
        self.inner
            .last_stamp_ms
            .fetch_max(last_stamp_ms, Ordering::Relaxed);
    }

    // ---- sessions ----

    /// Mints a session for the admin user (lifetime from config / `set_session_seconds`).
    pub fn create_session(&self) -> Session {
        let now = self.now_ms();
        let secs = self.inner.session_seconds.load(Ordering::Relaxed) as i64;
        let token = format!(
            "{}!AQ{}{}",
            self.org_id().as_15(),
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let s = Session {
            token: token.clone(),
            user_id: self.user_id(),
            org_id: self.org_id(),
            issued_ms: now,
            expires_ms: now + secs * 1000,
        };
        self.inner.sessions.lock().insert(token, s.clone());
        s
    }

    /// Whether `username` / `password` (with the security token appended, as Salesforce's
    /// password logins expect) match the configured credentials.
    pub fn check_password(&self, username: &str, password_and_token: &str) -> bool {
        let c = &self.inner.config;
        username.eq_ignore_ascii_case(&c.username)
            && password_and_token == format!("{}{}", c.password, c.security_token)
    }

    /// Whether an OAuth client id / secret pair matches the configured connected app.
    pub fn check_client(&self, client_id: &str, client_secret: Option<&str>) -> bool {
        let c = &self.inner.config;
        client_id == c.client_id && client_secret.is_none_or(|s| s == c.client_secret)
    }

    /// The live session for a token (None when unknown or expired). Use refreshes expiry like
    /// Salesforce's inactivity timeout.
    pub fn session(&self, token: &str) -> Option<Session> {
        let now = self.now_ms();
        let secs = self.inner.session_seconds.load(Ordering::Relaxed) as i64;
        let mut g = self.inner.sessions.lock();
        let s = g.get_mut(token)?;
        if s.expires_ms <= now {
            g.remove(token);
            return None;
        }
        s.expires_ms = s.expires_ms.max(now + secs * 1000);
        Some(s.clone())
    }

    /// Ends one session.
    pub fn revoke_session(&self, token: &str) -> bool {
        self.inner.sessions.lock().remove(token).is_some()
    }

    /// Invalidates every session (clients get 401 INVALID_SESSION_ID and must log in again).
    pub fn expire_all(&self) {
        self.inner.sessions.lock().clear();
    }

    pub fn set_session_seconds(&self, secs: u64) {
        self.inner.session_seconds.store(secs, Ordering::Relaxed);
    }

    pub fn session_seconds(&self) -> u64 {
        self.inner.session_seconds.load(Ordering::Relaxed)
    }

    // ---- API counters and limits ----

    /// Counts one API request against `DailyApiRequests` and the per-endpoint counter.
    /// Fails with 403 REQUEST_LIMIT_EXCEEDED once the daily limit is used up.
    pub fn count_api_request(&self, endpoint: &str) -> Result<(u64, u64), ApiError> {
        let max = self.inner.api_max.load(Ordering::Relaxed);
        let now = self.now_ms();
        let mut window = self.inner.api_window.lock();
        let used = window.used(now);
        if used >= max {
            return Err(ApiError::limit_exceeded(&format!(
                "DailyApiRequests: {used}/{max}"
            )));
        }
        let used = window.add(now);
        drop(window);
        *self
            .inner
            .endpoint_counts
            .lock()
            .entry(endpoint.to_string())
            .or_default() += 1;
        Ok((used, max))
    }

    /// `(used, max)` of `DailyApiRequests`: requests of the last 24 hours of emulated time
    /// (see `api_window`).
    pub fn api_usage(&self) -> (u64, u64) {
        (
            self.inner.api_window.lock().used(self.now_ms()),
            self.inner.api_max.load(Ordering::Relaxed),
        )
    }

    /// The `Sforce-Limit-Info` header value.
    pub fn limit_info(&self) -> String {
        let (u, m) = self.api_usage();
        format!("api-usage={u}/{m}")
    }

    pub fn set_api_limit(&self, max: u64) {
        self.inner.api_max.store(max, Ordering::Relaxed);
    }

    /// Per-endpoint request counts (`"GET /services/data/{version}/sobjects/{object}"` → n).
    pub fn endpoint_counters(&self) -> BTreeMap<String, u64> {
        self.inner.endpoint_counts.lock().clone()
    }

    /// Resets API usage and every counter.
    pub fn reset_counters(&self) {
        self.inner.api_window.lock().clear();
        self.inner.endpoint_counts.lock().clear();
        for e in self.inner.limits.lock().values_mut() {
            e.used = 0;
        }
    }

    /// Uses `n` of a named limit (`DailyBulkApiBatches`, `DailyBulkV2QueryJobs`, …);
    /// 403 REQUEST_LIMIT_EXCEEDED when it would go over.
    pub fn consume_limit(&self, name: &str, n: u64) -> Result<(), ApiError> {
        let mut g = self.inner.limits.lock();
        let e = g.entry(name.to_string()).or_insert(LimitEntry {
            max: u64::MAX,
            used: 0,
        });
        if e.used + n > e.max {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "REQUEST_LIMIT_EXCEEDED",
                format!("{name} Limit exceeded."),
            ));
        }
        e.used += n;
        Ok(())
    }

    /// `(max, used)` of a named limit (`DailyDeliveredPlatformEvents`, …).
    pub fn limit(&self, name: &str) -> Option<(u64, u64)> {
        self.inner.limits.lock().get(name).map(|e| (e.max, e.used))
    }

    /// Sets the max of a named limit (`DailyApiRequests` included).
    pub fn set_limit(&self, name: &str, max: u64) {
        if name == "DailyApiRequests" {
            return self.set_api_limit(max);
        }
        self.inner
            .limits
            .lock()
            .entry(name.to_string())
            .or_insert(LimitEntry { max, used: 0 })
            .max = max;
    }

    /// The `/limits` body.
    pub fn limits_json(&self) -> Json {
        let mut m = serde_json::Map::new();
        let (u, max) = self.api_usage();
        m.insert(
            "DailyApiRequests".into(),
            json!({"Max": max, "Remaining": max.saturating_sub(u)}),
        );
        let records: usize = self.read().tables.iter().map(|t| t.total_count()).sum();
        // The CometD clients alive now count against the concurrent-client allocation (REST
        // API Developer Guide, "Limits": `DurableStreamingApiConcurrentClients`; Streaming API
        // Developer Guide, "Streaming API Allocations", maximum concurrent clients).
        let streaming = self.streaming();
        let clients = streaming.clients.live(streaming.client_expiry()) as u64;
        for (k, e) in self.inner.limits.lock().iter() {
            // Salesforce counts ~2 KB per record against data storage.
            let used = match k.as_str() {
                "DataStorageMB" => (records as u64 * 2) / 1024,
                "DurableStreamingApiConcurrentClients" => clients,
                _ => e.used,
            };
            m.insert(
                k.clone(),
                json!({"Max": e.max, "Remaining": e.max.saturating_sub(used)}),
            );
        }
        Json::Object(m)
    }

    // ---- rules, automation and faults ----

    /// Adds a validation rule (reject matching records with FIELD_CUSTOM_VALIDATION_EXCEPTION).
    pub fn add_validation_rule(&self, rule: ValidationRule) {
        self.inner.rules.write().push(rule);
    }

    /// Adds an "after save" field update (emulated automation).
    pub fn add_after_save(&self, a: AfterSave) {
        self.inner.after_save.write().push(a);
    }

    pub fn validation_rules(&self) -> Vec<ValidationRule> {
        self.inner.rules.read().clone()
    }

    pub fn after_saves(&self) -> Vec<AfterSave> {
        self.inner.after_save.read().clone()
    }

    /// Removes every validation rule and after-save update.
    pub fn clear_automation(&self) {
        self.inner.rules.write().clear();
        self.inner.after_save.write().clear();
    }

    /// The next `n` record writes fail with UNABLE_TO_LOCK_ROW.
    pub fn fail_next_writes(&self, n: u32) {
        self.inner.lock_failures.store(n, Ordering::Relaxed);
    }

    /// Empties every table and the CDC log, removes automation and faults, resets counters
    /// (sessions stay valid).
    pub fn reset(&self) {
        self.inner.store.write().clear();
        self.inner.cdc.clear();
        self.clear_automation();
        self.fail_next_writes(0);
        self.inner.faults.clear();
        self.inner.chaos.clear();
        self.reset_counters();
    }
}
