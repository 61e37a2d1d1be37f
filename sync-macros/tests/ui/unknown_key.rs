// An unknown key: did-you-mean.
sync_macros::mappings!("unknown_key");

fn main() {}
