//! The Salesforce API client shared by the engine's read half (initial load, CDC, polling) and its
//! write half (the trigger-log writer).
//!
//! [`Client`] is cheap to clone (an `Arc` inside). It logs in with one of the OAuth flows
//! ([`Credentials`]), keeps and refreshes the session, sends every call through one retry loop
//! ([`http`]), counts calls by [`CallKind`] for the current UTC day, reads the org's usage from
//! `Sforce-Limit-Info`, and enforces two daily budgets: a global one (refuse calls when the org's
//! remaining calls fall to [`Config::org_reserve`], and an optional cap on this client's own
//! calls) and a per-mapping one through [`Client::scoped`]. A call refused by a budget fails with
//! [`SfErrorKind::BudgetExhausted`] and is not retried.
//!
//! API areas: [`rest`] (query, count, retrieve, updated/deleted, describe, single records),
//! [`collections`] (sObject Collections writes), [`bulk`] (Bulk API 2.0), [`streaming`] and
//! [`cometd`] (CometD), [`pubsub`] (the Pub/Sub API: gRPC, Avro), [`limits`] (`/limits`).
//! Auth and streaming calls are counted but do not consume the daily budgets (Salesforce does not
//! count them as API requests).

pub(crate) mod auth;
pub(crate) mod backoff;
pub mod bulk;
pub(crate) mod collections;
pub mod cometd;
pub(crate) mod error;
pub mod http;
pub mod limits;
pub mod pubsub;
pub(crate) mod rest;
pub mod streaming;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{NaiveDate, Utc};

pub use auth::{Credentials, Secret};
pub use error::{ErrorClass, SfError, SfErrorKind};
pub use http::{ApiUsage, RetryPolicy};

/// Everything a [`Client`] needs. Build with [`Config::new`] and adjust the public fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to log in: `https://login.salesforce.com`, `https://test.salesforce.com`, a My Domain
    /// URL, or `http://…` for a local org. The session's `instance_url` is used afterwards.
    pub login_url: String,
    /// REST API version without the `v`, e.g. `59.0`.
    pub api_version: String,
    pub credentials: Credentials,
    /// Sent as `Sforce-Call-Options: client=<call_client>` on every call, so the change events of
    /// this client's writes are recognisable (`changeOrigin` … `client=forcesync`).
    pub call_client: String,
    pub retry: RetryPolicy,
    /// Refuse calls once the org's remaining daily API calls (from `Sforce-Limit-Info`) are at or
    /// below this many, leaving them to the org's other integrations.
    pub org_reserve: u64,
    /// Optional cap on the calls this client makes per UTC day, whatever the org has left.
    pub max_daily_calls: Option<u64>,
    /// Whole-request timeout for ordinary calls (CometD connects use the server's advice).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// The Pub/Sub API endpoint (`https://api.pubsub.salesforce.com:7443`; `http://…` for a local
    /// org serving it on its own port).
    pub pubsub_url: String,
}

impl Config {
    /// Defaults: API 59.0, client `forcesync`, [`RetryPolicy::default`], a reserve of 1,000 org
    /// calls, no own cap, 120 s request and 10 s connect timeouts.
    pub fn new(login_url: impl Into<String>, credentials: Credentials) -> Config {
        Config {
            login_url: login_url.into(),
            api_version: "59.0".to_owned(),
            credentials,
            call_client: "forcesync".to_owned(),
            retry: RetryPolicy::default(),
            org_reserve: 1_000,
            max_daily_calls: None,
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            pubsub_url: pubsub::DEFAULT_ENDPOINT.to_owned(),
        }
    }
}

/// What a call is for; calls are counted per kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallKind {
    Auth,
    Query,
    Bulk,
    Collections,
    Streaming,
    Describe,
    Other,
}

impl CallKind {
    pub const ALL: [CallKind; 7] = [
        CallKind::Auth,
        CallKind::Query,
        CallKind::Bulk,
        CallKind::Collections,
        CallKind::Streaming,
        CallKind::Describe,
        CallKind::Other,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// Whether the call consumes the daily budgets (Salesforce counts it as an API request).
    pub fn is_budgeted(self) -> bool {
        !matches!(self, CallKind::Auth | CallKind::Streaming)
    }
}

/// Calls made today (UTC), by kind. Every HTTP attempt counts, retries included.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallCounts {
    counts: [u64; 7],
}

impl CallCounts {
    pub fn get(&self, kind: CallKind) -> u64 {
        self.counts[kind.index()]
    }

    /// All calls.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Calls that consume the daily budgets (all but auth and streaming).
    pub fn budgeted(&self) -> u64 {
        CallKind::ALL
            .iter()
            .filter(|k| k.is_budgeted())
            .map(|k| self.get(*k))
            .sum()
    }
}

/// Counts that start over each UTC day.
#[derive(Debug)]
struct DailyCounts {
    day: NaiveDate,
    counts: CallCounts,
}

impl DailyCounts {
    fn new() -> Self {
        DailyCounts {
            day: Utc::now().date_naive(),
            counts: CallCounts::default(),
        }
    }

    fn roll(&mut self, today: NaiveDate) {
        if self.day != today {
            self.day = today;
            self.counts = CallCounts::default();
        }
    }
}

/// A mapping's daily budget (`max_daily_api_calls`), shared by every handle scoped to it.
#[derive(Debug)]
struct MappingBudget {
    name: String,
    max: Mutex<u64>,
    counts: Mutex<DailyCounts>,
}

/// A mapping's calls today against its budget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingUsage {
    pub mapping: String,
    pub max_daily_calls: u64,
    pub counts: CallCounts,
}

impl MappingUsage {
    /// Budgeted calls used today.
    pub fn used(&self) -> u64 {
        self.counts.budgeted()
    }
}

struct Inner {
    config: Config,
    http: reqwest::Client,
    session: tokio::sync::RwLock<Option<auth::Session>>,
    login_lock: tokio::sync::Mutex<()>,
    counts: Mutex<DailyCounts>,
    usage: Mutex<Option<ApiUsage>>,
    mappings: Mutex<HashMap<String, Arc<MappingBudget>>>,
}

/// The Salesforce client. Cheap to clone; clones share the session, counters and budgets.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    mapping: Option<Arc<MappingBudget>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("login_url", &self.inner.config.login_url)
            .field("api_version", &self.inner.config.api_version)
            .field("credentials", &self.inner.config.credentials)
            .field("mapping", &self.mapping.as_ref().map(|m| m.name.as_str()))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `config`. Does not call Salesforce: the first call logs in (or call
    /// [`Client::login`] to fail fast on bad credentials).
    pub fn new(config: Config) -> Result<Client, SfError> {
        auth::check_login_url(&config.login_url)?;
        let http = http::build_http(&config, true)?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                http,
                session: tokio::sync::RwLock::new(None),
                login_lock: tokio::sync::Mutex::new(()),
                counts: Mutex::new(DailyCounts::new()),
                usage: Mutex::new(None),
                mappings: Mutex::new(HashMap::new()),
            }),
            mapping: None,
        })
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// A handle whose calls also count against `mapping`'s daily budget of `max_daily_calls`.
    /// Handles scoped to the same mapping share one budget (the latest `max_daily_calls` wins).
    pub fn scoped(&self, mapping: &str, max_daily_calls: u64) -> Client {
        let budget = {
            let mut mappings = self.inner.mappings.lock().expect("mapping budgets");
            let budget = mappings
                .entry(mapping.to_owned())
                .or_insert_with(|| {
                    Arc::new(MappingBudget {
                        name: mapping.to_owned(),
                        max: Mutex::new(max_daily_calls),
                        counts: Mutex::new(DailyCounts::new()),
                    })
                })
                .clone();
            *budget.max.lock().expect("budget max") = max_daily_calls;
            budget
        };
        Client {
            inner: self.inner.clone(),
            mapping: Some(budget),
        }
    }

    /// This client's calls today (all mappings), by kind.
    pub fn call_counts(&self) -> CallCounts {
        let mut counts = self.inner.counts.lock().expect("call counts");
        counts.roll(Utc::now().date_naive());
        counts.counts
    }

    /// The scoped mapping's calls today against its budget (`None` for an unscoped handle).
    pub fn mapping_usage(&self) -> Option<MappingUsage> {
        self.mapping.as_ref().map(|m| {
            let mut counts = m.counts.lock().expect("mapping counts");
            counts.roll(Utc::now().date_naive());
            MappingUsage {
                mapping: m.name.clone(),
                max_daily_calls: *m.max.lock().expect("budget max"),
                counts: counts.counts,
            }
        })
    }

    /// The org's API usage from the latest `Sforce-Limit-Info` header (`None` before any call).
    pub fn api_usage(&self) -> Option<ApiUsage> {
        *self.inner.usage.lock().expect("api usage")
    }

    /// Why a budgeted call would be refused now, if it would.
    pub fn budget_refusal(&self) -> Option<SfError> {
        budget_refusal(
            self.api_usage(),
            self.inner.config.org_reserve,
            self.inner.config.max_daily_calls,
            self.call_counts().budgeted(),
            self.mapping_usage().as_ref(),
        )
    }

    /// `/services/data/v<version>/<rest>`.
    pub fn data_path(&self, rest: &str) -> String {
        format!(
            "/services/data/v{}/{}",
            self.inner.config.api_version,
            rest.trim_start_matches('/')
        )
    }

    fn count_call(&self, kind: CallKind) {
        let today = Utc::now().date_naive();
        {
            let mut counts = self.inner.counts.lock().expect("call counts");
            counts.roll(today);
            counts.counts.counts[kind.index()] += 1;
        }
        if let Some(m) = &self.mapping {
            let mut counts = m.counts.lock().expect("mapping counts");
            counts.roll(today);
            counts.counts.counts[kind.index()] += 1;
        }
    }

    fn record_usage(&self, usage: ApiUsage) {
        *self.inner.usage.lock().expect("api usage") = Some(usage);
    }
}

/// The budget decision (pure): `Some(error)` when a budgeted call must be refused.
pub fn budget_refusal(
    org: Option<ApiUsage>,
    org_reserve: u64,
    max_daily_calls: Option<u64>,
    client_calls_today: u64,
    mapping: Option<&MappingUsage>,
) -> Option<SfError> {
    if let Some(usage) = org {
        if usage.remaining() <= org_reserve {
            return Some(SfError::budget(format!(
                "the org has {} of {} daily API calls left, at or below the reserve of {org_reserve}",
                usage.remaining(),
                usage.max
            )));
        }
    }
    if let Some(max) = max_daily_calls {
        if client_calls_today >= max {
            return Some(SfError::budget(format!(
                "this client used {client_calls_today} of its {max} daily API calls"
            )));
        }
    }
    if let Some(m) = mapping {
        if m.used() >= m.max_daily_calls {
            return Some(SfError::budget(format!(
                "mapping {} used {} of its {} daily API calls (max_daily_api_calls)",
                m.mapping,
                m.used(),
                m.max_daily_calls
            )));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(used: u64, max: u64) -> Option<ApiUsage> {
        Some(ApiUsage { used, max })
    }

    #[test]
    fn calls_are_refused_once_the_org_is_down_to_its_reserve() {
        assert!(budget_refusal(usage(89, 100), 10, None, 0, None).is_none());
        let e = budget_refusal(usage(90, 100), 10, None, 0, None).expect("refused");
        assert!(e.is_budget());
        assert!(e.message.contains("10 of 100"), "{}", e.message);
        assert!(budget_refusal(None, 10, None, 0, None).is_none());
    }

    #[test]
    fn a_client_cap_and_a_mapping_budget_refuse_independently() {
        assert!(budget_refusal(None, 0, Some(5), 5, None).is_some());
        assert!(budget_refusal(None, 0, Some(5), 4, None).is_none());
        let mut counts = CallCounts::default();
        counts.counts[CallKind::Query.index()] = 3;
        counts.counts[CallKind::Auth.index()] = 7;
        let m = MappingUsage {
            mapping: "Account".into(),
            max_daily_calls: 3,
            counts,
        };
        let e = budget_refusal(None, 0, None, 0, Some(&m)).expect("refused");
        assert!(
            e.message.contains("mapping Account used 3 of its 3"),
            "{}",
            e.message
        );
        let m = MappingUsage {
            max_daily_calls: 4,
            ..m
        };
        assert!(budget_refusal(None, 0, None, 0, Some(&m)).is_none());
    }

    #[test]
    fn counts_start_over_on_a_new_day() {
        let mut d = DailyCounts::new();
        d.counts.counts[0] = 4;
        let today = d.day;
        d.roll(today);
        assert_eq!(d.counts.total(), 4);
        d.roll(today.succ_opt().expect("tomorrow"));
        assert_eq!(d.counts.total(), 0);
    }
}
