//! The SCX sync protocol (seed section 3), sans-IO.
//!
//! A session between two replicas runs handshake, divergence detection,
//! delta exchange and replay & merge in at most two round trips:
//!
//! ```text
//! initiator                                responder
//!   Hello { status, summary, receiving? }
//!                                  ─────▶  equal fingerprints?  ──▶ InSync   (1 round trip)
//!                                  ◀─────  Delta { summary, receiving?, snapshot?, lanes, snapshot_asked }
//!   insert, then
//!   Lanes { snapshot?, lanes, snapshot_id? } ─────▶  insert, check chains  (2 round trips)
//! ```
//!
//! The Hello's status is a session-salted fingerprint of the position and
//! a tag of the snapshot id ([`HelloStatus`]); the full snapshot id travels
//! only when the tags disagree. The summary is exact: each author's lanes
//! form a chain and held sets are causally closed, so `(author, highest
//! seq, tip tag)` per author names precisely which lanes a peer holds; each side sends exactly the lanes the
//! other lacks, in canonical (hence causal) order. A peer behind the
//! sender's prune point gets the snapshot first: its offer (header, state
//! length, chunk manifest) with the first chunk, then one chunk per session
//! as the peer's `receiving` asks, each verified on arrival (`transfer.rs`);
//! the lanes follow with the last chunk. Every message is within
//! [`MAX_MESSAGE_BYTES`] when it is produced.
//!
//! ## Driver contract
//! - Feed every datagram to [`Syncer::handle`]; start sessions with
//!   [`Syncer::initiate`]; drain [`Syncer::poll_transmit`] and
//!   [`Syncer::poll_event`] after each call.
//! - **Write-ahead:** before sending anything `poll_transmit` returned, make
//!   every lane the replica admitted durable (drain
//!   [`crate::Replica::take_journal`] into the store and sync it). A lane must
//!   never reach a peer before it survives a crash of its sender.
//! - Timeouts belong to the driver: [`Syncer::open_sessions`] says what each
//!   session waits for; [`Syncer::abandon`] ends one. Lost, duplicated and
//!   reordered datagrams are expected: late or repeated messages for a closed
//!   session are ignored, and inserting a lane twice is idempotent.
//! - A session that ends with `Outcome::Synced { more: true }` left lanes or
//!   snapshot chunks for later: sync with that peer again.

mod batch;
mod bloom;
mod bundle;
mod delta;
mod events;
mod receive;
mod session;
mod summary;
mod transfer;
mod wire;

pub use batch::{
    BATCH_FORMAT_VERSION, BatchLane, COMPRESS_MIN_BYTES, ParentRef, decode_batch, encode_batch, read_batch, write_batch,
};
pub use bloom::{Bloom, BloomError, MAX_BLOOM_BITS};
pub use bundle::{
    BUNDLE_FORMAT_VERSION, MAX_BUNDLE_BYTES, MAX_BUNDLE_DATAGRAMS, apply_bundle, bundle, bundle_in_chunks, read_bundle,
    write_bundle,
};
pub use events::{Expect, Outcome, Role, SessionMetrics, SyncEvent};
pub use session::{MAX_OPEN_SESSIONS, Syncer};
pub use summary::{
    MAX_BLOOM_BITS_PER_LANE, MAX_EXACT_ENTRIES, MAX_SUMMARY_BLOOM_BYTES, MAX_SUMMARY_BYTES, MAX_SUMMARY_HEADS,
    SummaryMode,
};
pub use transfer::{
    MAX_CHUNK_BYTES, MAX_CHUNKS, MAX_OFFER_BYTES, MAX_SNAPSHOT_TRANSFERS, MIN_CHUNK_BYTES, SnapshotOffer,
};
pub use wire::{
    CompactSummary, ENVELOPE_BYTES, HelloStatus, MAX_BATCH_BYTES, MAX_BATCHED_LANE_BYTES, MAX_MESSAGE_BYTES, Message,
    PROTOCOL_VERSION, SnapshotWant, Summary, SummaryEntry, WireError, WireSnapshot, WireStatus, decode, encode, reseal,
};
