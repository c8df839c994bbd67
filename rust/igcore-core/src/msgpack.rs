//! The msgpack wire format: headers, lengths, limits and the framing of a byte stream.
//!
//! Nothing here builds Python objects: the binding crate reads headers with [`read_header`] and builds
//! objects from them, writes with the `write_*` functions, and finds where a streamed object ends with
//! [`Scanner`]. The reference is `src/igcore/_reference/msgpack.py`; see its docstrings for the contract.

pub use crate::error::{TimestampError, WireError};

/// Containers open at once when unpacking (the 1025th nested one is a [`WireError::NestedTooDeep`]).
pub const MAX_OPEN_CONTAINERS: usize = 1024;
/// Deepest object when packing: the top object is at depth 0, an object at depth 1025 is refused.
pub const NEST_LIMIT: usize = 1024;
/// Longest str, bin, ext payload, array or map the format can describe.
pub const ITEM_LIMIT: usize = u32::MAX as usize;

/// One msgpack header: a whole scalar, or what precedes a payload or a container's items.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Header {
    Nil,
    Bool(bool),
    /// Any int that fits in i64 (every signed format, and unsigned ones below 2**63).
    Int(i64),
    /// An unsigned int of 2**63 or more.
    BigUInt(u64),
    F32(f32),
    F64(f64),
    /// A str of this many bytes follows.
    Str(u32),
    /// A bin of this many bytes follows.
    Bin(u32),
    /// An ext payload of `len` bytes follows (its type byte is already read).
    Ext {
        code: i8,
        len: u32,
    },
    /// This many items follow.
    Array(u32),
    /// This many key-value pairs follow.
    Map(u32),
}

#[inline(always)]
fn bytes_at<const N: usize>(buf: &[u8], at: usize) -> Result<[u8; N], WireError> {
    match buf.get(at..).and_then(|rest| rest.get(..N)) {
        Some(bytes) => {
            let mut out = [0u8; N];
            out.copy_from_slice(bytes);
            Ok(out)
        }
        None => Err(WireError::IncompleteInput),
    }
}

/// Reads the header at `pos`: returns it and the offset just after it (where a payload or the first
/// item starts). Never reads past `buf`; lengths are only read, never trusted for allocation.
#[inline(always)]
pub fn read_header(buf: &[u8], pos: usize) -> Result<(Header, usize), WireError> {
    let marker = *buf.get(pos).ok_or(WireError::IncompleteInput)?;
    let at = pos + 1;
    let header = match marker {
        0x00..=0x7f => return Ok((Header::Int(i64::from(marker)), at)),
        0xe0..=0xff => return Ok((Header::Int(i64::from(marker as i8)), at)),
        0x80..=0x8f => return Ok((Header::Map(u32::from(marker & 0x0f)), at)),
        0x90..=0x9f => return Ok((Header::Array(u32::from(marker & 0x0f)), at)),
        0xa0..=0xbf => return Ok((Header::Str(u32::from(marker & 0x1f)), at)),
        0xc0 => return Ok((Header::Nil, at)),
        0xc1 => {
            return Err(WireError::InvalidByte {
                byte: marker,
                offset: pos,
            })
        }
        0xc2 => return Ok((Header::Bool(false), at)),
        0xc3 => return Ok((Header::Bool(true), at)),
        0xc4 => (Header::Bin(u32::from(bytes_at::<1>(buf, at)?[0])), 1),
        0xc5 => (
            Header::Bin(u32::from(u16::from_be_bytes(bytes_at(buf, at)?))),
            2,
        ),
        0xc6 => (Header::Bin(u32::from_be_bytes(bytes_at(buf, at)?)), 4),
        0xc7 => {
            let [len, code] = bytes_at::<2>(buf, at)?;
            (
                Header::Ext {
                    code: code as i8,
                    len: u32::from(len),
                },
                2,
            )
        }
        0xc8 => {
            let [a, b, code] = bytes_at::<3>(buf, at)?;
            let len = u32::from(u16::from_be_bytes([a, b]));
            (
                Header::Ext {
                    code: code as i8,
                    len,
                },
                3,
            )
        }
        0xc9 => {
            let [a, b, c, d, code] = bytes_at::<5>(buf, at)?;
            let len = u32::from_be_bytes([a, b, c, d]);
            (
                Header::Ext {
                    code: code as i8,
                    len,
                },
                5,
            )
        }
        0xca => (Header::F32(f32::from_be_bytes(bytes_at(buf, at)?)), 4),
        0xcb => (Header::F64(f64::from_be_bytes(bytes_at(buf, at)?)), 8),
        0xcc => (Header::Int(i64::from(bytes_at::<1>(buf, at)?[0])), 1),
        0xcd => (
            Header::Int(i64::from(u16::from_be_bytes(bytes_at(buf, at)?))),
            2,
        ),
        0xce => (
            Header::Int(i64::from(u32::from_be_bytes(bytes_at(buf, at)?))),
            4,
        ),
        0xcf => {
            let value = u64::from_be_bytes(bytes_at(buf, at)?);
            let header = match i64::try_from(value) {
                Ok(small) => Header::Int(small),
                Err(_) => Header::BigUInt(value),
            };
            (header, 8)
        }
        0xd0 => (Header::Int(i64::from(bytes_at::<1>(buf, at)?[0] as i8)), 1),
        0xd1 => (
            Header::Int(i64::from(i16::from_be_bytes(bytes_at(buf, at)?))),
            2,
        ),
        0xd2 => (
            Header::Int(i64::from(i32::from_be_bytes(bytes_at(buf, at)?))),
            4,
        ),
        0xd3 => (Header::Int(i64::from_be_bytes(bytes_at(buf, at)?)), 8),
        0xd4..=0xd8 => {
            let code = bytes_at::<1>(buf, at)?[0] as i8;
            (
                Header::Ext {
                    code,
                    len: 1 << (marker - 0xd4),
                },
                1,
            )
        }
        0xd9 => (Header::Str(u32::from(bytes_at::<1>(buf, at)?[0])), 1),
        0xda => (
            Header::Str(u32::from(u16::from_be_bytes(bytes_at(buf, at)?))),
            2,
        ),
        0xdb => (Header::Str(u32::from_be_bytes(bytes_at(buf, at)?)), 4),
        0xdc => (
            Header::Array(u32::from(u16::from_be_bytes(bytes_at(buf, at)?))),
            2,
        ),
        0xdd => (Header::Array(u32::from_be_bytes(bytes_at(buf, at)?)), 4),
        0xde => (
            Header::Map(u32::from(u16::from_be_bytes(bytes_at(buf, at)?))),
            2,
        ),
        0xdf => (Header::Map(u32::from_be_bytes(bytes_at(buf, at)?)), 4),
    };
    Ok((header.0, at + header.1))
}

/// The `len` bytes of a payload starting at `pos`, or [`WireError::IncompleteInput`].
#[inline(always)]
pub fn payload(buf: &[u8], pos: usize, len: u32) -> Result<&[u8], WireError> {
    let len = len as usize;
    buf.get(pos..)
        .and_then(|rest| rest.get(..len))
        .ok_or(WireError::IncompleteInput)
}

// -- writing ---------------------------------------------------------------------------------------------

/// The bytes being packed. Headers and scalars are written as one fixed-size chunk (the largest form,
/// 9 bytes, copied at once, then the length advanced by the bytes that count), which compiles to a
/// couple of stores instead of a copy loop per value. The vector is kept zero-filled up to its
/// length, so all of this is safe Rust.
#[derive(Debug, Clone, Default)]
pub struct Output {
    bytes: Vec<u8>,
    len: usize,
}

impl Output {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    #[inline(always)]
    pub fn as_slice(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or_default()
    }

    #[inline(always)]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline(always)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets the bytes written (the memory stays, for the next use).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Memory held, written or not.
    pub fn capacity(&self) -> usize {
        self.bytes.len()
    }

    /// The next `n` bytes, made room for.
    #[inline(always)]
    fn room(&mut self, n: usize) -> &mut [u8] {
        if self.bytes.len() - self.len < n {
            self.grow(n);
        }
        let start = self.len;
        &mut self.bytes[start..start + n]
    }

    #[cold]
    fn grow(&mut self, n: usize) {
        let wanted = (self.len + n).max(2 * self.bytes.len()).max(1024);
        self.bytes.resize(wanted, 0);
    }

    #[inline(always)]
    pub fn push(&mut self, byte: u8) {
        self.room(1)[0] = byte;
        self.len += 1;
    }

    /// Writes the first `n` of `chunk`'s bytes (copying all 9, which is cheaper than copying `n`).
    #[inline(always)]
    fn put(&mut self, chunk: [u8; 9], n: usize) {
        self.room(9).copy_from_slice(&chunk);
        self.len += n;
    }

    /// Writes a payload. Short ones (most map keys and many strings) are copied as two overlapping
    /// fixed-size words, without a call to memcpy.
    #[inline(always)]
    pub fn extend(&mut self, payload: &[u8]) {
        let n = payload.len();
        let room = self.room(n);
        if n > 16 {
            room.copy_from_slice(payload);
        } else if n >= 8 {
            room[..8].copy_from_slice(&payload[..8]);
            room[n - 8..].copy_from_slice(&payload[n - 8..]);
        } else if n >= 4 {
            room[..4].copy_from_slice(&payload[..4]);
            room[n - 4..].copy_from_slice(&payload[n - 4..]);
        } else if n > 0 {
            room[0] = payload[0];
            room[n / 2] = payload[n / 2];
            room[n - 1] = payload[n - 1];
        }
        self.len += n;
    }
}

/// A marker followed by the big-endian bytes of a value, in a 9-byte chunk.
#[inline(always)]
fn chunk<const N: usize>(marker: u8, value: [u8; N]) -> [u8; 9] {
    let mut chunk = [0u8; 9];
    chunk[0] = marker;
    chunk[1..1 + N].copy_from_slice(&value);
    chunk
}

/// An int in its shortest form: non-negative values as positive fixint or uint 8/16/32/64, negative ones
/// as negative fixint or int 8/16/32/64 (the choice msgpack-python makes).
#[inline(always)]
pub fn write_int(out: &mut Output, value: i64) {
    if value >= 0 {
        write_uint(out, value as u64);
    } else if value >= -32 {
        out.push(value as u8);
    } else if value >= -0x80 {
        out.put(chunk(0xd0, [value as u8]), 2);
    } else if value >= -0x8000 {
        out.put(chunk(0xd1, (value as i16).to_be_bytes()), 3);
    } else if value >= -0x8000_0000 {
        out.put(chunk(0xd2, (value as i32).to_be_bytes()), 5);
    } else {
        out.put(chunk(0xd3, value.to_be_bytes()), 9);
    }
}

/// A non-negative int in its shortest form.
#[inline(always)]
pub fn write_uint(out: &mut Output, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else if value <= 0xff {
        out.put(chunk(0xcc, [value as u8]), 2);
    } else if value <= 0xffff {
        out.put(chunk(0xcd, (value as u16).to_be_bytes()), 3);
    } else if value <= 0xffff_ffff {
        out.put(chunk(0xce, (value as u32).to_be_bytes()), 5);
    } else {
        out.put(chunk(0xcf, value.to_be_bytes()), 9);
    }
}

#[inline(always)]
pub fn write_f64(out: &mut Output, value: f64) {
    out.put(chunk(0xcb, value.to_be_bytes()), 9);
}

/// A float32; the caller has rounded it (and refused finite values beyond float32's range).
#[inline(always)]
pub fn write_f32(out: &mut Output, value: f32) {
    out.put(chunk(0xca, value.to_be_bytes()), 5);
}

#[inline(always)]
pub fn write_nil(out: &mut Output) {
    out.push(0xc0);
}

#[inline(always)]
pub fn write_bool(out: &mut Output, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// A str header; str8 only with `use_bin_type` (it came with bin in the 2013 spec). `len` is at most
/// [`ITEM_LIMIT`].
#[inline(always)]
pub fn write_str_header(out: &mut Output, len: usize, use_bin_type: bool) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if use_bin_type && len <= 0xff {
        out.put(chunk(0xd9, [len as u8]), 2);
    } else if len <= 0xffff {
        out.put(chunk(0xda, (len as u16).to_be_bytes()), 3);
    } else {
        out.put(chunk(0xdb, (len as u32).to_be_bytes()), 5);
    }
}

/// A bin header, or a str header without `use_bin_type` (the old spec had no bin).
#[inline(always)]
pub fn write_bin_header(out: &mut Output, len: usize, use_bin_type: bool) {
    if !use_bin_type {
        write_str_header(out, len, false);
    } else if len <= 0xff {
        out.put(chunk(0xc4, [len as u8]), 2);
    } else if len <= 0xffff {
        out.put(chunk(0xc5, (len as u16).to_be_bytes()), 3);
    } else {
        out.put(chunk(0xc6, (len as u32).to_be_bytes()), 5);
    }
}

#[inline(always)]
pub fn write_array_header(out: &mut Output, len: usize) {
    write_container_header(out, len, 0x90, 0xdc);
}

#[inline(always)]
pub fn write_map_header(out: &mut Output, len: usize) {
    write_container_header(out, len, 0x80, 0xde);
}

#[inline(always)]
fn write_container_header(out: &mut Output, len: usize, fix: u8, marker16: u8) {
    if len < 16 {
        out.push(fix | len as u8);
    } else if len <= 0xffff {
        out.put(chunk(marker16, (len as u16).to_be_bytes()), 3);
    } else {
        out.put(chunk(marker16 + 1, (len as u32).to_be_bytes()), 5);
    }
}

/// An ext header (fixext for payloads of 1, 2, 4, 8 or 16 bytes) followed by the type byte.
pub fn write_ext_header(out: &mut Output, code: i8, len: usize) {
    let code = code as u8;
    match len {
        1 => out.put(chunk(0xd4, [code]), 2),
        2 => out.put(chunk(0xd5, [code]), 2),
        4 => out.put(chunk(0xd6, [code]), 2),
        8 => out.put(chunk(0xd7, [code]), 2),
        16 => out.put(chunk(0xd8, [code]), 2),
        0..=0xff => out.put(chunk(0xc7, [len as u8, code]), 3),
        0x100..=0xffff => {
            let [a, b] = (len as u16).to_be_bytes();
            out.put(chunk(0xc8, [a, b, code]), 4);
        }
        _ => {
            let [a, b, c, d] = (len as u32).to_be_bytes();
            out.put(chunk(0xc9, [a, b, c, d, code]), 6);
        }
    }
}

/// A timestamp (ext -1) in the first of timestamp 32, 64 and 96 that holds it.
/// `nanoseconds` is below 10**9 (the caller's `Timestamp` ensures it).
pub fn write_timestamp(out: &mut Output, seconds: i64, nanoseconds: u32) {
    if seconds >> 34 == 0 {
        let data64 = (u64::from(nanoseconds) << 34) | seconds as u64;
        if data64 >> 32 == 0 {
            write_ext_header(out, -1, 4);
            out.extend(&(data64 as u32).to_be_bytes());
        } else {
            write_ext_header(out, -1, 8);
            out.extend(&data64.to_be_bytes());
        }
    } else {
        write_ext_header(out, -1, 12);
        out.extend(&nanoseconds.to_be_bytes());
        out.extend(&seconds.to_be_bytes());
    }
}

/// The (seconds, nanoseconds) of a timestamp 32, 64 or 96 payload.
pub fn read_timestamp(payload: &[u8]) -> Result<(i64, u32), TimestampError> {
    let (seconds, nanoseconds) = match *payload {
        [a, b, c, d] => (i64::from(u32::from_be_bytes([a, b, c, d])), 0),
        [a, b, c, d, e, f, g, h] => {
            let data64 = u64::from_be_bytes([a, b, c, d, e, f, g, h]);
            ((data64 & 0x3_ffff_ffff) as i64, (data64 >> 34) as u32)
        }
        [a, b, c, d, ref rest @ ..] if rest.len() == 8 => {
            let mut secs = [0u8; 8];
            secs.copy_from_slice(rest);
            (i64::from_be_bytes(secs), u32::from_be_bytes([a, b, c, d]))
        }
        _ => {
            return Err(TimestampError::InvalidTimestamp {
                length: payload.len(),
            })
        }
    };
    if nanoseconds > 999_999_999 {
        return Err(TimestampError::TimestampNanoseconds);
    }
    Ok((seconds, nanoseconds))
}

// -- framing a stream ---------------------------------------------------------------------------------------

/// The limits the reader checks on container headers (-1 is not special here: the caller resolves it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerLimits {
    pub max_array_len: i64,
    pub max_map_len: i64,
}

/// Checks an array or map header against its limit, as the reader does when it meets one.
#[inline(always)]
pub fn check_container(len: u32, limit: i64, what: &'static str) -> Result<(), WireError> {
    if i64::from(len) > limit {
        return Err(WireError::LimitExceeded {
            length: u64::from(len),
            limit_name: what,
            limit,
        });
    }
    Ok(())
}

/// Finds where one object ends in a growing buffer, reading headers only, and remembers how far it
/// got, so an object that arrives in many pieces is walked once in all.
///
/// The object starts at offset 0 of the slice given to [`Scanner::scan`]; each call passes the same
/// bytes plus any that arrived since (the caller drops consumed bytes in front and passes the rest).
#[derive(Debug, Clone, Default)]
pub struct Scanner {
    /// How far the walk got (relative to the object's start).
    offset: usize,
    /// Items still to come in each open container (a map counts keys and values).
    open: Vec<u64>,
}

impl Scanner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The offset just past the object if it is complete in `buf`, or `None` for more bytes. With
    /// `limits`, array and map headers are checked as the reader checks them. After an error, start a
    /// new scanner.
    pub fn scan(
        &mut self,
        buf: &[u8],
        limits: Option<ContainerLimits>,
    ) -> Result<Option<usize>, WireError> {
        loop {
            let (header, mut next) = match read_header(buf, self.offset) {
                Ok(found) => found,
                Err(WireError::IncompleteInput) => return Ok(None),
                Err(err) => return Err(err),
            };
            let mut items = 0u64;
            match header {
                Header::Str(len) | Header::Bin(len) | Header::Ext { len, .. } => {
                    next = match next.checked_add(len as usize) {
                        Some(end) if end <= buf.len() => end,
                        _ => return Ok(None),
                    };
                }
                Header::Array(len) | Header::Map(len) => {
                    if self.open.len() >= MAX_OPEN_CONTAINERS {
                        return Err(WireError::NestedTooDeep {
                            levels: MAX_OPEN_CONTAINERS,
                        });
                    }
                    let is_map = matches!(header, Header::Map(_));
                    if let Some(limits) = limits {
                        if is_map {
                            check_container(len, limits.max_map_len, "max_map_len")?;
                        } else {
                            check_container(len, limits.max_array_len, "max_array_len")?;
                        }
                    }
                    items = u64::from(len) << u32::from(is_map);
                }
                _ => {}
            }
            self.offset = next;
            if items > 0 {
                self.open.push(items);
                continue;
            }
            // One item done: close every container it completes.
            loop {
                match self.open.last_mut() {
                    None => return Ok(Some(self.offset)),
                    Some(left) => {
                        *left -= 1;
                        if *left > 0 {
                            break;
                        }
                        self.open.pop();
                    }
                }
            }
        }
    }
}

// -- text ---------------------------------------------------------------------------------------------------

/// The narrowest of CPython's string layouts that holds a text: 1 byte per character (Latin-1), 2
/// (the Basic Multilingual Plane) or 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharWidth {
    One,
    Two,
    Four,
}

/// The number of characters of `text` and the width they need: what a str object must be allocated
/// with before the characters are written into it.
pub fn text_shape(text: &str) -> (usize, CharWidth) {
    let mut chars = 0;
    let mut widest = 0u8; // the largest lead byte seen
    for &byte in text.as_bytes() {
        // Every character has exactly one byte that is not a continuation byte (0b10xx_xxxx).
        chars += usize::from(byte & 0xc0 != 0x80);
        widest = widest.max(byte);
    }
    let width = match widest {
        0x00..=0xc3 => CharWidth::One, // lead bytes 0xc2 and 0xc3 encode U+0080..U+00FF
        0xc4..=0xef => CharWidth::Two,
        _ => CharWidth::Four,
    };
    (chars, width)
}

/// Writes the characters of `text` into `out`, one per element; `out` has exactly as many elements as
/// `text` has characters (see [`text_shape`]), each wide enough for every character.
pub fn write_chars<T: TryFrom<u32>>(text: &str, out: &mut [T]) {
    for (slot, ch) in out.iter_mut().zip(text.chars()) {
        if let Ok(unit) = T::try_from(u32::from(ch)) {
            *slot = unit;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: &[u8]) -> Result<(Header, usize), WireError> {
        read_header(bytes, 0)
    }

    #[test]
    fn reads_every_int_format() {
        assert_eq!(header(&[0x7f]), Ok((Header::Int(127), 1)));
        assert_eq!(header(&[0xe0]), Ok((Header::Int(-32), 1)));
        assert_eq!(header(&[0xcc, 0xff]), Ok((Header::Int(255), 2)));
        assert_eq!(header(&[0xd0, 0x80]), Ok((Header::Int(-128), 2)));
        assert_eq!(header(&[0xcd, 0xff, 0xff]), Ok((Header::Int(65535), 3)));
        assert_eq!(header(&[0xd1, 0x80, 0x00]), Ok((Header::Int(-32768), 3)));
        assert_eq!(
            header(&[0xce, 0xff, 0xff, 0xff, 0xff]),
            Ok((Header::Int(u32::MAX.into()), 5))
        );
        let max = [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(header(&max), Ok((Header::BigUInt(u64::MAX), 9)));
        let big = [0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(header(&big), Ok((Header::Int(i64::MAX), 9)));
        let min = [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(header(&min), Ok((Header::Int(i64::MIN), 9)));
    }

    #[test]
    fn reads_lengths_and_ext_codes() {
        assert_eq!(header(&[0xa3]), Ok((Header::Str(3), 1)));
        assert_eq!(
            header(&[0xdb, 0xff, 0xff, 0xff, 0xff]),
            Ok((Header::Str(u32::MAX), 5))
        );
        assert_eq!(header(&[0xc5, 1, 0]), Ok((Header::Bin(256), 3)));
        assert_eq!(
            header(&[0xd6, 0xff]),
            Ok((Header::Ext { code: -1, len: 4 }, 2))
        );
        assert_eq!(
            header(&[0xd8, 5]),
            Ok((Header::Ext { code: 5, len: 16 }, 2))
        );
        assert_eq!(
            header(&[0xc8, 0, 3, 7]),
            Ok((Header::Ext { code: 7, len: 3 }, 4))
        );
        assert_eq!(header(&[0xdd, 0, 1, 0, 0]), Ok((Header::Array(65536), 5)));
        assert_eq!(header(&[0x8f]), Ok((Header::Map(15), 1)));
    }

    #[test]
    fn truncated_headers_are_incomplete_and_0xc1_is_a_format_error() {
        for bytes in [
            &[][..],
            &[0xcd, 0],
            &[0xc9, 0, 0, 0, 1],
            &[0xcb, 0, 0],
            &[0xd4],
        ] {
            assert_eq!(header(bytes), Err(WireError::IncompleteInput), "{bytes:?}");
        }
        assert_eq!(
            read_header(&[0, 0xc1], 1),
            Err(WireError::InvalidByte {
                byte: 0xc1,
                offset: 1
            })
        );
    }

    #[test]
    fn a_payload_longer_than_the_input_is_incomplete_even_at_4_gib() {
        let buf = [0xdb, 0xff, 0xff, 0xff, 0xff, b'a'];
        let (found, at) = header(&buf).unwrap();
        assert_eq!(found, Header::Str(u32::MAX));
        assert_eq!(payload(&buf, at, u32::MAX), Err(WireError::IncompleteInput));
        assert_eq!(payload(&buf, at, 1), Ok(&b"a"[..]));
        assert_eq!(
            payload(&buf, usize::MAX, 1),
            Err(WireError::IncompleteInput)
        );
    }

    fn written(write: impl Fn(&mut Output)) -> Vec<u8> {
        let mut out = Output::new();
        write(&mut out);
        out.as_slice().to_vec()
    }

    #[test]
    fn output_grows_and_keeps_what_was_written() {
        let mut out = Output::new();
        for i in 0..5000u64 {
            write_uint(&mut out, i * 1_000_003);
            out.extend(b"xy");
        }
        let texts: Vec<Vec<u8>> = (0..40u8).map(|n| (0..n).map(|i| i ^ n).collect()).collect();
        let mut short = Output::new();
        for text in &texts {
            short.extend(text);
        }
        assert_eq!(short.as_slice(), texts.concat());
        let mut pos = 0;
        for i in 0..5000u64 {
            let (found, next) = read_header(out.as_slice(), pos).unwrap();
            assert_eq!(found, Header::Int((i * 1_000_003) as i64));
            assert_eq!(out.as_slice().get(next..next + 2), Some(&b"xy"[..]));
            pos = next + 2;
        }
        assert_eq!(pos, out.len());
        out.clear();
        assert!(out.is_empty() && out.as_slice().is_empty() && out.capacity() > 0);
    }

    #[test]
    fn ints_take_their_shortest_form_and_read_back() {
        let cases: [(i64, &[u8]); 10] = [
            (0, &[0x00]),
            (127, &[0x7f]),
            (128, &[0xcc, 0x80]),
            (256, &[0xcd, 1, 0]),
            (65536, &[0xce, 0, 1, 0, 0]),
            (1 << 32, &[0xcf, 0, 0, 0, 1, 0, 0, 0, 0]),
            (-1, &[0xff]),
            (-33, &[0xd0, 0xdf]),
            (-129, &[0xd1, 0xff, 0x7f]),
            (-32769, &[0xd2, 0xff, 0xff, 0x7f, 0xff]),
        ];
        for (value, bytes) in cases {
            assert_eq!(written(|out| write_int(out, value)), bytes, "{value}");
            assert_eq!(header(bytes), Ok((Header::Int(value), bytes.len())));
        }
        assert_eq!(written(|out| write_int(out, i64::MIN))[0], 0xd3);
        assert_eq!(written(|out| write_uint(out, u64::MAX))[0], 0xcf);
    }

    #[test]
    fn str_and_bin_headers_follow_use_bin_type() {
        assert_eq!(written(|out| write_str_header(out, 31, true)), [0xbf]);
        assert_eq!(written(|out| write_str_header(out, 32, true)), [0xd9, 32]);
        assert_eq!(
            written(|out| write_str_header(out, 32, false)),
            [0xda, 0, 32]
        );
        assert_eq!(
            written(|out| write_str_header(out, 65536, true)),
            [0xdb, 0, 1, 0, 0]
        );
        assert_eq!(written(|out| write_bin_header(out, 3, true)), [0xc4, 3]);
        assert_eq!(written(|out| write_bin_header(out, 3, false)), [0xa3]);
        assert_eq!(
            written(|out| write_bin_header(out, 300, true)),
            [0xc5, 1, 44]
        );
    }

    #[test]
    fn ext_headers_use_fixext_for_the_five_fixed_sizes() {
        assert_eq!(written(|out| write_ext_header(out, 5, 1)), [0xd4, 5]);
        assert_eq!(written(|out| write_ext_header(out, 5, 16)), [0xd8, 5]);
        assert_eq!(written(|out| write_ext_header(out, 5, 0)), [0xc7, 0, 5]);
        assert_eq!(written(|out| write_ext_header(out, 5, 3)), [0xc7, 3, 5]);
        assert_eq!(
            written(|out| write_ext_header(out, -1, 256)),
            [0xc8, 1, 0, 0xff]
        );
        assert_eq!(
            written(|out| write_ext_header(out, 1, 65536)),
            [0xc9, 0, 1, 0, 0, 1]
        );
    }

    #[test]
    fn timestamps_take_the_first_form_that_holds_them_and_read_back() {
        let cases: [(i64, u32, usize); 6] = [
            (0, 0, 4),
            ((1 << 32) - 1, 0, 4),
            (1 << 32, 0, 8),
            (1, 1, 8),
            ((1 << 34) - 1, 999_999_999, 8),
            (-1, 0, 12),
        ];
        for (seconds, nanoseconds, len) in cases {
            let out = written(|out| write_timestamp(out, seconds, nanoseconds));
            let (found, at) = header(&out).unwrap();
            assert_eq!(
                found,
                Header::Ext {
                    code: -1,
                    len: len as u32
                }
            );
            assert_eq!(read_timestamp(&out[at..]), Ok((seconds, nanoseconds)));
        }
        let out = written(|out| write_timestamp(out, i64::MIN, 5));
        assert_eq!(read_timestamp(&out[3..]), Ok((i64::MIN, 5)));
    }

    #[test]
    fn bad_timestamps_are_refused() {
        assert_eq!(
            read_timestamp(&[0; 5]),
            Err(TimestampError::InvalidTimestamp { length: 5 })
        );
        let too_many_nanos = ((1_000_000_000u64) << 34).to_be_bytes();
        assert_eq!(
            read_timestamp(&too_many_nanos),
            Err(TimestampError::TimestampNanoseconds)
        );
        let mut ts96 = [0u8; 12];
        ts96[..4].copy_from_slice(&1_000_000_000u32.to_be_bytes());
        assert_eq!(
            read_timestamp(&ts96),
            Err(TimestampError::TimestampNanoseconds)
        );
    }

    #[test]
    fn the_scanner_finds_the_end_of_an_object_fed_byte_by_byte() {
        // [1, {"a": [bin 2]}, 3] then the next object
        let object = [0x93, 0x01, 0x81, 0xa1, b'a', 0x91, 0xc4, 2, 9, 9, 0x03];
        let mut stream = object.to_vec();
        stream.push(0xc0);
        let mut scanner = Scanner::new();
        for end in 0..object.len() {
            assert_eq!(scanner.scan(&stream[..end], None), Ok(None), "{end}");
        }
        assert_eq!(scanner.scan(&stream, None), Ok(Some(object.len())));
        assert_eq!(Scanner::new().scan(&[0xc0], None), Ok(Some(1)));
        assert_eq!(Scanner::new().scan(&[0x90, 0x80], None), Ok(Some(1)));
    }

    #[test]
    fn the_scanner_checks_depth_format_and_container_limits() {
        let deep = vec![0x91; MAX_OPEN_CONTAINERS + 1];
        assert_eq!(
            Scanner::new().scan(&deep, None),
            Err(WireError::NestedTooDeep {
                levels: MAX_OPEN_CONTAINERS
            })
        );
        let mut just = vec![0x91; MAX_OPEN_CONTAINERS];
        just.push(0xc0);
        assert_eq!(Scanner::new().scan(&just, None), Ok(Some(just.len())));
        assert_eq!(
            Scanner::new().scan(&[0x92, 0xc1], None),
            Err(WireError::InvalidByte {
                byte: 0xc1,
                offset: 1
            })
        );
        let limits = ContainerLimits {
            max_array_len: 1,
            max_map_len: 0,
        };
        let lying = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(
            Scanner::new().scan(&lying, Some(limits)),
            Err(WireError::LimitExceeded {
                length: u32::MAX.into(),
                limit_name: "max_array_len",
                limit: 1
            })
        );
        assert_eq!(Scanner::new().scan(&lying, None), Ok(None));
        assert_eq!(
            Scanner::new()
                .scan(&[0x81], Some(limits))
                .unwrap_err()
                .to_string(),
            "1 exceeds max_map_len(0)"
        );
    }

    #[test]
    fn a_lying_payload_length_waits_for_bytes_without_overflowing() {
        let mut scanner = Scanner::new();
        assert_eq!(
            scanner.scan(&[0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2], None),
            Ok(None)
        );
        let ext = [0xc9, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(Scanner::new().scan(&ext, None), Ok(None));
    }

    #[test]
    fn text_shape_counts_characters_and_finds_the_narrowest_width() {
        assert_eq!(text_shape(""), (0, CharWidth::One));
        assert_eq!(text_shape("abc"), (3, CharWidth::One));
        assert_eq!(text_shape("café ÿ"), (6, CharWidth::One));
        assert_eq!(text_shape("straße Ā"), (8, CharWidth::Two));
        assert_eq!(text_shape("привет 東京"), (9, CharWidth::Two));
        assert_eq!(text_shape("\u{ffff}"), (1, CharWidth::Two));
        assert_eq!(text_shape("a 🌅 b"), (5, CharWidth::Four));
    }

    #[test]
    fn write_chars_fills_each_width() {
        let mut one = [0u8; 4];
        write_chars("aé\u{ff}z", &mut one);
        assert_eq!(one, [b'a', 0xe9, 0xff, b'z']);
        let mut two = [0u16; 3];
        write_chars("aЖ東", &mut two);
        assert_eq!(two, [0x61, 0x416, 0x6771]);
        let mut four = [0u32; 3];
        write_chars("é🌅x", &mut four);
        assert_eq!(four, [0xe9, 0x1f305, 0x78]);
    }
}
