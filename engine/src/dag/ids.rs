//! Lookup tables keyed by lane id, hashed by SipHash-1-3 under a key each
//! replica is given.
//!
//! Lane ids are blake3 hashes of bytes a peer chooses, so a peer can grind
//! ids: try contents until an id has the bits it wants. A hash that an
//! outsider can compute (such as the id's first eight bytes, the hash used
//! before) lets a peer send lanes whose ids all fall in one bucket, turning
//! every lookup into a scan of them. Under a key the peer does not know it
//! cannot tell which ids collide.
//!
//! Invariant: the tables are for lookups only; nothing iterates them where
//! the order could leak, so the key changes no output (determinism holds
//! whatever the key) and the engine draws no randomness of its own.

use crate::hash::{LaneId, splitmix64};
use std::hash::{BuildHasher, Hasher};

/// A map keyed by lane id, for lookups only (never iterated where order
/// could leak), hashed under its replica's [`IdHashKey`].
pub(crate) type IdMap<V> = hashbrown::HashMap<LaneId, V, IdHashKey>;

/// The 128-bit SipHash key of a replica's id tables (a [`BuildHasher`]).
/// No `Default`: a table whose key anyone can compute is a table a peer
/// can fill with colliding ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct IdHashKey {
    k0: u64,
    k1: u64,
}

impl IdHashKey {
    /// The key derived from `seed` (see `ReplicaConfig::id_hash_seed`).
    pub(crate) fn new(seed: u64) -> Self {
        let mut state = seed;
        Self { k0: splitmix64(&mut state), k1: splitmix64(&mut state) }
    }
}

impl BuildHasher for IdHashKey {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher::new(self.k0, self.k1)
    }
}

/// SipHash-1-3 (one compression round per word, three to finish), the
/// keyed hash Rust's own `HashMap` uses. `C` and `D` are the round counts
/// so the tests can check the construction against std's SipHash-2-4.
pub(crate) type IdHasher = SipHasher<1, 3>;

/// SipHash with `C` compression and `D` finalisation rounds.
#[derive(Clone, Debug)]
pub(crate) struct SipHasher<const C: usize, const D: usize> {
    v: [u64; 4],
    /// Bytes not yet compressed (fewer than eight), little-endian.
    tail: u64,
    tail_len: usize,
    length: usize,
}

impl<const C: usize, const D: usize> SipHasher<C, D> {
    fn new(k0: u64, k1: u64) -> Self {
        let v = [
            k0 ^ 0x736f_6d65_7073_6575,
            k1 ^ 0x646f_7261_6e64_6f6d,
            k0 ^ 0x6c79_6765_6e65_7261,
            k1 ^ 0x7465_6462_7974_6573,
        ];
        Self { v, tail: 0, tail_len: 0, length: 0 }
    }

    #[inline]
    fn round(&mut self) {
        let [v0, v1, v2, v3] = &mut self.v;
        *v0 = v0.wrapping_add(*v1);
        *v1 = v1.rotate_left(13) ^ *v0;
        *v0 = v0.rotate_left(32);
        *v2 = v2.wrapping_add(*v3);
        *v3 = v3.rotate_left(16) ^ *v2;
        *v0 = v0.wrapping_add(*v3);
        *v3 = v3.rotate_left(21) ^ *v0;
        *v2 = v2.wrapping_add(*v1);
        *v1 = v1.rotate_left(17) ^ *v2;
        *v2 = v2.rotate_left(32);
    }

    #[inline]
    fn compress(&mut self, word: u64) {
        self.v[3] ^= word;
        for _ in 0..C {
            self.round();
        }
        self.v[0] ^= word;
    }
}

impl<const C: usize, const D: usize> Hasher for SipHasher<C, D> {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        self.length += bytes.len();
        // Top up a partial word first (never the case for a lane id, which
        // is written whole), then whole words, then keep the rest.
        while self.tail_len > 0 && !bytes.is_empty() {
            self.tail |= u64::from(bytes[0]) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = &bytes[1..];
            if self.tail_len == 8 {
                let word = self.tail;
                self.compress(word);
                (self.tail, self.tail_len) = (0, 0);
            }
        }
        let mut words = bytes.chunks_exact(8);
        for chunk in &mut words {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.compress(u64::from_le_bytes(word));
        }
        for (i, byte) in words.remainder().iter().enumerate() {
            self.tail |= u64::from(*byte) << (8 * i);
        }
        self.tail_len = words.remainder().len();
    }

    /// The tables' keys are lane ids only, whose length prefix is always 32:
    /// hashing it would add a word to every lookup and tell nothing.
    fn write_usize(&mut self, _length_prefix: usize) {}

    #[inline]
    fn finish(&self) -> u64 {
        let mut state = self.clone();
        let last = ((self.length as u64 & 0xff) << 56) | self.tail;
        state.compress(last);
        state.v[2] ^= 0xff;
        for _ in 0..D {
            state.round();
        }
        let [v0, v1, v2, v3] = state.v;
        v0 ^ v1 ^ v2 ^ v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// Ids a peer ground to share their first eight bytes (the hash before
    /// this module was keyed), different everywhere else.
    fn ground_ids(count: u32) -> Vec<LaneId> {
        (0..count)
            .map(|i| {
                let mut bytes = [0xab; 32];
                bytes[8..12].copy_from_slice(&i.to_le_bytes());
                bytes[31] = (i % 251) as u8;
                LaneId(bytes)
            })
            .collect()
    }

    fn assert_spread(key: IdHashKey, ids: &[LaneId]) {
        let hashes: BTreeSet<u64> = ids.iter().map(|id| key.hash_one(id)).collect();
        assert_eq!(hashes.len(), ids.len(), "every ground id has its own hash");
        // The bucket (low bits) and the control byte (top 7 bits) hashbrown
        // probes by: 4096 ids over 4096 buckets is about one per bucket.
        let mut buckets = BTreeMap::new();
        let mut control = BTreeMap::new();
        for hash in &hashes {
            *buckets.entry(hash & 4095).or_insert(0u32) += 1;
            *control.entry(hash >> 57).or_insert(0u32) += 1;
        }
        let fullest = buckets.values().max().copied().unwrap_or(0);
        assert!(fullest <= 12, "{fullest} ground ids share one bucket of 4096");
        assert!(control.len() == 128 && control.values().all(|n| *n < 64), "control bytes cluster: {control:?}");
    }

    #[test]
    fn ids_ground_to_collide_in_their_first_eight_bytes_spread_over_the_table() {
        let ids = ground_ids(4096);
        for seed in [0, 1, 0x1d_ba5e_0000_0003, u64::MAX] {
            assert_spread(IdHashKey::new(seed), &ids);
        }
        // And a table of them stays usable: every lookup finds its own entry.
        let mut map = IdMap::with_hasher(IdHashKey::new(7));
        for (i, id) in ids.iter().enumerate() {
            map.insert(*id, i);
        }
        assert!(ids.iter().enumerate().all(|(i, id)| map.get(id) == Some(&i)));
    }

    #[test]
    fn the_key_decides_the_hash_and_equal_keys_agree() {
        let id = LaneId([0x42; 32]);
        assert_eq!(IdHashKey::new(5).hash_one(id), IdHashKey::new(5).hash_one(id), "deterministic");
        assert_ne!(IdHashKey::new(5).hash_one(id), IdHashKey::new(6).hash_one(id), "keyed");
    }

    #[test]
    #[allow(deprecated, reason = "std's SipHash-2-4 is the reference the construction is checked against")]
    fn the_construction_is_siphash_as_std_computes_it() {
        for len in [0usize, 1, 7, 8, 9, 31, 32, 33, 64] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let (k0, k1) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
            let mut reference = std::hash::SipHasher::new_with_keys(k0, k1);
            reference.write(&bytes);
            let mut ours = SipHasher::<2, 4>::new(k0, k1);
            ours.write(&bytes);
            assert_eq!(ours.finish(), reference.finish(), "{len} bytes in one write");
            // Split writes hash like one.
            let mut split = SipHasher::<2, 4>::new(k0, k1);
            let (a, b) = bytes.split_at(len / 3);
            split.write(a);
            split.write(b);
            assert_eq!(split.finish(), reference.finish(), "{len} bytes in two writes");
        }
    }
}
