//! The shared corpus every protocol test uses, and the names of its modules ([`m`]).

use super::{pseudo_random_bytes, time_n, ModuleSpec, VersionSpec};

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
