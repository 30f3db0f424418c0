//! The two hashes the model recomputes from scratch: the chain hash along a
//! canonical order and the digest of a canonical state encoding.
//!
//! The blake3 keys are part of SCX's hash format (one key per domain, see
//! `engine/src/hash.rs`). Duplicating them here is intended: the model
//! computes hashes from the documented format with its own code, never with
//! the engine's functions, so a wrong step in the engine cannot hide in both.

use scx_engine::{ChainHash, LaneId, StateDigest};

/// Key of the chain-hash domain (format constant, copied on purpose).
const CHAIN_KEY: [u8; 32] = *b"scx/chain-hash/v1...............";
/// Key of the state-digest domain (format constant, copied on purpose).
const DIGEST_KEY: [u8; 32] = *b"scx/state-digest/v1.............";

/// The chain hash of the empty order (lane index 0): all zero bytes, as
/// the engine's genesis snapshot records it.
pub const GENESIS_CHAIN: ChainHash = ChainHash([0; 32]);

/// One link of the chain: `h_n = HASH(h_{n-1} ‖ LaneId_n)`.
pub fn chain_next(previous: &ChainHash, id: &LaneId) -> ChainHash {
    let mut hasher = blake3::Hasher::new_keyed(&CHAIN_KEY);
    hasher.update(&previous.0);
    hasher.update(&id.0);
    ChainHash(*hasher.finalize().as_bytes())
}

/// The digest of canonical state bytes.
pub fn digest_of_state_bytes(canonical_state: &[u8]) -> StateDigest {
    StateDigest(*blake3::Hasher::new_keyed(&DIGEST_KEY).update(canonical_state).finalize().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_32_bytes_of_their_domain_names() {
        assert!(CHAIN_KEY.starts_with(b"scx/chain-hash/v1"));
        assert!(DIGEST_KEY.starts_with(b"scx/state-digest/v1"));
        assert_ne!(CHAIN_KEY, DIGEST_KEY);
    }

    #[test]
    fn the_chain_depends_on_order_and_on_the_previous_link() {
        let (a, b) = (LaneId([1; 32]), LaneId([2; 32]));
        let ab = chain_next(&chain_next(&GENESIS_CHAIN, &a), &b);
        let ba = chain_next(&chain_next(&GENESIS_CHAIN, &b), &a);
        assert_ne!(ab, ba);
        assert_ne!(chain_next(&GENESIS_CHAIN, &a), GENESIS_CHAIN);
    }
}
