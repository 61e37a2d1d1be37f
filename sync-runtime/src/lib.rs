//! forcesync runtime: [`adapter`], the types generated code is built on (field and mapping
//! descriptors, typed conversion between Salesforce JSON and rows, picklists); with the feature
//! `engine`, the sync engine (`engine`) and its Salesforce client (`salesforce`); with `cli`, the
//! `forcesync` command (`cli`).

pub mod adapter;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(test)]
mod module_graph;
#[cfg(feature = "engine")]
pub mod salesforce;
