//! `HyperLogLog`: distinct counts with Redis's parameters and hash, register for register.
//!
//! The contract is `HyperLogLog` in `src/igcore/_reference/counters.py`; the algorithm is the one of
//! Redis (`PFADD`, `PFCOUNT`, `PFMERGE`): MurmurHash64A with Redis's seed, 2^14 registers, and Otmar
//! Ertl's estimator. Registers are kept one per byte here; the 6-bit packed string Redis stores is
//! made and read by the Python layer, once for all backends.

use crate::error::{CounterError, Result};

pub const P: u32 = 14;
pub const REGISTERS: usize = 1 << P;
const Q: u32 = 64 - P;
/// The largest value a register can take: a run of `Q` zeros, plus one.
pub const MAX_REGISTER: u8 = Q as u8 + 1;
const SEED: u64 = 0xadc8_3b19;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7; // 1 / (2 ln 2)

/// Austin Appleby's MurmurHash64A, as Redis hashes HyperLogLog elements.
#[inline]
pub fn murmurhash64a(data: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let mut h = seed ^ (data.len() as u64).wrapping_mul(M);
    let mut blocks = data.chunks_exact(8);
    for block in &mut blocks {
        let mut word = [0_u8; 8];
        word.copy_from_slice(block);
        let mut k = u64::from_le_bytes(word).wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = (h ^ k).wrapping_mul(M);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        // Byte by byte rather than a copy of variable length, which would call memcpy.
        let word = tail
            .iter()
            .rev()
            .fold(0_u64, |word, &byte| (word << 8) | u64::from(byte));
        h = (h ^ word).wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^ (h >> R)
}

/// The register of an element and the value it offers: the low 14 bits of the hash choose the
/// register; the value is one more than the number of trailing zeros of the other 50 bits.
#[inline(always)]
fn position(element: &[u8]) -> (usize, u8) {
    let hash = murmurhash64a(element, SEED);
    let index = (hash as usize) & (REGISTERS - 1);
    let rest = (hash >> P) | (1 << Q);
    (index, rest.trailing_zeros() as u8 + 1)
}

const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes the two digits of `pair` (0..100) at `buffer[at..at + 2]`.
#[inline(always)]
fn put_pair(buffer: &mut [u8; 20], at: usize, pair: u32) {
    let from = pair as usize * 2;
    buffer[at..at + 2].copy_from_slice(&DIGIT_PAIRS[from..from + 2]);
}

/// The eight decimal digits of `n` (below 10^8, with leading zeros) as ASCII, the first digit in the
/// lowest byte: the two 4-digit halves, then pairs, then digits are split in the lanes of one 64-bit
/// word at once (a multiply and shift per step stands in for each division; the lanes never carry).
#[inline(always)]
fn eight_digits(n: u32) -> u64 {
    let halves = u64::from(n / 10_000) | (u64::from(n % 10_000) << 32);
    // x / 100 == (x * 5243) >> 19 for x < 10^4.
    let hundreds = ((halves * 5243) >> 19) & 0x0000_007F_0000_007F;
    let pairs = hundreds | ((halves - hundreds * 100) << 16);
    // y / 10 == (y * 103) >> 10 for y < 100.
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    let digits = tens | ((pairs - tens * 10) << 8);
    digits | 0x3030_3030_3030_3030
}

/// The decimal digits of `value`, as a client sends an int to Redis, written to the end of `buffer`.
///
/// Eight digits come off per 64-bit division and are written by one store (see `eight_digits`),
/// which keeps the chain of dependent divisions short (ids are 18-19 digits).
#[inline(always)]
fn decimal(value: i64, buffer: &mut [u8; 20]) -> &[u8] {
    let mut n = value.unsigned_abs();
    let mut at = buffer.len();
    while n >= 100_000_000 {
        let group = (n % 100_000_000) as u32;
        n /= 100_000_000;
        at -= 8;
        buffer[at..at + 8].copy_from_slice(&eight_digits(group).to_le_bytes());
    }
    let mut n = n as u32;
    while n >= 100 {
        at -= 2;
        put_pair(buffer, at, n % 100);
        n /= 100;
    }
    if n >= 10 {
        at -= 2;
        put_pair(buffer, at, n);
    } else {
        at -= 1;
        buffer[at] = b'0' + n as u8;
    }
    if value < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    &buffer[at..]
}

/// Registers in one byte each.
type Registers = [u8; REGISTERS];

/// Below this many items one thread is quicker than starting more.
const PARALLEL_FROM: usize = 1 << 17;
const MAX_PARTS: usize = 16;

#[derive(Clone)]
pub struct HyperLogLog {
    registers: Box<Registers>,
}

impl Default for HyperLogLog {
    fn default() -> Self {
        HyperLogLog {
            registers: Box::new([0; REGISTERS]),
        }
    }
}

impl HyperLogLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one element; true when a register grew.
    #[inline]
    pub fn add(&mut self, element: &[u8]) -> bool {
        offer(&mut self.registers, element)
    }

    /// Adds each int as its decimal string; true when a register grew. Large inputs are split over
    /// the machine's cores, each part into its own registers, then merged (max is order-free).
    pub fn add_ints(&mut self, items: &[i64]) -> bool {
        let parts = if items.len() < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(MAX_PARTS)
        };
        if parts == 1 {
            return add_ints_into(&mut self.registers, items);
        }
        let chunk = items.len().div_ceil(parts);
        let partial: Vec<Box<Registers>> = std::thread::scope(|scope| {
            let workers: Vec<_> = items
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut registers = Box::new([0_u8; REGISTERS]);
                        add_ints_into(&mut registers, part);
                        registers
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let mut changed = false;
        for registers in &partial {
            changed |= self.merge_registers(registers);
        }
        changed
    }

    /// Adds the elements `buffer[ends[i - 1]..ends[i]]` (the first from 0); true when a register grew.
    /// `ends` must rise from 0 to `buffer.len()`.
    pub fn add_elements(&mut self, buffer: &[u8], ends: &[i64]) -> Result<bool> {
        let mut start = 0_usize;
        let mut spans = Vec::with_capacity(ends.len());
        for &end in ends {
            let end = usize::try_from(end)
                .ok()
                .filter(|&e| e >= start && e <= buffer.len());
            let Some(end) = end else {
                return Err(CounterError::ElementEndsOutOfRange.into());
            };
            spans.push((start, end));
            start = end;
        }
        if start != buffer.len() {
            return Err(CounterError::ElementsEndEarly.into());
        }
        let mut changed = false;
        for (start, end) in spans {
            if let Some(element) = buffer.get(start..end) {
                changed |= offer(&mut self.registers, element);
            }
        }
        Ok(changed)
    }

    /// Redis's PFCOUNT estimate for these registers.
    pub fn count(&self) -> u64 {
        let mut histogram = [0_u32; MAX_REGISTER as usize + 1];
        for &value in self.registers.iter() {
            // Registers never exceed MAX_REGISTER (`offer` and `load` see to it); `min` keeps the
            // index in bounds without a check that could panic.
            histogram[value.min(MAX_REGISTER) as usize] += 1;
        }
        estimate(&histogram)
    }

    /// Each register becomes the larger of the two (PFMERGE).
    pub fn merge(&mut self, other: &HyperLogLog) {
        self.merge_registers(&other.registers);
    }

    fn merge_registers(&mut self, other: &Registers) -> bool {
        let mut changed = false;
        for (mine, &theirs) in self.registers.iter_mut().zip(other.iter()) {
            changed |= theirs > *mine;
            *mine = (*mine).max(theirs);
        }
        changed
    }

    pub fn registers(&self) -> &[u8] {
        &self.registers[..]
    }

    /// Replaces the registers (16,384 values, each at most 51).
    pub fn load(&mut self, registers: &[u8]) -> Result<()> {
        if registers.len() != REGISTERS {
            return Err(CounterError::RegisterCount {
                expected: REGISTERS,
                got: registers.len(),
            }
            .into());
        }
        if let Some(i) = registers.iter().position(|&r| r > MAX_REGISTER) {
            return Err(CounterError::RegisterTooLarge {
                register: i,
                value: registers[i],
                max: MAX_REGISTER,
            }
            .into());
        }
        self.registers.copy_from_slice(registers);
        Ok(())
    }
}

#[inline(always)]
fn offer(registers: &mut Registers, element: &[u8]) -> bool {
    let (index, value) = position(element);
    let register = &mut registers[index];
    if value > *register {
        *register = value;
        true
    } else {
        false
    }
}

/// Items converted to decimal before any is hashed (see `add_ints_into`).
const BATCH: usize = 64;

fn add_ints_into(registers: &mut Registers, items: &[i64]) -> bool {
    // Convert a batch to decimal first, then hash it. Hashing a string just written would load its
    // 8-byte words while the digits' narrower stores are still in flight, and stall on each item.
    let mut text = [[0_u8; 20]; BATCH];
    let mut starts = [0_usize; BATCH];
    let mut changed = false;
    for batch in items.chunks(BATCH) {
        for ((&item, buffer), start) in batch.iter().zip(&mut text).zip(&mut starts) {
            *start = 20 - decimal(item, buffer).len();
        }
        for (buffer, &start) in text.iter().zip(&starts).take(batch.len()) {
            changed |= offer(registers, buffer.get(start..).unwrap_or_default());
        }
    }
    changed
}

/// Ertl's sigma: the correction for registers still at zero (a series summed until it stops changing).
fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let previous = z;
        z += x * y;
        y += y;
        if z == previous {
            return z;
        }
    }
}

/// Ertl's tau: the correction for registers at the largest value.
fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let previous = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if z == previous {
            return z / 3.0;
        }
    }
}

/// The estimate from the histogram of register values, in Redis's double-precision steps, rounded
/// half away from zero.
fn estimate(histogram: &[u32; MAX_REGISTER as usize + 1]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histogram[Q as usize + 1] as f64) / m);
    for value in (1..=Q as usize).rev() {
        z += histogram[value] as f64;
        z *= 0.5;
    }
    z += m * sigma(histogram[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_as_a_client_sends_them() {
        let mut buffer = [0_u8; 20];
        let mut state = 99_u64;
        for _ in 0..10_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let value = state as i64 >> (state % 60);
            assert_eq!(decimal(value, &mut buffer), value.to_string().as_bytes());
        }
        for value in [
            0,
            7,
            -7,
            10,
            99,
            100,
            -100,
            12345,
            99_999_999,
            100_000_000,
            -100_000_001,
            1_234_567_890_123_456,
            i64::MAX,
            i64::MIN,
        ] {
            assert_eq!(decimal(value, &mut buffer), value.to_string().as_bytes());
        }
    }

    #[test]
    fn eight_digits_of_every_kind_of_group() {
        for n in [
            0, 7, 99, 100, 9_999, 10_000, 12_345_678, 99_999_999, 50_000_001,
        ] {
            assert_eq!(eight_digits(n).to_le_bytes(), *format!("{n:08}").as_bytes());
        }
        for n in (0..100_000_000).step_by(9_973) {
            assert_eq!(eight_digits(n).to_le_bytes(), *format!("{n:08}").as_bytes());
        }
    }

    #[test]
    fn murmur_tail_lengths_and_seed() {
        // Every tail length hashes differently, and the seed matters.
        let data = b"0123456789abcdef";
        let hashes: Vec<u64> = (0..=16).map(|n| murmurhash64a(&data[..n], SEED)).collect();
        for (i, a) in hashes.iter().enumerate() {
            for b in &hashes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_ne!(murmurhash64a(b"x", SEED), murmurhash64a(b"x", 0));
    }

    #[test]
    fn empty_counts_zero_and_small_sets_count_exactly() {
        let mut hll = HyperLogLog::new();
        assert_eq!(hll.count(), 0);
        let items: Vec<i64> = (0..1000).collect();
        assert!(hll.add_ints(&items));
        assert!(!hll.add_ints(&items));
        // At 1,000 elements among 16,384 registers the estimator is within a few elements.
        assert!((990..=1010).contains(&hll.count()), "{}", hll.count());
    }

    #[test]
    fn ints_are_their_decimal_strings_and_threads_agree() {
        let items: Vec<i64> = (0..300_000).map(|i| i * 7919 - 1_000_000).collect();
        let mut parallel = HyperLogLog::new();
        parallel.add_ints(&items);
        let mut single = HyperLogLog::new();
        add_ints_into(&mut single.registers, &items);
        let mut as_bytes = HyperLogLog::new();
        let text: Vec<String> = items.iter().map(|i| i.to_string()).collect();
        let buffer: Vec<u8> = text.iter().flat_map(|s| s.bytes()).collect();
        let ends: Vec<i64> = text
            .iter()
            .scan(0_i64, |end, s| {
                *end += s.len() as i64;
                Some(*end)
            })
            .collect();
        as_bytes.add_elements(&buffer, &ends).unwrap();
        assert_eq!(parallel.registers(), single.registers());
        assert_eq!(parallel.registers(), as_bytes.registers());
        let estimate = parallel.count() as f64;
        assert!((estimate / 300_000.0 - 1.0).abs() < 0.03, "{estimate}");
    }

    #[test]
    fn merge_is_the_union_and_load_checks() {
        let mut a = HyperLogLog::new();
        let mut b = HyperLogLog::new();
        a.add_ints(&(0..5000).collect::<Vec<_>>());
        b.add_ints(&(2500..7500).collect::<Vec<_>>());
        let mut both = HyperLogLog::new();
        both.add_ints(&(0..7500).collect::<Vec<_>>());
        a.merge(&b);
        assert_eq!(a.registers(), both.registers());
        let mut c = HyperLogLog::new();
        c.load(a.registers()).unwrap();
        assert_eq!(c.count(), a.count());
        assert!(c.load(&[0; 10]).is_err());
        let mut bad = [0_u8; REGISTERS];
        bad[5] = 52;
        assert!(c.load(&bad).is_err());
        assert!(c.add_elements(b"abc", &[2, 1]).is_err());
        assert!(c.add_elements(b"abc", &[2]).is_err());
        assert!(c.add_elements(b"abc", &[-1, 3]).is_err());
        assert!(c.add_elements(b"", &[]).is_ok());
    }
}
