//! Who may see the status page and act on it: the listen-address rule (loopback, or an admin
//! token), the admin session (cookie or bearer header), and the CSRF token every action carries.
//!
//! The decisions are pure functions over what the request carries; the secrets they compare
//! never leave this module in clear (the session cookie and the CSRF token are HMACs of them, and
//! `Debug` prints no secret).

use std::net::SocketAddr;

use ring::hmac;

/// The environment variable holding the admin token.
pub const TOKEN_VAR: &str = "FORCESYNC_ADMIN_TOKEN";
/// The session cookie's name.
pub const COOKIE: &str = "forcesync_session";

/// Whether `forcesync run` may listen on `addr`: loopback always; any other address only with an
/// admin token set (the error says so).
pub fn listen_allowed(addr: SocketAddr, token_set: bool) -> Result<(), String> {
    if addr.ip().is_loopback() || token_set {
        Ok(())
    } else {
        Err(format!(
            "--listen {addr} is not a loopback address: the status page there lets anyone who can reach it \
             retry, ignore, pause and reload mappings; set {TOKEN_VAR} (a long random secret) to require it, \
             or listen on 127.0.0.1"
        ))
    }
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// See the page and act (with a valid CSRF token).
    Granted,
    /// A browser without a session: show the login form.
    Login,
}

/// The page's secrets: the admin token (when set) and the key the CSRF token derives from.
pub struct Guard {
    /// HMAC key made from the admin token; `None`: no token, loopback only.
    admin: Option<hmac::Key>,
    /// The CSRF key: the admin token's key, or a random one for this process.
    csrf: hmac::Key,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("admin_token", &self.admin.as_ref().map(|_| "(set)"))
            .finish_non_exhaustive()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn tag(key: &hmac::Key, what: &str) -> String {
    hex(hmac::sign(key, what.as_bytes()).as_ref())
}

/// Whether `given` equals `expected`, in time independent of where they differ.
fn same(key: &hmac::Key, given: &str, expected: &str) -> bool {
    // Compare the HMACs of both: constant time over equal-length tags.
    let expected_tag = hmac::sign(key, expected.as_bytes());
    hmac::verify(key, given.as_bytes(), expected_tag.as_ref()).is_ok()
}

impl Guard {
    /// A guard for `token` (`None` or empty: no token). The CSRF key of a token-less guard is
    /// random per process.
    pub fn new(token: Option<&str>) -> Guard {
        let admin = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| hmac::Key::new(hmac::HMAC_SHA256, t.as_bytes()));
        let csrf = match &admin {
            Some(key) => hmac::Key::new(hmac::HMAC_SHA256, tag(key, "forcesync-csrf").as_bytes()),
            None => hmac::Key::generate(hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .expect("the system's random source"),
        };
        Guard { admin, csrf }
    }

    /// From `FORCESYNC_ADMIN_TOKEN`.
    pub fn from_env() -> Guard {
        Guard::new(std::env::var(TOKEN_VAR).ok().as_deref())
    }

    /// Whether an admin token is required.
    pub fn requires_token(&self) -> bool {
        self.admin.is_some()
    }

    /// The session cookie's value after a login (an HMAC of the token, never the token).
    pub fn session(&self) -> Option<String> {
        self.admin.as_ref().map(|k| tag(k, "forcesync-session"))
    }

    /// Whether `given` is the admin token (for the login form). Always false without a token.
    pub fn token_matches(&self, given: &str) -> bool {
        let Some(key) = &self.admin else {
            return false;
        };
        // The key is the token: the HMAC of a fixed message under a key made of `given` equals
        // the one under the token's key exactly when they are the same.
        let candidate = hmac::Key::new(hmac::HMAC_SHA256, given.trim().as_bytes());
        same(
            &self.csrf,
            &tag(&candidate, "forcesync-login"),
            &tag(key, "forcesync-login"),
        )
    }

    /// The decision for a request carrying `authorization` (the header) and `cookie` (the
    /// session cookie's value). `None` for a request that must be refused outright (a wrong
    /// bearer token).
    pub fn decide(&self, authorization: Option<&str>, cookie: Option<&str>) -> Option<Access> {
        let Some(session) = self.session() else {
            return Some(Access::Granted);
        };
        if let Some(bearer) = authorization.and_then(|a| a.strip_prefix("Bearer ")) {
            return self.token_matches(bearer).then_some(Access::Granted);
        }
        match cookie {
            Some(c) if same(&self.csrf, c, &session) => Some(Access::Granted),
            _ => Some(Access::Login),
        }
    }

    /// The CSRF token forms carry.
    pub fn csrf_token(&self) -> String {
        tag(&self.csrf, "forcesync-action")
    }

    /// Whether an action's CSRF token is right.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| same(&self.csrf, g, &self.csrf_token()))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

/// The `Set-Cookie` header of a session: `HttpOnly`, `SameSite=Strict`, the whole site.
pub fn session_cookie(value: &str) -> String {
    format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_address_needs_the_admin_token() {
        let public: SocketAddr = "0.0.0.0:9187".parse().unwrap();
        let loopback: SocketAddr = "127.0.0.1:9187".parse().unwrap();
        let v6: SocketAddr = "[::1]:9187".parse().unwrap();
        assert!(listen_allowed(loopback, false).is_ok());
        assert!(listen_allowed(v6, false).is_ok());
        let refusal = listen_allowed(public, false).unwrap_err();
        assert!(refusal.contains(TOKEN_VAR), "{refusal}");
        // A blank token is no token.
        assert!(!Guard::new(Some("  ")).requires_token());
        assert!(listen_allowed(public, true).is_ok());
    }

    #[test]
    fn without_a_token_everything_is_granted_but_actions_still_need_csrf() {
        let guard = Guard::new(None);
        assert!(!guard.requires_token());
        assert_eq!(guard.decide(None, None), Some(Access::Granted));
        assert!(guard.csrf_ok(Some(&guard.csrf_token())));
        assert!(!guard.csrf_ok(None));
        assert!(!guard.csrf_ok(Some("forged")));
        assert!(!guard.token_matches(""));
        // Another process's CSRF token is not this one's.
        assert_ne!(Guard::new(None).csrf_token(), guard.csrf_token());
    }

    #[test]
    fn with_a_token_a_session_or_the_bearer_header_is_needed() {
        let guard = Guard::new(Some("s3cret-token"));
        assert!(guard.requires_token());
        let session = guard.session().unwrap();
        assert!(!session.contains("s3cret-token"));
        assert_eq!(guard.decide(None, None), Some(Access::Login));
        assert_eq!(guard.decide(None, Some("stale")), Some(Access::Login));
        assert_eq!(guard.decide(None, Some(&session)), Some(Access::Granted));
        assert_eq!(
            guard.decide(Some("Bearer s3cret-token"), None),
            Some(Access::Granted)
        );
        assert_eq!(guard.decide(Some("Bearer wrong"), Some(&session)), None);
        assert!(guard.token_matches("s3cret-token"));
        assert!(!guard.token_matches("s3cret-token2"));
        // The CSRF token is stable across instances sharing the token, and is not the token.
        assert_eq!(
            Guard::new(Some("s3cret-token")).csrf_token(),
            guard.csrf_token()
        );
        assert!(!guard.csrf_token().contains("s3cret"));
        assert!(!format!("{guard:?}").contains("s3cret"));
    }

    #[test]
    fn the_session_cookie_is_http_only_and_strict() {
        let c = session_cookie("abc");
        assert!(c.starts_with("forcesync_session=abc;"));
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
        assert_eq!(
            cookie_value("a=1; forcesync_session=xyz; b=2", COOKIE),
            Some("xyz")
        );
        assert_eq!(cookie_value("a=1", COOKIE), None);
    }
}
