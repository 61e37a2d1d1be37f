//! SOQL errors with Salesforce's codes and its "ERROR at Row:r:Column:c" message layout.

use super::ast::Pos;

/// A SOQL error code as Salesforce reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoqlErrorCode {
    MalformedQuery,
    InvalidField,
    InvalidType,
    InvalidQueryFilterOperator,
}

impl SoqlErrorCode {
    /// The `errorCode` string of the REST error body.
    pub fn as_str(self) -> &'static str {
        match self {
            SoqlErrorCode::MalformedQuery => "MALFORMED_QUERY",
            SoqlErrorCode::InvalidField => "INVALID_FIELD",
            SoqlErrorCode::InvalidType => "INVALID_TYPE",
            SoqlErrorCode::InvalidQueryFilterOperator => "INVALID_QUERY_FILTER_OPERATOR",
        }
    }
}

/// A failed parse or bind: the code and the full message, already laid out like Salesforce's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    pub code: SoqlErrorCode,
    pub message: String,
}

impl std::fmt::Display for SoqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for SoqlError {}

impl SoqlError {
    /// An error pointing at byte offset `pos` of `query`, formatted as Salesforce does:
    /// `"\n<line>\n<spaces>^\nERROR at Row:1:Column:8\n<detail>"`.
    pub fn at(code: SoqlErrorCode, query: &str, pos: Pos, detail: impl AsRef<str>) -> SoqlError {
        let pos = pos.min(query.len());
        let before = &query[..floor_char_boundary(query, pos)];
        let row = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let line_end = query[line_start..]
            .find('\n')
            .map_or(query.len(), |i| line_start + i);
        let line = &query[line_start..line_end];
        let col = before[line_start..].chars().count() + 1;
        let message = format!(
            "\n{line}\n{}^\nERROR at Row:{row}:Column:{col}\n{}",
            " ".repeat(col - 1),
            detail.as_ref()
        );
        SoqlError { code, message }
    }

    /// An error without a position (used for whole-query problems).
    pub fn plain(code: SoqlErrorCode, detail: impl Into<String>) -> SoqlError {
        SoqlError {
            code,
            message: detail.into(),
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}
