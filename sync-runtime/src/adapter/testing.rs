//! Descriptors for the crate's unit tests: the field builders (`field`, `typed`, `system`,
//! `lookup`, the system fields `ID` and `MODSTAMP`) and an invoice line naming its invoice by
//! external ID. `engine::testing` builds its Account mapping from the same builders.

use super::{FieldDescriptor, MappingDescriptor, PgType, Relationship, SfType};

/// A field with neutral flags; tests override what they need.
pub const fn field(sf_name: &'static str) -> FieldDescriptor {
    FieldDescriptor {
        nillable: true,
        createable: true,
        updateable: true,
        writable: true,
        ..FieldDescriptor::new(sf_name, "", "", SfType::String, PgType::Text)
    }
}

/// A mapped field of these names and types, with neutral flags.
pub(crate) const fn typed(
    sf_name: &'static str,
    column: &'static str,
    sf_type: SfType,
    pg_type: PgType,
) -> FieldDescriptor {
    FieldDescriptor {
        column,
        sf_type,
        pg_type,
        ..field(sf_name)
    }
}

/// `field` as a system field: always mapped, set by Salesforce and never written.
pub(crate) const fn system(field: FieldDescriptor) -> FieldDescriptor {
    FieldDescriptor {
        system: true,
        createable: false,
        updateable: false,
        writable: false,
        ..field
    }
}

/// A lookup to `parent` (`reference_to`), held as its 18-character Id.
pub(crate) const fn lookup(
    sf_name: &'static str,
    column: &'static str,
    parent: &'static [&'static str],
) -> FieldDescriptor {
    FieldDescriptor {
        reference_to: parent,
        ..typed(sf_name, column, SfType::Reference, PgType::Varchar(18))
    }
}

/// `Id` as the generated descriptors have it: the system field landing in `sfid`.
pub const ID: FieldDescriptor = system(typed("Id", "sfid", SfType::Id, PgType::Varchar(18)));

/// `SystemModstamp`, the system field a record's version is read from.
pub const MODSTAMP: FieldDescriptor = system(typed(
    "SystemModstamp",
    "systemmodstamp",
    SfType::DateTime,
    PgType::Timestamp,
));

static INVOICE_LINE_FIELDS: [FieldDescriptor; 5] = [
    ID,
    MODSTAMP,
    lookup("Invoice__c", "invoice__c", &["Invoice__c"]),
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
        )
    },
    typed(
        "Description__c",
        "description__c",
        SfType::String,
        PgType::Varchar(255),
    ),
];

/// `Invoice_Line__c`: a lookup `Invoice__c` and the relationship column
/// `Invoice__r.External_Id__c`.
pub static INVOICE_LINE: MappingDescriptor = MappingDescriptor {
    label: "Invoice Line",
    key_prefix: Some("a02"),
    ..MappingDescriptor::fixture("Invoice_Line__c", "invoice_line__c", &INVOICE_LINE_FIELDS)
};
