//! The OAuth 2.0 JWT bearer flow: verifying an RS256 `assertion` against the connected app's
//! certificate (or public key) and checking its claims the way Salesforce does — `iss` is the
//! consumer key, `sub` the username, `aud` the login host (or the emulator itself), `exp` not
//! passed. simple-salesforce sends `exp` as a string, so both numbers and numeric strings count.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

/// The connected app's verification key, loaded from a PEM certificate or public key.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
}

/// Why the verification key could not be loaded (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum JwtKeyError {
    #[error("cannot read the JWT certificate {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the JWT certificate {path} is not a PEM RSA certificate or public key: {source}")]
    Parse {
        path: String,
        source: jsonwebtoken::errors::Error,
    },
}

/// Why an assertion was refused; each maps to the OAuth error Salesforce returns.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtRejection {
    /// Bad signature, wrong algorithm, unparsable token or claims.
    #[error("invalid assertion")]
    InvalidAssertion,
    /// `iss` is not the consumer key.
    #[error("client identifier invalid")]
    UnknownClient,
    /// `aud` is not an accepted audience.
    #[error("audience is invalid")]
    BadAudience,
    /// `exp` is missing or in the past.
    #[error("expired authorization code")]
    Expired,
    /// `sub` is not a user of this org.
    #[error("user hasn't approved this consumer")]
    UnknownUser,
}

/// The claims that identify the caller once an assertion is verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub subject: String,
}

/// What an assertion must match.
pub struct Expected<'a> {
    pub client_id: &'a str,
    pub username: &'a str,
    /// Accepted `aud` values, compared without a trailing slash.
    pub audiences: &'a [String],
    /// Current time, seconds since the epoch.
    pub now: i64,
}

impl JwtVerifier {
    /// Loads the key from a PEM file holding an X.509 certificate or an RSA public key.
    pub fn from_pem_file(path: &Path) -> Result<Self, JwtKeyError> {
        let display = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| JwtKeyError::Read {
            path: display.clone(),
            source,
        })?;
        Self::from_pem(&pem).map_err(|source| JwtKeyError::Parse {
            path: display,
            source,
        })
    }

    /// Loads the key from PEM bytes (certificate or RSA public key).
    pub fn from_pem(pem: &[u8]) -> Result<Self, jsonwebtoken::errors::Error> {
        Ok(JwtVerifier {
            key: DecodingKey::from_rsa_pem(pem)?,
        })
    }

    /// Verifies the assertion's signature and claims.
    pub fn verify(
        &self,
        assertion: &str,
        expected: &Expected<'_>,
    ) -> Result<VerifiedAssertion, JwtRejection> {
        let mut validation = Validation::new(Algorithm::RS256);
        // Claims are checked below: `exp` may be a string, and the errors must be Salesforce's.
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Value>(assertion, &self.key, &validation)
            .map_err(|_| JwtRejection::InvalidAssertion)?;
        let claims = data.claims;

        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        if text("iss") != Some(expected.client_id) {
            return Err(JwtRejection::UnknownClient);
        }
        let audience_ok = |aud: &str| {
            let aud = aud.trim_end_matches('/');
            expected
                .audiences
                .iter()
                .any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(aud))
        };
        let aud_matches = match claims.get("aud") {
            Some(Value::String(aud)) => audience_ok(aud),
            Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).any(audience_ok),
            _ => false,
        };
        if !aud_matches {
            return Err(JwtRejection::BadAudience);
        }
        let exp = match claims.get("exp") {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        match exp {
            Some(exp) if exp > expected.now as f64 => {}
            _ => return Err(JwtRejection::Expired),
        }
        let subject = text("sub").unwrap_or_default();
        if !subject.eq_ignore_ascii_case(expected.username) {
            return Err(JwtRejection::UnknownUser);
        }
        Ok(VerifiedAssertion {
            subject: subject.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    fn keys() -> (String, JwtVerifier) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["jwt.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (
            key.serialize_pem(),
            JwtVerifier::from_pem(cert.pem().as_bytes()).unwrap(),
        )
    }

    fn sign(private_pem: &str, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::RS256),
            &claims,
            &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn verifies_signature_and_claims_from_a_certificate() {
        let (private_pem, verifier) = keys();
        let audiences = vec!["https://login.salesforce.com".to_string()];
        let expected = Expected {
            client_id: "forcesync",
            username: "admin@example.com",
            audiences: &audiences,
            now: 1_000,
        };
        let good = json!({"iss":"forcesync","sub":"admin@example.com",
            "aud":"https://login.salesforce.com/","exp":"1180"});
        assert_eq!(
            verifier.verify(&sign(&private_pem, good), &expected),
            Ok(VerifiedAssertion {
                subject: "admin@example.com".into()
            })
        );
        let cases = [
            (
                json!({"iss":"other","sub":"admin@example.com","aud":"https://login.salesforce.com","exp":1180}),
                JwtRejection::UnknownClient,
            ),
            (
                json!({"iss":"forcesync","sub":"admin@example.com","aud":"https://evil.example","exp":1180}),
                JwtRejection::BadAudience,
            ),
            (
                json!({"iss":"forcesync","sub":"admin@example.com","aud":"https://login.salesforce.com","exp":999}),
                JwtRejection::Expired,
            ),
            (
                json!({"iss":"forcesync","sub":"nobody@example.com","aud":"https://login.salesforce.com","exp":1180}),
                JwtRejection::UnknownUser,
            ),
        ];
        for (claims, rejection) in cases {
            assert_eq!(
                verifier.verify(&sign(&private_pem, claims), &expected),
                Err(rejection)
            );
        }
        // Signed by another key.
        let (other_pem, _) = keys();
        let forged = sign(
            &other_pem,
            json!({"iss":"forcesync","sub":"admin@example.com","aud":"https://login.salesforce.com","exp":1180}),
        );
        assert_eq!(
            verifier.verify(&forged, &expected),
            Err(JwtRejection::InvalidAssertion)
        );
        assert_eq!(
            verifier.verify("not.a.jwt", &expected),
            Err(JwtRejection::InvalidAssertion)
        );
    }
}
