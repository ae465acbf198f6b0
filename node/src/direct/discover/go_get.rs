//! The `?go-get=1` step (`repoRootForImportDynamic`): the HTTP requests, with credentials and the
//! go command's redirect rules, and the checks on the go-import tag they find.

use reqwest::header::AUTHORIZATION;
use tracing::debug;

use std::sync::Arc;

use super::error::{bad_meta, not_found, refused};
use super::{html, DiscoverError, Discovery, DiscoveryOptions, RepoRoot};
use crate::direct::credentials::{parse_remote, redact_url, RemoteScheme};
use crate::direct::netguard::{refusal_in, GuardError, GuardedResolver, NetGuard};

/// Largest discovery page read; the go-import tags are in `<head>`, far before this.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// Redirect hops followed, as the go command does.
/// Longest error chain quoted in a message.
const MAX_REASON_CHARS: usize = 400;

// === impl Discovery ===

impl Discovery {
    /// `repoRootForImportDynamic`: the module's page, then the prefix's page to confirm.
    pub(super) async fn discover(&self, module: &str) -> Result<RepoRoot, DiscoverError> {
        let page = self.fetch(module, module).await?;
        let chosen = choose(module, &page)?;
        if chosen.prefix != module {
            let again = self.fetch(module, &chosen.prefix).await?;
            if again.imports.is_empty() {
                return Err(bad_meta(
                    module,
                    &format!(
                        "{} names {} as the root, but {} has no go-import meta tag",
                        page.url, chosen.prefix, again.url
                    ),
                ));
            }
            if html::match_go_import(&again.imports, module).ok() != Some(&chosen) {
                return Err(bad_meta(
                    module,
                    &format!(
                        "{} and {} disagree about go-import for {}",
                        page.url, again.url, chosen.prefix
                    ),
                ));
            }
        }
        self.accept(module, &page.url, chosen)
    }

    /// Checks the chosen tag and turns it into the answer.
    fn accept(
        &self,
        module: &str,
        page_url: &str,
        tag: html::MetaImport,
    ) -> Result<RepoRoot, DiscoverError> {
        if tag.vcs == "mod" {
            return Err(DiscoverError::ModProxy {
                module: module.to_owned(),
                url: redact_url(&tag.repo_root),
            });
        }
        if tag.vcs != "git" {
            return Err(DiscoverError::UnsupportedVcs {
                module: module.to_owned(),
                vcs: tag.vcs,
            });
        }
        if let Err(reason) = check_subdir(&tag.subdir) {
            return Err(bad_meta(
                module,
                &format!(
                    "{page_url}: invalid subdirectory {:?}: {reason}",
                    tag.subdir
                ),
            ));
        }
        if let Err(reason) = self.check_repo_url(module, &tag.repo_root) {
            return Err(bad_meta(
                module,
                &format!(
                    "{page_url}: invalid repository URL {:?}: {reason}",
                    redact_url(&tag.repo_root)
                ),
            ));
        }
        self.check_repo_host(
            module,
            RepoRoot {
                root: tag.prefix,
                url: tag.repo_root,
                subdir: tag.subdir,
            },
        )
    }

    /// Refuses a repository whose host is a literal address the guard refuses. Names are
    /// checked (and pinned) when git connects, which is the moment that counts.
    pub(super) fn check_repo_host(
        &self,
        module: &str,
        root: RepoRoot,
    ) -> Result<RepoRoot, DiscoverError> {
        if let Some(remote) = parse_remote(&root.url) {
            self.opts
                .guard
                .check_literal(&remote.host)
                .map_err(|r| refused(module, r))?;
        }
        Ok(root)
    }

    /// `validateRepoRoot` plus: no credentials in the URL, and plain-text transports only for
    /// `insecure` paths.
    pub(super) fn check_repo_url(&self, module: &str, url: &str) -> Result<(), &'static str> {
        let parsed = reqwest::Url::parse(url).map_err(|_| "not a URL with a scheme")?;
        let remote = parse_remote(url).ok_or("not a URL with a scheme")?;
        if remote.has_password {
            return Err("it contains a password");
        }
        match (remote.scheme, parsed.scheme()) {
            (RemoteScheme::File, _) => Err("file scheme disallowed"),
            (RemoteScheme::Https | RemoteScheme::Ssh, _) => Ok(()),
            (RemoteScheme::Http, _) | (RemoteScheme::Other, "git") if self.is_insecure(module) => {
                Ok(())
            }
            (RemoteScheme::Http, _) | (RemoteScheme::Other, "git") => {
                Err("insecure scheme (list the module in direct.insecure to allow it)")
            }
            _ => Err("scheme not supported by git"),
        }
    }

    /// GETs `<path>?go-get=1` for `module` and parses its go-import tags. Any status is
    /// accepted when the page carries tags; without tags 404/410 mean "not found" and other
    /// non-2xx statuses a failure.
    async fn fetch(&self, module: &str, path: &str) -> Result<Page, DiscoverError> {
        let (host, rest) = path.split_once('/').unwrap_or((path, ""));
        if !host.contains('.') {
            return Err(not_found(
                module,
                "the path does not begin with a host name",
            ));
        }
        // The URL parser's form of the host: `127.1` and `0x7f.0.0.1` are 127.0.0.1 to it.
        if let Some(remote) = parse_remote(&format!("https://{host}/")) {
            self.opts
                .guard
                .check_literal(&remote.host)
                .map_err(|r| refused(module, r))?;
        }
        let target = format!("{host}/{rest}?go-get=1");
        let page = if self.is_insecure(module) {
            // GOINSECURE: https without verification first, then plain http if that could not
            // get an answer at all.
            match self
                .get(module, &self.insecure_client, "https", &target)
                .await
            {
                Err(DiscoverError::Failed { reason, .. }) => {
                    debug!(error = %reason, "https discovery failed; trying http (insecure)");
                    self.get(module, &self.insecure_client, "http", &target)
                        .await
                        .map_err(|e| match e {
                            DiscoverError::Failed {
                                module,
                                reason: http,
                            } => DiscoverError::Failed {
                                module,
                                reason: format!("{reason}; then {http}"),
                            },
                            other => other,
                        })?
                }
                other => other?,
            }
        } else {
            self.get(module, &self.client, "https", &target).await?
        };
        if page.imports.is_empty() && !page.status.is_success() {
            let reason = format!("GET {}: {}", page.url, page.status);
            return Err(if matches!(page.status.as_u16(), 404 | 410) {
                not_found(module, &reason)
            } else {
                DiscoverError::Failed {
                    module: module.to_owned(),
                    reason,
                }
            });
        }
        Ok(page)
    }

    /// One GET of `scheme://target`, reading the body (up to [`MAX_BODY_BYTES`]) whatever the
    /// status; only transport errors and timeouts fail.
    async fn get(
        &self,
        module: &str,
        client: &reqwest::Client,
        scheme: &str,
        target: &str,
    ) -> Result<Page, DiscoverError> {
        let url = format!("{scheme}://{target}");
        let remote = parse_remote(&url).ok_or_else(|| not_found(module, "bad host name"))?;
        let auth = self
            .creds
            .authorization(&remote, scheme == "https")
            .map_err(|source| DiscoverError::Credential {
                module: module.to_owned(),
                source,
            })?;
        self.check_proxied(module, &url, &remote.host, remote.port)
            .await?;
        let mut req = client.get(&url);
        if let Some(auth) = &auth {
            req = req.header(AUTHORIZATION, auth.expose());
        }
        let failed = |reason: String| DiscoverError::Failed {
            module: module.to_owned(),
            reason: format!("GET {url}: {reason}"),
        };
        let mut resp = req.send().await.map_err(|e| match refusal_in(&e) {
            // The resolver or the redirect policy refused an address: nothing was sent to it.
            Some(r) => refused(module, r),
            None => failed(error_chain(&e)),
        })?;
        let status = resp.status();
        let final_url = resp.url().to_string();
        let mut body = Vec::new();
        while body.len() < MAX_BODY_BYTES {
            match resp.chunk().await.map_err(|e| failed(error_chain(&e)))? {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        body.truncate(MAX_BODY_BYTES);
        let imports = html::parse_meta_go_imports(&String::from_utf8_lossy(&body));
        debug!(url = %final_url, status = status.as_u16(), tags = imports.len(), "go-get page");
        Ok(Page {
            url: final_url,
            status,
            imports,
        })
    }
}

impl Discovery {
    /// Through a forward proxy the proxy resolves the target, so the resolver never sees it:
    /// check cairn's own answer first. A name cairn cannot resolve is left to the proxy (split
    /// DNS); a rebinding answer between this lookup and the proxy's is a residual risk.
    async fn check_proxied(
        &self,
        module: &str,
        url: &str,
        host: &str,
        port: Option<u16>,
    ) -> Result<(), DiscoverError> {
        let proxied = reqwest::Url::parse(url).ok().is_some_and(|u| {
            self.opts
                .egress
                .proxies()
                .for_url(&u)
                .is_some_and(|p| self.opts.system_proxy || !p.from_env())
        });
        if !proxied {
            return Ok(());
        }
        match self.opts.guard.resolve(host, port.unwrap_or(0)).await {
            Err(GuardError::Refused(r)) => Err(refused(module, r)),
            _ => Ok(()),
        }
    }
}

/// A fetched discovery page.
struct Page {
    /// Where the page came from, after redirects.
    url: String,
    /// The HTTP status.
    status: reqwest::StatusCode,
    /// Its go-import tags, `mod` entries first.
    imports: Vec<html::MetaImport>,
}

/// `matchGoImport` with the go command's error mapping.
fn choose(module: &str, page: &Page) -> Result<html::MetaImport, DiscoverError> {
    match html::match_go_import(&page.imports, module) {
        Ok(tag) => Ok(tag.clone()),
        Err(html::MatchError::Multiple) => Err(bad_meta(
            module,
            &format!(
                "{}: multiple meta tags match import path {module:?}",
                page.url
            ),
        )),
        Err(html::MatchError::Mismatch) if page.imports.is_empty() => Err(not_found(
            module,
            &format!("{}: no go-import meta tags", page.url),
        )),
        Err(html::MatchError::Mismatch) => {
            let prefixes: Vec<&str> = page.imports.iter().map(|m| m.prefix.as_str()).collect();
            Err(not_found(
                module,
                &format!(
                    "{}: no go-import meta tag matches (found {})",
                    page.url,
                    prefixes.join(", ")
                ),
            ))
        }
    }
}

/// `validateRepoSubDir`, plus no `..` or `\` (the directory is used as a path in the repository).
fn check_subdir(subdir: &str) -> Result<(), &'static str> {
    if subdir.starts_with('/') {
        Err("leading slash")
    } else if subdir.starts_with('-') {
        Err("leading hyphen")
    } else if subdir.split('/').any(|e| e == ".." || e == ".") || subdir.contains('\\') {
        Err("'.', '..' or '\\' in the path")
    } else {
        Ok(())
    }
}

pub(super) fn build_client(
    opts: &DiscoveryOptions,
    insecure: bool,
) -> Result<reqwest::Client, DiscoverError> {
    // Like the go command: at most 10 hops, and never from https to http — even for insecure
    // paths, where it would carry an Authorization header in clear text over the same host
    // (reqwest drops it only across hosts); the plain-http retry in `fetch` covers those servers.
    let guard = Arc::new(guard_for(opts));
    let redirect_guard = Arc::clone(&guard);
    // A redirect to a literal address never reaches the resolver, so it is checked here.
    let policy = crate::upstream::redirect_policy_checking(move |url| {
        let host = url.host_str().unwrap_or("");
        redirect_guard.check_literal(host).map_err(Into::into)
    });
    let builder = if insecure {
        opts.egress.insecure_client_builder(opts.system_proxy)
    } else {
        opts.egress.client_builder(opts.system_proxy)
    };
    let mut builder = builder
        .dns_resolver(Arc::new(GuardedResolver(guard)))
        .timeout(opts.timeout)
        .user_agent(opts.user_agent.clone())
        .redirect(policy);
    for (host, addr) in &opts.resolve {
        builder = builder.resolve(host, *addr);
    }
    builder.build().map_err(|e| DiscoverError::Client {
        reason: error_chain(&e),
    })
}

/// The discovery guard, also trusting the configured proxies (reqwest resolves a proxy's name
/// through the same resolver, and the operator chose it).
fn guard_for(opts: &DiscoveryOptions) -> NetGuard {
    let proxies = opts.egress.proxies();
    [&proxies.https, &proxies.http]
        .into_iter()
        .flatten()
        .filter_map(|p| p.url.host_str())
        .fold((*opts.guard).clone(), |g, host| {
            g.trust(host.trim_start_matches('[').trim_end_matches(']'))
        })
}

/// An error and its causes on one line, shortened.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::egress::error_chain(e)
        .chars()
        .take(MAX_REASON_CHARS)
        .collect()
}
