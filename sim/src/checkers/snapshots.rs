//! Always: every node's newest snapshot verifies (id and digest), and any
//! two nodes that passed one snapshot point name it with the same id: the
//! stable prefix is final and shared.

use crate::world::World;
use scx_engine::{Replica, SnapshotId};
use std::collections::BTreeMap;

/// Checks the nodes' snapshots; `replicas` are the live nodes' replicas.
pub fn check(world: &World, replicas: &mut [(u32, &mut Replica<scx_engine::World>)]) {
    let mut seen: BTreeMap<u64, (u32, SnapshotId)> = BTreeMap::new();
    for (node, replica) in replicas.iter_mut() {
        let node = *node;
        if let Some(latest) = replica.snapshots().latest()
            && let Err(error) = latest.verify(replica.law())
        {
            world.violate(
                "snapshots",
                "always",
                Some(node),
                format!("n{node}'s newest snapshot does not verify: {error}"),
            );
        }
        let lineage: Vec<(u64, SnapshotId)> = replica.snapshots().lineage().collect();
        for (index, id) in lineage {
            match seen.get(&index) {
                Some((other, theirs)) if *theirs != id => {
                    let message = format!(
                        "n{node} and n{other} disagree on the snapshot at lane index {index}: {} vs {}",
                        id.short(),
                        theirs.short()
                    );
                    world.violate("snapshots", "always", Some(node), message);
                }
                Some(_) => {}
                None => {
                    seen.insert(index, (node, id));
                }
            }
        }
    }
}
