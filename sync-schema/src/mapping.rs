//! The mapping language: reads `mappings/<Object>.toml` and `mappings/forcesync.toml` into raw,
//! span-carrying values, reporting invalid TOML, unknown keys (with a did-you-mean) and values of
//! the wrong shape. Checking names against the describe happens in `load`.

use std::ops::Range;
use std::path::Path;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use crate::catalog::{Access, ConflictPolicy, DeleteMode, StreamingTransport};
use crate::diagnostics::{did_you_mean, Diagnostic, Diagnostics};

/// A value and the byte range of the TOML that wrote it.
#[derive(Debug, Clone, PartialEq)]
pub struct At<T> {
    pub value: T,
    pub span: Range<usize>,
}

/// Reports problems about one file.
pub(crate) struct Sink<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub diags: &'a mut Diagnostics,
}

impl Sink<'_> {
    pub fn error(
        &mut self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) {
        self.diags
            .push(Diagnostic::at(self.file, self.src, span, message, help));
    }
}

/// `mappings/<Object>.toml`, as written.
#[derive(Debug, Clone, Default)]
pub struct RawMapping {
    pub object: Option<At<String>>,
    pub access: Option<At<Access>>,
    pub fields: Vec<At<String>>,
    pub upsert_key: Option<At<String>>,
    pub filter: Option<FilterText>,
    pub write_fields: Option<Vec<At<String>>>,
    pub write_fields_span: Option<Range<usize>>,
    pub drop_columns: Vec<At<String>>,
    pub sync: RawSync,
    pub indexes: Vec<RawIndex>,
}

/// The `filter` string and where each of its bytes came from in the TOML source.
#[derive(Debug, Clone)]
pub struct FilterText {
    pub text: String,
    pub span: Range<usize>,
    /// `offsets[i]` = source byte offset of filter byte `i` (one extra entry for the end);
    /// `None` when the string could not be mapped back (then errors point at the whole string).
    pub offsets: Option<Vec<usize>>,
}

impl FilterText {
    /// The TOML source range of a byte range of the filter text.
    pub fn source_span(&self, inner: Range<usize>) -> Range<usize> {
        match &self.offsets {
            Some(offsets) => {
                let at = |i: usize| offsets[i.min(offsets.len() - 1)];
                let start = at(inner.start);
                let end = if inner.end > inner.start {
                    at(inner.end - 1) + 1
                } else {
                    start
                };
                start..end.max(start)
            }
            None => self.span.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RawSync {
    pub streaming: Option<At<bool>>,
    pub poll_seconds: Option<At<u32>>,
    pub deletes: Option<At<DeleteMode>>,
    pub conflict: Option<At<ConflictPolicy>>,
    pub max_daily_api_calls: Option<At<u32>>,
}

#[derive(Debug, Clone)]
pub struct RawIndex {
    pub field: At<String>,
    pub unique: Option<At<bool>>,
}

/// `mappings/forcesync.toml`, as written.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    pub api_version: Option<At<String>>,
    pub schema: Option<At<String>>,
    pub poll_seconds: Option<At<u32>>,
    pub describe_dir: Option<At<String>>,
    pub streaming_transport: Option<At<StreamingTransport>>,
}

const MAPPING_KEYS: &[&str] = &[
    "object",
    "access",
    "fields",
    "upsert_key",
    "filter",
    "write_fields",
    "drop_columns",
    "sync",
    "indexes",
];
const SYNC_KEYS: &[&str] = &[
    "streaming",
    "poll_seconds",
    "deletes",
    "conflict",
    "max_daily_api_calls",
];
const SETTINGS_KEYS: &[&str] = &[
    "api_version",
    "schema",
    "poll_seconds",
    "describe_dir",
    "streaming_transport",
];

/// Parses TOML, reporting syntax errors; `None` if the document is not valid TOML.
pub(crate) fn parse_toml<'s>(sink: &mut Sink<'_>, src: &'s str) -> Option<Spanned<DeTable<'s>>> {
    let (table, errors) = DeTable::parse_recoverable(src);
    if errors.is_empty() {
        return Some(table);
    }
    // Recovery after the first syntax error mostly reports its consequences: show the first.
    for e in errors.into_iter().take(1) {
        let span = e.span().unwrap_or(0..0);
        let message = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        sink.error(
            span,
            format!("invalid TOML: {message}"),
            "fix the TOML syntax (strings are quoted, lists are [\"A\", \"B\"], tables are [name])",
        );
    }
    None
}

fn unknown_key(
    sink: &mut Sink<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    known: &[&str],
    place: &str,
) {
    let name = key.get_ref().as_ref();
    let help = match did_you_mean(name, known.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("the keys allowed {place} are: {}", known.join(", ")),
    };
    sink.error(key.span(), format!("unknown key `{name}` {place}"), help);
}

fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

fn string(
    sink: &mut Sink<'_>,
    key: &str,
    v: &Spanned<DeValue<'_>>,
    example: &str,
) -> Option<At<String>> {
    match v.get_ref() {
        DeValue::String(s) => Some(At {
            value: s.to_string(),
            span: v.span(),
        }),
        other => {
            sink.error(
                v.span(),
                format!("`{key}` must be a string, found {}", type_name(other)),
                format!("write it as {key} = {example}"),
            );
            None
        }
    }
}

fn boolean(sink: &mut Sink<'_>, key: &str, v: &Spanned<DeValue<'_>>) -> Option<At<bool>> {
    match v.get_ref() {
        DeValue::Boolean(b) => Some(At {
            value: *b,
            span: v.span(),
        }),
        other => {
            sink.error(
                v.span(),
                format!("`{key}` must be true or false, found {}", type_name(other)),
                format!("write it as {key} = true or {key} = false"),
            );
            None
        }
    }
}

fn positive(
    sink: &mut Sink<'_>,
    key: &str,
    v: &Spanned<DeValue<'_>>,
    example: u32,
) -> Option<At<u32>> {
    let parsed = match v.get_ref() {
        DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix()).ok(),
        _ => None,
    };
    match parsed
        .and_then(|n| u32::try_from(n).ok())
        .filter(|n| *n > 0)
    {
        Some(n) => Some(At {
            value: n,
            span: v.span(),
        }),
        None => {
            sink.error(
                v.span(),
                format!("`{key}` must be a positive whole number"),
                format!("write it as {key} = {example}"),
            );
            None
        }
    }
}

fn string_list(
    sink: &mut Sink<'_>,
    key: &str,
    v: &Spanned<DeValue<'_>>,
    example: &str,
) -> Vec<At<String>> {
    let Some(items) = v.get_ref().as_array() else {
        sink.error(
            v.span(),
            format!(
                "`{key}` must be a list of strings, found {}",
                type_name(v.get_ref())
            ),
            format!("write it as {key} = {example}"),
        );
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| string(sink, key, item, example))
        .collect()
}

/// Parses a keyword value (`access = "read_write"`) against its allowed spellings.
fn choice<T: Copy>(
    sink: &mut Sink<'_>,
    key: &str,
    v: &Spanned<DeValue<'_>>,
    options: &[(&str, T)],
) -> Option<At<T>> {
    let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
    let example = format!("\"{}\"", names[0]);
    let s = string(sink, key, v, &example)?;
    match options.iter().find(|(n, _)| *n == s.value) {
        Some((_, t)) => Some(At {
            value: *t,
            span: s.span,
        }),
        None => {
            let help = match did_you_mean(&s.value, names.iter().copied()) {
                Some(m) => format!("did you mean \"{m}\"?"),
                None => format!("use one of: {}", names.join(", ")),
            };
            sink.error(
                s.span,
                format!(
                    "`{key}` must be one of {}, not \"{}\"",
                    names.join(", "),
                    s.value
                ),
                help,
            );
            None
        }
    }
}

/// Reads a mapping file's table. Reports every problem of shape; returns what could be read.
pub(crate) fn read_mapping(sink: &mut Sink<'_>, doc: &Spanned<DeTable<'_>>) -> RawMapping {
    let mut m = RawMapping::default();
    for (key, v) in doc.get_ref().iter() {
        match key.get_ref().as_ref() {
            "object" => m.object = string(sink, "object", v, "\"Account\""),
            "access" => {
                m.access = choice(
                    sink,
                    "access",
                    v,
                    &[
                        ("read_only", Access::ReadOnly),
                        ("read_write", Access::ReadWrite),
                    ],
                )
            }
            "fields" => m.fields = string_list(sink, "fields", v, "[\"Name\", \"Industry\"]"),
            "upsert_key" => m.upsert_key = string(sink, "upsert_key", v, "\"External_Id__c\""),
            "filter" => {
                if let Some(s) = string(sink, "filter", v, "\"Industry = 'Energy'\"") {
                    let raw = &sink.src[s.span.clone()];
                    let offsets = string_offsets(raw, &s.value)
                        .map(|o| o.into_iter().map(|i| i + s.span.start).collect());
                    m.filter = Some(FilterText {
                        text: s.value,
                        span: s.span,
                        offsets,
                    });
                }
            }
            "write_fields" => {
                m.write_fields_span = Some(v.span());
                m.write_fields = Some(string_list(sink, "write_fields", v, "[\"Amount__c\"]"));
            }
            "drop_columns" => {
                m.drop_columns = string_list(sink, "drop_columns", v, "[\"oldfield__c\"]")
            }
            "sync" => m.sync = read_sync(sink, v),
            "indexes" => m.indexes = read_indexes(sink, v),
            _ => unknown_key(sink, key, MAPPING_KEYS, "in a mapping"),
        }
    }
    m
}

fn read_sync(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>) -> RawSync {
    let mut s = RawSync::default();
    let Some(table) = v.get_ref().as_table() else {
        sink.error(
            v.span(),
            format!("`sync` must be a table, found {}", type_name(v.get_ref())),
            "write it as a [sync] section",
        );
        return s;
    };
    for (key, v) in table.iter() {
        match key.get_ref().as_ref() {
            "streaming" => s.streaming = boolean(sink, "streaming", v),
            "poll_seconds" => s.poll_seconds = positive(sink, "poll_seconds", v, 600),
            "deletes" => {
                s.deletes = choice(
                    sink,
                    "deletes",
                    v,
                    &[("hard", DeleteMode::Hard), ("soft", DeleteMode::Soft)],
                )
            }
            "conflict" => {
                s.conflict = choice(
                    sink,
                    "conflict",
                    v,
                    &[
                        ("merge", ConflictPolicy::Merge),
                        ("salesforce_wins", ConflictPolicy::SalesforceWins),
                        ("postgres_wins", ConflictPolicy::PostgresWins),
                        ("last_writer_wins", ConflictPolicy::LastWriterWins),
                    ],
                )
            }
            "max_daily_api_calls" => {
                s.max_daily_api_calls = positive(sink, "max_daily_api_calls", v, 30000)
            }
            _ => unknown_key(sink, key, SYNC_KEYS, "in [sync]"),
        }
    }
    s
}

fn read_indexes(sink: &mut Sink<'_>, v: &Spanned<DeValue<'_>>) -> Vec<RawIndex> {
    let Some(table) = v.get_ref().as_table() else {
        sink.error(
            v.span(),
            format!(
                "`indexes` must be a table, found {}",
                type_name(v.get_ref())
            ),
            "write it as an [indexes] section with lines like `Industry = {}`",
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, spec) in table.iter() {
        let field = At {
            value: key.get_ref().to_string(),
            span: key.span(),
        };
        let mut unique = None;
        match spec.get_ref().as_table() {
            Some(options) => {
                for (k, v) in options.iter() {
                    match k.get_ref().as_ref() {
                        "unique" => unique = boolean(sink, "unique", v),
                        _ => unknown_key(sink, k, &["unique"], "in an index"),
                    }
                }
            }
            None => {
                sink.error(
                    spec.span(),
                    format!(
                        "an index must be a table, found {}",
                        type_name(spec.get_ref())
                    ),
                    format!(
                        "write it as {} = {{}} or {} = {{ unique = true }}",
                        field.value, field.value
                    ),
                );
                continue;
            }
        }
        out.push(RawIndex { field, unique });
    }
    out
}

/// Reads `forcesync.toml`.
pub(crate) fn read_settings(sink: &mut Sink<'_>, doc: &Spanned<DeTable<'_>>) -> RawSettings {
    let mut s = RawSettings::default();
    for (key, v) in doc.get_ref().iter() {
        match key.get_ref().as_ref() {
            "api_version" => s.api_version = string(sink, "api_version", v, "\"59.0\""),
            "schema" => s.schema = string(sink, "schema", v, "\"salesforce\""),
            "poll_seconds" => s.poll_seconds = positive(sink, "poll_seconds", v, 600),
            "describe_dir" => s.describe_dir = string(sink, "describe_dir", v, "\"describe\""),
            "streaming_transport" => {
                s.streaming_transport = choice(
                    sink,
                    "streaming_transport",
                    v,
                    &[
                        ("pubsub", StreamingTransport::PubSub),
                        ("cometd", StreamingTransport::Cometd),
                    ],
                )
            }
            _ => unknown_key(sink, key, SETTINGS_KEYS, "in forcesync.toml"),
        }
    }
    s
}

/// For the source text of a TOML string (with its quotes) whose value is `value`, the source
/// offset (relative to `raw`) of each byte of `value`, plus one for its end. `None` if the
/// decoding does not reproduce `value`.
pub fn string_offsets(raw: &str, value: &str) -> Option<Vec<usize>> {
    let (delim, basic) = if raw.starts_with("\"\"\"") {
        ("\"\"\"", true)
    } else if raw.starts_with("'''") {
        ("'''", false)
    } else if raw.starts_with('"') {
        ("\"", true)
    } else if raw.starts_with('\'') {
        ("'", false)
    } else {
        return None;
    };
    let body_end = raw.len().checked_sub(delim.len())?;
    let mut i = delim.len();
    if delim.len() == 3 {
        if raw[i..].starts_with("\r\n") {
            i += 2;
        } else if raw[i..].starts_with('\n') {
            i += 1;
        }
    }
    let mut decoded = String::new();
    let mut offsets = Vec::new();
    let push = |decoded: &mut String, offsets: &mut Vec<usize>, c: char, at: usize| {
        decoded.push(c);
        offsets.extend(std::iter::repeat_n(at, c.len_utf8()));
    };
    while i < body_end {
        let c = raw[i..].chars().next()?;
        if basic && c == '\\' {
            let rest = &raw[i + 1..body_end];
            let e = rest.chars().next()?;
            let simple = match e {
                'b' => Some('\u{8}'),
                't' => Some('\t'),
                'n' => Some('\n'),
                'f' => Some('\u{c}'),
                'r' => Some('\r'),
                'e' => Some('\u{1b}'),
                '"' => Some('"'),
                '\\' => Some('\\'),
                _ => None,
            };
            if let Some(ch) = simple {
                push(&mut decoded, &mut offsets, ch, i);
                i += 2;
                continue;
            }
            let hex_len = match e {
                'x' => 2,
                'u' => 4,
                'U' => 8,
                _ => 0,
            };
            if hex_len > 0 {
                let hex = rest.get(1..1 + hex_len)?;
                let ch = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                push(&mut decoded, &mut offsets, ch, i);
                i += 2 + hex_len;
                continue;
            }
            // Line-ending backslash (multi-line basic strings): skip whitespace and newlines.
            if delim.len() == 3 && e.is_whitespace() {
                i += 1;
                while i < body_end && raw[i..].starts_with(char::is_whitespace) {
                    i += 1;
                }
                continue;
            }
            return None;
        }
        push(&mut decoded, &mut offsets, c, i);
        i += c.len_utf8();
    }
    offsets.push(body_end);
    (decoded == value).then_some(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_string_bytes_back_to_source() {
        let raw = r#""a\"b\u00e9c""#;
        let offsets = string_offsets(raw, "a\"béc").unwrap();
        assert_eq!(offsets, vec![1, 2, 4, 5, 5, 11, 12]);
        let literal = "'Type = \\'x\\''";
        assert_eq!(string_offsets(literal, "Type = \\'x\\'").unwrap()[7], 8);
        let multi = "\"\"\"\nIsDeleted = false \\\n   AND Name = 'x'\"\"\"";
        let value = "IsDeleted = false AND Name = 'x'";
        let offsets = string_offsets(multi, value).unwrap();
        assert_eq!(&multi[offsets[18]..offsets[18] + 3], "AND");
        assert_eq!(string_offsets("\"abc\"", "abd"), None);
    }

    #[test]
    fn filter_spans_land_inside_the_toml_string() {
        let src = "filter = \"Name = 'x'\"";
        let start = src.find('"').unwrap();
        let text = FilterText {
            text: "Name = 'x'".into(),
            span: start..src.len(),
            offsets: string_offsets(&src[start..], "Name = 'x'")
                .map(|o| o.into_iter().map(|i| i + start).collect()),
        };
        assert_eq!(&src[text.source_span(7..10)], "'x'");
        assert_eq!(text.source_span(10..10), src.len() - 1..src.len() - 1);
    }
}
