//! Hand-built catalogs for tests: renderers and the migration planner can be exercised without
//! mapping files. Not part of the stable API.

use heck::{ToSnakeCase, ToUpperCamelCase};

use crate::catalog::*;

/// A field with the type's Heroku Connect column type and default flags (nillable, createable,
/// updateable, writable).
pub fn field(sf_name: &str, sf_type: SfType) -> Field {
    let type_base = sf_name.trim_end_matches("__c").to_upper_camel_case();
    let (pg_type, rust_type, length) = match sf_type {
        SfType::Id | SfType::Reference => (PgType::Varchar(18), RustType::String, Some(18)),
        SfType::String
        | SfType::Email
        | SfType::Phone
        | SfType::Url
        | SfType::Combobox
        | SfType::EncryptedString
        | SfType::TextArea => (PgType::Varchar(255), RustType::String, Some(255)),
        SfType::Picklist => (
            PgType::Varchar(255),
            RustType::Picklist(type_base.clone()),
            Some(255),
        ),
        SfType::MultiPicklist => (
            PgType::Varchar(4099),
            RustType::MultiPicklist(format!("{type_base}Set")),
            Some(4099),
        ),
        SfType::Double | SfType::Currency | SfType::Percent => {
            (PgType::DoublePrecision, RustType::F64, None)
        }
        SfType::Int => (PgType::Integer, RustType::I32, None),
        SfType::Long => (PgType::BigInt, RustType::I64, None),
        SfType::Boolean => (PgType::Boolean, RustType::Bool, None),
        SfType::Date => (PgType::Date, RustType::Date, None),
        SfType::DateTime => (PgType::Timestamp, RustType::DateTime, None),
        SfType::Time => (PgType::Time, RustType::Time, None),
    };
    let column = if sf_type == SfType::Id {
        "sfid".to_owned()
    } else {
        sf_name.to_lowercase()
    };
    let rust_name = if sf_type == SfType::Id {
        "sfid".to_owned()
    } else {
        sf_name
            .trim_end_matches("__c")
            .trim_end_matches("__s")
            .replace("__", "_")
            .to_snake_case()
    };
    Field {
        sf_name: sf_name.to_owned(),
        label: sf_name.to_owned(),
        column,
        rust_name,
        sf_type,
        pg_type,
        rust_type,
        system: false,
        compound: None,
        nillable: true,
        createable: true,
        updateable: true,
        defaulted_on_create: false,
        calculated: false,
        external_id: false,
        unique: false,
        required_on_create: false,
        writable: true,
        length,
        picklist: None,
        reference_to: Vec::new(),
        relationship_name: None,
    }
}

/// A picklist field with these values (variants are the values in UpperCamelCase).
pub fn picklist(sf_name: &str, multi: bool, values: &[&str]) -> Field {
    let ty = if multi {
        SfType::MultiPicklist
    } else {
        SfType::Picklist
    };
    let mut f = field(sf_name, ty);
    f.picklist = Some(Picklist {
        type_name: sf_name.trim_end_matches("__c").to_upper_camel_case(),
        restricted: false,
        values: values
            .iter()
            .map(|v| PicklistValue {
                value: (*v).to_owned(),
                label: (*v).to_owned(),
                variant: v.to_upper_camel_case(),
                active: true,
                default: false,
            })
            .collect(),
    });
    f
}

/// The always-mapped system fields.
pub fn system_fields() -> Vec<Field> {
    let mut fields = vec![
        field("Id", SfType::Id),
        field("IsDeleted", SfType::Boolean),
        field("SystemModstamp", SfType::DateTime),
        field("CreatedDate", SfType::DateTime),
    ];
    for f in &mut fields {
        f.system = true;
        f.createable = false;
        f.updateable = false;
        f.writable = false;
        f.nillable = false;
    }
    fields
}

/// A mapping over `fields` (system fields are added first) with the standard indexes.
pub fn mapping(object: &str, access: Access, fields: Vec<Field>) -> Mapping {
    let table = object.to_lowercase();
    let base = object.trim_end_matches("__c");
    let mut all = system_fields();
    all.extend(fields);
    if access == Access::ReadOnly {
        for f in &mut all {
            f.writable = false;
        }
    }
    Mapping {
        object: object.to_owned(),
        label: base.to_owned(),
        key_prefix: None,
        custom: object.ends_with("__c"),
        indexes: vec![
            Index {
                name: format!("hcu_idx_{table}_sfid"),
                columns: vec!["sfid".to_owned()],
                unique: true,
            },
            Index {
                name: format!("hc_idx_{table}_systemmodstamp"),
                columns: vec!["systemmodstamp".to_owned()],
                unique: false,
            },
        ],
        table,
        module: base.to_snake_case(),
        type_name: base.to_upper_camel_case(),
        access,
        upsert_key: None,
        filter: None,
        sync: SyncOptions {
            streaming: true,
            poll_seconds: 600,
            deletes: DeleteMode::Hard,
            conflict: ConflictPolicy::Merge,
            max_daily_api_calls: 30000,
        },
        fields: all,
        drop_columns: Vec::new(),
        mapping_file: format!("mappings/{object}.toml").into(),
        describe_file: format!("mappings/describe/{object}.json").into(),
    }
}

/// Adds an index on `column` named the Heroku Connect way.
pub fn with_index(mut mapping: Mapping, column: &str, unique: bool) -> Mapping {
    let prefix = if unique { "hcu_idx" } else { "hc_idx" };
    mapping.indexes.push(Index {
        name: format!("{prefix}_{}_{column}", mapping.table),
        columns: vec![column.to_owned()],
        unique,
    });
    mapping
}

pub fn catalog(mut mappings: Vec<Mapping>) -> Catalog {
    mappings.sort_by(|a, b| a.object.cmp(&b.object));
    Catalog {
        settings: Settings::default(),
        mappings,
        sources: Vec::new(),
    }
}

/// A read-write `Widget__c` covering every column type, and a read-only `Gadget__c`.
pub fn sample_catalog() -> Catalog {
    let mut name = field("Name", SfType::String);
    name.nillable = false;
    name.required_on_create = true;
    name.length = Some(80);
    name.pg_type = PgType::Varchar(80);
    let mut status = picklist("Status__c", false, &["Draft", "Sent", "Paid", "Other"]);
    if let Some(p) = status.picklist.as_mut() {
        p.restricted = true;
    }
    let tags = picklist("Tags__c", true, &["Red", "Green", "Blue"]);
    let mut total = field("Total__c", SfType::Currency);
    total.calculated = true;
    total.createable = false;
    total.updateable = false;
    total.writable = false;
    let mut ext = field("External_Id__c", SfType::String);
    ext.external_id = true;
    ext.unique = true;
    let mut notes = field("Notes__c", SfType::TextArea);
    notes.pg_type = PgType::Text;
    notes.length = Some(32768);
    let mut account = field("Account__c", SfType::Reference);
    account.reference_to = vec!["Account".to_owned()];
    let mut lat = field("Location__Latitude__s", SfType::Double);
    lat.compound = Some("Location__c".to_owned());
    let mut lon = field("Location__Longitude__s", SfType::Double);
    lon.compound = Some("Location__c".to_owned());
    let mut city = field("BillingCity", SfType::String);
    city.compound = Some("BillingAddress".to_owned());
    let widget = mapping(
        "Widget__c",
        Access::ReadWrite,
        vec![
            name,
            status,
            tags,
            field("Quantity__c", SfType::Int),
            field("Serial__c", SfType::Long),
            field("Price__c", SfType::Double),
            total,
            field("Active__c", SfType::Boolean),
            field("Due__c", SfType::Date),
            field("Shipped__c", SfType::DateTime),
            field("Pickup__c", SfType::Time),
            notes,
            ext,
            account,
            lat,
            lon,
            city,
        ],
    );
    let mut widget = with_index(widget, "external_id__c", true);
    widget.upsert_key = Some("External_Id__c".to_owned());
    let gadget = mapping(
        "Gadget__c",
        Access::ReadOnly,
        vec![field("Name", SfType::String)],
    );
    catalog(vec![widget, gadget])
}
