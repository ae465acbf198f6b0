//! Tests of the tlog port, with vectors computed by Go's x/mod.

use super::tile::{tile_and_range, tile_parent};
use super::*;
use std::cell::{Cell, RefCell};

/// Tree hashes of records "hello 0", "hello 1", ... computed by Go's x/mod v0.43.0.
const GO_TREE_HASHES: &[(i64, &str)] = &[
    (1, "mr8HYm+uELgj2s+pkdy5dc7hRfWcI1oN0DPkvW8zMks="),
    (2, "adFQOhfglIo8RqdagYnbkgF/D15XnlsLJbJFSFdi6MI="),
    (3, "PDjfnRac223+gOX7S0I5+5It1mQ0EeJKrV7IJeQf1xQ="),
    (7, "QZRUL1wfaw6iKOvQX5diERTKZBYvMGZREK3CZFmOKJc="),
    (8, "xYPS+4FBCmS+KqUckWG8QS1ZGr1jLlLhp+n5JaKFQgw="),
    (255, "cGLPcZyS+PCkMEhwVBXoHRuc3GgUfrxRsYnzWQqTX+s="),
    (256, "VuhdmNl+mOZRbDZWQBGrWpxMY12PXuTzLpgm8IrjFts="),
    (257, "l+KhiPl2hAHN8kckrosqoWgevvi76kyqLubbqb73hck="),
    (1000, "ICs8Wlxet0qqr7Sp09ytfOgmiCOptZFl6HDC2G/vFGo="),
];
/// Record proofs (t, n, proof) computed by Go for the same records.
const GO_RECORD_PROOFS: &[(i64, i64, &[&str])] = &[
    (
        1000,
        500,
        &[
            "L+pCGK2AEszk26WtqnfXHVEgHgYfaq9WIVe2xsBhxCY=",
            "ZbyxKlrK+6Czv3/W8hn9JsF8zlQj1CpXOdXBfp0Gwuw=",
            "YkyIftrz/nU7EAM6tUFKDiBFzq7xQ5lglP0H/T6oHks=",
            "wy45ov3iE1XoqEwbBpGNppxOJzAeH/b2qyQ4ZzOVi2E=",
            "6WilwRrT1ar8PBmv+untMm7SlN4RopWaO5nuBedPc9s=",
            "3+cwWHu8mLK1AcfADk8SgWagQCmNn7BxpQh938wljyE=",
            "dZ/MzypO7aIMMNTayfUctprmTMzmc0eBG1t18mUKp5k=",
            "C234qwbd4BIOKaNEcPceFfsGtE5GUdMoSeLIk5gp10k=",
            "VuhdmNl+mOZRbDZWQBGrWpxMY12PXuTzLpgm8IrjFts=",
            "IVC95HYmRZtMCwqIK6nm22FztJ8XInh4Cg9nb01NMiE=",
        ],
    ),
    (257, 256, &["VuhdmNl+mOZRbDZWQBGrWpxMY12PXuTzLpgm8IrjFts="]),
    (
        1000,
        0,
        &[
            "qKaV2lrcom0SHlZ+9xyX4aplWCRJ8UlyWNdZxYjEMLM=",
            "FReTBNlvGDwXt3C7ohG3fN7invonaZuHfoq3BG8vgd0=",
            "LTd32k5XVXvomNEH84VrMCBsqcS1yK+NGOkRhWuhhjU=",
            "6JYjXuu7B7keHMOG+o7kVyqo+L3Sgur/pubz/Uc8bhM=",
            "xP2bRf/dHMyu3DVquEWs9ofm1wfHTdlzEzUcZnt14Zw=",
            "YEvKWGpSu8218Zf9VdVyPwoWcACqWv+cUe0XUi+AU6M=",
            "QY5/8juXs+dHVrVHUOaN0iG4jHdGsN/z0lsIjT05hHc=",
            "g2JRx/W3XhNe4xo07OzmZKu6Y6Sfi28lib/AF0nWFhs=",
            "0o0W90Jhe8at+rPDwOiKzU+QfRgfuZKNg2smUoL9rLA=",
            "IVC95HYmRZtMCwqIK6nm22FztJ8XInh4Cg9nb01NMiE=",
        ],
    ),
];
/// Tree proofs (t, n, proof) computed by Go for the same records.
const GO_TREE_PROOFS: &[(i64, i64, &[&str])] = &[
    (
        1000,
        257,
        &[
            "foX1UVLsBfpgEHIGs5drzbrHgCSZaRubuj827+f7PTI=",
            "ecQZV8GQReT/9laHHRoJH+EDFmvB/k16N+T/dYewWic=",
            "wcD0RPxkXeu/OUuMMcQVfMITR3MQglPh+5RiZ/8WTmk=",
            "Qejs7SwR6Fw5vYlKqmnTemUr4yDfAyz2xHj3Z3nwRWg=",
            "DjPQLu7S4emuL0vsrqFQCt0GEjH1/EJbfFIHraNqnQc=",
            "2FTq9c34kYxjJKRk0Z8kPva2EtghemthBKfKXZjxab0=",
            "i6UxwJETwMuE5XGKaFvK8CJBlHj33ZRaqKw2PX0p+Oo=",
            "MVa0y4JYky8XsIEPpLOuF2VBNkUJR9XUN59vuyrN2T4=",
            "g96vRoc8S/iLafjT2BhKDCI2/b2i6BHBryf+TgRIzFc=",
            "VuhdmNl+mOZRbDZWQBGrWpxMY12PXuTzLpgm8IrjFts=",
            "IVC95HYmRZtMCwqIK6nm22FztJ8XInh4Cg9nb01NMiE=",
        ],
    ),
    (257, 256, &["foX1UVLsBfpgEHIGs5drzbrHgCSZaRubuj827+f7PTI="]),
    (
        1000,
        999,
        &[
            "qLwFvMs9Lc+VUJ7gNHwDXKxko5wyfkfUY4Ld6MdWa0w=",
            "iH6Vw8PRYZbi3Bpp4R/oV7o7CiYkM56h10fGFQfe/FA=",
            "atqgWWdkePP2tPo+no2atNZlPxnZ1zc+XfOPAsmeyJ8=",
            "PbwCZ4r4VsCxmdNXr4dkEz9viYAWv4C5MIEoe3KE40I=",
            "xpmGIZjEP9lBIguVxMtu6LaYgoPvHrRmOMgoKtRtn9Q=",
            "X1LovkN7/d6nMhCBtOt1Iqg35eeI1V22zQWR6/jd4OE=",
            "rYNMkaFoxllB4IG2oBJr9qLckC5UsKuwKMbqXPt/meY=",
            "+cQAN9hikWbov8bhU26w4Gs4CO/o5vOcb+n3LbWlnSo=",
            "5CSMFsHijdR7JjcXcFEcf4gTRZeILktZNY91BKbpiVk=",
        ],
    ),
];
/// sum.golang.org's answer to lookup/golang.org/x/mod@v0.43.0.
const REAL_LOOKUP: &str = "71056177\ngolang.org/x/mod v0.43.0 h1:MFuq5J6s35W9D3IjkwyWc9vHh0nENOrt5K8Iof4ofmg=\ngolang.org/x/mod v0.43.0/go.mod h1:4ec1JnuyBz5+FIVhg86UsA39YG8BpnrZdJYSNHmGzHY=\n\ngo.sum database tree\n72097574\nTN5X3MLGTDFnVRn7RF0+aSqn9MdPDdly11pPObF1Ti8=\n\n— sum.golang.org Az3grqWEGn3sDlsyQ9ppBk0lZ6N+PyvyN98h/w05RN0Kd0gEPt5lnWXQ0GU4cdmhWiTJp6w7TVjS+LEx1xKeKQ+9EAk=\n";
/// Go's `ProveRecord` for the record below, read from sum.golang.org's tiles.
const REAL_PROOF: &[&str] = &[
    "yVRKbd31RTKWDIjmOIzJjFLDUssNMNChSfhur+hiWBU=",
    "nMxTLnMpyl9JHT0cuTkqepkuBMedRmEEQXOJXzr3Kls=",
    "FRkpa6KjxwQeiWnVL6Qv7Dhydlm9Wtz+F1NE07Zp5ng=",
    "pWsdcGSzRbIyxFws0sw8eJKbbQaAJlR5nEpR2unMYAs=",
    "+QzsKHSvwGujv/BYDcoG/bxcGY8+jpCIJkHQssT9hiA=",
    "ZwnXw3SLouHybAZ1sBOAIyQWVEG0F5RO8pMJmelqbX4=",
    "Z95smhPLzbsBZXd2/1741H0M4ETHJyT14NPV/aG+qVw=",
    "VBGNj5CA31urjAplVFTuKJzchskAL1HDUlPdqLfsHdg=",
    "+3UUWFU7zPnzb1oEBePNu7TMkASQM9+4UB6J4OVXtts=",
    "g7b3XUN51BzWS8Ybob1Ty1EeYMoKBABCVDRTUBAVpbk=",
    "SlTAAGi0/hczwL/hWMdY7IT3PEy5W40pto7zOn4+p0s=",
    "WfvZwrgItDn2JYnMNBjcetrFS1DZOWlkP9ZBP2Uyc7E=",
    "AMvJAfc2XzIYYYfXolMSiSAEbP7O5Rg99MNNMrDxG3o=",
    "DcwOBm5dmegXwUwtK5cdMGNhj8131j4rOb8a6Fb1sh0=",
    "kpxLxNn4p5idqTESnv7I/oBjgBVOpKwPgp4bYXxfUso=",
    "V7GjXaKhplIx9EBSCS7CQfunwT+XCc9PYptnhFE4zzs=",
    "8GWzDPtgNzPYxmv72Ce2/f1+kO194119wpV+pPImrgM=",
    "kCCAI9SRrNl0kTLsjhuwUvW/5LTn6BxfPs1hyZl3teY=",
    "2ZqBt1Z4TvkSSjr6nXKQjShQJ37A5gimOomWUISX+JY=",
    "nmReMJHOPO/7CGv+rMuo20zzbQPbiF2QfhreGV0GSEM=",
    "TxAwA410QpuPzflYtFNF0sQEG4FnSwKWZRKPLFJfMS0=",
    "L0EW1qxVIEx+umGnnFbV+gjS61ssUQPPA6JLNa+wZFY=",
    "efoPck3X+AsHcxIiimQqcLkwEMlOLD7/E3/vswXkxZ8=",
    "fwx0lGMWVFno5pj4ltKjpWrBN7WAudEmKKgwb2Fv3F0=",
];

fn h(s: &str) -> Hash {
    parse_hash(s).unwrap()
}

fn hs(list: &[&str]) -> Vec<Hash> {
    list.iter().map(|s| h(s)).collect()
}

/// Hash storage that, like Go's test storage, insists on increasing indexes.
struct Ordered<'a>(&'a [Hash]);

impl HashReader for Ordered<'_> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{indexes:?}");
        self.0.read_hashes(indexes)
    }
}

/// A log built by appending records, as a server would store it.
#[derive(Default)]
struct Log {
    hashes: Vec<Hash>,
    leaves: Vec<Hash>,
}

impl Log {
    fn with_records(count: i64, record: impl Fn(i64) -> String) -> Self {
        let mut log = Log::default();
        for i in 0..count {
            log.add(record(i).as_bytes());
        }
        log
    }

    fn add(&mut self, data: &[u8]) {
        let n = self.leaves.len() as i64;
        let new = stored_hashes(n, data, &Ordered(&self.hashes)).unwrap();
        self.hashes.extend(new);
        self.leaves.push(record_hash(data));
    }

    fn n(&self) -> i64 {
        self.leaves.len() as i64
    }

    fn tree(&self) -> Tree {
        let hash = tree_hash(self.n(), &Ordered(&self.hashes)).unwrap();
        Tree { n: self.n(), hash }
    }
}

fn hello(i: i64) -> String {
    format!("hello {i}")
}

/// RFC 6962's Merkle tree hash, computed directly from the leaf hashes.
fn naive_tree_hash(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest(b"").into(),
        1 => leaves[0],
        n => {
            let k = split_point(n as i64) as usize;
            node_hash(naive_tree_hash(&leaves[..k]), naive_tree_hash(&leaves[k..]))
        }
    }
}

/// Tiles kept in memory, counting tiles read but not (yet) saved.
struct TileStore {
    height: i32,
    tiles: HashMap<Tile, Vec<u8>>,
    unsaved: Cell<i64>,
    saved: RefCell<Vec<Tile>>,
}

impl TileStore {
    fn new(height: i32) -> Self {
        TileStore {
            height,
            tiles: HashMap::new(),
            unsaved: Cell::new(0),
            saved: RefCell::new(Vec::new()),
        }
    }
}

impl TileReader for TileStore {
    fn height(&self) -> i32 {
        self.height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        self.unsaved.set(self.unsaved.get() + tiles.len() as i64);
        Ok(tiles
            .iter()
            .map(|t| self.tiles.get(t).cloned().unwrap_or_default())
            .collect())
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        assert_eq!(tiles.len(), data.len());
        self.unsaved.set(self.unsaved.get() - tiles.len() as i64);
        self.saved.borrow_mut().extend_from_slice(tiles);
    }
}

#[test]
fn empty_tree() {
    let hash = tree_hash(0, &Vec::new()).unwrap();
    assert_eq!(hash, <Hash>::from(Sha256::digest(b"")));
}

#[test]
fn record_and_node_hash() {
    assert_eq!(
        format_hash(&record_hash(b"hello world")),
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0="
    );
    let (a, b) = (record_hash(b"a"), record_hash(b"b"));
    let mut buf = vec![1u8];
    buf.extend_from_slice(&a);
    buf.extend_from_slice(&b);
    assert_eq!(node_hash(a, b), <Hash>::from(Sha256::digest(&buf)));
}

#[test]
fn tree_hash_matches_rfc6962() {
    let mut log = Log::default();
    for i in 0..300 {
        assert_eq!(log.tree().hash, naive_tree_hash(&log.leaves), "size {i}");
        assert_eq!(stored_hash_count(log.n()), log.hashes.len() as i64);
        log.add(format!("leaf {i}").as_bytes());
    }
}

#[test]
fn split_stored_hash_index_round_trips() {
    for level in 0..10 {
        for n in 0..100 {
            let x = stored_hash_index(level, n);
            assert_eq!(split_stored_hash_index(x).unwrap(), (level, n), "{x}");
        }
    }
    for x in [i64::MAX, i64::MAX - 1, 1 << 62] {
        let (level, n) = split_stored_hash_index(x).unwrap();
        assert_eq!(stored_hash_index(level, n), x);
    }
    assert!(matches!(
        split_stored_hash_index(-1),
        Err(TlogError::InvalidIndex(-1))
    ));
}

/// Port of Go's `TestTree`: proofs for every record and every earlier tree, directly and
/// through tiles, with every proof hash corrupted once.
#[test]
fn tree_proofs_and_tiles() {
    const HEIGHT: i32 = 2;
    let mut log = Log::default();
    let mut trees = Vec::new();
    let mut store = TileStore::new(HEIGHT);
    for i in 0..100i64 {
        let old_len = log.hashes.len();
        log.add(format!("leaf {i}").as_bytes());
        let th = log.tree().hash;
        trees.push(th);
        publish_tiles(&mut store, &log, i);
        for j in old_len..log.hashes.len() {
            let tile = tile_for_index(HEIGHT, j as i64).unwrap();
            let data = &store.tiles[&tile];
            assert_eq!(
                hash_from_tile(&tile, data, j as i64).unwrap(),
                log.hashes[j]
            );
        }
        check_record_proofs(&log, th);
        check_tile_reads(&store, &log, &trees);
    }
}

/// Adds the tiles for the tree of `i + 1` records, checking they extend the earlier ones.
fn publish_tiles(store: &mut TileStore, log: &Log, i: i64) {
    let storage = Ordered(&log.hashes);
    for tile in new_tiles(store.height, i, i + 1).unwrap() {
        let data = read_tile_data(&tile, &storage).unwrap();
        let old = Tile {
            w: tile.w - 1,
            ..tile
        };
        let old_data = store.tiles.get(&old).cloned().unwrap_or_default();
        assert_eq!(old_data[..], data[..old_data.len()], "{tile}");
        assert_eq!(old_data.len() + HASH_SIZE, data.len());
        store.tiles.insert(tile, data);
    }
    for old in [0, i / 2] {
        for tile in new_tiles(store.height, old, i + 1).unwrap() {
            assert_eq!(store.tiles[&tile], read_tile_data(&tile, &storage).unwrap());
        }
    }
}

fn check_record_proofs(log: &Log, th: Hash) {
    let t = log.n();
    for j in 0..t {
        let leaf = log.leaves[j as usize];
        let mut p = prove_record(t, j, &Ordered(&log.hashes)).unwrap();
        check_record(&p, t, th, j, leaf).unwrap();
        for k in 0..p.len() {
            p[k][0] ^= 1;
            assert!(check_record(&p, t, th, j, leaf).is_err());
            p[k][0] ^= 1;
        }
        assert!(check_record(&p, t, th, j, record_hash(b"other")).is_err());
        if j > 0 {
            assert!(check_record(&p, t, th, j - 1, leaf).is_err());
        }
        let mut longer = p.clone();
        longer.push(th);
        assert!(check_record(&longer, t, th, j, leaf).is_err());
        if !p.is_empty() {
            assert!(check_record(&p[1..], t, th, j, leaf).is_err());
        }
    }
}

fn check_tile_reads(store: &TileStore, log: &Log, trees: &[Hash]) {
    let tree = log.tree();
    let thr = tile_hash_reader(tree, store);
    for j in 0..tree.n {
        let got = thr.read_hashes(&[stored_hash_index(0, j)]).unwrap();
        assert_eq!(got, vec![log.leaves[j as usize]]);
        let p = prove_record(tree.n, j, &thr).unwrap();
        check_record(&p, tree.n, tree.hash, j, log.leaves[j as usize]).unwrap();
    }
    assert_eq!(store.unsaved.get(), 0);
    assert!(matches!(
        thr.read_hashes(&[tree.n * 2]),
        Err(TlogError::IndexNotInTree)
    ));
    assert_eq!(store.unsaved.get(), 0);
    for j in 1..=tree.n {
        let old = trees[j as usize - 1];
        assert_eq!(tree_hash(j, &thr).unwrap(), old);
        let mut p = prove_tree(tree.n, j, &thr).unwrap();
        check_tree(&p, tree.n, tree.hash, j, old).unwrap();
        for k in 0..p.len() {
            p[k][0] ^= 1;
            assert!(check_tree(&p, tree.n, tree.hash, j, old).is_err());
            p[k][0] ^= 1;
        }
        let mut wrong_old = old;
        wrong_old[31] ^= 1;
        assert!(check_tree(&p, tree.n, tree.hash, j, wrong_old).is_err());
    }
    assert_eq!(store.unsaved.get(), 0);
}

/// Serves a log's tiles, checking that only correct data is ever saved.
struct LogTiles<'a> {
    log: &'a Log,
    height: i32,
}

impl TileReader for LogTiles<'_> {
    fn height(&self) -> i32 {
        self.height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles
            .iter()
            .map(|t| read_tile_data(t, &self.log.hashes))
            .collect()
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        for (t, d) in tiles.iter().zip(data) {
            assert_eq!(
                *d,
                read_tile_data(t, &self.log.hashes).unwrap(),
                "saved {t}"
            );
        }
    }
}

/// Serves the tiles of another reader, except that the hash at `index` (or the bottom
/// row hashes it is computed from) is zeroed.
struct ZeroIndex<'a> {
    inner: &'a LogTiles<'a>,
    index: i64,
}

impl TileReader for ZeroIndex<'_> {
    fn height(&self) -> i32 {
        self.inner.height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        let mut data = self.inner.read_tiles(tiles)?;
        let (t, range) = tile_and_range(self.height(), self.index).unwrap();
        for (tile, d) in tiles.iter().zip(&mut data) {
            if (tile.h, tile.l, tile.n) == (t.h, t.l, t.n) && range.end <= d.len() {
                d[range.clone()].fill(0);
            }
        }
        Ok(data)
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        self.inner.save_tiles(tiles, data);
    }
}

/// Port of Go's `TestTileHashReader`, including a tampered tile for every index.
#[test]
fn tile_hash_reader_authenticates() {
    let mut log = Log::default();
    for _ in 0..100 {
        log.add(format!("leaf {}", log.n()).as_bytes());
        let tree = log.tree();
        let tiles = LogTiles {
            log: &log,
            height: 2,
        };
        let thr = tile_hash_reader(tree, &tiles);
        let all: Vec<i64> = (0..stored_hash_index(0, tree.n)).collect();
        for &i in &all {
            assert_eq!(thr.read_hashes(&[i]).unwrap(), vec![log.hashes[i as usize]]);
        }
        assert_eq!(thr.read_hashes(&all).unwrap(), log.hashes[..all.len()]);
        for &i in &all {
            let zero = ZeroIndex {
                inner: &tiles,
                index: i,
            };
            let thz = tile_hash_reader(tree, &zero);
            assert!(thz.read_hashes(&[i]).is_err(), "n={} index {i}", tree.n);
            assert!(thz.read_hashes(&all).is_err(), "n={} index {i}", tree.n);
        }
    }
}

#[test]
fn tile_hash_reader_rejects_lying_tiles_without_saving() {
    let log = Log::with_records(37, hello);
    let tree = log.tree();
    let mut store = TileStore::new(2);
    for tile in new_tiles(2, 0, tree.n).unwrap() {
        store
            .tiles
            .insert(tile, read_tile_data(&tile, &log.hashes).unwrap());
    }
    let wanted = stored_hash_index(0, 5);
    let good = tile_hash_reader(tree, &store)
        .read_hashes(&[wanted])
        .unwrap();
    assert_eq!(good, vec![log.leaves[5]]);
    assert!(!store.saved.borrow().is_empty());

    // Replace the record's tile with one built from another log of the same size.
    let other = Log::with_records(37, |i| format!("forged {i}"));
    let tile = tile_for_index(2, wanted).unwrap();
    let tile = tile_parent(tile, 0, tree.n).unwrap();
    store
        .tiles
        .insert(tile, read_tile_data(&tile, &other.hashes).unwrap());
    store.saved.borrow_mut().clear();
    let err = tile_hash_reader(tree, &store).read_hashes(&[wanted]);
    assert!(matches!(err, Err(TlogError::InconsistentTile)), "{err:?}");
    assert!(store.saved.borrow().is_empty());

    // A tree hash that the (honest) tiles do not support.
    let honest = LogTiles {
        log: &log,
        height: 2,
    };
    let lie = Tree {
        n: tree.n,
        hash: other.tree().hash,
    };
    let err = tile_hash_reader(lie, &honest).read_hashes(&[wanted]);
    assert!(matches!(err, Err(TlogError::InconsistentTile)), "{err:?}");
}

#[test]
fn tile_hash_reader_checks_reader_results() {
    struct Bad(fn(&[Tile]) -> Vec<Vec<u8>>, i32);
    impl TileReader for Bad {
        fn height(&self) -> i32 {
            self.1
        }
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
            Ok((self.0)(tiles))
        }
        fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {
            panic!("saved bad tiles");
        }
    }
    let tree = Log::with_records(10, hello).tree();
    let index = [stored_hash_index(0, 3)];
    let too_few = Bad(|t| vec![Vec::new(); t.len() - 1], 2);
    let too_short = Bad(|t| vec![vec![0; 31]; t.len()], 2);
    let no_height = Bad(|t| vec![Vec::new(); t.len()], 0);
    for bad in [&too_few, &too_short] {
        let err = tile_hash_reader(tree, bad).read_hashes(&index);
        assert!(matches!(err, Err(TlogError::BadTileData(_))), "{err:?}");
    }
    let err = tile_hash_reader(tree, &no_height).read_hashes(&index);
    assert!(matches!(err, Err(TlogError::InvalidHeight(0))), "{err:?}");
    let err = tile_hash_reader(tree, &too_few).read_hashes(&[-1]);
    assert!(matches!(err, Err(TlogError::InvalidIndex(-1))), "{err:?}");
}

#[test]
fn hash_reader_must_return_one_hash_per_index() {
    struct Short;
    impl HashReader for Short {
        fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
            Ok(vec![[0; 32]; indexes.len().saturating_sub(1)])
        }
    }
    assert!(matches!(
        tree_hash(5, &Short),
        Err(TlogError::HashCount { want: 2, got: 1 })
    ));
    assert!(matches!(
        prove_record(5, 1, &Short),
        Err(TlogError::HashCount { .. })
    ));
    assert!(matches!(
        prove_tree(5, 3, &Short),
        Err(TlogError::HashCount { .. })
    ));
    assert!(matches!(
        stored_hashes(3, b"x", &Short),
        Err(TlogError::HashCount { .. })
    ));
}

#[test]
fn invalid_proof_inputs() {
    let th = [0; 32];
    for (t, n) in [(0, 0), (5, 5), (5, -1), (-1, 0)] {
        assert!(matches!(
            check_record(&[], t, th, n, th),
            Err(TlogError::InvalidInputs(_))
        ));
        assert!(prove_record(t, n, &Vec::new()).is_err());
    }
    for (t, n) in [(0, 0), (5, 6), (5, 0), (0, 1)] {
        assert!(matches!(
            check_tree(&[], t, th, n, th),
            Err(TlogError::InvalidInputs(_))
        ));
        assert!(prove_tree(t, n, &Vec::new()).is_err());
    }
    // Trees of equal size need an empty proof and equal hashes.
    check_tree(&[], 7, th, 7, th).unwrap();
    assert!(check_tree(&[th], 7, th, 7, th).is_err());
    assert!(check_tree(&[], 7, th, 7, [1; 32]).is_err());
    // Huge sizes must not overflow or panic.
    let big = i64::MAX;
    assert!(check_record(&[th; 70], big, th, big - 1, th).is_err());
    assert!(check_tree(&[th; 70], big, th, big / 3, th).is_err());
    assert!(check_record(&[], 1, th, 0, th).is_ok());
}

/// (path, tile); an `h` of zero marks a path that must be rejected. From Go's `tile_test.go`.
const TILE_PATHS: &[(&str, Tile)] = &[
    (
        "tile/4/0/001",
        Tile {
            h: 4,
            l: 0,
            n: 1,
            w: 16,
        },
    ),
    (
        "tile/4/0/001.p/5",
        Tile {
            h: 4,
            l: 0,
            n: 1,
            w: 5,
        },
    ),
    (
        "tile/3/5/x123/x456/078",
        Tile {
            h: 3,
            l: 5,
            n: 123456078,
            w: 8,
        },
    ),
    (
        "tile/3/5/x123/x456/078.p/2",
        Tile {
            h: 3,
            l: 5,
            n: 123456078,
            w: 2,
        },
    ),
    (
        "tile/1/0/x003/x057/500",
        Tile {
            h: 1,
            l: 0,
            n: 3057500,
            w: 2,
        },
    ),
    (
        "tile/3/5/123/456/078",
        Tile {
            h: 0,
            l: 0,
            n: 0,
            w: 0,
        },
    ),
    (
        "tile/3/-1/123/456/078",
        Tile {
            h: 0,
            l: 0,
            n: 0,
            w: 0,
        },
    ),
    (
        "tile/1/data/x003/x057/500",
        Tile {
            h: 1,
            l: -1,
            n: 3057500,
            w: 2,
        },
    ),
    (
        "tile/8/0/x001/234.p/5",
        Tile {
            h: 8,
            l: 0,
            n: 1234,
            w: 5,
        },
    ),
    (
        "tile/8/data/000.p/1",
        Tile {
            h: 8,
            l: -1,
            n: 0,
            w: 1,
        },
    ),
    (
        "tile/30/63/x999/999",
        Tile {
            h: 30,
            l: 63,
            n: 999999,
            w: 1 << 30,
        },
    ),
];

#[test]
fn tile_paths() {
    for (path, tile) in TILE_PATHS {
        if tile.h > 0 {
            assert_eq!(tile.path(), *path);
            assert_eq!(tile.to_string(), *path);
            assert_eq!(Tile::parse(path).unwrap(), *tile, "{path}");
        } else {
            assert!(Tile::parse(path).is_err(), "{path}");
        }
    }
}

#[test]
fn malformed_tile_paths() {
    for path in [
        "",
        "tile",
        "tile/8/0",
        "tile/8/0/",
        "tiles/8/0/000",
        "/tile/8/0/000",
        "tile/8/0/000/",
        "tile/0/0/000",
        "tile/31/0/000",
        "tile/-8/0/000",
        "tile/+8/0/000",
        "tile/08/0/000",
        "tile/8/00/000",
        "tile/8/+0/000",
        "tile/8/4294967296/000",
        "tile/8/0/00",
        "tile/8/0/0000",
        "tile/8/0/1000",
        "tile/8/0/x000",
        "tile/8/0/x000/001",
        "tile/8/0/001/x234",
        "tile/8/0/x01/234",
        "tile/8/0/x-01/234",
        "tile/8/0/-01",
        "tile/8/0/+01",
        "tile/8/0/xx001/234",
        "tile/8/0/000.p/0",
        "tile/8/0/000.p/256",
        "tile/8/0/000.p/300",
        "tile/8/0/000.p/05",
        "tile/8/0/000.p/",
        "tile/8/0/000.p",
        "tile/8/0/000.p/5/6",
        "tile/8/0.p/5",
        "tile/8/data.p/5",
        "tile/8/DATA/000",
        "tile/8/0/x999/x999/x999/x999/x999/x999/x999/999",
        "tile/8/0/x009/x223/x372/x036/x854/x775/808",
        "tile/8/0/\u{663}00",
    ] {
        assert!(Tile::parse(path).is_err(), "{path:?}");
    }
    // The largest tile number that fits is fine.
    let max = "tile/8/0/x009/x223/x372/x036/x854/x775/807";
    assert_eq!(Tile::parse(max).unwrap().n, i64::MAX);
}

#[test]
fn path_of_odd_tiles_does_not_panic() {
    for tile in [
        Tile {
            h: 0,
            l: 0,
            n: 0,
            w: 0,
        },
        Tile {
            h: -1,
            l: -5,
            n: -1234,
            w: -1,
        },
        Tile {
            h: 64,
            l: i32::MAX,
            n: i64::MIN,
            w: i32::MIN,
        },
        Tile {
            h: 63,
            l: 0,
            n: i64::MAX,
            w: 1,
        },
    ] {
        let path = tile.path();
        assert!(path.starts_with("tile/"));
        assert!(Tile::parse(&path).is_err() || tile.h > 0);
    }
    assert_eq!(
        Tile {
            h: 2,
            l: 0,
            n: -5,
            w: 4
        }
        .path(),
        "tile/2/0/-05",
        "Go's %03d of a negative number"
    );
}

#[test]
fn new_tiles_for_size() {
    for (old, new, want) in [
        (1, 1, 0),
        (100, 101, 1),
        (1023, 1025, 3),
        (1024, 1030, 1),
        (1030, 2000, 1),
        (1030, 10000, 10),
        (49516517, 49516586, 3),
    ] {
        assert_eq!(new_tiles(10, old, new).unwrap().len(), want, "{old}-{new}");
    }
    assert!(matches!(
        new_tiles(0, 0, 1),
        Err(TlogError::InvalidHeight(0))
    ));
    assert!(matches!(
        new_tiles(31, 0, 1),
        Err(TlogError::InvalidHeight(31))
    ));
    assert!(new_tiles(8, -1, 1).is_err());
    assert!(new_tiles(8, 5, 5).unwrap().is_empty());
    let top = new_tiles(30, i64::MAX - 1, i64::MAX).unwrap();
    let want = "tile/30/0/x008/x589/x934/591.p/1073741823";
    assert_eq!(top.iter().map(Tile::path).collect::<Vec<_>>(), [want]);
}

#[test]
fn new_tiles_match_go() {
    let paths = |tiles: Vec<Tile>| tiles.iter().map(Tile::path).collect::<Vec<_>>();
    assert_eq!(
        paths(new_tiles(8, 0, 1000).unwrap()),
        [
            "tile/8/0/000",
            "tile/8/0/001",
            "tile/8/0/002",
            "tile/8/0/003.p/232",
            "tile/8/1/000.p/3"
        ]
    );
    assert_eq!(
        paths(new_tiles(8, 257, 1000).unwrap()),
        [
            "tile/8/0/001",
            "tile/8/0/002",
            "tile/8/0/003.p/232",
            "tile/8/1/000.p/3"
        ]
    );
    let real = paths(new_tiles(8, 71056177, 72097574).unwrap());
    assert_eq!(real.len(), 4087);
    assert_eq!(
        real[..4],
        [
            "tile/8/0/x277/563",
            "tile/8/0/x277/564",
            "tile/8/0/x277/565",
            "tile/8/0/x277/566"
        ]
    );
    assert_eq!(
        real[real.len() - 4..],
        [
            "tile/8/1/x001/098",
            "tile/8/1/x001/099",
            "tile/8/1/x001/100.p/31",
            "tile/8/2/004.p/76"
        ]
    );
}

#[test]
fn tile_for_index_matches_go() {
    // (index, level, n, path for height 8, path for height 2), from Go.
    let cases: &[(i64, i32, i64, &str, &str)] = &[
        (0, 0, 0, "tile/8/0/000.p/1", "tile/2/0/000.p/1"),
        (1, 0, 1, "tile/8/0/000.p/2", "tile/2/0/000.p/2"),
        (2, 1, 0, "tile/8/0/000.p/2", "tile/2/0/000.p/2"),
        (3, 0, 2, "tile/8/0/000.p/3", "tile/2/0/000.p/3"),
        (1000, 2, 125, "tile/8/0/001.p/248", "tile/2/1/031.p/2"),
        (
            142112341,
            0,
            71056177,
            "tile/8/0/x277/563.p/50",
            "tile/2/0/x017/x764/044.p/2",
        ),
        (
            142112342,
            1,
            35528088,
            "tile/8/0/x277/563.p/50",
            "tile/2/0/x017/x764/044.p/2",
        ),
        (
            12642296,
            9,
            12345,
            "tile/8/1/096.p/116",
            "tile/2/4/x006/172",
        ),
        (1048572, 17, 3, "tile/8/2/000.p/8", "tile/2/8/001"),
    ];
    for &(index, level, n, p8, p2) in cases {
        assert_eq!(split_stored_hash_index(index).unwrap(), (level, n));
        assert_eq!(stored_hash_index(level, n), index);
        assert_eq!(tile_for_index(8, index).unwrap().path(), p8);
        assert_eq!(tile_for_index(2, index).unwrap().path(), p2);
    }
    assert!(matches!(
        tile_for_index(0, 5),
        Err(TlogError::InvalidHeight(0))
    ));
    assert!(matches!(
        tile_for_index(8, -5),
        Err(TlogError::InvalidIndex(-5))
    ));
}

#[test]
fn hash_from_tile_errors() {
    let log = Log::with_records(20, hello);
    let tile = tile_for_index(2, 5).unwrap();
    let data = read_tile_data(&tile, &log.hashes).unwrap();
    assert_eq!(hash_from_tile(&tile, &data, 5).unwrap(), log.hashes[5]);
    let wide = Tile { w: 4, ..tile };
    let wide_data = read_tile_data(&wide, &log.hashes).unwrap();
    assert_eq!(hash_from_tile(&wide, &wide_data, 5).unwrap(), log.hashes[5]);
    assert!(matches!(
        hash_from_tile(&tile, &data[1..], 5),
        Err(TlogError::ShortTileData { .. })
    ));
    assert!(matches!(
        hash_from_tile(&tile, &data, 30),
        Err(TlogError::WrongTile { .. })
    ));
    for bad in [
        Tile { h: 0, ..tile },
        Tile { h: 31, ..tile },
        Tile { l: -1, ..tile },
        Tile { l: 64, ..tile },
        Tile { w: 0, ..tile },
        Tile { w: 5, ..tile },
    ] {
        assert!(matches!(
            hash_from_tile(&bad, &wide_data, 5),
            Err(TlogError::InvalidTile(_))
        ));
    }
}

#[test]
fn format_and_parse_tree() {
    let tree = Tree {
        n: 123456789012,
        hash: record_hash(b"hello world"),
    };
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    assert_eq!(format_tree(&tree), golden);
    assert_eq!(parse_tree(golden.as_bytes()).unwrap(), tree);
    for extra in ["JOE", "JOE\n", &"JOE\n".repeat(1000)] {
        let text = format!("{golden}{extra}");
        assert_eq!(parse_tree(text.as_bytes()).unwrap(), tree);
    }
    // Go's base64 decoder skips carriage returns.
    let cr = golden.replace("=\n", "=\r\n");
    assert_eq!(parse_tree(cr.as_bytes()).unwrap(), tree);
}

#[test]
fn malformed_trees() {
    let golden =
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let too_long = format!("{golden}{}", "x".repeat(1_000_000));
    for bad in [
        format!("not-{golden}"),
        "go.sum database tree\n0xabcdef\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
        "go.sum database tree\n123456789012\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBTOOBIG=\n"
            .into(),
        golden.replace("123456789012", "+123456789012"),
        golden.replace("123456789012", "0123456789012"),
        golden.replace("123456789012", "-1"),
        golden.replace("123456789012", "-0"),
        golden.replace("123456789012", ""),
        golden.replace("123456789012", "99999999999999999999"),
        golden.replace("b0=\n", "b0\n"),
        golden.replace("b0=\n", "\n"),
        golden.replace("Tszz", "Tszz Tszz"),
        golden.trim_end().to_owned(),
        "go.sum database tree v2\n1\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n".into(),
        too_long,
        String::new(),
    ] {
        assert!(
            matches!(parse_tree(bad.as_bytes()), Err(TlogError::MalformedTree)),
            "{:?}",
            &bad[..bad.len().min(80)]
        );
    }
    assert!(parse_tree(b"go.sum database tree\n1\n\xff\n").is_err());
}

#[test]
fn parse_records() {
    let msg = b"123456789012\nhello, world\n\njunk on end\x01\xff";
    let (id, text, rest) = parse_record(msg).unwrap();
    assert_eq!(id, 123456789012);
    assert_eq!(text, b"hello, world\n");
    assert_eq!(rest, b"junk on end\x01\xff");
    let (_, _, rest) = parse_record(b"123456789012\nhello, world\n\n").unwrap();
    assert!(rest.is_empty());
    // Go's ParseInt takes a sign.
    assert_eq!(parse_record(b"-5\na\n\n").unwrap().0, -5);
    assert_eq!(parse_record(b"+5\na\n\n").unwrap().0, 5);
    for bad in [
        &b"not-123456789012\nhello, world\n\n"[..],
        b"123\nhello\x01world\n\n",
        b"123\nhello\xffworld\n\n",
        b"123\nhello world\n",
        b"0x123\nhello world\n\n",
        b"123",
        b"\nhello\n\n",
        b"123\n\n",
        b"99999999999999999999\nhello\n\n",
        b"1 2\nhello\n\n",
        b"",
    ] {
        assert!(
            matches!(parse_record(bad), Err(TlogError::MalformedRecord)),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn parse_and_format_hash() {
    let hash = record_hash(b"hello world");
    assert_eq!(parse_hash(&format_hash(&hash)).unwrap(), hash);
    for bad in [
        "",
        "AAAA",
        "TszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0",
        "!",
    ] {
        assert!(matches!(parse_hash(bad), Err(TlogError::MalformedHash)));
    }
}

#[test]
fn tree_hashes_match_go() {
    let log = Log::with_records(1000, hello);
    for &(n, want) in GO_TREE_HASHES {
        assert_eq!(tree_hash(n, &log.hashes).unwrap(), h(want), "size {n}");
    }
}

#[test]
fn proofs_match_go() {
    let log = Log::with_records(1000, hello);
    let trees: HashMap<i64, Hash> = GO_TREE_HASHES.iter().map(|&(n, s)| (n, h(s))).collect();
    let th = trees[&1000];
    for &(t, n, want) in GO_RECORD_PROOFS {
        let want = hs(want);
        assert_eq!(prove_record(t, n, &log.hashes).unwrap(), want, "{t} {n}");
        let tree = tree_hash(t, &log.hashes).unwrap();
        check_record(&want, t, tree, n, log.leaves[n as usize]).unwrap();
    }
    for &(t, n, want) in GO_TREE_PROOFS {
        let want = hs(want);
        assert_eq!(prove_tree(t, n, &log.hashes).unwrap(), want, "{t} {n}");
        let old = tree_hash(n, &log.hashes).unwrap();
        let new = tree_hash(t, &log.hashes).unwrap();
        check_tree(&want, t, new, n, old).unwrap();
    }
    check_tree(&hs(GO_TREE_PROOFS[0].2), 1000, th, 257, trees[&257]).unwrap();
}

/// A small deterministic generator for the robustness tests.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Mostly small numbers, sometimes extremes.
    fn int(&mut self) -> i64 {
        match self.below(6) {
            0 => [0, 1, -1, i64::MAX, i64::MIN, i64::MAX - 1][self.below(6) as usize],
            1 => self.next() as i64,
            2 => -(self.below(100) as i64),
            _ => self.below(300) as i64,
        }
    }

    fn mutate(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=self.below(3) {
            let at = self.below(out.len() as u64 + 1) as usize;
            let byte = b"/.px0189\n=+-a \xff"[self.below(15) as usize];
            match self.below(4) {
                0 if at < out.len() => out[at] = byte,
                1 => out.insert(at, byte),
                2 if at < out.len() => {
                    out.remove(at);
                }
                _ => out.truncate(at),
            }
        }
        out
    }
}

#[test]
fn parsers_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let tree = b"go.sum database tree\n123\nTszzRgjTG6xce+z2AG31kAXYKBgQVtCSCE40HmuwBb0=\n";
    let record = b"12\nexample.com/m v1.0.0 h1:x=\n\ngo.sum database tree\n";
    for _ in 0..20_000 {
        let (path, _) = TILE_PATHS[rng.below(TILE_PATHS.len() as u64) as usize];
        let path = String::from_utf8_lossy(&rng.mutate(path.as_bytes())).into_owned();
        if let Ok(tile) = Tile::parse(&path) {
            assert_eq!(tile.path(), path);
        }
        let _ = parse_tree(&rng.mutate(tree));
        let _ = parse_record(&rng.mutate(record));
    }
}

#[test]
fn index_math_never_panics() {
    let mut rng = Rng(7);
    for _ in 0..20_000 {
        let index = rng.int();
        if let Ok((level, n)) = split_stored_hash_index(index) {
            assert_eq!(stored_hash_index(level, n), index);
        }
        let _ = stored_hash_index(rng.int() as i32, rng.int());
        let _ = stored_hash_count(rng.int());
        let h = rng.int() as i32 % 40;
        let _ = tile_for_index(h, index);
        let tile = Tile {
            h,
            l: rng.int() as i32,
            n: rng.int(),
            w: rng.int() as i32,
        };
        let _ = tile.path();
        let data = vec![0u8; rng.below(300) as usize];
        let _ = hash_from_tile(&tile, &data, index);
        let old = rng.int();
        let _ = new_tiles(h, old, old.saturating_add(rng.below(5000) as i64));
    }
}

#[test]
fn proof_checks_never_panic() {
    let mut rng = Rng(11);
    let hashes = vec![[7u8; 32]; 80];
    for _ in 0..20_000 {
        let (t, n) = (rng.int(), rng.int());
        let proof = &hashes[..rng.below(80) as usize];
        assert!(check_record(proof, t, [0; 32], n, [7; 32]).is_err() || t == 1);
        let _ = check_tree(proof, t, [0; 32], n, [7; 32]);
        let _ = prove_record(t, n, &hashes);
        let _ = prove_tree(t, n, &hashes);
        let _ = tree_hash(n, &hashes);
    }
}

#[test]
fn tile_hash_reader_never_panics() {
    /// Serves tiles of random content and sometimes the wrong size.
    struct Junk(Cell<u64>, i32);
    impl TileReader for Junk {
        fn height(&self) -> i32 {
            self.1
        }
        fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
            let mut rng = Rng(self.0.get());
            let out = tiles
                .iter()
                .map(|t| {
                    let len = usize::try_from(t.w).unwrap_or(0) * HASH_SIZE;
                    let len = if rng.below(10) == 0 { len + 1 } else { len };
                    (0..len).map(|_| rng.below(3) as u8).collect()
                })
                .collect();
            self.0.set(rng.next());
            Ok(out)
        }
        fn save_tiles(&self, _: &[Tile], _: &[Vec<u8>]) {}
    }
    let mut rng = Rng(13);
    for _ in 0..3_000 {
        let reader = Junk(Cell::new(rng.next() | 1), rng.int() as i32 % 12);
        let size = if rng.below(4) == 0 {
            rng.int()
        } else {
            rng.int() % 1000
        };
        let tree = Tree {
            n: size,
            hash: [0; 32],
        };
        let indexes: Vec<i64> = (0..rng.below(4)).map(|_| rng.int()).collect();
        let _ = tile_hash_reader(tree, &reader).read_hashes(&indexes);
    }
}

#[test]
fn real_sum_golang_org_record() {
    let (id, text, note) = parse_record(REAL_LOOKUP.as_bytes()).unwrap();
    assert_eq!(id, 71056177);
    assert!(text.starts_with(b"golang.org/x/mod v0.43.0 h1:"));
    let tree_text = note
        .split(|&b| b == b'\n')
        .take(3)
        .collect::<Vec<_>>()
        .join(&b'\n');
    let tree = parse_tree(&[tree_text.as_slice(), b"\n"].concat()).unwrap();
    assert_eq!(tree.n, 72097574);
    let proof = hs(REAL_PROOF);
    check_record(&proof, tree.n, tree.hash, id, record_hash(text)).unwrap();
    assert!(check_record(&proof, tree.n, tree.hash, id + 1, record_hash(text)).is_err());
    assert!(check_record(&proof, tree.n, tree.hash, id, record_hash(b"x\n")).is_err());
}
