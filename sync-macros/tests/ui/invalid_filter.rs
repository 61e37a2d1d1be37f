// A filter that is not valid SOQL for the object.
sync_macros::mappings!("invalid_filter");

fn main() {}
