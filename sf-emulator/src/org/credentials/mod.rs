//! Credentials state of one org: the refresh tokens it issued and the connected app's JWT
//! verification key (`jwt`). The endpoints using them are `routes::auth`.

pub mod jwt;

use std::collections::HashMap;

use parking_lot::{Mutex, RwLock};

/// Authentication state of one org: issued refresh tokens and the JWT verification key.
#[derive(Default)]
pub struct AuthState {
    refresh_tokens: Mutex<HashMap<String, ()>>,
    jwt: RwLock<Option<jwt::JwtVerifier>>,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("refresh_tokens", &self.refresh_tokens.lock().len())
            .field("jwt_configured", &self.jwt.read().is_some())
            .finish()
    }
}

impl AuthState {
    /// Sets the connected app's certificate used to verify JWT bearer assertions.
    pub fn set_jwt_verifier(&self, verifier: jwt::JwtVerifier) {
        *self.jwt.write() = Some(verifier);
    }

    pub(crate) fn jwt_verifier(&self) -> Option<jwt::JwtVerifier> {
        self.jwt.read().clone()
    }

    /// Issues a new refresh token.
    pub(crate) fn issue_refresh_token(&self) -> String {
        let token = format!(
            "5Aep861{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.refresh_tokens.lock().insert(token.clone(), ());
        token
    }

    pub(crate) fn refresh_token_valid(&self, token: &str) -> bool {
        self.refresh_tokens.lock().contains_key(token)
    }

    pub(crate) fn revoke_refresh_token(&self, token: &str) -> bool {
        self.refresh_tokens.lock().remove(token).is_some()
    }
}
