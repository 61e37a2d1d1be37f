//! The generated code as formatted text: the same tokens the proc-macro emits, printed with
//! prettyplease, except that invocations of item macros (`::diesel::table!`,
//! `::sync_runtime::adapter::picklist!`, ...) are printed here, one entry per line, because
//! prettyplease prints a macro body as one wrapped run of tokens.
//!
//! Each item macro is swapped for a marker item before prettyplease runs, and the marker line is
//! replaced by the macro printed from its own tokens, so the text shows exactly what is expanded.

use std::fmt::Write as _;

use proc_macro2::{Delimiter, Spacing, TokenStream, TokenTree};
use quote::format_ident;

/// Lines longer than this are wrapped after a `, ` (continuation indented one more level).
const WIDTH: usize = 100;

/// `tokens` (a whole file) formatted, or `Err` with the parse error when they are not valid Rust.
pub(super) fn format_file(tokens: TokenStream) -> Result<String, syn::Error> {
    let mut file: syn::File = syn::parse2(tokens)?;
    let mut macros = Vec::new();
    take_macros(&mut file.items, &mut macros);
    let unparsed = prettyplease::unparse(&file);
    let mut out = String::with_capacity(unparsed.len() * 2);
    let mut prev = "";
    for line in unparsed.lines() {
        if starts_item(prev, line) {
            out.push('\n');
        }
        prev = line;
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let spliced = macros
            .iter()
            .find(|(marker, _)| trimmed == marker)
            .map(|(_, mac)| mac);
        match spliced {
            Some(mac) => print_macro(&mut out, mac, indent),
            None => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    Ok(out)
}

/// Replaces every item macro in `items` (recursively in inline modules) by a marker item, and
/// records the marker's text with the macro.
fn take_macros(items: &mut [syn::Item], macros: &mut Vec<(String, syn::Macro)>) {
    for item in items {
        match item {
            syn::Item::Mod(module) => {
                if let Some((_, content)) = module.content.as_mut() {
                    take_macros(content, macros);
                }
            }
            syn::Item::Macro(item_macro) if item_macro.ident.is_none() => {
                let marker = format_ident!("__FORCESYNC_MACRO_{}", macros.len());
                let line = format!("const {marker}: () = ();");
                macros.push((line, item_macro.mac.clone()));
                *item = syn::parse_quote!(const #marker: () = (););
            }
            _ => {}
        }
    }
}

/// Whether `line` starts an item right after the end of another at the same depth (where a
/// blank line reads better than prettyplease's none).
fn starts_item(prev: &str, line: &str) -> bool {
    let (p, l) = (prev.trim_start(), line.trim_start());
    let same_depth = prev.len() - p.len() == line.len() - l.len();
    let prev_ended = p == "}"
        || p.ends_with("};")
        || p.starts_with("pub type ")
        || p.starts_with("const __FORCESYNC_MACRO_");
    let starts = [
        "///",
        "#[",
        "pub ",
        "impl",
        "fn ",
        "const __FORCESYNC_MACRO_",
    ];
    same_depth && prev_ended && starts.iter().any(|s| l.starts_with(s))
}

/// `path! { … }` at `indent`.
fn print_macro(out: &mut String, mac: &syn::Macro, indent: &str) {
    let path = &mac.path;
    let path = inline(quote::quote!(#path));
    let _ = writeln!(out, "{indent}{path}! {{");
    block(out, mac.tokens.clone(), &format!("{indent}    "));
    let _ = writeln!(out, "{indent}}}");
}

/// The entries of a macro body, one per line: entries end at `;` when the body has any, else at
/// `,`; `#[doc = "…"]` prints as `///…`; a `{ … }` group opens an indented block.
fn block(out: &mut String, tokens: TokenStream, indent: &str) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let separator = if tokens.iter().any(|t| is_punct(t, ';')) {
        ';'
    } else {
        ','
    };
    let mut line: Vec<TokenTree> = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(token) = iter.next() {
        match &token {
            TokenTree::Punct(p) if p.as_char() == '#' && line.is_empty() => match iter.next() {
                Some(TokenTree::Group(attr)) if attr.delimiter() == Delimiter::Bracket => {
                    match doc_text(&attr.stream()) {
                        Some(doc) => {
                            for text in doc.split('\n') {
                                let _ = writeln!(out, "{indent}///{text}");
                            }
                        }
                        None => {
                            let _ = writeln!(out, "{indent}#[{}]", inline(attr.stream()));
                        }
                    }
                }
                Some(other) => line.extend([token.clone(), other]),
                None => line.push(token.clone()),
            },
            TokenTree::Group(group) if group.delimiter() == Delimiter::Brace => {
                let head = inline(std::mem::take(&mut line));
                let _ = writeln!(out, "{indent}{head} {{");
                block(out, group.stream(), &format!("{indent}    "));
                let mut close = format!("{indent}}}");
                if let Some(TokenTree::Punct(p)) = iter.peek() {
                    if matches!(p.as_char(), ',' | ';') {
                        close.push(p.as_char());
                        iter.next();
                    }
                }
                let _ = writeln!(out, "{close}");
            }
            _ if is_punct(&token, separator) => {
                line.push(token);
                write_wrapped(out, indent, &inline(std::mem::take(&mut line)));
            }
            _ => line.push(token),
        }
    }
    if !line.is_empty() {
        write_wrapped(out, indent, &inline(line));
    }
}

fn is_punct(token: &TokenTree, c: char) -> bool {
    matches!(token, TokenTree::Punct(p) if p.as_char() == c)
}

/// The text of `doc = "…"`.
fn doc_text(attr: &TokenStream) -> Option<String> {
    let meta: syn::MetaNameValue = syn::parse2(attr.clone()).ok()?;
    if !meta.path.is_ident("doc") {
        return None;
    }
    match meta.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// `line` at `indent`, wrapped after `, ` at [`WIDTH`].
fn write_wrapped(out: &mut String, indent: &str, line: &str) {
    let mut rest = line;
    let mut prefix = indent.to_owned();
    loop {
        let room = WIDTH.saturating_sub(prefix.len());
        if rest.len() <= room {
            let _ = writeln!(out, "{prefix}{rest}");
            return;
        }
        let cut = rest[..room.min(rest.len())]
            .rfind(", ")
            .filter(|&i| !in_string(&rest[..i]));
        match cut {
            Some(i) => {
                let _ = writeln!(out, "{prefix}{}", &rest[..=i]);
                rest = &rest[i + 2..];
                prefix = format!("{indent}    ");
            }
            None => {
                let _ = writeln!(out, "{prefix}{rest}");
                return;
            }
        }
    }
}

/// Whether the end of `text` is inside a string literal.
fn in_string(text: &str) -> bool {
    let mut inside = false;
    let mut escaped = false;
    for c in text.chars() {
        match c {
            '\\' if inside && !escaped => escaped = true,
            '"' if !escaped => inside = !inside,
            _ => escaped = false,
        }
    }
    inside
}

/// What was printed last, deciding the space before the next token.
#[derive(Clone, Copy, PartialEq)]
enum Last {
    /// Nothing, or a token glued to what follows (`(`, `::`, `.`, `<`, `&`, `!`, `#`).
    Glue,
    Ident,
    Literal,
    /// A token followed by a space (`,`, `:`, `=`, `->`).
    Spaced,
    /// A closing `)`, `]` or `>`.
    Close,
}

/// Tokens on one line, spaced the way rustfmt would.
fn inline(tokens: impl IntoIterator<Item = TokenTree>) -> String {
    let mut out = String::new();
    let mut last = Last::Glue;
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        let space = |last: Last| {
            matches!(
                last,
                Last::Ident | Last::Literal | Last::Spaced | Last::Close
            )
        };
        match token {
            TokenTree::Ident(ident) => {
                if space(last) {
                    out.push(' ');
                }
                out.push_str(&ident.to_string());
                last = Last::Ident;
            }
            TokenTree::Literal(literal) => {
                if space(last) {
                    out.push(' ');
                }
                out.push_str(&literal.to_string());
                last = Last::Literal;
            }
            TokenTree::Group(group) => {
                let (open, close) = match group.delimiter() {
                    Delimiter::Parenthesis => ("(", ")"),
                    Delimiter::Bracket => ("[", "]"),
                    Delimiter::Brace => ("{ ", " }"),
                    Delimiter::None => ("", ""),
                };
                let glued = match group.delimiter() {
                    Delimiter::Parenthesis => matches!(last, Last::Ident | Last::Glue),
                    _ => last == Last::Glue,
                };
                if !glued {
                    out.push(' ');
                }
                out.push_str(open);
                out.push_str(&inline(group.stream()));
                out.push_str(close);
                last = Last::Close;
            }
            TokenTree::Punct(punct) => {
                // Joint punctuation forms one operator: `::`, `->`, `=>`, `<=`.
                let mut op = punct.as_char().to_string();
                let mut spacing = punct.spacing();
                while spacing == Spacing::Joint {
                    match tokens.peek() {
                        Some(TokenTree::Punct(next)) if next.as_char() != '\'' => {
                            op.push(next.as_char());
                            spacing = next.spacing();
                            tokens.next();
                        }
                        _ => break,
                    }
                }
                match op.as_str() {
                    "," | ";" | ":" => {
                        out.push_str(&op);
                        last = Last::Spaced;
                    }
                    "." | "::" | "!" | "#" => {
                        out.push_str(&op);
                        last = Last::Glue;
                    }
                    "<" => {
                        out.push('<');
                        last = Last::Glue;
                    }
                    ">" => {
                        out.push('>');
                        last = Last::Close;
                    }
                    "&" | "'" => {
                        if space(last) {
                            out.push(' ');
                        }
                        out.push_str(&op);
                        last = Last::Glue;
                    }
                    _ => {
                        if last != Last::Glue {
                            out.push(' ');
                        }
                        out.push_str(&op);
                        last = Last::Spaced;
                    }
                }
            }
        }
    }
    out
}
