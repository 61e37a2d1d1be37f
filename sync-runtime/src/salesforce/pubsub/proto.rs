//! The Pub/Sub API's messages and client (`eventbus.v1`), generated at build time from the
//! vendored `proto/pubsub_api.proto` (see `build.rs`).

#![allow(clippy::all, missing_docs, dead_code)]

tonic::include_proto!("eventbus.v1");
