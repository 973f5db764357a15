//! CPython's `random.Random`, as far as `random.shuffle` and `random.sample` use it.
//!
//! The user's data-preparation step shuffles each class with `random.Random(seed)`, and
//! their synthetic augmentation draws its `max_ratio` subset with `Random(seed).sample`; to
//! give them the very same lists, the draws must be CPython's bit for bit. The generator
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
//! - `sample(range(n), k)`: two algorithms, chosen by comparing `n` with the size a set of
//!   `k` items would take, `setsize = 21`, plus `4 ** ceil(log(3k, 4))` when `k > 5`. When
//!   `n <= setsize`, a partial Fisher-Yates over a pool: `j = _randbelow(n - i)`, take
//!   `pool[j]`, move `pool[n - i - 1]` into its place. Otherwise rejection: draw
//!   `_randbelow(n)` until it is not yet selected.

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

impl PyRandom {
    /// `random.sample(range(n), k)` for `k <= n`: the chosen indices, in the order drawn.
    pub fn sample(&mut self, n: u64, k: u64) -> Vec<u64> {
        assert!(k <= n, "sample of {k} from {n}");
        let mut result = Vec::with_capacity(k as usize);
        if u128::from(n) <= sample_set_size(k) {
            let mut pool: Vec<u64> = (0..n).collect();
            for i in 0..k {
                let j = self.randbelow(n - i) as usize;
                result.push(pool[j]);
                pool[j] = pool[(n - i - 1) as usize];
            }
        } else {
            let mut selected = std::collections::HashSet::with_capacity(k as usize);
            for _ in 0..k {
                let mut j = self.randbelow(n);
                while !selected.insert(j) {
                    j = self.randbelow(n);
                }
                result.push(j);
            }
        }
        result
    }
}

/// CPython's estimate of the memory of a `k`-item set, in list slots, which decides
/// `sample`'s algorithm: `21 + 4 ** ceil(log(3k, 4))` for `k > 5`. `math.log(x, 4)` is
/// libm's `log(x) / log(4)` in doubles, as Rust's `ln` computes it on the same libm.
fn sample_set_size(k: u64) -> u128 {
    let mut size = 21u128;
    if k > 5 {
        let exponent = ((3 * k) as f64).ln() / 4f64.ln();
        size += 4u128.pow(exponent.ceil() as u32);
    }
    size
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

    /// `random.Random(seed).sample(range(n), k)` in CPython 3.11, through both algorithms:
    /// the pool (n = 10 and 37, at the set size of k = 6) and the set (n = 50, 100, 1000).
    #[test]
    fn sample_matches_cpython() {
        assert_eq!(PyRandom::new(42).sample(10, 3), [1, 0, 4]);
        assert_eq!(
            PyRandom::new(42).sample(1000, 7),
            [654, 114, 25, 759, 281, 250, 228]
        );
        assert_eq!(PyRandom::new(7).sample(50, 6), [20, 9, 25, 41, 3, 4]);
        assert_eq!(PyRandom::new(7).sample(37, 6), [20, 9, 25, 3, 4, 6]);
        assert_eq!(
            PyRandom::new((1 << 70) + 3).sample(100, 30)[..10],
            [20, 42, 94, 31, 83, 36, 21, 4, 46, 5]
        );
        assert_eq!(PyRandom::new(1).sample(5, 0), Vec::<u64>::new());
    }

    /// `4 ** math.ceil(math.log(k * 3, 4))` printed by CPython around its steps.
    #[test]
    fn set_size_steps_where_cpython_does() {
        for (k, size) in [
            (6, 64),
            (21, 64),
            (22, 256),
            (85, 256),
            (86, 1024),
            (341, 1024),
            (342, 4096),
        ] {
            assert_eq!(sample_set_size(k), 21 + size, "k = {k}");
        }
        assert_eq!(sample_set_size(5), 21);
    }
}
