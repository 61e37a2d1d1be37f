//! Salesforce → Postgres / Rust type resolution (Heroku Connect compatible) and every naming rule:
//! columns, Rust field/module/type names, picklist enum and variant names.

use std::collections::HashSet;

use heck::{ToSnakeCase, ToUpperCamelCase};

use crate::catalog::{Field, PgType, Picklist, PicklistValue, RustType, SfType};
use crate::describe::FieldDescribe;

/// Textareas longer than this become `text` columns (Heroku Connect does the same).
pub const MAX_VARCHAR_TEXTAREA: u32 = 4000;
/// Column width of a multipicklist (Heroku Connect's choice).
pub const MULTIPICKLIST_WIDTH: u32 = 4099;

/// The describe `type` as a syncable [`SfType`]; `None` for types v1 cannot sync (base64,
/// anyType, complexvalue, ...) and for compound types (address, location), which sync through
/// their components.
pub fn sf_type(describe_type: &str) -> Option<SfType> {
    SfType::from_describe(describe_type)
}

/// The Postgres column type of a field (Heroku Connect's table).
pub fn pg_type(sf: SfType, field: &FieldDescribe) -> PgType {
    let varchar = |len: u32| {
        if len == 0 {
            PgType::Text
        } else {
            PgType::Varchar(len)
        }
    };
    match sf {
        SfType::Id | SfType::Reference => PgType::Varchar(18),
        SfType::TextArea => {
            let rich = field.extra_type_info.as_deref() == Some("richtextarea");
            if rich || field.length > MAX_VARCHAR_TEXTAREA {
                PgType::Text
            } else {
                varchar(field.length)
            }
        }
        SfType::String
        | SfType::Email
        | SfType::Phone
        | SfType::Url
        | SfType::Picklist
        | SfType::Combobox
        | SfType::EncryptedString => varchar(field.length),
        SfType::MultiPicklist => PgType::Varchar(MULTIPICKLIST_WIDTH),
        SfType::Double | SfType::Currency | SfType::Percent => PgType::DoublePrecision,
        SfType::Int => PgType::Integer,
        SfType::Long => PgType::BigInt,
        SfType::Boolean => PgType::Boolean,
        SfType::Date => PgType::Date,
        SfType::DateTime => PgType::Timestamp,
        SfType::Time => PgType::Time,
    }
}

/// The Rust value type; picklist names are placeholders until [`assign_names`] runs.
fn rust_type(sf: SfType) -> RustType {
    match sf {
        SfType::Id
        | SfType::Reference
        | SfType::String
        | SfType::TextArea
        | SfType::Email
        | SfType::Phone
        | SfType::Url
        | SfType::Combobox
        | SfType::EncryptedString => RustType::String,
        SfType::Picklist => RustType::Picklist(String::new()),
        SfType::MultiPicklist => RustType::MultiPicklist(String::new()),
        SfType::Double | SfType::Currency | SfType::Percent => RustType::F64,
        SfType::Int => RustType::I32,
        SfType::Long => RustType::I64,
        SfType::Boolean => RustType::Bool,
        SfType::Date => RustType::Date,
        SfType::DateTime => RustType::DateTime,
        SfType::Time => RustType::Time,
    }
}

/// Builds the catalog field for a syncable describe field; `Err(type)` names a type that cannot
/// be synced. Rust names are filled in by [`assign_names`].
pub fn field(describe: &FieldDescribe, system: bool) -> Result<Field, String> {
    let sf = sf_type(&describe.field_type).ok_or_else(|| describe.field_type.clone())?;
    let picklist = matches!(sf, SfType::Picklist | SfType::MultiPicklist).then(|| Picklist {
        type_name: String::new(),
        restricted: describe.restricted_picklist,
        values: describe
            .picklist_values
            .iter()
            .map(|v| PicklistValue {
                value: v.value.clone(),
                label: v.label.clone().unwrap_or_else(|| v.value.clone()),
                variant: String::new(),
                active: v.active,
                default: v.default_value,
            })
            .collect(),
    });
    // As if the mapping were read-write; the loader narrows it by access and `write_fields`.
    let writable = crate::model::is_writable(
        crate::model::Access::ReadWrite,
        system,
        describe.createable,
        describe.updateable,
        describe.calculated,
    );
    Ok(Field {
        sf_name: describe.name.clone(),
        label: describe.label.clone(),
        column: column_name(&describe.name),
        rust_name: String::new(),
        sf_type: sf,
        pg_type: pg_type(sf, describe),
        rust_type: rust_type(sf),
        system,
        compound: describe.compound_field_name.clone(),
        nillable: describe.nillable,
        createable: describe.createable,
        updateable: describe.updateable,
        defaulted_on_create: describe.defaulted_on_create,
        calculated: describe.calculated,
        external_id: describe.external_id,
        unique: describe.unique,
        required_on_create: required_on_create(sf, describe),
        writable,
        length: matches!(
            sf,
            SfType::String
                | SfType::TextArea
                | SfType::Email
                | SfType::Phone
                | SfType::Url
                | SfType::Picklist
                | SfType::MultiPicklist
                | SfType::Combobox
                | SfType::EncryptedString
        )
        .then_some(describe.length),
        picklist,
        reference_to: describe.reference_to.clone(),
        relationship_name: describe.relationship_name.clone(),
        relationship: None,
    })
}

/// Salesforce rejects a create without this field: not nillable, createable, not defaulted.
/// Booleans never are (they default to false).
pub fn required_on_create(sf: SfType, describe: &FieldDescribe) -> bool {
    sf != SfType::Boolean
        && !describe.nillable
        && describe.createable
        && !describe.defaulted_on_create
}

/// Postgres column: the lower-cased API name; `Id` is `sfid` (Heroku Connect).
pub fn column_name(sf_name: &str) -> String {
    if sf_name.eq_ignore_ascii_case("Id") {
        "sfid".to_owned()
    } else {
        sf_name.to_ascii_lowercase()
    }
}

/// Column of a relationship column (Heroku Connect's naming): the relationship name and the
/// parent's field, lower-cased, joined by `__` (`Invoice__r` + `External_Id__c` →
/// `invoice__r__external_id__c`).
pub fn relationship_column(relationship: &str, field: &str) -> String {
    format!(
        "{}__{}",
        relationship.to_ascii_lowercase(),
        field.to_ascii_lowercase()
    )
}

/// Postgres table: the lower-cased object name (`Invoice__c` → `invoice__c`).
pub fn table_name(object: &str) -> String {
    object.to_ascii_lowercase()
}

/// The object name without its custom suffix (`Invoice__c` → `Invoice`).
fn strip_custom_suffix(name: &str) -> &str {
    ["__c", "__s"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Rust module of an object: `Account` → `account`, `Invoice__c` → `invoice`.
pub fn module_name(object: &str) -> String {
    escape_keyword(strip_custom_suffix(object).to_snake_case())
}

/// Rust row type of an object: `Account` → `Account`, `Invoice__c` → `Invoice`.
pub fn type_name(object: &str) -> String {
    upper_camel(strip_custom_suffix(object))
}

/// Rust field name before collision handling: snake case without the custom suffix, keywords
/// escaped (`Type` → `type_`, `External_Id__c` → `external_id`,
/// `Location__Latitude__s` → `location_latitude`).
pub fn rust_field_name(sf_name: &str) -> String {
    if sf_name.eq_ignore_ascii_case("Id") {
        return "sfid".to_owned();
    }
    // A relationship column: `Invoice__r.External_Id__c` → `invoice_external_id`.
    if let Some((relationship, field)) = sf_name.split_once('.') {
        let relationship = relationship.strip_suffix("__r").unwrap_or(relationship);
        let joined = format!(
            "{}_{}",
            strip_custom_suffix(relationship).to_snake_case(),
            strip_custom_suffix(field).to_snake_case()
        );
        return escape_keyword(joined);
    }
    let snake = strip_custom_suffix(sf_name).to_snake_case();
    let snake = if snake.is_empty() || snake.starts_with(|c: char| c.is_ascii_digit()) {
        format!("f_{snake}")
    } else {
        snake
    };
    escape_keyword(snake)
}

fn upper_camel(name: &str) -> String {
    let camel: String = name
        .to_upper_camel_case()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if camel.is_empty() || camel.starts_with(|c: char| c.is_ascii_digit()) {
        format!("V{camel}")
    } else {
        camel
    }
}

/// Rust keywords (strict and reserved, all editions).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

pub fn is_keyword(ident: &str) -> bool {
    KEYWORDS.contains(&ident)
}

/// A keyword with `_` appended (`type` → `type_`); any other name unchanged. The one escaping
/// used for every generated Rust name.
pub fn escape_keyword(ident: String) -> String {
    if is_keyword(&ident) {
        format!("{ident}_")
    } else {
        ident
    }
}

/// Rust field names the generated row structs use for their own columns.
const RESERVED_FIELD_NAMES: &[&str] = &["id", "hc_lastop", "hc_err", "_hc_lastop", "_hc_err"];

/// Type names a picklist enum must not take in an object's module: the generated row types,
/// prelude names, and names too generic to read well (`Type`).
fn reserved_type_names(object_type: &str) -> Vec<String> {
    let mut names: Vec<String> = [
        "Type", "Self", "Option", "Result", "String", "Vec", "Box", "Some", "None", "Ok", "Err",
        "Default", "Value", "Other", "Row", "Table", "Record", "Adapter", "Mapping", "Field",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for suffix in ["", "Changes", "Row", "Adapter"] {
        names.push(format!("{object_type}{suffix}"));
    }
    names.push(format!("New{object_type}"));
    names
}

/// Fills in every field's `rust_name` and every picklist's enum, set and variant names,
/// deterministically, in field order:
/// - a field name that collides (with an earlier field or a reserved name) falls back to its
///   column name, then gets a numeric suffix;
/// - a picklist enum is `UpperCamel(field)`, prefixed with the object's type name when that
///   would be reserved or already taken (`Type` on Account → `AccountType`); a multipicklist's
///   set type is the enum name + `Set`.
pub fn assign_names(object_type: &str, fields: &mut [Field]) {
    let mut taken_fields: HashSet<String> = RESERVED_FIELD_NAMES
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut taken_types: HashSet<String> = reserved_type_names(object_type).into_iter().collect();
    for field in fields.iter_mut() {
        let mut name = rust_field_name(&field.sf_name);
        if taken_fields.contains(&name) {
            name = escape_keyword(field.column.clone());
        }
        name = unique(name, &taken_fields, "_");
        taken_fields.insert(name.clone());
        field.rust_name = name;

        let Some(picklist) = field.picklist.as_mut() else {
            continue;
        };
        let bare = upper_camel(strip_custom_suffix(&field.sf_name));
        let is_multi = field.sf_type == SfType::MultiPicklist;
        let free = |n: &str| {
            !(taken_types.contains(n) || is_multi && taken_types.contains(&format!("{n}Set")))
        };
        let mut enum_name = if free(&bare) {
            bare.clone()
        } else {
            format!("{object_type}{bare}")
        };
        while !free(&enum_name) {
            enum_name = unique(enum_name, &taken_types, "");
        }
        taken_types.insert(enum_name.clone());
        picklist.type_name = enum_name.clone();
        field.rust_type = if is_multi {
            let set = format!("{enum_name}Set");
            taken_types.insert(set.clone());
            RustType::MultiPicklist(set)
        } else {
            RustType::Picklist(enum_name)
        };
        assign_variants(&mut picklist.values);
    }
}

/// Variant names: `UpperCamel` of the value with non-alphanumerics dropped (`Closed Won` →
/// `ClosedWon`, `--None--` → `None`), `V` before a leading digit, `OtherValue` for `Other`
/// (the enum's `Other(String)` catch-all owns that name), numbered when two values collide.
pub fn assign_variants(values: &mut [PicklistValue]) {
    let mut taken: HashSet<String> = HashSet::from(["Other".to_owned()]);
    for (i, value) in values.iter_mut().enumerate() {
        let mut base = upper_camel(&value.value);
        if base == "V" {
            base = format!("Value{}", i + 1);
        }
        if base == "Other" || base == "Self" {
            base = format!("{base}Value");
        }
        let name = unique(base, &taken, "");
        taken.insert(name.clone());
        value.variant = name;
    }
}

/// `base`, or `base{sep}2`, `base{sep}3`, ... : the first not in `taken`.
fn unique(base: String, taken: &HashSet<String>, sep: &str) -> String {
    if !taken.contains(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}{sep}{n}"))
        .find(|candidate| !taken.contains(candidate))
        .expect("an unbounded range always yields a free name")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(name: &str, ty: &str) -> FieldDescribe {
        serde_json::from_value(serde_json::json!({
            "name": name, "label": name, "type": ty, "length": 255,
            "nillable": true, "createable": true, "updateable": true,
        }))
        .unwrap()
    }

    #[test]
    fn type_table_is_heroku_connect_compatible() {
        let cases: &[(&str, u32, PgType, RustType)] = &[
            ("id", 18, PgType::Varchar(18), RustType::String),
            ("reference", 18, PgType::Varchar(18), RustType::String),
            ("string", 80, PgType::Varchar(80), RustType::String),
            ("email", 80, PgType::Varchar(80), RustType::String),
            ("phone", 40, PgType::Varchar(40), RustType::String),
            ("url", 255, PgType::Varchar(255), RustType::String),
            ("combobox", 40, PgType::Varchar(40), RustType::String),
            (
                "encryptedstring",
                175,
                PgType::Varchar(175),
                RustType::String,
            ),
            ("textarea", 255, PgType::Varchar(255), RustType::String),
            ("textarea", 4000, PgType::Varchar(4000), RustType::String),
            ("textarea", 32768, PgType::Text, RustType::String),
            (
                "multipicklist",
                4099,
                PgType::Varchar(4099),
                RustType::MultiPicklist(String::new()),
            ),
            (
                "picklist",
                40,
                PgType::Varchar(40),
                RustType::Picklist(String::new()),
            ),
            ("double", 0, PgType::DoublePrecision, RustType::F64),
            ("currency", 0, PgType::DoublePrecision, RustType::F64),
            ("percent", 0, PgType::DoublePrecision, RustType::F64),
            ("int", 0, PgType::Integer, RustType::I32),
            ("long", 0, PgType::BigInt, RustType::I64),
            ("boolean", 0, PgType::Boolean, RustType::Bool),
            ("date", 0, PgType::Date, RustType::Date),
            ("datetime", 0, PgType::Timestamp, RustType::DateTime),
            ("time", 0, PgType::Time, RustType::Time),
        ];
        for (ty, len, pg, rust) in cases {
            let mut d = describe("F__c", ty);
            d.length = *len;
            let f = field(&d, false).unwrap();
            assert_eq!((&f.pg_type, &f.rust_type), (pg, rust), "{ty}({len})");
            assert_eq!(f.sf_type.as_str(), *ty);
        }
        let mut rich = describe("Body__c", "textarea");
        rich.extra_type_info = Some("richtextarea".into());
        assert_eq!(field(&rich, false).unwrap().pg_type, PgType::Text);
    }

    #[test]
    fn unsyncable_types_are_named() {
        for ty in ["base64", "anyType", "complexvalue", "address", "location"] {
            assert_eq!(field(&describe("X", ty), false).unwrap_err(), ty);
        }
    }

    #[test]
    fn required_and_writable_follow_describe_flags() {
        let mut d = describe("Amount__c", "currency");
        d.nillable = false;
        assert!(field(&d, false).unwrap().required_on_create);
        d.defaulted_on_create = true;
        assert!(!field(&d, false).unwrap().required_on_create);
        let mut b = describe("Paid__c", "boolean");
        b.nillable = false;
        assert!(!field(&b, false).unwrap().required_on_create);
        let mut formula = describe("Total__c", "currency");
        formula.calculated = true;
        assert!(!field(&formula, false).unwrap().writable);
    }

    #[test]
    fn names() {
        assert_eq!(column_name("Id"), "sfid");
        assert_eq!(column_name("AnnualRevenue"), "annualrevenue");
        assert_eq!(
            column_name("Location__Latitude__s"),
            "location__latitude__s"
        );
        assert_eq!(rust_field_name("AnnualRevenue"), "annual_revenue");
        assert_eq!(rust_field_name("External_Id__c"), "external_id");
        assert_eq!(
            rust_field_name("Location__Latitude__s"),
            "location_latitude"
        );
        assert_eq!(rust_field_name("ns__Description__c"), "ns_description");
        assert_eq!(rust_field_name("Type"), "type_");
        assert_eq!(rust_field_name("Id"), "sfid");
        assert_eq!(module_name("Invoice__c"), "invoice");
        assert_eq!(module_name("OpportunityLineItem"), "opportunity_line_item");
        assert_eq!(type_name("Invoice__c"), "Invoice");
        assert_eq!(type_name("Account"), "Account");
        assert_eq!(table_name("Invoice__c"), "invoice__c");
    }

    #[test]
    fn variants_are_sanitised_and_unique() {
        let mut values: Vec<PicklistValue> = [
            "Closed Won",
            "--None--",
            "2020",
            "Other",
            "closed won",
            "%",
            "Customer - Direct",
        ]
        .iter()
        .map(|v| PicklistValue {
            value: (*v).into(),
            label: (*v).into(),
            variant: String::new(),
            active: true,
            default: false,
        })
        .collect();
        assign_variants(&mut values);
        let variants: Vec<_> = values.iter().map(|v| v.variant.as_str()).collect();
        assert_eq!(
            variants,
            [
                "ClosedWon",
                "None",
                "V2020",
                "OtherValue",
                "ClosedWon2",
                "Value6",
                "CustomerDirect"
            ]
        );
    }

    #[test]
    fn colliding_names_fall_back_deterministically() {
        let mut fields: Vec<Field> = ["Foo_Bar__c", "FooBar", "Type", "Status__c", "Status"]
            .iter()
            .map(|n| {
                let ty = if n.starts_with("Status") || *n == "Type" {
                    "picklist"
                } else {
                    "string"
                };
                field(&describe(n, ty), false).unwrap()
            })
            .collect();
        assign_names("Account", &mut fields);
        let names: Vec<_> = fields.iter().map(|f| f.rust_name.as_str()).collect();
        assert_eq!(names, ["foo_bar", "foobar", "type_", "status", "status_2"]);
        let enums: Vec<_> = fields
            .iter()
            .filter_map(|f| f.picklist.as_ref().map(|p| p.type_name.as_str()))
            .collect();
        assert_eq!(enums, ["AccountType", "Status", "AccountStatus"]);
    }
}
