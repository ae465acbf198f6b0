//! [`Checker`]: verifies module versions against the configured checksum database before
//! they are stored, exactly as the go command does — look the version up, check the signed
//! note, prove the record's inclusion in that tree from authenticated tiles, prove the tree
//! consistent with the newest tree head the cluster has seen (replicated through Raft, so a
//! fork is detected across restarts and nodes), and hand the database's hashes to the caller.
//!
//! Only answers that verified are cached (lookups, and tiles authenticated by
//! [`tlog::TileHashReader`]), so the `/sumdb/` proxy serves clients from the same verified
//! cache and a `GOSUMDB` client never disagrees with cairn.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;

use super::metrics::{self, verification};
use super::note::{self, Verifier};
use super::proxy::item;
use super::tlog::{self, TileHashReader, TileReader, TlogError, Tree};
use super::{SumdbError, SumdbProxy};
use crate::config::{SumdbDatabase, VerifyMode};
use crate::raft::Consensus;
use crate::store::meta::{MetaCmd, MetaResp, SumdbItem, TreeHeadRecord};

/// Rounds of "prove, fetch the tiles the proof needs" before giving up; a proof needs at most
/// two (the tiles, then their parents are planned together by the reader).
const MAX_TILE_ROUNDS: usize = 6;

/// Times a verification re-proves its tree after another one moved the replicated head.
const MAX_HEAD_RACES: usize = 4;

/// Tile height of every Go checksum database.
const TILE_HEIGHT: i32 = 8;

/// Why a version could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The database did not answer.
    #[error("checksum database {db} could not be reached: {reason}")]
    Unreachable {
        /// The database.
        db: String,
        /// Why.
        reason: String,
    },
    /// The database has no record of the version (404/410 for its lookup).
    #[error("checksum database {db} has no record of {module}@{version}: {reason}")]
    NotLogged {
        /// The database.
        db: String,
        /// Module path.
        module: String,
        /// Version.
        version: String,
        /// The database's answer.
        reason: String,
    },
    /// An answer did not verify (bad signature, failed proof, malformed record).
    #[error("checksum database {db} sent an answer that does not verify: {reason}")]
    Invalid {
        /// The database.
        db: String,
        /// What failed.
        reason: String,
    },
    /// The database forked; nothing is verified against it any more.
    #[error("checksum database {db} is forked ({evidence}); verification against it is refused until an operator investigates")]
    Forked {
        /// The database.
        db: String,
        /// The two tree heads that cannot both be true.
        evidence: String,
    },
}

/// The database's hashes for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbHashes {
    /// The database that vouched for them.
    pub db: String,
    /// `h1:` of the zip.
    pub zip_h1: String,
    /// `h1:` of the go.mod.
    pub mod_h1: String,
}

/// The outcome of checking one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The database vouches for these hashes.
    Verified(DbHashes),
    /// `best-effort`: the database could not say; store unverified and check later.
    Unverified {
        /// Why it could not be verified now.
        reason: String,
    },
    /// Not checked: no verifying database, or a private path.
    NotChecked,
}

/// Answers a verification fetched and authenticated, to be stored once it is over — by the
/// caller, so that storing them can share a Raft flush with the caller's own write.
#[derive(Default)]
pub struct Pending {
    /// A std mutex: held only to push or take, never across an await.
    items: Mutex<Vec<SumdbItem>>,
}

impl Pending {
    fn push(&self, items: impl IntoIterator<Item = SumdbItem>) {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(items);
    }

    /// The answers collected.
    pub fn take(&self) -> Vec<SumdbItem> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The verifying database.
struct Checked {
    db: SumdbDatabase,
    verifier: Verifier,
    mode: VerifyMode,
}

/// Verifies versions against the first configured database whose mode is not `off`.
pub struct Checker {
    proxy: SumdbProxy,
    consensus: Consensus,
    checked: Option<Checked>,
}

impl Checker {
    /// A checker over `proxy`'s databases (keys were validated with the config).
    pub fn new(proxy: SumdbProxy, consensus: Consensus) -> Checker {
        let checked = proxy.databases().iter().find_map(|db| {
            let mode = db.mode();
            let verifier = Verifier::parse(db.verifier_key()?).ok()?;
            (mode != VerifyMode::Off).then(|| Checked {
                db: db.clone(),
                verifier,
                mode,
            })
        });
        if let Some(c) = &checked {
            tracing::info!(db = %c.db.name, mode = ?c.mode, "verifying module versions against the checksum database");
            // Exported from the start so `cairn_sumdb_forked == 1` has a 0 to flip from. A fork
            // already recorded in the replicated state sets it to 1 at the next verification.
            ::metrics::gauge!(metrics::FORKED, "db" => c.db.name.clone()).set(0.0);
        }
        Checker {
            proxy,
            consensus,
            checked,
        }
    }

    /// The name of the verifying database, if any.
    pub fn database(&self) -> Option<&str> {
        self.checked.as_ref().map(|c| c.db.name.as_str())
    }

    /// Checks `module@version` under the database's mode and stores what it fetched. Private
    /// paths are not checked.
    pub async fn check(&self, module: &str, version: &str) -> Result<Verdict, VerifyError> {
        let pending = Pending::default();
        let verdict = self.check_deferred(module, version, &pending).await;
        self.keep(pending.take()).await;
        verdict
    }

    /// The verifying database, when `module` is checked against it (a database is configured
    /// and the path is not private).
    fn checked_for(&self, module: &str) -> Option<&Checked> {
        self.checked
            .as_ref()
            .filter(|_| self.proxy.is_public(module))
    }

    /// The recheck worker's lookup of a version stored unverified: the database's hashes,
    /// `Ok(None)` when the version is not checked (no verifying database, a private path), or
    /// why the database could not say. Unlike [`Self::check`] it logs nothing per version (a
    /// pass may look up a million; the worker reports the pass) and ignores the mode.
    pub async fn recheck_lookup(
        &self,
        module: &str,
        version: &str,
    ) -> Result<Option<DbHashes>, VerifyError> {
        let Some(c) = self.checked_for(module) else {
            return Ok(None);
        };
        let pending = Pending::default();
        let looked_up = self.lookup(c, module, version, &pending).await;
        self.keep(pending.take()).await;
        match looked_up {
            Ok(h) => {
                verification("verified");
                Ok(Some(h))
            }
            Err(e) => {
                verification(match e {
                    VerifyError::Unreachable { .. } | VerifyError::NotLogged { .. } => "unverified",
                    _ => error_label(&e),
                });
                Err(e)
            }
        }
    }

    /// Stores answers a verification collected (see [`Self::check_deferred`]).
    pub async fn keep(&self, items: Vec<SumdbItem>) {
        if let Some(c) = &self.checked {
            self.proxy.keep(&c.db, items).await;
        }
    }

    /// [`Self::check`], leaving the answers to store in `pending` for [`Self::keep`].
    pub async fn check_deferred(
        &self,
        module: &str,
        version: &str,
        pending: &Pending,
    ) -> Result<Verdict, VerifyError> {
        let Some(c) = self.checked_for(module) else {
            return Ok(Verdict::NotChecked);
        };
        match self.lookup(c, module, version, pending).await {
            Ok(h) => {
                verification("verified");
                Ok(Verdict::Verified(h))
            }
            Err(e @ (VerifyError::Unreachable { .. } | VerifyError::NotLogged { .. }))
                if c.mode == VerifyMode::BestEffort =>
            {
                verification("unverified");
                tracing::warn!(module, version, db = %c.db.name, error = %e, "stored unverified (best-effort); will check again");
                Ok(Verdict::Unverified {
                    reason: e.to_string(),
                })
            }
            Err(e) => {
                verification(error_label(&e));
                Err(e)
            }
        }
    }

    /// Serves a client's `lookup/<path>@<version>` of the verifying database: the verified
    /// answer for exactly that module version, verifying (and storing) it first when needed.
    pub(super) async fn client_lookup(&self, path: &str) -> Result<Bytes, SumdbError> {
        let Some(c) = &self.checked else {
            return Err(SumdbError::NotFound(path.to_owned()));
        };
        let bad = |e: String| SumdbError::BadRequest(format!("malformed lookup {path:?}: {e}"));
        let (module, version) = path
            .strip_prefix("lookup/")
            .and_then(|l| l.rsplit_once('@'))
            .ok_or_else(|| bad("no module@version".into()))?;
        let module = crate::module::unescape_path(module).map_err(|e| bad(e.to_string()))?;
        let version = crate::module::unescape_version(version).map_err(|e| bad(e.to_string()))?;
        let pending = Pending::default();
        let looked_up = self.lookup_body(c, &module, &version, &pending).await;
        self.proxy.keep(&c.db, pending.take()).await;
        match looked_up {
            Ok((_, body)) => Ok(body),
            Err(VerifyError::NotLogged { reason, .. }) => Err(SumdbError::NotFound(reason)),
            Err(e) => Err(SumdbError::Upstream(e.to_string())),
        }
    }

    /// Whether `db` is the verifying database.
    pub(super) fn verifies(&self, db: &str) -> bool {
        self.database() == Some(db)
    }

    async fn lookup(
        &self,
        c: &Checked,
        module: &str,
        version: &str,
        pending: &Pending,
    ) -> Result<DbHashes, VerifyError> {
        self.lookup_body(c, module, version, pending)
            .await
            .map(|(hashes, _)| hashes)
    }

    /// The verified lookup of `module@version` and its body. A stored answer that does not
    /// verify (it cannot have been stored by a verification, e.g. a pre-upgrade cache file) is
    /// ignored and the database asked again.
    async fn lookup_body(
        &self,
        c: &Checked,
        module: &str,
        version: &str,
        pending: &Pending,
    ) -> Result<(DbHashes, Bytes), VerifyError> {
        let path = lookup_path(module, version).map_err(|reason| invalid(c, reason))?;
        if let Some(body) = self.proxy.cached(&c.db, &path).await {
            match self.check_lookup(c, &body, module, version, pending).await {
                Ok(hashes) => return Ok((hashes, body)),
                Err(e @ VerifyError::Forked { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(module, version, error = %e, "stored lookup does not verify; asking the database again")
                }
            }
        }
        let body = self.fetch(c, &path, module, version).await?;
        let hashes = self
            .check_lookup(c, &body, module, version, pending)
            .await?;
        pending.push([item(&path, &body)]);
        Ok((hashes, body))
    }

    /// Verifies a lookup answer and that its record is exactly `module@version`'s.
    async fn check_lookup(
        &self,
        c: &Checked,
        body: &[u8],
        module: &str,
        version: &str,
        pending: &Pending,
    ) -> Result<DbHashes, VerifyError> {
        let text = self.verify_lookup(c, body, pending).await?;
        let (zip_h1, mod_h1) = record_hashes(&text, module, version).map_err(|r| invalid(c, r))?;
        Ok(DbHashes {
            db: c.db.name.clone(),
            zip_h1,
            mod_h1,
        })
    }

    async fn fetch(
        &self,
        c: &Checked,
        path: &str,
        module: &str,
        version: &str,
    ) -> Result<Bytes, VerifyError> {
        self.proxy.fetch(&c.db, path).await.map_err(|e| match e {
            SumdbError::NotFound(reason) => VerifyError::NotLogged {
                db: c.db.name.clone(),
                module: module.to_owned(),
                version: version.to_owned(),
                reason,
            },
            SumdbError::Upstream(reason) => VerifyError::Unreachable {
                db: c.db.name.clone(),
                reason,
            },
            other => invalid(c, other.to_string()),
        })
    }

    /// Verifies a lookup answer (`<id>\n<record>\n<signed note>`) and returns the record text.
    async fn verify_lookup(
        &self,
        c: &Checked,
        body: &[u8],
        pending: &Pending,
    ) -> Result<String, VerifyError> {
        let (id, text, signed) =
            tlog::parse_record(body).map_err(|e| invalid(c, format!("lookup answer: {e}")))?;
        let (tree, signed) = (open_tree(c, signed)?, signed.to_vec());
        let text = text.to_vec();
        let leaf = tlog::record_hash(&text);
        self.with_tiles(c, tree, pending, |r| {
            let proof = tlog::prove_record(tree.n, id, r)?;
            tlog::check_record(&proof, tree.n, tree.hash, id, leaf)
        })
        .await
        .map_err(|e| {
            invalid(
                c,
                format!(
                    "record {id} is not in the signed tree of size {}: {e}",
                    tree.n
                ),
            )
        })?;
        self.consistent(c, tree, signed, pending).await?;
        String::from_utf8(text).map_err(|_| invalid(c, "record is not UTF-8".into()))
    }

    /// Proves `tree` consistent with the replicated tree head and records it if newer; a
    /// contradiction marks the database forked for the whole cluster. Recording is a
    /// compare-and-swap: if another verification moved the head meanwhile (the proposal changed
    /// nothing), `tree` is proven again against the head that won.
    async fn consistent(
        &self,
        c: &Checked,
        tree: Tree,
        signed: Vec<u8>,
        pending: &Pending,
    ) -> Result<(), VerifyError> {
        for _ in 0..MAX_HEAD_RACES {
            let stored = self
                .consensus
                .reader()
                .get_tree_head(&c.db.name)
                .map_err(|e| invalid(c, format!("reading the stored tree head: {e}")))?;
            let Some(stored) = stored else {
                match self.record_head(c, tree, &signed).await {
                    Some(MetaResp::Unchanged) => continue,
                    _ => return Ok(()),
                }
            };
            if let Some(evidence) = stored.forked {
                ::metrics::gauge!(metrics::FORKED, "db" => c.db.name.clone()).set(1.0);
                return Err(VerifyError::Forked {
                    db: c.db.name.clone(),
                    evidence,
                });
            }
            let old = Tree {
                n: i64::try_from(stored.size).unwrap_or(i64::MAX),
                hash: tlog::parse_hash(&stored.hash)
                    .map_err(|e| invalid(c, format!("stored tree head: {e}")))?,
            };
            let proven = match tree.n.cmp(&old.n) {
                std::cmp::Ordering::Equal => Ok(tree.hash == old.hash),
                std::cmp::Ordering::Greater => self.prove_prefix(c, tree, old, pending).await,
                std::cmp::Ordering::Less => self.prove_prefix(c, old, tree, pending).await,
            };
            match proven {
                Ok(true) if tree.n > old.n => match self.record_head(c, tree, &signed).await {
                    Some(MetaResp::Unchanged) => continue,
                    _ => return Ok(()),
                },
                Ok(true) => return Ok(()),
                Ok(false) | Err(TlogError::ProofFailed) => {
                    return Err(self.fork(c, old, tree).await)
                }
                Err(e) => return Err(invalid(c, format!("consistency proof: {e}"))),
            }
        }
        Err(invalid(
            c,
            "the tree head kept moving while this one was proven".into(),
        ))
    }

    /// Whether `small` is a prefix of `big` (fetching the tiles of `big`).
    async fn prove_prefix(
        &self,
        c: &Checked,
        big: Tree,
        small: Tree,
        pending: &Pending,
    ) -> Result<bool, TlogError> {
        self.with_tiles(c, big, pending, |r| {
            let proof = tlog::prove_tree(big.n, small.n, r)?;
            tlog::check_tree(&proof, big.n, big.hash, small.n, small.hash)
        })
        .await
        .map(|()| true)
    }

    /// Proposes `tree` as the newest head; `None` without a quorum (not recorded yet: the next
    /// verification proves against the stored head again).
    async fn record_head(&self, c: &Checked, tree: Tree, signed: &[u8]) -> Option<MetaResp> {
        let head = TreeHeadRecord {
            note: signed.to_vec(),
            size: u64::try_from(tree.n).unwrap_or(0),
            hash: tlog::format_hash(&tree.hash),
            forked: None,
            recorded_at_ms: crate::store::now_ms(),
        };
        let cmd = MetaCmd::PutTreeHead {
            db: c.db.name.clone(),
            head,
        };
        match self.consensus.propose(cmd).await {
            Ok(resp) => {
                if resp == MetaResp::Applied {
                    ::metrics::counter!(metrics::TREE_HEADS_TOTAL, "db" => c.db.name.clone())
                        .increment(1);
                }
                Some(resp)
            }
            Err(e) => {
                tracing::warn!(db = %c.db.name, error = %e, "could not record the newer tree head");
                None
            }
        }
    }

    async fn fork(&self, c: &Checked, old: Tree, new: Tree) -> VerifyError {
        let evidence = format!(
            "stored tree size {} hash {} vs signed tree size {} hash {}",
            old.n,
            tlog::format_hash(&old.hash),
            new.n,
            tlog::format_hash(&new.hash)
        );
        tracing::error!(db = %c.db.name, evidence = %evidence, "checksum database FORKED: two signed tree heads cannot both be true; refusing all verification against it");
        ::metrics::gauge!(metrics::FORKED, "db" => c.db.name.clone()).set(1.0);
        let cmd = MetaCmd::MarkForked {
            db: c.db.name.clone(),
            evidence: evidence.clone(),
        };
        if let Err(e) = self.consensus.propose(cmd).await {
            tracing::error!(db = %c.db.name, error = %e, "could not record the fork in the cluster state");
        }
        VerifyError::Forked {
            db: c.db.name.clone(),
            evidence,
        }
    }

    /// Runs `prove` with hashes read from tiles of `tree`, fetching the tiles it asks for until
    /// it has them all; tiles the reader authenticated are cached for clients.
    async fn with_tiles<F>(
        &self,
        c: &Checked,
        tree: Tree,
        pending: &Pending,
        prove: F,
    ) -> Result<(), TlogError>
    where
        F: Fn(&TileHashReader<'_, TileSet>) -> Result<(), TlogError>,
    {
        let set = TileSet::default();
        for _ in 0..MAX_TILE_ROUNDS {
            let result = prove(&tlog::tile_hash_reader(tree, &set));
            let missing = set.take_missing();
            match result {
                Err(TlogError::Read(_)) if !missing.is_empty() => {
                    self.fetch_tiles(c, &set, &missing).await?;
                }
                other => {
                    Self::collect_tiles(&set, pending);
                    return other;
                }
            }
        }
        Err(TlogError::Read("too many rounds of tile fetches".into()))
    }

    async fn fetch_tiles(
        &self,
        c: &Checked,
        set: &TileSet,
        tiles: &[tlog::Tile],
    ) -> Result<(), TlogError> {
        // Concurrently: a cold proof needs a tile per level, each a round trip to the database.
        let fetched = futures_util::future::join_all(tiles.iter().map(|tile| async move {
            match self.proxy.cached(&c.db, &tile.path()).await {
                Some(d) => Ok((*tile, d, false)),
                None => self.fetch_tile(c, tile).await.map(|d| (*tile, d, true)),
            }
        }))
        .await;
        for result in fetched {
            let (tile, data, from_network) = result.map_err(|e| TlogError::Read(Box::new(e)))?;
            set.insert(tile, data.to_vec(), from_network);
        }
        Ok(())
    }

    /// Fetches `tile` from the database. A partial tile the database no longer serves (it may
    /// withdraw them once the tile is full, PROTOCOL.md §5.5) is cut from the full tile, as the
    /// go command does.
    async fn fetch_tile(&self, c: &Checked, tile: &tlog::Tile) -> Result<Bytes, SumdbError> {
        let full_width = 1i32 << tile.h.clamp(1, 30);
        match self.proxy.fetch(&c.db, &tile.path()).await {
            Err(SumdbError::NotFound(_)) if tile.w < full_width && tile.l >= 0 => {
                let full = tlog::Tile {
                    w: full_width,
                    ..*tile
                };
                let data = self.proxy.fetch(&c.db, &full.path()).await?;
                let len = usize::try_from(tile.w).unwrap_or(0) * tlog::HASH_SIZE;
                Ok(data.slice(..len.min(data.len())))
            }
            other => other,
        }
    }

    /// Adds the authenticated tiles that came from the network (not stored yet) to `pending`.
    fn collect_tiles(set: &TileSet, pending: &Pending) {
        let fresh = set.take_saved_from_network();
        pending.push(fresh.iter().map(|(tile, data)| item(&tile.path(), data)));
    }
}

fn invalid(c: &Checked, reason: String) -> VerifyError {
    VerifyError::Invalid {
        db: c.db.name.clone(),
        reason,
    }
}

fn error_label(e: &VerifyError) -> &'static str {
    match e {
        VerifyError::Unreachable { .. } => "unreachable",
        VerifyError::NotLogged { .. } => "not_logged",
        VerifyError::Invalid { .. } => "invalid",
        VerifyError::Forked { .. } => "forked",
    }
}

/// Opens a signed tree note with the database's key and parses the tree.
fn open_tree(c: &Checked, signed: &[u8]) -> Result<Tree, VerifyError> {
    let note = note::open(signed, &c.verifier)
        .map_err(|e| invalid(c, format!("signed tree head: {e}")))?;
    tlog::parse_tree(note.text.as_bytes()).map_err(|e| invalid(c, format!("signed tree head: {e}")))
}

/// `lookup/<escaped path>@<escaped version>`.
fn lookup_path(module: &str, version: &str) -> Result<String, String> {
    let path = crate::module::escape_path(module).map_err(|e| e.to_string())?;
    let version = crate::module::escape_version(version).map_err(|e| e.to_string())?;
    Ok(format!("lookup/{path}@{version}"))
}

/// The zip and go.mod `h1:` of `module@version` from a record's go.sum lines.
fn record_hashes(text: &str, module: &str, version: &str) -> Result<(String, String), String> {
    let mut zip = None;
    let mut gomod = None;
    for line in text.lines() {
        let mut f = line.split(' ');
        match (f.next(), f.next(), f.next(), f.next()) {
            (Some(m), Some(v), Some(h), None) if m == module => {
                if v == version {
                    zip = Some(h.to_owned());
                } else if v.strip_suffix("/go.mod") == Some(version) {
                    gomod = Some(h.to_owned());
                }
            }
            _ => {
                return Err(format!(
                    "record for {module}@{version} has an unexpected line {line:?}"
                ))
            }
        }
    }
    match (zip, gomod) {
        (Some(z), Some(m)) => Ok((z, m)),
        _ => Err(format!(
            "record does not hold both hashes of {module}@{version}"
        )),
    }
}

/// The tiles a proof asked for: those fetched so far, those still missing, and those the
/// reader authenticated (to cache).
#[derive(Default)]
pub(super) struct TileSet {
    /// A std mutex: held only for map operations, never across an await.
    inner: Mutex<TileSetInner>,
}

#[derive(Default)]
struct TileSetInner {
    have: HashMap<tlog::Tile, Vec<u8>>,
    /// Tiles fetched from the database (the others came from the store).
    from_network: std::collections::HashSet<tlog::Tile>,
    missing: Vec<tlog::Tile>,
    saved: Vec<(tlog::Tile, Vec<u8>)>,
}

impl TileSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, TileSetInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn insert(&self, tile: tlog::Tile, data: Vec<u8>, from_network: bool) {
        let mut inner = self.lock();
        inner.have.insert(tile, data);
        if from_network {
            inner.from_network.insert(tile);
        }
    }

    fn take_missing(&self) -> Vec<tlog::Tile> {
        std::mem::take(&mut self.lock().missing)
    }

    /// The authenticated tiles that were fetched from the database.
    fn take_saved_from_network(&self) -> Vec<(tlog::Tile, Vec<u8>)> {
        let mut inner = self.lock();
        let saved = std::mem::take(&mut inner.saved);
        saved
            .into_iter()
            .filter(|(t, _)| inner.from_network.contains(t))
            .collect()
    }
}

impl TileReader for TileSet {
    fn height(&self) -> i32 {
        TILE_HEIGHT
    }

    fn read_tiles(&self, tiles: &[tlog::Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        let mut inner = self.lock();
        let missing: Vec<tlog::Tile> = tiles
            .iter()
            .filter(|t| !inner.have.contains_key(t))
            .copied()
            .collect();
        if !missing.is_empty() {
            inner.missing = missing;
            return Err(TlogError::Read("tiles not fetched yet".into()));
        }
        Ok(tiles
            .iter()
            .map(|t| inner.have.get(t).cloned().unwrap_or_default())
            .collect())
    }

    fn save_tiles(&self, tiles: &[tlog::Tile], data: &[Vec<u8>]) {
        let mut inner = self.lock();
        inner
            .saved
            .extend(tiles.iter().copied().zip(data.iter().cloned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_hashes_need_both_lines_of_exactly_this_version() {
        let text = "golang.org/x/text v0.3.0 h1:zip=\ngolang.org/x/text v0.3.0/go.mod h1:mod=\n";
        assert_eq!(
            record_hashes(text, "golang.org/x/text", "v0.3.0").unwrap(),
            ("h1:zip=".to_owned(), "h1:mod=".to_owned())
        );
        assert!(record_hashes(text, "golang.org/x/text", "v0.3.1").is_err());
        assert!(record_hashes(text, "golang.org/x/tex", "v0.3.0").is_err());
        assert!(record_hashes(
            "golang.org/x/text v0.3.0 h1:zip=\n",
            "golang.org/x/text",
            "v0.3.0"
        )
        .is_err());
        assert!(record_hashes("a b c d\n", "a", "b").is_err());
    }

    #[test]
    fn lookup_paths_are_escaped() {
        assert_eq!(
            lookup_path("github.com/Azure/x", "v1.0.0-RC1").unwrap(),
            "lookup/github.com/!azure/x@v1.0.0-!r!c1"
        );
    }
}
