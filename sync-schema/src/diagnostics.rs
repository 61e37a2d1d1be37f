//! Errors found while loading mappings, each pinned to a file, line and column, with the fix.
//!
//! The loader never stops at the first problem: it collects every [`Diagnostic`] into one
//! [`Diagnostics`] value, which renders like rustc does:
//!
//! ```text
//! error: unknown field `Nme` on Account
//!  --> mappings/Account.toml:3:12
//!   |
//! 3 | fields = ["Nme"]
//!   |           ^^^^^
//!   |
//!   = help: did you mean `Name`?
//! ```

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One error in a mapping or describe file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, as it is shown to the user (relative to where the mappings directory was named).
    pub file: PathBuf,
    /// 1-based line of the start of `span`.
    pub line: usize,
    /// 1-based column (in characters) of the start of `span`.
    pub column: usize,
    /// Byte range in the file that the error is about.
    pub span: Range<usize>,
    /// What is wrong, e.g. "unknown field `Nme` on Account".
    pub message: String,
    /// What to do about it, e.g. "did you mean `Name`?".
    pub help: String,
    /// The text of line `line` (without its line break), shown under the location.
    pub source_line: Option<String>,
}

impl Diagnostic {
    /// A diagnostic about `span` of `source` (the full text of `file`).
    pub fn at(
        file: &Path,
        source: &str,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Diagnostic {
        let start = floor_char_boundary(source, span.start.min(source.len()));
        let end = span.end.clamp(start, source.len());
        let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = source[start..]
            .find('\n')
            .map_or(source.len(), |i| start + i);
        let line = source[..start].matches('\n').count() + 1;
        let column = source[line_start..start].chars().count() + 1;
        let text = source[line_start..line_end].trim_end_matches('\r');
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            span: start..end,
            message: message.into(),
            help: help.into(),
            source_line: Some(text.to_owned()),
        }
    }

    /// A diagnostic about a whole file (or directory) rather than a place in it.
    pub fn whole_file(file: &Path, message: impl Into<String>, help: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            span: 0..0,
            message: message.into(),
            help: help.into(),
            source_line: None,
        }
    }

    /// The diagnostic as rustc would print it (no colours).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gutter = self.line.to_string().len();
        let pad = " ".repeat(gutter);
        out.push_str(&format!("error: {}\n", self.message));
        out.push_str(&format!(
            "{pad}--> {}:{}:{}\n",
            self.file.display(),
            self.line,
            self.column
        ));
        if let Some(text) = &self.source_line {
            let before: String = text.chars().take(self.column - 1).collect();
            let indent: String = before
                .chars()
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let rest_of_line = text.chars().count().saturating_sub(self.column - 1);
            let span_chars = self.span_chars(text);
            let carets = span_chars.clamp(1, rest_of_line.max(1));
            out.push_str(&format!("{pad} |\n"));
            out.push_str(&format!("{} | {}\n", self.line, text));
            out.push_str(&format!("{pad} | {indent}{}\n", "^".repeat(carets)));
            out.push_str(&format!("{pad} |\n"));
        }
        out.push_str(&format!("{pad} = help: {}", self.help));
        out
    }

    /// Number of characters the span covers on its first line.
    fn span_chars(&self, text: &str) -> usize {
        let bytes_on_line: usize = text
            .chars()
            .skip(self.column - 1)
            .scan(0usize, |acc, c| {
                *acc += c.len_utf8();
                Some((*acc, c))
            })
            .take_while(|(acc, _)| *acc <= self.span.len())
            .count();
        bytes_on_line
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostic {}

/// Every error found while loading a mappings directory, in file then position order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Self {
        Diagnostics(Vec::new())
    }

    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Orders by file, then position, and drops exact duplicates.
    #[cfg(feature = "codegen")]
    pub(crate) fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            (&a.file, a.span.start, a.span.end, &a.message).cmp(&(
                &b.file,
                b.span.start,
                b.span.end,
                &b.message,
            ))
        });
        self.0.dedup();
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Diagnostics {
    type Item = &'a Diagnostic;
    type IntoIter = std::slice::Iter<'a, Diagnostic>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n\n")?;
            }
            f.write_str(&d.render())?;
        }
        if self.0.len() > 1 {
            write!(f, "\n\nerror: {} problems in the mappings", self.0.len())?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The closest of `candidates` to `name`, if one is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = name.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&lower, &c.to_ascii_lowercase()), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_rustc_with_caret_under_the_span() {
        let src = "object = \"Account\"\nfields = [\"Nme\", \"Industry\"]\n";
        let start = src.find("\"Nme\"").unwrap();
        let d = Diagnostic::at(
            Path::new("mappings/Account.toml"),
            src,
            start..start + 5,
            "unknown field `Nme` on Account",
            "did you mean `Name`?",
        );
        assert_eq!((d.line, d.column), (2, 11));
        assert_eq!(
            d.render(),
            "error: unknown field `Nme` on Account\n \
             --> mappings/Account.toml:2:11\n  |\n\
             2 | fields = [\"Nme\", \"Industry\"]\n  |           ^^^^^\n  |\n  \
             = help: did you mean `Name`?"
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = "# é\nx = \"é\" y";
        let start = src.find('y').unwrap();
        let d = Diagnostic::at(Path::new("f.toml"), src, start..start + 1, "m", "h");
        assert_eq!((d.line, d.column), (2, 9));
    }

    #[test]
    fn suggests_only_close_names() {
        let names = ["Name", "Industry", "AnnualRevenue"];
        assert_eq!(did_you_mean("Nme", names), Some("Name"));
        assert_eq!(did_you_mean("annualrevenu", names), Some("AnnualRevenue"));
        assert_eq!(did_you_mean("Zebra", names), None);
    }
}
