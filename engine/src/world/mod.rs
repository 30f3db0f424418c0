//! The built-in law: a small "world" of keys holding last-writer registers,
//! counters and add-wins sets, so concurrent lanes produce real conflicts.
//!
//! Merge rules, applied in canonical order:
//! - register: the write that sorts last wins. Each `Put` carries the writer
//!   dot its author saw; if the register now holds a different writer, a
//!   concurrent write was overwritten and the put counts a conflict.
//! - counter: increments commute; never a conflict. Arithmetic wraps.
//! - set: an insert tags the element with the lane's dot; a remove deletes
//!   only the tags its author observed. A concurrent insert's tag survives
//!   (add wins) and the remove counts a conflict.
//!
//! Invariant: the state's canonical encoding is sorted by key, element and
//! dot (BTreeMap/BTreeSet), so equal states have equal digests.
//!
//! A replica keeps a few copies of its state as rollback checkpoints, so a
//! copy must be cheap: each set sits behind a reference count and is copied
//! only when a lane changes it (`Arc::make_mut`), so checkpoints share the
//! sets no lane touched since, and the encoding cache (`cache.rs`)
//! re-encodes only the sets that changed.

mod cache;

pub use cache::WorldEncodeCache;

use crate::bugs::Bugs;
use crate::codec::{DecodeError, DecodeErrorKind, Reader, put_signed, put_varint, signed_len, varint_len, zigzag};
use crate::lane::{Dot, OP_COLUMNS, Op};
use crate::law::{Applied, LaneContext, Law};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Most dots one `Remove` may name.
pub const MAX_REMOVE_DOTS: usize = 1024;
/// Most entries of any one map in a decoded state.
pub const MAX_STATE_ENTRIES: u64 = 1 << 32;

/// An operation of the world law.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorldOp {
    /// Write `value` to register `key`; `seen` is the writer the author saw there.
    Put {
        /// Register key.
        key: u32,
        /// New value.
        value: u64,
        /// The register's writer in the author's state when it wrote.
        seen: Option<Dot>,
    },
    /// Add `delta` to counter `key`.
    Add {
        /// Counter key.
        key: u32,
        /// Signed increment.
        delta: i64,
    },
    /// Insert `element` into set `key`.
    Insert {
        /// Set key.
        key: u32,
        /// Element.
        element: u64,
    },
    /// Remove `element` from set `key`: the insert tags in `seen`.
    Remove {
        /// Set key.
        key: u32,
        /// Element.
        element: u64,
        /// Insert tags the author observed, ascending.
        seen: Vec<Dot>,
    },
}

const TAG_PUT: u8 = 1;
const TAG_ADD: u8 = 2;
const TAG_INSERT: u8 = 3;
const TAG_REMOVE: u8 = 4;

impl Op for WorldOp {
    fn load_hint(&self) {
        // A remove's tags live behind a pointer of their own.
        if let WorldOp::Remove { seen, .. } = self {
            std::hint::black_box(seen.first().copied());
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Put { key, value, seen } => {
                out.push(TAG_PUT);
                put_varint(out, u64::from(*key));
                put_varint(out, *value);
                match seen {
                    None => out.push(0),
                    Some(dot) => {
                        out.push(1);
                        dot.encode(out);
                    }
                }
            }
            Self::Add { key, delta } => {
                out.push(TAG_ADD);
                put_varint(out, u64::from(*key));
                put_signed(out, *delta);
            }
            Self::Insert { key, element } => {
                out.push(TAG_INSERT);
                put_varint(out, u64::from(*key));
                put_varint(out, *element);
            }
            Self::Remove { key, element, seen } => {
                out.push(TAG_REMOVE);
                put_varint(out, u64::from(*key));
                put_varint(out, *element);
                put_varint(out, seen.len() as u64);
                for dot in seen {
                    dot.encode(out);
                }
            }
        }
    }

    fn encoded_len(&self) -> usize {
        let dot_len = |dot: &Dot| varint_len(u64::from(dot.author.0)) + varint_len(dot.seq);
        match self {
            Self::Put { key, value, seen } => {
                2 + varint_len(u64::from(*key)) + varint_len(*value) + seen.as_ref().map_or(0, dot_len)
            }
            Self::Add { key, delta } => 1 + varint_len(u64::from(*key)) + signed_len(*delta),
            Self::Insert { key, element } => 1 + varint_len(u64::from(*key)) + varint_len(*element),
            Self::Remove { key, element, seen } => {
                1 + varint_len(u64::from(*key))
                    + varint_len(*element)
                    + varint_len(seen.len() as u64)
                    + seen.iter().map(dot_len).sum::<usize>()
            }
        }
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = reader.byte("op tag")?;
        let key = reader.varint_u32("op key")?;
        match tag {
            TAG_PUT => {
                let value = reader.varint("put value")?;
                let seen = match reader.byte("put seen flag")? {
                    0 => None,
                    1 => Some(Dot::decode(reader)?),
                    flag => return Err(reader.error(DecodeErrorKind::UnknownTag { what: "put seen flag", tag: flag })),
                };
                Ok(Self::Put { key, value, seen })
            }
            TAG_ADD => Ok(Self::Add { key, delta: reader.signed("add delta")? }),
            TAG_INSERT => Ok(Self::Insert { key, element: reader.varint("insert element")? }),
            TAG_REMOVE => {
                let element = reader.varint("remove element")?;
                let seen = decode_remove_dots(reader)?;
                Ok(Self::Remove { key, element, seen })
            }
            tag => Err(reader.error(DecodeErrorKind::UnknownTag { what: "op", tag })),
        }
    }

    /// Batched form: tags, keys, values and seen dots in four columns. A
    /// put's seen dot by the lane's own author is written as how many seqs
    /// back it is, usually a byte.
    fn encode_batched(&self, lane: Dot, columns: &mut [Vec<u8>; OP_COLUMNS]) {
        let [tags, keys, values, seen_column] = columns;
        match self {
            Self::Put { key, value, seen } => {
                tags.push(TAG_PUT);
                put_varint(keys, u64::from(*key));
                put_varint(values, *value);
                match seen {
                    None => seen_column.push(SEEN_NONE),
                    Some(dot) if dot.author == lane.author && dot.seq < lane.seq => {
                        seen_column.push(SEEN_OWN);
                        put_varint(seen_column, lane.seq - dot.seq);
                    }
                    Some(dot) => {
                        seen_column.push(SEEN_DOT);
                        dot.encode(seen_column);
                    }
                }
            }
            Self::Add { key, delta } => {
                tags.push(TAG_ADD);
                put_varint(keys, u64::from(*key));
                put_signed(values, *delta);
            }
            Self::Insert { key, element } => {
                tags.push(TAG_INSERT);
                put_varint(keys, u64::from(*key));
                put_varint(values, *element);
            }
            Self::Remove { key, element, seen } => {
                tags.push(TAG_REMOVE);
                put_varint(keys, u64::from(*key));
                put_varint(values, *element);
                put_varint(seen_column, seen.len() as u64);
                for dot in seen {
                    dot.encode(seen_column);
                }
            }
        }
    }

    fn decode_batched(lane: Dot, columns: &mut [Reader<'_>; OP_COLUMNS]) -> Result<Self, DecodeError> {
        let [tags, keys, values, seen_column] = columns;
        let tag = tags.byte("op tag")?;
        let key = keys.varint_u32("op key")?;
        match tag {
            TAG_PUT => {
                let value = values.varint("put value")?;
                let seen = match seen_column.byte("put seen form")? {
                    SEEN_NONE => None,
                    SEEN_OWN => {
                        let back = seen_column.varint("put seen distance")?;
                        if back == 0 || back > lane.seq {
                            return Err(seen_column.error(DecodeErrorKind::Invalid {
                                what: "put seen distance",
                                rule: "must be between 1 and the lane's seq",
                            }));
                        }
                        Some(Dot { author: lane.author, seq: lane.seq - back })
                    }
                    SEEN_DOT => {
                        let dot = Dot::decode(seen_column)?;
                        if dot.author == lane.author && dot.seq < lane.seq {
                            return Err(seen_column.error(DecodeErrorKind::Invalid {
                                what: "put seen dot",
                                rule: "an earlier dot of the lane's author is written as a distance",
                            }));
                        }
                        Some(dot)
                    }
                    form => {
                        return Err(seen_column.error(DecodeErrorKind::UnknownTag { what: "put seen form", tag: form }));
                    }
                };
                Ok(Self::Put { key, value, seen })
            }
            TAG_ADD => Ok(Self::Add { key, delta: values.signed("add delta")? }),
            TAG_INSERT => Ok(Self::Insert { key, element: values.varint("insert element")? }),
            TAG_REMOVE => {
                let element = values.varint("remove element")?;
                let seen = decode_remove_dots(seen_column)?;
                Ok(Self::Remove { key, element, seen })
            }
            tag => Err(tags.error(DecodeErrorKind::UnknownTag { what: "op", tag })),
        }
    }
}

/// Batched put, seen column: no seen writer.
const SEEN_NONE: u8 = 0;
/// Batched put, seen column: an earlier lane of the same author, as a distance back.
const SEEN_OWN: u8 = 1;
/// Batched put, seen column: any other dot, written whole.
const SEEN_DOT: u8 = 2;

/// Reads a remove's dots: a count, then strictly ascending dots.
fn decode_remove_dots(reader: &mut Reader<'_>) -> Result<Vec<Dot>, DecodeError> {
    let count = reader.count("remove dots", MAX_REMOVE_DOTS as u64, 2)?;
    let mut seen = Vec::with_capacity(count);
    for _ in 0..count {
        let dot = Dot::decode(reader)?;
        if seen.last().is_some_and(|last: &Dot| *last >= dot) {
            return Err(
                reader.error(DecodeErrorKind::Invalid { what: "remove dots", rule: "dots must be strictly ascending" })
            );
        }
        seen.push(dot);
    }
    Ok(seen)
}

/// A last-writer register.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Register {
    /// Current value.
    pub value: u64,
    /// The lane that wrote it.
    pub writer: Dot,
}

/// The world's materialised state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorldState {
    /// Last-writer registers by key.
    pub registers: BTreeMap<u32, Register>,
    /// Counters by key.
    pub counters: BTreeMap<u32, i64>,
    /// Add-wins sets by key, each shared between copies of the state until
    /// a lane changes it.
    pub sets: BTreeMap<u32, Arc<SetTags>>,
}

/// One add-wins set: each element present, with the insert tags that keep
/// it. An element holds a tag or two, so the set is one tree of
/// `(element, tag)` pairs rather than a tree of elements each with a tree of
/// tags: copying it for a checkpoint, dropping it and encoding it walk one
/// tree. Invariant: `elements` is the number of distinct elements.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetTags {
    tags: BTreeSet<(u64, Dot)>,
    elements: usize,
}

/// The smallest and largest dots, bounds of an element's tags.
const DOT_MIN: Dot = Dot { author: crate::lane::NodeId(0), seq: 0 };
const DOT_MAX: Dot = Dot { author: crate::lane::NodeId(u32::MAX), seq: u64::MAX };

impl SetTags {
    /// Number of elements present.
    pub fn len(&self) -> usize {
        self.elements
    }

    /// Whether no element is present.
    pub fn is_empty(&self) -> bool {
        self.elements == 0
    }

    /// Whether `element` is present (holds a tag).
    pub fn contains(&self, element: u64) -> bool {
        self.tags(element).next().is_some()
    }

    /// The insert tags of `element`, ascending.
    pub fn tags(&self, element: u64) -> impl Iterator<Item = Dot> + '_ {
        self.tags.range((element, DOT_MIN)..=(element, DOT_MAX)).map(|(_, dot)| *dot)
    }

    /// Every `(element, tag)` pair, ascending by element and then tag.
    pub fn pairs(&self) -> impl Iterator<Item = (u64, Dot)> + '_ {
        self.tags.iter().copied()
    }

    /// Each present element with its tags: the set as a reader sees it
    /// (the simulator's reads and the model's tests compare this shape).
    pub fn by_element(&self) -> BTreeMap<u64, BTreeSet<Dot>> {
        let mut value = BTreeMap::<u64, BTreeSet<Dot>>::new();
        for (element, tag) in self.pairs() {
            value.entry(element).or_default().insert(tag);
        }
        value
    }

    /// Tags `element` with `dot`.
    fn insert(&mut self, element: u64, dot: Dot) {
        if !self.contains(element) {
            self.elements += 1;
        }
        self.tags.insert((element, dot));
    }

    /// Removes the tags `seen` of `element` and returns how many survive.
    fn remove_tags(&mut self, element: u64, seen: &[Dot]) -> usize {
        let present = self.contains(element);
        for dot in seen {
            self.tags.remove(&(element, *dot));
        }
        let survivors = self.tags(element).count();
        if present && survivors == 0 {
            self.elements -= 1;
        }
        survivors
    }
}

impl WorldState {
    /// Whether `element` is present in set `key`.
    pub fn contains(&self, key: u32, element: u64) -> bool {
        self.sets.get(&key).is_some_and(|set| set.contains(element))
    }

    /// Builds a `Put` that records the writer this state holds for `key`.
    pub fn put(&self, key: u32, value: u64) -> WorldOp {
        WorldOp::Put { key, value, seen: self.registers.get(&key).map(|register| register.writer) }
    }

    /// Builds a `Remove` of every insert tag this state holds for `element`.
    pub fn remove(&self, key: u32, element: u64) -> WorldOp {
        let seen = self.sets.get(&key).map(|set| set.tags(element).take(MAX_REMOVE_DOTS).collect()).unwrap_or_default();
        WorldOp::Remove { key, element, seen }
    }
}

/// The built-in world law.
#[derive(Clone, Debug, Default)]
pub struct World;

impl Law for World {
    type Op = WorldOp;
    type State = WorldState;

    fn genesis(&self) -> WorldState {
        WorldState::default()
    }

    fn apply(&self, state: &mut WorldState, lane: &LaneContext<'_>, op: &WorldOp) -> Applied {
        match op {
            WorldOp::Put { key, value, seen } => {
                let writer = lane.dot();
                let previous = state.registers.insert(*key, Register { value: *value, writer });
                let overwrote_unseen = previous.map(|register| register.writer) != *seen;
                Applied { conflicts: u32::from(overwrote_unseen) }
            }
            WorldOp::Add { key, delta } => {
                let counter = state.counters.entry(*key).or_insert(0);
                *counter = counter.wrapping_add(*delta);
                Applied::default()
            }
            WorldOp::Insert { key, element } => {
                let set = Arc::make_mut(state.sets.entry(*key).or_default());
                set.insert(*element, lane.dot());
                Applied::default()
            }
            WorldOp::Remove { key, element, seen } => remove(state, *key, *element, seen),
        }
    }

    fn apply_planted(&self, state: &mut WorldState, lane: &LaneContext<'_>, op: &WorldOp, bugs: &Bugs) -> Applied {
        match op {
            // Planted bug: the remove takes every tag, so it wins over concurrent inserts.
            WorldOp::Remove { key, element, .. } if bugs.remove_wins_set() => {
                let every_tag: Vec<Dot> =
                    state.sets.get(key).map(|set| set.tags(*element).collect()).unwrap_or_default();
                remove(state, *key, *element, &every_tag)
            }
            _ => self.apply(state, lane, op),
        }
    }

    fn encode_state(&self, state: &WorldState, out: &mut Vec<u8>) {
        encode_registers_and_counters(state, out);
        put_varint(out, state.sets.len() as u64);
        let mut group = Vec::new();
        for (key, set) in &state.sets {
            put_varint(out, u64::from(*key));
            encode_set(set, &mut group, out);
        }
    }

    type EncodeCache = WorldEncodeCache;

    fn encode_state_cached(&self, state: &WorldState, cache: &mut WorldEncodeCache, out: &mut Vec<u8>) {
        encode_registers_and_counters(state, out);
        put_varint(out, state.sets.len() as u64);
        cache.encode_sets(&state.sets, out);
    }

    fn decode_state(&self, reader: &mut Reader<'_>) -> Result<WorldState, DecodeError> {
        let mut state = WorldState::default();
        let count = reader.count("registers", MAX_STATE_ENTRIES, 4)?;
        let mut last = None;
        for _ in 0..count {
            let key = ascending_key(reader, &mut last, "register keys")?;
            let value = reader.varint("register value")?;
            let writer = Dot::decode(reader)?;
            state.registers.insert(key, Register { value, writer });
        }
        let count = reader.count("counters", MAX_STATE_ENTRIES, 2)?;
        let mut last = None;
        for _ in 0..count {
            let key = ascending_key(reader, &mut last, "counter keys")?;
            state.counters.insert(key, reader.signed("counter value")?);
        }
        let count = reader.count("sets", MAX_STATE_ENTRIES, 2)?;
        let mut last = None;
        for _ in 0..count {
            let key = ascending_key(reader, &mut last, "set keys")?;
            state.sets.insert(key, Arc::new(decode_set(reader)?));
        }
        Ok(state)
    }
}

/// Registers and counters, the part of the state encoding no cache
/// covers, written through a [`Cursor`] over room sized for the largest
/// varints.
fn encode_registers_and_counters(state: &WorldState, out: &mut Vec<u8>) {
    const VARINT_BYTES_MAX: usize = 10;
    let room = VARINT_BYTES_MAX * (2 + 4 * state.registers.len() + 2 * state.counters.len());
    let start = out.len();
    out.resize(start + room, 0);
    let mut cursor = Cursor { bytes: &mut out[start..], len: 0 };
    cursor.varint(state.registers.len() as u64);
    for (key, register) in &state.registers {
        cursor.varint(u64::from(*key));
        cursor.varint(register.value);
        cursor.varint(u64::from(register.writer.author.0));
        cursor.varint(register.writer.seq);
    }
    cursor.varint(state.counters.len() as u64);
    for (key, value) in &state.counters {
        cursor.varint(u64::from(*key));
        cursor.varint(zigzag(*value));
    }
    let written = cursor.len;
    out.truncate(start + written);
}

/// Varints into a slice with room for them: its length stays in a
/// register, where a `Vec` push reloads the vector after every byte (a
/// byte store may alias it). The same bytes as `put_varint`.
struct Cursor<'a> {
    bytes: &'a mut [u8],
    len: usize,
}

impl Cursor<'_> {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes[self.len] = (value as u8) | 0x80;
            self.len += 1;
            value >>= 7;
        }
        self.bytes[self.len] = value as u8;
        self.len += 1;
    }
}

fn remove(state: &mut WorldState, key: u32, element: u64, seen: &[Dot]) -> Applied {
    let Some(set) = state.sets.get_mut(&key) else {
        return Applied::default();
    };
    if !set.contains(element) {
        return Applied::default();
    }
    // Copied here only if a checkpoint shares it.
    let set = Arc::make_mut(set);
    let survivors = set.remove_tags(element, seen);
    if set.is_empty() {
        state.sets.remove(&key);
    }
    Applied { conflicts: u32::from(survivors > 0) }
}

/// One set's encoding: its element count, then each element with its tag
/// count and tags. `group` is a reused buffer for one element's tags.
fn encode_set(set: &SetTags, group: &mut Vec<Dot>, out: &mut Vec<u8>) {
    put_varint(out, set.len() as u64);
    let mut pairs = set.tags.iter().peekable();
    while let Some(&(element, first)) = pairs.next() {
        group.clear();
        group.push(first);
        while let Some(&&(next_element, tag)) = pairs.peek()
            && next_element == element
        {
            group.push(tag);
            pairs.next();
        }
        put_varint(out, element);
        put_varint(out, group.len() as u64);
        for tag in group.iter() {
            tag.encode(out);
        }
    }
}

fn ascending_key(reader: &mut Reader<'_>, last: &mut Option<u32>, what: &'static str) -> Result<u32, DecodeError> {
    let key = reader.varint_u32(what)?;
    if last.is_some_and(|previous| previous >= key) {
        return Err(reader.error(DecodeErrorKind::Invalid { what, rule: "keys must be strictly ascending" }));
    }
    *last = Some(key);
    Ok(key)
}

fn decode_set(reader: &mut Reader<'_>) -> Result<SetTags, DecodeError> {
    let mut set = SetTags::default();
    let count = reader.count("set elements", MAX_STATE_ENTRIES, 2)?;
    let mut last_element = None;
    for _ in 0..count {
        let element = reader.varint("set element")?;
        if last_element.is_some_and(|previous| previous >= element) {
            return Err(
                reader.error(DecodeErrorKind::Invalid { what: "set elements", rule: "must be strictly ascending" })
            );
        }
        last_element = Some(element);
        let tag_count = reader.count("element tags", MAX_STATE_ENTRIES, 2)?;
        if tag_count == 0 {
            return Err(
                reader.error(DecodeErrorKind::Invalid { what: "element tags", rule: "a present element has a tag" })
            );
        }
        let mut last_tag = None;
        for _ in 0..tag_count {
            let tag = Dot::decode(reader)?;
            if last_tag.is_some_and(|previous| previous >= tag) {
                return Err(
                    reader.error(DecodeErrorKind::Invalid { what: "element tags", rule: "must be strictly ascending" })
                );
            }
            last_tag = Some(tag);
            set.insert(element, tag);
        }
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::LaneId;
    use crate::lane::NodeId;

    fn context(id: &LaneId, author: u32, seq: u64) -> LaneContext<'_> {
        LaneContext { id, author: NodeId(author), seq, lamport: seq, lane_index: seq }
    }

    fn any_dot() -> impl proptest::strategy::Strategy<Value = Dot> {
        use proptest::prelude::*;
        (0u32..4, prop_oneof![0u64..8, any::<u64>()]).prop_map(|(author, seq)| Dot { author: NodeId(author), seq })
    }

    fn any_op() -> impl proptest::strategy::Strategy<Value = WorldOp> {
        use proptest::prelude::*;
        prop_oneof![
            (any::<u32>(), any::<u64>(), proptest::option::of(any_dot())).prop_map(|(key, value, seen)| WorldOp::Put {
                key,
                value,
                seen
            }),
            (any::<u32>(), any::<i64>()).prop_map(|(key, delta)| WorldOp::Add { key, delta }),
            (any::<u32>(), any::<u64>()).prop_map(|(key, element)| WorldOp::Insert { key, element }),
            (any::<u32>(), any::<u64>(), proptest::collection::btree_set(any_dot(), 0..4))
                .prop_map(|(key, element, seen)| WorldOp::Remove { key, element, seen: seen.into_iter().collect() }),
        ]
    }

    proptest::proptest! {
        /// The batched form reads back to the same ops, whatever the lane
        /// dot they are written against, and consumes every column.
        #[test]
        fn batched_ops_round_trip(ops in proptest::collection::vec(any_op(), 0..20), lane in any_dot()) {
            let mut columns: [Vec<u8>; OP_COLUMNS] = Default::default();
            for op in &ops {
                op.encode_batched(lane, &mut columns);
            }
            let mut readers = columns.each_ref().map(|column| Reader::new(column));
            for op in &ops {
                proptest::prop_assert_eq!(&WorldOp::decode_batched(lane, &mut readers).unwrap(), op);
            }
            for reader in &readers {
                proptest::prop_assert!(reader.finish().is_ok());
            }
        }
    }

    #[test]
    fn concurrent_puts_conflict_and_the_later_one_wins() {
        let law = World;
        let id = LaneId::ZERO;
        let mut state = law.genesis();
        let first = state.put(1, 10);
        let second = state.put(1, 20);
        assert_eq!(law.apply(&mut state, &context(&id, 0, 1), &first).conflicts, 0);
        assert_eq!(law.apply(&mut state, &context(&id, 1, 1), &second).conflicts, 1);
        assert_eq!(state.registers[&1].value, 20);
        let informed = state.put(1, 30);
        assert_eq!(law.apply(&mut state, &context(&id, 0, 2), &informed).conflicts, 0);
    }

    #[test]
    fn add_wins_over_a_concurrent_remove() {
        let law = World;
        let id = LaneId::ZERO;
        let mut state = law.genesis();
        law.apply(&mut state, &context(&id, 0, 1), &WorldOp::Insert { key: 5, element: 9 });
        let remove = state.remove(5, 9);
        law.apply(&mut state, &context(&id, 1, 1), &WorldOp::Insert { key: 5, element: 9 });
        assert_eq!(law.apply(&mut state, &context(&id, 2, 1), &remove).conflicts, 1);
        assert!(state.contains(5, 9), "the concurrent insert must survive");
        let by_element = state.sets[&5].by_element();
        let survivor = Dot { author: NodeId(1), seq: 1 };
        assert_eq!(by_element, BTreeMap::from([(9, BTreeSet::from([survivor]))]), "only the concurrent tag survives");
        let remove_all = state.remove(5, 9);
        assert_eq!(law.apply(&mut state, &context(&id, 2, 2), &remove_all).conflicts, 0);
        assert!(!state.contains(5, 9));
        assert!(state.sets.is_empty(), "empty sets leave no trace in the state");
    }

    #[test]
    fn state_encoding_round_trips() {
        let law = World;
        let id = LaneId::ZERO;
        let mut state = law.genesis();
        law.apply(&mut state, &context(&id, 0, 1), &WorldOp::Insert { key: 5, element: 9 });
        law.apply(&mut state, &context(&id, 0, 2), &WorldOp::Add { key: 2, delta: -7 });
        let put = state.put(3, 4);
        law.apply(&mut state, &context(&id, 1, 1), &put);
        let mut bytes = Vec::new();
        law.encode_state(&state, &mut bytes);
        let mut reader = Reader::new(&bytes);
        assert_eq!(law.decode_state(&mut reader).unwrap(), state);
        reader.finish().unwrap();
        for len in 0..bytes.len() {
            let mut reader = Reader::new(&bytes[..len]);
            let decoded = law.decode_state(&mut reader).and_then(|_| reader.finish());
            assert!(decoded.is_err(), "a truncated state of {len} bytes decoded");
        }
    }

    #[test]
    fn counters_wrap_instead_of_panicking() {
        let law = World;
        let id = LaneId::ZERO;
        let mut state = law.genesis();
        law.apply(&mut state, &context(&id, 0, 1), &WorldOp::Add { key: 1, delta: i64::MAX });
        law.apply(&mut state, &context(&id, 0, 2), &WorldOp::Add { key: 1, delta: 2 });
        assert_eq!(state.counters[&1], i64::MIN + 1);
    }
}

#[cfg(test)]
mod encode_cache_tests {
    use super::*;
    use crate::hash::LaneId;
    use crate::lane::NodeId;

    /// A digest re-encodes only the sets whose allocation changed since the
    /// last one: a lane's change, or a restored copy.
    #[test]
    fn the_cache_re_encodes_only_the_sets_that_changed() {
        let id = LaneId::ZERO;
        let context = |seq| LaneContext { id: &id, author: NodeId(1), seq, lamport: seq, lane_index: seq };
        let mut state = World.genesis();
        for key in 0..5 {
            World.apply(&mut state, &context(1), &WorldOp::Insert { key, element: 5 });
        }
        let mut cache = WorldEncodeCache::default();
        let mut encode = |state: &WorldState| {
            let (mut plain, mut cached) = (Vec::new(), Vec::new());
            World.encode_state(state, &mut plain);
            World.encode_state_cached(state, &mut cache, &mut cached);
            assert_eq!(cached, plain);
            (cache.fresh, cache.spans)
        };
        // Sets written afresh, and spans of the last encoding copied.
        assert_eq!(encode(&state), (5, 0), "the first encoding writes every set");
        assert_eq!(encode(&state), (0, 1), "an unchanged state copies the sets whole");
        let checkpoint = state.clone();
        World.apply(&mut state, &context(2), &WorldOp::Insert { key: 2, element: 6 });
        World.apply(&mut state, &context(2), &WorldOp::Put { key: 2, value: 1, seen: None });
        assert_eq!(encode(&state), (1, 2), "one set changed, in the middle");
        assert_eq!(encode(&checkpoint), (1, 2), "a restored copy differs in that set");
        World.apply(&mut state, &context(3), &WorldOp::Insert { key: 4, element: 6 });
        assert_eq!(encode(&state), (2, 2), "back to the changed state, with the last set changed too");
    }

    /// The cached encoding equals the plain one as a state changes, is
    /// copied (checkpoints) and rolled back to an earlier copy, with one
    /// cache across all of it, as a replica keeps it.
    #[test]
    fn the_cached_encoding_equals_the_plain_one_across_changes_copies_and_rollbacks() {
        let id = LaneId::ZERO;
        let mut state = World.genesis();
        let mut cache = WorldEncodeCache::default();
        let mut checkpoints = Vec::new();
        let mut x: u64 = 1;
        let mut encodings = 0;
        for seq in 1..4000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = (x % 11) as u32;
            let element = (x >> 8) % 5;
            let author = NodeId((x >> 16) as u32 % 3);
            let context = LaneContext { id: &id, author, seq, lamport: seq, lane_index: seq };
            let op = match (x >> 20) % 4 {
                0 => state.put(key, x >> 24),
                1 => WorldOp::Add { key, delta: (x >> 24) as i64 % 100 - 50 },
                2 => WorldOp::Insert { key, element },
                _ => state.remove(key, element),
            };
            World.apply(&mut state, &context, &op);
            if seq.is_multiple_of(13) {
                checkpoints.push(state.clone());
            }
            if seq.is_multiple_of(101) {
                state = checkpoints[(x >> 32) as usize % checkpoints.len()].clone();
            }
            if (x >> 40).is_multiple_of(3) {
                let (mut plain, mut cached) = (vec![7], vec![7]);
                World.encode_state(&state, &mut plain);
                World.encode_state_cached(&state, &mut cache, &mut cached);
                assert_eq!(cached, plain, "after lane {seq}");
                encodings += 1;
            }
        }
        assert!(encodings > 1000, "{encodings} encodings compared");
        assert!(!state.sets.is_empty(), "the sets must be exercised");
    }
}
