//! The one error type of the Salesforce client, and its classification.
//!
//! Every failure the client reports is an [`SfError`] whose [`ErrorClass`] says what the caller may
//! do with it:
//! - [`ErrorClass::Definite`]: Salesforce refused the request for a reason that repeating it will not
//!   change (bad data, a validation rule, a missing field, an exhausted budget). Never retried.
//! - [`ErrorClass::Indefinite`]: the request was not applied and may succeed later (network errors
//!   before sending, 503, `UNABLE_TO_LOCK_ROW`, `SERVER_UNAVAILABLE`, `REQUEST_LIMIT_EXCEEDED`).
//!   Retried with backoff.
//! - [`ErrorClass::Ambiguous`]: the request may have been applied (a timeout after the body was sent,
//!   a connection reset while reading the answer, a 5xx on a write). Reads are retried; for writes
//!   the caller decides (the writer reconciles it like a crash).
//!
//! The classification is pure ([`classify_response`], [`classify_code`]) and unit-tested;
//! [`classify_transport`] classifies a failure of the connection itself.

use std::fmt;

/// What the caller may do with a failure. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Refused for good: repeating the request gives the same answer.
    Definite,
    /// Not applied; may succeed later.
    Indefinite,
    /// May have been applied.
    Ambiguous,
}

/// Where a failure came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SfErrorKind {
    /// Salesforce answered with an error (`code` is its `errorCode` / `statusCode`).
    Api,
    /// The request or its answer was lost on the network.
    Transport,
    /// Logging in failed (wrong credentials, bad key, unreachable login host).
    Auth,
    /// The client refused to call: a daily budget (global reserve or a mapping's
    /// `max_daily_api_calls`) is used up. Not retried.
    BudgetExhausted,
    /// A Bulk API 2.0 job ended `Failed` or `Aborted` (the caller can fall back to another API).
    BulkJobFailed,
    /// Salesforce answered something the client cannot read.
    Decode,
}

/// A classified Salesforce client failure. Never contains credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SfError {
    pub class: ErrorClass,
    pub kind: SfErrorKind,
    /// HTTP status when Salesforce answered.
    pub status: Option<u16>,
    /// Salesforce's `errorCode` (e.g. `INVALID_FIELD`), or a client code (`TRANSPORT`,
    /// `BUDGET_EXHAUSTED`, `BULK_JOB_FAILED`, `DECODE`, `AUTH`).
    pub code: String,
    pub message: String,
    /// Fields named by the error (`REQUIRED_FIELD_MISSING`, a validation rule's display field).
    pub fields: Vec<String>,
}

impl fmt::Display for SfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if !self.fields.is_empty() {
            write!(f, " [fields: {}]", self.fields.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for SfError {}

/// Error codes that mean "not applied, try again later".
const INDEFINITE_CODES: &[&str] = &[
    "UNABLE_TO_LOCK_ROW",
    "SERVER_UNAVAILABLE",
    "REQUEST_LIMIT_EXCEEDED",
    "QUERY_TIMEOUT",
    "REQUEST_RUNNING_TOO_LONG",
    "CONCURRENT_REQUEST_LIMIT_EXCEEDED",
    "TOO_MANY_CONCURRENT_REQUESTS",
];

impl SfError {
    /// A Salesforce error with the class its code implies (see [`classify_code`]).
    pub fn api(status: Option<u16>, code: &str, message: &str, fields: Vec<String>) -> SfError {
        SfError {
            class: classify_code(code),
            kind: SfErrorKind::Api,
            status,
            code: code.to_owned(),
            message: message.to_owned(),
            fields,
        }
    }

    pub(crate) fn new(kind: SfErrorKind, class: ErrorClass, code: &str, message: String) -> Self {
        SfError {
            class,
            kind,
            status: None,
            code: code.to_owned(),
            message,
            fields: Vec::new(),
        }
    }

    pub(crate) fn budget(message: String) -> SfError {
        SfError::new(
            SfErrorKind::BudgetExhausted,
            ErrorClass::Definite,
            "BUDGET_EXHAUSTED",
            message,
        )
    }

    pub(crate) fn decode(message: impl Into<String>) -> SfError {
        SfError::new(
            SfErrorKind::Decode,
            ErrorClass::Definite,
            "DECODE",
            message.into(),
        )
    }

    /// Worth retrying later: `Indefinite` (an `Ambiguous` failure is the caller's call).
    pub fn is_retryable(&self) -> bool {
        self.class == ErrorClass::Indefinite
    }

    /// A mapped field or object no longer exists or is not accessible: the mapping's schema
    /// changed in Salesforce (`INVALID_FIELD`, `No such column`, `INVALID_TYPE`).
    pub fn is_schema_change(&self) -> bool {
        self.code == "INVALID_FIELD"
            || self.code == "INVALID_TYPE"
            || self.message.contains("No such column")
    }

    /// A daily budget (this client's, not the org's limit) is used up.
    pub fn is_budget(&self) -> bool {
        self.kind == SfErrorKind::BudgetExhausted
    }

    /// Salesforce's session is not (or no longer) valid.
    pub fn is_invalid_session(&self) -> bool {
        self.code == "INVALID_SESSION_ID"
    }

    /// The org's daily API request limit is reached.
    pub fn is_request_limit(&self) -> bool {
        self.code == "REQUEST_LIMIT_EXCEEDED"
    }
}

/// The class of a Salesforce error code (REST `errorCode`, collections `statusCode`, Bulk
/// `sf__Error` prefix): [`ErrorClass::Indefinite`] for lock, availability and limit errors,
/// [`ErrorClass::Definite`] otherwise.
pub fn classify_code(code: &str) -> ErrorClass {
    if INDEFINITE_CODES.contains(&code) {
        ErrorClass::Indefinite
    } else {
        ErrorClass::Definite
    }
}

/// Classifies a non-2xx answer. `write` says whether the request changes data (a 5xx other than
/// 503 on a write is [`ErrorClass::Ambiguous`]: Salesforce may have applied it).
pub fn classify_response(status: u16, body: &[u8], write: bool) -> SfError {
    let (code, message, fields) = parse_error_body(status, body);
    let mut class = classify_code(&code);
    if status == 503 {
        class = ErrorClass::Indefinite;
    } else if status >= 500 {
        class = if write {
            ErrorClass::Ambiguous
        } else {
            ErrorClass::Indefinite
        };
    } else if status == 429 {
        class = ErrorClass::Indefinite;
    }
    SfError {
        class,
        kind: SfErrorKind::Api,
        status: Some(status),
        code,
        message,
        fields,
    }
}

/// Reads Salesforce's error shapes: `[{"errorCode","message","fields"}]`, a single object, OAuth's
/// `{"error","error_description"}`, or anything else (`HTTP_<status>` with the text, shortened).
fn parse_error_body(status: u16, body: &[u8]) -> (String, String, Vec<String>) {
    let fallback_code = format!("HTTP_{status}");
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        let text = String::from_utf8_lossy(body);
        return (fallback_code, shorten(text.trim()), Vec::new());
    };
    let first = match &value {
        serde_json::Value::Array(items) => items.first().cloned().unwrap_or_default(),
        other => other.clone(),
    };
    let text = |key: &str| first.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let code = text("errorCode")
        .or_else(|| text("statusCode"))
        .or_else(|| text("error"))
        .or_else(|| text("exceptionCode"))
        .unwrap_or(fallback_code);
    let message = text("message")
        .or_else(|| text("error_description"))
        .or_else(|| text("exceptionMessage"))
        .unwrap_or_else(|| shorten(&value.to_string()));
    let fields = first
        .get("fields")
        .and_then(|f| f.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    (code, message, fields)
}

fn shorten(text: &str) -> String {
    const MAX: usize = 500;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A transport failure: [`ErrorClass::Indefinite`] when the connection was never made (nothing was
/// sent), [`ErrorClass::Ambiguous`] otherwise (a timeout or reset after sending: it may have been
/// applied). The message never holds the request's body or headers.
pub(crate) fn classify_transport(error: &reqwest::Error, _write: bool) -> SfError {
    let class = if error.is_connect() {
        ErrorClass::Indefinite
    } else {
        ErrorClass::Ambiguous
    };
    let what = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    let mut message = format!("{what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        message.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    SfError::new(SfErrorKind::Transport, class, "TRANSPORT", message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_required_field_errors_are_definite_with_their_fields() {
        let e = classify_response(
            400,
            br#"[{"message":"Required fields are missing: [Name]","errorCode":"REQUIRED_FIELD_MISSING","fields":["Name"]}]"#,
            true,
        );
        assert_eq!(e.class, ErrorClass::Definite);
        assert_eq!(e.code, "REQUIRED_FIELD_MISSING");
        assert_eq!(e.fields, vec!["Name"]);
        assert!(!e.is_retryable());
        assert_eq!(
            classify_code("FIELD_CUSTOM_VALIDATION_EXCEPTION"),
            ErrorClass::Definite
        );
        assert_eq!(classify_code("DUPLICATE_VALUE"), ErrorClass::Definite);
    }

    #[test]
    fn lock_unavailable_and_limit_errors_are_indefinite() {
        let lock = classify_response(
            400,
            br#"[{"message":"unable to obtain exclusive access","errorCode":"UNABLE_TO_LOCK_ROW"}]"#,
            true,
        );
        assert_eq!(lock.class, ErrorClass::Indefinite);
        let unavailable = classify_response(
            503,
            br#"[{"message":"down","errorCode":"SERVER_UNAVAILABLE"}]"#,
            true,
        );
        assert_eq!(unavailable.class, ErrorClass::Indefinite);
        let limit = classify_response(
            403,
            br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            false,
        );
        assert!(limit.is_retryable() && limit.is_request_limit());
    }

    #[test]
    fn a_server_error_is_ambiguous_on_a_write_and_indefinite_on_a_read() {
        let body =
            br#"[{"errorCode":"UNKNOWN_EXCEPTION","message":"An unexpected error occurred."}]"#;
        assert_eq!(
            classify_response(500, body, true).class,
            ErrorClass::Ambiguous
        );
        assert_eq!(
            classify_response(500, body, false).class,
            ErrorClass::Indefinite
        );
    }

    #[test]
    fn schema_changes_are_recognised_by_code_and_message() {
        let e = classify_response(
            400,
            br#"[{"message":"\nSELECT Foo__c FROM Account\n       ^\nERROR at Row:1:Column:8\nNo such column 'Foo__c' on entity 'Account'.","errorCode":"INVALID_FIELD"}]"#,
            false,
        );
        assert!(e.is_schema_change());
        assert_eq!(e.class, ErrorClass::Definite);
        assert!(SfError::api(
            None,
            "INVALID_TYPE",
            "sObject type 'X' is not supported",
            vec![]
        )
        .is_schema_change());
        assert!(!SfError::api(None, "MALFORMED_QUERY", "bad", vec![]).is_schema_change());
    }

    #[test]
    fn oauth_and_non_json_errors_keep_a_code_and_message() {
        let e = classify_response(
            400,
            br#"{"error":"invalid_grant","error_description":"authentication failure"}"#,
            false,
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("invalid_grant", "authentication failure")
        );
        let e = classify_response(502, b"<html>Bad gateway</html>", false);
        assert_eq!(e.code, "HTTP_502");
        assert_eq!(e.class, ErrorClass::Indefinite);
    }

    #[test]
    fn budget_errors_are_definite_and_their_own_kind() {
        let e = SfError::budget("mapping Account used 10 of 10 calls today".into());
        assert!(e.is_budget());
        assert!(!e.is_retryable());
    }
}
