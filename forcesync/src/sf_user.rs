//! A Salesforce user of the embedded emulator, for `demo` and `bench`: logs in with the password
//! flow as an ordinary client (not forcesync), so its changes come back to the engine as someone
//! else's, and makes REST and sObject Collections calls.

use serde_json::{json, Value};
use sync_runtime::cli::CliError;

/// A logged-in user of the emulator.
pub(crate) struct SfUser {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl SfUser {
    /// Logs in to the emulator at `base` with the user `config` defines.
    pub(crate) async fn login(
        base: &str,
        config: &sf_emulator::server::Config,
        api_version: &str,
    ) -> Result<SfUser, CliError> {
        sync_runtime::salesforce::http::install_crypto_provider();
        let http = reqwest::Client::new();
        let body: Value = http
            .post(format!("{base}/services/oauth2/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", config.client_id.as_str()),
                ("client_secret", config.client_secret.as_str()),
                ("username", config.username.as_str()),
                ("password", config.password.as_str()),
            ])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| CliError::failure(format!("emulator login: {e}")))?
            .json()
            .await
            .map_err(|e| CliError::failure(format!("emulator login: {e}")))?;
        let token = body["access_token"]
            .as_str()
            .ok_or_else(|| CliError::failure("emulator login: no access token"))?
            .to_owned();
        Ok(SfUser {
            http,
            base: format!("{base}/services/data/v{api_version}"),
            token,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, CliError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| CliError::failure(format!("emulator: {e}")))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(CliError::failure(format!(
                "emulator answered {status}: {text}"
            )));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Updates one record.
    pub(crate) async fn update(
        &self,
        object: &str,
        id: &str,
        fields: Value,
    ) -> Result<(), CliError> {
        self.send(
            self.http
                .patch(format!("{}/sobjects/{object}/{id}", self.base))
                .json(&fields),
        )
        .await
        .map(drop)
    }

    /// Updates the records in one sObject Collections call; answers how many were refused.
    pub(crate) async fn update_many(&self, records: Vec<Value>) -> Result<u64, CliError> {
        let body = self
            .send(
                self.http
                    .patch(format!("{}/composite/sobjects", self.base))
                    .json(&json!({"allOrNone": false, "records": records})),
            )
            .await?;
        Ok(body.as_array().map_or(0, |results| {
            results
                .iter()
                .filter(|r| r["success"] != json!(true))
                .count()
        }) as u64)
    }

    /// Creates the records in one sObject Collections call; answers how many were refused.
    pub(crate) async fn create_many(&self, records: Vec<Value>) -> Result<u64, CliError> {
        let body = self
            .send(
                self.http
                    .post(format!("{}/composite/sobjects", self.base))
                    .json(&json!({"allOrNone": false, "records": records})),
            )
            .await?;
        Ok(body.as_array().map_or(0, |results| {
            results
                .iter()
                .filter(|r| r["success"] != json!(true))
                .count()
        }) as u64)
    }

    /// Creates a record; answers its Id.
    pub(crate) async fn create(&self, object: &str, fields: Value) -> Result<String, CliError> {
        let body = self
            .send(
                self.http
                    .post(format!("{}/sobjects/{object}", self.base))
                    .json(&fields),
            )
            .await?;
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| CliError::failure(format!("emulator create answered {body}")))
    }

    /// One field of one record, read by SOQL.
    pub(crate) async fn field(
        &self,
        object: &str,
        id: &str,
        field: &str,
    ) -> Result<Value, CliError> {
        let body = self
            .send(self.http.get(format!("{}/query", self.base)).query(&[(
                "q",
                format!("SELECT {field} FROM {object} WHERE Id = '{id}'"),
            )]))
            .await?;
        Ok(body["records"][0][field].clone())
    }
}
