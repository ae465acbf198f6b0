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
//! [`cluster_corpus`] adds many small generated modules for the cluster scenarios.

mod generated;
mod spec;
mod standard;
mod tree;
mod zipgen;

pub use generated::{
    cluster_corpus, gen_module, generated_modules, generated_versions, GEN_MODULES, GEN_VERSIONS,
};
pub use spec::{fingerprint, is_pseudo, package_name, time_n, ModuleSpec, VersionSpec};
pub use standard::{m, standard_modules, BIG_FILE_BYTES};
pub use tree::{expected_sums, Corpus, Entry, ModuleEntry};
pub use zipgen::{build_zip, pseudo_random_bytes};
