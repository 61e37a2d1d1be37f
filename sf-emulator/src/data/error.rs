//! `ApiError`: Salesforce REST error responses — a JSON array `[{"message","errorCode","fields"}]`
//! with an HTTP status — and the per-record `FieldError` used by the write path.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// One error about one record (write path result). Serialized by callers either with
/// `errorCode` (REST top-level errors) or `statusCode` (collections, composite tree, Bulk).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub status_code: String,
    pub message: String,
    pub fields: Vec<String>,
}

impl FieldError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        FieldError {
            status_code: code.to_string(),
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub fn with_fields(code: &str, message: impl Into<String>, fields: Vec<String>) -> Self {
        FieldError {
            status_code: code.to_string(),
            message: message.into(),
            fields,
        }
    }

    /// `{"statusCode":…,"message":…,"fields":[…]}` as sObject Collections, Tree and Bulk use it.
    pub fn to_status_json(&self) -> serde_json::Value {
        serde_json::json!({
            "statusCode": self.status_code,
            "message": self.message,
            "fields": self.fields,
        })
    }

    /// `{"message":…,"errorCode":…,"fields":[…]}` as single-record REST calls answer.
    pub fn to_error_json(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.message,
            "errorCode": self.status_code,
            "fields": self.fields,
        })
    }
}

/// One element of a REST error array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorItem {
    pub message: String,
    #[serde(rename = "errorCode")]
    pub error_code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<Vec<String>>,
}

/// A REST error response: HTTP status + JSON array of errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub errors: Vec<ErrorItem>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{}: {}", e.error_code, e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// An error without a `fields` key.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            errors: vec![ErrorItem {
                message: message.into(),
                error_code: code.to_string(),
                fields: None,
            }],
        }
    }

    /// An error with a `fields` key (possibly empty).
    pub fn with_fields(
        status: StatusCode,
        code: &str,
        message: impl Into<String>,
        fields: Vec<String>,
    ) -> Self {
        ApiError {
            status,
            errors: vec![ErrorItem {
                message: message.into(),
                error_code: code.to_string(),
                fields: Some(fields),
            }],
        }
    }

    /// 400 from write-path errors (each keeps its `fields`).
    pub fn from_field_errors(status: StatusCode, errs: &[FieldError]) -> Self {
        ApiError {
            status,
            errors: errs
                .iter()
                .map(|e| ErrorItem {
                    message: e.message.clone(),
                    error_code: e.status_code.clone(),
                    fields: Some(e.fields.clone()),
                })
                .collect(),
        }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `NOT_FOUND` "The requested resource does not exist".
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )
    }

    /// 401 `INVALID_SESSION_ID` "Session expired or invalid".
    pub fn invalid_session() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }

    /// 400 `JSON_PARSER_ERROR`.
    pub fn json_parser(message: impl Into<String>) -> Self {
        Self::bad_request("JSON_PARSER_ERROR", message)
    }

    /// 403 `REQUEST_LIMIT_EXCEEDED`.
    pub fn limit_exceeded(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            format!("TotalRequests Limit exceeded. ({what})"),
        )
    }

    /// 405 `METHOD_NOT_ALLOWED`.
    pub fn method_not_allowed(method: &str, allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
        )
    }

    /// The first error code (handy in tests and logs).
    pub fn code(&self) -> &str {
        self.errors
            .first()
            .map(|e| e.error_code.as_str())
            .unwrap_or("")
    }

    pub fn body_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.errors).unwrap_or(serde_json::Value::Null)
    }
}

/// `application/json;charset=UTF-8`, the content type Salesforce answers with.
pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// A JSON response with Salesforce's content type.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut resp = (status, bytes).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &self.body_json())
    }
}
