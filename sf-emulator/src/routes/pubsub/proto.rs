//! The Pub/Sub API's messages and service (`eventbus.v1`), generated at build time from the
//! vendored `proto/pubsub_api.proto` (see `build.rs`). The client stubs are for tests.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("eventbus.v1");
