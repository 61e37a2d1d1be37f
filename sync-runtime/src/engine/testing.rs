//! Descriptors for the engine's unit tests: a small Account mapping shaped like the generated one,
//! and an invoice line naming its invoice by external ID.

use crate::adapter::{FieldDescriptor, MappingDescriptor, PgType, Relationship, SfType};

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
        relationship: None,
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
    key_prefix: Some("001"),
    filter: Some("Type != 'Competitor'"),
    ..MappingDescriptor::fixture("Account", "account", &ACCOUNT_FIELDS)
};

static INVOICE_LINE_FIELDS: [FieldDescriptor; 5] = [
    typed("Id", "sfid", SfType::Id, PgType::Varchar(18), true),
    typed(
        "SystemModstamp",
        "systemmodstamp",
        SfType::DateTime,
        PgType::Timestamp,
        true,
    ),
    FieldDescriptor {
        reference_to: &["Invoice__c"],
        ..typed(
            "Invoice__c",
            "invoice__c",
            SfType::Reference,
            PgType::Varchar(18),
            false,
        )
    },
    FieldDescriptor {
        reference_to: &["Invoice__c"],
        relationship: Some(Relationship {
            lookup: "Invoice__c",
            name: "Invoice__r",
            field: "External_Id__c",
        }),
        ..typed(
            "Invoice__r.External_Id__c",
            "invoice__r__external_id__c",
            SfType::String,
            PgType::Varchar(40),
            false,
        )
    },
    typed(
        "Description__c",
        "description__c",
        SfType::String,
        PgType::Varchar(255),
        false,
    ),
];

/// `Invoice_Line__c`: a lookup `Invoice__c` and the relationship column
/// `Invoice__r.External_Id__c`.
pub static INVOICE_LINE: MappingDescriptor = MappingDescriptor {
    object: "Invoice_Line__c",
    label: "Invoice Line",
    schema: "salesforce",
    table: "invoice_line__c",
    key_prefix: Some("a02"),
    fields: &INVOICE_LINE_FIELDS,
    filter: None,
    ..ACCOUNT
};
