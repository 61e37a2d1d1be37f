//! Descriptors for the engine's unit tests: a small Account mapping shaped like the generated one.

use crate::adapter::{
    Access, ConflictPolicy, DeleteMode, FieldDescriptor, MappingDescriptor, PgType, SfType,
    SyncOptions,
};

/// A field with neutral flags; tests override what they need.
pub const fn field(sf_name: &'static str) -> FieldDescriptor {
    FieldDescriptor {
        sf_name,
        column: "",
        label: "",
        sf_type: SfType::String,
        pg_type: PgType::Text,
        compound: None,
        compound_key: None,
        length: None,
        system: false,
        nillable: true,
        createable: true,
        updateable: true,
        calculated: false,
        external_id: false,
        unique: false,
        required_on_create: false,
        writable: true,
        reference_to: &[],
    }
}

const fn typed(
    sf_name: &'static str,
    column: &'static str,
    sf_type: SfType,
    pg_type: PgType,
    system: bool,
) -> FieldDescriptor {
    FieldDescriptor {
        column,
        sf_type,
        pg_type,
        system,
        ..field(sf_name)
    }
}

static ACCOUNT_FIELDS: [FieldDescriptor; 8] = [
    typed("Id", "sfid", SfType::Id, PgType::Varchar(18), true),
    typed(
        "IsDeleted",
        "isdeleted",
        SfType::Boolean,
        PgType::Boolean,
        true,
    ),
    typed(
        "SystemModstamp",
        "systemmodstamp",
        SfType::DateTime,
        PgType::Timestamp,
        true,
    ),
    typed("Name", "name", SfType::String, PgType::Varchar(255), false),
    typed("Phone", "phone", SfType::Phone, PgType::Varchar(40), false),
    typed(
        "Website",
        "website",
        SfType::Url,
        PgType::Varchar(255),
        false,
    ),
    typed("Type", "type", SfType::Picklist, PgType::Varchar(40), false),
    typed(
        "AnnualRevenue",
        "annualrevenue",
        SfType::Currency,
        PgType::DoublePrecision,
        false,
    ),
];

pub static ACCOUNT: MappingDescriptor = MappingDescriptor {
    object: "Account",
    label: "Account",
    schema: "salesforce",
    table: "account",
    key_prefix: Some("001"),
    access: Access::ReadWrite,
    upsert_key: None,
    filter: Some("Type != 'Competitor'"),
    sync: SyncOptions {
        streaming: true,
        poll_seconds: 600,
        deletes: DeleteMode::Hard,
        conflict: ConflictPolicy::Merge,
        max_daily_api_calls: 0,
    },
    fields: &ACCOUNT_FIELDS,
};
