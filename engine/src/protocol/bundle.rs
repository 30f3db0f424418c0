//! Bundle files: everything a replica holds (and its snapshot, if it
//! pruned), for a courier to carry to an air-gapped peer whose state is
//! unknown, and how a receiver applies one.
//!
//! A bundle is a counted sequence of ordinary datagrams, each within
//! [`MAX_MESSAGE_BYTES`](super::MAX_MESSAGE_BYTES) and sealed by its own
//! checksum: `Lanes` messages of session 0 carrying, in order, every part of
//! the snapshot (its offer with chunk 0, then each further chunk) and then
//! the held lanes in canonical order, batch by batch.
//!
//! Invariant: a bundle is applied only if every datagram in it decodes, so
//! damage anywhere refuses the whole file; its snapshot is verified chunk by
//! chunk and installed only when complete.

use super::events::{SessionMetrics, SyncEvent};
use super::session::Syncer;
use super::transfer::{MAX_CHUNK_BYTES, SnapshotOffer, part_for};
use super::wire::{self, MAX_BATCH_BYTES, Message, WireError, WireSnapshot};
use crate::codec::{Reader, put_varint};
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
use crate::snapshot::{MAX_SNAPSHOT_STATE_BYTES, SnapshotError};

/// Bytes a bundle file starts with.
const BUNDLE_MAGIC: [u8; 4] = *b"SCXB";
/// Format version of bundle files (1: a counted sequence of datagrams).
pub const BUNDLE_FORMAT_VERSION: u8 = 1;
/// Largest bundle file written or read.
pub const MAX_BUNDLE_BYTES: usize = 1 << 30;
/// Most datagrams one bundle holds.
pub const MAX_BUNDLE_DATAGRAMS: u64 = 1 << 16;

const _: () = assert!(
    MAX_SNAPSHOT_STATE_BYTES as usize + 2 * super::MAX_MESSAGE_BYTES <= MAX_BUNDLE_BYTES,
    "the largest snapshot fits a bundle, with room for lanes"
);

/// A bundle file: everything `replica` holds (and its snapshot, if it
/// pruned), for carrying to an air-gapped peer whose state is unknown. A
/// snapshot too large to offer is left out (the peer then needs another
/// source for it); lanes beyond [`MAX_BUNDLE_BYTES`] are left out (the
/// bundle holds a canonical prefix of them, which is causally closed).
pub fn bundle<L: Law>(replica: &mut Replica<L>) -> Vec<u8> {
    bundle_in_chunks(replica, MAX_CHUNK_BYTES)
}

/// [`bundle`] with the snapshot cut into chunks of `chunk_bytes` (clamped
/// like [`Syncer::set_snapshot_chunk_bytes`]); tests use small chunks.
pub fn bundle_in_chunks<L: Law>(replica: &mut Replica<L>, chunk_bytes: u64) -> Vec<u8> {
    let mut datagrams: Vec<Vec<u8>> = Vec::new();
    let message = |snapshot: Option<WireSnapshot>, lanes: Vec<u8>| {
        let message = Message::Lanes { session: 0, snapshot, lanes, more: false, need: Vec::new(), snapshot_id: None };
        // Each part is within its limit, and the limits fit one datagram.
        wire::encode(&message).expect("a bundle's messages are within the size limit")
    };
    if replica.prune_index() > 0 {
        let snapshot = replica.snapshot_transfer();
        if let Ok(offer) = SnapshotOffer::of(snapshot, chunk_bytes) {
            let offer_bytes = offer.to_bytes();
            let mut want = None;
            for index in 0..offer.chunk_count() {
                let (part, _) = part_for(snapshot, &offer, &offer_bytes, want);
                datagrams.push(message(Some(part), super::batch::EMPTY_BATCH.to_vec()));
                // Fewer than `MAX_CHUNKS` chunks, which fit a u32.
                let chunk = (index + 1) as u32;
                want = Some(super::SnapshotWant {
                    id: offer.id,
                    state_len: offer.state_len,
                    chunk_bytes: offer.chunk_bytes,
                    chunk,
                });
            }
        }
    }
    let lanes: Vec<_> = replica.canonical_lanes().collect();
    let mut total: usize = datagrams.iter().map(|datagram| datagram.len() + 10).sum();
    let mut rest = &lanes[..];
    while !rest.is_empty() && (datagrams.len() as u64) < MAX_BUNDLE_DATAGRAMS {
        let mut writer = super::batch::BatchWriter::new();
        let taken = rest.iter().take_while(|(id, lane)| writer.push_within(*id, lane, MAX_BATCH_BYTES)).count();
        let datagram = message(None, writer.finish());
        total += datagram.len() + 10;
        if total > MAX_BUNDLE_BYTES {
            break;
        }
        datagrams.push(datagram);
        rest = &rest[taken..];
    }
    write_bundle(&datagrams)
}

/// Frames datagrams as a bundle file: magic, version, count, then each
/// datagram with its length.
pub fn write_bundle(datagrams: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + datagrams.iter().map(|datagram| datagram.len() + 4).sum::<usize>());
    out.extend_from_slice(&BUNDLE_MAGIC);
    out.push(BUNDLE_FORMAT_VERSION);
    put_varint(&mut out, datagrams.len() as u64);
    for datagram in datagrams {
        put_varint(&mut out, datagram.len() as u64);
        out.extend_from_slice(datagram);
    }
    out
}

/// The datagrams of a bundle file, undecoded.
pub fn read_bundle(bytes: &[u8]) -> Result<Vec<&[u8]>, WireError> {
    if bytes.len() > MAX_BUNDLE_BYTES {
        return Err(WireError::BundleTooLarge { bytes: bytes.len(), limit: MAX_BUNDLE_BYTES });
    }
    let malformed = |error: crate::codec::DecodeError| WireError::Malformed { reason: format!("bundle: {error}") };
    let mut reader = Reader::new(bytes);
    let magic = reader.take(4, "bundle magic").map_err(malformed)?;
    let version = reader.byte("bundle version").map_err(malformed)?;
    if magic != BUNDLE_MAGIC || version != BUNDLE_FORMAT_VERSION {
        return Err(WireError::Malformed { reason: "not a bundle file of this version".into() });
    }
    let count = reader.count("bundle datagrams", MAX_BUNDLE_DATAGRAMS, 2).map_err(malformed)?;
    let mut datagrams = Vec::with_capacity(count);
    for _ in 0..count {
        let len = reader.count("bundle datagram", super::MAX_MESSAGE_BYTES as u64, 1).map_err(malformed)?;
        datagrams.push(reader.take(len, "bundle datagram").map_err(malformed)?);
    }
    reader.finish().map_err(malformed)?;
    Ok(datagrams)
}

/// Applies a bundle file: verifies and installs its snapshot, then inserts
/// its lanes; returns what it brought, and what went wrong on the way
/// (a refused or incomplete snapshot, refused lanes) as the events a
/// session would raise, for the driver to report like any other (they name
/// `from`, the node the bundle came from).
pub fn apply_bundle<L: Law>(
    bytes: &[u8],
    from: NodeId,
    replica: &mut Replica<L>,
) -> Result<(SessionMetrics, Vec<SyncEvent>), WireError> {
    let mut messages = Vec::new();
    for datagram in read_bundle(bytes)? {
        let Message::Lanes { snapshot, lanes, .. } = wire::decode(datagram)? else {
            return Err(WireError::Malformed { reason: "a bundle holds only Lanes messages".into() });
        };
        messages.push((snapshot, lanes));
    }
    let mut metrics = SessionMetrics { bytes_received: bytes.len() as u64, ..SessionMetrics::default() };
    let mut syncer = Syncer::new(replica.node());
    for (snapshot, lanes) in messages {
        syncer.apply(from, (snapshot, &lanes), replica, &mut metrics, None);
    }
    if let Some((id, missing, chunks)) = syncer.transfer_progress(from) {
        syncer
            .events
            .push_back(SyncEvent::Diverged { peer: from, error: SnapshotError::Incomplete { id, missing, chunks } });
    }
    Ok((metrics, syncer.events.into_iter().collect()))
}
