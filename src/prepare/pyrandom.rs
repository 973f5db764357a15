//! CPython's `random.Random`, as far as `random.shuffle` uses it.
//!
//! The user's data-preparation step shuffles each class with `random.Random(seed)`; to give
//! them the very same split files, the draws must be CPython's bit for bit. The generator
//! itself is MT19937 (`rand_mt`, the reference algorithm); what no crate reproduces is how
//! CPython seeds it from a Python integer and turns its words into bounded integers, which
//! is written out here from CPython's `Modules/_randommodule.c` and `Lib/random.py`:
//!
//! - `seed(n)`: the 32-bit words of `abs(n)`, least significant first (one word `0` for 0),
//!   fed to MT19937's `init_by_array`.
//! - `getrandbits(k)`: for `k <= 32` the top `k` bits of one output; wider values are built
//!   from 32-bit outputs, least significant word first, the last one shifted right so that
//!   exactly `k` bits remain.
//! - `_randbelow(n)`: `k = n.bit_length()`, draw `getrandbits(k)` until it is below `n`.
//! - `shuffle(x)`: for `i` from `len(x) - 1` down to 1, swap `x[i]` with `x[_randbelow(i + 1)]`.

use rand_mt::Mt;

/// A `random.Random(seed)` of CPython 3.
pub struct PyRandom {
    mt: Mt,
}

impl PyRandom {
    /// `random.Random(seed)` for an integer seed (negative seeds use `abs`, as CPython does).
    pub fn new(seed: i128) -> PyRandom {
        let mut n = seed.unsigned_abs();
        let mut key = Vec::with_capacity(4);
        loop {
            key.push(n as u32);
            n >>= 32;
            if n == 0 {
                break;
            }
        }
        PyRandom {
            mt: Mt::new_with_key(key),
        }
    }

    /// `getrandbits(k)` for `k` from 0 to 64.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        debug_assert!(k <= 64);
        if k <= 32 {
            return if k == 0 {
                0
            } else {
                u64::from(self.mt.next_u32() >> (32 - k))
            };
        }
        let low = u64::from(self.mt.next_u32());
        let high = u64::from(self.mt.next_u32() >> (64 - k));
        low | high << 32
    }

    /// `_randbelow(n)` for `n >= 1`: uniform in `0..n` by rejection.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        debug_assert!(n >= 1);
        let k = u64::BITS - n.leading_zeros();
        loop {
            let r = self.getrandbits(k);
            if r < n {
                return r;
            }
        }
    }

    /// `random.shuffle(items)`, in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHUFFLE_42_10: [u32; 10] = [7, 3, 2, 8, 5, 6, 9, 4, 0, 1];
    const SHUFFLE_7_100_HEAD: [u32; 10] = [33, 25, 99, 84, 78, 81, 21, 93, 82, 1];

    /// Values printed by CPython 3.11: `r = random.Random(42); [r.getrandbits(32) for _ in
    /// range(3)], r.getrandbits(40)`, and the first word for seeds 0 and 2**70 + 3.
    #[test]
    fn draws_match_cpython() {
        let mut r = PyRandom::new(42);
        let words: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(words, [2746317213, 478163327, 107420369]);
        assert_eq!(r.getrandbits(40), 303832645883);
        assert_eq!(PyRandom::new(0).getrandbits(32), 3626764237);
        assert_eq!(PyRandom::new((1 << 70) + 3).getrandbits(32), 701776502);
        assert_eq!(
            PyRandom::new(-5).getrandbits(32),
            PyRandom::new(5).getrandbits(32)
        );
    }

    /// `x = list(range(10)); random.Random(42).shuffle(x)` and the same for seed 7 and 100
    /// items' first ten, in CPython 3.11.
    #[test]
    fn shuffle_matches_cpython() {
        let mut x: Vec<u32> = (0..10).collect();
        PyRandom::new(42).shuffle(&mut x);
        assert_eq!(x, SHUFFLE_42_10);
        let mut y: Vec<u32> = (0..100).collect();
        PyRandom::new(7).shuffle(&mut y);
        assert_eq!(y[..10], SHUFFLE_7_100_HEAD);
    }
}
