//! The sync engine: keeps every mapped table in step with Salesforce (this module's read half:
//! initial load, Change Data Capture, polling, repair) and Salesforce in step with the app's
//! writes ([`writer`]).
//!
//! [`Engine::run`] runs every mapping's driver ([`driver`]): it takes the mapping's lease
//! ([`lease`]), loads the table when it was never loaded, then streams change events (or polls),
//! repairs drift on the mapping's `poll_seconds`, and moves the mapping's state ([`state`]) as
//! things happen: budget exhausted, a field gone from Salesforce, the org refusing events. The
//! operations it runs ([`load`], [`poll`], [`cdc`], the repairs [`reread`], [`deletes`],
//! [`formulas`]) import neither one another nor the driver. Every decision is made by a pure
//! function in the module named after it; the loops only move data. See `ENGINE.md`.

pub mod activity;
pub mod adopt;
pub mod allocations;
pub mod apply;
pub(crate) mod cdc;
pub(crate) mod conflict;
pub mod convert;
pub mod db;
pub(crate) mod degraded;
pub mod deletes;
pub mod driver;
pub(crate) mod filter;
pub mod formulas;
pub mod hub;
pub mod ingest;
#[cfg(test)]
mod layering;
pub mod lease;
pub(crate) mod load;
pub mod poll;
pub(crate) mod read_errors;
pub mod reread;
pub(crate) mod row_lock;
pub(crate) mod soql;
pub mod state;
pub(crate) mod swap;
pub mod system;
#[cfg(test)]
pub(crate) mod testing;
pub mod verify;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::adapter::{MappingDescriptor, Registry};
use crate::salesforce::{self, Client, SfError};
pub use driver::run_mapping;
use filter::Filter;
pub use load::bulk_load_query;
use state::{StateStore, SyncState};

/// How the engine runs; [`EngineConfig::new`] gives the defaults.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// `postgres://…` of the app's database.
    pub database_url: String,
    /// Objects to run (all mappings when empty).
    pub only: Vec<String>,
    /// Initial loads of more records than this use a Bulk API 2.0 query job.
    pub bulk_threshold: u64,
    /// How far before its cursor each poll starts again: Salesforce stamps SystemModstamp when a
    /// transaction starts, so a long transaction becomes visible after the poller passed it.
    pub lookback: Duration,
    /// Records per polling page.
    pub poll_page: u32,
    /// How often formula fields (which do not bump SystemModstamp) are refreshed; `None`: never.
    pub formula_refresh: Option<Duration>,
    /// How often an engine tries to take mappings held by others (and retries after errors).
    pub lease_retry: Duration,
    /// Change events buffered during an initial load before falling back to a catch-up poll.
    pub load_buffer: usize,
    /// How long a mapping in `SCHEMA_CHANGED` waits before trying again (it resumes by itself
    /// once the field is back).
    pub schema_retry: Duration,
    /// How often a streaming mapping polls while the org refuses streaming (longer only when the
    /// mapping's API budget demands it; see [`degraded`]).
    pub degraded_poll: Duration,
    /// How often the org's streaming allocations are read from `/limits` while a mapping streams
    /// (one API call each; also at start and soon after a refusal).
    pub limits_every: Duration,
    /// The wire protocol change events stream over: the Pub/Sub API at the Salesforce client's
    /// `pubsub_url` (falling back to CometD for the run when the org does not offer it), or
    /// CometD. `None`: the registry's `streaming_transport` (`forcesync.toml`, Pub/Sub by
    /// default).
    pub streaming_transport: Option<hub::Transport>,
}

impl EngineConfig {
    pub fn new(database_url: impl Into<String>) -> EngineConfig {
        EngineConfig {
            database_url: database_url.into(),
            only: Vec::new(),
            bulk_threshold: 50_000,
            lookback: Duration::from_secs(120),
            poll_page: 2_000,
            formula_refresh: Some(Duration::from_secs(3_600)),
            lease_retry: Duration::from_secs(3),
            load_buffer: 100_000,
            schema_retry: Duration::from_secs(30),
            degraded_poll: degraded::DEFAULT_INTERVAL,
            limits_every: allocations::EVERY,
            streaming_transport: None,
        }
    }
}

/// Everything one mapping's loop works with.
pub struct MappingCtx {
    pub mapping: &'static MappingDescriptor,
    /// The client, scoped to the mapping's daily budget.
    pub client: Client,
    pub filter: Filter,
    pub states: StateStore,
    pub config: Arc<EngineConfig>,
    /// Child mappings' relationship columns naming this mapping's records by external ID: they
    /// follow when a parent's external ID changes ([`apply::follow_parent_keys`]). Set by
    /// [`Engine::context`]; empty otherwise.
    pub children: Vec<apply::ChildLink>,
    /// The streaming client the mapping's channel rides on: the engine's one client for every
    /// mapping it holds (set by [`Engine::context`]); a context of its own has its own.
    pub hub: hub::StreamHub,
}

impl MappingCtx {
    pub fn new(
        mapping: &'static MappingDescriptor,
        client: &Client,
        config: Arc<EngineConfig>,
    ) -> Result<MappingCtx, EngineError> {
        let filter = Filter::of(mapping).map_err(EngineError::Config)?;
        let budget = u64::from(mapping.sync.max_daily_api_calls);
        let client = if budget > 0 {
            client.scoped(mapping.object, budget)
        } else {
            client.scoped(mapping.object, u64::MAX)
        };
        Ok(MappingCtx {
            mapping,
            hub: hub::StreamHub::new(&client, config.streaming_transport.unwrap_or_default()),
            client,
            filter,
            states: StateStore::new(mapping.schema),
            config,
            children: Vec::new(),
        })
    }

    /// The Salesforce fields read for this mapping.
    pub fn select_list(&self) -> Vec<String> {
        soql::select_list(self.mapping, &self.filter)
    }

    /// Whether a `changeOrigin` names this engine's own client.
    pub fn is_own_origin(&self, change_origin: &str) -> bool {
        let ours = format!("client={}", self.client.config().call_client);
        change_origin
            .split(';')
            .any(|part| part.trim().trim_end_matches('/') == ours)
    }

    /// A new Postgres connection for this mapping.
    pub async fn connect(&self) -> Result<tokio_postgres::Client, EngineError> {
        connect(&self.config.database_url).await
    }
}

/// An engine failure, classified for the mapping loop.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("Postgres: {}", crate::engine::db::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    #[error("Salesforce: {0}")]
    Salesforce(#[from] SfError),
    #[error("configuration: {0}")]
    Config(String),
}

impl EngineError {
    /// The state a mapping moves to because of this error, with the message to show.
    pub fn state(&self, mapping: &MappingDescriptor) -> (SyncState, String) {
        match self {
            EngineError::Salesforce(e) if e.is_budget() => (
                SyncState::BudgetExhausted,
                format!("{e}; resumes when the daily budget returns"),
            ),
            EngineError::Salesforce(e) if e.is_schema_change() => (
                SyncState::SchemaChanged,
                format!(
                    "Salesforce rejected a mapped field of {}: {e}. Fix: run `forcesync describe pull {}`, \
                     rebuild, and `forcesync migrate` (or restore the field in Salesforce); the mapping \
                     resumes by itself when the field is back",
                    mapping.object, mapping.object
                ),
            ),
            other => (SyncState::Error, other.to_string()),
        }
    }
}

/// Opens a Postgres connection (TLS as the URL's `sslmode` asks; see [`db`]).
pub async fn connect(database_url: &str) -> Result<tokio_postgres::Client, EngineError> {
    db::connect(database_url).await
}

/// The sync engine over a generated registry.
pub struct Engine {
    pub registry: &'static Registry,
    pub config: Arc<EngineConfig>,
    pub client: Client,
    /// The mappings this engine holds now (the writer sends only these).
    pub held: lease::Held,
    /// The one streaming client of this engine, carrying every streaming mapping it holds.
    pub hub: hub::StreamHub,
}

impl Engine {
    pub fn new(
        registry: &'static Registry,
        mut config: EngineConfig,
        salesforce: salesforce::Config,
    ) -> Result<Engine, EngineError> {
        let client = Client::new(salesforce)?;
        let transport = *config
            .streaming_transport
            .get_or_insert(registry.streaming_transport);
        Ok(Engine {
            registry,
            hub: hub::StreamHub::new(&client, transport),
            config: Arc::new(config),
            client,
            held: lease::Held::default(),
        })
    }

    /// The mappings this engine runs.
    pub fn mappings(&self) -> Vec<&'static MappingDescriptor> {
        self.registry
            .mappings
            .iter()
            .copied()
            .filter(|m| {
                self.config.only.is_empty()
                    || self
                        .config
                        .only
                        .iter()
                        .any(|o| o.eq_ignore_ascii_case(m.object))
            })
            .collect()
    }

    /// Applies the engine's system migrations and creates a state row for every mapping.
    pub async fn migrate(&self) -> Result<Vec<&'static str>, EngineError> {
        let mut db = connect(&self.config.database_url).await?;
        let applied = system::migrate(&mut db, self.registry.schema).await?;
        let states = StateStore::new(self.registry.schema);
        for mapping in self.registry.mappings {
            states.ensure(&db, mapping.object, mapping.table).await?;
        }
        Ok(applied)
    }

    /// The context of one mapping.
    pub fn context(&self, mapping: &'static MappingDescriptor) -> Result<MappingCtx, EngineError> {
        let mut ctx = MappingCtx::new(mapping, &self.client, self.config.clone())?;
        ctx.children = apply::children_of(self.registry.mappings, mapping);
        ctx.hub = self.hub.clone();
        Ok(ctx)
    }

    /// Runs every mapping this engine can lease until `shutdown` turns true; mappings held by
    /// another engine are taken over when it dies.
    pub async fn run(&self, shutdown: watch::Receiver<bool>) -> Result<(), EngineError> {
        self.migrate().await?;
        let watcher = if self.mappings().iter().any(|m| m.sync.streaming) {
            Some(tokio::spawn(allocations::watch(
                self.client.clone(),
                self.config.database_url.clone(),
                self.registry.schema,
                self.hub.clone(),
                self.config.limits_every,
                shutdown.clone(),
            )))
        } else {
            None
        };
        let mut tasks = Vec::new();
        for mapping in self.mappings() {
            let ctx = self.context(mapping)?;
            let shutdown = shutdown.clone();
            let held = self.held.clone();
            tasks.push(tokio::spawn(async move {
                run_mapping(ctx, held, shutdown).await
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
        // A clean stop gives the streaming client's place back at once.
        self.hub.shutdown().await;
        if let Some(watcher) = watcher {
            watcher.abort();
        }
        Ok(())
    }
}
