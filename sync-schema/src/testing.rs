//! Hand-built catalogs for tests: renderers and the migration planner can be exercised without
//! mapping files. Types and names come from the loader's own rules (`types`), so tests compare
//! against fixed expected values rather than a second implementation. Not part of the stable API.

use crate::catalog::*;
use crate::describe::FieldDescribe;
use crate::types;

/// The describe of a field of this type, named and labelled `sf_name`: nillable, createable and
/// updateable, text of length 255 (Ids and references 18).
pub fn describe(sf_name: &str, sf_type: SfType) -> FieldDescribe {
    let length = match sf_type {
        SfType::Id | SfType::Reference => 18,
        t if t.is_text() => 255,
        _ => 0,
    };
    let json = serde_json::json!({
        "name": sf_name,
        "label": sf_name,
        "type": sf_type.as_str(),
        "length": length,
        "nillable": true,
        "createable": true,
        "updateable": true,
    });
    serde_json::from_value(json).expect("a describe field")
}

/// The catalog field of [`describe`], typed and named by the loader's own rules
/// ([`types::field`], [`types::rust_field_name`]); picklist names are set by [`mapping`].
pub fn field(sf_name: &str, sf_type: SfType) -> Field {
    from_describe(&describe(sf_name, sf_type))
}

/// A catalog field from a describe field, typed and named by the loader's rules.
pub fn from_describe(describe: &FieldDescribe) -> Field {
    let mut field = types::field(describe, false).expect("a syncable type");
    field.rust_name = types::rust_field_name(&describe.name);
    field
}

/// A picklist field with these values.
pub fn picklist(sf_name: &str, multi: bool, values: &[&str]) -> Field {
    let ty = if multi {
        SfType::MultiPicklist
    } else {
        SfType::Picklist
    };
    let mut describe = describe(sf_name, ty);
    describe.picklist_values = values
        .iter()
        .map(|v| serde_json::from_value(serde_json::json!({"value": v, "active": true})))
        .collect::<Result<_, _>>()
        .expect("picklist entries");
    from_describe(&describe)
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
        f.required_on_create = false;
    }
    fields
}

/// A mapping over `fields` (system fields are added first) with the standard indexes.
pub fn mapping(object: &str, access: Access, fields: Vec<Field>) -> Mapping {
    let table = types::table_name(object);
    let base = object.trim_end_matches("__c");
    let mut all = system_fields();
    all.extend(fields);
    for f in &mut all {
        f.writable = f.writable
            && crate::model::is_writable(
                access,
                f.system,
                f.createable,
                f.updateable,
                f.calculated,
            );
    }
    types::assign_names(&types::type_name(object), &mut all);
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
        module: types::module_name(object),
        type_name: types::type_name(object),
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
    let mut name = describe("Name", SfType::String);
    name.nillable = false;
    name.length = 80;
    let name = from_describe(&name);
    let mut status = picklist("Status__c", false, &["Draft", "Sent", "Paid", "Other"]);
    if let Some(p) = status.picklist.as_mut() {
        p.restricted = true;
    }
    let tags = picklist("Tags__c", true, &["Red", "Green", "Blue"]);
    let mut total = describe("Total__c", SfType::Currency);
    total.calculated = true;
    total.createable = false;
    total.updateable = false;
    let total = from_describe(&total);
    let mut ext = describe("External_Id__c", SfType::String);
    ext.external_id = true;
    ext.unique = true;
    let ext = from_describe(&ext);
    let mut notes = describe("Notes__c", SfType::TextArea);
    notes.length = 32768;
    let notes = from_describe(&notes);
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
