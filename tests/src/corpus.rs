//! Generated module trees in the GOPROXY layout, plus the expected answer for every file in them.
//!
//! A [`Corpus`] is a directory that `GOPROXY=file://<root>` accepts as is:
//! `<escaped module>/@v/list`, `<escaped module>/@v/<escaped version>.{info,mod,zip}` and, where a
//! module needs it, `<escaped module>/@latest`. Zips are written by the `zip` crate the way the go
//! command writes them (deflate, every entry prefixed `module@version/`, no directory entries), and
//! every zip and `.mod` gets its expected `h1:` hash in the [`Entry`] list (`manifest.json`).
//!
//! [`standard_modules`] is the shared corpus every protocol test uses; it covers the shapes a mirror
//! must get right (see its doc). [`Corpus::shared`] generates it once per content fingerprint.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zip::write::SimpleFileOptions;

use crate::h1::{self, escape, hash1};

/// Module paths and notable versions of the [`standard_modules`] corpus.
pub mod m {
    /// Plain module: releases, pre-releases, an `@latest` file.
    pub const SIMPLE: &str = "example.com/simple";
    /// Upper-case module path, with an upper-case pre-release `v1.0.0-RC1`.
    pub const UPPER: &str = "example.com/Upper/Case";
    /// The upper-case version of [`UPPER`].
    pub const UPPER_RC: &str = "v1.0.0-RC1";
    /// Legacy module without go.mod: `v1.0.0` and `v2.0.0+incompatible`.
    pub const LEGACY: &str = "example.com/legacy";
    /// The `+incompatible` version of [`LEGACY`].
    pub const LEGACY_INCOMPATIBLE: &str = "v2.0.0+incompatible";
    /// The v1 line of a module that also has a `/v2`.
    pub const MODV1: &str = "example.com/mod";
    /// A `/v2` major-version module.
    pub const MODV2: &str = "example.com/mod/v2";
    /// A gopkg.in module.
    pub const GOPKG: &str = "gopkg.in/fixture.v1";
    /// A module that exists only as a pseudo-version (empty list, `@latest` names it).
    pub const PSEUDO: &str = "example.com/pseudo";
    /// The only version of [`PSEUDO`].
    pub const PSEUDO_VERSION: &str = "v0.0.0-20230102030405-abcdefabcdef";
    /// A module with pre-releases only.
    pub const PRERELEASE: &str = "example.com/prerelease";
    /// A module whose highest version retracts [`RETRACTED`].
    pub const RETRACT: &str = "example.com/retract";
    /// The retracted version of [`RETRACT`].
    pub const RETRACTED: &str = "v1.0.1";
    /// A module with ~300 files.
    pub const MANY: &str = "example.com/many";
    /// A module whose zip is over 20 MB (incompressible).
    pub const BIG: &str = "example.com/big";
    /// A module whose zip leaves out its nested module `sub/`.
    pub const NEST: &str = "example.com/nest";
    /// The nested module inside [`NEST`]'s repository.
    pub const NEST_SUB: &str = "example.com/nest/sub";
}

/// Size of the incompressible file in [`m::BIG`] (21 MiB).
pub const BIG_FILE_BYTES: usize = 21 << 20;

// === specs ===

/// One version of a module, as it should appear in the tree.
#[derive(Clone, Debug)]
pub struct VersionSpec {
    /// Canonical version, e.g. `v1.2.3`.
    pub version: String,
    /// The `.info` `Time` (RFC 3339).
    pub time: String,
    /// go.mod bytes; `None` for a legacy module (the `.mod` is synthesized, the zip has no go.mod).
    pub go_mod: Option<Vec<u8>>,
    /// Other files, relative to the module root.
    pub files: Vec<(String, Vec<u8>)>,
    /// Whether `@v/list` names this version (false for pseudo-versions).
    pub listed: bool,
    /// Deflate level for the zip (`None` = the crate default).
    pub level: Option<i64>,
}

impl VersionSpec {
    /// A version with `go.mod` = `module <path>\n\ngo 1.21\n` and one Go file naming the version.
    pub fn new(module: &str, version: &str, time: &str) -> Self {
        let pkg = package_name(module);
        VersionSpec {
            version: version.to_string(),
            time: time.to_string(),
            go_mod: Some(format!("module {module}\n\ngo 1.21\n").into_bytes()),
            files: vec![(
                format!("{pkg}.go"),
                format!("package {pkg}\n\n// Version is the module version.\nconst Version = \"{version}\"\n")
                    .into_bytes(),
            )],
            listed: !is_pseudo(version),
            level: None,
        }
    }

    /// Drops the go.mod (a legacy / `+incompatible` version).
    pub fn legacy(mut self) -> Self {
        self.go_mod = None;
        self
    }

    /// Replaces the go.mod text.
    pub fn with_go_mod(mut self, text: &str) -> Self {
        self.go_mod = Some(text.as_bytes().to_vec());
        self
    }

    /// Adds a file.
    pub fn with_file(mut self, name: &str, content: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.to_string(), content.into()));
        self
    }

    /// The `.mod` bytes the tree serves.
    pub fn mod_bytes(&self, module: &str) -> Vec<u8> {
        match &self.go_mod {
            Some(b) => b.clone(),
            None => format!("module {module}\n").into_bytes(),
        }
    }

    /// The `.info` JSON the tree serves.
    pub fn info_json(&self) -> String {
        format!(
            "{{\"Version\":\"{}\",\"Time\":\"{}\"}}\n",
            self.version, self.time
        )
    }

    /// All zip entries as (full name, content), go.mod first when present.
    pub fn zip_entries(&self, module: &str) -> Vec<(String, &[u8])> {
        let prefix = format!("{module}@{}/", self.version);
        let mut out: Vec<(String, &[u8])> = Vec::with_capacity(self.files.len() + 1);
        if let Some(g) = &self.go_mod {
            out.push((format!("{prefix}go.mod"), g.as_slice()));
        }
        for (name, content) in &self.files {
            out.push((format!("{prefix}{name}"), content.as_slice()));
        }
        out
    }
}

/// A module and its versions.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Module path (unescaped).
    pub path: String,
    /// Versions, in the order `@v/list` lists them.
    pub versions: Vec<VersionSpec>,
    /// When set, `@latest` is written with this version's `.info`.
    pub latest: Option<String>,
}

impl ModuleSpec {
    /// A module with no versions yet.
    pub fn new(path: &str) -> Self {
        ModuleSpec {
            path: path.to_string(),
            versions: Vec::new(),
            latest: None,
        }
    }

    /// Adds a version.
    pub fn with(mut self, v: VersionSpec) -> Self {
        self.versions.push(v);
        self
    }

    /// Adds a plain version made by [`VersionSpec::new`].
    pub fn version(self, version: &str, time: &str) -> Self {
        let v = VersionSpec::new(&self.path, version, time);
        self.with(v)
    }

    /// Writes `@latest` naming `version`.
    pub fn latest(mut self, version: &str) -> Self {
        self.latest = Some(version.to_string());
        self
    }
}

// === the written corpus ===

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

// === zips ===

/// Builds a zip from full entry names (deflate, zero timestamps, no directory entries added).
pub fn build_zip(entries: &[(String, &[u8])], level: Option<i64>) -> anyhow::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(level)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for (name, content) in entries {
        let opts = if content.len() >= (1 << 31) {
            opts.large_file(true)
        } else {
            opts
        };
        w.start_file(name.as_str(), opts)?;
        w.write_all(content)?;
    }
    Ok(w.finish()?.into_inner())
}

/// Deterministic pseudo-random bytes (splitmix64), incompressible by deflate.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A Go package name derived from the module path's last element (never a keyword).
pub fn package_name(module: &str) -> String {
    let last = module.rsplit('/').next().unwrap_or(module);
    let clean: String = last.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("p{}", clean.to_ascii_lowercase())
}

/// Whether `v` looks like a pseudo-version (`…-yyyymmddhhmmss-abcdefabcdef`).
pub fn is_pseudo(v: &str) -> bool {
    let base = v.split('+').next().unwrap_or(v);
    let parts: Vec<&str> = base.rsplitn(3, '-').collect();
    if parts.len() < 3 {
        return false;
    }
    let (rev, ts) = (parts[0], parts[1]);
    let ts = ts.rsplit('.').next().unwrap_or(ts);
    ts.len() == 14
        && ts.bytes().all(|b| b.is_ascii_digit())
        && !rev.is_empty()
        && rev.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The content fingerprint of a corpus spec (names its directory in [`Corpus::load_or_write`]).
pub fn fingerprint(specs: &[ModuleSpec]) -> String {
    let mut h = Sha256::new();
    h.update(b"cairn-corpus-1\0");
    for s in specs {
        h.update(s.path.as_bytes());
        h.update(s.latest.as_deref().unwrap_or("-").as_bytes());
        for v in &s.versions {
            h.update(
                format!("\0{}\0{}\0{}\0{:?}\0", v.version, v.time, v.listed, v.level).as_bytes(),
            );
            for (n, c) in v.zip_entries(&s.path) {
                h.update(n.as_bytes());
                h.update(Sha256::digest(c));
            }
            h.update(v.mod_bytes(&s.path));
        }
    }
    h1::hex(&h.finalize())[..16].to_string()
}

/// An RFC 3339 time for the `n`th version of the corpus (one a day in 2023).
pub fn time_n(n: u32) -> String {
    format!("2023-{:02}-{:02}T12:00:00Z", 1 + n / 28, 1 + n % 28)
}

// === the standard corpus ===

/// The shared corpus. It covers:
/// - an upper-case module path and an upper-case version ([`m::UPPER`], [`m::UPPER_RC`]);
/// - `+incompatible` of a legacy module without go.mod ([`m::LEGACY`]);
/// - a `/v2` module next to its v1 line ([`m::MODV2`], [`m::MODV1`]); a gopkg.in module;
/// - a pseudo-version-only module ([`m::PSEUDO`]: empty list, `@latest`);
/// - pre-releases ([`m::SIMPLE`], [`m::PRERELEASE`]); a retraction ([`m::RETRACT`]);
/// - ~300 files ([`m::MANY`]); a zip over 20 MB ([`m::BIG`]);
/// - nested modules ([`m::NEST`] without `sub/`, and [`m::NEST_SUB`]).
pub fn standard_modules() -> Vec<ModuleSpec> {
    let mut n = 0u32;
    let mut t = || {
        n += 1;
        time_n(n)
    };
    let simple = ModuleSpec::new(m::SIMPLE)
        .version("v1.0.0", &t())
        .version("v1.1.0", &t())
        .version("v1.2.0-beta.1", &t())
        .version("v1.2.0", &t())
        .version("v1.3.0-rc.1", &t())
        .latest("v1.2.0");
    let upper = ModuleSpec::new(m::UPPER)
        .version(m::UPPER_RC, &t())
        .version("v1.0.0", &t());
    let legacy = ModuleSpec::new(m::LEGACY)
        .with(VersionSpec::new(m::LEGACY, "v1.0.0", &t()).legacy())
        .with(VersionSpec::new(m::LEGACY, m::LEGACY_INCOMPATIBLE, &t()).legacy());
    let modv1 = ModuleSpec::new(m::MODV1).version("v1.0.0", &t());
    let modv2 = ModuleSpec::new(m::MODV2)
        .version("v2.0.0", &t())
        .version("v2.1.0", &t());
    let gopkg = ModuleSpec::new(m::GOPKG)
        .version("v1.0.0", &t())
        .version("v1.1.0", &t());
    let pseudo = ModuleSpec::new(m::PSEUDO)
        .with(VersionSpec::new(
            m::PSEUDO,
            m::PSEUDO_VERSION,
            "2023-01-02T03:04:05Z",
        ))
        .latest(m::PSEUDO_VERSION);
    let pre = ModuleSpec::new(m::PRERELEASE)
        .version("v0.1.0-alpha.1", &t())
        .version("v0.1.0-beta.2", &t());
    let retract = ModuleSpec::new(m::RETRACT)
        .version("v1.0.0", &t())
        .version(m::RETRACTED, &t())
        .with(
            VersionSpec::new(m::RETRACT, "v1.1.0", &t()).with_go_mod(&format!(
                "module {}\n\ngo 1.21\n\n// v1.0.1 shipped a broken build.\nretract {}\n",
                m::RETRACT,
                m::RETRACTED
            )),
        );
    let mut many_v = VersionSpec::new(m::MANY, "v1.0.0", &t());
    for i in 0..299 {
        let d = i % 10;
        many_v = many_v.with_file(
            &format!("d{d}/f{i:03}.go"),
            format!("package d{d}\n\n// F{i} is file number {i}.\nconst F{i} = {i}\n"),
        );
    }
    let many = ModuleSpec::new(m::MANY).with(many_v);
    let mut big_v = VersionSpec::new(m::BIG, "v1.0.0", &t()).with_file(
        "data.bin",
        pseudo_random_bytes(0xC0FF_EE00_D15C_0001, BIG_FILE_BYTES),
    );
    big_v.level = Some(1);
    let big = ModuleSpec::new(m::BIG).with(big_v);
    let nest = ModuleSpec::new(m::NEST).version("v1.0.0", &t());
    let nest_sub = ModuleSpec::new(m::NEST_SUB).version("v1.0.0", &t());
    vec![
        simple, upper, legacy, modv1, modv2, gopkg, pseudo, pre, retract, many, big, nest, nest_sub,
    ]
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

    #[test]
    fn pseudo_detection() {
        assert!(is_pseudo("v0.0.0-20230102030405-abcdefabcdef"));
        assert!(is_pseudo("v1.2.4-0.20230102030405-abcdefabcdef"));
        assert!(is_pseudo(
            "v1.2.3-pre.0.20230102030405-abcdefabcdef+incompatible"
        ));
        assert!(!is_pseudo("v1.2.0-beta.1"));
        assert!(!is_pseudo("v1.0.0-RC1"));
        assert!(!is_pseudo("v2.0.0+incompatible"));
    }

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
