//! A Bloom filter of lane ids for the compact summary (large memberships).
//!
//! Lane ids are uniform blake3 outputs, so the k bit positions are taken
//! from the id's words mixed with a per-session salt. Everything is
//! deterministic (no random state), and a fresh salt each session means a
//! lane that is a false positive once is not one forever.
//!
//! Invariant: a lane inserted is always reported present (no false
//! negatives); a lane not inserted is reported present with probability about
//! 1% at `BITS_PER_LANE` bits per lane and `HASHES` hashes.

use crate::hash::LaneId;
use serde::{Deserialize, Serialize};

/// Bits per inserted lane (about 1% false positives with 7 hashes).
pub(crate) const BITS_PER_LANE: usize = 10;
/// Hash functions.
pub(crate) const HASHES: u32 = 7;
/// Most bits a filter may claim on the wire.
pub(crate) const MAX_BLOOM_BITS: usize = 64 << 20;

/// A salted Bloom filter of lane ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bloom {
    /// Mixed into every position, so each session's false positives differ.
    pub salt: u64,
    /// The bit array, little-endian within bytes.
    pub bits: Vec<u8>,
}

impl Bloom {
    /// A filter sized for `lanes` lanes at `bits_per_lane` bits each.
    pub fn with_capacity(lanes: usize, bits_per_lane: usize, salt: u64) -> Self {
        let bits = (lanes.max(1) * bits_per_lane.max(1)).next_power_of_two().min(MAX_BLOOM_BITS);
        Self { salt, bits: vec![0; bits.div_ceil(8)] }
    }

    fn positions(&self, id: &LaneId) -> impl Iterator<Item = usize> + '_ {
        let bits = (self.bits.len() * 8).max(1) as u64;
        let bytes = id.as_bytes();
        let word = |i: usize| {
            let mut chunk = [0u8; 8];
            chunk.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_le_bytes(chunk)
        };
        let h1 = word(0) ^ self.salt;
        let h2 = (word(1) ^ self.salt.rotate_left(29)) | 1;
        (0..u64::from(HASHES)).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) % bits) as usize)
    }

    /// Adds a lane id.
    pub fn insert(&mut self, id: &LaneId) {
        let positions: Vec<usize> = self.positions(id).collect();
        for position in positions {
            self.bits[position / 8] |= 1 << (position % 8);
        }
    }

    /// Whether the id may have been added (no false negatives).
    pub fn may_contain(&self, id: &LaneId) -> bool {
        !self.bits.is_empty() && self.positions(id).all(|position| self.bits[position / 8] & (1 << (position % 8)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u64) -> LaneId {
        crate::hash::lane_id(&i.to_le_bytes())
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let mut bloom = Bloom::with_capacity(1000, BITS_PER_LANE, 7);
        for i in 0..1000 {
            bloom.insert(&id(i));
        }
        assert!((0..1000).all(|i| bloom.may_contain(&id(i))));
        let false_positives = (1000..21_000).filter(|i| bloom.may_contain(&id(*i))).count();
        assert!(false_positives < 400, "{false_positives} false positives in 20,000 (expected about 1%)");
    }

    #[test]
    fn salts_change_which_ids_collide() {
        let build = |salt| {
            let mut bloom = Bloom::with_capacity(200, BITS_PER_LANE, salt);
            (0..200).for_each(|i| bloom.insert(&id(i)));
            (200..5200).filter(|i| bloom.may_contain(&id(*i))).collect::<Vec<u64>>()
        };
        let (a, b) = (build(1), build(2));
        assert!(!a.is_empty() && a != b, "a false positive under one salt is usually not one under another");
    }
}
