//! Tiles: the go.sum database's unit of storage and transfer, their paths, and [`TileHashReader`],
//! which reads stored hashes from tiles after authenticating them against a signed tree.

use super::*;

/// A tile: `w` consecutive hashes at level `h * l` of the tree, starting at hash `n << h` of
/// that level. A full tile has `w == 1 << h`. Level `l == -1` holds record data instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Tile {
    /// Height of the tile, 1..=30.
    pub h: i32,
    /// Level of the tile in the tiling, -1 (data) ..= 63.
    pub l: i32,
    /// Number of the tile within its level.
    pub n: i64,
    /// Width: number of hashes in the tile, 1..=2^h.
    pub w: i32,
}

impl Tile {
    /// The tile's path, such as `tile/8/0/x001/234.p/5` (`.p/<w>` only for partial tiles,
    /// `data` for level -1), exactly as Go's `Tile.Path`.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut number = format!("{:03}", n % PATH_BASE);
        while n >= PATH_BASE {
            n /= PATH_BASE;
            number = format!("x{:03}/{number}", n % PATH_BASE);
        }
        let partial = if i64::from(self.w) == go_shl(1, i64::from(self.h)) {
            String::new()
        } else {
            format!(".p/{}", self.w)
        };
        let level = if self.l == -1 {
            "data".to_owned()
        } else {
            self.l.to_string()
        };
        format!("tile/{}/{level}/{number}{partial}", self.h)
    }

    /// Parses a tile path as Go's `ParseTilePath`: only the exact form [`Tile::path`] produces
    /// is accepted.
    pub fn parse(path: &str) -> Result<Tile, TlogError> {
        parse_tile_path(path).ok_or_else(|| TlogError::MalformedTilePath(path.to_owned()))
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

fn parse_tile_path(path: &str) -> Option<Tile> {
    let mut fields: Vec<&str> = path.split('/').collect();
    if fields.len() < 4 || fields.first() != Some(&"tile") {
        return None;
    }
    let h: i32 = fields.get(1)?.parse().ok()?;
    let l = *fields.get(2)?;
    let is_data = l == "data";
    let l: i32 = if is_data { 0 } else { l.parse().ok()? };
    if !(1..=MAX_TILE_HEIGHT).contains(&h) || l < 0 {
        return None;
    }
    let mut w = 1i32 << h;
    let dot_p = fields.len() - 2;
    if let Some(number) = fields.get(dot_p)?.strip_suffix(".p") {
        let partial: i32 = fields.last()?.parse().ok()?;
        if partial <= 0 || partial >= w {
            return None;
        }
        w = partial;
        *fields.get_mut(dot_p)? = number;
        fields.pop();
    }
    let mut n = 0i64;
    for part in fields.get(3..)? {
        let digits: i64 = part.strip_prefix('x').unwrap_or(part).parse().ok()?;
        if !(0..PATH_BASE).contains(&digits) {
            return None;
        }
        n = n.checked_mul(PATH_BASE)?.checked_add(digits)?;
    }
    let l = if is_data { -1 } else { l };
    let tile = Tile { h, l, n, w };
    (tile.path() == path).then_some(tile)
}

/// The tile of height `h` and least width that holds the hash at stored index `index`.
pub fn tile_for_index(h: i32, index: i64) -> Result<Tile, TlogError> {
    tile_and_range(h, index).map(|(tile, _)| tile)
}

/// [`tile_for_index`], plus the byte range of the tile's data whose [`tile_hash`] is the hash.
pub(super) fn tile_and_range(
    h: i32,
    index: i64,
) -> Result<(Tile, std::ops::Range<usize>), TlogError> {
    if !(1..=MAX_TILE_HEIGHT).contains(&h) {
        return Err(TlogError::InvalidHeight(h));
    }
    let (level, n) = split_stored_hash_index(index)?;
    let l = level / h;
    let level = i64::from(level - l * h); // level within the tile
    let h64 = i64::from(h);
    let tile_n = go_shr(go_shl(n, level), h64);
    let within = n - go_shr(go_shl(tile_n, h64), level); // n within the tile at that level
    let start = go_shl(within, level);
    let end = go_shl(within + 1, level);
    let bad = || TlogError::BadMath(format!("tile for index {index}"));
    let w = i32::try_from(end).map_err(|_| bad())?;
    let start = usize::try_from(start).map_err(|_| bad())? * HASH_SIZE;
    let end = usize::try_from(end).map_err(|_| bad())? * HASH_SIZE;
    let tile = Tile { h, l, n: tile_n, w };
    Ok((tile, start..end))
}

/// The hash at stored index `index`, read from `data` of tile `t`, which must be
/// `tile_for_index(t.h, index)` or a wider version of it.
pub fn hash_from_tile(t: &Tile, data: &[u8], index: i64) -> Result<Hash, TlogError> {
    let full = go_shl(1, i64::from(t.h));
    if !(1..=MAX_TILE_HEIGHT).contains(&t.h)
        || !(0..64).contains(&t.l)
        || t.w < 1
        || i64::from(t.w) > full
    {
        return Err(TlogError::InvalidTile(t.path()));
    }
    let width = usize::try_from(t.w).unwrap_or(usize::MAX);
    if data.len() < width.saturating_mul(HASH_SIZE) {
        return Err(TlogError::ShortTileData {
            len: data.len(),
            tile: t.path(),
        });
    }
    let (t1, range) = tile_and_range(t.h, index)?;
    if t.l != t1.l || t.n != t1.n || t.w < t1.w {
        return Err(TlogError::WrongTile {
            index,
            want: t1.path(),
            got: t.path(),
        });
    }
    let slice = data
        .get(range)
        .ok_or_else(|| TlogError::BadMath("hash_from_tile".into()))?;
    tile_hash(slice)
}

/// The root hash of the complete subtree whose leaf hashes are `data` (a power of two of them).
fn tile_hash(data: &[u8]) -> Result<Hash, TlogError> {
    if let Ok(hash) = Hash::try_from(data) {
        return Ok(hash);
    }
    if data.len() < 2 * HASH_SIZE || !data.len().is_multiple_of(2 * HASH_SIZE) {
        return Err(TlogError::BadMath(format!(
            "tile hash of {} bytes",
            data.len()
        )));
    }
    let (left, right) = data.split_at(data.len() / 2);
    Ok(node_hash(tile_hash(left)?, tile_hash(right)?))
}

/// The tiles of height `h` that change when the tree grows from `old_size` to `new_size`
/// records: what a log publishes, or a mirror must fetch, for the new tree head. The list has
/// about `(new_size - old_size) / 2^h` entries.
pub fn new_tiles(h: i32, old_size: i64, new_size: i64) -> Result<Vec<Tile>, TlogError> {
    if !(1..=MAX_TILE_HEIGHT).contains(&h) {
        return Err(TlogError::InvalidHeight(h));
    }
    if old_size < 0 || new_size < 0 {
        return Err(TlogError::InvalidInputs("new_tiles"));
    }
    let h64 = i64::from(h);
    let mut tiles = Vec::new();
    let mut level = 0i32;
    while go_shr(new_size, h64 * i64::from(level)) > 0 {
        let old_n = go_shr(old_size, h64 * i64::from(level));
        let new_n = go_shr(new_size, h64 * i64::from(level));
        if old_n != new_n {
            for n in (old_n >> h)..(new_n >> h) {
                tiles.push(Tile {
                    h,
                    l: level,
                    n,
                    w: 1 << h,
                });
            }
            let n = new_n >> h;
            let w = i32::try_from(new_n - (n << h)).unwrap_or(0);
            if w > 0 {
                tiles.push(Tile { h, l: level, n, w });
            }
        }
        level += 1;
    }
    Ok(tiles)
}

/// The data of tile `t` assembled from hashes read through `r` (for a server or for tests).
pub fn read_tile_data<R: HashReader + ?Sized>(t: &Tile, r: &R) -> Result<Vec<u8>, TlogError> {
    if !(1..=MAX_TILE_HEIGHT).contains(&t.h) || t.l < 0 || t.w < 0 || t.w > 1 << t.h {
        return Err(TlogError::InvalidTile(t.path()));
    }
    let size = if t.w == 0 {
        1i64 << t.h
    } else {
        i64::from(t.w)
    };
    let start = go_shl(t.n, i64::from(t.h));
    let level = t.h * t.l;
    let indexes: Vec<i64> = (0..size)
        .map(|i| stored_hash_index(level, start.wrapping_add(i)))
        .collect();
    Ok(read_exact(r, &indexes)?.concat())
}

/// Reads tiles of a log, typically from a cache or the network.
pub trait TileReader {
    /// Height of the tiles this reader serves.
    fn height(&self) -> i32;

    /// Returns the data of each tile, in order; tile `t` must have `t.w * 32` bytes. The data
    /// may be unauthenticated and must not be persisted until [`TileReader::save_tiles`].
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError>;

    /// Reports tiles (and their data, as read) that were authenticated against the tree hash and
    /// may now be persisted.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]);
}

/// A [`HashReader`] for a tree that reads hashes out of tiles and authenticates every tile it
/// reads against the tree hash before using or saving it.
pub struct TileHashReader<'a, R: TileReader + ?Sized> {
    tree: Tree,
    reader: &'a R,
}

/// A [`TileHashReader`] reading the tiles of `tree` through `reader`.
pub fn tile_hash_reader<R: TileReader + ?Sized>(tree: Tree, reader: &R) -> TileHashReader<'_, R> {
    TileHashReader::new(tree, reader)
}

impl<'a, R: TileReader + ?Sized> TileHashReader<'a, R> {
    /// A reader of the hashes of `tree`, whose tiles are read through `reader`.
    pub fn new(tree: Tree, reader: &'a R) -> Self {
        Self { tree, reader }
    }
}

impl<R: TileReader + ?Sized> HashReader for TileHashReader<'_, R> {
    fn read_hashes(&self, indexes: &[i64]) -> Result<Vec<Hash>, TlogError> {
        let mut plan = TilePlan::for_tree(self.reader.height(), self.tree.n)?;
        for &index in indexes {
            plan.add_index(index)?;
        }
        let data = self.reader.read_tiles(&plan.tiles)?;
        plan.check_sizes(&data)?;
        plan.authenticate(&data, self.tree.hash)?;
        self.reader.save_tiles(&plan.tiles, &data);
        indexes
            .iter()
            .zip(&plan.index_tiles)
            .map(|(&index, &j)| {
                let (tile, bytes) = plan.tile(&data, j)?;
                hash_from_tile(tile, bytes, index).map_err(|e| {
                    TlogError::BadMath(format!("lost hash {index} of tree {}: {e}", plan.size))
                })
            })
            .collect()
    }
}

/// The tiles a [`TileHashReader`] fetches for one request, in an order where every tile comes
/// after the tile that authenticates it.
struct TilePlan {
    height: i32,
    size: i64,
    tiles: Vec<Tile>,
    positions: HashMap<Tile, usize>,
    /// Stored indexes of the complete subtrees whose hashes make up the tree hash.
    stx: Vec<i64>,
    /// `stx[i]` is read from `tiles[stx_tiles[i]]`.
    stx_tiles: Vec<usize>,
    /// The i'th requested index is read from `tiles[index_tiles[i]]`.
    index_tiles: Vec<usize>,
}

impl TilePlan {
    /// Plans the tiles needed to recompute the hash of a tree of `size` records.
    fn for_tree(height: i32, size: i64) -> Result<Self, TlogError> {
        let mut stx = Vec::new();
        sub_tree_index(0, size, &mut stx);
        let mut plan = TilePlan {
            height,
            size,
            tiles: Vec::new(),
            positions: HashMap::new(),
            stx: Vec::new(),
            stx_tiles: Vec::new(),
            index_tiles: Vec::new(),
        };
        for &index in &stx {
            let tile = tile_for_index(height, index)?;
            let tile = tile_parent(tile, 0, size)
                .ok_or_else(|| TlogError::BadMath(format!("no tile for index {index}")))?;
            let j = match plan.positions.get(&tile) {
                Some(&j) => j,
                None => plan.push(tile),
            };
            plan.stx_tiles.push(j);
        }
        plan.stx = stx;
        Ok(plan)
    }

    fn push(&mut self, tile: Tile) -> usize {
        let j = self.tiles.len();
        self.positions.insert(tile, j);
        self.tiles.push(tile);
        j
    }

    /// Plans the tile holding `index`, with any parent tiles needed to authenticate it.
    fn add_index(&mut self, index: i64) -> Result<(), TlogError> {
        if index >= stored_hash_index(0, self.size) {
            return Err(TlogError::IndexNotInTree);
        }
        let tile = tile_for_index(self.height, index)?;
        // Walk up to the nearest ancestor tile already planned; it authenticates the path.
        let mut k = 0;
        let found = loop {
            if let Some(j) = tile_parent(tile, k, self.size).and_then(|p| self.positions.get(&p)) {
                break *j;
            }
            k += 1;
            if k > 64 {
                return Err(TlogError::BadMath(format!(
                    "no parent tile for index {index}"
                )));
            }
        };
        if k == 0 {
            self.index_tiles.push(found);
            return Ok(());
        }
        // Then plan the tiles on the way back down, parents before children.
        for level in (0..k).rev() {
            let parent = tile_parent(tile, level, self.size)
                .filter(|p| i64::from(p.w) == 1i64 << p.h)
                .ok_or_else(|| {
                    TlogError::BadMath(format!("tile of index {index} in tree {}", self.size))
                })?;
            let j = self.push(parent);
            if level == 0 {
                self.index_tiles.push(j);
            }
        }
        Ok(())
    }

    fn tile<'d>(&self, data: &'d [Vec<u8>], j: usize) -> Result<(&Tile, &'d [u8]), TlogError> {
        match (self.tiles.get(j), data.get(j)) {
            (Some(tile), Some(bytes)) => Ok((tile, bytes)),
            _ => Err(TlogError::BadMath(format!("tile {j} not planned"))),
        }
    }

    /// Checks that the reader returned one tile of the right size per tile requested.
    fn check_sizes(&self, data: &[Vec<u8>]) -> Result<(), TlogError> {
        if data.len() != self.tiles.len() {
            return Err(TlogError::BadTileData(format!(
                "len={}, want {}",
                data.len(),
                self.tiles.len()
            )));
        }
        for (tile, bytes) in self.tiles.iter().zip(data) {
            let want = usize::try_from(tile.w).unwrap_or(0) * HASH_SIZE;
            if bytes.len() != want {
                return Err(TlogError::BadTileData(format!(
                    "{} len={}, want {want}",
                    tile.path(),
                    bytes.len()
                )));
            }
        }
        Ok(())
    }

    /// Authenticates the tree-hash tiles against `tree_hash`, then every later (full) tile
    /// against the hash its parent tile holds for it.
    fn authenticate(&self, data: &[Vec<u8>], tree_hash: Hash) -> Result<(), TlogError> {
        let mut hash: Option<Hash> = None;
        for (&index, &j) in self.stx.iter().zip(&self.stx_tiles).rev() {
            let (tile, bytes) = self.tile(data, j)?;
            let h = hash_from_tile(tile, bytes, index)?;
            hash = Some(hash.map_or(h, |right| node_hash(h, right)));
        }
        if hash.unwrap_or_default() != tree_hash {
            return Err(TlogError::InconsistentTile);
        }
        let first = self.stx_tiles.last().map_or(0, |&j| j + 1);
        for j in first..self.tiles.len() {
            let (tile, bytes) = self.tile(data, j)?;
            let lost = |what: &str| {
                TlogError::BadMath(format!("lost {what} of {tile} in tree {}", self.size))
            };
            let parent = tile_parent(*tile, 1, self.size).ok_or_else(|| lost("parent"))?;
            let p = *self.positions.get(&parent).ok_or_else(|| lost("parent"))?;
            let (parent, parent_bytes) = self.tile(data, p)?;
            let index = stored_hash_index(parent.l * parent.h, tile.n);
            let want = hash_from_tile(parent, parent_bytes, index).map_err(|_| lost("hash"))?;
            if tile_hash(bytes)? != want {
                return Err(TlogError::InconsistentTile);
            }
        }
        Ok(())
    }
}

/// The `k`th ancestor of tile `t` among the tiles of a tree of `size` records, trimmed to the
/// tree's width at that level, or `None` if the tree does not reach it.
pub(super) fn tile_parent(t: Tile, k: i32, size: i64) -> Option<Tile> {
    let h = i64::from(t.h);
    let l = t.l.checked_add(k)?;
    let n = go_shr(t.n, i64::from(k) * h);
    let mut w = go_shl(1, h);
    let max = go_shr(size, i64::from(l) * h);
    let start = go_shl(n, h);
    if start.wrapping_add(w) >= max {
        if start >= max {
            return None;
        }
        w = max - start;
    }
    Some(Tile {
        h: t.h,
        l,
        n,
        w: i32::try_from(w).ok()?,
    })
}
