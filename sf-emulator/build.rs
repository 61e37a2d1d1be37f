//! Compiles the vendored Pub/Sub API interface (`proto/pubsub_api.proto`) into Rust at build
//! time with `protox`, a pure-Rust protobuf compiler: no `protoc`, no network.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/pubsub_api.proto");
    let descriptors = protox::compile(["pubsub_api.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        // The client stubs are generic over the transport; the crate's tests use them.
        .build_client(true)
        .build_transport(false)
        .compile_fds(descriptors)?;
    Ok(())
}
