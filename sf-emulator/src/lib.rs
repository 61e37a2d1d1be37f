//! sf-emulator: a local Salesforce org speaking the real wire protocols (REST, composite,
//! SOQL, Bulk, OAuth/SOAP, CometD CDC).
//!
//! The code is in floors; each floor imports only from the floors below it (a test,
//! `layering::tests`, fails when an import points up):
//!
//! 1. [`data`]: what an org holds and how it reads, no HTTP handlers — object metadata,
//!    Ids, values, record tables and indexes, formulas, record rendering, the SOQL engine,
//!    the Salesforce error type.
//! 2. [`org`]: the [`Org`] handle (shared state: store, sessions, clock, counters, limits) and
//!    the services operating on it — the write path, validation rules and after-save updates,
//!    the recycle bin, change-event publishing, chaos and request-fault settings,
//!    credentials and streaming client state, persistence, seeding, [`Config`].
//! 3. [`routes`]: axum handlers — REST, composite, query, Bulk 1.0 and 2.0, OAuth/SOAP
//!    login, the CometD transport, the `/__emulator` control plane, the middleware — and
//!    [`router`], which assembles them.
//! 4. [`server`] and [`tls`]: building the org from a `Config`, binding, serving (plain or
//!    HTTPS), the data file's periodic and shutdown saves.
//!
//! `CONTEXT.md` maps every module to what it owns.

pub mod data;
pub mod org;
pub mod routes;
pub mod server;
pub mod tls;

#[cfg(test)]
mod layering;

// Paths other crates use (`sf_emulator::cdc::…`, `sf_emulator::write::…`, …).
pub use data::error::{ApiError, FieldError};
pub use data::ids::SfId;
pub use data::value::Value;
pub use org::write::{FieldInput, Fields, Transaction, WriteContext, WriteOp, WriteResult};
pub use org::{cdc, rules, seed, write};
pub use org::{Org, Session};
pub use server::{router, start, Config, RunningEmulator};
