//! `forcesync describe pull [OBJECT…]`: fetches describe snapshots from the org into
//! `mappings/describe/` (what the build reads), one `<Object>.json` per object, pretty-printed
//! like the committed ones (keys sorted, 4-space indent) so that a refresh diffs cleanly.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::salesforce::Client;

use super::{run, CliError, Context};

/// The file text of a describe payload (pure): 4-space indented JSON and a final newline.
pub fn render(describe: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    describe
        .serialize(&mut serializer)
        .expect("a JSON value serializes");
    let mut text = String::from_utf8(out).expect("JSON is UTF-8");
    text.push('\n');
    text
}

/// Where an object's snapshot goes.
pub fn path_for(dir: &Path, object: &str) -> PathBuf {
    dir.join(format!("{object}.json"))
}

/// `forcesync describe pull`.
pub async fn pull(ctx: &Context, objects: &[String], dir: &Path) -> Result<(), CliError> {
    let client = Client::new(ctx.salesforce()?)
        .map_err(|e| CliError::failure(format!("Salesforce client: {e}")))?;
    run::check_login(&client).await?;
    let objects: Vec<String> = if objects.is_empty() {
        ctx.app
            .registry
            .mappings
            .iter()
            .map(|m| m.object.to_owned())
            .collect()
    } else {
        objects.to_vec()
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| CliError::failure(format!("cannot create {}: {e}", dir.display())))?;
    for object in &objects {
        let describe = client
            .describe(object)
            .await
            .map_err(|e| CliError::failure(format!("describe {object}: {e}")))?;
        let name = describe["name"].as_str().unwrap_or(object);
        let fields = describe["fields"].as_array().map_or(0, Vec::len);
        let path = path_for(dir, name);
        std::fs::write(&path, render(&describe))
            .map_err(|e| CliError::failure(format!("cannot write {}: {e}", path.display())))?;
        println!("wrote {} ({fields} fields)", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_indented_like_the_committed_ones() {
        let text = render(&serde_json::json!({"name": "Account", "fields": [{"name": "Id"}]}));
        assert_eq!(
            text,
            "{\n    \"fields\": [\n        {\n            \"name\": \"Id\"\n        }\n    ],\n    \"name\": \"Account\"\n}\n"
        );
        assert_eq!(
            path_for(Path::new("mappings/describe"), "Account"),
            PathBuf::from("mappings/describe/Account.json")
        );
    }
}
