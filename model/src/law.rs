//! The world law, rewritten from its documented rules (the doc comments of
//! `engine/src/world.rs`) as plain map code, one key at a time.
//!
//! - register: the write applied last wins; the value remembers the writer's
//!   dot. A put whose `seen` writer is not the current one overwrote a
//!   concurrent write: one conflict.
//! - counter: adds wrap; an add of 0 still creates the counter.
//! - set (add-wins): an insert tags the element with the lane's dot; a
//!   remove deletes only the tags it names. Tags it did not see (concurrent
//!   inserts) survive and the remove counts one conflict. An element without
//!   tags is gone.
//!
//! Every op touches one key and reads nothing else, so a key's value is the
//! fold of the ops on that key in canonical order; [`crate::Model::read`]
//! relies on this.
//!
//! Invariant: [`ModelState::encode`] writes the bytes of the engine's
//! documented state format (registers, then counters, then sets, each sorted
//! by key, element and dot; LEB128 varints; zigzag for counters), built
//! here from the model's own per-key layout.

use crate::hash::digest_of_state_bytes;
use scx_engine::{Dot, StateDigest, WorldOp};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A register's value and the lane that wrote it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisterValue {
    /// The value.
    pub value: u64,
    /// The dot of the lane that wrote it.
    pub writer: Dot,
}

/// What one key holds. The world keeps a register, a counter and a set
/// under every key independently, so a read of a key returns all three.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelValue {
    /// The register, once written.
    pub register: Option<RegisterValue>,
    /// The counter, once added to.
    pub counter: Option<i64>,
    /// The set: each present element with the insert tags that keep it.
    pub set: BTreeMap<u64, BTreeSet<Dot>>,
}

impl ModelValue {
    /// Whether nothing was ever written under the key (or every element was removed).
    pub fn is_absent(&self) -> bool {
        self.register.is_none() && self.counter.is_none() && self.set.is_empty()
    }

    /// Applies one op of the lane at `dot` (the op must be on this key) and
    /// returns the conflicts it resolved.
    pub fn apply(&mut self, dot: Dot, op: &WorldOp) -> u32 {
        match op {
            WorldOp::Put { value, seen, .. } => {
                let previous_writer = self.register.map(|register| register.writer);
                self.register = Some(RegisterValue { value: *value, writer: dot });
                u32::from(previous_writer != *seen)
            }
            WorldOp::Add { delta, .. } => {
                self.counter = Some(self.counter.unwrap_or(0).wrapping_add(*delta));
                0
            }
            WorldOp::Insert { element, .. } => {
                self.set.entry(*element).or_default().insert(dot);
                0
            }
            WorldOp::Remove { element, seen, .. } => {
                let Some(tags) = self.set.get_mut(element) else { return 0 };
                tags.retain(|tag| !seen.contains(tag));
                if tags.is_empty() {
                    self.set.remove(element);
                    0
                } else {
                    1
                }
            }
        }
    }
}

impl fmt::Display for ModelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_absent() {
            return f.write_str("absent");
        }
        let mut parts = Vec::new();
        if let Some(register) = self.register {
            parts.push(format!("register {} (by {}#{})", register.value, register.writer.author, register.writer.seq));
        }
        if let Some(counter) = self.counter {
            parts.push(format!("counter {counter}"));
        }
        if !self.set.is_empty() {
            let members: Vec<String> = self.set.keys().map(u64::to_string).collect();
            parts.push(format!("set {{{}}}", members.join(", ")));
        }
        f.write_str(&parts.join(", "))
    }
}

/// The key an op writes.
pub fn op_key(op: &WorldOp) -> u32 {
    match op {
        WorldOp::Put { key, .. }
        | WorldOp::Add { key, .. }
        | WorldOp::Insert { key, .. }
        | WorldOp::Remove { key, .. } => *key,
    }
}

/// The whole materialised world: every key ever touched.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelState {
    /// Value by key (keys whose value became absent may stay listed).
    pub keys: BTreeMap<u32, ModelValue>,
}

impl ModelState {
    /// The value of `key` (absent if never touched).
    pub fn value(&self, key: u32) -> ModelValue {
        self.keys.get(&key).cloned().unwrap_or_default()
    }

    /// Applies every op of the lane at `dot`, in order; returns the conflicts.
    pub fn apply_ops(&mut self, dot: Dot, ops: &[WorldOp]) -> u64 {
        ops.iter().map(|op| u64::from(self.keys.entry(op_key(op)).or_default().apply(dot, op))).sum()
    }

    /// The canonical encoding of the state (the engine's documented format).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let registers: Vec<(u32, RegisterValue)> =
            self.keys.iter().filter_map(|(key, value)| value.register.map(|register| (*key, register))).collect();
        push_varint(&mut out, registers.len() as u64);
        for (key, register) in registers {
            push_varint(&mut out, u64::from(key));
            push_varint(&mut out, register.value);
            push_dot(&mut out, register.writer);
        }
        let counters: Vec<(u32, i64)> =
            self.keys.iter().filter_map(|(key, value)| value.counter.map(|counter| (*key, counter))).collect();
        push_varint(&mut out, counters.len() as u64);
        for (key, counter) in counters {
            push_varint(&mut out, u64::from(key));
            push_varint(&mut out, zigzag(counter));
        }
        let sets: Vec<(u32, &BTreeMap<u64, BTreeSet<Dot>>)> = self
            .keys
            .iter()
            .filter(|(_, value)| !value.set.is_empty())
            .map(|(key, value)| (*key, &value.set))
            .collect();
        push_varint(&mut out, sets.len() as u64);
        for (key, set) in sets {
            push_varint(&mut out, u64::from(key));
            push_varint(&mut out, set.len() as u64);
            for (element, tags) in set {
                push_varint(&mut out, *element);
                push_varint(&mut out, tags.len() as u64);
                for tag in tags {
                    push_dot(&mut out, *tag);
                }
            }
        }
        out
    }

    /// The state digest: keyed blake3 of [`Self::encode`].
    pub fn digest(&self) -> StateDigest {
        digest_of_state_bytes(&self.encode())
    }
}

/// Unsigned LEB128: seven bits per byte, low groups first, high bit = more.
fn push_varint(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let low = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Zigzag: 0, -1, 1, -2, ... map to 0, 1, 2, 3, ...
fn zigzag(value: i64) -> u64 {
    if value >= 0 { (value as u64) << 1 } else { ((!value as u64) << 1) | 1 }
}

fn push_dot(out: &mut Vec<u8>, dot: Dot) {
    push_varint(out, u64::from(dot.author.0));
    push_varint(out, dot.seq);
}

#[cfg(test)]
mod tests {
    use super::*;
    use scx_engine::NodeId;

    fn dot(author: u32, seq: u64) -> Dot {
        Dot { author: NodeId(author), seq }
    }

    #[test]
    fn varints_and_zigzag_match_the_documented_format() {
        let mut out = Vec::new();
        push_varint(&mut out, 0);
        push_varint(&mut out, 127);
        push_varint(&mut out, 128);
        push_varint(&mut out, 300);
        assert_eq!(out, [0x00, 0x7f, 0x80, 0x01, 0xac, 0x02]);
        assert_eq!([0, -1, 1, -2, 2].map(zigzag), [0, 1, 2, 3, 4]);
        assert_eq!(zigzag(i64::MIN), u64::MAX);
        assert_eq!(zigzag(i64::MAX), u64::MAX - 1);
    }

    #[test]
    fn the_empty_state_is_three_empty_sections() {
        assert_eq!(ModelState::default().encode(), [0, 0, 0]);
    }

    #[test]
    fn a_concurrent_insert_survives_a_remove_and_counts_a_conflict() {
        let mut value = ModelValue::default();
        value.apply(dot(0, 1), &WorldOp::Insert { key: 5, element: 9 });
        let remove = WorldOp::Remove { key: 5, element: 9, seen: vec![dot(0, 1)] };
        value.apply(dot(1, 1), &WorldOp::Insert { key: 5, element: 9 });
        assert_eq!(value.apply(dot(2, 1), &remove), 1);
        assert_eq!(value.set.get(&9), Some(&BTreeSet::from([dot(1, 1)])));
        let remove_all = WorldOp::Remove { key: 5, element: 9, seen: vec![dot(1, 1)] };
        assert_eq!(value.apply(dot(2, 2), &remove_all), 0);
        assert!(value.is_absent(), "{value}");
    }

    #[test]
    fn a_put_over_an_unseen_writer_conflicts_and_the_last_applied_wins() {
        let mut value = ModelValue::default();
        assert_eq!(value.apply(dot(0, 1), &WorldOp::Put { key: 1, value: 10, seen: None }), 0);
        assert_eq!(value.apply(dot(1, 1), &WorldOp::Put { key: 1, value: 20, seen: None }), 1);
        assert_eq!(value.apply(dot(0, 2), &WorldOp::Put { key: 1, value: 30, seen: Some(dot(1, 1)) }), 0);
        assert_eq!(value.register, Some(RegisterValue { value: 30, writer: dot(0, 2) }));
    }

    #[test]
    fn counters_wrap_and_an_add_of_zero_creates_the_counter() {
        let mut value = ModelValue::default();
        value.apply(dot(0, 1), &WorldOp::Add { key: 1, delta: 0 });
        assert_eq!(value.counter, Some(0));
        value.apply(dot(0, 2), &WorldOp::Add { key: 1, delta: i64::MAX });
        value.apply(dot(0, 3), &WorldOp::Add { key: 1, delta: 2 });
        assert_eq!(value.counter, Some(i64::MIN + 1));
    }

    #[test]
    fn display_names_every_part_or_absent() {
        let mut value = ModelValue::default();
        assert_eq!(value.to_string(), "absent");
        value.apply(dot(1, 2), &WorldOp::Put { key: 0, value: 7, seen: None });
        value.apply(dot(1, 3), &WorldOp::Add { key: 0, delta: -3 });
        value.apply(dot(1, 3), &WorldOp::Insert { key: 0, element: 4 });
        value.apply(dot(0, 1), &WorldOp::Insert { key: 0, element: 1 });
        assert_eq!(value.to_string(), "register 7 (by n1#2), counter -3, set {1, 4}");
    }

    #[test]
    fn encoding_lists_sections_in_key_order() {
        let mut state = ModelState::default();
        state.apply_ops(dot(1, 1), &[WorldOp::Add { key: 3, delta: -1 }, WorldOp::Insert { key: 2, element: 5 }]);
        state.apply_ops(dot(0, 1), &[WorldOp::Put { key: 9, value: 200, seen: None }]);
        let expected = [
            1, 9, 0xc8, 0x01, 0, 1, // one register: key 9, value 200, writer n0#1
            1, 3, 1, // one counter: key 3, zigzag(-1)
            1, 2, 1, 5, 1, 1, 1, // one set: key 2, one element 5 with one tag n1#1
        ];
        assert_eq!(state.encode(), expected);
    }
}
