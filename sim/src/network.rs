//! The network model on top of `madsim::net`: latency distributions,
//! loss, duplication, reordering, snapshot corruption and partitions, all
//! drawn from the run's seed.
//!
//! madsim moves the bytes (its own latency and loss are set to nothing);
//! this module decides, per datagram, whether it is dropped, how often it
//! is delivered and after what delay. Partitions are checked both when a
//! datagram is sent and when it would arrive, so a partition also cuts
//! datagrams already in flight.
//!
//! Corruption models a faulty peer serving a bad snapshot: every other byte
//! is covered by the transport's checksum (a corrupted datagram would be
//! dropped), but a snapshot's state bytes can only be caught by the
//! receiver's digest check.
//!
//! A partition in force is kept as each node's groups, not as the links it
//! cuts: a 3,000 | 7,000 split of 10,000 nodes cuts 42 million directed
//! links, which listing took minutes and GiBs. Whether a link is cut is a
//! look at both ends' groups.

use crate::rng::SimRng;
use crate::spec::{FaultKind, Latency, NetworkSpec, RunSpec};
use crate::trace::DropReason;
use std::collections::BTreeSet;
use std::time::Duration;

/// What happens to one datagram.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    /// Dropped at once.
    Dropped(DropReason),
    /// Delivered once per delay (two delays: duplicated).
    Deliver {
        /// Delay of each copy.
        delays: Vec<Duration>,
        /// The bytes were corrupted in flight.
        corrupted: bool,
    },
}

/// The network's state.
#[derive(Debug)]
pub struct Network {
    rng: SimRng,
    base: NetworkSpec,
    latency: Latency,
    loss: f64,
    /// Partition faults in force, in the order they started (a fault
    /// started twice is in force twice, and each heal ends one).
    cuts: Vec<Cut>,
    nodes: u32,
}

/// One partition fault in force, in space linear in the nodes.
#[derive(Debug)]
struct Cut {
    /// The fault it came from, so its heal finds it.
    kind: FaultKind,
    /// Who may still reach whom.
    sides: Sides,
    /// Per node: some link out of or into it is cut.
    cut_off: Vec<bool>,
}

#[derive(Debug)]
enum Sides {
    /// Per node, the groups it is in (ascending); two nodes talk when
    /// they share one.
    Groups(Vec<Vec<u32>>),
    /// `from` cannot reach `to`.
    OneWay { from: BTreeSet<u32>, to: BTreeSet<u32> },
}

impl Cut {
    fn of(kind: &FaultKind, nodes: u32) -> Option<Self> {
        let sides = match kind {
            FaultKind::Partition { groups } => {
                let mut of_node = vec![Vec::new(); nodes as usize];
                for (index, group) in groups.iter().enumerate() {
                    for node in group.iter().filter(|node| **node < nodes) {
                        of_node[*node as usize].push(index as u32);
                    }
                }
                of_node.iter_mut().for_each(|groups| groups.dedup());
                Sides::Groups(of_node)
            }
            FaultKind::OneWay { from, to } => {
                Sides::OneWay { from: from.iter().copied().collect(), to: to.iter().copied().collect() }
            }
            _ => return None,
        };
        let cut_off = sides.cut_off(nodes, groups_of(kind));
        Some(Self { kind: kind.clone(), sides, cut_off })
    }

    fn blocks(&self, from: u32, to: u32) -> bool {
        from != to
            && match &self.sides {
                Sides::Groups(of_node) => match (of_node.get(from as usize), of_node.get(to as usize)) {
                    (Some(a), Some(b)) => !a.iter().any(|group| b.binary_search(group).is_ok()),
                    _ => false,
                },
                Sides::OneWay { from: senders, to: receivers } => senders.contains(&from) && receivers.contains(&to),
            }
    }
}

/// The groups of a partition fault (none for other kinds).
fn groups_of(kind: &FaultKind) -> &[Vec<u32>] {
    match kind {
        FaultKind::Partition { groups } => groups,
        _ => &[],
    }
}

impl Sides {
    /// Per node: whether some other node cannot reach it, or it them.
    fn cut_off(&self, nodes: u32, groups: &[Vec<u32>]) -> Vec<bool> {
        let members = |group: &Vec<u32>| group.iter().copied().filter(|node| *node < nodes).collect::<BTreeSet<u32>>();
        match self {
            Sides::Groups(of_node) => {
                // A node reaches the distinct members of its groups: most
                // nodes are in one group, whose size is counted once; only
                // bridges take a union.
                let sizes: Vec<usize> = groups.iter().map(|group| members(group).len()).collect();
                let everyone = nodes as usize;
                of_node
                    .iter()
                    .map(|mine| match mine.as_slice() {
                        [] => everyone > 1,
                        [only] => sizes[*only as usize] < everyone,
                        several => {
                            let reach: BTreeSet<u32> =
                                several.iter().flat_map(|group| members(&groups[*group as usize])).collect();
                            reach.len() < everyone
                        }
                    })
                    .collect()
            }
            Sides::OneWay { from, to } => (0..nodes)
                .map(|node| {
                    (from.contains(&node) && to.iter().any(|other| *other != node))
                        || (to.contains(&node) && from.iter().any(|other| *other != node))
                })
                .collect(),
        }
    }
}

impl Network {
    /// The network of `spec`'s run.
    pub fn new(spec: &RunSpec) -> Self {
        Self {
            rng: SimRng::new(spec.seed, "network", 0),
            latency: spec.network.latency.clone(),
            loss: spec.network.loss,
            base: spec.network.clone(),
            cuts: Vec::new(),
            nodes: spec.nodes,
        }
    }

    /// Whether `from` cannot reach `to` now.
    pub fn is_blocked(&self, from: u32, to: u32) -> bool {
        self.cuts.iter().any(|cut| cut.blocks(from, to))
    }

    /// Whether some link out of or into `node` is cut.
    pub fn is_partitioned(&self, node: u32) -> bool {
        self.cuts.iter().any(|cut| cut.cut_off.get(node as usize).copied().unwrap_or(false))
    }

    /// Decides the fate of a datagram from `from` to `to`.
    pub fn fate(&mut self, from: u32, to: u32) -> Fate {
        if self.is_blocked(from, to) {
            return Fate::Dropped(DropReason::Partition);
        }
        if self.rng.chance(self.loss) {
            return Fate::Dropped(DropReason::Loss);
        }
        let mut delays = vec![self.delay()];
        if self.rng.chance(self.base.reorder) {
            delays[0] += self.delay();
        }
        if self.rng.chance(self.base.duplicate) {
            delays.push(self.delay());
        }
        let corrupted = self.rng.chance(self.base.corrupt);
        Fate::Deliver { delays, corrupted }
    }

    /// Draws whether a bundle file is corrupted in transit.
    pub fn roll_corruption(&mut self) -> bool {
        self.rng.chance(self.base.corrupt)
    }

    /// Flips one random bit of `bytes` (a datagram or a bundle file, never
    /// decoded: the network moves bytes). Returns whether it did.
    pub fn corrupt(&mut self, bytes: &mut [u8]) -> bool {
        if bytes.is_empty() {
            return false;
        }
        let position = self.rng.below(bytes.len() as u64) as usize;
        bytes[position] ^= 1 << self.rng.below(8);
        true
    }

    fn delay(&mut self) -> Duration {
        let (min, max) = self.latency.bounds();
        let span = max.saturating_sub(min).as_secs_f64();
        let extra = match self.latency {
            Latency::Uniform { .. } => self.rng.unit() * span,
            Latency::Normal { .. } => (0.5 + self.rng.normal() / 6.0).clamp(0.0, 1.0) * span,
            Latency::LongTail { .. } => {
                if self.rng.chance(0.1) {
                    self.rng.unit() * span
                } else {
                    self.rng.unit() * span / 20.0
                }
            }
        };
        min + Duration::from_secs_f64(extra)
    }

    /// Starts a network fault.
    pub fn start(&mut self, kind: &FaultKind) {
        match kind {
            FaultKind::Latency { latency } => self.latency = latency.clone(),
            FaultKind::Loss { probability } => self.loss = *probability,
            _ => self.cuts.extend(Cut::of(kind, self.nodes)),
        }
    }

    /// Heals a network fault.
    pub fn heal(&mut self, kind: &FaultKind) {
        match kind {
            FaultKind::Latency { .. } => self.latency = self.base.latency.clone(),
            FaultKind::Loss { .. } => self.loss = self.base.loss,
            _ => {
                if let Some(position) = self.cuts.iter().position(|cut| cut.kind == *kind) {
                    self.cuts.remove(position);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_cut_between_groups_and_bridges_connect() {
        let mut spec = RunSpec::basic("t", 1, 5);
        spec.nodes = 5;
        let mut network = Network::new(&spec);
        let split = FaultKind::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] };
        network.start(&split);
        assert!(network.is_blocked(0, 2) && network.is_blocked(2, 0));
        assert!(!network.is_blocked(0, 1) && !network.is_blocked(3, 4));
        let bridge = FaultKind::Partition { groups: vec![vec![0, 1, 2], vec![2, 3, 4]] };
        network.heal(&split);
        network.start(&bridge);
        assert!(network.is_blocked(0, 3));
        assert!(!network.is_blocked(0, 2) && !network.is_blocked(2, 4), "the bridge reaches both sides");
        network.heal(&bridge);
        assert!(!network.is_partitioned(0));
    }

    #[test]
    fn a_node_is_partitioned_when_some_other_node_is_outside_its_groups() {
        let spec = RunSpec::basic("t", 1, 6);
        let mut network = Network::new(&spec);
        // n5 is in no group; n2 bridges the two groups but still misses n5.
        network.start(&FaultKind::Partition { groups: vec![vec![0, 1, 2], vec![2, 3, 4]] });
        assert!((0..6).all(|node| network.is_partitioned(node)));
        let mut whole = Network::new(&spec);
        whole.start(&FaultKind::Partition { groups: vec![vec![0, 1, 2, 3], vec![3, 4, 5]] });
        assert!(!whole.is_partitioned(3), "the bridge reaches everyone");
        assert!(whole.is_partitioned(0) && whole.is_partitioned(5));
        let mut one_way = Network::new(&spec);
        one_way.start(&FaultKind::OneWay { from: vec![0], to: vec![0, 1] });
        assert!(one_way.is_partitioned(0) && one_way.is_partitioned(1) && !one_way.is_partitioned(2));
    }

    #[test]
    fn a_ten_thousand_node_split_is_cheap_to_start_check_and_heal() {
        let spec = RunSpec::basic("t", 1, 10_000);
        let mut network = Network::new(&spec);
        let split = FaultKind::Partition { groups: vec![(0..3_000).collect(), (3_000..10_000).collect()] };
        network.start(&split);
        assert!(network.is_blocked(0, 9_999) && !network.is_blocked(0, 2_999) && network.is_partitioned(42));
        network.heal(&split);
        assert!(!network.is_blocked(0, 9_999) && !network.is_partitioned(42));
    }

    #[test]
    fn one_way_partitions_cut_one_direction() {
        let spec = RunSpec::basic("t", 1, 3);
        let mut network = Network::new(&spec);
        let kind = FaultKind::OneWay { from: vec![0], to: vec![1, 2] };
        network.start(&kind);
        assert!(network.is_blocked(0, 1) && !network.is_blocked(1, 0));
        network.heal(&kind);
        assert!(!network.is_blocked(0, 1));
    }

    #[test]
    fn overlapping_faults_heal_independently() {
        let spec = RunSpec::basic("t", 1, 3);
        let mut network = Network::new(&spec);
        let a = FaultKind::OneWay { from: vec![0], to: vec![1] };
        let b = FaultKind::Partition { groups: vec![vec![0], vec![1, 2]] };
        network.start(&a);
        network.start(&b);
        network.heal(&a);
        assert!(network.is_blocked(0, 1), "the partition still cuts the link");
        network.heal(&b);
        assert!(!network.is_blocked(0, 1));
    }

    #[test]
    fn loss_and_duplication_follow_their_probabilities() {
        let mut spec = RunSpec::basic("t", 9, 2);
        spec.network.loss = 0.25;
        spec.network.duplicate = 0.5;
        let mut network = Network::new(&spec);
        let (mut lost, mut doubled) = (0, 0);
        for _ in 0..10_000 {
            match network.fate(0, 1) {
                Fate::Dropped(_) => lost += 1,
                Fate::Deliver { delays, .. } => doubled += usize::from(delays.len() == 2),
            }
        }
        assert!((2_200..2_800).contains(&lost), "lost {lost}");
        assert!((3_400..4_100).contains(&doubled), "doubled {doubled}");
    }
}
