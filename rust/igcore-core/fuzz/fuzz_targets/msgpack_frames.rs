//! Arbitrary bytes through the msgpack wire format: headers, payloads, timestamps and the stream
//! scanner. Nothing may panic; a stream scanned in pieces must end where it ends scanned whole; every
//! scalar read must write back to bytes that read the same.
#![no_main]

use igcore_core::msgpack::{
    payload, read_header, read_timestamp, text_shape, write_bool, write_chars, write_f32,
    write_f64, write_int, write_nil, write_uint, ContainerLimits, Header, Output, Scanner,
    WireError,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    // The first byte chooses how the rest is cut into pieces and which limits apply.
    let Some((&knobs, data)) = input.split_first() else {
        return;
    };
    let limits = (knobs & 1 == 1).then_some(ContainerLimits {
        max_array_len: i64::from(knobs >> 4),
        max_map_len: i64::from(knobs >> 5),
    });

    // One object, scanned whole and scanned as its bytes arrive in pieces: the same answer.
    let whole = Scanner::new().scan(data, limits);
    if let Ok(Some(end)) = whole {
        assert!(end <= data.len());
    }
    let step = usize::from(knobs >> 1).max(1);
    let mut scanner = Scanner::new();
    let mut pieces = Ok(None);
    let mut seen = 0;
    while seen < data.len() {
        seen = (seen + step).min(data.len());
        pieces = scanner.scan(&data[..seen], limits);
        if !matches!(pieces, Ok(None)) {
            break;
        }
    }
    if data.is_empty() {
        pieces = scanner.scan(data, limits);
    }
    assert_eq!(whole, pieces, "scanned whole and in pieces of {step}");

    // Headers one after another; every scalar writes back to the same reading.
    let mut pos = 0;
    while let Ok((header, next)) = read_header(data, pos) {
        assert!(next > pos && next <= data.len());
        let mut out = Output::new();
        match header {
            Header::Nil => write_nil(&mut out),
            Header::Bool(value) => write_bool(&mut out, value),
            Header::Int(value) => write_int(&mut out, value),
            Header::BigUInt(value) => write_uint(&mut out, value),
            Header::F32(value) => write_f32(&mut out, value),
            Header::F64(value) => write_f64(&mut out, value),
            _ => {}
        }
        if !out.is_empty() {
            let again = read_header(out.as_slice(), 0).map(|(h, end)| (format!("{h:?}"), end));
            assert_eq!(again, Ok((format!("{header:?}"), out.len())));
        }
        pos = match header {
            Header::Str(len) | Header::Bin(len) | Header::Ext { len, .. } => {
                match payload(data, next, len) {
                    Ok(bytes) => {
                        if let Header::Ext { code: -1, .. } = header {
                            let _ = read_timestamp(bytes);
                        }
                        if let Ok(text) = std::str::from_utf8(bytes) {
                            let (chars, _) = text_shape(text);
                            let mut wide = vec![0u32; chars];
                            write_chars(text, &mut wide);
                            assert!(wide.iter().copied().eq(text.chars().map(u32::from)));
                        }
                        next + bytes.len()
                    }
                    Err(WireError::Incomplete) => break,
                    Err(other) => panic!("payload() failed with {other:?}"),
                }
            }
            _ => next,
        };
    }
});
