//! A fake checksum database (a Go "sumdb") for the end-to-end tests: an HTTP/1.1 server on
//! `127.0.0.1:0` that signs its tree heads with a fixed Ed25519 key.
//!
//! It serves, relative to its URL (PROTOCOL.md §5.1):
//! - `/latest`: the signed tree note of the current log;
//! - `/lookup/<escaped path>@<escaped version>`: `<id>\n<record text>\n` + the signed tree note,
//!   404 for a version it has not logged;
//! - `/tile/8/<L>/<N>[.p/<W>]`: hash tiles (level 0 = record hashes, level 1 = hashes of complete
//!   256-record subtrees, …);
//! - `/tile/8/data/<N>[.p/<W>]`: record texts, each followed by a blank line.
//!
//! A record is a module version's two go.sum lines ([`Record`]); [`corpus_records`] builds them from
//! the hashes the corpus generator predicted, [`filler_records`] pads the log so that trees have
//! complete tiles and level-1 tiles. The log is append-only ([`FakeSumdb::publish`] grows it).
//!
//! Switches: a request log ([`FakeSumdb::requests`], [`FakeSumdb::count`]), [`FakeSumdb::kill`]
//! (connections refused) and two kinds of lies: a record logged with a wrong hash
//! ([`Record::with_wrong_zip_hash`], [`Record::with_wrong_mod_hash`]: the log is consistent, the
//! client must notice the h1 mismatch) and [`FakeSumdb::set_lookup_lie`] (a lookup answers a text
//! that is not in the log: the client's inclusion check must fail).
//!
//! The key is [`FakeSumdb::verifier_key`] (`<name>+<hash>+<base64(0x01‖pubkey)>`, for `GOSUMDB`).
//! Hashing is RFC 6962 (§5.4) with a reference implementation ([`rfc6962_root`]) the tile-based
//! answers are checked against in the unit tests.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use base64::Engine;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use ring::signature::{Ed25519KeyPair, KeyPair};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::corpus::Corpus;
use crate::fixture::percent_decode;
use crate::h1;
use crate::serve::{accept_http1, Conns, Serving};

/// The database name the tests configure (clients would reach it at `https://sum.cairn.test`).
pub const DB_NAME: &str = "sum.cairn.test";

/// The fixed Ed25519 seed of the database's signing key (32 bytes).
pub const KEY_SEED: [u8; 32] = *b"cairn-tests fake sumdb key seed!";

/// Tile height used by the go command and sum.golang.org.
pub const TILE_HEIGHT: u32 = 8;

/// Entries in a full tile.
const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Base64 (standard, padded).
fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// === records ===

/// One logged module version: its two go.sum lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Module path (unescaped).
    pub module: String,
    /// Version (unescaped).
    pub version: String,
    /// Record text: `<m> <v> <zip h1>\n<m> <v>/go.mod <mod h1>\n`.
    pub text: String,
}

impl Record {
    /// The record of `module@version` with these hashes.
    pub fn new(module: &str, version: &str, zip_h1: &str, mod_h1: &str) -> Record {
        Record {
            module: module.to_string(),
            version: version.to_string(),
            text: format!("{module} {version} {zip_h1}\n{module} {version}/go.mod {mod_h1}\n"),
        }
    }

    /// The zip hash this record claims.
    pub fn zip_h1(&self) -> &str {
        self.field(0)
    }

    /// The go.mod hash this record claims.
    pub fn mod_h1(&self) -> &str {
        self.field(1)
    }

    fn field(&self, line: usize) -> &str {
        self.text
            .lines()
            .nth(line)
            .and_then(|l| l.split(' ').nth(2))
            .unwrap_or("")
    }

    /// The same record with a wrong (but well-formed) zip hash.
    pub fn with_wrong_zip_hash(&self) -> Record {
        Record::new(
            &self.module,
            &self.version,
            &wrong_h1(self.zip_h1()),
            self.mod_h1(),
        )
    }

    /// The same record with a wrong (but well-formed) go.mod hash.
    pub fn with_wrong_mod_hash(&self) -> Record {
        Record::new(
            &self.module,
            &self.version,
            self.zip_h1(),
            &wrong_h1(self.mod_h1()),
        )
    }

    /// `<escaped path>@<escaped version>`, as in lookup URLs.
    pub fn lookup_key(&self) -> String {
        format!("{}@{}", h1::escape(&self.module), h1::escape(&self.version))
    }
}

/// A well-formed `h1:` hash that differs from `h1`.
pub fn wrong_h1(h1_hash: &str) -> String {
    h1::hash1([("tampered", h1_hash.as_bytes())])
}

/// One record per corpus entry, with the hashes the corpus predicted (PROTOCOL §4).
pub fn corpus_records(c: &Corpus) -> Vec<Record> {
    c.entries
        .iter()
        .map(|e| Record::new(&e.module, &e.version, &e.zip_h1, &e.mod_h1))
        .collect()
}

/// `n` records of made-up modules `example.com/filler/nNNNN v1.0.0` (padding for the log).
pub fn filler_records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let module = format!("example.com/filler/n{i:04}");
            let go_mod = format!("module {module}\n");
            let zip = h1::hash1([(
                format!("{module}@v1.0.0/go.mod").as_str(),
                go_mod.as_bytes(),
            )]);
            Record::new(&module, "v1.0.0", &zip, &h1::mod_h1(go_mod.as_bytes()))
        })
        .collect()
}

// === RFC 6962 hashing ===

/// Leaf hash: `SHA-256(0x00 ‖ record text)`.
pub fn leaf_hash(text: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(text);
    h.finalize().into()
}

/// Interior node hash: `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The RFC 6962 Merkle tree hash of `leaves`, by the recursive definition (reference version).
pub fn rfc6962_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => leaves[0],
        n => {
            let k = if n.is_power_of_two() {
                n / 2
            } else {
                1 << (usize::BITS - 1 - n.leading_zeros())
            };
            node_hash(&rfc6962_root(&leaves[..k]), &rfc6962_root(&leaves[k..]))
        }
    }
}

/// Balanced reduction of `2^k` hashes (the hash of the subtree they are the bottom of).
pub fn reduce(hashes: &[Hash]) -> Hash {
    if hashes.len() == 1 {
        return hashes[0];
    }
    let mid = hashes.len() / 2;
    node_hash(&reduce(&hashes[..mid]), &reduce(&hashes[mid..]))
}

/// The maximal complete subtrees of `[0, n)`, left to right, as `(height, index)`: the subtree
/// covers leaves `index·2^height … (index+1)·2^height − 1`.
pub fn complete_subtrees(n: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut start = 0u64;
    for height in (0..64).rev() {
        if n & (1 << height) != 0 {
            out.push((height, start >> height));
            start += 1 << height;
        }
    }
    out
}

/// The append-only log: records and every complete-subtree hash, by height.
#[derive(Default)]
struct Log {
    records: Vec<Record>,
    /// `levels[h][i]` = hash of the complete subtree of height `h` and index `i`.
    levels: Vec<Vec<Hash>>,
    /// Record id by (module, version), so lookups cost what a real database's do.
    index: HashMap<(String, String), u64>,
}

impl Log {
    fn push(&mut self, r: Record) {
        let mut h = leaf_hash(r.text.as_bytes());
        let key = (r.module.clone(), r.version.clone());
        self.index.insert(key, self.records.len() as u64);
        self.records.push(r);
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(h);
            let len = self.levels[level].len();
            if len % 2 == 1 {
                break;
            }
            h = node_hash(&self.levels[level][len - 2], &self.levels[level][len - 1]);
            level += 1;
        }
    }

    fn size(&self) -> u64 {
        self.records.len() as u64
    }

    /// Tree hash of the first `n` records, folded from the stored complete subtrees.
    fn root(&self, n: u64) -> Hash {
        let subs = complete_subtrees(n);
        let mut it = subs
            .iter()
            .rev()
            .map(|&(h, i)| self.levels[h as usize][i as usize]);
        let Some(mut acc) = it.next() else {
            return Sha256::digest(b"").into();
        };
        for left in it {
            acc = node_hash(&left, &acc);
        }
        acc
    }

    fn find(&self, module: &str, version: &str) -> Option<(u64, &Record)> {
        let id = *self.index.get(&(module.to_owned(), version.to_owned()))?;
        self.records.get(id as usize).map(|r| (id, r))
    }

    /// Tile entries `n·256 … n·256+w−1` at height `8·level` (or the records, for `None`), if the
    /// current tree has all of them.
    fn tile(&self, level: Option<u32>, n: u64, w: u64) -> Option<Vec<u8>> {
        let start = n.checked_mul(TILE_WIDTH)?;
        let end = start.checked_add(w)?;
        match level {
            None => {
                let recs = self.records.get(start as usize..end as usize)?;
                Some(
                    recs.iter()
                        .flat_map(|r| [r.text.as_bytes(), b"\n"].concat())
                        .collect(),
                )
            }
            Some(l) => {
                let hashes = self
                    .levels
                    .get((l * TILE_HEIGHT) as usize)?
                    .get(start as usize..end as usize)?;
                Some(hashes.concat())
            }
        }
    }
}

// === signed notes ===

/// An Ed25519 signer for notes (PROTOCOL §5.2).
pub struct NoteKey {
    name: String,
    pair: Ed25519KeyPair,
}

impl NoteKey {
    /// The key named `name` derived from a 32-byte seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> NoteKey {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).expect("any 32-byte seed is a key");
        NoteKey {
            name: name.to_string(),
            pair,
        }
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// `SHA-256(name ‖ "\n" ‖ 0x01 ‖ pubkey)[..4]`, big-endian.
    pub fn key_hash(&self) -> u32 {
        key_hash(&self.name, self.public_key())
    }

    /// `<name>+<8 hex keyhash>+<base64(0x01 ‖ pubkey)>`, the `GOSUMDB` value.
    pub fn verifier_key(&self) -> String {
        let mut k = vec![1u8];
        k.extend_from_slice(self.public_key());
        format!("{}+{:08x}+{}", self.name, self.key_hash(), b64(&k))
    }

    /// `text` + blank line + `— <name> <base64(keyhash ‖ signature)>\n`.
    pub fn sign_note(&self, text: &str) -> String {
        assert!(text.ends_with('\n'), "note text must end in a newline");
        let mut sig = self.key_hash().to_be_bytes().to_vec();
        sig.extend_from_slice(self.pair.sign(text.as_bytes()).as_ref());
        format!("{text}\n\u{2014} {} {}\n", self.name, b64(&sig))
    }
}

/// The note key hash of `name` and an Ed25519 public key.
pub fn key_hash(name: &str, public_key: &[u8]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n\x01");
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// Verifies `note` with a verifier key string; returns the signed text. An independent check of
/// what this module signs (only Ed25519, only the signature of the key's own name is checked).
pub fn verify_note(verifier: &str, note: &str) -> anyhow::Result<String> {
    let mut parts = verifier.splitn(3, '+');
    let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!("malformed verifier key {verifier:?}");
    };
    let key = base64::engine::general_purpose::STANDARD.decode(key)?;
    anyhow::ensure!(
        key.len() == 33 && key[0] == 1,
        "not an Ed25519 verifier key"
    );
    let hash = u32::from_str_radix(hash, 16)?;
    anyhow::ensure!(
        key_hash(name, &key[1..]) == hash,
        "verifier key hash mismatch"
    );
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| anyhow::anyhow!("no signature block"))?;
    let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
    let prefix = format!("\u{2014} {name} ");
    for line in sigs.lines() {
        let Some(sig) = line.strip_prefix(&prefix) else {
            continue;
        };
        let sig = base64::engine::general_purpose::STANDARD.decode(sig)?;
        if sig.len() != 68 || sig[..4] != hash.to_be_bytes() {
            continue;
        }
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &key[1..])
            .verify(text.as_bytes(), &sig[4..])
            .map_err(|_| anyhow::anyhow!("bad signature by {name}"))?;
        return Ok(text.to_string());
    }
    anyhow::bail!("no signature by {name}+{hash:08x}")
}

/// The tree note text: `go.sum database tree\n<N>\n<base64 root>\n`.
pub fn tree_text(n: u64, root: &Hash) -> String {
    format!("go.sum database tree\n{n}\n{}\n", b64(root))
}

// === tile paths ===

/// A tile coordinate at height [`TILE_HEIGHT`]. `level` `None` is the data tile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// Tile level (`None` = `data`).
    pub level: Option<u32>,
    /// Tile index.
    pub n: u64,
    /// Width (1…256; 256 = full).
    pub w: u64,
}

impl Tile {
    /// `tile/8/<L|data>/<N in x-grouped base 1000>[.p/<W>]` (no leading slash).
    pub fn path(&self) -> String {
        let level = self.level.map_or("data".to_string(), |l| l.to_string());
        let mut groups = vec![format!("{:03}", self.n % 1000)];
        let mut rest = self.n / 1000;
        while rest > 0 {
            groups.push(format!("x{:03}", rest % 1000));
            rest /= 1000;
        }
        groups.reverse();
        let mut p = format!("tile/{TILE_HEIGHT}/{level}/{}", groups.join("/"));
        if self.w < TILE_WIDTH {
            p.push_str(&format!(".p/{}", self.w));
        }
        p
    }

    /// Parses a tile path (with or without the leading `tile/`); `None` unless it is canonical
    /// (re-encoding gives the same text) with height 8.
    pub fn parse(path: &str) -> Option<Tile> {
        let p = path.strip_prefix("tile/").unwrap_or(path);
        let mut parts = p.split('/');
        if parts.next()? != TILE_HEIGHT.to_string() {
            return None;
        }
        let level = match parts.next()? {
            "data" => None,
            l => Some(l.parse::<u32>().ok().filter(|&l| l < 8)?),
        };
        let rest: Vec<&str> = parts.collect();
        let (index, w) = match rest.as_slice() {
            [idx @ .., last_group, w]
                if last_group.ends_with(".p") && !idx.iter().any(|g| g.ends_with(".p")) =>
            {
                let mut groups: Vec<&str> = idx.to_vec();
                groups.push(last_group.trim_end_matches(".p"));
                (groups, w.parse::<u64>().ok()?)
            }
            groups => (groups.to_vec(), TILE_WIDTH),
        };
        let mut n = 0u64;
        for g in &index {
            let digits = g.strip_prefix('x').unwrap_or(g);
            n = n
                .checked_mul(1000)?
                .checked_add(digits.parse::<u64>().ok()?)?;
        }
        let t = Tile { level, n, w };
        (!index.is_empty() && (1..=TILE_WIDTH).contains(&w) && t.path() == format!("tile/{p}"))
            .then_some(t)
    }
}

// === the server ===

/// One request the database saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SumdbRequest {
    /// Percent-decoded path, e.g. `/lookup/example.com/!upper/!case@v1.0.0-!r!c1`.
    pub path: String,
    /// The status it was answered with.
    pub status: u16,
}

struct State {
    /// Added before every answer (a stand-in for a remote database's round trip).
    delay: Mutex<std::time::Duration>,
    key: NoteKey,
    log: Mutex<Log>,
    lies: Mutex<HashMap<String, String>>,
    requests: Mutex<Vec<SumdbRequest>>,
    conns: Conns,
}

/// A running fake checksum database. Dropping it stops it.
pub struct FakeSumdb {
    addr: SocketAddr,
    state: Arc<State>,
    serving: Serving,
}

impl FakeSumdb {
    /// Starts database [`DB_NAME`] with key [`KEY_SEED`], logging `records` in order.
    pub async fn start(records: Vec<Record>) -> anyhow::Result<FakeSumdb> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            delay: Mutex::new(std::time::Duration::ZERO),
            key: NoteKey::from_seed(DB_NAME, &KEY_SEED),
            log: Mutex::new(Log::default()),
            lies: Mutex::new(HashMap::new()),
            requests: Mutex::new(Vec::new()),
            conns: Conns::default(),
        });
        let db = FakeSumdb {
            addr,
            serving: Serving::new(
                tokio::spawn(accept_loop(listener, state.clone())),
                state.conns.clone(),
            ),
            state,
        };
        db.publish(records);
        Ok(db)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The database name.
    pub fn name(&self) -> &str {
        DB_NAME
    }

    /// The verifier key for `GOSUMDB`.
    pub fn verifier_key(&self) -> String {
        self.state.key.verifier_key()
    }

    /// Appends records to the log (the tree grows; earlier answers stay valid).
    pub fn publish(&self, records: impl IntoIterator<Item = Record>) {
        let mut log = self.state.log.lock().unwrap();
        for r in records {
            assert!(
                log.find(&r.module, &r.version).is_none(),
                "{}@{} is already logged",
                r.module,
                r.version
            );
            log.push(r);
        }
    }

    /// Records in the log.
    pub fn size(&self) -> u64 {
        self.state.log.lock().unwrap().size()
    }

    /// The record id of `module@version`, if logged.
    pub fn id_of(&self, module: &str, version: &str) -> Option<u64> {
        self.state
            .log
            .lock()
            .unwrap()
            .find(module, version)
            .map(|(i, _)| i)
    }

    /// The signed tree note of the current log (what `/latest` answers).
    pub fn signed_tree(&self) -> String {
        let log = self.state.log.lock().unwrap();
        self.state
            .key
            .sign_note(&tree_text(log.size(), &log.root(log.size())))
    }

    /// From now on, `/lookup/<key>` (see [`Record::lookup_key`]) answers `text` under the real id
    /// and tree note, although the log holds a different record.
    pub fn set_lookup_lie(&self, lookup_key: &str, text: &str) {
        self.state
            .lies
            .lock()
            .unwrap()
            .insert(lookup_key.to_string(), text.to_string());
    }

    /// The answer (status, body) the database gives now for `path` (decoded, relative to its
    /// URL, e.g. `/lookup/…` or `tile/8/0/000.p/5`).
    pub fn answer(&self, path: &str) -> (u16, Bytes) {
        answer(&self.state, path)
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<SumdbRequest> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many requests named exactly `path` (decoded, with leading `/`).
    pub fn count(&self, path: &str) -> usize {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// How many requests arrived in total.
    pub fn total(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// The request log, one per line (for failure messages).
    pub fn describe_requests(&self) -> String {
        self.requests()
            .iter()
            .map(|r| format!("  {} {}\n", r.status, r.path))
            .collect()
    }

    /// Stops accepting and drops open connections: from now on connections are refused.
    pub async fn kill(&self) {
        self.serving.kill().await;
    }

    /// Delays every answer by `d` (zero = none).
    pub fn set_delay(&self, d: std::time::Duration) {
        *self.state.delay.lock().unwrap() = d;
    }

    /// Listens again on the same port after [`FakeSumdb::kill`], with the same log.
    pub async fn revive(&self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.addr).await?;
        self.serving
            .start(tokio::spawn(accept_loop(listener, self.state.clone())));
        Ok(())
    }
}

impl Drop for FakeSumdb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- fake sumdb {} (size {}) saw {} requests:\n{}-----",
                self.addr,
                self.size(),
                self.total(),
                self.describe_requests()
            );
        }
        self.serving.stop();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let conns = state.conns.clone();
    accept_http1(listener, conns, move |req| handle(state.clone(), req)).await;
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let raw = req.uri().path().to_string();
    let path = percent_decode(&raw).unwrap_or_else(|| raw.clone());
    let delay = *state.delay.lock().unwrap();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let (status, body) = if req.method() == http::Method::GET {
        answer(&state, &path)
    } else {
        (405, Bytes::from_static(b"method not allowed\n"))
    };
    state.requests.lock().unwrap().push(SumdbRequest {
        path: path.clone(),
        status,
    });
    let ctype = if path.starts_with("/tile/") && !path.contains("/data/") && status == 200 {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    Ok(r)
}

/// Undoes `!x` → `X` case-escaping; `None` for an invalid escape or an upper-case letter.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '!' => match chars.next() {
                Some(l) if l.is_ascii_lowercase() => out.push(l.to_ascii_uppercase()),
                _ => return None,
            },
            c if c.is_ascii_uppercase() => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

fn answer(state: &State, path: &str) -> (u16, Bytes) {
    let text = |status: u16, msg: String| (status, Bytes::from(msg));
    let p = path.trim_start_matches('/');
    let log = state.log.lock().unwrap();
    let n = log.size();
    let note = || state.key.sign_note(&tree_text(n, &log.root(n)));
    if p == "latest" {
        return (200, Bytes::from(note()));
    }
    if let Some(key) = p.strip_prefix("lookup/") {
        let Some((m, v)) = key
            .rsplit_once('@')
            .and_then(|(m, v)| Some((unescape(m)?, unescape(v)?)))
        else {
            return text(400, format!("malformed lookup {key:?}\n"));
        };
        let Some((id, rec)) = log.find(&m, &v) else {
            return text(404, format!("not found: {m}@{v}\n"));
        };
        let lie = state.lies.lock().unwrap().get(key).cloned();
        let record = lie.unwrap_or_else(|| rec.text.clone());
        return (200, Bytes::from(format!("{id}\n{record}\n{}", note())));
    }
    if p.starts_with("tile/") {
        let Some(t) = Tile::parse(p) else {
            return text(400, format!("malformed tile path {p:?}\n"));
        };
        return match log.tile(t.level, t.n, t.w) {
            Some(b) => (200, Bytes::from(b)),
            None => text(404, format!("tile {p} is not in the tree of size {n}\n")),
        };
    }
    text(404, format!("no such endpoint {p:?}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `sumdb/note` documentation vector (PROTOCOL §5.2): key hash and signature format.
    #[test]
    fn note_vector_verifies() {
        let vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
        let text = "If you think cryptography is the answer to your problem,\n\
                    then you don't know what your problem is.\n";
        let note = format!(
            "{text}\n\u{2014} PeterNeumann \
             x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
        );
        assert_eq!(verify_note(vkey, &note).unwrap(), text);
        let forged = note.replace("cryptography", "Cryptography");
        assert!(verify_note(vkey, &forged).is_err());
    }

    #[test]
    fn our_notes_verify_with_our_verifier_key() {
        let key = NoteKey::from_seed(DB_NAME, &KEY_SEED);
        let vkey = key.verifier_key();
        assert!(vkey.starts_with("sum.cairn.test+"), "{vkey}");
        let text = tree_text(3, &[7u8; 32]);
        let note = key.sign_note(&text);
        assert_eq!(verify_note(&vkey, &note).unwrap(), text);
        let other = NoteKey::from_seed(DB_NAME, &[9u8; 32]).verifier_key();
        assert!(verify_note(&other, &note).is_err());
    }

    #[test]
    fn stored_subtrees_give_the_rfc6962_root() {
        let mut log = Log::default();
        let mut leaves = Vec::new();
        assert_eq!(log.root(0), rfc6962_root(&[]));
        for r in filler_records(600) {
            leaves.push(leaf_hash(r.text.as_bytes()));
            log.push(r);
            for n in [log.size(), log.size() / 2, log.size() / 3] {
                assert_eq!(log.root(n), rfc6962_root(&leaves[..n as usize]), "n = {n}");
            }
        }
    }

    /// Authenticates tree heads the way a client does: from the tiles alone.
    #[test]
    fn tiles_reproduce_the_root() {
        let mut log = Log::default();
        let mut filler = filler_records(600).into_iter();
        for n in [1u64, 5, 255, 256, 257, 326, 511, 512, 600] {
            while log.size() < n {
                log.push(filler.next().unwrap());
            }
            let mut acc: Option<Hash> = None;
            for (height, index) in complete_subtrees(n).into_iter().rev() {
                let (level, k) = (height / TILE_HEIGHT, height % TILE_HEIGHT);
                let first = index << k; // first entry at tree height 8·level
                let avail = n >> (level * TILE_HEIGHT);
                let tn = first / TILE_WIDTH;
                let t = Tile {
                    level: Some(level),
                    n: tn,
                    w: (avail - tn * TILE_WIDTH).min(TILE_WIDTH),
                };
                let parsed = Tile::parse(&t.path()).unwrap();
                assert_eq!(parsed, t);
                let bytes = log.tile(t.level, t.n, t.w).unwrap();
                let entries: Vec<Hash> = bytes.chunks(32).map(|c| c.try_into().unwrap()).collect();
                let off = (first - tn * TILE_WIDTH) as usize;
                let h = reduce(&entries[off..off + (1 << k)]);
                acc = Some(acc.map_or(h, |right| node_hash(&h, &right)));
            }
            assert_eq!(acc.unwrap(), log.root(n), "n = {n}");
        }
    }

    #[test]
    fn tile_paths() {
        let t = |level, n, w| Tile { level, n, w };
        for (tile, path) in [
            (t(Some(0), 0, 256), "tile/8/0/000"),
            (t(Some(0), 113_281, 187), "tile/8/0/x113/281.p/187"),
            (t(None, 113_281, 187), "tile/8/data/x113/281.p/187"),
            (t(Some(1), 442, 129), "tile/8/1/442.p/129"),
            (t(Some(3), 0, 1), "tile/8/3/000.p/1"),
            (t(Some(2), 1_234_067, 256), "tile/8/2/x001/x234/067"),
        ] {
            assert_eq!(tile.path(), path);
            assert_eq!(Tile::parse(path), Some(tile), "{path}");
        }
        for bad in [
            "tile/8/0",
            "tile/8/0/1",
            "tile/8/0/0000",
            "tile/8/0/x000/001",
            "tile/8/0/000.p/256",
            "tile/8/0/000.p/0",
            "tile/8/0/000.p/01",
            "tile/8/x/000",
            "tile/4/0/000",
            "tile/8/0/x1/000",
            "tile/8/0/000.p/",
            "tile/8/0/001/002",
        ] {
            assert_eq!(Tile::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn records_and_lookups() {
        let r = Record::new("example.com/Upper", "v1.0.0-RC1", "h1:zip=", "h1:mod=");
        assert_eq!(r.zip_h1(), "h1:zip=");
        assert_eq!(r.mod_h1(), "h1:mod=");
        assert_eq!(r.lookup_key(), "example.com/!upper@v1.0.0-!r!c1");
        assert_ne!(r.with_wrong_zip_hash().zip_h1(), "h1:zip=");
        assert_eq!(r.with_wrong_mod_hash().zip_h1(), "h1:zip=");
        assert_eq!(
            unescape("example.com/!upper@v1.0.0-!r!c1").unwrap(),
            "example.com/Upper@v1.0.0-RC1"
        );
        assert_eq!(unescape("example.com/Upper"), None);
        assert_eq!(unescape("a!"), None);
    }
}
