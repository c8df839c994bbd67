//! Small integer and float helpers that several hot paths share, under the names the Cython backends
//! give them (`cython/_cy_numbers.pxd`), with the reference's rules.

/// Floor division for `divisor >= 1`, as Python's `//`: the quotient rounded toward minus infinity, so
/// negative times fall in their own windows. Callers check `divisor >= 1` where it is given.
#[inline(always)]
pub fn floor_div(value: i64, divisor: i64) -> i64 {
    debug_assert!(divisor >= 1, "floor_div by {divisor}");
    // For a positive divisor the Euclidean quotient is the floor.
    value.div_euclid(divisor)
}

/// The order-preserving int64 key of a float64's bit pattern: flips the 63 value bits of negative
/// numbers, so that keys compare as the floats do. A bijection (its own inverse) on all 2**64 patterns.
#[inline(always)]
pub fn float_bits_key(score: f64) -> i64 {
    let bits = score.to_bits() as i64;
    bits ^ ((bits >> 63) & i64::MAX)
}

/// The float64 whose [`float_bits_key`] is `key`.
#[inline(always)]
pub fn key_float_bits(key: i64) -> f64 {
    f64::from_bits((key ^ ((key >> 63) & i64::MAX)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_div_rounds_toward_minus_infinity_as_python_does() {
        let cases = [
            (7, 2, 3),
            (-7, 2, -4),
            (-1, 60, -1),
            (0, 5, 0),
            (-60, 60, -1),
            (-61, 60, -2),
            (i64::MIN, 1, i64::MIN),
            (i64::MIN, i64::MAX, -2),
            (i64::MAX, i64::MAX, 1),
        ];
        for (value, divisor, floor) in cases {
            assert_eq!(floor_div(value, divisor), floor, "{value} // {divisor}");
        }
    }

    #[test]
    fn float_keys_order_as_the_floats_and_round_trip_every_pattern() {
        let floats = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -f64::MIN_POSITIVE,
            -0.0,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            1e300,
            f64::INFINITY,
        ];
        for pair in floats.windows(2) {
            assert!(
                float_bits_key(pair[0]) < float_bits_key(pair[1]),
                "{pair:?}"
            );
        }
        for f in floats
            .into_iter()
            .chain([f64::NAN, f64::from_bits(0xFFF8_0000_0000_0001)])
        {
            assert_eq!(key_float_bits(float_bits_key(f)).to_bits(), f.to_bits());
        }
        for key in [i64::MIN, -1, 0, 1, i64::MAX] {
            assert_eq!(float_bits_key(key_float_bits(key)), key);
        }
    }
}
