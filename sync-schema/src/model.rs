//! The vocabulary shared by the code generator and the runtime: Salesforce and Postgres types,
//! access, sync options, and the rule deciding which fields are written back to Salesforce.
//!
//! Defined once here and re-exported by `sync_runtime::adapter` under the same names, so the
//! catalog, the generated code and the engine cannot disagree. No dependencies.

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
    /// Every syncable type, in declaration order.
    pub const ALL: [SfType; 20] = [
        SfType::Id,
        SfType::Reference,
        SfType::String,
        SfType::TextArea,
        SfType::Email,
        SfType::Phone,
        SfType::Url,
        SfType::Picklist,
        SfType::MultiPicklist,
        SfType::Combobox,
        SfType::EncryptedString,
        SfType::Double,
        SfType::Currency,
        SfType::Percent,
        SfType::Int,
        SfType::Long,
        SfType::Boolean,
        SfType::Date,
        SfType::DateTime,
        SfType::Time,
    ];

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

    /// The type of a describe `type` string; `None` for types forcesync cannot sync (base64,
    /// anyType, ...) and for compound types (address, location), which sync as their components.
    pub fn from_describe(describe_type: &str) -> Option<SfType> {
        SfType::ALL
            .into_iter()
            .find(|t| t.as_str() == describe_type)
    }

    /// The variant name, as generated code spells it (`SfType::DateTime`).
    pub fn variant_name(self) -> &'static str {
        match self {
            SfType::Id => "Id",
            SfType::Reference => "Reference",
            SfType::String => "String",
            SfType::TextArea => "TextArea",
            SfType::Email => "Email",
            SfType::Phone => "Phone",
            SfType::Url => "Url",
            SfType::Picklist => "Picklist",
            SfType::MultiPicklist => "MultiPicklist",
            SfType::Combobox => "Combobox",
            SfType::EncryptedString => "EncryptedString",
            SfType::Double => "Double",
            SfType::Currency => "Currency",
            SfType::Percent => "Percent",
            SfType::Int => "Int",
            SfType::Long => "Long",
            SfType::Boolean => "Boolean",
            SfType::Date => "Date",
            SfType::DateTime => "DateTime",
            SfType::Time => "Time",
        }
    }

    /// Text-valued types (compared as strings in filters, sent as JSON strings).
    pub fn is_text(self) -> bool {
        matches!(
            self,
            SfType::Id
                | SfType::Reference
                | SfType::String
                | SfType::TextArea
                | SfType::Email
                | SfType::Phone
                | SfType::Url
                | SfType::Picklist
                | SfType::MultiPicklist
                | SfType::Combobox
                | SfType::EncryptedString
        )
    }
}

/// Postgres column types (Heroku Connect compatible).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PgType {
    Varchar(u32),
    Text,
    DoublePrecision,
    Integer,
    BigInt,
    Boolean,
    Date,
    /// `timestamp` without time zone, holding UTC.
    Timestamp,
    Time,
}

impl PgType {
    /// SQL spelling, e.g. `varchar(255)`, `double precision`.
    pub fn sql(&self) -> String {
        match self {
            PgType::Varchar(n) => format!("varchar({n})"),
            PgType::Text => "text".to_owned(),
            PgType::DoublePrecision => "double precision".to_owned(),
            PgType::Integer => "integer".to_owned(),
            PgType::BigInt => "bigint".to_owned(),
            PgType::Boolean => "boolean".to_owned(),
            PgType::Date => "date".to_owned(),
            PgType::Timestamp => "timestamp".to_owned(),
            PgType::Time => "time".to_owned(),
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

/// The wire protocol change events stream over (`streaming_transport` in `forcesync.toml`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum StreamingTransport {
    /// Salesforce's Pub/Sub API (gRPC, Avro): the default; the engine falls back to CometD for
    /// the run when the org does not offer it.
    #[default]
    PubSub,
    /// The CometD Streaming API (`/cometd/<version>`).
    Cometd,
}

impl StreamingTransport {
    /// The name in `forcesync.toml` and `forcesync status` (`pubsub`, `cometd`).
    pub fn name(self) -> &'static str {
        match self {
            StreamingTransport::PubSub => "pubsub",
            StreamingTransport::Cometd => "cometd",
        }
    }

    /// The transport a name stands for (`pubsub`, `cometd`).
    pub fn from_name(name: &str) -> Option<StreamingTransport> {
        [StreamingTransport::PubSub, StreamingTransport::Cometd]
            .into_iter()
            .find(|t| t.name() == name)
    }
}

/// How a change made on both sides since the last sync is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictPolicy {
    /// Field-level merge: disjoint field changes both win; the same field changed on both sides
    /// is a recorded conflict.
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

/// Which request a body is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriteKind {
    /// `POST /sobjects/X` (or an upsert by external ID): unset fields are left out.
    Create,
    /// `PATCH /sobjects/X/id`: a `null` clears the field in Salesforce.
    Update,
}

/// The NOTIFY channel the capture triggers wake the writer on: `<schema>.hc_trigger_log`
/// (Heroku Connect's name).
pub fn notify_channel(schema: &str) -> String {
    format!("{schema}.hc_trigger_log")
}

/// Whether a field is written back to Salesforce at all: the mapping is read-write, the field is
/// not a system field nor a formula, and Salesforce lets it be created or updated.
pub fn is_writable(
    access: Access,
    system: bool,
    createable: bool,
    updateable: bool,
    calculated: bool,
) -> bool {
    access == Access::ReadWrite && !system && !calculated && (createable || updateable)
}

/// Whether a writable field is sent in a body of this kind: on create when createable, on
/// update when updateable.
pub fn is_sent(kind: WriteKind, writable: bool, createable: bool, updateable: bool) -> bool {
    writable
        && match kind {
            WriteKind::Create => createable,
            WriteKind::Update => updateable,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_type_names_round_trip() {
        for t in SfType::ALL {
            assert_eq!(SfType::from_describe(t.as_str()), Some(t));
        }
        assert_eq!(SfType::from_describe("address"), None);
        assert_eq!(SfType::from_describe("base64"), None);
    }

    #[test]
    fn only_read_write_non_formula_non_system_fields_are_written_back() {
        assert!(is_writable(Access::ReadWrite, false, true, false, false));
        assert!(is_writable(Access::ReadWrite, false, false, true, false));
        assert!(!is_writable(Access::ReadOnly, false, true, true, false));
        assert!(!is_writable(Access::ReadWrite, true, true, true, false));
        assert!(!is_writable(Access::ReadWrite, false, true, true, true));
        assert!(!is_writable(Access::ReadWrite, false, false, false, false));
    }

    #[test]
    fn a_field_is_sent_on_the_writes_salesforce_accepts_it_in() {
        assert!(is_sent(WriteKind::Create, true, true, false));
        assert!(!is_sent(WriteKind::Update, true, true, false));
        assert!(is_sent(WriteKind::Update, true, false, true));
        assert!(!is_sent(WriteKind::Create, false, true, true));
    }

    #[test]
    fn pg_types_spell_as_sql() {
        assert_eq!(PgType::Varchar(255).sql(), "varchar(255)");
        assert_eq!(PgType::DoublePrecision.sql(), "double precision");
        assert_eq!(PgType::Timestamp.sql(), "timestamp");
    }
}
