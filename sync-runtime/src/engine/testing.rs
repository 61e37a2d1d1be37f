//! The Account mapping of the engine's unit tests, shaped like the generated one, built from
//! `adapter::testing`'s field builders.

use crate::adapter::testing::{system, typed, ID, MODSTAMP};
use crate::adapter::{FieldDescriptor, MappingDescriptor, PgType, SfType};

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
