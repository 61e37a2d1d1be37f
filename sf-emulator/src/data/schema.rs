//! Object and field metadata parsed from describe JSON (own serde types, tolerant of missing
//! keys), the raw describe kept per object to serve `/describe` verbatim, global-describe entries,
//! and the built-in demo org (`demo-org/*.json`, embedded at compile time).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// Describe `type` of a field.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum FieldType {
    Id,
    Reference,
    String,
    TextArea,
    Email,
    Phone,
    Url,
    Picklist,
    MultiPicklist,
    Combobox,
    EncryptedString,
    Boolean,
    Int,
    Long,
    Double,
    Currency,
    Percent,
    Date,
    DateTime,
    Time,
    Base64,
    Address,
    Location,
    AnyType,
    /// Any other describe type, kept as text (values handled as strings).
    Other(String),
}

impl FieldType {
    pub fn parse(s: &str) -> FieldType {
        match s {
            "id" => FieldType::Id,
            "reference" => FieldType::Reference,
            "string" => FieldType::String,
            "textarea" => FieldType::TextArea,
            "email" => FieldType::Email,
            "phone" => FieldType::Phone,
            "url" => FieldType::Url,
            "picklist" => FieldType::Picklist,
            "multipicklist" => FieldType::MultiPicklist,
            "combobox" => FieldType::Combobox,
            "encryptedstring" => FieldType::EncryptedString,
            "boolean" => FieldType::Boolean,
            "int" => FieldType::Int,
            "long" => FieldType::Long,
            "double" => FieldType::Double,
            "currency" => FieldType::Currency,
            "percent" => FieldType::Percent,
            "date" => FieldType::Date,
            "datetime" => FieldType::DateTime,
            "time" => FieldType::Time,
            "base64" => FieldType::Base64,
            "address" => FieldType::Address,
            "location" => FieldType::Location,
            "anyType" => FieldType::AnyType,
            other => FieldType::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FieldType::Id => "id",
            FieldType::Reference => "reference",
            FieldType::String => "string",
            FieldType::TextArea => "textarea",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Picklist => "picklist",
            FieldType::MultiPicklist => "multipicklist",
            FieldType::Combobox => "combobox",
            FieldType::EncryptedString => "encryptedstring",
            FieldType::Boolean => "boolean",
            FieldType::Int => "int",
            FieldType::Long => "long",
            FieldType::Double => "double",
            FieldType::Currency => "currency",
            FieldType::Percent => "percent",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Time => "time",
            FieldType::Base64 => "base64",
            FieldType::Address => "address",
            FieldType::Location => "location",
            FieldType::AnyType => "anyType",
            FieldType::Other(s) => s,
        }
    }

    /// Text-valued types (stored as `Value::String`).
    pub fn is_text(&self) -> bool {
        matches!(
            self,
            FieldType::String
                | FieldType::TextArea
                | FieldType::Email
                | FieldType::Phone
                | FieldType::Url
                | FieldType::Picklist
                | FieldType::MultiPicklist
                | FieldType::Combobox
                | FieldType::EncryptedString
                | FieldType::Base64
                | FieldType::AnyType
                | FieldType::Other(_)
        )
    }

    /// Id-valued types.
    pub fn is_id(&self) -> bool {
        matches!(self, FieldType::Id | FieldType::Reference)
    }

    /// Compound types, computed from their component fields on read.
    pub fn is_compound(&self) -> bool {
        matches!(self, FieldType::Address | FieldType::Location)
    }
}

/// One picklist entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PicklistValue {
    #[serde(default)]
    pub active: bool,
    #[serde(default)]
    pub default_value: bool,
    #[serde(default)]
    pub label: Option<String>,
    pub value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawField {
    name: String,
    #[serde(rename = "type")]
    ftype: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    soap_type: Option<String>,
    #[serde(default)]
    length: u32,
    #[serde(default)]
    precision: u32,
    #[serde(default)]
    scale: u32,
    #[serde(default)]
    digits: u32,
    #[serde(default = "yes")]
    nillable: bool,
    #[serde(default = "yes")]
    createable: bool,
    #[serde(default = "yes")]
    updateable: bool,
    #[serde(default)]
    defaulted_on_create: bool,
    #[serde(default)]
    calculated: bool,
    #[serde(default)]
    calculated_formula: Option<String>,
    #[serde(default)]
    auto_number: bool,
    #[serde(default)]
    external_id: bool,
    #[serde(default)]
    unique: bool,
    #[serde(default)]
    case_sensitive: bool,
    #[serde(default)]
    id_lookup: bool,
    #[serde(default)]
    name_field: bool,
    #[serde(default)]
    custom: bool,
    #[serde(default)]
    restricted_picklist: bool,
    #[serde(default)]
    picklist_values: Vec<PicklistValue>,
    #[serde(default)]
    reference_to: Vec<String>,
    #[serde(default)]
    relationship_name: Option<String>,
    #[serde(default)]
    compound_field_name: Option<String>,
    #[serde(default)]
    default_value: Option<Json>,
    #[serde(default)]
    cascade_delete: bool,
    #[serde(default)]
    restricted_delete: bool,
    #[serde(default = "yes")]
    filterable: bool,
    #[serde(default = "yes")]
    sortable: bool,
}

fn yes() -> bool {
    true
}

/// Field metadata the emulator enforces.
#[derive(Clone, Debug)]
pub struct FieldSchema {
    pub name: String,
    pub label: String,
    pub ftype: FieldType,
    pub soap_type: String,
    pub length: u32,
    pub precision: u32,
    pub scale: u32,
    pub digits: u32,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub defaulted_on_create: bool,
    pub calculated: bool,
    pub calculated_formula: Option<String>,
    pub auto_number: bool,
    pub external_id: bool,
    pub unique: bool,
    pub case_sensitive: bool,
    pub id_lookup: bool,
    pub name_field: bool,
    pub custom: bool,
    pub restricted_picklist: bool,
    pub picklist_values: Vec<PicklistValue>,
    pub reference_to: Vec<String>,
    pub relationship_name: Option<String>,
    pub compound_field_name: Option<String>,
    pub default_value: Option<Json>,
    pub filterable: bool,
    pub sortable: bool,
    pub cascade_delete: bool,
    pub restricted_delete: bool,
}

impl FieldSchema {
    fn from_raw(r: RawField) -> FieldSchema {
        FieldSchema {
            label: r.label.unwrap_or_else(|| r.name.clone()),
            ftype: FieldType::parse(&r.ftype),
            soap_type: r.soap_type.unwrap_or_default(),
            length: r.length,
            precision: r.precision,
            scale: r.scale,
            digits: r.digits,
            nillable: r.nillable,
            createable: r.createable,
            updateable: r.updateable,
            defaulted_on_create: r.defaulted_on_create,
            calculated: r.calculated,
            calculated_formula: r.calculated_formula,
            auto_number: r.auto_number,
            external_id: r.external_id,
            unique: r.unique,
            case_sensitive: r.case_sensitive,
            id_lookup: r.id_lookup,
            name_field: r.name_field,
            custom: r.custom,
            restricted_picklist: r.restricted_picklist,
            picklist_values: r.picklist_values,
            reference_to: r.reference_to,
            relationship_name: r.relationship_name,
            compound_field_name: r.compound_field_name,
            default_value: r.default_value.filter(|v| !v.is_null()),
            filterable: r.filterable,
            sortable: r.sortable,
            cascade_delete: r.cascade_delete,
            restricted_delete: r.restricted_delete,
            name: r.name,
        }
    }

    /// True when this field is a component of a different compound field (address parts,
    /// `FirstName`/`LastName` of `Name`).
    pub fn is_component(&self) -> bool {
        self.compound_field_name
            .as_deref()
            .is_some_and(|c| c != self.name)
    }

    /// Indexed for lookups by value (external IDs and unique fields).
    pub fn is_indexed(&self) -> bool {
        self.external_id || self.unique
    }

    /// Whether the active picklist values contain `v` (exact, as Salesforce compares).
    pub fn picklist_allows(&self, v: &str) -> bool {
        self.picklist_values
            .iter()
            .any(|p| p.active && p.value == v)
    }
}

/// A child relationship (`childRelationships` entry) used by composite tree and SOQL subqueries.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildRelationship {
    pub child_s_object: String,
    pub field: String,
    #[serde(default)]
    pub relationship_name: Option<String>,
    #[serde(default)]
    pub cascade_delete: bool,
    #[serde(default)]
    pub restricted_delete: bool,
}

/// What deleting a parent does to records referencing it through a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteRule {
    /// Children are deleted with the parent (master-detail, Account → Contact/Opportunity).
    Cascade,
    /// The parent cannot be deleted while children exist (Account → Case).
    Restrict,
}

/// Positions of the system fields the write path maintains (None when the object lacks one).
#[derive(Clone, Debug, Default)]
pub struct SystemFields {
    pub id: usize,
    pub is_deleted: Option<usize>,
    pub created_date: Option<usize>,
    pub created_by_id: Option<usize>,
    pub last_modified_date: Option<usize>,
    pub last_modified_by_id: Option<usize>,
    pub system_modstamp: Option<usize>,
    pub owner_id: Option<usize>,
    pub name: Option<usize>,
}

/// Object metadata: fields in describe order with a case-insensitive name → index map.
#[derive(Debug)]
pub struct ObjectSchema {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub key_prefix: String,
    pub custom: bool,
    pub fields: Vec<FieldSchema>,
    pub child_relationships: Vec<ChildRelationship>,
    pub sys: SystemFields,
    /// Per field: positions of its component fields when it is a compound field (address,
    /// location, a person `Name`); empty otherwise.
    pub components: Vec<Vec<usize>>,
    /// Per field: the compound field it is a component of, if that field exists.
    pub compound_parent: Vec<Option<usize>>,
    /// Formula fields the evaluator supports, with their parsed formulas.
    pub formulas: Vec<(usize, crate::data::formula::Expr)>,
    index: HashMap<String, usize>,
    /// Relationship name (lowercase) → reference field index.
    relationships: HashMap<String, usize>,
    /// The describe as loaded (served by `/describe` with urls rewritten).
    pub raw: Json,
}

/// Key of a component inside its compound value, capitalised as CDC sends it:
/// `BillingStreet` in `BillingAddress` → `Street`, `Loc__Latitude__s` → `Latitude`,
/// `FirstName` in `Name` → `FirstName`.
pub fn component_key(parent: &str, child: &str) -> String {
    if let Some(prefix) = parent.strip_suffix("Address") {
        if let Some(rest) = child.strip_prefix(prefix) {
            if !rest.is_empty() {
                return rest.to_string();
            }
        }
    }
    if let Some(inner) = child.strip_suffix("__s") {
        if let Some((_, k)) = inner.rsplit_once("__") {
            return k.to_string();
        }
    }
    child.to_string()
}

/// Top-level keys of a global-describe (`GET /sobjects`) entry, in the order Salesforce sends.
pub const GLOBAL_KEYS: &[&str] = &[
    "activateable",
    "associateEntityType",
    "associateParentEntity",
    "createable",
    "custom",
    "customSetting",
    "deepCloneable",
    "deletable",
    "deprecatedAndHidden",
    "feedEnabled",
    "hasSubtypes",
    "isInterface",
    "isSubtype",
    "keyPrefix",
    "label",
    "labelPlural",
    "layoutable",
    "mergeable",
    "mruEnabled",
    "name",
    "queryable",
    "replicateable",
    "retrieveable",
    "searchable",
    "triggerable",
    "undeletable",
    "updateable",
    "urls",
];

/// Error loading a describe.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

impl ObjectSchema {
    /// Parses one describe payload. `origin` names it in errors.
    pub fn from_describe(raw: Json, origin: &str) -> Result<ObjectSchema, SchemaError> {
        let invalid = |m: String| SchemaError::Invalid {
            path: origin.to_string(),
            message: m,
        };
        let obj = raw
            .as_object()
            .ok_or_else(|| invalid("describe is not a JSON object".into()))?;
        let name = obj
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("describe has no \"name\"".into()))?
            .to_string();
        let raw_fields = obj
            .get("fields")
            .cloned()
            .ok_or_else(|| invalid("describe has no \"fields\"".into()))?;
        let raw_fields: Vec<RawField> =
            serde_json::from_value(raw_fields).map_err(|e| invalid(format!("bad fields: {e}")))?;
        let fields: Vec<FieldSchema> = raw_fields.into_iter().map(FieldSchema::from_raw).collect();
        let child_relationships: Vec<ChildRelationship> = obj
            .get("childRelationships")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| invalid(format!("bad childRelationships: {e}")))?
            .unwrap_or_default();
        let mut index = HashMap::new();
        let mut relationships = HashMap::new();
        for (i, f) in fields.iter().enumerate() {
            index.insert(f.name.to_ascii_lowercase(), i);
            if let Some(r) = &f.relationship_name {
                relationships.insert(r.to_ascii_lowercase(), i);
            }
        }
        let id = *index
            .get("id")
            .ok_or_else(|| invalid(format!("object {name} has no Id field")))?;
        let pos = |n: &str| index.get(n).copied();
        let sys = SystemFields {
            id,
            is_deleted: pos("isdeleted"),
            created_date: pos("createddate"),
            created_by_id: pos("createdbyid"),
            last_modified_date: pos("lastmodifieddate"),
            last_modified_by_id: pos("lastmodifiedbyid"),
            system_modstamp: pos("systemmodstamp"),
            owner_id: pos("ownerid"),
            name: fields.iter().position(|f| f.name_field).or(pos("name")),
        };
        let custom = obj
            .get("custom")
            .and_then(Json::as_bool)
            .unwrap_or(name.ends_with("__c"));
        let key_prefix = obj
            .get("keyPrefix")
            .and_then(Json::as_str)
            .map(str::to_string)
            .unwrap_or_default();
        let label = obj
            .get("label")
            .and_then(Json::as_str)
            .unwrap_or(&name)
            .to_string();
        let label_plural = obj
            .get("labelPlural")
            .and_then(Json::as_str)
            .unwrap_or(&label)
            .to_string();
        let mut components = vec![Vec::new(); fields.len()];
        let mut compound_parent = vec![None; fields.len()];
        for (i, f) in fields.iter().enumerate() {
            if !f.is_component() {
                continue;
            }
            let parent = f
                .compound_field_name
                .as_deref()
                .and_then(|c| index.get(&c.to_ascii_lowercase()).copied());
            if let Some(p) = parent {
                components[p].push(i);
                compound_parent[i] = Some(p);
            }
        }
        let mut o = ObjectSchema {
            formulas: Vec::new(),
            components,
            compound_parent,
            name,
            label,
            label_plural,
            key_prefix,
            custom,
            fields,
            child_relationships,
            sys,
            index,
            relationships,
            raw,
        };
        o.formulas = o
            .fields
            .iter()
            .enumerate()
            .filter(|(_, f)| f.calculated)
            .filter_map(|(i, f)| {
                let text = f.calculated_formula.as_deref()?;
                crate::data::formula::parse(text, &o).map(|e| (i, e))
            })
            .collect();
        Ok(o)
    }

    /// This object with one more custom field, described by `field` (a describe `fields`
    /// entry: at least `name`, ending in `__c`, and `type`), as after an administrator adds it
    /// in Setup: it comes last, so every existing field keeps its position (stored records
    /// read it as null). Keys the entry leaves out get the values a describe shows for a new
    /// custom field. Refused: a name that is no custom field's API name or already exists,
    /// and types a custom field cannot have here (Id, compound address/geolocation).
    pub fn with_custom_field(&self, field: &Json) -> Result<ObjectSchema, String> {
        let given = field
            .as_object()
            .ok_or("the field must be a JSON object (a describe \"fields\" entry)")?;
        let name = given
            .get("name")
            .and_then(Json::as_str)
            .ok_or("the field has no \"name\"")?;
        let ftype = given
            .get("type")
            .and_then(Json::as_str)
            .ok_or("the field has no \"type\"")?;
        let base = name.strip_suffix("__c").unwrap_or("");
        let valid_base = base.starts_with(|c: char| c.is_ascii_alphabetic())
            && base.len() <= 40
            && !base.ends_with('_')
            && !base.contains("__")
            && base.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_base {
            return Err(format!(
                "{name:?} is not a custom field's API name: a letter, then letters, digits or \
                 single underscores (at most 40), then __c"
            ));
        }
        if self.field_index(name).is_some() {
            return Err(format!("{} already has a field named {name}", self.name));
        }
        let parsed = FieldType::parse(ftype);
        if matches!(
            parsed,
            FieldType::Id | FieldType::Address | FieldType::Location | FieldType::Other(_)
        ) {
            return Err(format!(
                "type {ftype:?} is not a type a custom field can be added with here"
            ));
        }
        let mut entry = new_field_entry(name, &parsed);
        if parsed == FieldType::Reference {
            // A custom lookup's relationship: `Parent__c` → `Parent__r`.
            entry.insert(
                "relationshipName".into(),
                Json::String(format!("{base}__r")),
            );
        }
        for (k, v) in given {
            entry.insert(k.clone(), v.clone());
        }
        entry.insert("custom".into(), Json::Bool(true));
        let mut raw = self.raw.clone();
        raw.get_mut("fields")
            .and_then(Json::as_array_mut)
            .ok_or("the object's describe has no fields")?
            .push(Json::Object(entry));
        let mut o = ObjectSchema::from_describe(raw, &self.name).map_err(|e| e.to_string())?;
        o.key_prefix = self.key_prefix.clone();
        Ok(o)
    }

    /// Case-insensitive field lookup → position.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.index.get(name) {
            return Some(*i);
        }
        self.index.get(&name.to_ascii_lowercase()).copied()
    }

    /// Case-insensitive field lookup.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.field_index(name).map(|i| &self.fields[i])
    }

    /// Reference field for a relationship name (`Account` → `AccountId`), case-insensitive.
    pub fn relationship_field(&self, rel: &str) -> Option<usize> {
        self.relationships.get(&rel.to_ascii_lowercase()).copied()
    }

    /// Child relationship by name (`Contacts`), case-insensitive.
    pub fn child_relationship(&self, rel: &str) -> Option<&ChildRelationship> {
        self.child_relationships.iter().find(|c| {
            c.relationship_name
                .as_deref()
                .is_some_and(|r| r.eq_ignore_ascii_case(rel))
        })
    }

    /// The CDC channel entity name: `Account` → `AccountChangeEvent`,
    /// `Invoice__c` → `Invoice__ChangeEvent`.
    pub fn change_event_name(&self) -> String {
        match self.name.strip_suffix("__c") {
            Some(base) => format!("{base}__ChangeEvent"),
            None => format!("{}ChangeEvent", self.name),
        }
    }

    /// The describe with every `/services/data/vNN.N/` rewritten to `version` and absolute
    /// Salesforce UI hosts replaced by `base_url`.
    pub fn describe_json(&self, version: &str, base_url: &str) -> Json {
        let mut v = self.raw.clone();
        rewrite_urls(&mut v, version, base_url);
        v
    }

    /// The global-describe entry (`GET /sobjects`) for this object.
    pub fn global_entry(&self, version: &str) -> Json {
        let raw = self.raw.as_object();
        let mut m = Map::new();
        for k in GLOBAL_KEYS {
            let v = raw.and_then(|o| o.get(*k)).cloned().unwrap_or(Json::Null);
            m.insert((*k).to_string(), v);
        }
        m.insert("name".into(), Json::String(self.name.clone()));
        m.insert("keyPrefix".into(), Json::String(self.key_prefix.clone()));
        let base = format!("/services/data/v{version}/sobjects/{}", self.name);
        let mut urls = Map::new();
        urls.insert("sobject".into(), Json::String(base.clone()));
        urls.insert("describe".into(), Json::String(format!("{base}/describe")));
        urls.insert("rowTemplate".into(), Json::String(format!("{base}/{{ID}}")));
        m.insert("urls".into(), Json::Object(urls));
        Json::Object(m)
    }
}

/// A describe `fields` entry as Salesforce shows it for a new, optional custom field of this
/// type (the keys the write path and clients read; `with_custom_field` overlays the given ones).
fn new_field_entry(name: &str, t: &FieldType) -> Map<String, Json> {
    let text = t.is_text();
    let (soap, length, precision, scale) = match t {
        FieldType::Boolean => ("xsd:boolean", 0, 0, 0),
        FieldType::Int => ("xsd:int", 0, 0, 0),
        FieldType::Long => ("xsd:long", 0, 0, 0),
        FieldType::Double | FieldType::Currency | FieldType::Percent => ("xsd:double", 0, 18, 0),
        FieldType::Date => ("xsd:date", 0, 0, 0),
        FieldType::DateTime => ("xsd:dateTime", 0, 0, 0),
        FieldType::Time => ("xsd:time", 0, 0, 0),
        FieldType::Reference => ("tns:ID", 18, 0, 0),
        FieldType::TextArea => ("xsd:string", 255, 0, 0),
        _ => ("xsd:string", 255, 0, 0),
    };
    let label = name.trim_end_matches("__c").replace('_', " ");
    let entries: [(&str, Json); 57] = [
        (
            "aggregatable",
            serde_json::json!(!matches!(t, FieldType::TextArea | FieldType::MultiPicklist)),
        ),
        ("aiPredictionField", serde_json::json!(false)),
        ("autoNumber", serde_json::json!(false)),
        (
            "byteLength",
            serde_json::json!(if text || *t == FieldType::Reference {
                length * 3
            } else {
                0
            }),
        ),
        ("calculated", serde_json::json!(false)),
        ("calculatedFormula", serde_json::json!(null)),
        ("cascadeDelete", serde_json::json!(false)),
        ("caseSensitive", serde_json::json!(false)),
        ("compoundFieldName", serde_json::json!(null)),
        ("controllerName", serde_json::json!(null)),
        ("createable", serde_json::json!(true)),
        ("custom", serde_json::json!(true)),
        (
            "defaultValue",
            serde_json::json!(if *t == FieldType::Boolean {
                Json::Bool(false)
            } else {
                Json::Null
            }),
        ),
        ("defaultValueFormula", serde_json::json!(null)),
        (
            "defaultedOnCreate",
            serde_json::json!(*t == FieldType::Boolean),
        ),
        ("dependentPicklist", serde_json::json!(false)),
        ("deprecatedAndHidden", serde_json::json!(false)),
        ("digits", serde_json::json!(0)),
        ("displayLocationInDecimal", serde_json::json!(false)),
        ("encrypted", serde_json::json!(false)),
        ("externalId", serde_json::json!(false)),
        ("extraTypeInfo", serde_json::json!(null)),
        (
            "filterable",
            serde_json::json!(!matches!(t, FieldType::TextArea)),
        ),
        ("filteredLookupInfo", serde_json::json!(null)),
        ("formulaTreatNullNumberAsZero", serde_json::json!(false)),
        (
            "groupable",
            serde_json::json!(!matches!(
                t,
                FieldType::TextArea
                    | FieldType::Double
                    | FieldType::Currency
                    | FieldType::Percent
                    | FieldType::DateTime
                    | FieldType::MultiPicklist
            )),
        ),
        ("highScaleNumber", serde_json::json!(false)),
        ("htmlFormatted", serde_json::json!(false)),
        ("idLookup", serde_json::json!(false)),
        ("inlineHelpText", serde_json::json!(null)),
        ("label", serde_json::json!(label)),
        ("length", serde_json::json!(length)),
        ("mask", serde_json::json!(null)),
        ("maskType", serde_json::json!(null)),
        ("name", serde_json::json!(name)),
        ("nameField", serde_json::json!(false)),
        ("namePointing", serde_json::json!(false)),
        ("nillable", serde_json::json!(*t != FieldType::Boolean)),
        ("permissionable", serde_json::json!(true)),
        ("picklistValues", serde_json::json!([])),
        ("polymorphicForeignKey", serde_json::json!(false)),
        ("precision", serde_json::json!(precision)),
        ("queryByDistance", serde_json::json!(false)),
        ("referenceTargetField", serde_json::json!(null)),
        ("referenceTo", serde_json::json!([])),
        ("relationshipName", serde_json::json!(null)),
        ("relationshipOrder", serde_json::json!(null)),
        ("restrictedDelete", serde_json::json!(false)),
        ("restrictedPicklist", serde_json::json!(false)),
        ("scale", serde_json::json!(scale)),
        ("searchPrefilterable", serde_json::json!(false)),
        ("soapType", serde_json::json!(soap)),
        (
            "sortable",
            serde_json::json!(!matches!(t, FieldType::TextArea | FieldType::MultiPicklist)),
        ),
        ("type", serde_json::json!(t.as_str())),
        ("unique", serde_json::json!(false)),
        ("updateable", serde_json::json!(true)),
        ("writeRequiresMasterRead", serde_json::json!(false)),
    ];
    entries
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

fn rewrite_urls(v: &mut Json, version: &str, base_url: &str) {
    match v {
        Json::String(s) => {
            if let Some(pos) = s.find("/services/data/v") {
                let rest = &s[pos + "/services/data/v".len()..];
                if let Some(slash) = rest.find('/') {
                    *s = format!("{}/services/data/v{version}{}", &s[..pos], &rest[slash..]);
                }
            }
            if s.starts_with("https://") && s.contains(".salesforce.com") {
                if let Some(end) = s["https://".len()..].find('/') {
                    let path = s["https://".len() + end..].to_string();
                    *s = format!("{base_url}{path}");
                }
            }
        }
        Json::Array(a) => a
            .iter_mut()
            .for_each(|x| rewrite_urls(x, version, base_url)),
        Json::Object(o) => o
            .values_mut()
            .for_each(|x| rewrite_urls(x, version, base_url)),
        _ => {}
    }
}

/// All objects of the org, with case-insensitive name and key-prefix lookup.
#[derive(Debug, Default)]
pub struct OrgSchema {
    pub objects: Vec<Arc<ObjectSchema>>,
    /// Per parent object: (child object, child reference field, rule) for cascade and
    /// restricted deletes.
    pub delete_rules: Vec<Vec<(usize, usize, DeleteRule)>>,
    by_name: HashMap<String, usize>,
    by_prefix: HashMap<String, usize>,
}

/// The built-in demo org's describe files.
pub const DEMO_DESCRIBES: &[(&str, &str)] = &[
    (
        "account.describe.json",
        include_str!("../../demo-org/account.describe.json"),
    ),
    (
        "contact.describe.json",
        include_str!("../../demo-org/contact.describe.json"),
    ),
    (
        "opportunity.describe.json",
        include_str!("../../demo-org/opportunity.describe.json"),
    ),
    (
        "lead.describe.json",
        include_str!("../../demo-org/lead.describe.json"),
    ),
    (
        "case.describe.json",
        include_str!("../../demo-org/case.describe.json"),
    ),
    (
        "invoice__c.describe.json",
        include_str!("../../demo-org/invoice__c.describe.json"),
    ),
    (
        "invoice_line__c.describe.json",
        include_str!("../../demo-org/invoice_line__c.describe.json"),
    ),
];

impl OrgSchema {
    /// Builds an org from parsed objects. Objects without a key prefix get one (`a00`, `a01`, …).
    pub fn new(objects: Vec<ObjectSchema>) -> OrgSchema {
        let mut s = OrgSchema::default();
        let mut next_custom = 0u32;
        for mut o in objects {
            if o.key_prefix.len() != 3 {
                loop {
                    let p = format!("a{:02}", next_custom);
                    next_custom += 1;
                    if !s.by_prefix.contains_key(&p) {
                        o.key_prefix = p;
                        break;
                    }
                }
            }
            let i = s.objects.len();
            s.by_name.insert(o.name.to_ascii_lowercase(), i);
            s.by_prefix.entry(o.key_prefix.clone()).or_insert(i);
            s.objects.push(Arc::new(o));
        }
        s.delete_rules = delete_rules(&s);
        s
    }

    /// The org with object `i` replaced by `object` (an admin's metadata change: a field
    /// added). Other objects are shared; delete rules are worked out again.
    pub fn with_object(&self, i: usize, object: ObjectSchema) -> OrgSchema {
        let mut objects = self.objects.clone();
        objects[i] = Arc::new(object);
        let mut s = OrgSchema {
            objects,
            delete_rules: Vec::new(),
            by_name: self.by_name.clone(),
            by_prefix: self.by_prefix.clone(),
        };
        s.delete_rules = delete_rules(&s);
        s
    }
}

/// Delete rules: declared on the child field or on the parent's child relationship.
fn delete_rules(s: &OrgSchema) -> Vec<Vec<(usize, usize, DeleteRule)>> {
    let mut rules = vec![Vec::new(); s.objects.len()];
    for (ci, child) in s.objects.iter().enumerate() {
        for (fi, f) in child.fields.iter().enumerate() {
            if f.ftype != FieldType::Reference {
                continue;
            }
            for target in &f.reference_to {
                let Some(pi) = s.object_index(target) else {
                    continue;
                };
                let declared = s.objects[pi].child_relationships.iter().find(|c| {
                    c.child_s_object.eq_ignore_ascii_case(&child.name)
                        && c.field.eq_ignore_ascii_case(&f.name)
                });
                let cascade = f.cascade_delete || declared.is_some_and(|c| c.cascade_delete);
                let restrict = f.restricted_delete || declared.is_some_and(|c| c.restricted_delete);
                if cascade {
                    rules[pi].push((ci, fi, DeleteRule::Cascade));
                } else if restrict {
                    rules[pi].push((ci, fi, DeleteRule::Restrict));
                }
            }
        }
    }
    rules
}

impl OrgSchema {
    /// Reference fields of `obj` that carry a delete rule (indexed by the store).
    pub fn rule_fields(&self, obj: usize) -> Vec<usize> {
        let mut v: Vec<usize> = self
            .delete_rules
            .iter()
            .flatten()
            .filter(|(c, _, _)| *c == obj)
            .map(|(_, f, _)| *f)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The built-in demo org (Account, Contact, Opportunity, Lead, Case, and custom objects
    /// embedded alongside them).
    pub fn demo() -> OrgSchema {
        let objects = DEMO_DESCRIBES
            .iter()
            .map(|(name, text)| {
                let raw: Json = serde_json::from_str(text).expect("embedded describe is JSON");
                ObjectSchema::from_describe(raw, name).expect("embedded describe is valid")
            })
            .collect();
        OrgSchema::new(objects)
    }

    /// Loads every `*.json` describe in `dir` (files without `fields`, such as a global
    /// describe, are skipped).
    pub fn load_dir(dir: &Path) -> Result<OrgSchema, SchemaError> {
        let io = |e: std::io::Error| SchemaError::Io {
            path: dir.display().to_string(),
            source: e,
        };
        let mut paths: Vec<_> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        let mut objects = Vec::new();
        for p in paths {
            let origin = p.display().to_string();
            let text = std::fs::read_to_string(&p).map_err(|e| SchemaError::Io {
                path: origin.clone(),
                source: e,
            })?;
            let raw: Json = serde_json::from_str(&text).map_err(|e| SchemaError::Invalid {
                path: origin.clone(),
                message: e.to_string(),
            })?;
            if raw.get("fields").is_none() {
                continue;
            }
            objects.push(ObjectSchema::from_describe(raw, &origin)?);
        }
        if objects.is_empty() {
            return Err(SchemaError::Invalid {
                path: dir.display().to_string(),
                message: "no describe files (*.json with \"fields\") found".into(),
            });
        }
        Ok(OrgSchema::new(objects))
    }

    /// Position of an object by name (case-insensitive).
    pub fn object_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(&name.to_ascii_lowercase()).copied()
    }

    /// Object by name (case-insensitive).
    pub fn object(&self, name: &str) -> Option<&Arc<ObjectSchema>> {
        self.object_index(name).map(|i| &self.objects[i])
    }

    /// Position of the object owning a key prefix.
    pub fn object_index_by_prefix(&self, prefix: &str) -> Option<usize> {
        self.by_prefix.get(prefix).copied()
    }

    /// `GET /sobjects` body.
    pub fn global_describe(&self, version: &str) -> Json {
        serde_json::json!({
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": self.objects.iter().map(|o| o.global_entry(version)).collect::<Vec<_>>(),
        })
    }
}

/// Well-known key prefixes of standard objects the emulator does not model (references to
/// them are checked by prefix only).
pub fn well_known_prefix(object: &str) -> Option<&'static str> {
    Some(match object {
        "User" => "005",
        "Group" => "00G",
        "RecordType" => "012",
        "Profile" => "00e",
        "UserRole" => "00E",
        "Organization" => "00D",
        "Campaign" => "701",
        "Contract" => "800",
        "Pricebook2" => "01s",
        "Product2" => "01t",
        "Asset" => "02i",
        "Individual" => "0PK",
        "DandBCompany" => "06E",
        "OperatingHours" => "0OH",
        "BusinessHours" => "01m",
        "Entitlement" => "550",
        "ServiceContract" => "810",
        "Solution" => "501",
        "Partner" => "00I",
        "Task" => "00T",
        "Event" => "00U",
        "Queue" => "00G",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_org_loads_with_system_fields() {
        let s = OrgSchema::demo();
        assert_eq!(s.objects.len(), DEMO_DESCRIBES.len());
        let acc = s.object("account").unwrap();
        assert_eq!(acc.key_prefix, "001");
        assert_eq!(acc.fields[acc.sys.id].name, "Id");
        assert!(acc.sys.system_modstamp.is_some());
        assert_eq!(acc.field("billingcity").unwrap().name, "BillingCity");
        assert_eq!(
            acc.relationship_field("parent"),
            acc.field_index("ParentId")
        );
        assert_eq!(acc.change_event_name(), "AccountChangeEvent");
        let g = acc.global_entry("59.0");
        assert_eq!(g.as_object().unwrap().len(), GLOBAL_KEYS.len());
        assert_eq!(
            g["urls"]["sobject"],
            "/services/data/v59.0/sobjects/Account"
        );
        let d = acc.describe_json("61.0", "http://127.0.0.1:1");
        assert_eq!(
            d["urls"]["describe"],
            "/services/data/v61.0/sobjects/Account/describe"
        );
        assert_eq!(d["urls"]["uiDetailTemplate"], "http://127.0.0.1:1/{ID}");
    }
}
