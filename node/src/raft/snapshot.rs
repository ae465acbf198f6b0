//! The snapshot format: every state-machine record in one JSON document, written and read as a
//! stream.
//!
//! The document is
//! `{"format":1,"versions":[…],"lists":[[module,record],…],"latest":[[module,record],…],
//! "sumdb_heads":[[db,head],…],"sumdb_items":[[db,item],…],"quarantine":[…],"pins":[…],
//! "policy":{"deny":[…],"tombstones":[…],"index":[[seq,entry],…],"index_of":[[version,seq],…]}}`.
//!
//! - Building copies the JSON values sled already stores into the writer as they are (no decode
//!   and re-encode), in one pass over the trees, so memory stays flat and the state machine's
//!   read lock (applies wait for it) is held only for that pass.
//! - Reading is a streaming parse that hands each record to a sink as soon as it is decoded:
//!   checking a body, listing its versions and installing it never hold the document in memory.
//! - Installing is not one sled transaction (a million records do not fit in one): the caller
//!   marks the install as in progress first (`state_machine.rs`), then the trees are cleared,
//!   the records written in batches, and `last_applied`, the membership and the counters last.
//!   A crash in between leaves the mark, and recovery installs the same snapshot again.

use std::fmt;
use std::io::{Read, Write};
use std::marker::PhantomData;

use openraft::{LogId, StoredMembership};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserializer, Serialize};

use super::db::{read_json, sm_key, version_key, JsonReadError, SmTrees};
use super::policy::{self, PolicyInstall, PolicyRecord};
use super::{NodeAddr, NodeId};
use crate::store::meta::{
    LatestRecord, ListRecord, PinRecord, QuarantineRecord, SumdbItem, TreeHeadRecord, VersionRecord,
};

/// Version of the document; a receiver refuses formats it does not know.
const FORMAT: u32 = 1;

/// Records written per sled batch while installing.
const INSTALL_BATCH: usize = 4096;

/// Building, reading or installing a snapshot failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SnapshotError {
    /// sled failed.
    #[error("metadata store error: {0}")]
    Sled(#[from] sled::Error),
    /// A record or the document could not be (de)serialized.
    #[error("cannot encode or decode snapshot data: {0}")]
    Json(#[from] serde_json::Error),
    /// Reading or writing a snapshot file failed.
    #[error("snapshot file I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The snapshot was written in an unknown format.
    #[error("unsupported snapshot format {0}")]
    Format(u32),
    /// The document is not a cairn snapshot.
    #[error("malformed snapshot: {0}")]
    Malformed(&'static str),
}

impl From<JsonReadError> for SnapshotError {
    fn from(e: JsonReadError) -> Self {
        match e {
            JsonReadError::Sled(e) => SnapshotError::Sled(e),
            JsonReadError::Json(e) => SnapshotError::Json(e),
        }
    }
}

// === writing ===

/// Writes the document field by field; elements are either JSON that sled already holds or
/// values encoded on the spot.
pub(crate) struct BodyWriter<W: Write> {
    w: W,
    /// Whether the next field or element is the first of its object or array (no comma).
    first: bool,
}

impl<W: Write> BodyWriter<W> {
    fn start(mut w: W) -> Result<BodyWriter<W>, SnapshotError> {
        write!(w, "{{\"format\":{FORMAT}")?;
        Ok(BodyWriter { w, first: false })
    }

    fn finish(mut self) -> Result<W, SnapshotError> {
        self.w.write_all(b"}")?;
        Ok(self.w)
    }

    fn field(&mut self, name: &str, open: &[u8]) -> Result<(), SnapshotError> {
        if !self.first {
            self.w.write_all(b",")?;
        }
        serde_json::to_writer(&mut self.w, name)?;
        self.w.write_all(b":")?;
        self.w.write_all(open)?;
        self.first = true;
        Ok(())
    }

    fn close(&mut self, close: &[u8]) -> Result<(), SnapshotError> {
        self.w.write_all(close)?;
        self.first = false;
        Ok(())
    }

    fn element(&mut self) -> Result<(), SnapshotError> {
        if !self.first {
            self.w.write_all(b",")?;
        }
        self.first = false;
        Ok(())
    }

    /// Opens array field `name`.
    pub(crate) fn begin_array(&mut self, name: &str) -> Result<(), SnapshotError> {
        self.field(name, b"[")
    }

    /// Closes the open array.
    pub(crate) fn end_array(&mut self) -> Result<(), SnapshotError> {
        self.close(b"]")
    }

    /// Opens object field `name`.
    pub(crate) fn begin_object(&mut self, name: &str) -> Result<(), SnapshotError> {
        self.field(name, b"{")
    }

    /// Closes the open object.
    pub(crate) fn end_object(&mut self) -> Result<(), SnapshotError> {
        self.close(b"}")
    }

    /// Appends an element that is already JSON (a value as sled stores it).
    pub(crate) fn raw(&mut self, json: &[u8]) -> Result<(), SnapshotError> {
        self.element()?;
        self.w.write_all(json)?;
        Ok(())
    }

    /// Appends the pair `[key, json]`, `json` being already encoded.
    pub(crate) fn pair_raw<K: Serialize + ?Sized>(
        &mut self,
        key: &K,
        json: &[u8],
    ) -> Result<(), SnapshotError> {
        self.element()?;
        self.w.write_all(b"[")?;
        serde_json::to_writer(&mut self.w, key)?;
        self.w.write_all(b",")?;
        self.w.write_all(json)?;
        self.w.write_all(b"]")?;
        Ok(())
    }

    /// Appends `value`, encoding it.
    pub(crate) fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SnapshotError> {
        self.element()?;
        serde_json::to_writer(&mut self.w, value)?;
        Ok(())
    }
}

/// What a written snapshot covers.
#[derive(Debug)]
pub(crate) struct Built {
    /// The last log id applied to it.
    pub last_applied: Option<LogId<NodeId>>,
    /// The membership applied to it.
    pub membership: StoredMembership<NodeId, NodeAddr>,
    /// How many version records it holds.
    pub versions: u64,
}

/// Writes the state machine to `w` and returns `w`. The caller must hold the state machine's
/// read lock until this returns (the file may be synced after).
pub(crate) fn write_body<W: Write>(trees: &SmTrees, w: W) -> Result<(Built, W), SnapshotError> {
    let last_applied = read_json::<Option<LogId<NodeId>>>(&trees.meta, sm_key::LAST_APPLIED)?;
    let membership = read_json(&trees.meta, sm_key::MEMBERSHIP)?.unwrap_or_default();
    let mut out = BodyWriter::start(w)?;
    out.begin_array("versions")?;
    let mut versions = 0u64;
    for item in trees.versions.iter() {
        out.raw(&item?.1)?;
        versions += 1;
    }
    out.end_array()?;
    keyed_section(&mut out, "lists", trees.lists.iter(), &[])?;
    keyed_section(&mut out, "latest", trees.latest.iter(), &[])?;
    let heads = trees.meta.scan_prefix(sm_key::SUMDB_HEAD_PREFIX);
    keyed_section(&mut out, "sumdb_heads", heads, sm_key::SUMDB_HEAD_PREFIX)?;
    out.begin_array("sumdb_items")?;
    for item in trees.meta.scan_prefix(sm_key::SUMDB_ITEM_PREFIX) {
        let (k, v) = item?;
        let rest = String::from_utf8_lossy(&k[sm_key::SUMDB_ITEM_PREFIX.len()..]).into_owned();
        if let Some((db, path)) = rest.split_once('\0') {
            let item = SumdbItem {
                path: path.to_owned(),
                body: v.to_vec(),
            };
            out.value(&(db, item))?;
        }
    }
    out.end_array()?;
    raw_section(
        &mut out,
        "quarantine",
        &trees.meta,
        sm_key::QUARANTINE_PREFIX,
    )?;
    raw_section(&mut out, "pins", &trees.meta, sm_key::PIN_PREFIX)?;
    out.begin_object("policy")?;
    policy::write_snapshot(&trees.meta, &mut out)?;
    out.end_object()?;
    let built = Built {
        last_applied: last_applied.flatten(),
        membership,
        versions,
    };
    Ok((built, out.finish()?))
}

/// Writes `[key, value]` pairs, the key being the sled key without `prefix`.
fn keyed_section<W: Write>(
    out: &mut BodyWriter<W>,
    name: &str,
    items: sled::Iter,
    prefix: &[u8],
) -> Result<(), SnapshotError> {
    out.begin_array(name)?;
    for item in items {
        let (k, v) = item?;
        out.pair_raw(&*String::from_utf8_lossy(&k[prefix.len()..]), &v)?;
    }
    out.end_array()
}

/// Writes the values of every `sm_meta` key under `prefix`.
pub(crate) fn raw_section<W: Write>(
    out: &mut BodyWriter<W>,
    name: &str,
    meta: &sled::Tree,
    prefix: &[u8],
) -> Result<(), SnapshotError> {
    out.begin_array(name)?;
    for item in meta.scan_prefix(prefix) {
        out.raw(&item?.1)?;
    }
    out.end_array()
}

// === reading ===

/// One record of a snapshot, in document order.
#[derive(Debug)]
pub(crate) enum Record {
    /// A version record.
    Version(VersionRecord),
    /// A module's list record.
    List(String, ListRecord),
    /// A module's `@latest` record.
    Latest(String, LatestRecord),
    /// A checksum database's tree head.
    SumdbHead(String, TreeHeadRecord),
    /// A checksum-database answer.
    SumdbItem(String, SumdbItem),
    /// A quarantined version.
    Quarantine(QuarantineRecord),
    /// A pin.
    Pin(PinRecord),
    /// A deny rule, tombstone or index entry.
    Policy(PolicyRecord),
}

/// Where the reader hands records.
type Sink<'a> = dyn FnMut(Record) -> Result<(), SnapshotError> + 'a;

/// The reader's state across serde's visitors: the sink, and the sink's error if it failed
/// (serde only carries its own error type).
struct Ctx<'a> {
    sink: &'a mut Sink<'a>,
    failed: Option<SnapshotError>,
}

impl Ctx<'_> {
    fn emit<E: de::Error>(&mut self, rec: Record) -> Result<(), E> {
        (self.sink)(rec).map_err(|e| self.fail(e))
    }

    fn fail<E: de::Error>(&mut self, e: SnapshotError) -> E {
        let err = E::custom(&e);
        self.failed = Some(e);
        err
    }
}

/// Reads a snapshot document from `r` (buffer it), handing every record to `sink` in document
/// order. Stops at the first error, the sink's included.
pub(crate) fn read_body<R: Read>(r: R, sink: &mut Sink<'_>) -> Result<(), SnapshotError> {
    let mut ctx = Ctx { sink, failed: None };
    let mut de = serde_json::Deserializer::from_reader(r);
    let res = (&mut de).deserialize_map(BodyVisitor { ctx: &mut ctx });
    if let Some(e) = ctx.failed.take() {
        return Err(e);
    }
    res?;
    de.end()?;
    Ok(())
}

struct BodyVisitor<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl<'de> Visitor<'de> for BodyVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cairn snapshot document")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.ctx;
        if map.next_key::<String>()?.as_deref() != Some("format") {
            let e = SnapshotError::Malformed("the document does not start with its format");
            return Err(ctx.fail(e));
        }
        let format: u32 = map.next_value()?;
        if format != FORMAT {
            return Err(ctx.fail(SnapshotError::Format(format)));
        }
        while let Some(key) = map.next_key::<String>()? {
            let ctx = &mut *ctx;
            match key.as_str() {
                "versions" => map.next_value_seed(Each::new(ctx, Record::Version))?,
                "lists" => map.next_value_seed(Each::new(ctx, |(m, r)| Record::List(m, r)))?,
                "latest" => map.next_value_seed(Each::new(ctx, |(m, r)| Record::Latest(m, r)))?,
                "sumdb_heads" => {
                    map.next_value_seed(Each::new(ctx, |(d, h)| Record::SumdbHead(d, h)))?
                }
                "sumdb_items" => {
                    map.next_value_seed(Each::new(ctx, |(d, i)| Record::SumdbItem(d, i)))?
                }
                "quarantine" => map.next_value_seed(Each::new(ctx, Record::Quarantine))?,
                "pins" => map.next_value_seed(Each::new(ctx, Record::Pin))?,
                "policy" => map.next_value_seed(PolicySeed { ctx })?,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// The `policy` object.
struct PolicySeed<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
}

impl<'de> DeserializeSeed<'de> for PolicySeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PolicySeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the policy part of a cairn snapshot")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let p = |r| Record::Policy(r);
        while let Some(key) = map.next_key::<String>()? {
            let ctx = &mut *self.ctx;
            match key.as_str() {
                "deny" => map.next_value_seed(Each::new(ctx, |r| p(PolicyRecord::Deny(r))))?,
                "tombstones" => {
                    map.next_value_seed(Each::new(ctx, |t| p(PolicyRecord::Tombstone(t))))?
                }
                "index" => {
                    map.next_value_seed(Each::new(ctx, |(s, e)| p(PolicyRecord::Index(s, e))))?
                }
                "index_of" => {
                    map.next_value_seed(Each::new(ctx, |(v, s)| p(PolicyRecord::IndexOf(v, s))))?
                }
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// An array whose elements decode as `T` and reach the sink through `wrap`.
struct Each<'c, 'a, T, F> {
    ctx: &'c mut Ctx<'a>,
    wrap: F,
    _t: PhantomData<fn() -> T>,
}

impl<'c, 'a, T, F: Fn(T) -> Record> Each<'c, 'a, T, F> {
    fn new(ctx: &'c mut Ctx<'a>, wrap: F) -> Self {
        Each {
            ctx,
            wrap,
            _t: PhantomData,
        }
    }
}

impl<'de, T: DeserializeOwned, F: Fn(T) -> Record> DeserializeSeed<'de> for Each<'_, '_, T, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, T: DeserializeOwned, F: Fn(T) -> Record> Visitor<'de> for Each<'_, '_, T, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of snapshot records")
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<(), S::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            self.ctx.emit((self.wrap)(item))?;
        }
        Ok(())
    }
}

// === installing ===

/// Replaces the whole state machine with the document read from `r` (buffer it), at
/// `last_applied`/`membership`. Not atomic (see the module docs): the caller holds the state
/// machine's write lock and has marked the install as in progress. Returns the number of
/// version records installed.
pub(crate) fn install<R: Read>(
    trees: &SmTrees,
    r: R,
    last_applied: &Option<LogId<NodeId>>,
    membership: &StoredMembership<NodeId, NodeAddr>,
) -> Result<u64, SnapshotError> {
    for tree in [&trees.versions, &trees.lists, &trees.latest, &trees.meta] {
        tree.clear()?;
    }
    let mut inst = Installer {
        trees,
        versions: sled::Batch::default(),
        lists: sled::Batch::default(),
        latest: sled::Batch::default(),
        meta: sled::Batch::default(),
        pending: 0,
        version_count: 0,
        policy: PolicyInstall::default(),
    };
    read_body(r, &mut |rec| inst.add(rec))?;
    inst.finish(last_applied, membership)
}

/// Install state: one pending batch per tree, written every [`INSTALL_BATCH`] records.
struct Installer<'t> {
    trees: &'t SmTrees,
    versions: sled::Batch,
    lists: sled::Batch,
    latest: sled::Batch,
    meta: sled::Batch,
    pending: usize,
    version_count: u64,
    policy: PolicyInstall,
}

impl Installer<'_> {
    fn add(&mut self, rec: Record) -> Result<(), SnapshotError> {
        match rec {
            Record::Version(v) => {
                self.versions
                    .insert(version_key(&v.module, &v.version), serde_json::to_vec(&v)?);
                self.version_count += 1;
            }
            Record::List(m, r) => self.lists.insert(m.as_bytes(), serde_json::to_vec(&r)?),
            Record::Latest(m, r) => self.latest.insert(m.as_bytes(), serde_json::to_vec(&r)?),
            Record::SumdbHead(db, h) => self
                .meta
                .insert(sm_key::sumdb_head(&db), serde_json::to_vec(&h)?),
            Record::SumdbItem(db, item) => self
                .meta
                .insert(sm_key::sumdb_item(&db, &item.path), item.body),
            Record::Quarantine(q) => {
                let key = sm_key::quarantine(&q.record.module, &q.record.version);
                self.meta.insert(key, serde_json::to_vec(&q)?);
            }
            Record::Pin(pin) => self
                .meta
                .insert(sm_key::pin(&pin.pattern), serde_json::to_vec(&pin)?),
            Record::Policy(p) => self.policy.add(&mut self.meta, p)?,
        }
        self.pending += 1;
        if self.pending >= INSTALL_BATCH {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<(), SnapshotError> {
        let t = self.trees;
        t.versions.apply_batch(std::mem::take(&mut self.versions))?;
        t.lists.apply_batch(std::mem::take(&mut self.lists))?;
        t.latest.apply_batch(std::mem::take(&mut self.latest))?;
        t.meta.apply_batch(std::mem::take(&mut self.meta))?;
        self.pending = 0;
        Ok(())
    }

    fn finish(
        mut self,
        last_applied: &Option<LogId<NodeId>>,
        membership: &StoredMembership<NodeId, NodeAddr>,
    ) -> Result<u64, SnapshotError> {
        self.write()?;
        let mut meta = sled::Batch::default();
        std::mem::take(&mut self.policy).finish(&mut meta)?;
        meta.insert(sm_key::VERSION_COUNT, &self.version_count.to_be_bytes());
        meta.insert(sm_key::MEMBERSHIP, serde_json::to_vec(membership)?);
        meta.insert(sm_key::LAST_APPLIED, serde_json::to_vec(last_applied)?);
        self.trees.meta.apply_batch(meta)?;
        Ok(self.version_count)
    }
}

// === backup (`cairn backup verify`, `cairn restore`) ===

/// Checks that `r` holds a snapshot document this build can install: known format, every
/// record decodable. Writes nothing.
pub(crate) fn check<R: Read>(r: R) -> Result<(), SnapshotError> {
    read_body(r, &mut |_| Ok(()))
}

/// Every version record of a snapshot document (for the blob manifest of a backup).
pub(crate) fn versions<R: Read>(r: R) -> Result<Vec<VersionRecord>, SnapshotError> {
    let mut out = Vec::new();
    read_body(r, &mut |rec| {
        if let Record::Version(v) = rec {
            out.push(v);
        }
        Ok(())
    })?;
    Ok(out)
}
