//! forcesync runtime. For now it holds [`adapter`]: the types generated sync adapters are built on
//! (field and mapping descriptors, typed conversion between Salesforce JSON and rows, picklists).

pub mod adapter;
#[cfg(feature = "engine")]
pub mod salesforce;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "cli")]
pub mod cli;
