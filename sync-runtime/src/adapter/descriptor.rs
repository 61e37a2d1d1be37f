//! Static descriptions of mappings and fields, emitted by the code generator as `static` data.

/// Salesforce field types (describe `type`) that forcesync syncs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SfType {
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
    Double,
    Currency,
    Percent,
    Int,
    Long,
    Boolean,
    Date,
    DateTime,
    Time,
}

impl SfType {
    /// The describe `type` string, e.g. `"datetime"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SfType::Id => "id",
            SfType::Reference => "reference",
            SfType::String => "string",
            SfType::TextArea => "textarea",
            SfType::Email => "email",
            SfType::Phone => "phone",
            SfType::Url => "url",
            SfType::Picklist => "picklist",
            SfType::MultiPicklist => "multipicklist",
            SfType::Combobox => "combobox",
            SfType::EncryptedString => "encryptedstring",
            SfType::Double => "double",
            SfType::Currency => "currency",
            SfType::Percent => "percent",
            SfType::Int => "int",
            SfType::Long => "long",
            SfType::Boolean => "boolean",
            SfType::Date => "date",
            SfType::DateTime => "datetime",
            SfType::Time => "time",
        }
    }
}

/// Whether changes made in Postgres are written back to Salesforce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    ReadOnly,
    ReadWrite,
}

/// What a delete in Salesforce does to the Postgres row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeleteMode {
    /// Delete the row (Heroku Connect's behaviour).
    Hard,
    /// Keep the row with `isdeleted = true`.
    Soft,
}

/// How a change made on both sides since the last sync is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictPolicy {
    Merge,
    SalesforceWins,
    PostgresWins,
    LastWriterWins,
}

/// Per-mapping sync settings (`[sync]` in the mapping file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncOptions {
    /// Use Change Data Capture when the org offers it; poll otherwise.
    pub streaming: bool,
    pub poll_seconds: u32,
    pub deletes: DeleteMode,
    pub conflict: ConflictPolicy,
    pub max_daily_api_calls: u32,
}

/// One synced Salesforce field and the Postgres column it lands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldDescriptor {
    /// Salesforce API name, e.g. `"BillingCity"`.
    pub sf_name: &'static str,
    /// Postgres column, e.g. `"billingcity"`; `Id` lands in `"sfid"`.
    pub column: &'static str,
    pub label: &'static str,
    pub sf_type: SfType,
    /// For a compound component: the compound field (`"BillingAddress"`, `"Location__c"`).
    pub compound: Option<&'static str>,
    /// For a compound component: its key inside the compound value (`"City"`, `"Latitude"`),
    /// matched case-insensitively.
    pub compound_key: Option<&'static str>,
    /// Salesforce length of text fields.
    pub length: Option<u32>,
    /// Always-mapped system field (`Id`, `IsDeleted`, `SystemModstamp`, `CreatedDate`).
    pub system: bool,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    /// Formula field: never written back.
    pub calculated: bool,
    pub external_id: bool,
    pub unique: bool,
    /// Salesforce rejects a create without it.
    pub required_on_create: bool,
    /// Written back to Salesforce (read-write mapping, createable or updateable, not a formula).
    pub writable: bool,
    /// Target objects of a reference field.
    pub reference_to: &'static [&'static str],
}

impl FieldDescriptor {
    /// Sent when creating the record in Salesforce.
    pub fn sent_on_create(&self) -> bool {
        self.writable && self.createable
    }

    /// Sent when updating the record in Salesforce.
    pub fn sent_on_update(&self) -> bool {
        self.writable && self.updateable
    }
}

/// One Salesforce object synced to one Postgres table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MappingDescriptor {
    /// Salesforce API name, e.g. `"Account"`.
    pub object: &'static str,
    pub label: &'static str,
    /// Postgres schema, e.g. `"salesforce"`.
    pub schema: &'static str,
    /// Postgres table, e.g. `"account"`.
    pub table: &'static str,
    /// Three-character Id prefix, e.g. `"001"`.
    pub key_prefix: Option<&'static str>,
    pub access: Access,
    /// Salesforce name of the external-ID field used for idempotent inserts.
    pub upsert_key: Option<&'static str>,
    /// SOQL `WHERE` condition restricting the synced records.
    pub filter: Option<&'static str>,
    pub sync: SyncOptions,
    /// System fields first, then mapped fields; compound fields appear as their components.
    pub fields: &'static [FieldDescriptor],
}

impl MappingDescriptor {
    /// The field with this Salesforce API name (case-insensitive).
    pub fn field(&self, sf_name: &str) -> Option<&'static FieldDescriptor> {
        self.fields
            .iter()
            .find(|f| f.sf_name.eq_ignore_ascii_case(sf_name))
    }

    /// The field stored in this Postgres column.
    pub fn field_by_column(&self, column: &str) -> Option<&'static FieldDescriptor> {
        self.fields.iter().find(|f| f.column == column)
    }

    pub fn is_read_write(&self) -> bool {
        self.access == Access::ReadWrite
    }

    /// `schema.table`, for SQL.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The Salesforce field names to select in SOQL, in descriptor order.
    pub fn soql_fields(&self) -> impl Iterator<Item = &'static str> {
        self.fields.iter().map(|f| f.sf_name)
    }
}
