//! A written GOPROXY tree ([`Corpus`]) and its manifest of expected answers ([`Entry`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{build_zip, fingerprint, standard_modules, ModuleSpec, VersionSpec};
use crate::h1::{self, escape, hash1};

/// What the tree serves for one module version, and the hashes the go command must report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// Module path.
    pub module: String,
    /// Version.
    pub version: String,
    /// The `.info` body.
    pub info: String,
    /// The `.mod` body.
    pub go_mod: String,
    /// SHA-256 (hex) of the `.zip` file.
    pub zip_sha256: String,
    /// Size of the `.zip` file.
    pub zip_len: u64,
    /// Expected go.sum hash of the zip.
    pub zip_h1: String,
    /// Expected go.sum hash of the `.mod`.
    pub mod_h1: String,
    /// Number of files in the zip.
    pub files: usize,
    /// Whether `@v/list` names it.
    pub listed: bool,
}

/// A module's mutable answers as written.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ModuleEntry {
    /// Module path.
    pub path: String,
    /// The versions in `@v/list`, in file order.
    pub list: Vec<String>,
    /// The version `@latest` names, if the file exists.
    pub latest: Option<String>,
}

/// A GOPROXY-layout tree on disk and its manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Corpus {
    /// The tree's root directory (`GOPROXY=file://<root>`).
    #[serde(skip)]
    pub root: PathBuf,
    /// Every module version.
    pub entries: Vec<Entry>,
    /// Every module.
    pub modules: Vec<ModuleEntry>,
}

static SHARED: OnceLock<Corpus> = OnceLock::new();

impl Corpus {
    /// The [`standard_modules`] corpus, generated under `base` once per content fingerprint and
    /// reused by later runs (the content is deterministic; the directory name is its hash).
    pub fn shared(base: &Path) -> &'static Corpus {
        SHARED.get_or_init(|| {
            Self::load_or_write(base, &standard_modules()).unwrap_or_else(|e| {
                panic!(
                    "generating the shared corpus under {}: {e:#}",
                    base.display()
                )
            })
        })
    }

    /// Loads `base/corpus-<fingerprint>` if complete, else writes it (atomically, via rename).
    pub fn load_or_write(base: &Path, specs: &[ModuleSpec]) -> anyhow::Result<Corpus> {
        let dir = base.join(format!("corpus-{}", fingerprint(specs)));
        if let Ok(c) = Self::load(&dir) {
            return Ok(c);
        }
        fs::create_dir_all(base)?;
        let tmp = base.join(format!("corpus-tmp-{}", std::process::id()));
        let _ = fs::remove_dir_all(&tmp);
        Self::write(&tmp, specs)?;
        if fs::rename(&tmp, &dir).is_err() {
            // Another process won the race; its tree has the same content.
            let _ = fs::remove_dir_all(&tmp);
        }
        // Trees of older generators are dead weight (~25 MB each).
        for e in fs::read_dir(base)?.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("corpus-") && !name.starts_with("corpus-tmp-") && e.path() != dir {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        Self::load(&dir)
    }

    /// Loads a tree written by [`Corpus::write`].
    pub fn load(root: &Path) -> anyhow::Result<Corpus> {
        let text = fs::read(root.join("manifest.json"))?;
        let mut c: Corpus = serde_json::from_slice(&text)?;
        c.root = root.to_path_buf();
        Ok(c)
    }

    /// Writes `specs` as a GOPROXY tree at `root` (which may already hold other modules).
    pub fn write(root: &Path, specs: &[ModuleSpec]) -> anyhow::Result<Corpus> {
        let mut c = Corpus {
            root: root.to_path_buf(),
            entries: Vec::new(),
            modules: Vec::new(),
        };
        for spec in specs {
            for v in &spec.versions {
                c.put_version(&spec.path, v)?;
            }
            if let Some(latest) = &spec.latest {
                c.set_latest(&spec.path, latest)?;
            }
        }
        c.save_manifest()?;
        Ok(c)
    }

    /// Writes one version's `.info`, `.mod` and `.zip`, and adds it to `@v/list` if it is listed.
    pub fn put_version(&mut self, module: &str, v: &VersionSpec) -> anyhow::Result<&Entry> {
        let zip = build_zip(&v.zip_entries(module), v.level)?;
        let go_mod = v.mod_bytes(module);
        let entry = Entry {
            module: module.to_string(),
            version: v.version.clone(),
            info: v.info_json(),
            go_mod: String::from_utf8(go_mod.clone())?,
            zip_sha256: h1::sha256_hex(&zip),
            zip_len: zip.len() as u64,
            zip_h1: hash1(v.zip_entries(module).iter().map(|(n, c)| (n.as_str(), *c))),
            mod_h1: h1::mod_h1(&go_mod),
            files: v.zip_entries(module).len(),
            listed: v.listed,
        };
        let dir = self.root.join(escape(module)).join("@v");
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let base = dir.join(escape(&v.version));
        fs::write(base.with_extension_str("info"), &entry.info)?;
        fs::write(base.with_extension_str("mod"), &go_mod)?;
        fs::write(base.with_extension_str("zip"), &zip)?;
        self.entries
            .retain(|e| !(e.module == module && e.version == v.version));
        self.entries.push(entry);
        let m = self.module_mut(module);
        if v.listed && !m.list.contains(&v.version) {
            m.list.push(v.version.clone());
        }
        self.write_list(module)?;
        self.save_manifest()?;
        Ok(self.entry(module, &v.version))
    }

    /// Writes `@latest` as the `.info` of an existing version.
    pub fn set_latest(&mut self, module: &str, version: &str) -> anyhow::Result<()> {
        let info = self.entry(module, version).info.clone();
        fs::write(self.root.join(escape(module)).join("@latest"), info)?;
        self.module_mut(module).latest = Some(version.to_string());
        self.save_manifest()
    }

    /// Rewrites `@v/list` with extra raw lines appended (e.g. a pseudo-version some proxies list).
    pub fn write_list_with_extra(&self, module: &str, extra: &[&str]) -> anyhow::Result<()> {
        let mut lines: Vec<String> = self.module(module).list.clone();
        lines.extend(extra.iter().map(|s| s.to_string()));
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fs::write(self.root.join(escape(module)).join("@v").join("list"), text)?;
        Ok(())
    }

    fn write_list(&self, module: &str) -> anyhow::Result<()> {
        self.write_list_with_extra(module, &[])
    }

    fn module_mut(&mut self, module: &str) -> &mut ModuleEntry {
        if let Some(i) = self.modules.iter().position(|m| m.path == module) {
            return &mut self.modules[i];
        }
        self.modules.push(ModuleEntry {
            path: module.to_string(),
            list: Vec::new(),
            latest: None,
        });
        self.modules.last_mut().expect("just pushed")
    }

    fn save_manifest(&self) -> anyhow::Result<()> {
        fs::write(
            self.root.join("manifest.json"),
            serde_json::to_vec_pretty(self)?,
        )?;
        Ok(())
    }

    /// The go.sum a build needing every version would have: a zip line and a `/go.mod` line
    /// per version.
    pub fn go_sum(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            out.push_str(&format!("{} {} {}\n", e.module, e.version, e.zip_h1));
            out.push_str(&format!("{} {}/go.mod {}\n", e.module, e.version, e.mod_h1));
        }
        out
    }

    /// The entry for `module@version`; panics if the corpus has no such version.
    pub fn entry(&self, module: &str, version: &str) -> &Entry {
        self.entries
            .iter()
            .find(|e| e.module == module && e.version == version)
            .unwrap_or_else(|| panic!("corpus has no {module}@{version}"))
    }

    /// The module summary; panics if absent.
    pub fn module(&self, module: &str) -> &ModuleEntry {
        self.modules
            .iter()
            .find(|m| m.path == module)
            .unwrap_or_else(|| panic!("corpus has no module {module}"))
    }

    /// The on-disk file behind a URL path such as `/example.com/!upper/!case/@v/list`.
    pub fn file(&self, url_path: &str) -> PathBuf {
        self.root.join(url_path.trim_start_matches('/'))
    }

    /// The zip bytes of `module@version`.
    pub fn zip_bytes(&self, module: &str, version: &str) -> Vec<u8> {
        let p = self.file(&h1::version_path(module, version, "zip"));
        fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
    }

    /// `file://<root>`, for `GOPROXY`.
    pub fn file_url(&self) -> String {
        format!("file://{}", self.root.display())
    }

    /// Every `module@version` in the corpus, in manifest order.
    pub fn module_versions(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| format!("{}@{}", e.module, e.version))
            .collect()
    }

    /// Every module path, in manifest order.
    pub fn module_paths(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.path.clone()).collect()
    }
}

/// Appends an extension to a path without replacing dots in the version (`v1.2.3` + `zip`).
trait WithExtensionStr {
    fn with_extension_str(&self, ext: &str) -> PathBuf;
}

impl WithExtensionStr for Path {
    fn with_extension_str(&self, ext: &str) -> PathBuf {
        let mut s = self.as_os_str().to_owned();
        s.push(".");
        s.push(ext);
        PathBuf::from(s)
    }
}

/// Expected go.sum lines for `module@version` (zip and go.mod), keyed like go.sum.
pub fn expected_sums(c: &Corpus) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for e in &c.entries {
        out.insert(format!("{} {}", e.module, e.version), e.zip_h1.clone());
        out.insert(
            format!("{} {}/go.mod", e.module, e.version),
            e.mod_h1.clone(),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{time_n, ModuleSpec, VersionSpec};

    #[test]
    fn written_zip_hash_matches_spec_hash() {
        let dir = tempfile::tempdir().unwrap();
        let spec = ModuleSpec::new("example.com/Zed")
            .version("v1.0.0-RC1", &time_n(1))
            .with(VersionSpec::new("example.com/Zed", "v2.0.0+incompatible", &time_n(2)).legacy());
        let c = Corpus::write(dir.path(), &[spec]).unwrap();
        for e in &c.entries {
            let zip = c.zip_bytes(&e.module, &e.version);
            assert_eq!(h1::zip_h1(&zip).unwrap(), e.zip_h1);
            assert_eq!(h1::sha256_hex(&zip), e.zip_sha256);
        }
        let legacy = c.entry("example.com/Zed", "v2.0.0+incompatible");
        assert_eq!(legacy.go_mod, "module example.com/Zed\n");
        assert_eq!(legacy.files, 1, "legacy zip must not contain go.mod");
        assert!(dir
            .path()
            .join("example.com/!zed/@v/v1.0.0-!r!c1.zip")
            .is_file());
        assert_eq!(
            c.module("example.com/Zed").list,
            ["v1.0.0-RC1", "v2.0.0+incompatible"]
        );
    }
}
