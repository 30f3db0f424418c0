//! Always: honest authors never fork. Fork evidence counts only when both
//! lanes were really authored by a node: a corrupted datagram can decode to
//! a lane that collides with a real one, which is refused, not a fork.

use crate::world::{World, lock};
use scx_engine::{Dot, LaneId};

/// Reports a fork seen at `node` if both lanes were authored.
pub fn check(world: &World, node: u32, dot: Dot, kept: LaneId, other: LaneId) {
    let authored = lock(&world.authored);
    if !(authored.contains(&kept) && authored.contains(&other)) {
        return;
    }
    drop(authored);
    lock(&world.metrics).forks += 1;
    let message = format!(
        "n{} signed two lanes with seq {}: {} and {} (seen at n{node})",
        dot.author.0,
        dot.seq,
        kept.short(),
        other.short()
    );
    world.violate("forks", "always", Some(dot.author.0), message);
}
