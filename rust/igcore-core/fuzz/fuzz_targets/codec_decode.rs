//! Arbitrary bytes through the id and entries decoders of `igcore.codec` (the timeline cache format).
//! Nothing may panic or allocate beyond the input's worth; whatever decodes must encode and decode back
//! to the same values.
//!
//! The first byte picks the decoder and whether to seal the rest with its correct CRC-32: unsealed
//! inputs exercise the envelope checks, sealed ones let the fuzzer reach the body behind the checksum.
#![no_main]

use igcore_core::codec::{decode_entries, decode_ids, encode_entries, encode_ids, ScoreColumn};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&knobs, body)) = input.split_first() else {
        return;
    };
    let mut data = body.to_vec();
    if knobs & 2 == 2 {
        let crc = crc32fast::hash(&data);
        data.extend_from_slice(&crc.to_le_bytes());
    }
    if knobs & 1 == 0 {
        if let Ok(ids) = decode_ids(&data) {
            assert_eq!(decode_ids(&encode_ids(&ids)), Ok(ids));
        }
    } else if let Ok(entries) = decode_entries(&data) {
        let scores = if entries.float_scores {
            ScoreColumn::FloatKeys(&entries.keys)
        } else {
            ScoreColumn::Int(&entries.keys)
        };
        let again = encode_entries(scores, &entries.post_ids, &entries.author_ids)
            .and_then(|bytes| decode_entries(&bytes));
        assert_eq!(again, Ok(entries));
    }
});
