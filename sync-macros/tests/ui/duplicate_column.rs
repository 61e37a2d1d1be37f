// Two entries that land in the same lower-cased column.
sync_macros::mappings!("duplicate_column");

fn main() {}
