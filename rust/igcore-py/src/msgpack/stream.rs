//! The streaming `Unpacker`: a buffer fed with bytes (or read from a file), framed by
//! `igcore_core::msgpack::Scanner`, each object built once all of its bytes are there.

use igcore_core::msgpack::{self as wire, ContainerLimits, Header, Scanner, WireError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use super::buffer::ByteView;
use super::keys;
use super::unpack::Reader;
use super::{api, Limits, UnpackConfig};
use crate::error::{wire, BindingError};
use crate::guard::one_call_at_a_time;

/// See `igcore._reference.msgpack.Unpacker`.
#[pyclass(module = "igcore._rust.msgpack")]
pub(crate) struct Unpacker {
    file_read: Option<Py<PyAny>>,
    read_size: usize,
    max_buffer_size: usize,
    config: UnpackConfig,
    limits: Limits,
    buffer: Vec<u8>,
    /// The next unread byte of `buffer`.
    pos: usize,
    /// The stream offset of `buffer[0]`.
    offset: u64,
    /// The walk through an incomplete object starting at `pos`, and whether it checks limits.
    scan: Option<(Scanner, bool)>,
}

/// The unpacker, for one call: a call made while another is in progress on it (another thread's, or
/// one from a hook or `file_like.read()` that the first runs) raises RuntimeError instead.
fn busy<'py>(slf: &Bound<'py, Unpacker>) -> PyResult<PyRefMut<'py, Unpacker>> {
    one_call_at_a_time(slf, "Unpacker")
}

fn buffer_full(py: Python<'_>) -> PyResult<PyErr> {
    Ok(PyErr::from_value(api(py)?.buffer_full.bind(py).call0()?))
}

#[pymethods]
impl Unpacker {
    #[new]
    fn new(
        file_read: Option<Py<PyAny>>,
        read_size: usize,
        max_buffer_size: usize,
        options: &Bound<'_, PyAny>,
    ) -> PyResult<Self> {
        let config = UnpackConfig::from_options(options)?;
        let limits = config.limits(max_buffer_size as i64);
        Ok(Self {
            file_read,
            read_size,
            max_buffer_size,
            config,
            limits,
            buffer: Vec::new(),
            pos: 0,
            offset: 0,
            scan: None,
        })
    }

    fn feed(slf: &Bound<'_, Self>, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        busy(slf)?.feed_now(py, data)
    }

    fn unpack<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        busy(slf)?.unpack_now(py)
    }

    fn skip(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<()> {
        busy(slf)?.skip_now(py)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        busy(slf)?.next_now(py)
    }

    fn read_array_header(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<u32> {
        busy(slf)?.read_array_header_now(py)
    }

    fn read_map_header(slf: &Bound<'_, Self>, py: Python<'_>) -> PyResult<u32> {
        busy(slf)?.read_map_header_now(py)
    }

    fn read_bytes<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        n: usize,
    ) -> PyResult<Bound<'py, PyBytes>> {
        busy(slf)?.read_bytes_now(py, n)
    }

    fn tell(slf: &Bound<'_, Self>) -> PyResult<u64> {
        Ok(busy(slf)?.tell_now())
    }

    fn __traverse__(&self, visit: pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        visit.call(&self.file_read)?;
        self.config.traverse(&visit)
    }

    /// Breaks reference cycles through the hooks or the file (a hook that refers to its unpacker).
    fn __clear__(&mut self, py: Python<'_>) {
        self.file_read = None;
        self.config.object_hook = None;
        self.config.object_pairs_hook = None;
        self.config.list_hook = None;
        self.config.ext_hook = py.None();
    }
}

impl Unpacker {
    fn feed_now(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let view = ByteView::new(data)?;
        let bytes = view.as_slice();
        if self.held().saturating_add(bytes.len()) > self.max_buffer_size {
            return Err(buffer_full(py)?);
        }
        self.drop_consumed();
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn unpack_now<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match self.next_object(py, true)? {
            Some(obj) => Ok(obj),
            None => Err(BindingError::NoMoreData.into()),
        }
    }

    fn skip_now(&mut self, py: Python<'_>) -> PyResult<()> {
        match self.next_object(py, false)? {
            Some(_) => Ok(()),
            None => Err(BindingError::NoMoreData.into()),
        }
    }

    fn next_now<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        self.next_object(py, true)
    }

    fn read_array_header_now(&mut self, py: Python<'_>) -> PyResult<u32> {
        self.container_header(py, 0x90, 0xdc)
    }

    fn read_map_header_now(&mut self, py: Python<'_>) -> PyResult<u32> {
        self.container_header(py, 0x80, 0xde)
    }

    fn read_bytes_now<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let end = self.pos + n.min(self.held());
        let mut taken = self.buffer.get(self.pos..end).unwrap_or_default().to_vec();
        self.pos = end;
        self.scan = None;
        if taken.len() < n {
            if let Some(read) = &self.file_read {
                let more = read.bind(py).call1((n - taken.len(),))?;
                let more = more.cast::<PyBytes>()?.as_bytes();
                self.offset += more.len() as u64; // read past the (now empty) buffer
                taken.extend_from_slice(more);
            }
        }
        Ok(PyBytes::new(py, &taken))
    }

    fn tell_now(&self) -> u64 {
        self.offset + self.pos as u64
    }

    /// Bytes held and not yet consumed.
    fn held(&self) -> usize {
        self.buffer.len() - self.pos
    }

    fn drop_consumed(&mut self) {
        if self.pos > 0 {
            self.buffer.drain(..self.pos);
            self.offset += self.pos as u64;
            self.pos = 0;
        }
    }

    /// Reads more of the file into the buffer; false at its end (or without a file).
    fn read_file(&mut self, py: Python<'_>) -> PyResult<bool> {
        let Some(read) = &self.file_read else {
            return Ok(false);
        };
        let room = self.max_buffer_size.saturating_sub(self.held());
        if room == 0 {
            return Err(buffer_full(py)?);
        }
        let chunk = read.bind(py).call1((self.read_size.min(room),))?;
        let chunk = chunk.cast::<PyBytes>().map_err(|_| {
            let type_name = chunk
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            PyErr::from(BindingError::ReadNotBytes { type_name })
        })?;
        if chunk.as_bytes().is_empty() {
            return Ok(false);
        }
        self.drop_consumed();
        self.buffer.extend_from_slice(chunk.as_bytes());
        Ok(true)
    }

    /// The next whole object (built, or None-for-skipped as Some(None)); None when its bytes are not
    /// all here and the file (if any) has no more.
    fn next_object<'py>(
        &mut self,
        py: Python<'py>,
        build: bool,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        // Skipping checks no limits, as msgpack-python's does not.
        let limits = build.then_some(ContainerLimits {
            max_array_len: self.limits.array_len,
            max_map_len: self.limits.map_len,
        });
        loop {
            if let Some(unread) = self.buffer.get(self.pos..).filter(|rest| !rest.is_empty()) {
                let mut scanner = match self.scan.take() {
                    Some((scanner, checked)) if checked == build => scanner,
                    _ => Scanner::new(),
                };
                // An error drops the walk: the next call walks the object again and raises again.
                match scanner.scan(unread, limits).map_err(wire)? {
                    None => self.scan = Some((scanner, build)),
                    Some(len) => {
                        let object = unread.get(..len).unwrap_or_default();
                        let obj = if build {
                            let mut cache = keys::lock();
                            let keys = cache.as_mut().and_then(|c| c.as_mut());
                            Reader::new(py, object, &self.config, self.limits, keys)?.read()?
                        } else {
                            py.None().into_bound(py)
                        };
                        self.pos += len;
                        return Ok(Some(obj));
                    }
                }
            }
            if !self.read_file(py)? {
                return Ok(None);
            }
        }
    }

    /// The size of the array or map that comes next (markers: its fix range start and its 16-bit form).
    fn container_header(&mut self, py: Python<'_>, fix: u8, marker16: u8) -> PyResult<u32> {
        loop {
            if let Some(&marker) = self.buffer.get(self.pos) {
                let expected = (fix..=fix + 0x0f).contains(&marker)
                    || marker == marker16
                    || marker == marker16 + 1;
                if !expected {
                    return Err(BindingError::UnexpectedTypeHeader.into());
                }
                match wire::read_header(&self.buffer, self.pos) {
                    Ok((Header::Array(len) | Header::Map(len), next)) => {
                        self.pos = next;
                        self.scan = None;
                        return Ok(len);
                    }
                    Ok(_) => return Err(BindingError::UnexpectedTypeHeader.into()),
                    Err(WireError::IncompleteInput) => {}
                    Err(err) => return Err(wire(err)),
                }
            }
            if !self.read_file(py)? {
                return Err(BindingError::NoMoreData.into());
            }
        }
    }
}
