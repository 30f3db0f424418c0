//! Seeded randomness: everything random in a run derives from the run's one
//! seed, per purpose, so adding a new random choice somewhere never shifts
//! the draws of another.
//!
//! Invariant: no OS randomness and no global RNG. madsim gets a `u64` seed of
//! its own (ECOSYSTEM.md: keep the rand 0.8 / rand_core 0.10 boundary at
//! plain integers); SCX's choices use ChaCha8 streams derived here.

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A `u64` seed for `purpose` (and an index, e.g. a node) derived from the run seed.
pub fn derive_seed(seed: u64, purpose: &str, index: u64) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key("scx sim seed derivation v1");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&index.to_le_bytes());
    hasher.update(purpose.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_le_bytes(head)
}

/// A deterministic random stream for one purpose.
#[derive(Clone, Debug)]
pub struct SimRng(ChaCha8Rng);

impl SimRng {
    /// The stream for `purpose` and `index` of run `seed`.
    pub fn new(seed: u64, purpose: &str, index: u64) -> Self {
        Self(ChaCha8Rng::seed_from_u64(derive_seed(seed, purpose, index)))
    }

    /// A uniform `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..bound` (0 when `bound` is 0). Lemire's multiply-shift:
    /// the bias is below 2^-32 for the bounds used here.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    /// A standard normal draw (Box–Muller). `libm`, not the platform's
    /// `ln`/`cos`, so a seed draws the same numbers on glibc, musl and macOS.
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(std::f64::consts::TAU * u2)
    }

    /// An exponential draw with the given mean (`libm`'s `log`, as above).
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * libm::log(1.0 - self.unit())
    }

    /// A uniformly chosen element.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }

    /// Shuffles in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NORMAL_BITS: u64 = 13_826_895_041_943_795_022;
    const EXPONENTIAL_BITS: u64 = 4_607_867_095_912_582_658;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4).map(|_| SimRng::new(7, "net", 0).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]), "same seed, same purpose, same stream");
        assert_ne!(SimRng::new(7, "net", 0).next_u64(), SimRng::new(7, "net", 1).next_u64());
        assert_ne!(SimRng::new(7, "net", 0).next_u64(), SimRng::new(7, "workload", 0).next_u64());
        assert_ne!(SimRng::new(7, "net", 0).next_u64(), SimRng::new(8, "net", 0).next_u64());
    }

    #[test]
    fn float_draws_are_the_same_bits_everywhere() {
        // Pinned bits: libm is pure Rust, so these hold on every platform;
        // a change here changes every seed's run.
        let mut rng = SimRng::new(42, "floats", 0);
        let normal = rng.normal();
        let exponential = rng.exponential(2.0);
        assert_eq!(
            (normal.to_bits(), exponential.to_bits()),
            (NORMAL_BITS, EXPONENTIAL_BITS),
            "{normal} {exponential}"
        );
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = SimRng::new(1, "t", 0);
        for bound in [1u64, 2, 3, 10, 1000] {
            for _ in 0..1000 {
                assert!(rng.below(bound) < bound);
            }
        }
        assert_eq!(rng.below(0), 0);
    }
}
