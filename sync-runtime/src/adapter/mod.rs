//! The contract between generated code and the sync engine.
//!
//! Generated code (see `sync_schema::rust`) refers to everything here by absolute path
//! (`::sync_runtime::adapter::...`). Each mapped object gets a static [`MappingDescriptor`] and an
//! implementation of [`SyncAdapter`] on its row type, which converts Salesforce records (REST and
//! CDC shapes, read through [`SfRecord`]) into typed rows; rows of read-write mappings also
//! implement [`WriteBack`], turning them into request bodies. What is the same for every mapping
//! is written once here as macros ([`picklist!`](crate::picklist),
//! [`field_descriptors!`](crate::field_descriptors)) that the generated code invokes.

mod body;
mod change;
mod descriptor;
mod error;
pub mod hstore;
mod macros;
mod picklist;
mod record;
#[cfg(test)]
pub(crate) mod testing;
mod value;

pub use body::{flat_body, pg_values_to_sf_body, SfBody};
pub use change::{ChangeEventHeader, ChangeType};
pub use descriptor::{
    Access, ConflictPolicy, DeleteMode, FieldDescriptor, MappingDescriptor, PgType, Registry,
    Relationship, SfType, StreamingTransport, SyncOptions, WriteKind,
};
pub use error::{ConversionError, ConversionErrorKind};
pub use picklist::{MultiPicklist, Picklist};
pub use record::{RecordShape, SfRecord};
pub use value::{format_datetime, parse_datetime, parse_time, SfValue};

#[doc(inline)]
pub use crate::{field_descriptors, picklist};

/// What the macros expand to refers to, so that invoking crates need no direct dependency on it.
#[doc(hidden)]
pub mod __private {
    pub use diesel;
    pub use serde;
}

/// Typed conversions for one mapped object, implemented by the generated row type.
///
/// `Self` is the row as read from Postgres (`Account`); [`SyncAdapter::New`] is the insertable row
/// (`NewAccount`) and [`SyncAdapter::Changes`] the changeset (`AccountChanges`).
pub trait SyncAdapter: Sized {
    /// The insertable row built from a complete Salesforce record.
    type New;
    /// The changeset built from a (possibly partial) Salesforce record: absent fields untouched.
    type Changes;

    /// The mapping's static description: object, table, fields, access and sync options.
    fn descriptor() -> &'static MappingDescriptor;

    /// A full record (REST query result or CDC `CREATE`) as an insertable row. Fails when a field
    /// Salesforce requires on create is missing or null, or a value has the wrong type.
    fn new_from_sf(record: &SfRecord<'_>) -> Result<Self::New, ConversionError>;

    /// A record as a changeset: only the fields present in the record are set (a CDC `UPDATE`
    /// carries changed fields only; a field present as `null` is cleared).
    fn changes_from_sf(record: &SfRecord<'_>) -> Result<Self::Changes, ConversionError>;
}

/// The rows of a read-write mapping: the bodies that write them back to Salesforce. Rows of
/// read-only mappings do not implement it.
pub trait WriteBack: SyncAdapter {
    /// The JSON body creating this row in Salesforce: writable, createable fields with a value.
    fn create_body(&self) -> SfBody;

    /// The JSON body updating this row in Salesforce: every writable, updateable field (`null`
    /// clears the field in Salesforce).
    fn update_body(&self) -> SfBody;
}
