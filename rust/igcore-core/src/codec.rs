//! Compact id codecs: id lists and timeline entries as delta + zigzag + varint bytes, versioned and
//! checksummed (CRC-32).
//!
//! The wire format and every error message are specified in `src/igcore/_reference/codec.py`; this
//! module writes the same bytes and fails on the same bytes with the same messages.

use crate::error::{CodecError, Encoding, Error, Malformation, Result};
use crate::id_index::IdIndex;
use crate::numbers::{float_bits_key, key_float_bits};

const IDS_MAGIC: u8 = b'I';
const ENTRIES_MAGIC: u8 = b'E';
const VERSION: u8 = 1;
/// Flag bit of the entries format: scores are float64.
const FLOAT_SCORES: u8 = 0x01;
const CRC_BYTES: usize = 4;
/// The shortest encodings: magic, version, a one-byte count, the checksum (+ flags and an empty author
/// table for entries).
const SMALLEST_IDS: usize = 2 + 1 + CRC_BYTES;
const SMALLEST_ENTRIES: usize = 3 + 1 + 1 + CRC_BYTES;
/// The longest varint: 64 bits in 7-bit groups.
const MAX_VARINT: usize = 10;

#[inline(always)]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline(always)]
fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

#[inline(always)]
fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends the zigzag varints of the deltas of `values` (the first from 0), wrapping modulo 2**64.
fn write_deltas(out: &mut Vec<u8>, values: impl Iterator<Item = i64>) {
    let mut previous = 0_i64;
    for value in values {
        write_varint(out, zigzag(value.wrapping_sub(previous)));
        previous = value;
    }
}

/// The most bytes that a `header` and `varints` varints can take before the checksum: the capacity to
/// reserve so that encoding never reallocates. A count too large to compute leaves the vector to grow.
fn worst_case_len(header: usize, varints: Option<usize>) -> usize {
    varints
        .and_then(|v| v.checked_mul(MAX_VARINT))
        .and_then(|bytes| bytes.checked_add(header + CRC_BYTES))
        .unwrap_or(0)
}

fn seal(mut out: Vec<u8>) -> Vec<u8> {
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// An id list: `b"I" 0x01 | varint n | n zigzag varints of deltas | crc32`.
pub fn encode_ids(ids: &[i64]) -> Vec<u8> {
    // The count, then a delta per id.
    let mut out = Vec::with_capacity(worst_case_len(2, ids.len().checked_add(1)));
    out.extend_from_slice(&[IDS_MAGIC, VERSION]);
    write_varint(&mut out, ids.len() as u64);
    write_deltas(&mut out, ids.iter().copied());
    seal(out)
}

/// The ids of an id list. Errors as the reference lists them, in its order.
pub fn decode_ids(data: &[u8]) -> Result<Vec<i64>> {
    let kind = Encoding::IdList;
    check_envelope(data, kind, IDS_MAGIC, SMALLEST_IDS)?;
    let mut reader = Reader::new(data, kind, 2);
    let n = reader.count()?;
    let ids = reader.deltas(n)?;
    reader.finish()?;
    Ok(ids)
}

/// A column of scores to encode.
#[derive(Clone, Copy, Debug)]
pub enum ScoreColumn<'a> {
    Int(&'a [i64]),
    Float(&'a [f64]),
    /// Float64 scores given by their [`float_bits_key`]s (as a float timeline holds them).
    FloatKeys(&'a [i64]),
}

impl ScoreColumn<'_> {
    fn len(&self) -> usize {
        match self {
            ScoreColumn::Int(s) | ScoreColumn::FloatKeys(s) => s.len(),
            ScoreColumn::Float(s) => s.len(),
        }
    }
}

/// Entries as decoded: the score keys (the scores themselves for int64, [`float_bits_key`]s for
/// float64), post ids and author ids.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct DecodedEntries {
    pub float_scores: bool,
    pub keys: Vec<i64>,
    pub post_ids: Vec<i64>,
    pub author_ids: Vec<i64>,
}

impl DecodedEntries {
    /// The float64 scores (for entries with `float_scores`).
    pub fn float_values(&self) -> Vec<f64> {
        self.keys.iter().map(|&k| key_float_bits(k)).collect()
    }
}

/// Entries in columns: `b"E" 0x01 | flags | varint n | score deltas | post id deltas | varint m |
/// m distinct author deltas (first appearance) | n author indices | crc32`.
pub fn encode_entries(
    scores: ScoreColumn<'_>,
    post_ids: &[i64],
    author_ids: &[i64],
) -> Result<Vec<u8>> {
    let n = post_ids.len();
    if scores.len() != n || author_ids.len() != n {
        return Err(CodecError::EntryLengthsDiffer {
            scores: scores.len(),
            post_ids: n,
            author_ids: author_ids.len(),
        }
        .into());
    }
    // The count, n score deltas, n post id deltas, the table's length, at most n authors, n indices.
    let varints = n.checked_mul(4).and_then(|v| v.checked_add(2));
    let mut out = Vec::with_capacity(worst_case_len(3, varints));
    let flags = match scores {
        ScoreColumn::Int(_) => 0,
        ScoreColumn::Float(_) | ScoreColumn::FloatKeys(_) => FLOAT_SCORES,
    };
    out.extend_from_slice(&[ENTRIES_MAGIC, VERSION, flags]);
    write_varint(&mut out, n as u64);
    match scores {
        ScoreColumn::Int(keys) | ScoreColumn::FloatKeys(keys) => {
            write_deltas(&mut out, keys.iter().copied())
        }
        ScoreColumn::Float(floats) => {
            write_deltas(&mut out, floats.iter().map(|&f| float_bits_key(f)))
        }
    }
    write_deltas(&mut out, post_ids.iter().copied());
    // A home timeline has few distinct authors: a table of them, and a small index per entry.
    let mut table = IdIndex::with_capacity(64.min(n));
    let mut indices = Vec::with_capacity(n);
    for &author in author_ids {
        indices.push(table.insert(author)?.0);
    }
    write_varint(&mut out, table.len() as u64);
    write_deltas(&mut out, table.ids().iter().copied());
    for index in indices {
        write_varint(&mut out, u64::from(index));
    }
    Ok(seal(out))
}

/// The entries of an entries encoding. Errors as the reference lists them, in its order.
pub fn decode_entries(data: &[u8]) -> Result<DecodedEntries> {
    let kind = Encoding::Entries;
    check_envelope(data, kind, ENTRIES_MAGIC, SMALLEST_ENTRIES)?;
    let mut reader = Reader::new(data, kind, 3);
    let flags = data[2];
    if flags & !FLOAT_SCORES != 0 {
        return Err(malformed(
            kind,
            Malformation::UnknownEntryFlags { flags },
            2,
        ));
    }
    let n = reader.count()?;
    let keys = reader.deltas(n)?;
    let post_ids = reader.deltas(n)?;
    let table_at = reader.pos;
    let m = reader.count()?;
    if m > n || (n > 0 && m == 0) {
        let reason = Malformation::AuthorTableSizeWrong {
            size: m as u64,
            entries: n,
        };
        return Err(malformed(kind, reason, table_at));
    }
    let table = reader.deltas(m)?;
    let mut author_ids = Vec::with_capacity(n);
    for _ in 0..n {
        let at = reader.pos;
        let index = reader.varint()?;
        match usize::try_from(index).ok().and_then(|i| table.get(i)) {
            Some(&author) => author_ids.push(author),
            None => {
                let reason = Malformation::AuthorIndexBeyondTable { index, size: m };
                return Err(malformed(kind, reason, at));
            }
        }
    }
    reader.finish()?;
    Ok(DecodedEntries {
        float_scores: flags & FLOAT_SCORES != 0,
        keys,
        post_ids,
        author_ids,
    })
}

/// Size, magic, version and checksum, in that order.
fn check_envelope(data: &[u8], kind: Encoding, magic: u8, smallest: usize) -> Result<()> {
    if data.len() < smallest {
        return Err(CodecError::TruncatedEncoding {
            kind,
            size: data.len(),
            smallest,
        }
        .into());
    }
    if data[0] != magic {
        return Err(CodecError::BadMagic {
            kind,
            byte: data[0],
        }
        .into());
    }
    if data[1] != VERSION {
        return Err(CodecError::UnsupportedVersion {
            kind,
            version: data[1],
            supported: VERSION,
        }
        .into());
    }
    let (body, stored) = data.split_at(data.len() - CRC_BYTES);
    let stored = u32::from_le_bytes([stored[0], stored[1], stored[2], stored[3]]);
    if crc32fast::hash(body) != stored {
        return Err(CodecError::ChecksumMismatch { kind }.into());
    }
    Ok(())
}

#[cold]
fn malformed(kind: Encoding, reason: Malformation, at: usize) -> Error {
    CodecError::MalformedEncoding { kind, reason, at }.into()
}

/// Reads the varints between a header and the checksum.
struct Reader<'a> {
    /// The bytes before the checksum.
    body: &'a [u8],
    pos: usize,
    kind: Encoding,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8], kind: Encoding, start: usize) -> Self {
        Reader {
            body: &data[..data.len() - CRC_BYTES],
            pos: start,
            kind,
        }
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64> {
        // Fast path: one byte (small deltas, author indices).
        if let Some(&byte) = self.body.get(self.pos) {
            if byte < 0x80 {
                self.pos += 1;
                return Ok(u64::from(byte));
            }
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64> {
        let start = self.pos;
        let mut value = 0_u64;
        for i in 0..MAX_VARINT {
            let Some(&byte) = self.body.get(self.pos) else {
                return Err(malformed(self.kind, Malformation::TruncatedVarint, start));
            };
            self.pos += 1;
            if i == MAX_VARINT - 1 && byte > 1 {
                return Err(self.beyond_64_bits(start));
            }
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte < 0x80 {
                if byte == 0 && i > 0 {
                    return Err(malformed(self.kind, Malformation::OverlongVarint, start));
                }
                return Ok(value);
            }
        }
        Err(self.beyond_64_bits(start))
    }

    #[cold]
    fn beyond_64_bits(&self, at: usize) -> Error {
        malformed(self.kind, Malformation::VarintBeyond64Bits, at)
    }

    /// A count of values that follow; each takes at least one byte, so a count beyond the bytes left
    /// is refused before anything is allocated for it.
    fn count(&mut self) -> Result<usize> {
        let start = self.pos;
        let n = self.varint()?;
        let left = self.body.len() - self.pos;
        match usize::try_from(n) {
            Ok(n) if n <= left => Ok(n),
            _ => Err(malformed(
                self.kind,
                Malformation::CountExceedsBytesLeft { count: n, left },
                start,
            )),
        }
    }

    fn deltas(&mut self, n: usize) -> Result<Vec<i64>> {
        let mut values = Vec::with_capacity(n);
        let mut previous = 0_i64;
        for _ in 0..n {
            previous = previous.wrapping_add(unzigzag(self.varint()?));
            values.push(previous);
        }
        Ok(values)
    }

    fn finish(&self) -> Result<()> {
        let left = self.body.len() - self.pos;
        if left != 0 {
            return Err(malformed(
                self.kind,
                Malformation::BytesAfterLastValue { left },
                self.pos,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(err: Error) -> String {
        err.to_string()
    }

    #[test]
    fn zigzag_maps_small_signed_values_to_small_unsigned_ones() {
        let pairs = [
            (0, 0),
            (-1, 1),
            (1, 2),
            (-2, 3),
            (i64::MAX, u64::MAX - 1),
            (i64::MIN, u64::MAX),
        ];
        for (signed, unsigned) in pairs {
            assert_eq!(zigzag(signed), unsigned);
            assert_eq!(unzigzag(unsigned), signed);
        }
    }

    #[test]
    fn id_lists_round_trip_including_extremes_and_wrapping_deltas() {
        let lists: [&[i64]; 5] = [
            &[],
            &[0],
            &[i64::MIN, i64::MAX, i64::MIN, 0, -1],
            &[5, 5, 5],
            &[1_700_000_000_000, 1_699_999_999_000, 1_700_000_000_500],
        ];
        for ids in lists {
            assert_eq!(decode_ids(&encode_ids(ids)).unwrap(), ids);
        }
    }

    #[test]
    fn the_id_list_layout_is_the_documented_one() {
        // magic, version, count 3, zigzag deltas 10 -> 20, -3 -> 5, 0 -> 0, then the CRC-32 of it all.
        let bytes = encode_ids(&[10, 7, 7]);
        assert_eq!(&bytes[..6], &[b'I', 1, 3, 20, 5, 0]);
        assert_eq!(bytes.len(), 10);
        let crc = crc32fast::hash(&bytes[..6]).to_le_bytes();
        assert_eq!(&bytes[6..], &crc);
        // a 63-bit delta takes 9 or 10 bytes; zigzag of i64::MIN is all ones: 10 bytes
        assert_eq!(encode_ids(&[i64::MIN]).len(), 2 + 1 + 10 + 4);
    }

    #[test]
    fn sorted_ids_take_few_bytes() {
        let ids: Vec<i64> = (0..1000).map(|i| 1_000_000_000 + i * 50).collect();
        // a count of 2 bytes, a first value of 5, then one byte per id
        assert_eq!(encode_ids(&ids).len(), 2 + 2 + 5 + 999 + 4);
    }

    fn with_crc(body: &[u8]) -> Vec<u8> {
        seal(body.to_vec())
    }

    #[test]
    fn bad_envelopes_are_refused_in_order() {
        let cases: [(Vec<u8>, &str); 4] = [
            (
                vec![b'I', 1, 0],
                "truncated id list: 3 bytes, the smallest is 7",
            ),
            (
                with_crc(&[b'X', 1, 0]),
                "not an igcore id list: bad magic byte 0x58",
            ),
            (
                with_crc(&[b'I', 2, 0]),
                "unsupported id list version 2 (this igcore reads version 1)",
            ),
            (
                vec![b'I', 1, 0, 0, 0, 0, 0],
                "corrupted id list: checksum mismatch",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(message(decode_ids(&bytes).unwrap_err()), expected);
        }
    }

    #[test]
    fn every_single_byte_change_is_caught() {
        let good = encode_ids(&[3, 1, 4, 1, 5, 9, 2, 6]);
        for at in 0..good.len() {
            for flip in [0x01_u8, 0x80, 0xFF] {
                let mut bad = good.clone();
                bad[at] ^= flip;
                assert!(
                    decode_ids(&bad).is_err(),
                    "byte {at} ^ {flip:#x} went unnoticed"
                );
            }
        }
        for cut in 0..good.len() {
            assert!(decode_ids(&good[..cut]).is_err());
        }
    }

    #[test]
    fn malformed_structure_behind_a_valid_checksum_is_refused() {
        let cases: [(&[u8], &str); 6] = [
            (
                &[b'I', 1, 0x80],
                "malformed id list: truncated varint at byte 2",
            ),
            (
                &[b'I', 1, 0x81, 0x00],
                "malformed id list: overlong varint at byte 2",
            ),
            (
                &[
                    b'I', 1, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02,
                ],
                "malformed id list: varint beyond 64 bits at byte 2",
            ),
            // a count that claims 4 GiB of ids in a few bytes: refused before any allocation
            (
                &[b'I', 1, 0x80, 0x80, 0x80, 0x80, 0x10, 0],
                "malformed id list: count 4294967296 exceeds the 1 bytes left at byte 2",
            ),
            (
                &[b'I', 1, 2, 4, 0x80],
                "malformed id list: truncated varint at byte 4",
            ),
            (
                &[b'I', 1, 1, 4, 7],
                "malformed id list: 1 bytes after the last value at byte 4",
            ),
        ];
        for (body, expected) in cases {
            assert_eq!(message(decode_ids(&with_crc(body)).unwrap_err()), expected);
        }
    }

    #[test]
    fn entries_round_trip_with_int_and_float_scores() {
        let posts = [9, 7, 7, i64::MIN];
        let authors = [1, 2, 1, i64::MAX];
        let ints = [100, 100, -5, i64::MIN];
        let bytes = encode_entries(ScoreColumn::Int(&ints), &posts, &authors).unwrap();
        let decoded = decode_entries(&bytes).unwrap();
        assert!(!decoded.float_scores);
        assert_eq!(
            (decoded.keys.as_slice(), decoded.post_ids.as_slice()),
            (&ints[..], &posts[..])
        );
        assert_eq!(decoded.author_ids, authors);

        let floats = [
            f64::INFINITY,
            0.5,
            -0.0,
            f64::from_bits(0x7FF8_0000_0000_0123),
        ];
        let bytes = encode_entries(ScoreColumn::Float(&floats), &posts, &authors).unwrap();
        let decoded = decode_entries(&bytes).unwrap();
        assert!(decoded.float_scores);
        let bits: Vec<u64> = decoded.float_values().iter().map(|f| f.to_bits()).collect();
        assert_eq!(bits, floats.iter().map(|f| f.to_bits()).collect::<Vec<_>>());
        let keys: Vec<i64> = floats.iter().map(|&f| float_bits_key(f)).collect();
        let same = encode_entries(ScoreColumn::FloatKeys(&keys), &posts, &authors).unwrap();
        assert_eq!(same, bytes);
    }

    #[test]
    fn author_indices_and_tables_are_checked() {
        // n = 1 entry: score 0, post 0, a table of 1 author (5), index 1: beyond the table
        let body = [b'E', 1, 0, 1, 0, 0, 1, 10, 1];
        assert_eq!(
            message(decode_entries(&with_crc(&body)).unwrap_err()),
            "malformed entries: author index 1 beyond the table of 1 at byte 8"
        );
        let body = [b'E', 1, 0, 1, 0, 0, 0];
        assert_eq!(
            message(decode_entries(&with_crc(&body)).unwrap_err()),
            "malformed entries: author table of 0 for 1 entries at byte 6"
        );
        let body = [b'E', 1, 4, 0, 0];
        assert_eq!(
            message(decode_entries(&with_crc(&body)).unwrap_err()),
            "malformed entries: unknown flags 0x04 at byte 2"
        );
        let empty = encode_entries(ScoreColumn::Int(&[]), &[], &[]).unwrap();
        assert_eq!(empty.len(), SMALLEST_ENTRIES);
        assert_eq!(decode_entries(&empty).unwrap(), DecodedEntries::default());
    }

    #[test]
    fn lengths_must_agree() {
        assert!(encode_entries(ScoreColumn::Int(&[1]), &[1, 2], &[1, 2]).is_err());
    }
}
