// An object with no describe snapshot: the error names the command that fetches it.
sync_macros::mappings!("unknown_object");

fn main() {}
