//! The org's single user as a read-only parent for SOQL: the emulator models no `User` table,
//! yet `Owner.Name`, `CreatedBy.Name` and `LastModifiedBy.Username` must resolve. References to
//! the admin user traverse to this virtual record; any other user Id yields `null`.

use std::sync::Arc;

use crate::data::ids::SfId;
use crate::data::schema::ObjectSchema;
use crate::data::store::Record;
use crate::data::value::Value;

/// The admin user as a queryable parent record.
#[derive(Debug)]
pub struct VirtualUser {
    pub schema: Arc<ObjectSchema>,
    pub id: SfId,
    pub record: Record,
}

impl VirtualUser {
    /// The admin user `id` with login `username` (also its email), named "Admin User".
    pub fn new(id: SfId, username: &str) -> Option<VirtualUser> {
        let describe = serde_json::json!({
            "name": "User",
            "label": "User",
            "keyPrefix": "005",
            "fields": [
                {"name": "Id", "type": "id", "nillable": false},
                {"name": "Name", "type": "string", "nameField": true},
                {"name": "FirstName", "type": "string"},
                {"name": "LastName", "type": "string"},
                {"name": "Username", "type": "string"},
                {"name": "Email", "type": "email"},
                {"name": "Alias", "type": "string"},
                {"name": "IsActive", "type": "boolean"},
            ],
        });
        let schema = ObjectSchema::from_describe(describe, "virtual User").ok()?;
        let alias: String = username
            .split('@')
            .next()
            .unwrap_or("admin")
            .chars()
            .take(8)
            .collect();
        let values = vec![
            Value::str(id.as_str()),
            Value::str("Admin User"),
            Value::str("Admin"),
            Value::str("User"),
            Value::str(username),
            Value::str(username),
            Value::str(&alias),
            Value::Bool(true),
        ];
        Some(VirtualUser {
            schema: Arc::new(schema),
            id,
            record: Record::from_dense(values),
        })
    }

    /// The user record when `reference` is this user's Id (15 or 18 characters).
    pub fn resolve(&self, reference: &Value) -> Option<&Record> {
        let s = reference.as_str()?;
        let id = SfId::parse(s).ok()?;
        (id == self.id).then_some(&self.record)
    }
}
