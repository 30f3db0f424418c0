//! A Bloom filter of lane ids for the compact summary (large memberships).
//!
//! Lane ids are uniform blake3 outputs, so the k bit positions are taken
//! from the id's words mixed with a per-session salt. Everything is
//! deterministic (no random state), and a fresh salt each session means a
//! lane that is a false positive once is not one forever.
//!
//! Invariant: a lane inserted is always reported present (no false
//! negatives); a lane not inserted is reported present with probability about
//! 1% at `BITS_PER_LANE` bits per lane and `HASHES` hashes. A filter holds
//! 1 to `MAX_BLOOM_BITS / 8` bytes, as `with_capacity` makes them, and a
//! decoded one is checked to (the hash count is a constant, not on the wire).

use crate::hash::LaneId;
use serde::{Deserialize, Serialize};

/// Bits per inserted lane (about 1% false positives with 7 hashes).
pub(crate) const BITS_PER_LANE: usize = 10;
/// Hash functions.
pub(crate) const HASHES: u32 = 7;
/// Most bits a filter may claim on the wire.
pub const MAX_BLOOM_BITS: usize = 64 << 20;

const _: () = assert!(MAX_BLOOM_BITS.is_power_of_two() && MAX_BLOOM_BITS >= 8, "the limit is whole bytes");
const _: () = assert!(
    MAX_BLOOM_BITS / 8 + super::wire::MAX_BATCH_BYTES < super::wire::MAX_MESSAGE_BYTES,
    "a handshake with a filter at its limit fits a message"
);

/// Why a filter is not one [`Bloom::with_capacity`] could have made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BloomError {
    /// No bits at all: it would claim that its sender holds nothing above
    /// its stable point, and every filter made holds at least one byte.
    #[error("a Bloom filter with no bits")]
    Empty,
    /// More bits than [`MAX_BLOOM_BITS`].
    #[error("a Bloom filter of {bits} bits exceeds the limit of {MAX_BLOOM_BITS}")]
    TooLarge {
        /// Bits the filter holds.
        bits: u64,
    },
}

/// A salted Bloom filter of lane ids. Decoding checks it
/// ([`Bloom::check`]): a peer's filter breaking a limit is refused as a
/// malformed message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BloomParts")]
pub struct Bloom {
    /// Mixed into every position, so each session's false positives differ.
    pub salt: u64,
    /// The bit array, little-endian within bytes.
    pub bits: Vec<u8>,
}

/// A filter as it is on the wire, before [`Bloom::check`]; the same fields
/// in the same order as [`Bloom`], so the encoding is unchanged.
#[derive(Deserialize)]
struct BloomParts {
    salt: u64,
    bits: Vec<u8>,
}

impl TryFrom<BloomParts> for Bloom {
    type Error = BloomError;

    fn try_from(parts: BloomParts) -> Result<Self, BloomError> {
        let bloom = Self { salt: parts.salt, bits: parts.bits };
        bloom.check()?;
        Ok(bloom)
    }
}

impl Bloom {
    /// Checks the limits a filter made by [`Self::with_capacity`] keeps.
    pub fn check(&self) -> Result<(), BloomError> {
        if self.bits.is_empty() {
            return Err(BloomError::Empty);
        }
        let bits = self.bits.len() as u64 * 8;
        if bits > MAX_BLOOM_BITS as u64 {
            return Err(BloomError::TooLarge { bits });
        }
        Ok(())
    }

    /// A filter sized for `lanes` lanes at `bits_per_lane` bits each.
    pub fn with_capacity(lanes: usize, bits_per_lane: usize, salt: u64) -> Self {
        // Capped before rounding up (the limit is a power of two), so no
        // product or power of two overflows, which would make an empty filter.
        let bits = lanes.max(1).saturating_mul(bits_per_lane.max(1)).min(MAX_BLOOM_BITS).next_power_of_two();
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
    fn every_filter_made_passes_the_check_and_a_broken_one_fails_it() {
        for lanes in [0, 1, 7, 1000, usize::MAX / 64, usize::MAX] {
            for bits_per_lane in [0, 1, BITS_PER_LANE, usize::MAX] {
                let bloom = Bloom::with_capacity(lanes, bits_per_lane, 3);
                assert_eq!(bloom.check(), Ok(()), "{lanes} lanes at {bits_per_lane} bits");
            }
        }
        let bloom = |bytes: usize| Bloom { salt: 0, bits: vec![0; bytes] };
        assert_eq!(bloom(0).check(), Err(BloomError::Empty));
        assert_eq!(bloom(MAX_BLOOM_BITS / 8).check(), Ok(()));
        let bits = (MAX_BLOOM_BITS + 8) as u64;
        assert_eq!(bloom(MAX_BLOOM_BITS / 8 + 1).check(), Err(BloomError::TooLarge { bits }));
    }

    #[test]
    fn the_wire_encoding_is_unchanged_and_decoding_checks() {
        let bloom = Bloom { salt: 0x0102, bits: vec![0xa5, 0x5a] };
        let bytes = postcard::to_allocvec(&bloom).unwrap();
        assert_eq!(bytes, [0x82, 0x02, 2, 0xa5, 0x5a], "salt varint, length, bits");
        assert_eq!(postcard::from_bytes::<Bloom>(&bytes).unwrap(), bloom);
        let empty = postcard::to_allocvec(&Bloom { salt: 1, bits: Vec::new() }).unwrap();
        assert!(postcard::from_bytes::<Bloom>(&empty).is_err());
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
