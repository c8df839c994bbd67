//! Reading edge-list text as SNAP ships it. See the reference's `parse_edgelist` for the rules.

use crate::error::{GraphError, Result};

/// The columns of an edge list: source, target, and a third one (e.g. a time) when the file has it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EdgeList {
    pub src: Vec<i64>,
    pub dst: Vec<i64>,
    pub third: Option<Vec<i64>>,
}

/// Parses one field: an optional sign and decimal digits, in the int64 range.
fn parse_field(field: &[u8], line: usize, column: usize) -> Result<i64> {
    let (negative, digits) = match field.first() {
        Some(b'-') => (true, &field[1..]),
        Some(b'+') => (false, &field[1..]),
        _ => (false, field),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(GraphError::EdgeListNotAnInteger { line, column }.into());
    }
    // Accumulate towards the negative side, which holds one more value than the positive side.
    let mut value: i64 = 0;
    for &d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_sub((d - b'0') as i64))
            .ok_or(GraphError::EdgeListOutsideInt64 { line, column })?;
    }
    if negative {
        Ok(value)
    } else {
        value
            .checked_neg()
            .ok_or_else(|| GraphError::EdgeListOutsideInt64 { line, column }.into())
    }
}

/// Parses the text of an edge-list file.
pub fn parse_edgelist(data: &[u8]) -> Result<EdgeList> {
    let mut columns: [Vec<i64>; 3] = Default::default();
    let mut width = 0;
    // A rough guess of the number of lines, so the columns rarely grow.
    let guess = data.len() / 12;
    columns[0].reserve(guess);
    columns[1].reserve(guess);
    let mut fields: Vec<&[u8]> = Vec::with_capacity(4);
    for (number, mut line) in data.split(|&c| c == b'\n').enumerate() {
        let number = number + 1;
        if let Some(stripped) = line.strip_suffix(b"\r") {
            line = stripped;
        }
        fields.clear();
        fields.extend(
            line.split(|&c| c == b' ' || c == b'\t')
                .filter(|f| !f.is_empty()),
        );
        match fields.first() {
            None => continue,
            Some(first) if first.starts_with(b"#") => continue,
            Some(_) => {}
        }
        if width == 0 {
            if !(2..=3).contains(&fields.len()) {
                return Err(GraphError::EdgeListColumns {
                    line: number,
                    found: fields.len(),
                }
                .into());
            }
            width = fields.len();
        } else if fields.len() != width {
            return Err(GraphError::EdgeListWidth {
                line: number,
                width,
                found: fields.len(),
            }
            .into());
        }
        for (column, field) in fields.iter().enumerate() {
            columns[column].push(parse_field(field, number, column + 1)?);
        }
    }
    let [src, dst, third] = columns;
    Ok(EdgeList {
        src,
        dst,
        third: if width == 3 { Some(third) } else { None },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_snap_headers_crlf_tabs_and_a_missing_final_newline() {
        let text = b"# Directed graph\r\n# FromNodeId\tToNodeId\r\n0\t1\r\n  2  3 \r\n\r\n-4\t+5";
        let got = parse_edgelist(text).unwrap();
        assert_eq!(got.src, vec![0, 2, -4]);
        assert_eq!(got.dst, vec![1, 3, 5]);
        assert_eq!(got.third, None);
    }

    #[test]
    fn a_third_column_is_kept() {
        let got = parse_edgelist(b"1 2 100\n3 4 200\n").unwrap();
        assert_eq!(got.third, Some(vec![100, 200]));
    }

    #[test]
    fn the_int64_extremes_parse_and_one_beyond_does_not() {
        let got = parse_edgelist(b"-9223372036854775808 9223372036854775807\n").unwrap();
        assert_eq!((got.src[0], got.dst[0]), (i64::MIN, i64::MAX));
        let err = parse_edgelist(b"1 2\n9223372036854775808 1\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: column 1 is outside the int64 range"
        );
    }

    #[test]
    fn malformed_lines_are_named() {
        let cases: [(&[u8], &str); 5] = [
            (b"1 2\n3 x\n", "line 2: column 2 is not an integer"),
            (b"1\n", "line 1: expected 2 or 3 columns, found 1"),
            (b"1 2\n1 2 3\n", "line 2: expected 2 columns, found 3"),
            (b"# c\n1 2\n- 3\n", "line 3: column 1 is not an integer"),
            (b"1 2\x0c\n", "line 1: column 2 is not an integer"),
        ];
        for (text, message) in cases {
            assert_eq!(parse_edgelist(text).unwrap_err().to_string(), message);
        }
    }
}
