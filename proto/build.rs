//! Compiles `proto/cairn.proto` with protox (pure Rust), so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["proto/cairn.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .bytes(".cairn.v1.BlobChunk.data")
        .bytes(".cairn.v1.PutBlobRequest.data")
        .compile_fds(fds)?;
    Ok(())
}
