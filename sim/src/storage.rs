//! The storage model: each node's disk lives outside the node, in the
//! world, so it survives the node's crash. A write is durable only after a
//! sync. A crash lands *at one of the node's IO operations*, drawn from the
//! seed: between a write and its fsync (the unsynced bytes are lost) or in
//! the middle of a record (a random prefix of them reaches the platter: a
//! torn tail the log's checksums must catch on recovery). A crash may also
//! leave a latent fault: before the restart one bit of one durable record's
//! payload flips (rot), which the record's checksum must catch.
//!
//! The disk speaks the engine's record format (`encode_record`,
//! `decode_log`, `repaired_image`: the same code as the file store), but the crash and the
//! tear are the simulator's: the engine has no switch for them.
//!
//! Invariant: after the crash point the disk is dead: every operation fails,
//! so nothing the node does later in the same step reaches the disk, and a
//! node that honours write-ahead sends nothing either.
//!
//! A durable image is a list of shared segments, whole records as far as it
//! can: a record's frame covers only its own length, kind and payload, so a
//! lane is the same bytes on every disk that holds it, and the disks of one
//! run share them through a [`RecordPool`] (a 10,000-node run would
//! otherwise hold 10,000 copies of every lane). Bytes, offsets, tears and
//! rot are exactly those of one contiguous image.

use crate::rng::SimRng;
use scx_engine::log::{
    FRAME_BYTES, LOG_HEADER, Record, RecordKind, Recovered, decode_log, encode_record, repaired_image,
};
use scx_store::{Store, StoreError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// Framed records shared by the disks of one run, found by their frame's
/// checksum and length and compared byte for byte, so sharing never
/// changes a byte. It holds them weakly: a record no disk holds any more
/// (compacted away everywhere) is freed.
#[derive(Clone, Debug, Default)]
pub struct RecordPool(Arc<Mutex<PoolEntries>>);

#[derive(Debug, Default)]
struct PoolEntries {
    /// By (frame checksum, bytes): the records with that key.
    by_key: BTreeMap<(u32, usize), Vec<Weak<[u8]>>>,
    /// Entries, live or not.
    entries: usize,
    /// Dead entries are dropped when `entries` reaches this.
    purge_at: usize,
}

/// Entries the pool holds before it first looks for dead ones.
const POOL_PURGE_MIN: usize = 4096;

impl RecordPool {
    /// The shared copy of `framed` (one whole framed record).
    fn share(&self, framed: &[u8]) -> Arc<[u8]> {
        let checksum =
            framed.get(5..FRAME_BYTES).map_or(0, |bytes| u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
        let mut pool = self.0.lock().expect("the simulation is single-threaded");
        let same = pool.by_key.entry((checksum, framed.len())).or_default();
        if let Some(shared) = same.iter().filter_map(Weak::upgrade).find(|shared| **shared == *framed) {
            return shared;
        }
        let shared: Arc<[u8]> = Arc::from(framed);
        same.push(Arc::downgrade(&shared));
        pool.entries += 1;
        if pool.entries >= pool.purge_at {
            pool.purge();
        }
        shared
    }

    /// Records the pool still shares (for tests).
    #[cfg(test)]
    fn live(&self) -> usize {
        let pool = self.0.lock().expect("the simulation is single-threaded");
        pool.by_key.values().flatten().filter(|weak| weak.strong_count() > 0).count()
    }
}

impl PoolEntries {
    fn purge(&mut self) {
        self.by_key.retain(|_, same| {
            same.retain(|weak| weak.strong_count() > 0);
            !same.is_empty()
        });
        self.entries = self.by_key.values().map(Vec::len).sum();
        self.purge_at = (2 * self.entries).max(POOL_PURGE_MIN);
    }
}

/// A durable log image as segments in order: whole records taken from the
/// pool, and (after a tear) raw bytes.
#[derive(Debug, Default)]
struct Image {
    segments: Vec<Arc<[u8]>>,
    len: usize,
}

impl Image {
    /// An image of these bytes, split into whole records shared through
    /// `pool` where it holds them (a torn or unframed rest is one segment).
    fn of(bytes: &[u8], pool: &RecordPool) -> Self {
        let mut image = Image::default();
        let header = LOG_HEADER.len().min(bytes.len());
        image.push_raw(&bytes[..header]);
        let mut at = header;
        while let Some(length) = bytes.get(at..at + 4).map(|len| u32::from_le_bytes([len[0], len[1], len[2], len[3]])) {
            let end = at.saturating_add(FRAME_BYTES).saturating_add(length as usize);
            if end > bytes.len() {
                break;
            }
            image.push(pool.share(&bytes[at..end]));
            at = end;
        }
        image.push_raw(&bytes[at..]);
        image
    }

    fn push(&mut self, segment: Arc<[u8]>) {
        self.len += segment.len();
        self.segments.push(segment);
    }

    fn push_raw(&mut self, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.push(Arc::from(bytes));
        }
    }

    /// The image as one contiguous copy.
    fn to_vec(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.len);
        for segment in &self.segments {
            bytes.extend_from_slice(segment);
        }
        bytes
    }
}

/// Where an armed crash lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrashPoint {
    /// The crash happens at the node's `at_op`-th IO operation from now (1-based).
    pub at_op: u32,
    /// `Some(fraction in parts per million)`: that share of the unsynced bytes
    /// (rounded down, cut mid-record) reaches the disk; `None`: all are lost.
    pub tear_ppm: Option<u32>,
}

/// What a crash did to the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashEffect {
    /// Unsynced bytes that never became durable.
    pub unsynced_bytes_lost: u64,
    /// Bytes of a torn write that did reach the disk.
    pub torn_bytes: u64,
    /// Whether the crash interrupted an IO operation (rather than landing
    /// between steps).
    pub mid_operation: bool,
}

#[derive(Debug)]
struct Disk {
    durable: Image,
    unsynced: Vec<u8>,
    /// Where each whole record written since the last sync ends in `unsynced`.
    unsynced_ends: Vec<usize>,
    pool: RecordPool,
    armed: Option<CrashPoint>,
    /// IO operations since the crash point was armed.
    ops_since_armed: u32,
    /// Set when the crash point was reached; cleared by `restart`.
    crashed: Option<CrashEffect>,
    /// Counts `arm` and `restart` calls, so a crash deadline set for one
    /// arming can tell that the node has restarted since (see `is_armed_by`).
    arming: u64,
}

/// A node's disk, shared between the world and the node's `Store` handle.
#[derive(Clone, Debug)]
pub struct SimDisk {
    node: u32,
    disk: Arc<Mutex<Disk>>,
}

impl SimDisk {
    /// A fresh disk holding an empty log, sharing records with no other disk.
    pub fn new(node: u32) -> Self {
        Self::sharing(node, &RecordPool::default())
    }

    /// A fresh disk holding an empty log, sharing records through `pool`
    /// with the other disks of the run.
    pub fn sharing(node: u32, pool: &RecordPool) -> Self {
        let disk = Disk {
            durable: Image::of(LOG_HEADER, pool),
            unsynced: Vec::new(),
            unsynced_ends: Vec::new(),
            pool: pool.clone(),
            armed: None,
            ops_since_armed: 0,
            crashed: None,
            arming: 0,
        };
        Self { node, disk: Arc::new(Mutex::new(disk)) }
    }

    fn lock(&self) -> MutexGuard<'_, Disk> {
        // A poisoned lock means a panic already aborted the run.
        self.disk.lock().expect("the simulation is single-threaded")
    }

    /// Arms a crash at a future IO operation; returns this arming's number
    /// for [`SimDisk::is_armed_by`].
    pub fn arm(&self, point: CrashPoint) -> u64 {
        let mut disk = self.lock();
        disk.armed = Some(point);
        disk.ops_since_armed = 0;
        disk.arming += 1;
        disk.arming
    }

    /// Whether the crash armed as `arming` is still pending: no later arming
    /// and no restart since. A deadline that outlives its fault (the node
    /// crashed, the fault healed and the node restarted) must not crash the
    /// restarted node, which no fault would then bring back.
    pub fn is_armed_by(&self, arming: u64) -> bool {
        let disk = self.lock();
        disk.arming == arming && disk.armed.is_some()
    }

    /// The crash, if the disk reached its crash point.
    pub fn crashed(&self) -> Option<CrashEffect> {
        self.lock().crashed
    }

    /// Crashes now, between operations (the armed point was never reached):
    /// unsynced bytes are lost, or torn as the armed point says.
    pub fn crash_now(&self) -> CrashEffect {
        let mut disk = self.lock();
        if let Some(effect) = disk.crashed {
            return effect;
        }
        let tear_ppm = disk.armed.and_then(|point| point.tear_ppm);
        let mut effect = disk.tear(tear_ppm);
        effect.mid_operation = false;
        disk.crashed = Some(effect);
        effect
    }

    /// The disk is lost and replaced by an empty one (a node replacement).
    pub fn wipe(&self) {
        let mut disk = self.lock();
        disk.durable = Image::of(LOG_HEADER, &disk.pool);
        disk.clear_unsynced();
    }

    /// Rot: one bit of the payload of one durable record, both drawn from
    /// `rng`, flips. Returns the record's index and the byte's offset in the
    /// log, or `None` when no record has a payload.
    pub fn rot(&self, rng: &mut SimRng) -> Option<(u64, u64)> {
        let mut disk = self.lock();
        // The flipped record is this disk's own: rot works on a copy.
        let mut durable = disk.durable.to_vec();
        // Frame each record: length, kind, checksum, payload.
        let mut payloads = Vec::new();
        let mut at = LOG_HEADER.len();
        while at + FRAME_BYTES <= durable.len() {
            let length = u32::from_le_bytes(durable[at..at + 4].try_into().ok()?) as usize;
            let end = at + FRAME_BYTES + length;
            if end > durable.len() {
                break;
            }
            if length > 0 {
                payloads.push((at + FRAME_BYTES, length));
            }
            at = end;
        }
        let record = rng.below(payloads.len() as u64) as usize;
        let (start, length) = *payloads.get(record)?;
        let offset = start + rng.below(length as u64) as usize;
        durable[offset] ^= 1 << rng.below(8);
        disk.durable = Image::of(&durable, &disk.pool);
        Some((record as u64, offset as u64))
    }

    /// The node restarts: the disk works again, unarmed.
    pub fn restart(&self) {
        let mut disk = self.lock();
        disk.clear_unsynced();
        disk.armed = None;
        disk.crashed = None;
        disk.arming += 1;
    }

    /// Bytes written but not yet synced.
    pub fn unsynced_bytes(&self) -> u64 {
        self.lock().unsynced.len() as u64
    }

    fn dead(&self, op: &'static str) -> StoreError {
        StoreError::Io {
            op,
            path: PathBuf::from(format!("<disk of n{}>", self.node)),
            source: std::io::Error::other("the node crashed during this operation"),
        }
    }

    /// Counts one IO operation; `Err` when it is the crash point (or the
    /// disk is already dead). `pending` is what the operation is about to
    /// add to the unsynced bytes, so a tear can cut into it.
    fn operation(&self, op: &'static str, pending: &[u8]) -> Result<(), StoreError> {
        let mut disk = self.lock();
        if disk.crashed.is_some() {
            return Err(self.dead(op));
        }
        let Some(point) = disk.armed else { return Ok(()) };
        disk.ops_since_armed += 1;
        if disk.ops_since_armed < point.at_op {
            return Ok(());
        }
        disk.unsynced.extend_from_slice(pending);
        let mut effect = disk.tear(point.tear_ppm);
        effect.mid_operation = true;
        disk.crashed = Some(effect);
        Err(self.dead(op))
    }
}

impl Disk {
    /// The unsynced bytes meet the crash: a share of them survives as a torn
    /// write, the rest is lost.
    fn tear(&mut self, tear_ppm: Option<u32>) -> CrashEffect {
        let unsynced = self.unsynced.len() as u64;
        let torn_bytes = tear_ppm.map_or(0, |ppm| unsynced * u64::from(ppm.min(1_000_000)) / 1_000_000);
        // Cannot truncate: torn_bytes <= unsynced.len(), a usize.
        let torn = std::mem::take(&mut self.unsynced);
        self.durable.push_raw(&torn[..torn_bytes as usize]);
        self.clear_unsynced();
        CrashEffect { unsynced_bytes_lost: unsynced - torn_bytes, torn_bytes, mid_operation: false }
    }

    /// Makes the unsynced records durable, each shared through the pool.
    fn sync(&mut self) {
        // Taken, not cleared: an idle disk keeps no buffer of its largest write.
        let (unsynced, ends) = (std::mem::take(&mut self.unsynced), std::mem::take(&mut self.unsynced_ends));
        let mut start = 0;
        for end in ends {
            self.durable.push(self.pool.share(&unsynced[start..end]));
            start = end;
        }
        // Every append records its end, so nothing is left over.
        self.durable.push_raw(&unsynced[start..]);
    }

    fn clear_unsynced(&mut self) {
        self.unsynced.clear();
        self.unsynced_ends.clear();
    }
}

impl Store for SimDisk {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        let mut framed = Vec::new();
        encode_record(kind, payload, &mut framed)?;
        self.operation("write", &framed)?;
        let mut disk = self.lock();
        disk.unsynced.extend_from_slice(&framed);
        let end = disk.unsynced.len();
        disk.unsynced_ends.push(end);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.operation("fsync", &[])?;
        self.lock().sync();
        Ok(())
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        let mut disk = self.lock();
        disk.clear_unsynced();
        let durable = disk.durable.to_vec();
        let recovered = decode_log(&durable);
        if recovered.defect.is_some_and(|defect| !defect.is_repairable()) {
            drop(disk);
            return Err(self.dead("load"));
        }
        let image = if (recovered.valid_bytes as usize) < LOG_HEADER.len() {
            LOG_HEADER.to_vec()
        } else {
            // The stores cut and mark rot in one atomic step.
            repaired_image(&durable, &recovered)
        };
        disk.durable = Image::of(&image, &disk.pool);
        Ok(recovered)
    }

    fn replace(&mut self, records: &[Record]) -> Result<(), StoreError> {
        // A compaction is atomic (a rename): it happens whole or not at all.
        self.operation("rename", &[])?;
        let mut disk = self.lock();
        let mut image = Image::of(LOG_HEADER, &disk.pool);
        let mut framed = Vec::new();
        for record in records {
            framed.clear();
            encode_record(record.kind, &record.payload, &mut framed)?;
            image.push(disk.pool.share(&framed));
        }
        disk.durable = image;
        disk.clear_unsynced();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(byte: u8) -> Vec<u8> {
        vec![byte; 40]
    }

    #[test]
    fn a_crash_at_the_fsync_loses_the_unsynced_records() {
        let mut disk = SimDisk::new(0);
        disk.append(RecordKind::Lane, &lane(1)).unwrap();
        disk.sync().unwrap();
        disk.arm(CrashPoint { at_op: 2, tear_ppm: None });
        disk.append(RecordKind::Lane, &lane(2)).unwrap();
        assert!(disk.sync().is_err(), "the fsync is the crash point");
        assert!(disk.append(RecordKind::Lane, &lane(3)).is_err(), "a dead disk takes nothing");
        let effect = disk.crashed().unwrap();
        assert_eq!((effect.unsynced_bytes_lost, effect.torn_bytes, effect.mid_operation), (49, 0, true));
        disk.restart();
        let recovered = disk.load().unwrap();
        assert_eq!(recovered.records.len(), 1);
        assert_eq!(recovered.torn_tail_bytes, 0);
    }

    #[test]
    fn a_torn_crash_leaves_a_prefix_that_recovery_truncates() {
        let mut disk = SimDisk::new(0);
        disk.append(RecordKind::Lane, &lane(1)).unwrap();
        disk.sync().unwrap();
        disk.arm(CrashPoint { at_op: 2, tear_ppm: Some(600_000) });
        disk.append(RecordKind::Lane, &lane(2)).unwrap();
        assert!(disk.append(RecordKind::Lane, &lane(3)).is_err(), "the second write is the crash point");
        let effect = disk.crashed().unwrap();
        assert_eq!(effect.torn_bytes + effect.unsynced_bytes_lost, 98);
        assert_eq!(effect.torn_bytes, 58, "60% of two framed records: into the middle of the second");
        disk.restart();
        let recovered = disk.load().unwrap();
        assert_eq!(recovered.records.len(), 2, "the first record of the torn write is whole");
        assert_eq!(recovered.torn_tail_bytes, 9, "the second is cut: a torn tail");
        assert_eq!(disk.load().unwrap().torn_tail_bytes, 0, "and it is truncated durably");
    }

    #[test]
    fn disks_of_one_pool_share_equal_records_and_keep_their_bytes() {
        let pool = RecordPool::default();
        let (mut first, mut second) = (SimDisk::sharing(0, &pool), SimDisk::sharing(1, &pool));
        for disk in [&mut first, &mut second] {
            disk.append(RecordKind::Lane, &lane(1)).unwrap();
            disk.append(RecordKind::Lane, &lane(2)).unwrap();
            disk.sync().unwrap();
        }
        second.append(RecordKind::Lane, &lane(3)).unwrap();
        second.sync().unwrap();
        assert_eq!(pool.live(), 3, "two records written to both disks are held once");
        let shared = |disk: &SimDisk| disk.lock().durable.segments[1].clone();
        assert!(Arc::ptr_eq(&shared(&first), &shared(&second)));
        let mut expected = LOG_HEADER.to_vec();
        for byte in [1, 2, 3] {
            encode_record(RecordKind::Lane, &lane(byte), &mut expected).unwrap();
        }
        assert_eq!(second.lock().durable.to_vec(), expected, "the image is the bytes appended, in order");
        assert_eq!(second.load().unwrap().records.len(), 3);
        drop(second);
        assert_eq!(pool.live(), 2, "a record no disk holds is not kept alive by the pool");
    }

    #[test]
    fn rot_changes_one_disk_and_not_the_record_it_shared() {
        let pool = RecordPool::default();
        let (mut first, mut second) = (SimDisk::sharing(0, &pool), SimDisk::sharing(1, &pool));
        for disk in [&mut first, &mut second] {
            disk.append(RecordKind::Lane, &lane(1)).unwrap();
            disk.sync().unwrap();
        }
        assert!(first.rot(&mut SimRng::new(7, "rot", 0)).is_some());
        first.restart();
        assert!(first.load().unwrap().defect.is_some(), "the rotten record fails its checksum");
        assert_eq!(second.load().unwrap().records.len(), 1, "the other disk's copy is intact");
    }

    #[test]
    fn a_crash_between_steps_loses_what_is_unsynced() {
        let mut disk = SimDisk::new(0);
        disk.append(RecordKind::Lane, &lane(1)).unwrap();
        let effect = disk.crash_now();
        assert_eq!((effect.unsynced_bytes_lost, effect.mid_operation), (49, false));
        disk.restart();
        assert!(disk.load().unwrap().records.is_empty());
    }
}
