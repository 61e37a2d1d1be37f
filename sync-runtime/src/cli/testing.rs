//! Fixtures for the command's unit tests: the app's describe snapshots (`mappings/describe`).

use serde_json::Value;

/// The app's describe snapshot of `object`.
pub fn snapshot(object: &str) -> Value {
    let path = format!(
        "{}/../mappings/describe/{object}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
