//! The writer's own test mappings, next to `engine::testing`'s Account and `adapter::testing`'s
//! Invoice_Line__c: Contact (a child of Account) and Invoice__c (with an upsert key), built from
//! the same field builders.

use crate::adapter::testing::{lookup, typed, ID, MODSTAMP};
use crate::adapter::{FieldDescriptor, MappingDescriptor, PgType, SfType};

pub static CONTACT: MappingDescriptor = MappingDescriptor {
    key_prefix: Some("003"),
    ..MappingDescriptor::fixture(
        "Contact",
        "contact",
        &[
            ID,
            MODSTAMP,
            typed("LastName", "lastname", SfType::String, PgType::Varchar(80)),
            lookup("AccountId", "accountid", &["Account"]),
        ],
    )
};

pub static INVOICE: MappingDescriptor = MappingDescriptor {
    label: "Invoice",
    key_prefix: Some("a00"),
    upsert_key: Some("External_Id__c"),
    ..MappingDescriptor::fixture(
        "Invoice__c",
        "invoice__c",
        &[
            ID,
            MODSTAMP,
            typed("Name", "name", SfType::String, PgType::Varchar(80)),
            FieldDescriptor {
                external_id: true,
                unique: true,
                ..typed(
                    "External_Id__c",
                    "external_id__c",
                    SfType::String,
                    PgType::Varchar(40),
                )
            },
            typed(
                "Amount__c",
                "amount__c",
                SfType::Currency,
                PgType::DoublePrecision,
            ),
            typed("Due_Time__c", "due_time__c", SfType::Time, PgType::Time),
            lookup("Account__c", "account__c", &["Account"]),
        ],
    )
};
