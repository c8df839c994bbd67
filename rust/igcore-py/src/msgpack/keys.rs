//! Making str objects: from UTF-8 directly into CPython's layout, and a cache of short map keys (feeds
//! repeat the same few dozen keys in every object, and building a str costs more than finding it).

use std::sync::{Mutex, MutexGuard};

use igcore_core::msgpack::{text_shape, write_chars, CharWidth};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyString;

/// Keys up to this many bytes are cached (every fixstr).
pub(crate) const MAX_CACHED_KEY: usize = 32;
const SETS: usize = 512; // a power of two; each set holds two keys

/// A key's bytes as their length and two words read from both ends (overlapping): for keys of up to
/// 16 bytes these cover every byte, so they alone decide equality; longer keys are confirmed byte by
/// byte.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct Fingerprint {
    len: usize,
    head: u64,
    tail: u64,
}

impl Fingerprint {
    #[inline(always)]
    fn of(bytes: &[u8]) -> Self {
        // Fixed-size loads only (a variable-length copy into a word goes through memory and stalls).
        let len = bytes.len();
        let (head, tail) = if len >= 8 {
            (load::<8>(bytes, 0), load::<8>(bytes, len - 8))
        } else if len >= 4 {
            (load::<4>(bytes, 0) | load::<4>(bytes, len - 4) << 32, 0)
        } else if len > 0 {
            let byte = |at: usize| u64::from(bytes.get(at).copied().unwrap_or(0));
            (byte(0) | byte(len / 2) << 8 | byte(len - 1) << 16, 0)
        } else {
            (0, 0)
        };
        Self { len, head, tail }
    }

    #[inline(always)]
    fn set(&self) -> usize {
        // A folded 128-bit product: each input bit moves many output bits.
        let product = u128::from(self.head ^ 0x243F_6A88_85A3_08D3)
            * u128::from(self.tail ^ (self.len as u64) ^ 0x1319_8A2E_0370_7344);
        ((product as u64) ^ ((product >> 64) as u64)) as usize & (SETS - 1)
    }
}

/// `N` (4 or 8) bytes at `at` as a little-endian number; the caller keeps `at + N` within `bytes`.
#[inline(always)]
fn load<const N: usize>(bytes: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    if let Some(part) = bytes.get(at..at + N) {
        word[..N].copy_from_slice(part);
    }
    u64::from_le_bytes(word)
}

#[derive(Default)]
struct Slot {
    fingerprint: Fingerprint,
    bytes: [u8; MAX_CACHED_KEY],
    key: Option<Py<PyString>>,
}

/// Two-way set associative: a new key takes the first slot of its set and moves the key there to the
/// second. Holds only keys that are valid UTF-8, so a hit is what a strict decode would give, under
/// any `unicode_errors`.
pub(crate) struct KeyCache {
    slots: Vec<Slot>,
}

static CACHE: Mutex<Option<KeyCache>> = Mutex::new(None);

/// The cache, unless another unpacking holds it (a hook that unpacks, or another thread while a hook
/// runs): that one then goes without.
pub(crate) fn lock() -> Option<MutexGuard<'static, Option<KeyCache>>> {
    let mut guard = CACHE.try_lock().ok()?;
    if guard.is_none() {
        let slots = (0..2 * SETS).map(|_| Slot::default()).collect();
        *guard = Some(KeyCache { slots });
    }
    Some(guard)
}

impl KeyCache {
    /// The interned str for `bytes`, or None if they are longer than MAX_CACHED_KEY or not UTF-8.
    #[inline]
    pub fn get<'py>(
        &mut self,
        py: Python<'py>,
        bytes: &[u8],
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if bytes.len() > MAX_CACHED_KEY {
            return Ok(None);
        }
        let fingerprint = Fingerprint::of(bytes);
        let first = 2 * fingerprint.set();
        let Some(set) = self.slots.get_mut(first..first + 2) else {
            return Ok(None);
        };
        for slot in set.iter() {
            if let Some(key) = &slot.key {
                if slot.fingerprint == fingerprint
                    && (bytes.len() <= 16 || slot.bytes[..bytes.len()] == *bytes)
                {
                    return Ok(Some(key.bind(py).clone().into_any()));
                }
            }
        }
        if std::str::from_utf8(bytes).is_err() {
            return Ok(None);
        }
        let key = new_str(py, bytes, std::ptr::null())?.cast_into::<PyString>()?;
        set.swap(0, 1);
        let slot = &mut set[0];
        slot.fingerprint = fingerprint;
        slot.bytes[..bytes.len()].copy_from_slice(bytes);
        slot.key = Some(key.clone().unbind());
        Ok(Some(key.into_any()))
    }
}

/// A str decoded from UTF-8 `bytes` with the error handler `errors` (null: strict).
///
/// Valid UTF-8 is written straight into a new str of the narrowest layout that holds it (counted
/// first, so it is never widened and copied on the way, as CPython's decoder may); invalid bytes go
/// to CPython's decoder, which raises or applies the handler.
#[inline]
pub(crate) fn new_str<'py>(
    py: Python<'py>,
    bytes: &[u8],
    errors: *const std::ffi::c_char,
) -> PyResult<Bound<'py, PyAny>> {
    if bytes.is_ascii() {
        // SAFETY: PyUnicode_New(len, 127) makes a compact ASCII string with room for `len` bytes
        // (or returns null with an error set, handled below); we fill all of them with ASCII.
        unsafe {
            let obj = ffi::PyUnicode_New(bytes.len() as ffi::Py_ssize_t, 127);
            if !obj.is_null() {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    ffi::PyUnicode_DATA(obj) as *mut u8,
                    bytes.len(),
                );
            }
            return Bound::from_owned_ptr_or_err(py, obj);
        }
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        // SAFETY: `bytes` is valid for its length; `errors` is null or a NUL-terminated handler name
        // that the caller keeps alive; a failure returns null with the error set.
        return unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                ffi::PyUnicode_DecodeUTF8(
                    bytes.as_ptr().cast(),
                    bytes.len() as ffi::Py_ssize_t,
                    errors,
                ),
            )
        };
    };
    let (chars, width) = text_shape(text);
    let max_char = match width {
        CharWidth::One => 0xff,
        CharWidth::Two => 0xffff,
        CharWidth::Four => 0x10_ffff,
    };
    // SAFETY: PyUnicode_New(chars, max_char) makes a compact str of `chars` characters of the width
    // `max_char` implies (1, 2 or 4 bytes; the narrowest that holds the text, as CPython requires), or
    // null with an error set. Its data is aligned for that width, and write_chars fills every one.
    unsafe {
        let obj = Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_New(chars as ffi::Py_ssize_t, max_char),
        )?;
        let data = ffi::PyUnicode_DATA(obj.as_ptr());
        match width {
            CharWidth::One => write_chars(
                text,
                std::slice::from_raw_parts_mut(data.cast::<u8>(), chars),
            ),
            CharWidth::Two => write_chars(
                text,
                std::slice::from_raw_parts_mut(data.cast::<u16>(), chars),
            ),
            CharWidth::Four => write_chars(
                text,
                std::slice::from_raw_parts_mut(data.cast::<u32>(), chars),
            ),
        }
        Ok(obj)
    }
}
