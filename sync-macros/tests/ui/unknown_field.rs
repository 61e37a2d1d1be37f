// A misspelt field: did-you-mean.
sync_macros::mappings!("unknown_field");

fn main() {}
