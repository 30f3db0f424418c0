//! Always: no acknowledged lane is lost. Checked when a node recovers
//! from a crash (and at the end of the run): every lane the node
//! acknowledged must be in what it recovered, with the same id.

use crate::world::{World, lock};
use scx_engine::{Law, Replica};

/// Checks `node`'s replica against the oracle's record of its acknowledged writes.
pub fn check_node<L: Law>(world: &World, node: u32, replica: &Replica<L>) {
    let acked = lock(&world.oracle).dots_acked_by(node);
    let held = replica.version_vector();
    for (id, dot) in acked {
        let covered = held.get(&dot.author).is_some_and(|seq| *seq >= dot.seq);
        let same = replica.lane_at(dot.author, dot.seq).is_none_or(|found| found == id);
        if !covered || !same {
            let message = format!(
                "n{node} acknowledged lane {} (seq {}) but after recovery {}",
                id.short(),
                dot.seq,
                if covered { "holds a different lane at that seq" } else { "does not hold it" }
            );
            world.violate("durability", "always", Some(node), message);
            return;
        }
    }
}
