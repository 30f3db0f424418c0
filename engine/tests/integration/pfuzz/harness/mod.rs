//! The structured protocol fuzzer: a corpus of real sessions, mutators that
//! work on decoded messages as well as bytes, and an oracle that checks the
//! receiver after every input.
//!
//! This module uses only the engine's public API and nothing else of the
//! test suite, so the libFuzzer target in `engine/fuzz/` includes the same
//! files (`#[path]`): one harness, two drivers. Every choice a mutator
//! makes comes from a [`Choices`] source: a seeded generator for the
//! deterministic driver, the fuzzer's input bytes for libFuzzer.

pub(crate) mod corpus;
pub(crate) mod mutate;
pub(crate) mod oracle;

pub(crate) use corpus::Corpus;
pub(crate) use oracle::{Checks, Stats, run_input};

/// Where a mutator's choices come from.
pub(crate) trait Choices {
    /// A uniform 64-bit value.
    fn next_u64(&mut self) -> u64;

    /// A value in `0..bound` (0 when `bound` is 0 or 1).
    fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 { 0 } else { self.next_u64() % bound }
    }

    /// True about once in `one_in` calls.
    fn one_in(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// An index into a collection of `len` items (0 when empty).
    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }
}

/// SplitMix64: a tiny deterministic generator, so a run depends only on its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15)
    }
}

impl Choices for Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Choices read from a fuzzer's input bytes: each choice takes as few bytes
/// as its range needs, so the fuzzer's byte mutations map to small changes
/// of the decision sequence. An exhausted input answers 0 from then on.
#[allow(dead_code, reason = "used by the libFuzzer target and its replay test")]
pub(crate) struct ByteChoices<'a> {
    bytes: &'a [u8],
}

#[allow(dead_code, reason = "used by the libFuzzer target and its replay test")]
impl<'a> ByteChoices<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, count: usize) -> u64 {
        let count = count.min(self.bytes.len());
        let (head, rest) = self.bytes.split_at(count);
        self.bytes = rest;
        head.iter().fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
    }
}

impl Choices for ByteChoices<'_> {
    fn next_u64(&mut self) -> u64 {
        self.take(8)
    }

    fn below(&mut self, bound: u64) -> u64 {
        if bound <= 1 {
            return 0;
        }
        let bytes = (64 - (bound - 1).leading_zeros()).div_ceil(8) as usize;
        self.take(bytes) % bound
    }
}

/// The seed of input `index` of a campaign with `seed`: inputs are
/// independent, so any one of them replays alone.
pub(crate) fn input_seed(seed: u64, index: u64) -> u64 {
    let mut rng = Rng::new(seed ^ index.rotate_left(32) ^ 0x5c5f_f022);
    rng.next_u64()
}
