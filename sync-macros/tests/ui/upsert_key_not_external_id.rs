// upsert_key must be an external ID.
sync_macros::mappings!("upsert_key_not_external_id");

fn main() {}
