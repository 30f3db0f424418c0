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

use crate::rng::SimRng;
use scx_engine::log::{
    FRAME_BYTES, LOG_HEADER, Record, RecordKind, Recovered, decode_log, encode_log, encode_record, repaired_image,
};
use scx_store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

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
    durable: Vec<u8>,
    unsynced: Vec<u8>,
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
    /// A fresh disk holding an empty log.
    pub fn new(node: u32) -> Self {
        let disk = Disk {
            durable: LOG_HEADER.to_vec(),
            unsynced: Vec::new(),
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
        disk.durable = LOG_HEADER.to_vec();
        disk.unsynced.clear();
    }

    /// Rot: one bit of the payload of one durable record, both drawn from
    /// `rng`, flips. Returns the record's index and the byte's offset in the
    /// log, or `None` when no record has a payload.
    pub fn rot(&self, rng: &mut SimRng) -> Option<(u64, u64)> {
        let mut disk = self.lock();
        // Frame each record: length, kind, checksum, payload.
        let mut payloads = Vec::new();
        let mut at = LOG_HEADER.len();
        while at + FRAME_BYTES <= disk.durable.len() {
            let length = u32::from_le_bytes(disk.durable[at..at + 4].try_into().ok()?) as usize;
            let end = at + FRAME_BYTES + length;
            if end > disk.durable.len() {
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
        disk.durable[offset] ^= 1 << rng.below(8);
        Some((record as u64, offset as u64))
    }

    /// The node restarts: the disk works again, unarmed.
    pub fn restart(&self) {
        let mut disk = self.lock();
        disk.unsynced.clear();
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
        self.durable.extend_from_slice(&self.unsynced[..torn_bytes as usize]);
        self.unsynced.clear();
        CrashEffect { unsynced_bytes_lost: unsynced - torn_bytes, torn_bytes, mid_operation: false }
    }
}

impl Store for SimDisk {
    fn append(&mut self, kind: RecordKind, payload: &[u8]) -> Result<(), StoreError> {
        let mut framed = Vec::new();
        encode_record(kind, payload, &mut framed)?;
        self.operation("write", &framed)?;
        self.lock().unsynced.extend_from_slice(&framed);
        Ok(())
    }

    fn sync(&mut self) -> Result<(), StoreError> {
        self.operation("fsync", &[])?;
        let mut disk = self.lock();
        let unsynced = std::mem::take(&mut disk.unsynced);
        disk.durable.extend_from_slice(&unsynced);
        Ok(())
    }

    fn load(&mut self) -> Result<Recovered, StoreError> {
        let mut disk = self.lock();
        disk.unsynced.clear();
        let recovered = decode_log(&disk.durable);
        if recovered.defect.is_some_and(|defect| !defect.is_repairable()) {
            drop(disk);
            return Err(self.dead("load"));
        }
        if (recovered.valid_bytes as usize) < LOG_HEADER.len() {
            disk.durable = LOG_HEADER.to_vec();
        } else {
            // The stores cut and mark rot in one atomic step.
            disk.durable = repaired_image(&disk.durable, &recovered);
        }
        Ok(recovered)
    }

    fn replace(&mut self, records: &[Record]) -> Result<(), StoreError> {
        // A compaction is atomic (a rename): it happens whole or not at all.
        self.operation("rename", &[])?;
        let image = encode_log(records)?;
        let mut disk = self.lock();
        disk.durable = image;
        disk.unsynced.clear();
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
    fn a_crash_between_steps_loses_what_is_unsynced() {
        let mut disk = SimDisk::new(0);
        disk.append(RecordKind::Lane, &lane(1)).unwrap();
        let effect = disk.crash_now();
        assert_eq!((effect.unsynced_bytes_lost, effect.mid_operation), (49, false));
        disk.restart();
        assert!(disk.load().unwrap().records.is_empty());
    }
}
