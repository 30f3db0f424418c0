//! The cluster at each sample time of a real run, rebuilt after it: each
//! node's own status sample at that index (nodes sample on multiples of the
//! sample interval since the epoch), its life from the supervisor's
//! happenings (down after a SIGKILL until its restart, paused between
//! SIGSTOP and SIGCONT), and which links the proxy had cut (the
//! simulator's network model replayed over the same fault steps).
//!
//! Invariant: a node that is up but has no sample at an index (it was
//! still booting, or its sample came late) is shown to the checkers as
//! paused, i.e. unknown: convergence is never claimed on a guess.

use super::cluster::{ClusterRun, Happening};
use super::log::{Status, Tip, frontier};
use crate::network::Network;
use crate::observation::{NodeView, Observation};
use crate::runner::{NodeSample, Sample};
use crate::spec::{FaultKind, RunSpec};
use crate::world::Life;
use std::collections::BTreeMap;

/// Every node's status samples, by sample index.
#[derive(Debug, Default)]
pub struct NodeSamples {
    by_k: BTreeMap<u64, BTreeMap<u32, (Status, Vec<Tip>)>>,
}

impl NodeSamples {
    /// Node `node`'s sample at index `k`.
    pub fn insert(&mut self, k: u64, node: u32, status: Status, tips: Vec<Tip>) {
        self.by_k.entry(k).or_default().insert(node, (status, tips));
    }
}

/// The checkers' samples and the report's.
#[derive(Debug, Default)]
pub struct Sampled {
    /// `Sampled` observations, stamped.
    pub observations: Vec<(u64, Observation)>,
    /// The report's samples.
    pub samples: Vec<Sample>,
}

/// The cluster at every sample index up to the end of `run`; `traffic` is
/// (ns, bytes sent, bytes missing) per session, in time order.
pub fn sampled(spec: &RunSpec, run: &ClusterRun, samples: &NodeSamples, traffic: &[(u64, u64, u64)]) -> Sampled {
    let interval_ns = spec.sample_interval.as_nanos().max(1) as u64;
    let quiescent_ns = spec.quiescent_at().as_nanos() as u64;
    let mut life = vec![Life::Up; spec.nodes as usize];
    let mut network = Network::new(spec);
    let mut happenings = run.happenings.iter().peekable();
    let (mut sent, mut missing, mut sessions) = (0, 0, traffic.iter().peekable());
    let mut out = Sampled::default();
    let empty = BTreeMap::new();
    for k in 1..=run.ended_at_ns / interval_ns {
        let at_ns = k * interval_ns;
        while let Some((_, happening)) = happenings.next_if(|(when, _)| *when <= at_ns) {
            follow(spec, happening, &mut life, &mut network);
        }
        while let Some((_, bytes_sent, bytes_missing)) = sessions.next_if(|(when, _, _)| *when <= at_ns) {
            (sent, missing) = (sent + bytes_sent, missing + bytes_missing);
        }
        let at_k = samples.by_k.get(&k).unwrap_or(&empty);
        let mut views = Vec::new();
        let mut nodes = Vec::new();
        for node in 0..spec.nodes {
            let sample = at_k.get(&node).filter(|_| life[node as usize] == Life::Up);
            views.push(match (life[node as usize], sample) {
                (Life::Down, _) => NodeView::Down,
                (Life::Up, Some((status, _))) => NodeView::Up(status.view()),
                _ => NodeView::Paused,
            });
            nodes.push(NodeSample {
                life: life[node as usize],
                partitioned: network.is_partitioned(node),
                lane_index: sample.map_or(0, |(status, _)| status.lane_index),
                chain: sample.map_or_else(String::new, |(status, _)| status.chain_hash.short()),
            });
        }
        let agreed = agreed(&views, at_k).filter(|_| at_ns >= quiescent_ns);
        out.observations.push((at_ns, Observation::Sampled { nodes: views, agreed, quiescent: at_ns >= quiescent_ns }));
        out.samples.push(Sample { at_ns, nodes, bytes_sent: sent, bytes_missing: missing });
    }
    out
}

/// The frontier of the first up node, when every up node holds its status.
fn agreed(views: &[NodeView], at_k: &BTreeMap<u32, (Status, Vec<Tip>)>) -> Option<scx_model::Frontier> {
    let mut up = views.iter().enumerate().filter_map(|(node, view)| match view {
        NodeView::Up(status) => Some((node as u32, *status)),
        _ => None,
    });
    let (first, status) = up.next()?;
    if !up.all(|(_, other)| other == status) {
        return None;
    }
    at_k.get(&first).map(|(_, tips)| frontier(tips))
}

/// Applies one of the supervisor's happenings to the lives and the network.
fn follow(spec: &RunSpec, happening: &Happening, life: &mut [Life], network: &mut Network) {
    match happening {
        Happening::Crashed(node) | Happening::Exited { node, .. } => life[*node as usize] = Life::Down,
        Happening::Restarted(node) | Happening::Resumed(node) => life[*node as usize] = Life::Up,
        Happening::Paused(node) => life[*node as usize] = Life::Paused,
        Happening::Fault { index, healed } => {
            let kind = &spec.faults[*index].kind;
            if matches!(kind, FaultKind::Partition { .. } | FaultKind::OneWay { .. }) {
                if *healed {
                    network.heal(kind);
                } else {
                    network.start(kind);
                }
            }
        }
    }
}
