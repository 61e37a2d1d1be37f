// Every error of every file is reported in one build.
sync_macros::mappings!("all_at_once");

fn main() {}
