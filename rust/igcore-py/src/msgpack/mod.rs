//! `igcore._rust.msgpack`: the msgpack codec. The wire format (headers, lengths, limits, framing) is
//! plain Rust in `igcore_core::msgpack`; this module walks and builds Python objects with the C API
//! directly (exact-type dispatch, no intermediate value tree), which only a binding crate can do.

use std::cell::RefCell;
use std::ffi::{CStr, CString};
use std::rc::Rc;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

mod buffer;
mod keys;
mod pack;
mod reuse;
mod stream;
mod unpack;

/// The Python objects the codec needs: the public classes it builds and raises, and `datetime`'s.
pub(crate) struct Api {
    pub ext_type: Py<PyAny>,
    pub timestamp: Py<PyAny>,
    pub extra_data: Py<PyAny>,
    pub format_error: Py<PyAny>,
    pub stack_error: Py<PyAny>,
    pub out_of_data: Py<PyAny>,
    pub buffer_full: Py<PyAny>,
    pub datetime: Py<PyAny>,
    pub timedelta: Py<PyAny>,
    pub epoch: Py<PyAny>,
}

static API: PyOnceLock<Api> = PyOnceLock::new();

/// Imported on first use: `igcore.msgpack` imports this module lazily, so it exists by then.
pub(crate) fn api(py: Python<'_>) -> PyResult<&'static Api> {
    API.get_or_try_init(py, || {
        let ext = py.import("igcore.msgpack.ext")?;
        let exceptions = py.import("igcore.msgpack.exceptions")?;
        let datetime = py.import("datetime")?;
        let utc = datetime.getattr("timezone")?.getattr("utc")?;
        let epoch = datetime
            .getattr("datetime")?
            .call1((1970, 1, 1, 0, 0, 0, 0, utc))?;
        Ok(Api {
            ext_type: ext.getattr("ExtType")?.unbind(),
            timestamp: ext.getattr("Timestamp")?.unbind(),
            extra_data: exceptions.getattr("ExtraData")?.unbind(),
            format_error: exceptions.getattr("FormatError")?.unbind(),
            stack_error: exceptions.getattr("StackError")?.unbind(),
            out_of_data: exceptions.getattr("OutOfData")?.unbind(),
            buffer_full: exceptions.getattr("BufferFull")?.unbind(),
            datetime: datetime.getattr("datetime")?.unbind(),
            timedelta: datetime.getattr("timedelta")?.unbind(),
            epoch: epoch.unbind(),
        })
    })
}

/// The name CPython gives a type in messages (`tp_name`, as msgpack-python prints it).
pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    // SAFETY: every live object has a type whose tp_name is a NUL-terminated string for its lifetime.
    let name = unsafe { CStr::from_ptr((*ffi::Py_TYPE(obj.as_ptr())).tp_name) };
    name.to_string_lossy().chars().take(200).collect()
}

/// An error handler name for the codecs, or None for strict.
fn error_handler(value: &Bound<'_, PyAny>) -> PyResult<Option<CString>> {
    if value.is_none() {
        return Ok(None);
    }
    let name: String = value.extract()?;
    Ok(Some(CString::new(name)?))
}

/// `igcore.msgpack._options.PackOptions`, read once per call or Packer.
pub(crate) struct PackConfig {
    pub default: Option<Py<PyAny>>,
    pub use_single_float: bool,
    pub use_bin_type: bool,
    pub strict_types: bool,
    pub datetime: bool,
    pub unicode_errors: Option<CString>,
}

impl PackConfig {
    pub fn from_options(options: &Bound<'_, PyAny>) -> PyResult<Self> {
        let fields = options.cast::<PyTuple>()?;
        let default = fields.get_item(0)?;
        Ok(Self {
            default: (!default.is_none()).then(|| default.unbind()),
            use_single_float: fields.get_item(1)?.is_truthy()?,
            use_bin_type: fields.get_item(2)?.is_truthy()?,
            strict_types: fields.get_item(3)?.is_truthy()?,
            datetime: fields.get_item(4)?.is_truthy()?,
            unicode_errors: error_handler(&fields.get_item(5)?)?,
        })
    }
}

/// `igcore.msgpack._options.UnpackOptions`, with the limits left at -1 to be resolved by the caller.
pub(crate) struct UnpackConfig {
    pub use_list: bool,
    pub raw: bool,
    pub timestamp: u8,
    pub strict_map_key: bool,
    pub object_hook: Option<Py<PyAny>>,
    pub object_pairs_hook: Option<Py<PyAny>>,
    pub list_hook: Option<Py<PyAny>>,
    pub ext_hook: Py<PyAny>,
    pub unicode_errors: Option<CString>,
    /// max_str_len, max_bin_len, max_array_len, max_map_len, max_ext_len (-1: the default)
    pub max_lens: [i64; 5],
}

/// The limits an unpacking call checks, after -1 is replaced by the default.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub str_len: i64,
    pub bin_len: i64,
    pub array_len: i64,
    pub map_len: i64,
    pub ext_len: i64,
}

fn hook(value: Bound<'_, PyAny>) -> Option<Py<PyAny>> {
    (!value.is_none()).then(|| value.unbind())
}

impl UnpackConfig {
    pub fn from_options(options: &Bound<'_, PyAny>) -> PyResult<Self> {
        let fields = options.cast::<PyTuple>()?;
        let mut max_lens = [0i64; 5];
        for (slot, index) in max_lens.iter_mut().zip(9..) {
            *slot = fields.get_item(index)?.extract()?;
        }
        Ok(Self {
            use_list: fields.get_item(0)?.is_truthy()?,
            raw: fields.get_item(1)?.is_truthy()?,
            timestamp: fields.get_item(2)?.extract()?,
            strict_map_key: fields.get_item(3)?.is_truthy()?,
            object_hook: hook(fields.get_item(4)?),
            object_pairs_hook: hook(fields.get_item(5)?),
            list_hook: hook(fields.get_item(6)?),
            ext_hook: fields.get_item(7)?.unbind(),
            unicode_errors: error_handler(&fields.get_item(8)?)?,
            max_lens,
        })
    }

    /// The limits with -1 replaced by `default` (half of it for maps), as msgpack-python does.
    pub fn limits(&self, default: i64) -> Limits {
        let pick = |value: i64, fallback: i64| if value == -1 { fallback } else { value };
        let [str_len, bin_len, array_len, map_len, ext_len] = self.max_lens;
        Limits {
            str_len: pick(str_len, default),
            bin_len: pick(bin_len, default),
            array_len: pick(array_len, default),
            map_len: pick(map_len, default / 2),
            ext_len: pick(ext_len, default),
        }
    }

    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.object_hook)?;
        visit.call(&self.object_pairs_hook)?;
        visit.call(&self.list_hook)?;
        visit.call(&self.ext_hook)
    }
}

/// The options object of a call and what was read from it.
type Remembered<T> = RefCell<Option<(Py<PyAny>, Rc<T>)>>;

thread_local! {
    /// The options object of the last call, and what was read from it: the public layer hands the same
    /// object to every call with the same options, so most calls skip reading it again.
    static LAST_PACK: Remembered<PackConfig> = const { RefCell::new(None) };
    static LAST_UNPACK: Remembered<UnpackConfig> = const { RefCell::new(None) };
}

/// The PackConfig of `options`, read once per options object (per thread).
pub(crate) fn pack_config(options: &Bound<'_, PyAny>) -> PyResult<Rc<PackConfig>> {
    cached(&LAST_PACK, options, PackConfig::from_options)
}

/// The UnpackConfig of `options`, read once per options object (per thread).
pub(crate) fn unpack_config(options: &Bound<'_, PyAny>) -> PyResult<Rc<UnpackConfig>> {
    cached(&LAST_UNPACK, options, UnpackConfig::from_options)
}

fn cached<T>(
    slot: &'static std::thread::LocalKey<Remembered<T>>,
    options: &Bound<'_, PyAny>,
    read: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Rc<T>> {
    let hit = slot.with(|last| match &*last.borrow() {
        Some((seen, config)) if seen.is(options) => Some(Rc::clone(config)),
        _ => None,
    });
    if let Some(config) = hit {
        return Ok(config);
    }
    let config = Rc::new(read(options)?);
    slot.with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some((options.clone().unbind(), Rc::clone(&config)));
        }
    });
    Ok(config)
}

pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::add_hot_path(parent, "msgpack", |m| {
        m.add_function(wrap_pyfunction!(pack::packb, m)?)?;
        m.add_function(wrap_pyfunction!(unpack::unpackb, m)?)?;
        m.add_class::<pack::Packer>()?;
        m.add_class::<stream::Unpacker>()?;
        Ok(())
    })
}

/// Pushes `item` onto a stack of open containers, written in place: the packer's and the unpacker's
/// frames are pushed on every container, where `Vec::push`'s growth path, inlined each time, costs.
#[inline(always)]
fn push_in_place<T>(stack: &mut Vec<T>, item: T) {
    stack.reserve(1);
    let len = stack.len();
    // SAFETY: `reserve` made room for one more item at index `len`, which is written whole before the
    // length counts it.
    unsafe {
        stack.as_mut_ptr().add(len).write(item);
        stack.set_len(len + 1);
    }
}
