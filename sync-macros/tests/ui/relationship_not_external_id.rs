// A relationship column naming the parent by a field that is not one of its external IDs.
sync_macros::mappings!("relationship_not_external_id");

fn main() {}
