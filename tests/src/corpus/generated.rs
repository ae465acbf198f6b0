//! The cluster corpus: the [`standard_modules`] plus many small generated modules
//! (`example.com/gen/mNN`), so cluster scenarios have a supply of versions nobody asked for yet
//! (a workload mixing hits and misses, or hundreds of Raft proposals).

use std::path::Path;
use std::sync::OnceLock;

use super::{standard_modules, time_n, Corpus, ModuleSpec};

/// How many generated modules the cluster corpus has.
pub const GEN_MODULES: usize = 40;

/// Versions of every generated module.
pub const GEN_VERSIONS: [&str; 3] = ["v1.0.0", "v1.1.0", "v1.2.0"];

/// The path of generated module `i` (`example.com/gen/m07`).
pub fn gen_module(i: usize) -> String {
    format!("example.com/gen/m{i:02}")
}

/// `GEN_MODULES` modules of `GEN_VERSIONS` small versions each.
pub fn generated_modules() -> Vec<ModuleSpec> {
    let mut n = 100u32; // after the standard corpus's times
    (0..GEN_MODULES)
        .map(|i| {
            let path = gen_module(i);
            GEN_VERSIONS.iter().fold(ModuleSpec::new(&path), |s, v| {
                n += 1;
                s.version(v, &time_n(n))
            })
        })
        .collect()
}

/// Every generated `module@version`, module by module.
pub fn generated_versions() -> Vec<(String, String)> {
    (0..GEN_MODULES)
        .flat_map(|i| {
            GEN_VERSIONS
                .iter()
                .map(move |v| (gen_module(i), v.to_string()))
        })
        .collect()
}

static CLUSTER: OnceLock<Corpus> = OnceLock::new();

/// The standard modules plus the generated ones, written once under `base` (which must not be
/// the base of [`Corpus::shared`]: each base keeps only its newest tree).
pub fn cluster_corpus(base: &Path) -> &'static Corpus {
    CLUSTER.get_or_init(|| {
        let mut specs = standard_modules();
        specs.extend(generated_modules());
        Corpus::load_or_write(base, &specs).unwrap_or_else(|e| {
            panic!(
                "generating the cluster corpus under {}: {e:#}",
                base.display()
            )
        })
    })
}
