//! The `direct` entry of a chain: asks the node's [`Direct`] source for a file and feeds the
//! answer to the sink, mapping "no such module/version" to not-found and git trouble to a failure.

use super::error::UpstreamError;
use super::request::UpstreamFile;
use super::sink::{CopyError, Sink};
use crate::direct::metrics as direct_metrics;
use crate::direct::repo::RepoError;
use crate::direct::Direct;

/// How entries answered by `direct` are named in errors and logs.
const SOURCE: &str = "direct";

/// Fetches `file` of `module` from version control into `sink`.
pub(crate) async fn get(
    direct: &Direct,
    module: &str,
    file: &UpstreamFile<'_>,
    sink: &mut Sink<'_>,
) -> Result<(), UpstreamError> {
    let kind = file.kind().as_str();
    let result = fetch(direct, module, file, sink).await;
    let label = match &result {
        Ok(()) => "ok",
        Err(UpstreamError::NotFound { .. }) => "not_found",
        Err(_) => "error",
    };
    direct_metrics::request(kind, label);
    if let Err(e) = &result {
        tracing::debug!(module, kind, error = %e, "direct fetch did not succeed");
    }
    result
}

async fn fetch(
    direct: &Direct,
    module: &str,
    file: &UpstreamFile<'_>,
    sink: &mut Sink<'_>,
) -> Result<(), UpstreamError> {
    let body = match file {
        UpstreamFile::List => direct.list(module).await,
        UpstreamFile::Latest => direct.latest(module).await,
        UpstreamFile::Info(query) => direct.info(module, query).await,
        UpstreamFile::Mod(version) => direct.go_mod(module, version).await,
        UpstreamFile::Zip(version) => {
            let built = direct.zip(module, version).await.map_err(map)?;
            return copy_file(&built.0, sink).await;
        }
    }
    .map_err(map)?;
    sink.begin(Some(body.len() as u64)).await.map_err(write)?;
    sink.write(&body).await.map_err(write)?;
    sink.finish().await.map_err(write)
}

async fn copy_file(path: &std::path::Path, sink: &mut Sink<'_>) -> Result<(), UpstreamError> {
    let io = |e: std::io::Error| failed(format!("reading the built zip: {e}"));
    let mut file = tokio::fs::File::open(path).await.map_err(io)?;
    let len = file.metadata().await.map_err(io)?.len();
    sink.copy_from(&mut file, len).await.map_err(|e| match e {
        CopyError::Read(e) => io(e),
        CopyError::Write(e) => write(e),
    })
}

fn map(e: RepoError) -> UpstreamError {
    match e {
        RepoError::NotFound(message) => UpstreamError::NotFound { message },
        RepoError::Failed(reason) => failed(reason),
    }
}

fn write(e: super::sink::WriteError) -> UpstreamError {
    failed(e.to_string())
}

fn failed(reason: String) -> UpstreamError {
    UpstreamError::Failed {
        source: SOURCE.to_owned(),
        reason,
    }
}
