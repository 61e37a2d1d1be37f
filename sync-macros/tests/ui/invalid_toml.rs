// Invalid TOML: the parser's message with its position.
sync_macros::mappings!("invalid_toml");

fn main() {}
