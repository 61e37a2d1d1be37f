//! Errors converting between Salesforce values and typed Rust values.

/// A Salesforce value that cannot become the field's Rust type (or the reverse).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("field {field}: {kind}")]
pub struct ConversionError {
    /// Salesforce API name of the field.
    pub field: String,
    pub kind: ConversionErrorKind,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConversionErrorKind {
    /// The record is not a JSON object.
    #[error("the record is not a JSON object (got {0})")]
    NotAnObject(String),
    /// A field Salesforce requires is absent or null.
    #[error("a value is required but the record has none")]
    Missing,
    /// The JSON value has the wrong shape for the field's type.
    #[error("expected {expected}, got {got}")]
    WrongType { expected: &'static str, got: String },
    /// A CDC event carried a long text field as a diff instead of its value; re-read the record
    /// through REST to get the full value.
    #[error("the change event carries a diff, not the value; fetch the record through REST")]
    Diff,
}

impl ConversionError {
    pub fn new(field: impl Into<String>, kind: ConversionErrorKind) -> Self {
        ConversionError {
            field: field.into(),
            kind,
        }
    }

    pub(crate) fn wrong_type(field: &str, expected: &'static str, got: &serde_json::Value) -> Self {
        let mut got = got.to_string();
        if got.len() > 80 {
            let cut = (0..=80)
                .rev()
                .find(|i| got.is_char_boundary(*i))
                .unwrap_or(0);
            got.truncate(cut);
            got.push('…');
        }
        ConversionError::new(field, ConversionErrorKind::WrongType { expected, got })
    }
}
