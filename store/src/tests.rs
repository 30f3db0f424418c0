//! The stores' recovery contract: every tear, every flipped byte, refusals,
//! compaction and poisoning, in memory and on files.

use super::*;
use crate::file::temp_path_for;
use scx_engine::log::*;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

type Written = Vec<Record>;

/// `count` records cycling through every kind, with varied payload sizes
/// (including empty ones).
fn records(count: usize) -> Written {
    (0..count)
        .map(|i| Record {
            kind: RecordKind::ALL[i % 4],
            payload: (0..i * 7 % 50).map(|j| (i * 31 + j) as u8).collect(),
        })
        .collect()
}

fn load_all(store: &mut impl Store) -> Written {
    let recovered = store.load().expect("the log loads");
    recovered.records
}

fn append_all(store: &mut impl Store, written: &[Record]) {
    for record in written {
        store.append(record.kind, &record.payload).expect("the record fits");
    }
}

/// A synced MemStore holding `written`.
fn synced_mem(written: &[Record]) -> MemStore {
    let mut store = MemStore::new();
    append_all(&mut store, written);
    store.sync().expect("memory syncs");
    store
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir_name = format!("scx-store-{name}-{}-{unique}", std::process::id());
        let path = std::env::temp_dir().join(dir_name);
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("the temp dir is writable");
        Self(path)
    }

    fn log(&self) -> PathBuf {
        self.0.join("node.log")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn an_empty_store_loads_no_records() {
    let recovered = MemStore::new().load().unwrap();
    assert_eq!(recovered, Recovered { valid_bytes: HEADER_BYTES, ..Recovered::default() });
    let dir = TempDir::new("empty");
    let recovered = FileStore::open(dir.log()).unwrap().load().unwrap();
    assert_eq!(recovered, Recovered { valid_bytes: HEADER_BYTES, ..Recovered::default() });
    assert_eq!(fs::read(dir.log()).unwrap(), LOG_HEADER, "open creates the header");
    assert!(load_all(&mut FileStore::open(dir.log()).unwrap()).is_empty(), "and reopens empty");
    assert_eq!(decode_log(&[]), Recovered::default(), "an empty image is an empty log");
}

#[test]
fn records_of_every_kind_round_trip_through_memory() {
    let written = records(300);
    let mut store = synced_mem(&written);
    assert_eq!(load_all(&mut store), written);
    assert_eq!(load_all(&mut store), written, "load is repeatable");
    assert_eq!(store.bytes_durable(), encode_log(&written).unwrap().len() as u64);
}

#[test]
fn records_of_every_kind_round_trip_through_a_file_and_reopen() {
    let dir = TempDir::new("round-trip");
    let written = records(300);
    let mut store = FileStore::open(dir.log()).unwrap();
    assert!(load_all(&mut store).is_empty());
    append_all(&mut store, &written[..100]);
    store.sync().unwrap();
    append_all(&mut store, &written[100..]);
    store.sync().unwrap();
    assert_eq!(store.unsynced_len(), 0);
    assert_eq!(store.bytes_durable(), fs::metadata(dir.log()).unwrap().len());
    assert_eq!(load_all(&mut store), written);
    drop(store);
    let mut reopened = FileStore::open(dir.log()).unwrap();
    assert_eq!(load_all(&mut reopened), written);
    assert_eq!(fs::read(dir.log()).unwrap(), encode_log(&written).unwrap(), "the file is the encoded log");
}

#[test]
fn a_crash_drops_unsynced_records() {
    let written = records(20);
    let mut store = synced_mem(&written[..15]);
    append_all(&mut store, &written[15..]);
    assert!(store.unsynced_len() > 0);
    store.crash(None);
    assert_eq!(store.unsynced_len(), 0);
    assert_eq!(load_all(&mut store), written[..15]);
    let dir = TempDir::new("crash");
    let mut file = FileStore::open(dir.log()).unwrap();
    append_all(&mut file, &written[..15]);
    file.sync().unwrap();
    append_all(&mut file, &written[15..]);
    drop(file);
    assert_eq!(load_all(&mut FileStore::open(dir.log()).unwrap()), written[..15]);
}

#[test]
fn load_discards_unsynced_appends() {
    let written = records(4);
    let mut store = synced_mem(&written[..2]);
    append_all(&mut store, &written[2..]);
    assert_eq!(load_all(&mut store), written[..2]);
    store.sync().unwrap();
    assert_eq!(load_all(&mut store), written[..2], "the discarded appends do not come back");
}

#[test]
fn a_tear_at_every_offset_of_the_last_record_recovers_exactly_the_synced_records() {
    let written = records(6);
    let mut base = synced_mem(&written[..5]);
    let synced_bytes = base.bytes_durable();
    append_all(&mut base, &written[5..]);
    for tear in 0..=base.unsynced_len() {
        let mut store = base.clone();
        store.crash(Some(tear));
        let recovered = store.load().unwrap();
        let complete = tear == base.unsynced_len();
        let expected = if complete { &written[..] } else { &written[..5] };
        assert_eq!(recovered.records.len(), expected.len(), "tear of {tear} bytes");
        assert_eq!(recovered.torn_tail_bytes, if complete { 0 } else { tear as u64 });
        assert_eq!(recovered.defect, (tear > 0 && !complete).then_some(TailDefect::Truncated));
        assert_eq!(load_all(&mut store), expected, "tear of {tear} bytes: the truncation holds");
        if !complete {
            assert_eq!(store.bytes_durable(), synced_bytes);
        }
    }
}

#[test]
fn a_file_torn_at_every_offset_of_the_last_record_recovers_and_is_truncated() {
    let dir = TempDir::new("tear");
    let written = records(4);
    let synced = encode_log(&written[..3]).unwrap();
    let mut last = Vec::new();
    encode_record(written[3].kind, &written[3].payload, &mut last).unwrap();
    for tear in 0..last.len() {
        fs::write(dir.log(), [&synced[..], &last[..tear]].concat()).unwrap();
        let mut store = FileStore::open(dir.log()).unwrap();
        let recovered = store.load().unwrap();
        assert_eq!(recovered.torn_tail_bytes, tear as u64);
        assert_eq!(fs::read(dir.log()).unwrap(), synced, "tear of {tear} bytes is truncated on disk");
        store.append(RecordKind::Commit, b"next").unwrap();
        store.sync().unwrap();
        let mut expected = written[..3].to_vec();
        expected.push(Record { kind: RecordKind::Commit, payload: b"next".to_vec() });
        assert_eq!(load_all(&mut FileStore::open(dir.log()).unwrap()), expected);
    }
}

/// Every single-byte corruption of a small synced log: the header is
/// refused, anything else recovers an intact prefix shorter than the log.
#[test]
fn any_flipped_byte_recovers_a_strict_prefix_and_never_panics() {
    let written = records(8);
    let base = synced_mem(&written);
    for position in 0..base.durable_bytes().len() {
        for mask in [0x01, 0x10, 0x80, 0xFF] {
            let mut store = base.clone();
            store.corrupt(position, mask);
            match store.load() {
                Err(StoreError::BadHeader { .. }) => assert!(position < LOG_HEADER.len()),
                Err(error) => panic!("byte {position} mask {mask:#x}: {error}"),
                Ok(recovered) => {
                    let got: Written = recovered.records;
                    assert!(got.len() < written.len(), "flipping byte {position} went unnoticed");
                    assert_eq!(got, written[..got.len()], "only an intact prefix comes back");
                    assert_eq!(recovered.valid_bytes + recovered.torn_tail_bytes, base.bytes_durable());
                }
            }
        }
    }
}

#[test]
fn any_flipped_byte_of_a_file_recovers_a_strict_prefix() {
    let dir = TempDir::new("flip");
    let written = records(5);
    let image = encode_log(&written).unwrap();
    for position in LOG_HEADER.len()..image.len() {
        let mut corrupted = image.clone();
        corrupted[position] ^= 0x04;
        fs::write(dir.log(), &corrupted).unwrap();
        let mut store = FileStore::open(dir.log()).unwrap();
        let recovered = store.load().unwrap();
        let got: Written = recovered.records.clone();
        assert!(got.len() < written.len(), "flipping byte {position} went unnoticed");
        assert_eq!(got, written[..got.len()]);
        // The prefix, and after rot (not a tear) the rejoin record cut with it.
        let mut expected = encode_log(&got).unwrap();
        if recovered.defect.is_some_and(TailDefect::is_corruption) {
            encode_record(RecordKind::Rejoin, &ROT_FOUND, &mut expected).unwrap();
        }
        assert_eq!(fs::read(dir.log()).unwrap(), expected, "the file holds the prefix");
    }
}

#[test]
fn corruption_in_the_middle_drops_everything_after_it() {
    let written = records(10);
    let mut store = synced_mem(&written);
    let offset = encode_log(&written[..4]).unwrap().len();
    store.corrupt(offset + FRAME_BYTES, 0x01);
    let recovered = store.load().unwrap();
    assert_eq!(recovered.records.len(), 4);
    assert_eq!(recovered.defect, Some(TailDefect::BadChecksum));
    assert_eq!(recovered.valid_bytes, offset as u64);
    assert_eq!(recovered.torn_tail_bytes, (encode_log(&written).unwrap().len() - offset) as u64);
}

#[test]
fn a_zero_filled_tail_is_torn() {
    let mut image = encode_log(&records(3)).unwrap();
    let valid_bytes = image.len() as u64;
    image.extend_from_slice(&[0; 64]);
    let recovered = decode_log(&image);
    assert_eq!(recovered.records.len(), 3);
    assert_eq!((recovered.valid_bytes, recovered.torn_tail_bytes), (valid_bytes, 64));
    assert_eq!(recovered.defect, Some(TailDefect::BadChecksum));
}

#[test]
fn oversized_records_are_refused_on_append_and_torn_on_load() {
    let mut store = MemStore::new();
    let error = store.append(RecordKind::Lane, &vec![0; MAX_RECORD_BYTES + 1]).unwrap_err();
    assert!(
        matches!(error, StoreError::RecordTooLarge(RecordTooLarge { payload_bytes, .. }) if payload_bytes == MAX_RECORD_BYTES + 1)
    );
    assert_eq!(store.unsynced_len(), 0, "a refused append leaves nothing behind");
    let mut image = LOG_HEADER.to_vec();
    image.extend_from_slice(&u32::MAX.to_le_bytes());
    image.extend_from_slice(&[1, 0, 0, 0, 0]);
    let recovered = decode_log(&image);
    assert_eq!(recovered.defect, Some(TailDefect::Oversized { payload_bytes: u64::from(u32::MAX) }));
    assert_eq!(recovered.torn_tail_bytes, FRAME_BYTES as u64);
}

#[test]
fn an_unknown_kind_with_a_valid_checksum_is_refused_not_truncated() {
    let mut image = encode_log(&records(2)).unwrap();
    let offset = image.len();
    let head = [1, 0, 0, 0, 9];
    image.extend_from_slice(&head);
    image.extend_from_slice(&frame_checksum(&head, b"x").to_le_bytes());
    image.push(b'x');
    let dir = TempDir::new("unknown-kind");
    fs::write(dir.log(), &image).unwrap();
    let error = FileStore::open(dir.log()).unwrap().load().unwrap_err();
    assert!(matches!(error, StoreError::UnknownKind { tag: 9, offset: o, .. } if o == offset as u64), "{error}");
    assert_eq!(fs::read(dir.log()).unwrap(), image, "the log is left untouched");
}

#[test]
fn a_foreign_file_is_refused_and_left_untouched() {
    let dir = TempDir::new("foreign");
    fs::write(dir.log(), b"not a log at all").unwrap();
    let error = FileStore::open(dir.log()).unwrap_err();
    assert!(matches!(&error, StoreError::BadHeader { found, .. } if found == b"not a lo"), "{error}");
    fs::write(dir.log(), b"abc").unwrap();
    assert!(matches!(FileStore::open(dir.log()), Err(StoreError::BadHeader { .. })));
    assert_eq!(fs::read(dir.log()).unwrap(), b"abc");
}

#[test]
fn a_torn_header_is_an_empty_log() {
    let dir = TempDir::new("torn-header");
    fs::write(dir.log(), &LOG_HEADER[..3]).unwrap();
    let mut store = FileStore::open(dir.log()).unwrap();
    assert!(load_all(&mut store).is_empty());
    assert_eq!(fs::read(dir.log()).unwrap(), LOG_HEADER);
    let recovered = decode_log(&LOG_HEADER[..5]);
    assert_eq!((recovered.valid_bytes, recovered.torn_tail_bytes), (0, 5));
    assert_eq!(recovered.defect, Some(TailDefect::Truncated));
}

#[test]
fn replace_then_load_returns_exactly_the_new_records() {
    let old = records(10);
    let new: Written = records(30).into_iter().skip(20).collect();
    let mut store = synced_mem(&old);
    store.append(RecordKind::Lane, b"unsynced").unwrap();
    store.replace(&new).unwrap();
    assert_eq!(store.unsynced_len(), 0, "replace discards unsynced appends");
    store.crash(None);
    assert_eq!(load_all(&mut store), new, "the replacement is durable");
    store.replace(&[]).unwrap();
    assert!(load_all(&mut store).is_empty());
}

#[test]
fn a_replaced_file_log_survives_reopen_and_appends_continue() {
    let dir = TempDir::new("replace");
    let old = records(10);
    let mut store = FileStore::open(dir.log()).unwrap();
    append_all(&mut store, &old);
    store.sync().unwrap();
    store.append(RecordKind::Lane, b"unsynced").unwrap();
    store.replace(&old[..3]).unwrap();
    store.append(RecordKind::Commit, b"after").unwrap();
    store.sync().unwrap();
    let mut expected = old[..3].to_vec();
    expected.push(Record { kind: RecordKind::Commit, payload: b"after".to_vec() });
    assert_eq!(load_all(&mut store), expected);
    drop(store);
    assert_eq!(load_all(&mut FileStore::open(dir.log()).unwrap()), expected);
    let leftovers: Vec<_> = fs::read_dir(&dir.0).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["node.log"], "no temporary file remains");
}

#[test]
fn a_stale_compaction_file_is_removed_on_open() {
    let dir = TempDir::new("stale");
    let temp_path = temp_path_for(&dir.log()).unwrap();
    fs::write(&temp_path, b"half a compaction").unwrap();
    FileStore::open(dir.log()).unwrap();
    assert!(!temp_path.exists());
}

#[test]
fn a_failed_replace_poisons_the_store_until_reload() {
    let dir = TempDir::new("poison");
    let written = records(3);
    let mut store = FileStore::open(dir.log()).unwrap();
    append_all(&mut store, &written);
    store.sync().unwrap();
    // Make the temp file impossible to create: a directory in its place.
    let temp_path = temp_path_for(&dir.log()).unwrap();
    fs::create_dir(&temp_path).unwrap();
    assert!(matches!(store.replace(&[]), Err(StoreError::Io { op: "write", .. })));
    assert!(matches!(store.append(RecordKind::Lane, b"x"), Err(StoreError::Poisoned { .. })));
    assert!(matches!(store.sync(), Err(StoreError::Poisoned { .. })));
    fs::remove_dir(&temp_path).unwrap();
    assert_eq!(load_all(&mut store), written, "the failed replace left the log intact");
    store.append(RecordKind::Lane, b"x").unwrap();
    store.sync().unwrap();
}
