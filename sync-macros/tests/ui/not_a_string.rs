// The macro takes the mappings directory as a string literal.
sync_macros::mappings!(mappings);

fn main() {}
