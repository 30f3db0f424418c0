//! [`KeyRuns`]: a map from `u32` keys, split into runs of [`RUN_KEYS`]
//! consecutive keys, each run behind a reference count.
//!
//! A replica copies its state for every rollback checkpoint and restores a
//! copy on every rollback, and states its digest on every handshake. With
//! the registers and counters in runs, a copy shares every run and a lane
//! copies only the runs it changes (`Arc::make_mut`); the encoding cache
//! (`super::cache`) re-encodes only runs whose allocation changed.
//!
//! Invariant: `len` is the number of entries, and no run is empty (entries
//! are never removed), so equal maps have equal runs.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

/// Keys per run, a power of two: a run holds the keys that agree above
/// their low [`RUN_BITS`] bits.
pub const RUN_KEYS: u32 = 1 << RUN_BITS;
/// See [`RUN_KEYS`].
pub const RUN_BITS: u32 = 4;

/// One run: up to [`RUN_KEYS`] entries, ascending.
pub type Run<V> = BTreeMap<u32, V>;

/// A map from `u32` keys whose copies share unchanged runs. Iterates in
/// ascending key order, as a `BTreeMap` does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRuns<V> {
    runs: BTreeMap<u32, Arc<Run<V>>>,
    len: usize,
}

impl<V> Default for KeyRuns<V> {
    fn default() -> Self {
        Self { runs: BTreeMap::new(), len: 0 }
    }
}

impl<V: Clone> KeyRuns<V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value at `key`.
    pub fn get(&self, key: &u32) -> Option<&V> {
        self.runs.get(&(key >> RUN_BITS)).and_then(|run| run.get(key))
    }

    /// Every entry, ascending by key.
    pub fn iter(&self) -> impl Iterator<Item = (&u32, &V)> + '_ {
        self.runs.values().flat_map(|run| run.iter())
    }

    /// Sets `key` to `value`, copying its run first if a copy of the map
    /// shares it, and returns the value it replaced.
    pub fn insert(&mut self, key: u32, value: V) -> Option<V> {
        let previous = Arc::make_mut(self.runs.entry(key >> RUN_BITS).or_default()).insert(key, value);
        self.len += usize::from(previous.is_none());
        previous
    }

    /// The value at `key`, set to `default` first if absent, for change in
    /// place (its run copied first if shared).
    pub fn get_mut_or(&mut self, key: u32, default: V) -> &mut V {
        match Arc::make_mut(self.runs.entry(key >> RUN_BITS).or_default()).entry(key) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.len += 1;
                entry.insert(default)
            }
        }
    }

    /// The runs, ascending: each run's number (keys shifted right by
    /// [`RUN_BITS`]) and its entries.
    pub(crate) fn runs(&self) -> impl Iterator<Item = (u32, &Arc<Run<V>>)> + '_ {
        self.runs.iter().map(|(number, run)| (*number, run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_iterate_ascending_across_runs_and_are_counted_once() {
        let mut map = KeyRuns::default();
        assert!(map.is_empty());
        for key in [40, 3, 17, 16, 3, 1000, 15] {
            map.insert(key, key * 2);
        }
        *map.get_mut_or(17, 0) += 1;
        *map.get_mut_or(5, 7) += 1;
        let entries: Vec<(u32, u32)> = map.iter().map(|(key, value)| (*key, *value)).collect();
        assert_eq!(entries, [(3, 6), (5, 8), (15, 30), (16, 32), (17, 35), (40, 80), (1000, 2000)]);
        assert_eq!(map.len(), entries.len());
        assert!(!map.is_empty());
        assert_eq!((map.get(&16), map.get(&4)), (Some(&32), None));
        let numbers: Vec<u32> = map.runs().map(|(number, _)| number).collect();
        assert_eq!(numbers, [0, 1, 2, 1000 >> RUN_BITS]);
    }

    #[test]
    fn a_copy_shares_the_runs_a_change_does_not_touch() {
        let mut map = KeyRuns::default();
        for key in 0..4 * RUN_KEYS {
            map.insert(key, 0u64);
        }
        let copy = map.clone();
        map.insert(RUN_KEYS + 1, 9);
        *map.get_mut_or(2 * RUN_KEYS, 0) += 1;
        let shared: Vec<bool> = map.runs().zip(copy.runs()).map(|((_, a), (_, b))| Arc::ptr_eq(a, b)).collect();
        assert_eq!(shared, [true, false, false, true]);
        assert_eq!((copy.get(&(RUN_KEYS + 1)), map.get(&(RUN_KEYS + 1))), (Some(&0), Some(&9)));
        assert_ne!(map, copy);
        let mut back = copy.clone();
        back.insert(RUN_KEYS + 1, 9);
        back.insert(2 * RUN_KEYS, 1);
        assert_eq!(back, map, "equal entries, equal maps, however they were reached");
    }
}
