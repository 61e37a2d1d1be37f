//! Authentication: the OAuth 2.0 token endpoint (password, client_credentials, refresh_token,
//! JWT bearer), revocation, the identity and userinfo endpoints, and SOAP `login`/`logout`.
//! Sessions themselves (minting, lifetime, expiry) live in `org`, refresh tokens and the JWT
//! verification key in `org::credentials`; this module owns the endpoints and the
//! credentials check.

pub mod identity;
pub mod oauth;
pub mod soap;
pub mod soap_endpoint;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::Router;

use crate::org::Org;

/// Routes of this module.
pub fn routes() -> Router<Org> {
    Router::new()
        .route("/services/oauth2/token", post(oauth::token))
        .route(
            "/services/oauth2/revoke",
            post(oauth::revoke_post).get(oauth::revoke_get),
        )
        .route(
            "/services/oauth2/userinfo",
            get(identity::userinfo).post(identity::userinfo),
        )
        .route("/id/{org_id}/{user_id}", get(identity::identity))
        .route("/services/Soap/u/{version}", post(soap_endpoint::partner))
        // Salesforce's Pub/Sub API quick start (Python) logs in with a trailing slash.
        .route("/services/Soap/u/{version}/", post(soap_endpoint::partner))
        .route(
            "/services/Soap/c/{version}/",
            post(soap_endpoint::enterprise),
        )
        .route(
            "/services/Soap/u/{version}/{org_id}",
            post(soap_endpoint::partner_with_org),
        )
        .route(
            "/services/Soap/c/{version}",
            post(soap_endpoint::enterprise),
        )
        .route(
            "/services/Soap/c/{version}/{org_id}",
            post(soap_endpoint::enterprise_with_org),
        )
}

/// The base URL as the client reached the emulator: the emulator's scheme with the host the
/// request named (`Host`, or the URI authority under HTTP/2), so a client that reaches it as
/// `localhost` or through a redirected login host gets URLs it can follow. Falls back to the
/// emulator's own base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientBase(pub String);

impl FromRequestParts<Org> for ClientBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, org: &Org) -> Result<Self, Self::Rejection> {
        let own = org.base_url();
        let scheme = if own.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .filter(|h| is_plausible_host(h));
        Ok(ClientBase(match host {
            Some(host) => format!("{scheme}://{host}"),
            None => own,
        }))
    }
}

fn is_plausible_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
}

/// Whether `username`/`password` are the org's credentials. The password may carry the
/// security token appended (Salesforce's rule); with an empty token the bare password works.
pub(crate) fn credentials_match(org: &Org, username: &str, password: &str) -> bool {
    let config = org.config();
    if !username.trim().eq_ignore_ascii_case(&config.username) {
        return false;
    }
    let with_token = format!("{}{}", config.password, config.security_token);
    constant_time_eq(password.as_bytes(), with_token.as_bytes())
        || (config.security_token.is_empty()
            && constant_time_eq(password.as_bytes(), config.password.as_bytes()))
}

/// Compares secrets without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
