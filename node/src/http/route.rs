//! Pure parsing of a request path into a [`Route`]: percent-decoding, splitting at `/@v/` or
//! `/@latest`, and Go's `!`-unescaping and validation of module paths and versions. Nothing
//! here does I/O, so a malformed path is rejected before anything else runs.

use crate::module;

/// What a request path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `/healthz`
    Healthz,
    /// `/readyz`
    Readyz,
    /// `/metrics`
    Metrics,
    /// `/whoami`: the identity cairn sees for the request's credentials.
    Whoami,
    /// `/sumdb/<rest>`
    Sumdb(String),
    /// A GOPROXY request.
    Proxy(ProxyRequest),
    /// `/index`: the feed of held versions (issue 12).
    Index,
}

/// A GOPROXY request with unescaped module path and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyRequest {
    /// `<module>/@v/list`
    List {
        /// Module path.
        module: String,
    },
    /// `<module>/@latest`
    Latest {
        /// Module path.
        module: String,
    },
    /// `<module>/@v/<version>.info`
    Info {
        /// Module path.
        module: String,
        /// Version or query.
        version: String,
    },
    /// `<module>/@v/<version>.mod`
    Mod {
        /// Module path.
        module: String,
        /// Version.
        version: String,
    },
    /// `<module>/@v/<version>.zip`
    Zip {
        /// Module path.
        module: String,
        /// Version.
        version: String,
    },
}

impl ProxyRequest {
    /// The module path, and the version or query where the request names one.
    pub fn module_version(&self) -> (&str, Option<&str>) {
        match self {
            ProxyRequest::List { module } | ProxyRequest::Latest { module } => (module, None),
            ProxyRequest::Info { module, version }
            | ProxyRequest::Mod { module, version }
            | ProxyRequest::Zip { module, version } => (module, Some(version)),
        }
    }

    /// The endpoint label for metrics.
    pub fn endpoint(&self) -> &'static str {
        match self {
            ProxyRequest::List { .. } => "list",
            ProxyRequest::Latest { .. } => "latest",
            ProxyRequest::Info { .. } => "info",
            ProxyRequest::Mod { .. } => "mod",
            ProxyRequest::Zip { .. } => "zip",
        }
    }
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// Malformed path: 400.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No such endpoint: 404.
    #[error("not found: {0}")]
    NotFound(String),
}

/// Parses a raw request path (without query string).
pub fn parse(raw_path: &str) -> Result<Route, RouteError> {
    let path = percent_decode(raw_path)?;
    let path = path
        .strip_prefix('/')
        .ok_or_else(|| RouteError::BadRequest("path must start with /".into()))?;
    match path {
        "healthz" => return Ok(Route::Healthz),
        "readyz" => return Ok(Route::Readyz),
        "metrics" => return Ok(Route::Metrics),
        "whoami" => return Ok(Route::Whoami),
        "index" => return Ok(Route::Index),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("sumdb/") {
        return Ok(Route::Sumdb(rest.to_string()));
    }
    parse_proxy(path).map(Route::Proxy)
}

fn parse_proxy(path: &str) -> Result<ProxyRequest, RouteError> {
    if path.starts_with("@v/") || path == "@latest" {
        return Err(RouteError::BadRequest("missing module path".into()));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(RouteError::BadRequest(
            "path contains a \".\" or \"..\" element".into(),
        ));
    }
    if let Some(escaped) = path.strip_suffix("/@latest") {
        let module = unescape_module(escaped)?;
        return Ok(ProxyRequest::Latest { module });
    }
    let (escaped, file) = path.split_once("/@v/").ok_or_else(|| {
        RouteError::NotFound(format!(
            "{path:?} is not a GOPROXY path (expected <module>/@v/... or <module>/@latest)"
        ))
    })?;
    let module = unescape_module(escaped)?;
    if file == "list" {
        return Ok(ProxyRequest::List { module });
    }
    let (version, kind) = [".info", ".mod", ".zip"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext).map(|v| (v, *ext)))
        .ok_or_else(|| {
            RouteError::BadRequest(format!(
                "unknown file {file:?}: expected list, <version>.info, .mod or .zip"
            ))
        })?;
    if version.is_empty() {
        return Err(RouteError::BadRequest(
            "missing version before the extension".into(),
        ));
    }
    let version = module::unescape_version(version)
        .map_err(|e| RouteError::BadRequest(format!("invalid version: {e}")))?;
    Ok(match kind {
        ".info" => ProxyRequest::Info { module, version },
        ".mod" => ProxyRequest::Mod { module, version },
        _ => ProxyRequest::Zip { module, version },
    })
}

fn unescape_module(escaped: &str) -> Result<String, RouteError> {
    if escaped.is_empty() {
        return Err(RouteError::BadRequest("missing module path".into()));
    }
    module::unescape_path(escaped)
        .map_err(|e| RouteError::BadRequest(format!("invalid module path: {e}")))
}

/// Strict percent-decoding: `%` must be followed by two hex digits and the result must be
/// UTF-8. `+` stays `+`.
fn percent_decode(s: &str) -> Result<String, RouteError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            let v = hex
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    RouteError::BadRequest("malformed percent-encoding in path".into())
                })?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| RouteError::BadRequest("path is not valid UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxy(p: &str) -> ProxyRequest {
        match parse(p) {
            Ok(Route::Proxy(r)) => r,
            other => panic!("{p}: {other:?}"),
        }
    }

    #[test]
    fn goproxy_paths() {
        assert_eq!(
            proxy("/golang.org/x/mod/@v/list"),
            ProxyRequest::List {
                module: "golang.org/x/mod".into()
            }
        );
        assert_eq!(
            proxy("/github.com/%21azure/x/@latest"),
            ProxyRequest::Latest {
                module: "github.com/Azure/x".into()
            }
        );
        assert_eq!(
            proxy("/github.com/!burnt!sushi/toml/@v/v1.0.0-!r!c1.info"),
            ProxyRequest::Info {
                module: "github.com/BurntSushi/toml".into(),
                version: "v1.0.0-RC1".into()
            }
        );
        assert_eq!(
            proxy("/example.com/m/@v/v2.0.0+incompatible.zip"),
            ProxyRequest::Zip {
                module: "example.com/m".into(),
                version: "v2.0.0+incompatible".into()
            }
        );
        assert_eq!(
            proxy("/gopkg.in/yaml.v2/@v/v2.4.0.mod"),
            ProxyRequest::Mod {
                module: "gopkg.in/yaml.v2".into(),
                version: "v2.4.0".into()
            }
        );
        assert_eq!(
            proxy("/example.com/m/@v/master.info"),
            ProxyRequest::Info {
                module: "example.com/m".into(),
                version: "master".into()
            }
        );
    }

    #[test]
    fn other_routes() {
        assert_eq!(parse("/healthz"), Ok(Route::Healthz));
        assert_eq!(parse("/readyz"), Ok(Route::Readyz));
        assert_eq!(parse("/metrics"), Ok(Route::Metrics));
        assert_eq!(
            parse("/sumdb/sum.golang.org/supported"),
            Ok(Route::Sumdb("sum.golang.org/supported".into()))
        );
    }

    #[test]
    fn malformed_paths_are_400() {
        for p in [
            "/example.com/!A/@v/list",
            "/example.com/m!/@v/list",
            "/example.com/m/@v/%zz.info",
            "/example.com/../etc/@v/list",
            "/example.com/m/@v/.zip",
            "/example.com/m/@v/",
            "/example.com/m/@v/v1.0.0.tar",
            "/Example.com/m/@v/list",
            "/example.com/m/@v/..%2f..%2fx.info",
            "/@v/list",
            "/example.com/m/@v/%ff.info",
            "/../../../etc/passwd",
            "/example.com/./m/@v/list",
        ] {
            assert!(
                matches!(parse(p), Err(RouteError::BadRequest(_))),
                "{p}: {:?}",
                parse(p)
            );
        }
        assert!(matches!(
            parse("/favicon.ico"),
            Err(RouteError::NotFound(_))
        ));
    }
}
