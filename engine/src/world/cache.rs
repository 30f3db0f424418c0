//! The world's [`Law::EncodeCache`](crate::law::Law::EncodeCache): the sets
//! part of the last encoding, so a digest re-encodes only the sets that
//! changed (registers and counters are small, and always re-encoded).
//!
//! The sets are parts behind reference counts. For each part the cache
//! keeps its number (the set's key), a weak reference to it and where its
//! bytes lie. A part with a weak reference cannot change in
//! place (`Arc::make_mut` moves or copies it to a new allocation first, and
//! `Arc::get_mut` refuses), and the weak reference keeps its allocation
//! from being reused, so while a state holds that same allocation under
//! that number, the bytes are its encoding. Weak, not strong: a lane that
//! changes a part no checkpoint shares moves it rather than copying it.

use super::SetTags;
use std::ops::Range;
use std::sync::{Arc, Weak};

/// The world law's encoding cache (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct WorldEncodeCache {
    pub(super) sets: Section<SetTags>,
}

/// A section of the last encoding made of parts behind reference counts:
/// its bytes after the count, and its parts.
#[derive(Clone, Debug)]
pub(super) struct Section<T> {
    bytes: Vec<u8>,
    /// How many parts the last encoding wrote afresh.
    pub(super) fresh: usize,
    /// How many spans of the encoding before it the last one copied:
    /// unchanged parts that sat next to each other there copy as one.
    pub(super) spans: usize,
    parts: Vec<Part<T>>,
    /// The previous `parts`, kept for its allocation.
    spare: Vec<Part<T>>,
}

impl<T> Default for Section<T> {
    fn default() -> Self {
        Self { bytes: Vec::new(), fresh: 0, spans: 0, parts: Vec::new(), spare: Vec::new() }
    }
}

#[derive(Clone, Debug)]
struct Part<T> {
    number: u32,
    part: Weak<T>,
    bytes: Range<usize>,
}

impl<T> Section<T> {
    /// Appends the encoding of `parts` (ascending by number): the bytes of
    /// each part unchanged since the last call copied from the cache
    /// (neighbours there in one go), the others written by `encode`.
    pub(super) fn encode<'a>(
        &mut self,
        parts: impl Iterator<Item = (u32, &'a Arc<T>)>,
        out: &mut Vec<u8>,
        mut encode: impl FnMut(u32, &T, &mut Vec<u8>),
    ) where
        T: 'a,
    {
        let start = out.len();
        let mut fresh = std::mem::take(&mut self.spare);
        fresh.clear();
        let mut cached = self.parts.iter().peekable();
        // Bytes of the previous encoding still to copy: unchanged parts
        // that sat next to each other there, copied in one go.
        let mut run = 0..0;
        let mut spans = 0;
        self.fresh = 0;
        for (number, part) in parts {
            while cached.next_if(|entry| entry.number < number).is_some() {}
            let unchanged =
                cached.next_if(|entry| entry.number == number && std::ptr::eq(entry.part.as_ptr(), Arc::as_ptr(part)));
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
                    encode(number, part, out);
                    self.fresh += 1;
                }
            }
            let to = out.len() - start + run.len();
            fresh.push(Part { number, part: Arc::downgrade(part), bytes: from..to });
        }
        copy_span(&self.bytes, run, out, &mut spans);
        self.spans = spans;
        self.bytes.clear();
        self.bytes.extend_from_slice(&out[start..]);
        self.spare = std::mem::replace(&mut self.parts, fresh);
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
