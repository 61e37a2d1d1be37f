//! With the `engine` feature, compiles the vendored Pub/Sub API interface
//! (`proto/pubsub_api.proto`) into Rust at build time with `protox`, a pure-Rust protobuf
//! compiler: no `protoc`, no network. Without it there is nothing to build.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/pubsub_api.proto");
    #[cfg(feature = "engine")]
    {
        let descriptors = protox::compile(["pubsub_api.proto"], ["proto"])?;
        tonic_prost_build::configure()
            .build_server(false)
            .build_client(true)
            .build_transport(false)
            .compile_fds(descriptors)?;
    }
    Ok(())
}
