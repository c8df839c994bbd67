//! Unpacking: msgpack bytes -> Python objects, built in one pass with the C API (lists made at their
//! final size once their items are read, dicts presized within what the input can hold, short map keys
//! from a cache), headers read by `igcore_core::msgpack`.

use std::ffi::c_char;

use igcore_core::msgpack::{self as wire, Header, WireError, MAX_OPEN_CONTAINERS};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use super::buffer::ByteView;
use super::keys::{self, KeyCache};
use super::reuse::Lent;
use super::{api, type_name, Api, Limits, UnpackConfig};
use crate::error::{wire, BindingError};

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
    let obj = reader.read()?;
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
    /// Bytes claimed by the pairs still to come in the open maps made at full size (two a pair).
    claimed: usize,
}

thread_local! {
    static OPEN: std::cell::Cell<Vec<Open<'static>>> = const { std::cell::Cell::new(Vec::new()) };
    static VALUES: std::cell::Cell<Vec<Bound<'static, PyAny>>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// What a container being read builds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A list or tuple, from the items waiting on the value stack.
    Array,
    /// A dict, filled as each pair is read.
    Map,
    /// A dict made at full size: its pairs still to come claim two bytes each of the input left.
    ClaimingMap,
    /// A list of (key, value) tuples for `object_pairs_hook`, from those waiting on the value stack.
    Pairs,
}

/// A container being read. Read and written a field at a time (never moved whole), so that the
/// stores of one item are not reloaded as a wider copy of the frame.
struct Open<'py> {
    kind: Kind,
    /// Items (arrays) or pairs (maps) still to come.
    left: u32,
    /// Array and Pairs: where its items start on the value stack.
    start: usize,
    /// Map: the dict being filled.
    dict: Option<Bound<'py, PyAny>>,
    /// Maps: the key read, whose value comes next.
    key: Option<Bound<'py, PyAny>>,
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

/// Opens a container on the stack, written in place (see `Open`).
#[inline(always)]
fn push<'py>(
    open: &mut Vec<Open<'py>>,
    kind: Kind,
    left: u32,
    start: usize,
    dict: Option<Bound<'py, PyAny>>,
) {
    super::push_in_place(
        open,
        Open {
            kind,
            left,
            start,
            dict,
            key: None,
        },
    );
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
            claimed: 0,
        })
    }

    #[inline(always)]
    fn payload(&mut self, len: u32) -> PyResult<&'a [u8]> {
        let bytes = wire::payload(self.data, self.pos, len).map_err(wire)?;
        self.pos += bytes.len();
        Ok(bytes)
    }

    /// The object at `pos`. Containers are read with explicit stacks, not recursion, so the 1024
    /// levels allowed take the same native stack as one (a thread with a small stack can unpack them,
    /// and a hook runs with all of its stack). An array's items wait on the value stack until the last
    /// one is read, then move into a list or tuple made at its final size: a container is never seen
    /// half built (a hook walking `gc.get_objects()` meets only whole ones), and a header that lies
    /// about its length allocates nothing (the items that do arrive are all that is held).
    pub fn read(&mut self) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: the kept stacks are of the same types but for the lifetime.
        let (mut open, mut values) = unsafe {
            (
                Lent::<Open<'py>, Open<'static>>::new(&OPEN),
                Lent::<Bound<'py, PyAny>, Bound<'static, PyAny>>::new(&VALUES),
            )
        };
        let (open, values) = (&mut *open, &mut *values);
        loop {
            // The next object: a whole one, or None when it opened a container. A map's key may come
            // from the cache.
            let next = match open.last() {
                Some(top) if top.kind != Kind::Array && top.key.is_none() => {
                    if top.kind == Kind::ClaimingMap {
                        // A pair starts: the two bytes it claimed are about to be read.
                        self.claimed = self.claimed.saturating_sub(2);
                    }
                    match self.cached_key()? {
                        Some(key) => Some(key),
                        None => self.item(open, values.len())?,
                    }
                }
                _ => self.item(open, values.len())?,
            };
            let Some(mut obj) = next else { continue };
            // Hand the object to the innermost open container; one that is now whole is finished and
            // handed to the one around it, and so on.
            loop {
                let Some(top) = open.last_mut() else {
                    return Ok(obj);
                };
                if top.kind == Kind::Array {
                    values.push(obj);
                } else {
                    let Some(key) = top.key.take() else {
                        top.key = Some(obj);
                        break;
                    };
                    let key = self.checked_key(key)?;
                    if let Some(dict) = &top.dict {
                        // SAFETY: three live objects; PyDict_SetItem takes its own references and
                        // returns -1 with an error set (an unhashable key) on failure.
                        let status = unsafe {
                            ffi::PyDict_SetItem(dict.as_ptr(), key.as_ptr(), obj.as_ptr())
                        };
                        if status != 0 {
                            return Err(PyErr::fetch(self.py));
                        }
                    } else {
                        values.push(PyTuple::new(self.py, [key, obj])?.into_any());
                    }
                }
                top.left -= 1;
                if top.left > 0 {
                    break;
                }
                let (kind, start, dict) = (top.kind, top.start, top.dict.take());
                open.truncate(open.len() - 1);
                obj = match (kind, dict) {
                    (Kind::Array, _) => self.finish_array(values, start)?,
                    (Kind::Pairs, _) => self.finish_pairs(values, start)?,
                    (_, Some(dict)) => self.finish_map(dict)?,
                    (_, None) => unreachable!("a map has its dict"),
                };
            }
        }
    }

    /// Reads one header: a whole object (a scalar, or an empty container, finished), or None when it
    /// opened a container (pushed on `open`; its items start at `values_len` on the value stack).
    #[inline(always)]
    fn item(
        &mut self,
        open: &mut Vec<Open<'py>>,
        values_len: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (header, next) = wire::read_header(self.data, self.pos).map_err(wire)?;
        self.pos = next;
        let py = self.py;
        let obj = match header {
            // SAFETY: the ffi constructors here return a new reference, or null with an error set.
            Header::Int(value) => unsafe { owned(py, ffi::PyLong_FromLongLong(value))? },
            // SAFETY: as above.
            Header::BigUInt(value) => unsafe {
                owned(py, ffi::PyLong_FromUnsignedLongLong(value))?
            },
            Header::Nil => py.None().into_bound(py),
            Header::Bool(value) => pyo3::types::PyBool::new(py, value).to_owned().into_any(),
            // SAFETY: as above.
            Header::F64(value) => unsafe { owned(py, ffi::PyFloat_FromDouble(value))? },
            // SAFETY: as above.
            Header::F32(value) => unsafe { owned(py, ffi::PyFloat_FromDouble(f64::from(value)))? },
            Header::Str(len) => {
                let bytes = self.payload(len)?;
                self.check_len(len, self.limits.str_len, "max_str_len")?;
                if self.config.raw {
                    PyBytes::new(py, bytes).into_any()
                } else {
                    keys::new_str(py, bytes, self.errors)?
                }
            }
            Header::Bin(len) => {
                let bytes = self.payload(len)?;
                self.check_len(len, self.limits.bin_len, "max_bin_len")?;
                PyBytes::new(py, bytes).into_any()
            }
            Header::Ext { code, len } => {
                let bytes = self.payload(len)?;
                self.check_len(len, self.limits.ext_len, "max_ext_len")?;
                self.ext(code, bytes)?
            }
            Header::Array(len) => {
                self.open_container(len, open.len(), self.limits.array_len, "max_array_len")?;
                if len == 0 {
                    self.finish_array(&mut Vec::new(), 0)?
                } else {
                    push(open, Kind::Array, len, values_len, None);
                    return Ok(None);
                }
            }
            Header::Map(len) => {
                self.open_container(len, open.len(), self.limits.map_len, "max_map_len")?;
                if self.config.object_pairs_hook.is_some() {
                    if len == 0 {
                        self.finish_pairs(&mut Vec::new(), 0)?
                    } else {
                        push(open, Kind::Pairs, len, values_len, None);
                        return Ok(None);
                    }
                } else if len == 0 {
                    self.finish_map(new_dict(py, 0)?)?
                } else {
                    // Made at its final size only when the bytes left hold two for each of its pairs
                    // besides those claimed by the maps around it: the tables of all open maps then
                    // add up to no more than the input could fill, however the headers lie.
                    let wanted = 2 * len as usize;
                    if self.claimed + wanted <= self.data.len() - self.pos {
                        self.claimed += wanted;
                        let dict = new_dict(py, len as usize)?;
                        push(open, Kind::ClaimingMap, len, values_len, Some(dict));
                    } else {
                        let dict = new_dict(py, 0)?;
                        push(open, Kind::Map, len, values_len, Some(dict));
                    }
                    return Ok(None);
                }
            }
        };
        Ok(Some(obj))
    }

    #[inline(always)]
    fn check_len(&self, len: u32, limit: i64, what: &'static str) -> PyResult<()> {
        if i64::from(len) > limit {
            return Err(wire(WireError::LimitExceeded {
                length: len.into(),
                limit_name: what,
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
            return Err(wire(WireError::NestedTooDeep {
                levels: MAX_OPEN_CONTAINERS,
            }));
        }
        wire::check_container(len, limit, what).map_err(wire)
    }

    /// The items `values[start..]` moved into a new list (or tuple), then `list_hook`. Nothing runs
    /// between making it and filling it, so it is never seen with empty slots.
    fn finish_array(
        &self,
        values: &mut Vec<Bound<'py, PyAny>>,
        start: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let n = (values.len() - start) as ffi::Py_ssize_t;
        // SAFETY: a new list or tuple of `n` empty slots (or null with an error set), each filled at once
        // with the reference held by the value stack, which then forgets it (set_len without dropping:
        // the list owns it now); no Python code runs in between.
        let array = unsafe {
            let array = if self.config.use_list {
                owned(py, ffi::PyList_New(n))?
            } else {
                owned(py, ffi::PyTuple_New(n))?
            };
            let items = values.get(start..).unwrap_or_default();
            if self.config.use_list {
                for (index, item) in items.iter().enumerate() {
                    ffi::PyList_SET_ITEM(array.as_ptr(), index as ffi::Py_ssize_t, item.as_ptr());
                }
            } else {
                for (index, item) in items.iter().enumerate() {
                    ffi::PyTuple_SET_ITEM(array.as_ptr(), index as ffi::Py_ssize_t, item.as_ptr());
                }
            }
            values.set_len(start);
            array
        };
        match &self.config.list_hook {
            Some(hook) => hook.bind(py).call1((array,)),
            None => Ok(array),
        }
    }

    fn finish_map(&self, dict: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        match &self.config.object_hook {
            Some(hook) => hook.bind(self.py).call1((dict,)),
            None => Ok(dict),
        }
    }

    /// The (key, value) tuples `values[start..]` as a list, given to `object_pairs_hook`.
    fn finish_pairs(
        &self,
        values: &mut Vec<Bound<'py, PyAny>>,
        start: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pairs = PyList::new(self.py, values.drain(start..))?;
        match &self.config.object_pairs_hook {
            Some(hook) => hook.bind(self.py).call1((pairs,)),
            None => Ok(pairs.into_any()),
        }
    }

    /// A short str map key from the cache, when the next bytes are one.
    #[inline(always)]
    fn cached_key(&mut self) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.config.raw {
            return Ok(None);
        }
        let Some(&marker) = self.data.get(self.pos) else {
            return Ok(None);
        };
        let len = usize::from(marker & 0x1f);
        let start = self.pos + 1;
        let fits = (0xa0..=0xbf).contains(&marker) && i64::from(len as u32) <= self.limits.str_len;
        if let (true, Some(bytes), Some(keys)) = (
            fits,
            self.data.get(start..start + len),
            self.keys.as_deref_mut(),
        ) {
            if let Some(key) = keys.get(self.py, bytes)? {
                self.pos = start + len;
                return Ok(Some(key));
            }
        }
        Ok(None)
    }

    /// strict_map_key's check.
    #[inline(always)]
    fn checked_key(&self, key: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if self.config.strict_map_key {
            let ptr = key.as_ptr();
            // SAFETY: type checks on a live object.
            if unsafe { ffi::PyUnicode_CheckExact(ptr) == 0 && ffi::PyBytes_CheckExact(ptr) == 0 } {
                let type_name = type_name(&key);
                return Err(BindingError::MapKeyNotAllowed { type_name }.into());
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
        let (seconds, nanoseconds) = wire::read_timestamp(payload).map_err(wire)?;
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
                    return Err(BindingError::TimestampDaysOverflow { days }.into());
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
