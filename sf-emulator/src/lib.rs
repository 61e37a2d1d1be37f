//! sf-emulator: a local Salesforce org speaking the real wire protocols (REST, composite,
//! SOQL, Bulk, OAuth/SOAP, CometD CDC). See `CONTEXT.md` for the module map.

pub mod api_window;
pub mod auth;
pub mod bulk1;
pub mod bulk2;
pub mod cdc;
pub mod chaos;
pub mod control;
pub mod error;
pub mod faults;
pub mod formula;
pub mod ids;
pub mod org;
pub mod persist;
pub mod query_api;
pub mod recycle_bin;
pub mod render;
pub mod rest;
pub mod rules;
pub mod schema;
pub mod seed;
pub mod server;
pub mod session;
pub mod soql;
pub mod store;
pub mod streaming;
pub mod tls;
pub mod value;
pub mod write;

pub use error::{ApiError, FieldError};
pub use ids::SfId;
pub use org::{Org, Session};
pub use server::{router, start, Config, RunningEmulator};
pub use value::Value;
pub use write::{FieldInput, Fields, Transaction, WriteContext, WriteOp, WriteResult};
