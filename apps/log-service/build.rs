//! Compiles the .proto files with `protox` (a pure-Rust protobuf compiler, with the well-known
//! types such as `google/protobuf/struct.proto` built in), so building needs no `protoc` binary
//! on the machine.
//!
//! Two sets come out:
//! - `proto/`: log-service's own definitions (servers and clients), plus their encoded
//!   descriptor set, `log_service_descriptor.bin`, which gRPC server reflection serves;
//! - `tests/proto/`: the distributed-logging system's original definitions, as clients only,
//!   under `OUT_DIR/original/`. Only the integration tests include them: a client generated from
//!   the original contract is the proof that the served wire format is that contract.

use std::path::PathBuf;

use protox::prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);

    let own = ["proto/logs.proto", "proto/query.proto"];
    let descriptors = compile(&own, "proto")?;
    std::fs::write(
        out_dir.join("log_service_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;

    let original = ["tests/proto/logs.proto", "tests/proto/query.proto"];
    let original_out = out_dir.join("original");
    std::fs::create_dir_all(&original_out)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .out_dir(original_out)
        .compile_fds(compile(&original, "tests/proto")?)?;
    Ok(())
}

/// The descriptor set of `protos` (and what they import), resolved against `include`.
fn compile(
    protos: &[&str],
    include: &str,
) -> Result<prost_types::FileDescriptorSet, protox::Error> {
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    protox::compile(protos, [include])
}
