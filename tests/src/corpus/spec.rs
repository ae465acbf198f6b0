//! What a test asks for: [`ModuleSpec`]s made of [`VersionSpec`]s, plus the small rules the
//! generator needs (pseudo-version shape, package names, times, a content fingerprint).

use sha2::{Digest, Sha256};

use crate::h1;

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

/// The content fingerprint of a corpus spec (names its directory in [`super::Corpus::load_or_write`]).
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

/// An RFC 3339 time for the `n`th version of the corpus: one a day from 2023-01-01, 28 days a
/// month, so that every `n` gives a valid date (the go command rejects month 13).
pub fn time_n(n: u32) -> String {
    let (year, month, day) = (2023 + n / 336, 1 + (n / 28) % 12, 1 + n % 28);
    format!("{year}-{month:02}-{day:02}T12:00:00Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corpus_times_are_valid_dates() {
        assert_eq!(time_n(0), "2023-01-01T12:00:00Z");
        assert_eq!(time_n(335), "2023-12-28T12:00:00Z");
        assert_eq!(time_n(336), "2024-01-01T12:00:00Z");
        assert_eq!(time_n(1100), "2026-04-09T12:00:00Z");
    }

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
}
