//! Small mapping descriptors for the writer's unit tests: Account, Contact (a child of Account),
//! Invoice__c (with an upsert key) and Invoice_Line__c (naming its invoice by external ID).

use crate::adapter::{
    Access, ConflictPolicy, DeleteMode, FieldDescriptor, MappingDescriptor, PgType, Relationship,
    SfType, SyncOptions,
};

const TEXT: FieldDescriptor = FieldDescriptor {
    sf_name: "",
    column: "",
    label: "",
    sf_type: SfType::String,
    pg_type: PgType::Varchar(255),
    compound: None,
    compound_key: None,
    length: Some(255),
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
    relationship: None,
};

const ID: FieldDescriptor = FieldDescriptor {
    sf_name: "Id",
    column: "sfid",
    sf_type: SfType::Id,
    system: true,
    createable: false,
    updateable: false,
    writable: false,
    ..TEXT
};

const MODSTAMP: FieldDescriptor = FieldDescriptor {
    sf_name: "SystemModstamp",
    column: "systemmodstamp",
    sf_type: SfType::DateTime,
    pg_type: PgType::Timestamp,
    system: true,
    createable: false,
    updateable: false,
    writable: false,
    ..TEXT
};

const SYNC: SyncOptions = SyncOptions {
    streaming: false,
    poll_seconds: 600,
    deletes: DeleteMode::Hard,
    conflict: ConflictPolicy::Merge,
    max_daily_api_calls: 30_000,
};

static ACCOUNT: MappingDescriptor = MappingDescriptor {
    object: "Account",
    label: "Account",
    schema: "salesforce",
    table: "account",
    key_prefix: Some("001"),
    access: Access::ReadWrite,
    upsert_key: None,
    filter: None,
    sync: SYNC,
    fields: &[
        ID,
        MODSTAMP,
        FieldDescriptor {
            sf_name: "Name",
            column: "name",
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "Phone",
            column: "phone",
            ..TEXT
        },
    ],
};

static CONTACT: MappingDescriptor = MappingDescriptor {
    object: "Contact",
    label: "Contact",
    schema: "salesforce",
    table: "contact",
    key_prefix: Some("003"),
    access: Access::ReadWrite,
    upsert_key: None,
    filter: None,
    sync: SYNC,
    fields: &[
        ID,
        MODSTAMP,
        FieldDescriptor {
            sf_name: "LastName",
            column: "lastname",
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "AccountId",
            column: "accountid",
            sf_type: SfType::Reference,
            reference_to: &["Account"],
            ..TEXT
        },
    ],
};

static INVOICE: MappingDescriptor = MappingDescriptor {
    object: "Invoice__c",
    label: "Invoice",
    schema: "salesforce",
    table: "invoice__c",
    key_prefix: Some("a00"),
    access: Access::ReadWrite,
    upsert_key: Some("External_Id__c"),
    filter: None,
    sync: SYNC,
    fields: &[
        ID,
        MODSTAMP,
        FieldDescriptor {
            sf_name: "Name",
            column: "name",
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "External_Id__c",
            column: "external_id__c",
            external_id: true,
            unique: true,
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "Amount__c",
            column: "amount__c",
            sf_type: SfType::Currency,
            pg_type: PgType::DoublePrecision,
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "Due_Time__c",
            column: "due_time__c",
            sf_type: SfType::Time,
            pg_type: PgType::Time,
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "Account__c",
            column: "account__c",
            sf_type: SfType::Reference,
            reference_to: &["Account"],
            ..TEXT
        },
    ],
};

static INVOICE_LINE: MappingDescriptor = MappingDescriptor {
    object: "Invoice_Line__c",
    label: "Invoice Line",
    schema: "salesforce",
    table: "invoice_line__c",
    key_prefix: Some("a02"),
    access: Access::ReadWrite,
    upsert_key: None,
    filter: None,
    sync: SYNC,
    fields: &[
        ID,
        MODSTAMP,
        FieldDescriptor {
            sf_name: "Invoice__c",
            column: "invoice__c",
            sf_type: SfType::Reference,
            reference_to: &["Invoice__c"],
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "Invoice__r.External_Id__c",
            column: "invoice__r__external_id__c",
            reference_to: &["Invoice__c"],
            relationship: Some(Relationship {
                lookup: "Invoice__c",
                name: "Invoice__r",
                field: "External_Id__c",
            }),
            ..TEXT
        },
        FieldDescriptor {
            sf_name: "Description__c",
            column: "description__c",
            ..TEXT
        },
    ],
};

pub fn account() -> &'static MappingDescriptor {
    &ACCOUNT
}

pub fn contact() -> &'static MappingDescriptor {
    &CONTACT
}

pub fn invoice() -> &'static MappingDescriptor {
    &INVOICE
}

pub fn invoice_line() -> &'static MappingDescriptor {
    &INVOICE_LINE
}
