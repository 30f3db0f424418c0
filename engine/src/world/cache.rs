//! The world's [`Law::EncodeCache`](crate::law::Law::EncodeCache): the sets
//! part of the last encoding, so a digest re-encodes only the sets that
//! changed (registers and counters are small, and always re-encoded).
//!
//! For each set the cache keeps its key, a weak reference to it and where
//! its bytes (key included) lie. A set with a weak reference cannot change
//! in place (`Arc::make_mut` moves or copies it to a new allocation first,
//! and `Arc::get_mut` refuses), and the weak reference keeps its allocation
//! from being reused, so while a state holds that same allocation at that
//! key, the bytes are its encoding. Weak, not strong: a lane that changes a
//! set no checkpoint shares moves it rather than copying it.

use super::{SetTags, encode_set};
use crate::codec::put_varint;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, Weak};

/// The world law's encoding cache (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct WorldEncodeCache {
    /// The sets part of the last encoding, after its count.
    bytes: Vec<u8>,
    sets: Vec<CachedSet>,
    /// The previous `sets`, kept for its allocation.
    spare: Vec<CachedSet>,
    /// How many sets the last encoding wrote afresh.
    pub(super) fresh: usize,
    /// How many spans of the encoding before it the last one copied:
    /// unchanged sets that sat next to each other there copy as one.
    pub(super) spans: usize,
}

#[derive(Clone, Debug)]
struct CachedSet {
    key: u32,
    set: Weak<SetTags>,
    bytes: Range<usize>,
}

impl WorldEncodeCache {
    /// Appends the encoding of `sets` (each key and set, without their
    /// count): the bytes of each set unchanged since the last call copied
    /// from the cache, neighbours there in one go, the others written.
    pub(super) fn encode_sets(&mut self, sets: &BTreeMap<u32, Arc<SetTags>>, out: &mut Vec<u8>) {
        let start = out.len();
        let mut fresh = std::mem::take(&mut self.spare);
        fresh.clear();
        let mut cached = self.sets.iter().peekable();
        // Bytes of the previous encoding still to copy: unchanged sets that
        // sat next to each other there, copied in one go.
        let mut run = 0..0;
        let mut group = Vec::new();
        let mut spans = 0;
        self.fresh = 0;
        for (key, set) in sets {
            while cached.next_if(|entry| entry.key < *key).is_some() {}
            let unchanged =
                cached.next_if(|entry| entry.key == *key && std::ptr::eq(entry.set.as_ptr(), Arc::as_ptr(set)));
            let from = out.len() - start + run.len();
            match unchanged {
                Some(entry) if entry.bytes.start == run.end => run.end = entry.bytes.end,
                Some(entry) => {
                    copy_span(&self.bytes, run, out, &mut spans);
                    run = entry.bytes.clone();
                }
                None => {
                    copy_span(&self.bytes, run, out, &mut spans);
                    run = 0..0;
                    put_varint(out, u64::from(*key));
                    encode_set(set, &mut group, out);
                    self.fresh += 1;
                }
            }
            let to = out.len() - start + run.len();
            fresh.push(CachedSet { key: *key, set: Arc::downgrade(set), bytes: from..to });
        }
        copy_span(&self.bytes, run, out, &mut spans);
        self.spans = spans;
        self.bytes.clear();
        self.bytes.extend_from_slice(&out[start..]);
        self.spare = std::mem::replace(&mut self.sets, fresh);
        self.spare.clear();
    }
}

/// Appends `bytes[span]`, counting it if it is not empty.
fn copy_span(bytes: &[u8], span: Range<usize>, out: &mut Vec<u8>, spans: &mut usize) {
    if !span.is_empty() {
        *spans += 1;
    }
    out.extend_from_slice(&bytes[span]);
}
