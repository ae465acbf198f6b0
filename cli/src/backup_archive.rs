//! A backup as one file (`cairn backup --out FILE.zip`, `backup verify FILE.zip`,
//! `restore --from FILE.zip`): the backup directory's files in a zip archive, stored
//! uncompressed (zips and JSON gain little, and the archive stays a plain copy of the files).
//!
//! A backup into a file is made in a staging directory next to it (`FILE.zip.partial/`), packed
//! into `FILE.zip.tmp`, fsynced and renamed over `FILE.zip`; the staging directory is then
//! removed (so a file backup is always a full one: incremental runs need a directory). Reading
//! one unpacks it into a temporary directory under `$TMPDIR` (space for one copy needed), with
//! every entry's CRC-32 checked, and removes it afterwards.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

/// Whether `path` names a backup file rather than a directory (it ends in `.zip`).
pub fn is_archive(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

/// Where a backup into `file` is staged.
pub fn staging_dir(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Packs every file under `dir` into `file` (stored), through a temp file: fsync, rename.
pub fn pack(dir: &Path, file: &Path) -> Result<()> {
    let mut tmp_name = file.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let out = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let mut zip = ZipWriter::new(BufWriter::new(out));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .large_file(true);
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    for rel in &files {
        zip.start_file(rel.as_str(), options)
            .with_context(|| format!("adding {rel} to {}", tmp.display()))?;
        let mut src = File::open(dir.join(rel)).with_context(|| format!("reading {rel}"))?;
        std::io::copy(&mut src, &mut zip).with_context(|| format!("packing {rel}"))?;
    }
    let mut buffered = zip.finish().context("finishing the archive")?;
    buffered.flush()?;
    let out = buffered.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, file).with_context(|| format!("renaming into {}", file.display()))?;
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// Every file under `dir`, relative to `root`, `/`-separated.
fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let kind = e.file_type()?;
        if kind.is_dir() {
            walk(root, &e.path(), out)?;
        } else if kind.is_file() {
            let rel = e.path();
            let rel = rel.strip_prefix(root).unwrap_or(&rel);
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            out.push(parts.join("/"));
        }
    }
    Ok(())
}

/// A backup file unpacked into a temporary directory, removed on drop.
pub struct Unpacked {
    dir: PathBuf,
}

impl Unpacked {
    /// The unpacked backup directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Unpacks `file` into a fresh directory under `$TMPDIR`, checking every entry's CRC-32 and
/// refusing names that would land outside it.
pub fn unpack(file: &Path) -> Result<Unpacked> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cairn-backup-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let unpacked = Unpacked { dir };
    let src = File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut zip = ZipArchive::new(BufReader::new(src))
        .with_context(|| format!("{} is not a backup archive", file.display()))?;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let name = entry.name().to_string();
        let Some(rel) = entry.enclosed_name() else {
            bail!(
                "{}: entry {name:?} points outside the backup",
                file.display()
            );
        };
        if entry.is_dir() {
            continue;
        }
        let dest = unpacked.dir.join(rel);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut out = File::create(&dest)?;
        std::io::copy(&mut entry, &mut out)
            .with_context(|| format!("{}: entry {name}: damaged", file.display()))?;
    }
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_packs_and_unpacks_to_the_same_files() {
        let base = std::env::temp_dir().join(format!("cairn-archive-{}", std::process::id()));
        let dir = base.join("b");
        std::fs::create_dir_all(dir.join("blobs/ab")).unwrap();
        std::fs::write(dir.join("backup.json"), b"{}").unwrap();
        std::fs::write(dir.join("blobs/ab/abcd"), b"blob bytes").unwrap();
        let file = base.join("b.zip");
        assert!(is_archive(&file) && !is_archive(&dir));
        pack(&dir, &file).unwrap();
        let un = unpack(&file).unwrap();
        assert_eq!(
            std::fs::read(un.path().join("blobs/ab/abcd")).unwrap(),
            b"blob bytes"
        );
        assert_eq!(std::fs::read(un.path().join("backup.json")).unwrap(), b"{}");
        let gone = un.path().to_path_buf();
        drop(un);
        assert!(!gone.exists(), "the unpacked copy is removed");

        // A flipped byte in a stored entry fails its CRC-32, naming the entry.
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes.windows(10).position(|w| w == b"blob bytes").unwrap();
        bytes[at] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        let err = format!("{:#}", unpack(&file).err().unwrap());
        assert!(err.contains("blobs/ab/abcd: damaged"), "{err}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
