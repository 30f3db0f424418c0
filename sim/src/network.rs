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

use crate::rng::SimRng;
use crate::spec::{FaultKind, Latency, NetworkSpec, RunSpec};
use crate::trace::DropReason;
use std::collections::BTreeMap;
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
    /// Directed links cut, with how many active faults cut each.
    blocked: BTreeMap<(u32, u32), u32>,
    nodes: u32,
}

impl Network {
    /// The network of `spec`'s run.
    pub fn new(spec: &RunSpec) -> Self {
        Self {
            rng: SimRng::new(spec.seed, "network", 0),
            latency: spec.network.latency.clone(),
            loss: spec.network.loss,
            base: spec.network.clone(),
            blocked: BTreeMap::new(),
            nodes: spec.nodes,
        }
    }

    /// Whether `from` cannot reach `to` now.
    pub fn is_blocked(&self, from: u32, to: u32) -> bool {
        self.blocked.contains_key(&(from, to))
    }

    /// Whether some link out of or into `node` is cut.
    pub fn is_partitioned(&self, node: u32) -> bool {
        self.blocked.keys().any(|(from, to)| *from == node || *to == node)
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
            _ => {
                for link in self.links(kind) {
                    *self.blocked.entry(link).or_default() += 1;
                }
            }
        }
    }

    /// Heals a network fault.
    pub fn heal(&mut self, kind: &FaultKind) {
        match kind {
            FaultKind::Latency { .. } => self.latency = self.base.latency.clone(),
            FaultKind::Loss { .. } => self.loss = self.base.loss,
            _ => {
                for link in self.links(kind) {
                    if let Some(count) = self.blocked.get_mut(&link) {
                        *count -= 1;
                        if *count == 0 {
                            self.blocked.remove(&link);
                        }
                    }
                }
            }
        }
    }

    /// The directed links a partition fault cuts.
    fn links(&self, kind: &FaultKind) -> Vec<(u32, u32)> {
        match kind {
            FaultKind::Partition { groups } => {
                let mut links = Vec::new();
                for a in 0..self.nodes {
                    for b in 0..self.nodes {
                        let together = groups.iter().any(|group| group.contains(&a) && group.contains(&b));
                        if a != b && !together {
                            links.push((a, b));
                        }
                    }
                }
                links
            }
            FaultKind::OneWay { from, to } => {
                from.iter().flat_map(|a| to.iter().filter(move |b| *b != a).map(move |b| (*a, *b))).collect()
            }
            _ => Vec::new(),
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
