//! The catalog: the typed, validated model of every mapping in a project.
//!
//! Loading (`mappings/*.toml` + `mappings/describe/*.json`) produces a [`Catalog`]; every renderer
//! (SQL migrations, triggers, Rust models, sync adapters) reads only this model. Nothing here knows
//! about TOML, JSON or spans: a catalog can also be built by hand in tests.

use std::path::PathBuf;

pub use crate::model::{
    Access, ConflictPolicy, DeleteMode, PgType, SfType, StreamingTransport, SyncOptions, WriteKind,
};

/// Every mapping of a project, validated and with all types resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Catalog {
    pub settings: Settings,
    /// Sorted by Salesforce object name, so output is deterministic.
    pub mappings: Vec<Mapping>,
    /// Every file the loader read (mapping TOML and describe JSON), for rebuild tracking.
    pub sources: Vec<PathBuf>,
}

/// Connection-wide settings (`mappings/forcesync.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Salesforce API version without the `v`, e.g. `"59.0"`.
    pub api_version: String,
    /// Postgres schema holding the mapped tables and the system tables, e.g. `"salesforce"`.
    pub schema: String,
    /// Default polling interval for mappings that do not set their own.
    pub poll_seconds: u32,
    /// Where the describe snapshots are, relative to the mappings directory (`describe`).
    pub describe_dir: String,
    /// The wire protocol change events stream over (`"pubsub"`, the default, or `"cometd"`).
    pub streaming_transport: StreamingTransport,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            api_version: "59.0".to_owned(),
            schema: "salesforce".to_owned(),
            poll_seconds: 600,
            describe_dir: "describe".to_owned(),
            streaming_transport: StreamingTransport::PubSub,
        }
    }
}

/// One Salesforce object synced to one Postgres table.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// Salesforce API name, e.g. `"Account"`, `"Invoice__c"`.
    pub object: String,
    pub label: String,
    /// Three-character Id prefix, e.g. `"001"`; `None` for objects without one.
    pub key_prefix: Option<String>,
    pub custom: bool,
    /// Postgres table name (lower-cased object name), e.g. `"account"`, `"invoice__c"`.
    pub table: String,
    /// Rust module name, e.g. `"account"`, `"invoice"`.
    pub module: String,
    /// Rust type name of the row struct, e.g. `"Account"`, `"Invoice"`.
    pub type_name: String,
    pub access: Access,
    /// Salesforce name of the external-ID field used to make inserts idempotent.
    pub upsert_key: Option<String>,
    /// SOQL `WHERE` condition restricting which records are synced (already validated).
    pub filter: Option<String>,
    pub sync: SyncOptions,
    /// System fields first (`Id`, `IsDeleted`, `SystemModstamp`, `CreatedDate`), then the
    /// mapped fields in mapping order, compound fields expanded into their components.
    pub fields: Vec<Field>,
    /// Indexes beyond the primary key, including the standard `sfid`/`systemmodstamp` ones.
    pub indexes: Vec<Index>,
    /// Postgres columns the mapping explicitly asks to drop (fields removed from the mapping).
    pub drop_columns: Vec<String>,
    pub mapping_file: PathBuf,
    pub describe_file: PathBuf,
}

impl Mapping {
    pub fn field(&self, sf_name: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.sf_name.eq_ignore_ascii_case(sf_name))
    }

    pub fn is_read_write(&self) -> bool {
        self.access == Access::ReadWrite
    }
}

/// One synced Salesforce field, and the one Postgres column it lands in.
///
/// Compound fields (address, geolocation) never appear here: their component fields do
/// (`BillingCity`, `Location__Latitude__s`).
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Salesforce API name, e.g. `"AnnualRevenue"`, `"Location__Latitude__s"`.
    pub sf_name: String,
    pub label: String,
    /// Postgres column, e.g. `"annualrevenue"`, `"location__latitude__s"`; `Id` maps to `"sfid"`.
    pub column: String,
    /// Rust field name (snake case, never a keyword), e.g. `"annual_revenue"`.
    pub rust_name: String,
    pub sf_type: SfType,
    pub pg_type: PgType,
    pub rust_type: RustType,
    /// Always-mapped system field (`Id`, `IsDeleted`, `SystemModstamp`, `CreatedDate`).
    pub system: bool,
    /// For compound components: the compound's name, e.g. `"BillingAddress"`.
    pub compound: Option<String>,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub defaulted_on_create: bool,
    /// Formula (calculated) field: read-only, never written back.
    pub calculated: bool,
    pub external_id: bool,
    pub unique: bool,
    /// Salesforce requires a value on create: not nillable, createable, not defaulted.
    pub required_on_create: bool,
    /// Written back to Salesforce: [`crate::model::is_writable`] for the mapping's access, and
    /// listed in `write_fields` when the mapping restricts them.
    pub writable: bool,
    /// Salesforce length for text types.
    pub length: Option<u32>,
    pub picklist: Option<Picklist>,
    /// Target objects of a reference field.
    pub reference_to: Vec<String>,
    pub relationship_name: Option<String>,
    /// A relationship column (`"Invoice__r.External_Id__c"` in `fields`): the parent record
    /// named by its external ID rather than by its Salesforce Id.
    pub relationship: Option<RelationshipPath>,
}

/// The parent a relationship column names, and how: `Invoice__r.External_Id__c` is the
/// `External_Id__c` of the `Invoice__c` record the lookup `Invoice__c` (relationship
/// `Invoice__r`) points to. Salesforce takes it on create/upsert as
/// `{"Invoice__r": {"External_Id__c": "…"}}` and answers it in queries the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationshipPath {
    /// The lookup field on the child, e.g. `"Invoice__c"`.
    pub lookup: String,
    /// The lookup's relationship name, e.g. `"Invoice__r"`.
    pub name: String,
    /// The parent object, e.g. `"Invoice__c"`.
    pub object: String,
    /// The parent's external ID field, e.g. `"External_Id__c"`.
    pub field: String,
}

impl Field {
    /// Whether the field goes into a Salesforce body of this kind ([`crate::model::is_sent`]).
    pub fn sent_on(&self, kind: WriteKind) -> bool {
        crate::model::is_sent(kind, self.writable, self.createable, self.updateable)
    }
}

/// The Rust type of a field's value (columns are `Option<_>` of it where nullable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RustType {
    String,
    F64,
    I32,
    I64,
    Bool,
    /// `chrono::NaiveDate`
    Date,
    /// `chrono::NaiveDateTime` (UTC)
    DateTime,
    /// `chrono::NaiveTime`
    Time,
    /// The generated picklist enum of that name.
    Picklist(String),
    /// The generated set type of that name (a multipicklist).
    MultiPicklist(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Picklist {
    /// Rust enum name, e.g. `"Industry"`, `"AccountType"`.
    pub type_name: String,
    /// Only the listed values are accepted by Salesforce.
    pub restricted: bool,
    pub values: Vec<PicklistValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PicklistValue {
    /// The API value, e.g. `"Agriculture"`.
    pub value: String,
    pub label: String,
    /// Rust variant name, e.g. `"Agriculture"`, `"ClosedWon"`.
    pub variant: String,
    pub active: bool,
    pub default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// `hc_idx_<table>_<column>`, or `hcu_idx_<table>_<column>` when unique.
    pub name: String,
    /// Postgres column names.
    pub columns: Vec<String>,
    pub unique: bool,
}
