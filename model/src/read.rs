//! Reads: the value of one key over the causally closed set a frontier
//! names, without replaying the whole history.
//!
//! Each key has an index of the valid lanes with an op on it, in
//! `(lamport, author, id)` order. For valid lanes that order is a
//! topological order, and Kahn's smallest-key-first choice produces exactly
//! it, so the canonical order of any set restricted to one key's lanes is
//! that index restricted to the set; and the law's ops on a key read and
//! write only that key. A read therefore folds the key's lanes that belong
//! to the set. The unit tests check this against full replays.
//!
//! Membership: a lane is in the set when its seq is at most its author's
//! frontier seq and it is on the chain of that author's tip. Without a fork
//! of that author the second part follows from the first (a chain holds
//! one lane per seq); an author with a fork needs the chain walk.

use crate::error::ModelError;
use crate::history::{Frontier, Model};
use crate::law::{ModelValue, op_key};
use scx_engine::{Dot, LaneId, NodeId};
use std::collections::BTreeSet;

impl Model {
    /// The value of `key` over the set `frontier` names: every lane on each
    /// author's chain up to the frontier's tip. The set must be causally
    /// closed and its lanes valid.
    pub fn read(&self, frontier: &Frontier, key: u32) -> Result<ModelValue, ModelError> {
        self.check_frontier(frontier)?;
        let chains = self.forked_chains(frontier);
        let mut value = ModelValue::default();
        for ((_, author, id), keyed) in self.by_key.get(&key).into_iter().flatten() {
            let in_set = match frontier.get(author) {
                None => false,
                Some((tip_seq, _)) if keyed.dot.seq > *tip_seq => false,
                Some(_) => match chains.iter().find(|(forked, _)| forked == author) {
                    Some((_, chain)) => chain.contains(id),
                    None => true,
                },
            };
            if in_set {
                for op in &keyed.ops {
                    debug_assert_eq!(op_key(op), key, "a key's index holds only ops on that key");
                    value.apply(keyed.dot, op);
                }
            }
        }
        Ok(value)
    }

    /// The frontier names valid lanes where it says they are, and the set
    /// it names is causally closed.
    fn check_frontier(&self, frontier: &Frontier) -> Result<(), ModelError> {
        let mut horizons = Vec::with_capacity(frontier.len());
        for (author, (seq, tip)) in frontier {
            let Some((lane, horizon)) = self.valid(tip) else {
                return Err(self.why_invalid(tip));
            };
            let actual = lane.dot();
            if actual != (Dot { author: *author, seq: *seq }) {
                return Err(ModelError::FrontierMismatch { author: *author, seq: *seq, tip: *tip, actual });
            }
            horizons.push((tip, horizon));
        }
        // A tip's ancestry holds each author's lanes up to its horizon; the
        // set holds them up to the frontier seq.
        for (tip, horizon) in horizons {
            for (author, seq) in horizon {
                let frontier_seq = frontier.get(author).map_or(0, |(seq, _)| *seq);
                if *seq > frontier_seq {
                    return Err(ModelError::FrontierNotClosed {
                        tip: *tip,
                        outside: Dot { author: *author, seq: *seq },
                    });
                }
            }
        }
        if self.frontier_touches_fork(frontier) {
            self.check_forked_frontier(frontier)?;
        }
        Ok(())
    }

    fn frontier_touches_fork(&self, frontier: &Frontier) -> bool {
        frontier.keys().any(|author| self.forked_authors.contains(author))
    }

    /// With forks, seqs alone do not say which branch a tip descends from:
    /// every lane in the tips' ancestry must be on its author's tip chain.
    fn check_forked_frontier(&self, frontier: &Frontier) -> Result<(), ModelError> {
        let chains = self.forked_chains(frontier);
        for (_, tip) in frontier.values() {
            for id in self.closure([*tip])? {
                let lane = &self.lanes[&id].lane;
                if let Some((_, chain)) = chains.iter().find(|(author, _)| *author == lane.author)
                    && !chain.contains(&id)
                {
                    return Err(ModelError::FrontierNotClosed { tip: *tip, outside: lane.dot() });
                }
            }
        }
        Ok(())
    }

    /// The tip chains of the frontier's authors that have a fork.
    fn forked_chains(&self, frontier: &Frontier) -> Vec<(NodeId, BTreeSet<LaneId>)> {
        frontier
            .iter()
            .filter(|(author, _)| self.forked_authors.contains(author))
            .map(|(author, (_, tip))| (*author, self.chain_below(*tip)))
            .collect()
    }

    /// The lane and its author's earlier lanes, by the own-author parent links.
    fn chain_below(&self, tip: LaneId) -> BTreeSet<LaneId> {
        let mut chain = BTreeSet::new();
        let mut next = Some(tip);
        while let Some(id) = next {
            chain.insert(id);
            let lane = &self.lanes[&id].lane;
            next = lane.parents.iter().copied().find(|parent| self.lanes[parent].lane.author == lane.author);
        }
        chain
    }
}
