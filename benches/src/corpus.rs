//! The benchmark corpus: a directory laid out like a GOPROXY (`<module>/@v/list`,
//! `<module>/@v/<version>.info|.mod|.zip`), served by cairn as a `file://` upstream and by the
//! reference static server as plain files, so both answer the same URL paths with the same bytes.
//!
//! Two modules hold the two zip sizes (`example.com/small` ≈ 100 KiB, `example.com/large` ≈
//! 10 MiB). Zip contents are pseudo-random (incompressible) and stored uncompressed, so the zip's
//! size is what travels on the wire; each zip is a valid module zip (entries under
//! `<module>@<version>/`, with a root `go.mod`) because cairn validates zips on fill.

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use zip::write::SimpleFileOptions;
use zip::CompressionMethod;

/// The single version every corpus module has.
pub const VERSION: &str = "v1.0.0";

/// One URL the load generator hits, with the size of its body.
#[derive(Debug, Clone)]
pub struct Target {
    /// Scenario name (`info`, `zip100k`, `zip10m`).
    pub scenario: &'static str,
    /// URL path, identical on cairn and on the static server.
    pub path: String,
    /// Exact body size in bytes.
    pub bytes: u64,
}

/// A module to generate: its path, the zip size to aim for, and how many data files to use.
struct ModuleSpec {
    module: &'static str,
    zip_bytes: usize,
    files: usize,
}

const SMALL: ModuleSpec = ModuleSpec {
    module: "example.com/small",
    zip_bytes: 100 << 10,
    files: 1,
};
const LARGE: ModuleSpec = ModuleSpec {
    module: "example.com/large",
    zip_bytes: 10 << 20,
    files: 10,
};

/// Writes the corpus under `root` and returns the three benchmark targets.
pub fn generate(root: &Path) -> anyhow::Result<Vec<Target>> {
    let small = write_module(root, &SMALL, 1)?;
    let large = write_module(root, &LARGE, 2)?;
    let info_path = format!("/{}/@v/{VERSION}.info", SMALL.module);
    let info_bytes = fs::metadata(root.join(&info_path[1..]))?.len();
    Ok(vec![
        Target {
            scenario: "info",
            path: info_path,
            bytes: info_bytes,
        },
        Target {
            scenario: "zip100k",
            path: small.0,
            bytes: small.1,
        },
        Target {
            scenario: "zip10m",
            path: large.0,
            bytes: large.1,
        },
    ])
}

/// Writes one module's `list`, `.info`, `.mod` and `.zip`; returns the zip's URL path and size.
fn write_module(root: &Path, spec: &ModuleSpec, seed: u64) -> anyhow::Result<(String, u64)> {
    let dir = root.join(spec.module).join("@v");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::write(dir.join("list"), format!("{VERSION}\n"))?;
    let (url, size) = write_version(
        root,
        spec.module,
        VERSION,
        Some((spec.zip_bytes, spec.files)),
        seed,
    )?;
    Ok((url, size))
}

/// Writes `<module>/@v/<version>.info` and `.mod` under `root`, and with `zip = Some((bytes,
/// files))` also a stored module zip of about `bytes` bytes split over `files` data files (seeded
/// by `seed`, so distinct seeds give distinct contents). Returns the zip's URL path and size (0
/// without a zip). Used for the hit corpus and, by the cluster benchmarks, for fresh versions.
pub fn write_version(
    root: &Path,
    module: &str,
    version: &str,
    zip: Option<(usize, usize)>,
    seed: u64,
) -> anyhow::Result<(String, u64)> {
    let dir = root.join(module).join("@v");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let gomod = format!("module {module}\n\ngo 1.21\n");
    fs::write(
        dir.join(format!("{version}.info")),
        format!("{{\"Version\":\"{version}\",\"Time\":\"2024-01-02T03:04:05Z\"}}"),
    )?;
    fs::write(dir.join(format!("{version}.mod")), &gomod)?;
    let url = format!("/{module}/@v/{version}.zip");
    let Some((zip_bytes, files)) = zip else {
        return Ok((url, 0));
    };
    let zip_path = dir.join(format!("{version}.zip"));
    write_zip(&zip_path, module, version, (zip_bytes, files), &gomod, seed)?;
    let size = fs::metadata(&zip_path)?.len();
    Ok((url, size))
}

/// A stored (uncompressed) module zip of about `size.0` bytes over `size.1` data files.
fn write_zip(
    path: &Path,
    module: &str,
    version: &str,
    (zip_bytes, files): (usize, usize),
    gomod: &str,
    seed: u64,
) -> anyhow::Result<()> {
    let file = fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let opts = SimpleFileOptions::default().compression_method(CompressionMethod::Stored);
    let prefix = format!("{module}@{version}");
    zip.start_file(format!("{prefix}/go.mod"), opts)?;
    zip.write_all(gomod.as_bytes())?;
    // Headers, names and the central directory take well under 1 KiB for these few entries.
    let files = files.max(1);
    let payload = zip_bytes.saturating_sub(1024);
    let per_file = payload / files;
    let mut rng = SplitMix64(seed);
    for i in 0..files {
        zip.start_file(format!("{prefix}/data/blob{i:02}.bin"), opts)?;
        zip.write_all(&rng.bytes(per_file))?;
    }
    zip.finish()?.flush()?;
    Ok(())
}

/// SplitMix64: a tiny deterministic generator; good enough to make content incompressible.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            out.extend_from_slice(&self.next().to_le_bytes());
        }
        out.truncate(len);
        out
    }
}
