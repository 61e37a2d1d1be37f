//! Streaming.

pub mod bayeux;
pub mod clients;
