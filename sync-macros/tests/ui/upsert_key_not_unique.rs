// upsert_key must be unique.
sync_macros::mappings!("upsert_key_not_unique");

fn main() {}
