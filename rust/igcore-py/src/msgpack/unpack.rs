//! Unpacking: msgpack bytes -> Python objects, built in one pass with the C API (lists and dicts made
//! at their final size, short map keys from a cache), headers read by `igcore_core::msgpack`.

use std::ffi::c_char;

use igcore_core::msgpack::{self as wire, Header, WireError, MAX_OPEN_CONTAINERS};
use pyo3::exceptions::PyValueError;
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::buffer::ByteView;
use super::keys::{self, KeyCache};
use super::{api, type_name, Api, Limits, UnpackConfig};
use crate::error::msgpack_err;

/// See `igcore._reference.msgpack.unpackb`.
#[pyfunction]
pub(crate) fn unpackb<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyAny>,
    options: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let config = super::unpack_config(options)?;
    let view = ByteView::new(data)?;
    let bytes = view.as_slice();
    let limits = config.limits(bytes.len() as i64);
    let mut cache = keys::lock();
    let mut reader = Reader::new(
        py,
        bytes,
        &config,
        limits,
        cache.as_mut().and_then(|c| c.as_mut()),
    )?;
    let obj = reader.read(0)?;
    let end = reader.pos;
    if end < bytes.len() {
        let extra = PyBytes::new(py, &bytes[end..]);
        let error = reader.api.extra_data.bind(py).call1((obj, extra))?;
        return Err(PyErr::from_value(error));
    }
    Ok(obj)
}

/// Builds objects from `data`, starting at `pos`.
pub(crate) struct Reader<'a, 'py> {
    py: Python<'py>,
    data: &'a [u8],
    pub pos: usize,
    config: &'a UnpackConfig,
    limits: Limits,
    pub api: &'static Api,
    keys: Option<&'a mut KeyCache>,
    errors: *const c_char,
}

/// Takes ownership of a new reference returned by the C API (null: the error it set).
///
/// # Safety
/// `ptr` is null with a Python error set, or a new (owned) reference.
#[inline(always)]
unsafe fn owned<'py>(py: Python<'py>, ptr: *mut ffi::PyObject) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: as the caller promises.
    unsafe { Bound::from_owned_ptr_or_err(py, ptr) }
}

impl<'a, 'py> Reader<'a, 'py> {
    pub fn new(
        py: Python<'py>,
        data: &'a [u8],
        config: &'a UnpackConfig,
        limits: Limits,
        keys: Option<&'a mut KeyCache>,
    ) -> PyResult<Self> {
        let errors = config
            .unicode_errors
            .as_ref()
            .map_or(std::ptr::null(), |e| e.as_ptr());
        Ok(Self {
            py,
            data,
            pos: 0,
            config,
            limits,
            api: api(py)?,
            keys,
            errors,
        })
    }

    #[inline(always)]
    fn wire(&self, err: WireError) -> PyErr {
        msgpack_err(self.py, self.api, err)
    }

    #[inline(always)]
    fn payload(&mut self, len: u32) -> PyResult<&'a [u8]> {
        let bytes = wire::payload(self.data, self.pos, len).map_err(|e| self.wire(e))?;
        self.pos += bytes.len();
        Ok(bytes)
    }

    /// The object at `pos`, inside `open` containers.
    pub fn read(&mut self, open: usize) -> PyResult<Bound<'py, PyAny>> {
        let (header, next) = wire::read_header(self.data, self.pos).map_err(|e| self.wire(e))?;
        self.pos = next;
        let py = self.py;
        match header {
            // SAFETY: the ffi constructors here return a new reference, or null with an error set.
            Header::Int(value) => unsafe { owned(py, ffi::PyLong_FromLongLong(value)) },
            // SAFETY: as above.
            Header::BigUInt(value) => unsafe { owned(py, ffi::PyLong_FromUnsignedLongLong(value)) },
            Header::Nil => Ok(py.None().into_bound(py)),
            Header::Bool(value) => Ok(pyo3::types::PyBool::new(py, value).to_owned().into_any()),
            // SAFETY: as above.
            Header::F64(value) => unsafe { owned(py, ffi::PyFloat_FromDouble(value)) },
            // SAFETY: as above.
            Header::F32(value) => unsafe { owned(py, ffi::PyFloat_FromDouble(f64::from(value))) },
            Header::Str(len) => {
                let bytes = self.payload(len)?;
                self.check_len(len, self.limits.str_len, "max_str_len")?;
                if self.config.raw {
                    Ok(PyBytes::new(py, bytes).into_any())
                } else {
                    keys::new_str(py, bytes, self.errors)
                }
            }
            Header::Bin(len) => {
                let bytes = self.payload(len)?;
                self.check_len(len, self.limits.bin_len, "max_bin_len")?;
                Ok(PyBytes::new(py, bytes).into_any())
            }
            Header::Ext { code, len } => {
                let bytes = self.payload(len)?;
                self.check_len(len, self.limits.ext_len, "max_ext_len")?;
                self.ext(code, bytes)
            }
            Header::Array(len) => self.array(len, open),
            Header::Map(len) => self.map(len, open),
        }
    }

    #[inline(always)]
    fn check_len(&self, len: u32, limit: i64, what: &'static str) -> PyResult<()> {
        if i64::from(len) > limit {
            return Err(self.wire(WireError::TooLong {
                len: len.into(),
                what,
                limit,
            }));
        }
        Ok(())
    }

    fn open_container(
        &self,
        len: u32,
        open: usize,
        limit: i64,
        what: &'static str,
    ) -> PyResult<()> {
        if open >= MAX_OPEN_CONTAINERS {
            return Err(self.wire(WireError::TooDeep));
        }
        wire::check_container(len, limit, what).map_err(|e| self.wire(e))
    }

    /// Whether `len` items can all be present (each takes a byte at least): only then is a list made
    /// at full size, so a lying header never allocates more than the input justifies.
    fn could_hold(&self, len: u32) -> bool {
        len as usize <= self.data.len() - self.pos
    }

    fn array(&mut self, len: u32, open: usize) -> PyResult<Bound<'py, PyAny>> {
        self.open_container(len, open, self.limits.array_len, "max_array_len")?;
        let py = self.py;
        let array = if self.could_hold(len) {
            let n = len as ffi::Py_ssize_t;
            // SAFETY: a new list or tuple of `n` empty slots (or null with an error set); each slot is
            // filled once, in order, with an owned reference. A container dropped early has only its
            // filled slots released (empty ones are null, which CPython skips).
            unsafe {
                if self.config.use_list {
                    let list = owned(py, ffi::PyList_New(n))?;
                    for index in 0..n {
                        let item = self.read(open + 1)?;
                        ffi::PyList_SET_ITEM(list.as_ptr(), index, item.into_ptr());
                    }
                    list
                } else {
                    let tuple = owned(py, ffi::PyTuple_New(n))?;
                    for index in 0..n {
                        let item = self.read(open + 1)?;
                        ffi::PyTuple_SET_ITEM(tuple.as_ptr(), index, item.into_ptr());
                    }
                    tuple
                }
            }
        } else {
            // More items claimed than bytes left: the input is truncated; read until that shows.
            let list = pyo3::types::PyList::empty(py);
            for _ in 0..len {
                list.append(self.read(open + 1)?)?;
            }
            if self.config.use_list {
                list.into_any()
            } else {
                list.to_tuple().into_any()
            }
        };
        match &self.config.list_hook {
            Some(hook) => hook.bind(py).call1((array,)),
            None => Ok(array),
        }
    }

    /// A map key: short str keys come from the cache.
    #[inline(always)]
    fn key(&mut self, open: usize) -> PyResult<Bound<'py, PyAny>> {
        if !self.config.raw {
            if let Some(&marker) = self.data.get(self.pos) {
                let len = usize::from(marker & 0x1f);
                let start = self.pos + 1;
                let fits =
                    (0xa0..=0xbf).contains(&marker) && i64::from(len as u32) <= self.limits.str_len;
                if let (true, Some(bytes), Some(keys)) = (
                    fits,
                    self.data.get(start..start + len),
                    self.keys.as_deref_mut(),
                ) {
                    if let Some(key) = keys.get(self.py, bytes)? {
                        self.pos = start + len;
                        return Ok(key);
                    }
                }
            }
        }
        self.read(open)
    }

    fn map(&mut self, len: u32, open: usize) -> PyResult<Bound<'py, PyAny>> {
        self.open_container(len, open, self.limits.map_len, "max_map_len")?;
        let py = self.py;
        if self.config.object_pairs_hook.is_some() {
            let pairs = pyo3::types::PyList::empty(py);
            for _ in 0..len {
                let key = self.key(open + 1)?;
                let value = self.read(open + 1)?;
                let key = self.checked_key(key)?;
                pairs.append((key, value))?;
            }
            if let Some(hook) = &self.config.object_pairs_hook {
                return hook.bind(py).call1((pairs,));
            }
        }
        // At most one pair per two bytes left: a lying header cannot make a huge table.
        let size = (len as usize).min((self.data.len() - self.pos) / 2);
        let dict = new_dict(py, size)?;
        for _ in 0..len {
            let key = self.key(open + 1)?;
            let value = self.read(open + 1)?;
            let key = self.checked_key(key)?;
            // SAFETY: three live objects; PyDict_SetItem takes its own references and returns -1 with
            // an error set (an unhashable key) on failure.
            if unsafe { ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), value.as_ptr()) } != 0 {
                return Err(PyErr::fetch(py));
            }
        }
        match &self.config.object_hook {
            Some(hook) => hook.bind(py).call1((dict,)),
            None => Ok(dict),
        }
    }

    /// strict_map_key's check.
    #[inline(always)]
    fn checked_key(&self, key: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if self.config.strict_map_key {
            let ptr = key.as_ptr();
            // SAFETY: type checks on a live object.
            if unsafe { ffi::PyUnicode_CheckExact(ptr) == 0 && ffi::PyBytes_CheckExact(ptr) == 0 } {
                let message = format!(
                    "{} is not allowed for map key when strict_map_key=True",
                    type_name(&key)
                );
                return Err(PyValueError::new_err(message));
            }
        }
        Ok(key)
    }

    fn ext(&self, code: i8, payload: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        if code != -1 {
            return self
                .config
                .ext_hook
                .bind(py)
                .call1((i32::from(code), PyBytes::new(py, payload)));
        }
        let (seconds, nanoseconds) =
            wire::read_timestamp(payload).map_err(|e| PyValueError::new_err(e.to_string()))?;
        match self.config.timestamp {
            1 => Ok(
                pyo3::types::PyFloat::new(py, seconds as f64 + f64::from(nanoseconds) / 1e9)
                    .into_any(),
            ),
            2 => Ok(
                (i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds))
                    .into_pyobject(py)?
                    .into_any(),
            ),
            3 => {
                let days = seconds / 86_400; // toward zero, as msgpack-python's C divides
                if i32::try_from(days).is_err() {
                    let message = format!("days={days}; too large to convert to C int");
                    return Err(pyo3::exceptions::PyOverflowError::new_err(message));
                }
                let delta = self
                    .api
                    .timedelta
                    .bind(py)
                    .call1((0, seconds, nanoseconds / 1000))?;
                self.api.epoch.bind(py).add(delta)
            }
            _ => self.api.timestamp.bind(py).call1((seconds, nanoseconds)),
        }
    }
}

#[cfg(not(Py_3_13))]
extern "C" {
    /// A dict with room for `minused` items (CPython's own, exported by every version this builds
    /// for; not part of the limited API, so PyO3 leaves it out).
    fn _PyDict_NewPresized(minused: ffi::Py_ssize_t) -> *mut ffi::PyObject;
}

/// An empty dict with room for `size` items without growing.
#[inline(always)]
fn new_dict(py: Python<'_>, size: usize) -> PyResult<Bound<'_, PyAny>> {
    #[cfg(not(Py_3_13))]
    // SAFETY: returns a new dict or null with an error set; small sizes get an ordinary dict.
    let dict = unsafe { _PyDict_NewPresized(size as ffi::Py_ssize_t) };
    #[cfg(Py_3_13)]
    // SAFETY: returns a new dict or null with an error set.
    let dict = unsafe {
        let _ = size;
        ffi::PyDict_New()
    };
    // SAFETY: as above.
    unsafe { owned(py, dict) }
}
