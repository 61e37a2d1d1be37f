//! Static descriptions of mappings and fields, emitted by the code generator as `static` data.
//! The vocabulary they use (`SfType`, `PgType`, `Access`, ...) is `sync_schema::model`'s.

pub use sync_schema::model::{
    Access, ConflictPolicy, DeleteMode, PgType, SfType, StreamingTransport, SyncOptions, WriteKind,
};

/// Connection-wide settings and every mapping, emitted by the code generator as `REGISTRY`.
#[derive(Debug, Clone, Copy)]
pub struct Registry {
    /// Salesforce REST API version without the `v`, e.g. `"59.0"`.
    pub api_version: &'static str,
    /// Postgres schema holding the mapped tables and the system tables, e.g. `"salesforce"`.
    pub schema: &'static str,
    /// The wire protocol change events stream over (`streaming_transport`; Pub/Sub by default,
    /// falling back to CometD for a run when the org does not offer it).
    pub streaming_transport: StreamingTransport,
    /// Every mapping, in object-name order.
    pub mappings: &'static [&'static MappingDescriptor],
}

impl Registry {
    /// The mapping of this Salesforce object (case-insensitive).
    pub fn mapping(&self, object: &str) -> Option<&'static MappingDescriptor> {
        self.mappings
            .iter()
            .copied()
            .find(|m| m.object.eq_ignore_ascii_case(object))
    }
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
    /// The Postgres column type, as the migrations create it.
    pub pg_type: PgType,
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
    /// Target objects of a reference field; for a relationship column, the parent object.
    pub reference_to: &'static [&'static str],
    /// A relationship column (`Invoice__r.External_Id__c`): the parent named by its external ID.
    pub relationship: Option<Relationship>,
}

/// How a relationship column names its parent: `Invoice__r.External_Id__c` is the
/// `External_Id__c` of the record the lookup `Invoice__c` (relationship `Invoice__r`) points to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Relationship {
    /// The lookup field on the child, e.g. `"Invoice__c"`.
    pub lookup: &'static str,
    /// Its relationship name, e.g. `"Invoice__r"`: the key of the nested parent in REST JSON.
    pub name: &'static str,
    /// The parent's external ID field, e.g. `"External_Id__c"`.
    pub field: &'static str,
}

impl FieldDescriptor {
    /// A field with these names and types, no flags set, not part of a compound and without a
    /// length: the base the generated descriptors adjust.
    pub const fn new(
        sf_name: &'static str,
        column: &'static str,
        label: &'static str,
        sf_type: SfType,
        pg_type: PgType,
    ) -> Self {
        FieldDescriptor {
            sf_name,
            column,
            label,
            sf_type,
            pg_type,
            compound: None,
            compound_key: None,
            length: None,
            system: false,
            nillable: false,
            createable: false,
            updateable: false,
            calculated: false,
            external_id: false,
            unique: false,
            required_on_create: false,
            writable: false,
            reference_to: &[],
            relationship: None,
        }
    }

    /// Whether the field goes into a Salesforce body of this kind ([`sync_schema::model::is_sent`]).
    pub fn sent_on(&self, kind: WriteKind) -> bool {
        sync_schema::model::is_sent(kind, self.writable, self.createable, self.updateable)
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

#[cfg(test)]
impl MappingDescriptor {
    /// A read-write mapping of `object` to `salesforce.<table>` for tests: label = object, no Id
    /// prefix, upsert key or filter; streamed, polled every 600 s, hard deletes, merged
    /// conflicts, no API budget of its own. Tests override what they need.
    pub(crate) const fn fixture(
        object: &'static str,
        table: &'static str,
        fields: &'static [FieldDescriptor],
    ) -> MappingDescriptor {
        MappingDescriptor {
            object,
            label: object,
            schema: "salesforce",
            table,
            key_prefix: None,
            access: Access::ReadWrite,
            upsert_key: None,
            filter: None,
            sync: SyncOptions {
                streaming: true,
                poll_seconds: 600,
                deletes: DeleteMode::Hard,
                conflict: ConflictPolicy::Merge,
                max_daily_api_calls: 0,
            },
            fields,
        }
    }
}

impl MappingDescriptor {
    /// The field with this Salesforce API name (case-insensitive).
    pub fn field(&self, sf_name: &str) -> Option<&'static FieldDescriptor> {
        self.fields
            .iter()
            .find(|f| f.sf_name.eq_ignore_ascii_case(sf_name))
    }

    /// The relationship columns naming a parent through this lookup field.
    pub fn relationships_of<'a>(
        &self,
        lookup: &'a str,
    ) -> impl Iterator<Item = &'static FieldDescriptor> + 'a {
        let fields: &'static [FieldDescriptor] = self.fields;
        fields.iter().filter(move |f| {
            f.relationship
                .is_some_and(|r| r.lookup.eq_ignore_ascii_case(lookup))
        })
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
