//! sf-emulator: a local Salesforce org speaking the real wire protocols.

pub mod auth;
pub mod streaming;
pub mod tls;
