// A base64 field cannot be synced in v1.
sync_macros::mappings!("unsyncable_type");

fn main() {}
