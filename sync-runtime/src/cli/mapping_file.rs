//! Writing mapping files (`mappings/<Object>.toml`) as `forcesync init` and `init
//! --from-heroku-connect` write them: trailing comments aligned in one column, the `access` line,
//! the `fields` list with each entry synced or commented out.

/// Always synced (by Heroku Connect and forcesync): never listed in `fields`.
pub const ALWAYS_MAPPED: [&str; 4] = ["Id", "IsDeleted", "SystemModstamp", "CreatedDate"];
/// Column where trailing comments start.
pub const COMMENT_COLUMN: usize = 36;

/// `code` and its trailing `# comment`, aligned at [`COMMENT_COLUMN`], as one line.
pub fn pad(code: &str, comment: &str) -> String {
    let width = COMMENT_COLUMN.max(code.len() + 2);
    format!("{code:<width$}# {comment}\n")
}

/// `s` as a TOML string.
pub fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The `access` line and the `fields` list: each entry (name, synced, note) on its own line,
/// commented out when not synced, with its note as a trailing comment.
pub fn access_and_fields<'a>(
    out: &mut String,
    read_write: bool,
    entries: impl IntoIterator<Item = (&'a str, bool, Option<&'a str>)>,
) {
    let access = if read_write {
        "read_write"
    } else {
        "read_only"
    };
    out.push_str(&pad(
        &format!("access = \"{access}\""),
        "read_only | read_write (the app's changes are written back to Salesforce)",
    ));
    out.push_str("fields = [\n");
    for (name, on, note) in entries {
        let code = if on {
            format!("    {},", quoted(name))
        } else {
            format!("    # {},", quoted(name))
        };
        match note {
            Some(note) => out.push_str(&pad(&code, note)),
            None => out.push_str(&format!("{code}\n")),
        }
    }
    out.push_str("]\n");
}
