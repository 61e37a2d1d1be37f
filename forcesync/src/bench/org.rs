//! The org the read benchmarks (`bench load`, `bench stream`) run against: an empty in-process
//! emulator (no demo data, so the figures count only the records the bench seeds), driven
//! through its HTTP control plane (`/__emulator/seed`, `/counters`, `/limits`), and
//! the API calls it counted, summarised for printing.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use sf_emulator::server::{Config, RunningEmulator};
use sync_runtime::cli::CliError;
use sync_runtime::salesforce::{self, Credentials, Secret};

/// A running empty org and how to reach it.
pub struct BenchOrg {
    pub emulator: RunningEmulator,
    pub config: Config,
    http: reqwest::Client,
}

/// API calls the org counted, by endpoint (`GET /services/data/{version}/query` → n).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calls {
    /// `DailyApiRequests` used.
    pub total: u64,
    pub by_endpoint: BTreeMap<String, u64>,
}

impl Calls {
    /// From the body of `GET /__emulator/counters` (pure).
    pub fn from_counters(body: &Value) -> Calls {
        let total = body["DailyApiRequests"]["Used"].as_u64().unwrap_or(0);
        let by_endpoint = body["endpoints"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default();
        Calls { total, by_endpoint }
    }

    /// Calls of endpoints whose name contains none of `kinds` (pure).
    pub fn outside(&self, kinds: &[&str]) -> u64 {
        self.by_endpoint
            .iter()
            .filter(|(endpoint, _)| !kinds.iter().any(|k| endpoint.contains(k)))
            .map(|(_, n)| n)
            .sum()
    }

    /// One line per endpoint, indented, busiest first (pure).
    pub fn lines(&self) -> Vec<String> {
        let mut rows: Vec<(&String, &u64)> = self.by_endpoint.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        rows.into_iter()
            .map(|(endpoint, n)| format!("    {n:>6}  {endpoint}"))
            .collect()
    }
}

impl BenchOrg {
    /// Starts an empty org; CometD connects are held `connect_hold_ms` when no event is pending.
    pub async fn start(connect_hold_ms: u64) -> Result<BenchOrg, CliError> {
        let config = Config {
            seed: None,
            streaming_connect_timeout_ms: connect_hold_ms,
            ..Config::ephemeral()
        };
        let emulator = sf_emulator::server::start(config.clone())
            .await
            .map_err(|e| CliError::failure(format!("the emulator did not start: {e}")))?;
        Ok(BenchOrg {
            emulator,
            config,
            http: reqwest::Client::new(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.emulator.base_url
    }

    /// The client settings for this org.
    pub fn salesforce(&self, api_version: &str) -> salesforce::Config {
        let mut sf = salesforce::Config::new(
            self.emulator.base_url.clone(),
            Credentials::Password {
                client_id: self.config.client_id.clone(),
                client_secret: Secret::new(self.config.client_secret.clone()),
                username: self.config.username.clone(),
                password: Secret::new(self.config.password.clone()),
                security_token: Secret::new(self.config.security_token.clone()),
            },
        );
        sf.api_version = api_version.to_owned();
        if let Some(url) = &self.emulator.pubsub_url {
            sf.pubsub_url = url.clone();
        }
        sf
    }

    /// The `forcesync` settings (environment variables) that reach this org.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SF_LOGIN_URL", self.emulator.base_url.clone()),
            ("SF_CLIENT_ID", self.config.client_id.clone()),
            ("SF_CLIENT_SECRET", self.config.client_secret.clone()),
            ("SF_USERNAME", self.config.username.clone()),
            ("SF_PASSWORD", self.config.password.clone()),
        ]
        .into_iter()
        .chain(
            self.emulator
                .pubsub_url
                .clone()
                .map(|url| ("FORCESYNC_PUBSUB_URL", url)),
        )
        .collect()
    }

    async fn control(&self, request: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let response = request
            .send()
            .await
            .map_err(|e| CliError::failure(format!("emulator control plane: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CliError::failure(format!(
                "emulator control plane answered {status}: {text}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| CliError::failure(format!("emulator control plane: {e}: {text}")))
    }

    fn url(&self, path: &str) -> String {
        format!("{}/__emulator/{path}", self.emulator.base_url)
    }

    /// Adds `count` realistic records of `object` (directly: no API calls, no change events);
    /// answers the milliseconds it took.
    pub async fn seed(&self, object: &str, count: u64) -> Result<u64, CliError> {
        let body = self
            .control(
                self.http
                    .post(self.url("seed"))
                    .json(&json!({"object": object, "count": count})),
            )
            .await?;
        Ok(body["ms"].as_u64().unwrap_or(0))
    }

    /// Zeroes the API counters (and every limit's usage).
    pub async fn reset_counters(&self) -> Result<(), CliError> {
        self.control(self.http.delete(self.url("counters")))
            .await
            .map(drop)
    }

    /// The API calls counted since the last reset.
    pub async fn calls(&self) -> Result<Calls, CliError> {
        let body = self.control(self.http.get(self.url("counters"))).await?;
        Ok(Calls::from_counters(&body))
    }

    /// Sets limits' maxima (`{"DailyDeliveredPlatformEvents": n}`).
    pub async fn set_limits(&self, limits: Value) -> Result<(), CliError> {
        self.control(self.http.put(self.url("limits")).json(&limits))
            .await
            .map(drop)
    }

    /// Stops serving (bounded: a held CometD connect must not keep the bench waiting).
    pub async fn stop(self) {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(10), self.emulator.stop()).await;
    }
}

/// Refuses a mapped table that already holds rows: the benchmarks load into an empty table and
/// never touch an app's data.
pub async fn require_empty(db: &tokio_postgres::Client, table: &str) -> Result<(), CliError> {
    let rows: i64 = db
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await?
        .get(0);
    if rows > 0 {
        return Err(CliError::settings(format!(
            "{table} already holds {rows} rows; the benchmark loads into an empty table \
             (unset DATABASE_URL to use a throwaway Postgres)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_calls_are_read_by_endpoint_and_listed_busiest_first() {
        let calls = Calls::from_counters(&json!({
            "DailyApiRequests": {"Max": 100000, "Remaining": 99989, "Used": 11},
            "endpoints": {
                "GET /services/data/{version}/query": 3,
                "POST /services/data/{version}/jobs/query": 7,
                "GET /services/data/{version}/jobs/query/{id}": 1,
            }
        }));
        assert_eq!(calls.total, 11);
        assert_eq!(calls.outside(&["/query"]), 0);
        assert_eq!(calls.outside(&["/jobs/"]), 3);
        assert_eq!(
            calls.lines(),
            [
                "         7  POST /services/data/{version}/jobs/query",
                "         3  GET /services/data/{version}/query",
                "         1  GET /services/data/{version}/jobs/query/{id}",
            ]
        );
    }
}
