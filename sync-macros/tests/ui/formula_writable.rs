// A formula field listed in write_fields on a read_write mapping.
sync_macros::mappings!("formula_writable");

fn main() {}
