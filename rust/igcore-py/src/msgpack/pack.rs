//! Packing: Python objects -> msgpack bytes. The exact built-in types are recognised by their type
//! pointer and read through the C API; everything else takes msgpack-python's order of checks.

use igcore_core::msgpack::{self as wire, Output, ITEM_LIMIT, NEST_LIMIT};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyIterator};

use super::buffer::ByteView;
use super::reuse::Lent;
use super::{api, type_name, Api, PackConfig};
use crate::error::BindingError;
use crate::guard::one_call_at_a_time;

/// See `igcore._reference.msgpack.packb`.
#[pyfunction]
pub(crate) fn packb<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    options: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let config = super::pack_config(options)?;
    if let Some(packed) = pack_lone_bytes(py, obj, &config) {
        return packed;
    }
    // One buffer per thread, kept between calls so that it is grown once, not on every call; a
    // `default` that calls packb itself finds it in use and gets a fresh one.
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut out) => {
            out.clear();
            let packed = Writer::new(py, &mut out, &config)?
                .pack(obj)
                .map(|()| PyBytes::new(py, out.as_slice()));
            if out.capacity() > MAX_KEPT_SCRATCH {
                *out = Output::new();
            }
            packed
        }
        Err(_) => {
            let mut out = Output::new();
            Writer::new(py, &mut out, &config)?.pack(obj)?;
            Ok(PyBytes::new(py, out.as_slice()))
        }
    })
}

/// A bytes object packed alone (a blob: an image, a pickled value) is copied once, straight into the
/// answer, instead of into the scratch buffer and then out of it. None for anything else.
fn pack_lone_bytes<'py>(
    py: Python<'py>,
    obj: &Bound<'py, PyAny>,
    config: &PackConfig,
) -> Option<PyResult<Bound<'py, PyBytes>>> {
    let payload = obj.cast_exact::<PyBytes>().ok()?.as_bytes();
    if payload.len() > ITEM_LIMIT {
        return None; // the general path says why it is refused
    }
    let mut header = Output::new();
    wire::write_bin_header(&mut header, payload.len(), config.use_bin_type);
    let header = header.as_slice();
    // At most ITEM_LIMIT + 5: no overflow.
    let total = header.len() + payload.len();
    // SAFETY: PyBytes_FromStringAndSize(NULL, n) returns a new bytes object of n writable bytes (or
    // NULL with an error set); the two copies fill exactly those n bytes before anyone else sees it.
    unsafe {
        let made = ffi::PyBytes_FromStringAndSize(std::ptr::null(), total as ffi::Py_ssize_t);
        if made.is_null() {
            return Some(Err(PyErr::fetch(py)));
        }
        let at = ffi::PyBytes_AS_STRING(made).cast::<u8>().cast_mut();
        std::ptr::copy_nonoverlapping(header.as_ptr(), at, header.len());
        std::ptr::copy_nonoverlapping(payload.as_ptr(), at.add(header.len()), payload.len());
        Some(Ok(Bound::from_owned_ptr(py, made).cast_into_unchecked()))
    }
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Output> = std::cell::RefCell::new(Output::new());
    static PACK_FRAMES: std::cell::Cell<Vec<Frame<'static>>> = const { std::cell::Cell::new(Vec::new()) };
}

/// A scratch buffer grown beyond this by one large object is given back rather than kept.
const MAX_KEPT_SCRATCH: usize = 1 << 20;

/// What a Packer call answers: the bytes packed, or None when it keeps them (autoreset off).
type Packed<'py> = PyResult<Option<Bound<'py, PyBytes>>>;

/// See `igcore._reference.msgpack.Packer`.
#[pyclass(module = "igcore._rust.msgpack")]
pub(crate) struct Packer {
    config: PackConfig,
    autoreset: bool,
    buffer: Output,
}

#[pymethods]
impl Packer {
    #[new]
    fn new(options: &Bound<'_, PyAny>, autoreset: bool) -> PyResult<Self> {
        Ok(Self {
            config: PackConfig::from_options(options)?,
            autoreset,
            buffer: Output::new(),
        })
    }

    fn pack<'py>(slf: &Bound<'py, Self>, py: Python<'py>, obj: &Bound<'py, PyAny>) -> Packed<'py> {
        busy(slf)?.pack_now(py, obj)
    }

    fn pack_map_pairs<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        pairs: &Bound<'py, PyAny>,
    ) -> Packed<'py> {
        busy(slf)?.pack_map_pairs_now(py, pairs)
    }

    fn pack_array_header<'py>(slf: &Bound<'py, Self>, py: Python<'py>, size: i64) -> Packed<'py> {
        busy(slf)?.pack_array_header_now(py, size)
    }

    fn pack_map_header<'py>(slf: &Bound<'py, Self>, py: Python<'py>, size: i64) -> Packed<'py> {
        busy(slf)?.pack_map_header_now(py, size)
    }

    fn pack_ext_type<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        code: i64,
        data: &Bound<'py, PyAny>,
    ) -> Packed<'py> {
        busy(slf)?.pack_ext_type_now(py, code, data)
    }

    fn bytes<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(busy(slf)?.bytes_now(py))
    }

    fn reset(slf: &Bound<'_, Self>) -> PyResult<()> {
        busy(slf)?.reset_now();
        Ok(())
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.config.default)
    }

    fn __clear__(&mut self) {
        self.config.default = None;
    }
}

impl Packer {
    fn pack_now<'py>(&mut self, py: Python<'py>, obj: &Bound<'py, PyAny>) -> Packed<'py> {
        let written = Writer::new(py, &mut self.buffer, &self.config).and_then(|mut w| w.pack(obj));
        self.finish(py, written)
    }

    fn pack_map_pairs_now<'py>(
        &mut self,
        py: Python<'py>,
        pairs: &Bound<'py, PyAny>,
    ) -> Packed<'py> {
        let written = Writer::new(py, &mut self.buffer, &self.config).and_then(|mut writer| {
            let size = pairs.len()?;
            if size > ITEM_LIMIT {
                return Err(BindingError::MapHeaderTooLarge.into());
            }
            wire::write_map_header(writer.out, size);
            for pair in pairs.try_iter()? {
                let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = pair?.extract()?;
                writer.pack(&key)?;
                writer.pack(&value)?;
            }
            Ok(())
        });
        self.finish(py, written)
    }

    fn pack_array_header_now<'py>(&mut self, py: Python<'py>, size: i64) -> Packed<'py> {
        wire::write_array_header(&mut self.buffer, header_size(size, false)?);
        self.finish(py, Ok(()))
    }

    fn pack_map_header_now<'py>(&mut self, py: Python<'py>, size: i64) -> Packed<'py> {
        wire::write_map_header(&mut self.buffer, header_size(size, true)?);
        self.finish(py, Ok(()))
    }

    fn pack_ext_type_now<'py>(
        &mut self,
        py: Python<'py>,
        code: i64,
        data: &Bound<'py, PyAny>,
    ) -> Packed<'py> {
        let view = ByteView::new(data)?;
        let payload = view.as_slice();
        if payload.len() > ITEM_LIMIT {
            return Err(BindingError::ExtHeaderTooLarge.into());
        }
        wire::write_ext_header(&mut self.buffer, ext_code(code)?, payload.len());
        self.buffer.extend(payload);
        self.finish(py, Ok(()))
    }

    fn bytes_now<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, self.buffer.as_slice())
    }

    fn reset_now(&mut self) {
        self.buffer.clear();
    }

    /// After an error the buffer is emptied (as msgpack-python does); with autoreset its bytes are
    /// returned and it is emptied.
    fn finish<'py>(&mut self, py: Python<'py>, written: PyResult<()>) -> Packed<'py> {
        if let Err(err) = written {
            self.buffer.clear();
            return Err(err);
        }
        if !self.autoreset {
            return Ok(None);
        }
        let packed = PyBytes::new(py, self.buffer.as_slice());
        self.buffer.clear();
        Ok(Some(packed))
    }
}

/// The packer, for one call (see `guard::one_call_at_a_time`: a `default` may call it again).
fn busy<'py>(slf: &Bound<'py, Packer>) -> PyResult<PyRefMut<'py, Packer>> {
    one_call_at_a_time(slf, "Packer")
}

/// The size of an array (or a map) header that a caller asked for.
fn header_size(size: i64, map: bool) -> PyResult<usize> {
    if size < 0 {
        let negative = if map {
            BindingError::MapSizeNegative
        } else {
            BindingError::ArraySizeNegative
        };
        return Err(negative.into());
    }
    match usize::try_from(size) {
        Ok(size) if size <= ITEM_LIMIT => Ok(size),
        _ if map => Err(BindingError::MapHeaderTooLarge.into()),
        _ => Err(BindingError::ArrayHeaderTooLarge.into()),
    }
}

fn ext_code(code: i64) -> PyResult<i8> {
    i8::try_from(code).map_err(|_| BindingError::ExtCodeTooLarge.into())
}

/// Whether `pack_known` wrote the object or leaves it to `default`.
enum Outcome {
    Written,
    ForDefault,
}

/// What an open container is walked with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    /// An exact list, by index (a `default` may change it: its size is read again for each item).
    List,
    /// An exact tuple, by index.
    Tuple,
    /// An exact dict, with PyDict_Next.
    Dict,
    /// An iterator over the items of a list or tuple subclass (its own __iter__).
    Iter,
    /// An iterator over the (key, value) pairs of a dict subclass (its own items()).
    Items,
}

impl FrameKind {
    fn name(self) -> &'static str {
        match self {
            Self::Dict | Self::Items => "dictionary",
            _ => "list",
        }
    }
}

/// A container being packed. Read and written a field at a time (never moved whole), so that the
/// stores of one item are not reloaded as a wider copy of the frame.
struct Frame<'py> {
    kind: FrameKind,
    /// The list, tuple or dict (held), or the iterator over it.
    container: Bound<'py, PyAny>,
    /// The items (pairs, for maps) its header announced.
    len: usize,
    /// The items (pairs) taken so far; for lists and tuples, the index of the next one.
    written: usize,
    /// Dict: PyDict_Next's position.
    pos: ffi::Py_ssize_t,
    /// Maps: the value of the key being packed, held until it is packed next.
    value: Option<Bound<'py, PyAny>>,
}

/// Opens a container on the stack, written in place (see `Frame`).
#[inline(always)]
fn push<'py>(
    open: &mut Vec<Frame<'py>>,
    kind: FrameKind,
    container: Bound<'py, PyAny>,
    len: usize,
) {
    super::push_in_place(
        open,
        Frame {
            kind,
            container,
            len,
            written: 0,
            pos: 0,
            value: None,
        },
    );
}

/// An item at `depth` is one level too deep past the limit.
#[inline(always)]
fn check_depth(depth: usize) -> PyResult<()> {
    if depth > NEST_LIMIT {
        return Err(BindingError::RecursionLimit.into());
    }
    Ok(())
}

struct Writer<'a, 'py> {
    py: Python<'py>,
    out: &'a mut Output,
    config: &'a PackConfig,
    api: &'static Api,
}

impl<'a, 'py> Writer<'a, 'py> {
    fn new(py: Python<'py>, out: &'a mut Output, config: &'a PackConfig) -> PyResult<Self> {
        Ok(Self {
            py,
            out,
            config,
            api: api(py)?,
        })
    }

    /// Packs `obj` (at depth 0). Containers are walked with an explicit stack, not recursion, so the
    /// 1024 levels allowed take the same native stack as one: a thread with a small stack can pack
    /// them, and a `default` runs with all of its stack.
    fn pack(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        // SAFETY: the kept frames are the same type but for the lifetime.
        let mut open = unsafe { Lent::<Frame<'py>, Frame<'static>>::new(&PACK_FRAMES) };
        let open = &mut *open;
        self.pack_object(obj.clone(), open)?;
        loop {
            // The items of the innermost container are at this depth (the top object is at 0).
            let depth = open.len();
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match self.next_item(top, depth)? {
                Some(item) => self.pack_object(item, open)?,
                None => {
                    let (written, len, what) = (top.written, top.len, top.kind.name());
                    open.truncate(open.len() - 1);
                    check_written(written, len, what)?;
                }
            }
        }
    }

    /// Writes the scalars among the next items of `top` in place, and returns the first item that
    /// needs more (a container, a type for `default`, ...), taken as an owned reference; None once its
    /// items are all written.
    #[inline(always)]
    fn next_item(
        &mut self,
        top: &mut Frame<'py>,
        depth: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let ptr = top.container.as_ptr();
        match top.kind {
            FrameKind::List => {
                // SAFETY: `ptr` is a live exact list (held by the frame); the index is checked against
                // its current size before each read (a `default` may have changed it), and the item is
                // used only while the list holds it and no Python code runs (see `write_scalar`).
                unsafe {
                    while top.written < ffi::PyList_GET_SIZE(ptr) as usize {
                        check_depth(depth)?;
                        let item = ffi::PyList_GET_ITEM(ptr, top.written as ffi::Py_ssize_t);
                        top.written += 1;
                        if !self.write_scalar(item)? {
                            return Ok(Some(Bound::from_borrowed_ptr(self.py, item)));
                        }
                    }
                }
                Ok(None)
            }
            FrameKind::Tuple => {
                // SAFETY: `ptr` is a live exact tuple (held by the frame), which cannot change: its
                // items below its length live as long as it does.
                unsafe {
                    while top.written < top.len {
                        check_depth(depth)?;
                        let item = ffi::PyTuple_GET_ITEM(ptr, top.written as ffi::Py_ssize_t);
                        top.written += 1;
                        if !self.write_scalar(item)? {
                            return Ok(Some(Bound::from_borrowed_ptr(self.py, item)));
                        }
                    }
                }
                Ok(None)
            }
            FrameKind::Dict => {
                if let Some(value) = top.value.take() {
                    return Ok(Some(value)); // the value of the key just packed
                }
                let mut key: *mut ffi::PyObject = std::ptr::null_mut();
                let mut value: *mut ffi::PyObject = std::ptr::null_mut();
                loop {
                    // SAFETY: `ptr` is a live exact dict (held by the frame).
                    if unsafe { ffi::PyDict_Size(ptr) } as usize != top.len {
                        // What the dict's own iterator says when a `default` changed it.
                        return Err(BindingError::ChangedSize { what: "dictionary" }.into());
                    }
                    // SAFETY: PyDict_Next on a live dict yields borrowed references, live while the
                    // dict is unchanged; it stays within the dict's current table.
                    if unsafe { ffi::PyDict_Next(ptr, &mut top.pos, &mut key, &mut value) } == 0 {
                        return Ok(None);
                    }
                    check_depth(depth)?;
                    top.written += 1;
                    // SAFETY: `key` and `value` are live (the dict holds them) until Python code runs:
                    // a key that needs more is returned with an owned reference to its value kept in
                    // the frame, so that packing the key (a `default` that clears the dict) cannot
                    // free the value.
                    unsafe {
                        if !self.write_scalar(key)? {
                            top.value = Some(Bound::from_borrowed_ptr(self.py, value));
                            return Ok(Some(Bound::from_borrowed_ptr(self.py, key)));
                        }
                        if !self.write_scalar(value)? {
                            return Ok(Some(Bound::from_borrowed_ptr(self.py, value)));
                        }
                    }
                }
            }
            FrameKind::Iter | FrameKind::Items => {
                if let Some(value) = top.value.take() {
                    return Ok(Some(value));
                }
                // SAFETY: the frame holds an iterator (made by `try_iter`).
                let iterator = unsafe { top.container.cast_unchecked::<PyIterator>() };
                let Some(item) = iterator.clone().next().transpose()? else {
                    return Ok(None);
                };
                check_depth(depth)?;
                top.written += 1;
                if top.kind == FrameKind::Iter {
                    return Ok(Some(item));
                }
                let (key, value): (Bound<'py, PyAny>, Bound<'py, PyAny>) = item.extract()?;
                top.value = Some(value);
                Ok(Some(key))
            }
        }
    }

    /// Writes `ptr` if it is a scalar that packs without running Python code (and so without a
    /// reference taken to it); false to leave it to `pack_object`.
    ///
    /// # Safety
    /// `ptr` is a live object.
    #[inline(always)]
    unsafe fn write_scalar(&mut self, ptr: *mut ffi::PyObject) -> PyResult<bool> {
        // SAFETY: `ptr` is live (the caller's promise); the checks compare type pointers and each
        // accessor runs after the check for the type it reads. No Python code runs on these paths
        // (an error handler for str would be Python code, so it takes the slow path).
        unsafe {
            if ffi::PyUnicode_CheckExact(ptr) != 0 && self.config.unicode_errors.is_none() {
                let bytes = str_utf8(self.py, ptr)?;
                self.write_str_bytes(bytes)?;
                return Ok(true);
            }
            if ffi::PyLong_CheckExact(ptr) != 0 {
                let mut overflow = 0;
                let value = ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow);
                if overflow == 0 {
                    wire::write_int(self.out, value);
                    return Ok(true);
                }
            } else if ffi::PyFloat_CheckExact(ptr) != 0 {
                self.write_float(ffi::PyFloat_AS_DOUBLE(ptr))?;
                return Ok(true);
            } else if ptr == ffi::Py_None() {
                wire::write_nil(self.out);
                return Ok(true);
            } else if ptr == ffi::Py_True() || ptr == ffi::Py_False() {
                wire::write_bool(self.out, ptr == ffi::Py_True());
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Packs `obj`: writes it whole, or writes a container's header and opens it on `open`.
    fn pack_object(&mut self, obj: Bound<'py, PyAny>, open: &mut Vec<Frame<'py>>) -> PyResult<()> {
        let ptr = obj.as_ptr();
        // The common exact types first, by type pointer. They are the same in strict mode, and none is
        // also a later type, so checking them first keeps msgpack-python's order.
        // SAFETY: `ptr` is a live object (`obj` holds a reference); the checks compare its type
        // pointer, and each accessor is called after the check for the type it reads.
        unsafe {
            if ffi::PyUnicode_CheckExact(ptr) != 0 {
                return self.write_str(&obj);
            }
            if ffi::PyLong_CheckExact(ptr) != 0 {
                let mut overflow = 0;
                let value = ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow);
                if overflow == 0 {
                    wire::write_int(self.out, value); // an exact int cannot fail otherwise
                    return Ok(());
                }
            } else if ffi::PyDict_CheckExact(ptr) != 0 {
                return self.write_dict(obj, open);
            } else if ffi::PyList_CheckExact(ptr) != 0 {
                return self.write_list(obj, open);
            } else if ffi::PyFloat_CheckExact(ptr) != 0 {
                return self.write_float(ffi::PyFloat_AS_DOUBLE(ptr));
            } else if ptr == ffi::Py_None() {
                wire::write_nil(self.out);
                return Ok(());
            }
        }
        if let Some(default) = &self.config.default {
            if let Outcome::Written = self.pack_known(&obj, open, true)? {
                return Ok(());
            }
            let replacement = default.bind(self.py).call1((obj,))?;
            self.pack_known(&replacement, open, false).map(|_| ())
        } else {
            self.pack_known(&obj, open, false).map(|_| ())
        }
    }

    /// msgpack-python's order of checks; `will_default`: leave unknown types (and ints beyond 64
    /// bits) to `default` instead of raising.
    fn pack_known(
        &mut self,
        obj: &Bound<'py, PyAny>,
        open: &mut Vec<Frame<'py>>,
        will_default: bool,
    ) -> PyResult<Outcome> {
        let ptr = obj.as_ptr();
        let strict = self.config.strict_types;
        // SAFETY: every ffi call here gets `ptr`, a live object held by `obj`; each accessor is called
        // only after the check for the type it reads.
        unsafe {
            if ptr == ffi::Py_None() {
                wire::write_nil(self.out);
            } else if ptr == ffi::Py_True() {
                wire::write_bool(self.out, true);
            } else if ptr == ffi::Py_False() {
                wire::write_bool(self.out, false);
            } else if if strict {
                ffi::PyLong_CheckExact(ptr)
            } else {
                ffi::PyLong_Check(ptr)
            } != 0
            {
                return self.write_int(ptr, will_default);
            } else if if strict {
                ffi::PyFloat_CheckExact(ptr)
            } else {
                ffi::PyFloat_Check(ptr)
            } != 0
            {
                self.write_float(ffi::PyFloat_AS_DOUBLE(ptr))?;
            } else if if strict {
                ffi::PyBytes_CheckExact(ptr) != 0 || ffi::PyByteArray_CheckExact(ptr) != 0
            } else {
                ffi::PyBytes_Check(ptr) != 0 || ffi::PyByteArray_Check(ptr) != 0
            } {
                let view = ByteView::new(obj)?;
                let bytes = view.as_slice();
                if bytes.len() > ITEM_LIMIT {
                    let type_name = type_name(obj);
                    return Err(BindingError::ObjectTooLarge { type_name }.into());
                }
                wire::write_bin_header(self.out, bytes.len(), self.config.use_bin_type);
                self.out.extend(bytes);
            } else if if strict {
                ffi::PyUnicode_CheckExact(ptr)
            } else {
                ffi::PyUnicode_Check(ptr)
            } != 0
            {
                self.write_str(obj)?;
            } else if if strict {
                ffi::PyDict_CheckExact(ptr)
            } else {
                ffi::PyDict_Check(ptr)
            } != 0
            {
                self.write_dict(obj.clone(), open)?;
            } else if self.is_ext_type(obj)? {
                self.write_ext_type(obj)?;
            } else if ffi::Py_TYPE(ptr).cast() == self.api.timestamp.as_ptr() {
                let seconds = timestamp_seconds(&obj.getattr("seconds")?)?;
                let nanoseconds: u32 = obj.getattr("nanoseconds")?.extract()?;
                wire::write_timestamp(self.out, seconds, nanoseconds);
            } else if if strict {
                ffi::PyList_CheckExact(ptr)
            } else {
                (ffi::PyList_Check(ptr) != 0 || ffi::PyTuple_Check(ptr) != 0) as i32
            } != 0
            {
                self.write_list(obj.clone(), open)?;
            } else if ffi::PyMemoryView_Check(ptr) != 0 {
                let view = ByteView::new(obj)?;
                let bytes = view.as_slice();
                if bytes.len() > ITEM_LIMIT {
                    return Err(BindingError::MemoryviewTooLarge.into());
                }
                wire::write_bin_header(self.out, bytes.len(), self.config.use_bin_type);
                self.out.extend(bytes);
            } else if self.is_aware_datetime(obj)? == Some(true) {
                let delta = obj.sub(self.api.epoch.bind(self.py))?;
                let days: i64 = delta.getattr("days")?.extract()?;
                let seconds: i64 = delta.getattr("seconds")?.extract()?;
                let micros: u32 = delta.getattr("microseconds")?.extract()?;
                wire::write_timestamp(self.out, days * 86_400 + seconds, micros * 1000);
            } else if will_default {
                return Ok(Outcome::ForDefault);
            } else if self.is_aware_datetime(obj)? == Some(false) {
                let type_name = type_name(obj);
                return Err(BindingError::NaiveDatetime { type_name }.into());
            } else {
                let type_name = type_name(obj);
                return Err(BindingError::CannotSerialize { type_name }.into());
            }
        }
        Ok(Outcome::Written)
    }

    fn is_ext_type(&self, obj: &Bound<'py, PyAny>) -> PyResult<bool> {
        let ext_type = self.api.ext_type.bind(self.py);
        if self.config.strict_types {
            Ok(obj.get_type().is(ext_type))
        } else {
            obj.is_instance(ext_type)
        }
    }

    /// With the `datetime` option: Some(has tzinfo) for an exact `datetime.datetime`, else None.
    fn is_aware_datetime(&self, obj: &Bound<'py, PyAny>) -> PyResult<Option<bool>> {
        if !self.config.datetime || !obj.get_type().is(self.api.datetime.bind(self.py)) {
            return Ok(None);
        }
        Ok(Some(!obj.getattr("tzinfo")?.is_none()))
    }

    /// # Safety
    /// `ptr` is a live int (or int subclass).
    unsafe fn write_int(
        &mut self,
        ptr: *mut ffi::PyObject,
        will_default: bool,
    ) -> PyResult<Outcome> {
        let mut overflow = 0;
        // SAFETY: the caller passes a live int; the error indicator is only read after a failure value.
        unsafe {
            let value = ffi::PyLong_AsLongLongAndOverflow(ptr, &mut overflow);
            if overflow == 0 {
                if value == -1 && !ffi::PyErr_Occurred().is_null() {
                    return Err(PyErr::fetch(self.py));
                }
                wire::write_int(self.out, value);
                return Ok(Outcome::Written);
            }
            if overflow > 0 {
                let value = ffi::PyLong_AsUnsignedLongLong(ptr);
                if value != u64::MAX || ffi::PyErr_Occurred().is_null() {
                    wire::write_uint(self.out, value);
                    return Ok(Outcome::Written);
                }
                ffi::PyErr_Clear();
            }
        }
        if will_default {
            return Ok(Outcome::ForDefault);
        }
        Err(BindingError::IntOutOfRange.into())
    }

    fn write_float(&mut self, value: f64) -> PyResult<()> {
        if self.config.use_single_float {
            let single = value as f32; // rounds to nearest, as a C cast does
            if single.is_infinite() && value.is_finite() {
                return Err(BindingError::FloatTooLarge.into());
            }
            wire::write_f32(self.out, single);
        } else {
            wire::write_f64(self.out, value);
        }
        Ok(())
    }

    fn write_str(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let ptr = obj.as_ptr();
        if let Some(errors) = &self.config.unicode_errors {
            // SAFETY: `ptr` is a live str; the encoding and handler names are NUL-terminated.
            let encoded = unsafe {
                Bound::from_owned_ptr_or_err(
                    self.py,
                    ffi::PyUnicode_AsEncodedString(ptr, c"utf-8".as_ptr(), errors.as_ptr()),
                )?
            };
            let bytes = encoded.cast::<PyBytes>()?.as_bytes();
            return self.write_str_bytes(bytes);
        }
        // SAFETY: `ptr` is a live str, held by `obj` until its bytes are copied.
        let bytes = unsafe { str_utf8(self.py, ptr)? };
        self.write_str_bytes(bytes)
    }

    #[inline(always)]
    fn write_str_bytes(&mut self, bytes: &[u8]) -> PyResult<()> {
        if bytes.len() > ITEM_LIMIT {
            return Err(BindingError::StrTooLarge.into());
        }
        wire::write_str_header(self.out, bytes.len(), self.config.use_bin_type);
        self.out.extend(bytes);
        Ok(())
    }

    /// The map header, then the dict opened for its pairs.
    fn write_dict(&mut self, obj: Bound<'py, PyAny>, open: &mut Vec<Frame<'py>>) -> PyResult<()> {
        // SAFETY: `obj` is a live dict or dict subclass (the callers checked).
        let len = unsafe { ffi::PyDict_Size(obj.as_ptr()) } as usize;
        if len > ITEM_LIMIT {
            return Err(BindingError::DictTooLarge.into());
        }
        wire::write_map_header(self.out, len);
        // SAFETY: `obj` is a live dict or dict subclass.
        if unsafe { ffi::PyDict_CheckExact(obj.as_ptr()) } == 0 {
            // A subclass may define its own items() (OrderedDict's order, for one): use it.
            let items = obj.call_method0("items")?.try_iter()?.into_any();
            push(open, FrameKind::Items, items, len);
        } else {
            push(open, FrameKind::Dict, obj, len);
        }
        Ok(())
    }

    /// The array header, then the list or tuple opened for its items.
    fn write_list(&mut self, obj: Bound<'py, PyAny>, open: &mut Vec<Frame<'py>>) -> PyResult<()> {
        let ptr = obj.as_ptr();
        // SAFETY: `ptr` is a live list or tuple (or subclass); Py_SIZE reads its item count.
        let len = unsafe { ffi::Py_SIZE(ptr) } as usize;
        if len > ITEM_LIMIT {
            return Err(BindingError::ListTooLarge.into());
        }
        wire::write_array_header(self.out, len);
        // SAFETY: type checks on a live object.
        let (is_list, is_tuple) = unsafe {
            (
                ffi::PyList_CheckExact(ptr) != 0,
                ffi::PyTuple_CheckExact(ptr) != 0,
            )
        };
        if is_list {
            push(open, FrameKind::List, obj, len);
        } else if is_tuple {
            push(open, FrameKind::Tuple, obj, len);
        } else {
            // A subclass may define its own __iter__: iterate it, as msgpack-python does.
            push(open, FrameKind::Iter, obj.try_iter()?.into_any(), len);
        }
        Ok(())
    }

    fn write_ext_type(&mut self, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        let code = ext_code(obj.getattr("code")?.extract()?)?;
        let data = obj.getattr("data")?;
        let view = ByteView::new(&data)?;
        let payload = view.as_slice();
        if payload.len() > ITEM_LIMIT {
            return Err(BindingError::ExtTooLarge.into());
        }
        wire::write_ext_header(self.out, code, payload.len());
        self.out.extend(payload);
        Ok(())
    }
}

fn timestamp_seconds(seconds: &Bound<'_, PyAny>) -> PyResult<i64> {
    seconds
        .extract()
        .map_err(|_| BindingError::IntTooLargeForCLong.into())
}

/// A container that changed size while being packed would leave a header that lies.
fn check_written(written: usize, announced: usize, what: &'static str) -> PyResult<()> {
    if written != announced {
        return Err(BindingError::ChangedSize { what }.into());
    }
    Ok(())
}

/// The UTF-8 bytes of a str, borrowed from it: compact ASCII strings are read in place, others
/// through CPython, which keeps their UTF-8 form with the string.
///
/// # Safety
/// `ptr` is a live str (or subclass) that outlives the returned slice.
#[inline(always)]
unsafe fn str_utf8<'a>(py: Python<'_>, ptr: *mut ffi::PyObject) -> PyResult<&'a [u8]> {
    #[cfg(not(any(Py_3_14, PyPy, GraalPy)))]
    // SAFETY: the caller passes a live str; a compact ASCII string keeps its PyUnicode_GET_LENGTH
    // bytes right at PyUnicode_DATA.
    unsafe {
        if ffi::PyUnicode_IS_COMPACT_ASCII(ptr) != 0 {
            let len = ffi::PyUnicode_GET_LENGTH(ptr) as usize;
            return Ok(std::slice::from_raw_parts(
                ffi::PyUnicode_DATA(ptr) as *const u8,
                len,
            ));
        }
    }
    let mut len: ffi::Py_ssize_t = 0;
    // SAFETY: the caller passes a live str; PyUnicode_AsUTF8AndSize returns a buffer of `len` bytes
    // owned by the string, or null with an error set.
    unsafe {
        let data = ffi::PyUnicode_AsUTF8AndSize(ptr, &mut len);
        if data.is_null() {
            return Err(PyErr::fetch(py));
        }
        Ok(std::slice::from_raw_parts(data.cast::<u8>(), len as usize))
    }
}
