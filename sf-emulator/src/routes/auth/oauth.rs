//! `POST /services/oauth2/token` and `/services/oauth2/revoke`: the grants real clients use
//! (`password`, `client_credentials`, `refresh_token`, JWT bearer), answered with Salesforce's
//! token response (`access_token`, `instance_url`, `id`, `token_type`, `issued_at`, `signature`,
//! `scope`) or its OAuth error body (HTTP 400 `{"error","error_description"}`).

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

use super::{constant_time_eq, credentials_match, ClientBase};
use crate::org::credentials::jwt::{Expected, JwtRejection};
use crate::org::Org;

/// An OAuth error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
}

impl OAuthError {
    fn bad_request(error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status: StatusCode::BAD_REQUEST,
            error,
            description: description.into(),
        }
    }

    fn authentication_failure() -> Self {
        Self::bad_request("invalid_grant", "authentication failure")
    }

    fn invalid_client_id() -> Self {
        Self::bad_request("invalid_client_id", "client identifier invalid")
    }

    fn invalid_client_credentials() -> Self {
        Self::bad_request("invalid_client", "invalid client credentials")
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response()
    }
}

/// Form parameters from the query string and the `application/x-www-form-urlencoded` body
/// (body wins), the way Salesforce reads them.
fn form_params(query: Option<&str>, body: &[u8]) -> Map<String, Value> {
    let mut params = Map::new();
    for source in [query.unwrap_or("").as_bytes(), body] {
        for (k, v) in url::form_urlencoded::parse(source) {
            params.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    }
    params
}

fn param<'a>(params: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    params
        .get(name)
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
}

/// `client_id:client_secret` from an `Authorization: Basic` header.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .ok()?
        .into_owned();
    let secret = percent_encoding::percent_decode_str(secret)
        .decode_utf8()
        .ok()?
        .into_owned();
    Some((id, secret))
}

/// Checks the connected app's client id (and secret when `secret` is given or required).
fn check_client(
    org: &Org,
    client_id: Option<&str>,
    secret: Option<&str>,
    secret_required: bool,
) -> Result<(), OAuthError> {
    let config = org.config();
    match client_id {
        Some(id) if id == config.client_id => {}
        _ => return Err(OAuthError::invalid_client_id()),
    }
    match secret {
        Some(secret) if constant_time_eq(secret.as_bytes(), config.client_secret.as_bytes()) => {
            Ok(())
        }
        Some(_) => Err(OAuthError::invalid_client_credentials()),
        None if secret_required => Err(OAuthError::invalid_client_credentials()),
        None => Ok(()),
    }
}

/// `signature`: base64 HMAC-SHA256 of `id` + `issued_at`, keyed with the client secret.
pub fn token_signature(client_secret: &str, id: &str, issued_at: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Mints a session and renders the token response.
fn token_response(org: &Org, base: &str, scope: &str, refresh_token: Option<String>) -> Response {
    let session = org.create_session();
    let id = format!("{base}/id/{}/{}", session.org_id, session.user_id);
    let issued_at = session.issued_ms.to_string();
    let signature = token_signature(&org.config().client_secret, &id, &issued_at);
    let mut body = Map::new();
    body.insert("access_token".into(), json!(session.token));
    if let Some(refresh_token) = refresh_token {
        body.insert("refresh_token".into(), json!(refresh_token));
    }
    body.insert("signature".into(), json!(signature));
    body.insert("scope".into(), json!(scope));
    body.insert("instance_url".into(), json!(base));
    body.insert("id".into(), json!(id));
    body.insert("token_type".into(), json!("Bearer"));
    body.insert("issued_at".into(), json!(issued_at));
    (StatusCode::OK, Json(Value::Object(body))).into_response()
}

/// `POST /services/oauth2/token`.
pub async fn token(
    State(org): State<Org>,
    ClientBase(base): ClientBase,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let params = form_params(query.as_deref(), &body);
    match grant(&org, &base, &headers, &params) {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

fn grant(
    org: &Org,
    base: &str,
    headers: &HeaderMap,
    params: &Map<String, Value>,
) -> Result<Response, OAuthError> {
    let auth = org.auth();
    match param(params, "grant_type") {
        Some("password") => {
            check_client(
                org,
                param(params, "client_id"),
                param(params, "client_secret"),
                true,
            )?;
            let username = param(params, "username").unwrap_or("");
            let password = params.get("password").and_then(Value::as_str).unwrap_or("");
            if !credentials_match(org, username, password) {
                return Err(OAuthError::authentication_failure());
            }
            let refresh = auth.issue_refresh_token();
            Ok(token_response(
                org,
                base,
                "api web refresh_token",
                Some(refresh),
            ))
        }
        Some("client_credentials") => {
            let (id, secret) = match basic_credentials(headers) {
                Some((id, secret)) => (Some(id), Some(secret)),
                None => (
                    param(params, "client_id").map(str::to_string),
                    param(params, "client_secret").map(str::to_string),
                ),
            };
            check_client(org, id.as_deref(), secret.as_deref(), true)?;
            Ok(token_response(org, base, "api web", None))
        }
        Some("refresh_token") => {
            check_client(
                org,
                param(params, "client_id"),
                param(params, "client_secret"),
                false,
            )?;
            match param(params, "refresh_token") {
                Some(token) if auth.refresh_token_valid(token) => {
                    Ok(token_response(org, base, "api web refresh_token", None))
                }
                _ => Err(OAuthError::bad_request(
                    "invalid_grant",
                    "expired access/refresh token",
                )),
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            let verifier = auth.jwt_verifier().ok_or_else(|| {
                OAuthError::bad_request(
                    "invalid_grant",
                    "invalid assertion: no JWT certificate is configured (start the emulator with --jwt-cert)",
                )
            })?;
            let assertion = param(params, "assertion")
                .ok_or_else(|| OAuthError::bad_request("invalid_grant", "invalid assertion"))?;
            let audiences = vec![
                "https://login.salesforce.com".to_string(),
                "https://test.salesforce.com".to_string(),
                base.to_string(),
                org.base_url(),
            ];
            let config = org.config();
            let expected = Expected {
                client_id: &config.client_id,
                username: &config.username,
                audiences: &audiences,
                now: org.now_ms() / 1000,
            };
            verifier
                .verify(assertion, &expected)
                .map_err(|rejection| match rejection {
                    JwtRejection::UnknownClient => OAuthError::invalid_client_id(),
                    other => OAuthError::bad_request("invalid_grant", other.to_string()),
                })?;
            Ok(token_response(org, base, "api web", None))
        }
        Some(_) | None => Err(OAuthError::bad_request(
            "unsupported_grant_type",
            "grant type not supported",
        )),
    }
}

/// `POST /services/oauth2/revoke` (`token` in the form body or query).
pub async fn revoke_post(
    State(org): State<Org>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    revoke(&org, &form_params(query.as_deref(), &body))
}

/// `GET /services/oauth2/revoke?token=…`.
pub async fn revoke_get(State(org): State<Org>, RawQuery(query): RawQuery) -> Response {
    revoke(&org, &form_params(query.as_deref(), b""))
}

fn revoke(org: &Org, params: &Map<String, Value>) -> Response {
    let Some(token) = param(params, "token") else {
        return OAuthError::bad_request("invalid_request", "token parameter is required")
            .into_response();
    };
    if org.revoke_session(token) || org.auth().revoke_refresh_token(token) {
        StatusCode::OK.into_response()
    } else {
        OAuthError::bad_request("unsupported_token_type", "this token type is not supported")
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_base64_hmac_sha256() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        assert_eq!(
            token_signature("key", "The quick brown fox ", "jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }

    #[test]
    fn basic_header_is_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("forcesync:s3cr%3At");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        assert_eq!(
            basic_credentials(&headers),
            Some(("forcesync".to_string(), "s3cr:t".to_string()))
        );
    }
}
