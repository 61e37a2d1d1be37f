//! Logging in to Salesforce: OAuth 2.0 password, client credentials, refresh token and JWT bearer
//! (RS256, key from a PEM file), and refreshing the session when Salesforce reports it invalid.
//!
//! Credentials live in [`Secret`]s, whose `Debug` shows nothing, and never enter an error message
//! or a log line: login failures report Salesforce's `error` / `error_description` only.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::{ErrorClass, SfError, SfErrorKind};
use super::{CallKind, Client};

/// A credential (password, secret, token, key). `Debug` prints `Secret(***)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

/// How to log in (the connected app's consumer key is `client_id`).
#[derive(Clone, Debug)]
pub enum Credentials {
    /// Username-password flow; `security_token` is appended to the password (empty when the
    /// org trusts the caller's IP).
    Password {
        client_id: String,
        client_secret: Secret,
        username: String,
        password: Secret,
        security_token: Secret,
    },
    /// Client credentials flow (the connected app runs as its configured user).
    ClientCredentials {
        client_id: String,
        client_secret: Secret,
    },
    /// Refresh token flow.
    RefreshToken {
        client_id: String,
        client_secret: Option<Secret>,
        refresh_token: Secret,
    },
    /// JWT bearer flow: an RS256 assertion signed with the private key in `key_file` (PEM).
    /// `audience` defaults to the login URL (`https://login.salesforce.com`,
    /// `https://test.salesforce.com`, or the local org's URL).
    JwtBearer {
        client_id: String,
        username: String,
        key_file: PathBuf,
        audience: Option<String>,
    },
}

/// A logged-in session. `generation` tells refreshes apart.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub(crate) token: Secret,
    pub(crate) instance_url: String,
    pub(crate) generation: u64,
    /// The logged-in user's Id: the last segment of the token response's identity URL
    /// (`id`: `https://login.salesforce.com/id/<orgId>/<userId>`), when it has one.
    pub(crate) user_id: Option<String>,
    /// The org's Id: the identity URL's segment before the user's.
    pub(crate) org_id: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    instance_url: String,
    #[serde(default)]
    id: Option<String>,
}

/// The user Id at the end of an identity URL (`…/id/<orgId>/<userId>`), if it looks like one
/// (pure).
pub(crate) fn user_id_of(identity_url: &str) -> Option<String> {
    identity_of(identity_url).map(|(_, user)| user)
}

/// The org and user Ids of an identity URL (`…/id/<orgId>/<userId>`), if it looks like one
/// (pure).
pub(crate) fn identity_of(identity_url: &str) -> Option<(String, String)> {
    let mut segments = identity_url.trim_end_matches('/').rsplit('/');
    let user = segments.next()?;
    let org = segments.next()?;
    let valid =
        |s: &str| matches!(s.len(), 15 | 18) && s.chars().all(|c| c.is_ascii_alphanumeric());
    (segments.next() == Some("id") && valid(user) && valid(org))
        .then(|| (org.to_owned(), user.to_owned()))
}

/// The login URL must be `https://…`, or `http://…` (a local org).
pub(crate) fn check_login_url(url: &str) -> Result<(), SfError> {
    let parsed = url::Url::parse(url).map_err(|e| auth_error(format!("login URL: {e}")))?;
    match parsed.scheme() {
        "https" | "http" => Ok(()),
        other => Err(auth_error(format!(
            "login URL must be https:// (or http:// for a local org), not {other}://"
        ))),
    }
}

fn auth_error(message: String) -> SfError {
    SfError::new(SfErrorKind::Auth, ErrorClass::Definite, "AUTH", message)
}

/// The start of a connected app's token request: the grant type, the app's client id and its
/// secret (when it has one).
fn app_grant(
    grant_type: &str,
    client_id: &str,
    client_secret: Option<&Secret>,
) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", grant_type.to_owned()),
        ("client_id", client_id.to_owned()),
    ];
    if let Some(secret) = client_secret {
        form.push(("client_secret", secret.expose().to_owned()));
    }
    form
}

/// The form body of the token request for `credentials`.
fn token_form(
    credentials: &Credentials,
    login_url: &str,
) -> Result<Vec<(&'static str, String)>, SfError> {
    Ok(match credentials {
        Credentials::Password {
            client_id,
            client_secret,
            username,
            password,
            security_token,
        } => {
            let mut form = app_grant("password", client_id, Some(client_secret));
            form.push(("username", username.clone()));
            let password = format!("{}{}", password.expose(), security_token.expose());
            form.push(("password", password));
            form
        }
        Credentials::ClientCredentials {
            client_id,
            client_secret,
        } => app_grant("client_credentials", client_id, Some(client_secret)),
        Credentials::RefreshToken {
            client_id,
            client_secret,
            refresh_token,
        } => {
            let mut form = app_grant("refresh_token", client_id, client_secret.as_ref());
            form.push(("refresh_token", refresh_token.expose().to_owned()));
            form
        }
        Credentials::JwtBearer {
            client_id,
            username,
            key_file,
            audience,
        } => {
            let audience = audience
                .clone()
                .unwrap_or_else(|| login_url.trim_end_matches('/').to_owned());
            let assertion = jwt_assertion(client_id, username, &audience, key_file)?;
            vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
                ),
                ("assertion", assertion),
            ]
        }
    })
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
}

/// An RS256 JWT for the bearer flow, valid for three minutes (Salesforce's maximum).
fn jwt_assertion(
    client_id: &str,
    username: &str,
    audience: &str,
    key_file: &std::path::Path,
) -> Result<String, SfError> {
    let pem = std::fs::read(key_file).map_err(|e| {
        auth_error(format!(
            "reading the JWT private key {}: {e}",
            key_file.display()
        ))
    })?;
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).map_err(|_| {
        auth_error(format!(
            "{} is not an RSA private key in PEM form",
            key_file.display()
        ))
    })?;
    let claims = Claims {
        iss: client_id,
        sub: username,
        aud: audience,
        exp: chrono::Utc::now().timestamp() + 180,
    };
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &key,
    )
    .map_err(|e| auth_error(format!("signing the JWT assertion: {e}")))
}

impl Client {
    /// Logs in now (the first call does it otherwise); fails fast on bad credentials.
    pub async fn login(&self) -> Result<(), SfError> {
        let current = self
            .inner
            .session
            .read()
            .await
            .as_ref()
            .map(|s| s.generation);
        self.renew_session(current).await.map(|_| ())
    }

    /// The current session, logging in first if there is none.
    pub(crate) async fn session(&self) -> Result<Session, SfError> {
        if let Some(session) = self.inner.session.read().await.as_ref() {
            return Ok(session.clone());
        }
        self.renew_session(None).await
    }

    /// Replaces the session `stale` (the generation that failed; `None` = no session yet) with a
    /// new one, unless another task already did.
    pub(crate) async fn renew_session(&self, stale: Option<u64>) -> Result<Session, SfError> {
        let _guard = self.inner.login_lock.lock().await;
        if let Some(session) = self.inner.session.read().await.as_ref() {
            if Some(session.generation) != stale {
                return Ok(session.clone());
            }
        }
        let config = &self.inner.config;
        let form = token_form(&config.credentials, &config.login_url)?;
        let url = format!(
            "{}/services/oauth2/token",
            config.login_url.trim_end_matches('/')
        );
        self.count_call(CallKind::Auth);
        let response = self
            .inner
            .http
            .post(&url)
            .header(
                "Sforce-Call-Options",
                format!("client={}", config.call_client),
            )
            .form(&form)
            .timeout(config.request_timeout.min(Duration::from_secs(60)))
            .send()
            .await
            .map_err(|e| {
                let mut err = super::error::classify_transport(&e.without_url(), false);
                err.kind = SfErrorKind::Auth;
                err.message = format!("logging in at {}: {}", config.login_url, err.message);
                err
            })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            let mut err = super::error::classify_transport(&e.without_url(), false);
            err.kind = SfErrorKind::Auth;
            err
        })?;
        if !(200..300).contains(&status) {
            let mut err = super::error::classify_response(status, &body, false);
            err.kind = SfErrorKind::Auth;
            if status < 500 {
                err.class = ErrorClass::Definite;
            }
            return Err(err);
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| auth_error(format!("the token response is not understood: {e}")))?;
        let generation = stale.map_or(1, |g| g + 1);
        let session = Session {
            token: Secret::new(token.access_token),
            instance_url: token.instance_url.trim_end_matches('/').to_owned(),
            generation,
            user_id: token.id.as_deref().and_then(user_id_of),
            org_id: token
                .id
                .as_deref()
                .and_then(identity_of)
                .map(|(org, _)| org),
        };
        *self.inner.session.write().await = Some(session.clone());
        tracing::debug!(instance_url = %session.instance_url, generation, "logged in to Salesforce");
        Ok(session)
    }

    /// The instance URL of the current session (logging in first if needed).
    pub async fn instance_url(&self) -> Result<String, SfError> {
        Ok(self.session().await?.instance_url)
    }

    /// The logged-in user's Id (logging in first if needed); `None` when the token response
    /// named no identity URL.
    pub async fn user_id(&self) -> Result<Option<String>, SfError> {
        Ok(self.session().await?.user_id)
    }

    /// The org's Id (logging in first if needed); `None` when the token response named no
    /// identity URL.
    pub async fn org_id(&self) -> Result<Option<String>, SfError> {
        Ok(self.session().await?.org_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_id_is_the_identity_urls_last_segment() {
        assert_eq!(
            user_id_of("https://login.salesforce.com/id/00D5e000000abcdEAA/0055e000001xyzQAAA")
                .as_deref(),
            Some("0055e000001xyzQAAA")
        );
        assert_eq!(
            user_id_of("http://127.0.0.1:8080/id/00D000000000001/005000000000001/").as_deref(),
            Some("005000000000001")
        );
        assert_eq!(
            user_id_of("https://login.salesforce.com/services/oauth2/userinfo"),
            None
        );
        assert_eq!(user_id_of("not a url"), None);
        assert_eq!(
            identity_of("https://login.salesforce.com/id/00D5e000000abcdEAA/0055e000001xyzQAAA"),
            Some(("00D5e000000abcdEAA".into(), "0055e000001xyzQAAA".into()))
        );
    }

    #[test]
    fn secrets_and_credentials_debug_without_their_values() {
        let creds = Credentials::Password {
            client_id: "app".into(),
            client_secret: "s3cr3t-client".into(),
            username: "admin@example.com".into(),
            password: "hunter2".into(),
            security_token: "TOKEN123".into(),
        };
        let shown = format!("{creds:?}");
        for secret in ["s3cr3t-client", "hunter2", "TOKEN123"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("admin@example.com"));
    }

    #[test]
    fn the_password_grant_appends_the_security_token() {
        let creds = Credentials::Password {
            client_id: "app".into(),
            client_secret: "cs".into(),
            username: "u".into(),
            password: "pw".into(),
            security_token: "tok".into(),
        };
        let form = token_form(&creds, "https://login.salesforce.com").expect("form");
        assert!(form.contains(&("password", "pwtok".to_owned())));
        assert!(form.contains(&("grant_type", "password".to_owned())));
    }

    #[test]
    fn login_urls_must_be_http_or_https() {
        assert!(check_login_url("https://login.salesforce.com").is_ok());
        assert!(check_login_url("http://127.0.0.1:8484").is_ok());
        assert!(check_login_url("ftp://login.salesforce.com").is_err());
        assert!(check_login_url("not a url").is_err());
    }

    #[test]
    fn a_missing_jwt_key_file_is_an_auth_error_naming_the_file() {
        let e = jwt_assertion(
            "app",
            "u",
            "https://login.salesforce.com",
            "/nonexistent/k.pem".as_ref(),
        )
        .expect_err("no key");
        assert_eq!(e.kind, SfErrorKind::Auth);
        assert!(e.message.contains("/nonexistent/k.pem"));
    }
}
