//! The graph file: saving, mapping and checking. The format is described in
//! `src/igcore/_graph_file.py`; the Python layer reads and checks the header (sizes, section offsets
//! and lengths against the canonical layout) and hands the result here as a [`Layout`].

use std::fs::File;
use std::io::{BufWriter, Read, Write};

use memmap2::Mmap;

use super::{num_slots_for, Base, Csr, FollowGraph, OwnedArrays, EMPTY_SLOT};
use crate::error::{GraphError, Result};
use crate::id_index::id_hash;

pub const MAGIC: &[u8; 8] = b"IGFOLLOW";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 320;
const ALIGN: usize = 64;
const SECTIONS: usize = 10;
/// Bytes per item of each section, in file order.
const ITEM_SIZE: [usize; SECTIONS] = [8, 4, 8, 4, 8, 4, 8, 4, 8, 4];

/// Where each section of a file lies, as its (checked) header says.
#[derive(Clone, Debug)]
pub struct Layout {
    pub num_users: usize,
    pub num_follows: usize,
    pub timed: bool,
    pub offsets: [usize; SECTIONS],
    pub lengths: [usize; SECTIONS],
    pub crcs: [u32; SECTIONS],
    /// The header's bytes: `load` checks that the file it opens still starts with them.
    pub header: Vec<u8>,
}

/// The file's bytes: mapped, or read into memory aligned for every section's type.
enum Region {
    Map(Mmap),
    Heap(Vec<u64>),
}

impl Region {
    fn bytes(&self) -> &[u8] {
        match self {
            Region::Map(map) => map,
            // SAFETY: a `Vec<u64>`'s buffer is `len * 8` initialised bytes; u8 has no alignment needs.
            Region::Heap(words) => unsafe {
                std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), words.len() * 8)
            },
        }
    }
}

/// Integer types a section can hold: every bit pattern is a valid value.
trait Plain: Copy {}
impl Plain for i64 {}
impl Plain for u64 {}
impl Plain for u32 {}

/// `bytes` as a slice of `T`. Bytes that are not aligned for `T` or not a whole number of items give
/// an empty slice, which `verify` then reports as a corrupted section (`load` rules both out anyway).
fn cast<T: Plain>(bytes: &[u8]) -> &[T] {
    let size = std::mem::size_of::<T>();
    if bytes.as_ptr() as usize % std::mem::align_of::<T>() != 0 || bytes.len() % size != 0 {
        return &[];
    }
    // SAFETY: the pointer is aligned for T and the length a multiple of its size (checked above), the
    // bytes are initialised, and every bit pattern is a valid T (`Plain`). The slice borrows `bytes`,
    // so it cannot outlive them.
    unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), bytes.len() / size) }
}

/// The bytes of a slice of integers, as the file stores them (little-endian hosts only).
fn as_bytes<T: Plain>(items: &[T]) -> &[u8] {
    // SAFETY: integers have no padding, so their memory is `len * size_of::<T>()` initialised bytes.
    unsafe { std::slice::from_raw_parts(items.as_ptr().cast::<u8>(), std::mem::size_of_val(items)) }
}

/// A graph's sections inside a file's bytes.
pub(crate) struct FileArrays {
    region: Region,
    layout: Layout,
}

impl FileArrays {
    fn section<T: Plain>(&self, i: usize) -> &[T] {
        let (offset, length) = (self.layout.offsets[i], self.layout.lengths[i]);
        cast(&self.region.bytes()[offset..offset + length])
    }

    pub fn base(&self) -> Base<'_> {
        let timed = self.layout.timed;
        Base {
            ids: self.section(0),
            slots: self.section(1),
            out: Csr {
                offsets: self.section(2),
                targets: self.section(3),
                times: timed.then(|| self.section(6)),
                by_time: timed.then(|| self.section(7)),
            },
            inn: Csr {
                offsets: self.section(4),
                targets: self.section(5),
                times: timed.then(|| self.section(8)),
                by_time: timed.then(|| self.section(9)),
            },
        }
    }

    pub fn nbytes(&self) -> usize {
        self.layout.lengths.iter().sum()
    }

    pub fn to_owned_arrays(&self) -> OwnedArrays {
        let base = self.base();
        OwnedArrays {
            ids: base.ids.to_vec(),
            slots: base.slots.to_vec(),
            out_offsets: base.out.offsets.to_vec(),
            out_targets: base.out.targets.to_vec(),
            in_offsets: base.inn.offsets.to_vec(),
            in_sources: base.inn.targets.to_vec(),
            out_times: base.out.times.unwrap_or_default().to_vec(),
            out_by_time: base.out.by_time.unwrap_or_default().to_vec(),
            in_times: base.inn.times.unwrap_or_default().to_vec(),
            in_by_time: base.inn.by_time.unwrap_or_default().to_vec(),
        }
    }

    /// Checks every section's CRC-32 and the structure the kernels rely on: ids ascending, the id
    /// table finds each user, offsets ascending within bounds, neighbours in range and ascending
    /// (and never the row's own user), followers the exact transpose of following, times aligned.
    pub fn verify(&self) -> Result<()> {
        let sections = if self.layout.timed { SECTIONS } else { 6 };
        for (i, name) in SECTION_NAMES.iter().enumerate().take(sections) {
            let (offset, length) = (self.layout.offsets[i], self.layout.lengths[i]);
            let crc = crc32fast::hash(&self.region.bytes()[offset..offset + length]);
            if crc != self.layout.crcs[i] {
                return Err(GraphError::SectionChecksum { section: name }.into());
            }
        }
        verify_base(&self.base())
    }
}

const SECTION_NAMES: [&str; SECTIONS] = [
    "ids",
    "slots",
    "out_offsets",
    "out_targets",
    "in_offsets",
    "in_sources",
    "out_times",
    "out_by_time",
    "in_times",
    "in_by_time",
];

pub(crate) fn verify_base(base: &Base<'_>) -> Result<()> {
    let n = base.n();
    if base.out.offsets.len() != n + 1 || base.inn.offsets.len() != n + 1 {
        return Err(GraphError::CorruptOffsets.into());
    }
    if base.ids.windows(2).any(|w| w[0] >= w[1]) {
        return Err(GraphError::CorruptIdsNotAscending.into());
    }
    let slots = base.slots;
    if slots.len() != num_slots_for(n)
        || slots.iter().filter(|&&s| s != EMPTY_SLOT).count() != n
        || slots.iter().any(|&s| s != EMPTY_SLOT && s as usize >= n)
    {
        return Err(GraphError::CorruptIdTableNotOnce.into());
    }
    // Every user is found from its home slot; with no index twice and the table at most half full,
    // each probe sequence ends, so lookups of unknown ids end, too.
    let shift = 64 - slots.len().trailing_zeros();
    let mask = slots.len() - 1;
    for (i, &id) in base.ids.iter().enumerate() {
        let mut pos = (id_hash(id) >> shift) as usize;
        let mut probes = 0;
        while slots[pos] != i as u32 {
            probes += 1;
            if slots[pos] == EMPTY_SLOT || probes == slots.len() {
                return Err(GraphError::CorruptIdTableMissesUser.into());
            }
            pos = (pos + 1) & mask;
        }
    }
    for csr in [&base.out, &base.inn] {
        let m = csr.targets.len() as u64;
        if csr.offsets.len() != n + 1
            || csr.offsets[0] != 0
            || csr.offsets[n] != m
            || csr.offsets.windows(2).any(|w| w[0] > w[1])
        {
            return Err(GraphError::CorruptOffsets.into());
        }
        for u in 0..n as u32 {
            let row = csr.row(u);
            if row.targets.iter().any(|&v| v as usize >= n || v == u)
                || row.targets.windows(2).any(|w| w[0] >= w[1])
            {
                return Err(GraphError::CorruptFollowList.into());
            }
            if let (Some(times), Some(order)) = (row.times, row.by_time) {
                let d = row.targets.len();
                let key = |k: u32| {
                    let k = k as usize;
                    Some((std::cmp::Reverse(*times.get(k)?), *row.targets.get(k)?))
                };
                let mut seen_ok = order.iter().all(|&k| (k as usize) < d);
                if seen_ok {
                    // Newest first, ties by the smaller neighbour; strictly, so no position twice.
                    seen_ok = order.windows(2).all(|w| match (key(w[0]), key(w[1])) {
                        (Some(a), Some(b)) => a < b,
                        _ => false,
                    });
                }
                if !seen_ok {
                    return Err(GraphError::CorruptTimeOrder.into());
                }
            }
        }
    }
    if base.out.targets.len() != base.inn.targets.len() {
        return Err(GraphError::CorruptNotMirrored.into());
    }
    // Walk following in order: follower rows must fill up exactly as the transpose would fill them.
    // Every value is checked where it is used: a mapped file may change while this runs.
    let mut cursor = try_vec(n)?;
    cursor.extend_from_slice(&base.inn.offsets[..n]);
    let mirrors = |u: u32, k: usize, v: u32, cursor: &mut [u64]| -> Option<bool> {
        let at = *cursor.get(v as usize)?;
        cursor[v as usize] += 1;
        let row = base.out.row(u);
        Some(
            at < *base.inn.offsets.get(v as usize + 1)?
                && *base.inn.targets.get(at as usize)? == u
                && match (row.times, base.inn.times) {
                    (Some(out_t), Some(in_t)) => out_t.get(k)? == in_t.get(at as usize)?,
                    _ => true,
                },
        )
    };
    for u in 0..n as u32 {
        for (k, &v) in base.out.row(u).targets.iter().enumerate() {
            if mirrors(u, k, v, &mut cursor) != Some(true) {
                return Err(GraphError::CorruptNotMirrored.into());
            }
        }
    }
    Ok(())
}

fn out_of_memory() -> GraphError {
    GraphError::NoMemoryForGraph
}

/// An empty vector with room for `items`, or `OutOfMemory`: for sizes that come from a file.
fn try_vec<T>(items: usize) -> Result<Vec<T>> {
    let mut vec = Vec::new();
    vec.try_reserve_exact(items).map_err(|_| out_of_memory())?;
    Ok(vec)
}

/// Maps (or reads) a graph file whose header the caller has checked.
pub fn load(path: &str, layout: Layout, mmap: bool) -> Result<FollowGraph> {
    if cfg!(target_endian = "big") {
        return Err(GraphError::BigEndianMachine.into());
    }
    let io = |e: std::io::Error| GraphError::CannotRead {
        reason: e.to_string(),
    };
    let mut file = File::open(path).map_err(io)?;
    let region = if mmap {
        // SAFETY: the map is read-only, and `save` replaces files by renaming a new one over them, so
        // igcore never changes a mapped file's bytes. Another program may still write the file in
        // place: every value the kernels read from the map is then treated as untrusted (each index
        // is checked against its section before use, see `Csr::range` and `Base::lookup`), so such a
        // change gives wrong answers, never a read outside the map. Truncating the file in place
        // raises SIGBUS on the next read of a lost page, as for any mapped file (documented at
        // `FollowGraph.load`).
        Region::Map(unsafe { Mmap::map(&file) }.map_err(io)?)
    } else {
        let size =
            usize::try_from(file.metadata().map_err(io)?.len()).map_err(|_| out_of_memory())?;
        let mut words = try_vec(size.div_ceil(8))?;
        words.resize(size.div_ceil(8), 0_u64);
        let bytes = {
            // SAFETY: the buffer is `words.len() * 8` initialised bytes, borrowed only in this block.
            unsafe {
                std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), words.len() * 8)
            }
        };
        file.read_exact(&mut bytes[..size]).map_err(io)?;
        Region::Heap(words)
    };
    if region.bytes().get(..HEADER_SIZE) != Some(&layout.header[..]) {
        return Err(GraphError::GraphFileReplaced.into());
    }
    // The header was checked, but the file may have changed since: check every section lies within
    // the bytes we hold, aligned for its type.
    let total = region.bytes().len();
    let sections = if layout.timed { SECTIONS } else { 6 };
    for (i, &item) in ITEM_SIZE.iter().enumerate().take(sections) {
        let (offset, length) = (layout.offsets[i], layout.lengths[i]);
        let within = offset.checked_add(length).is_some_and(|end| end <= total);
        if !within || offset % item != 0 || length % item != 0 {
            return Err(GraphError::CorruptSectionOutsideFile.into());
        }
    }
    let n = layout.num_users;
    let m = layout.num_follows;
    let expected = [n, num_slots_for(n), n + 1, m, n + 1, m, m, m, m, m];
    for i in 0..sections {
        if expected[i].checked_mul(ITEM_SIZE[i]) != Some(layout.lengths[i]) {
            return Err(GraphError::CorruptSectionLength.into());
        }
    }
    Ok(FollowGraph::from_file(
        FileArrays {
            region,
            layout: layout.clone(),
        },
        layout.timed,
    ))
}

/// The 320-byte header of a graph with these sizes and section CRCs.
fn header(n: usize, m: usize, timed: bool, crcs: &[u32; SECTIONS]) -> (Vec<u8>, [usize; SECTIONS]) {
    let mut offsets = [0_usize; SECTIONS];
    let mut lengths = [0_usize; SECTIONS];
    let items = [n, num_slots_for(n), n + 1, m, n + 1, m, m, m, m, m];
    let mut position = HEADER_SIZE;
    for i in 0..if timed { SECTIONS } else { 6 } {
        position = position.div_ceil(ALIGN) * ALIGN;
        offsets[i] = position;
        lengths[i] = items[i] * ITEM_SIZE[i];
        position += lengths[i];
    }
    let mut head = Vec::with_capacity(HEADER_SIZE);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_le_bytes());
    head.extend_from_slice(&(timed as u32).to_le_bytes());
    for value in [n, m, num_slots_for(n)] {
        head.extend_from_slice(&(value as u64).to_le_bytes());
    }
    for i in 0..SECTIONS {
        head.extend_from_slice(&(offsets[i] as u64).to_le_bytes());
        head.extend_from_slice(&(lengths[i] as u64).to_le_bytes());
        head.extend_from_slice(&crcs[i].to_le_bytes());
        head.extend_from_slice(&0_u32.to_le_bytes());
    }
    let crc = crc32fast::hash(&head);
    head.extend_from_slice(&crc.to_le_bytes());
    head.resize(HEADER_SIZE, 0);
    (head, offsets)
}

impl FollowGraph {
    /// Writes the graph (updates folded in) to `path`.
    pub fn save(&self, path: &str) -> Result<()> {
        let graph = self.compacted()?;
        let base = graph.clean_base()?;
        let timed = graph.timed();
        let mut sections: Vec<&[u8]> = vec![
            as_bytes(base.ids),
            as_bytes(base.slots),
            as_bytes(base.out.offsets),
            as_bytes(base.out.targets),
            as_bytes(base.inn.offsets),
            as_bytes(base.inn.targets),
        ];
        if let (Some(ot), Some(ob), Some(it), Some(ib)) = (
            base.out.times,
            base.out.by_time,
            base.inn.times,
            base.inn.by_time,
        ) {
            sections.extend([as_bytes(ot), as_bytes(ob), as_bytes(it), as_bytes(ib)]);
        }
        let mut crcs = [0_u32; SECTIONS];
        for (crc, bytes) in crcs.iter_mut().zip(&sections) {
            *crc = crc32fast::hash(bytes);
        }
        let (head, offsets) = header(base.n(), base.out.targets.len(), timed, &crcs);
        let io = |e: std::io::Error| GraphError::CannotWrite {
            path: path.to_owned(),
            reason: e.to_string(),
        };
        let mut out = BufWriter::new(File::create(path).map_err(io)?);
        out.write_all(&head).map_err(io)?;
        let mut position = HEADER_SIZE;
        for (bytes, &offset) in sections.iter().zip(&offsets) {
            out.write_all(&vec![0_u8; offset - position]).map_err(io)?;
            out.write_all(bytes).map_err(io)?;
            position = offset + bytes.len();
        }
        out.flush().map_err(io)?;
        Ok(())
    }
}
