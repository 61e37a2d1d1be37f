//! Descriptors for the crate's unit tests: the field builders (`field`, `typed`, `lookup`, the
//! system fields `ID` and `MODSTAMP`), a small Account mapping shaped like the generated one, and
//! an invoice line naming its invoice by external ID.

use crate::adapter::{FieldDescriptor, MappingDescriptor, PgType, Relationship, SfType};

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
const fn system(field: FieldDescriptor) -> FieldDescriptor {
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

static ACCOUNT_FIELDS: [FieldDescriptor; 8] = [
    ID,
    system(typed(
        "IsDeleted",
        "isdeleted",
        SfType::Boolean,
        PgType::Boolean,
    )),
    MODSTAMP,
    typed("Name", "name", SfType::String, PgType::Varchar(255)),
    typed("Phone", "phone", SfType::Phone, PgType::Varchar(40)),
    typed("Website", "website", SfType::Url, PgType::Varchar(255)),
    typed("Type", "type", SfType::Picklist, PgType::Varchar(40)),
    typed(
        "AnnualRevenue",
        "annualrevenue",
        SfType::Currency,
        PgType::DoublePrecision,
    ),
];

pub static ACCOUNT: MappingDescriptor = MappingDescriptor {
    key_prefix: Some("001"),
    filter: Some("Type != 'Competitor'"),
    ..MappingDescriptor::fixture("Account", "account", &ACCOUNT_FIELDS)
};

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
    object: "Invoice_Line__c",
    label: "Invoice Line",
    schema: "salesforce",
    table: "invoice_line__c",
    key_prefix: Some("a02"),
    fields: &INVOICE_LINE_FIELDS,
    filter: None,
    ..ACCOUNT
};
