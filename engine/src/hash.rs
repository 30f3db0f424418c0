//! The 32-byte hashes SCX names things by, and the keyed blake3 domains that
//! keep a lane id from ever colliding with a chain hash or a digest.
//!
//! Invariant: every hash is blake3 keyed by a fixed per-domain key over a
//! canonical encoding, so equal hashes mean equal content in one domain.

use std::fmt;

macro_rules! hash_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
        pub struct $name(pub [u8; 32]);

        // Lexicographic byte order, as a derived `Ord` would give, compared
        // as four big-endian words: ids are map keys and order keys, and a
        // `memcmp` call per comparison was the top cost of inserting lanes.
        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                words(&self.0).cmp(&words(&other.0))
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl $name {
            /// The all-zero value (the genesis chain hash, "no parent").
            pub const ZERO: Self = Self([0; 32]);

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The first eight bytes as hex: enough to tell values apart in logs.
            pub fn short(&self) -> String {
                hex(&self.0[..8])
            }

            /// The first eight bytes as a number (compact summaries, Bloom keys).
            pub fn prefix_u64(&self) -> u64 {
                let mut head = [0u8; 8];
                head.copy_from_slice(&self.0[..8]);
                u64::from_le_bytes(head)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }
    };
}

hash_type!(
    /// Identity of a lane: keyed blake3 of its canonical encoding.
    LaneId
);
hash_type!(
    /// `h_n = HASH(h_{n-1} ‖ LaneId_n)` along the canonical order.
    ChainHash
);
hash_type!(
    /// Keyed blake3 of the canonical encoding of a materialised state.
    StateDigest
);
hash_type!(
    /// Identity of a snapshot: keyed blake3 of its canonical header.
    SnapshotId
);

/// The bytes as four big-endian words: their order is the bytes' order.
fn words(bytes: &[u8; 32]) -> [u64; 4] {
    let word = |i: usize| {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
        u64::from_be_bytes(chunk)
    };
    [word(0), word(1), word(2), word(3)]
}

const LANE_KEY: [u8; 32] = *b"scx/lane-id/v1..................";
const CHAIN_KEY: [u8; 32] = *b"scx/chain-hash/v1...............";
const DIGEST_KEY: [u8; 32] = *b"scx/state-digest/v1.............";
const SNAPSHOT_KEY: [u8; 32] = *b"scx/snapshot-id/v1..............";
const SESSION_TAG_KEY: [u8; 32] = *b"scx/session-tag/v1..............";

/// Bytes of a status fingerprint.
pub const FINGERPRINT_BYTES: usize = 8;

/// A short digest of a position (lane index, chain hash, state digest)
/// under one session's salt, which a handshake compares instead of the 72
/// bytes it stands for: equal fingerprints mean equal positions.
///
/// Short tags are salted so no collision outlives a session: the salt is
/// the session id, so two different positions (or lanes, or snapshots)
/// whose tags agree in one session disagree, with all but a 2^-32 chance,
/// in the next, and a peer cannot grind a lane or a state whose tag agrees
/// with another's in every session. (A peer that lies about its status or
/// summary can claim anything anyway; tags only have to hold for honest
/// nodes and for what a third party forged.)
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint(pub [u8; FINGERPRINT_BYTES]);

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", hex(&self.0))
    }
}

/// What a session tag stands for: each kind has its own domain byte.
#[derive(Clone, Copy)]
enum TagDomain {
    Status = 1,
    Snapshot = 2,
    Tip = 3,
}

/// Keyed blake3 over the domain byte, the salt (eight little-endian bytes)
/// and `parts`, cut to `N` bytes. The input is gathered on the stack and
/// hashed in one call (the same bytes as feeding a hasher part by part, at
/// a fraction of the cost for inputs this short: a handshake states one
/// tag per author). The input is at most [`SESSION_TAG_INPUT_MAX`] bytes.
fn session_tag<const N: usize>(domain: TagDomain, salt: u64, parts: &[&[u8]]) -> [u8; N] {
    let mut input = [0u8; SESSION_TAG_INPUT_MAX];
    input[0] = domain as u8;
    input[1..9].copy_from_slice(&salt.to_le_bytes());
    let mut len = 9;
    for part in parts {
        input[len..len + part.len()].copy_from_slice(part);
        len += part.len();
    }
    let mut tag = [0u8; N];
    tag.copy_from_slice(&blake3::keyed_hash(&SESSION_TAG_KEY, &input[..len]).as_bytes()[..N]);
    tag
}

/// Most bytes one session tag hashes: the domain byte, the salt, and a
/// lane index, a chain hash and a state digest (1 + 8 + 8 + 32 + 32).
const SESSION_TAG_INPUT_MAX: usize = 81;

/// The fingerprint of a position in the session salted `salt`: over the
/// lane index (eight little-endian bytes), the chain hash and the state
/// digest.
pub fn status_fingerprint(
    salt: u64,
    lane_index: u64,
    chain_hash: &ChainHash,
    state_digest: &StateDigest,
) -> Fingerprint {
    Fingerprint(session_tag(TagDomain::Status, salt, &[&lane_index.to_le_bytes(), &chain_hash.0, &state_digest.0]))
}

/// A snapshot id's four-byte tag in the session salted `salt`.
pub fn snapshot_tag(salt: u64, id: &SnapshotId) -> u32 {
    u32::from_le_bytes(session_tag(TagDomain::Snapshot, salt, &[&id.0]))
}

/// A lane id's four-byte tag in the session salted `salt`: what an exact
/// summary entry states of the author's tip.
pub fn tip_tag(salt: u64, id: &LaneId) -> u32 {
    u32::from_le_bytes(session_tag(TagDomain::Tip, salt, &[&id.0]))
}

/// Lane id of canonical lane bytes.
pub fn lane_id(canonical: &[u8]) -> LaneId {
    LaneId(*blake3::keyed_hash(&LANE_KEY, canonical).as_bytes())
}

/// One step of the chain: `h_n = HASH(h_{n-1} ‖ id_n)`.
pub fn chain_step(previous: &ChainHash, id: &LaneId) -> ChainHash {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(&previous.0);
    input[32..].copy_from_slice(&id.0);
    ChainHash(*blake3::keyed_hash(&CHAIN_KEY, &input).as_bytes())
}

/// Digest of canonical state bytes.
pub fn state_digest(canonical_state: &[u8]) -> StateDigest {
    StateDigest(*blake3::keyed_hash(&DIGEST_KEY, canonical_state).as_bytes())
}

/// Smallest unit of blake3's tree: a subtree starts at a multiple of it.
pub const BLAKE3_CHUNK_BYTES: u64 = blake3::CHUNK_LEN as u64;

/// A chaining value: the non-root hash of one subtree of a state digest.
pub type ChainingValue = [u8; 32];

/// The chaining value of the bytes of a state encoding that start at
/// `offset`, under the digest's key: the interior hash blake3 computes for
/// that subtree, so the values of consecutive pieces merge into the
/// digest ([`state_digest_of_pieces`]). A receiver checks each piece of a
/// state in transit against a list of them on arrival.
///
/// `offset` must be a multiple of the piece size, which must be a power of
/// two of at least [`BLAKE3_CHUNK_BYTES`]; every piece but the last is
/// exactly that long and the last is not empty (callers check this).
pub fn state_piece_value(offset: u64, bytes: &[u8]) -> ChainingValue {
    use blake3::hazmat::HasherExt as _;
    assert!(offset.is_multiple_of(BLAKE3_CHUNK_BYTES), "a piece starts on a blake3 chunk boundary");
    let mut hasher = blake3::Hasher::new_keyed(&DIGEST_KEY);
    hasher.set_input_offset(offset);
    hasher.update(bytes);
    hasher.finalize_non_root()
}

/// The state digest of an encoding cut into `values.len()` pieces of one
/// power-of-two size (the last one possibly shorter), from the pieces'
/// chaining values: blake3's tree merges them, the left subtree always
/// holding the largest power of two of pieces fewer than all of them.
/// `None` for fewer than two pieces (one piece is hashed whole).
pub fn state_digest_of_pieces(values: &[ChainingValue]) -> Option<StateDigest> {
    use blake3::hazmat::{Mode, merge_subtrees_non_root, merge_subtrees_root};
    fn subtree(values: &[ChainingValue]) -> ChainingValue {
        match values {
            [single] => *single,
            _ => {
                let (left, right) = values.split_at(left_pieces(values.len()));
                merge_subtrees_non_root(&subtree(left), &subtree(right), Mode::KeyedHash(&DIGEST_KEY))
            }
        }
    }
    if values.len() < 2 {
        return None;
    }
    let (left, right) = values.split_at(left_pieces(values.len()));
    let root = merge_subtrees_root(&subtree(left), &subtree(right), Mode::KeyedHash(&DIGEST_KEY));
    Some(StateDigest(*root.as_bytes()))
}

/// Pieces in the left subtree of `count >= 2` pieces: the largest power of
/// two below `count`.
fn left_pieces(count: usize) -> usize {
    debug_assert!(count >= 2, "only two or more pieces split");
    1 << (usize::BITS - 1 - (count - 1).leading_zeros())
}

/// Id of canonical snapshot header bytes.
pub fn snapshot_id(canonical_header: &[u8]) -> SnapshotId {
    SnapshotId(*blake3::keyed_hash(&SNAPSHOT_KEY, canonical_header).as_bytes())
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

/// One step of SplitMix64 (Steele, Lea and Flood): a tiny, well-mixed
/// stream from a caller's seed. It expands the id hasher's key and draws
/// the random peer plan; it is not a hash of content.
pub(crate) fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_separated() {
        let bytes = [7u8; 64];
        let as_lane = lane_id(&bytes).0;
        assert_ne!(as_lane, state_digest(&bytes).0);
        assert_ne!(as_lane, snapshot_id(&bytes).0);
        let chained = chain_step(&ChainHash(bytes[..32].try_into().unwrap()), &LaneId(bytes[32..].try_into().unwrap()));
        assert_ne!(chained.0, as_lane);
    }

    #[test]
    fn session_tags_are_keyed_blake3_of_domain_salt_and_parts() {
        let salt = 0x0102_0304_0506_0708u64;
        let (index, chain, digest) = (77u64, ChainHash([3; 32]), StateDigest([4; 32]));
        let by_hasher = |domain: u8, parts: &[&[u8]]| {
            let mut hasher = blake3::Hasher::new_keyed(&SESSION_TAG_KEY);
            hasher.update(&[domain]);
            hasher.update(&salt.to_le_bytes());
            for part in parts {
                hasher.update(part);
            }
            *hasher.finalize().as_bytes()
        };
        assert_eq!(SESSION_TAG_INPUT_MAX, 1 + 8 + 8 + 32 + 32, "the status fingerprint's input is the longest");
        let status = by_hasher(1, &[&index.to_le_bytes(), &chain.0, &digest.0]);
        assert_eq!(status_fingerprint(salt, index, &chain, &digest).0[..], status[..8]);
        let id = [5u8; 32];
        let snapshot = by_hasher(2, &[&id]);
        assert_eq!(snapshot_tag(salt, &SnapshotId(id)), u32::from_le_bytes(snapshot[..4].try_into().unwrap()));
        let tip = by_hasher(3, &[&id]);
        assert_eq!(tip_tag(salt, &LaneId(id)), u32::from_le_bytes(tip[..4].try_into().unwrap()));
    }

    #[test]
    fn chain_depends_on_order() {
        let a = LaneId([1; 32]);
        let b = LaneId([2; 32]);
        let ab = chain_step(&chain_step(&ChainHash::ZERO, &a), &b);
        let ba = chain_step(&chain_step(&ChainHash::ZERO, &b), &a);
        assert_ne!(ab, ba);
    }

    #[test]
    fn order_is_lexicographic_byte_order() {
        let mut ids: Vec<LaneId> = (0..200u32)
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[(i % 32) as usize] = (i * 37 % 256) as u8;
                bytes[31 - (i % 7) as usize] = i as u8;
                LaneId(bytes)
            })
            .collect();
        let mut by_bytes = ids.clone();
        by_bytes.sort_by_key(|id| id.0);
        ids.sort();
        assert_eq!(ids, by_bytes);
    }

    #[test]
    fn pieces_merge_into_the_digest_of_the_whole() {
        // The tree merge must reproduce the keyed hash of the whole input
        // for every piece count and every length of the last piece.
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for piece in [1024usize, 2048, 4096] {
            for len in
                [piece + 1, 2 * piece, 2 * piece + 1, 3 * piece, 3 * piece + 7, 5 * piece - 1, 8 * piece, 9 * piece + 1]
            {
                let input = &bytes[..len.min(bytes.len())];
                let values: Vec<ChainingValue> = input
                    .chunks(piece)
                    .enumerate()
                    .map(|(index, chunk)| state_piece_value((index * piece) as u64, chunk))
                    .collect();
                assert_eq!(
                    state_digest_of_pieces(&values),
                    Some(state_digest(input)),
                    "piece {piece}, len {}",
                    input.len()
                );
            }
        }
        assert_eq!(state_digest_of_pieces(&[]), None);
        assert_eq!(state_digest_of_pieces(&[[0; 32]]), None);
    }

    #[test]
    fn a_changed_piece_changes_the_merged_digest() {
        let bytes = vec![7u8; 4096 * 3];
        let mut values: Vec<ChainingValue> =
            bytes.chunks(4096).enumerate().map(|(i, chunk)| state_piece_value((i * 4096) as u64, chunk)).collect();
        let whole = state_digest(&bytes);
        assert_eq!(state_digest_of_pieces(&values), Some(whole));
        // The same bytes at another offset have another value: pieces
        // cannot be moved.
        assert_ne!(state_piece_value(0, &bytes[..4096]), state_piece_value(4096, &bytes[..4096]));
        values.swap(0, 1);
        assert_ne!(state_digest_of_pieces(&values), Some(whole), "pieces in the wrong places");
        values.swap(0, 1);
        values[2][0] ^= 1;
        assert_ne!(state_digest_of_pieces(&values), Some(whole));
    }

    #[test]
    fn the_left_subtree_holds_the_largest_power_of_two_below_the_count() {
        assert_eq!([2, 3, 4, 5, 8, 9, 1000].map(left_pieces), [1, 2, 2, 4, 4, 8, 512]);
    }

    #[test]
    fn hex_is_lowercase_and_full() {
        assert_eq!(hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(LaneId([0xab; 32]).short(), "abababababababab");
    }

    #[test]
    fn splitmix64_matches_the_reference_outputs() {
        // Vigna's splitmix64.c from state 0, and from 1234567.
        let mut state = 0;
        let from_zero: Vec<u64> = (0..3).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(from_zero, [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f]);
        let mut state = 1_234_567;
        let from_seed: Vec<u64> = (0..2).map(|_| splitmix64(&mut state)).collect();
        assert_eq!(from_seed, [6_457_827_717_110_365_317, 3_203_168_211_198_807_973]);
    }
}
