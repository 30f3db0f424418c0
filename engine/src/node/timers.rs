//! The node's clock-driven work: the sync cadence (whom to sync with, and
//! when) and session timeouts.
//!
//! Invariant: the timers read no clock and draw no randomness of their own:
//! time is the driver's `now`, and a random peer choice comes from a stream
//! the caller seeds ([`PeerPlan::Random`]), so a seed reproduces it.

use super::super::protocol::Syncer;
use crate::hash::splitmix64;
use crate::lane::NodeId;
use crate::members::Peers;
use std::collections::BTreeMap;

/// Whom a node syncs with on its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PeerPlan {
    /// Nobody: the node only answers (a server, or an air-gapped node whose
    /// lanes travel as bundle files).
    #[default]
    Answer,
    /// Each tick, the next peer of the list, in turn, from the first.
    RoundRobin(Peers),
    /// Each tick, a peer of the list drawn uniformly from a deterministic
    /// stream seeded by `seed` (the engine has no randomness of its own).
    Random {
        /// The candidates.
        peers: Peers,
        /// The stream's seed.
        seed: u64,
    },
}

/// When and with whom a node syncs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// Whom to start sessions with.
    pub peers: PeerPlan,
    /// Nanoseconds between sync ticks (at least 1).
    pub interval_ns: u64,
    /// Ticks fall where `(now + phase_ns) % interval_ns == 0` on the node's
    /// clock, so nodes with different phases do not sync in lockstep.
    pub phase_ns: u64,
    /// A session open this long (on this node's clock) is abandoned.
    pub session_timeout_ns: u64,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self { peers: PeerPlan::Answer, interval_ns: 100_000_000, phase_ns: 0, session_timeout_ns: 1_000_000_000 }
    }
}

/// The timers' state.
#[derive(Clone, Debug)]
pub(super) struct Timers {
    next_tick_ns: u64,
    /// When each open session was first seen open.
    open_since: BTreeMap<(NodeId, u64), u64>,
    /// Position in a round-robin plan.
    cursor: usize,
    /// The random plan's stream.
    stream: u64,
}

impl Timers {
    pub(super) fn new(now_ns: u64, config: &SyncConfig) -> Self {
        let stream = match &config.peers {
            PeerPlan::Random { seed, .. } => *seed,
            _ => 0,
        };
        Self { next_tick_ns: next_tick_after(now_ns, config), open_since: BTreeMap::new(), cursor: 0, stream }
    }

    /// Records sessions that opened since the last look and forgets closed ones.
    pub(super) fn track_sessions(&mut self, now_ns: u64, syncer: &Syncer) {
        let mut open: BTreeMap<(NodeId, u64), u64> = BTreeMap::new();
        for (peer, session, _, _) in syncer.open_sessions() {
            let since = self.open_since.get(&(peer, session)).copied().unwrap_or(now_ns);
            open.insert((peer, session), since);
        }
        self.open_since = open;
    }

    /// Sessions open for longer than the timeout at `now_ns`.
    pub(super) fn expired(&self, now_ns: u64, config: &SyncConfig) -> Vec<(NodeId, u64)> {
        self.open_since
            .iter()
            .filter(|(_, since)| now_ns.saturating_sub(**since) >= config.session_timeout_ns)
            .map(|(key, _)| *key)
            .collect()
    }

    /// The peer to sync with if a tick is due at `now_ns` (and schedules the
    /// next tick); `None` when no tick is due or the plan names nobody.
    pub(super) fn tick(&mut self, now_ns: u64, config: &SyncConfig) -> Option<NodeId> {
        if now_ns < self.next_tick_ns {
            return None;
        }
        self.next_tick_ns = next_tick_after(now_ns, config);
        match &config.peers {
            PeerPlan::Answer => None,
            PeerPlan::RoundRobin(peers) => {
                let peer = peers.get(self.cursor % peers.len().max(1));
                self.cursor = self.cursor.wrapping_add(1);
                peer
            }
            PeerPlan::Random { peers, .. } => {
                let draw = splitmix64(&mut self.stream);
                // Multiply-shift: uniform enough for a peer choice, no modulo bias worth naming.
                let index = ((u128::from(draw) * peers.len() as u128) >> 64) as usize;
                peers.get(index)
            }
        }
    }

    /// The earliest instant the node needs a timeout: the next tick, or a
    /// session's expiry.
    pub(super) fn next_timeout(&self, config: &SyncConfig) -> Option<u64> {
        let expiry = self.open_since.values().map(|since| since.saturating_add(config.session_timeout_ns)).min();
        let tick = (config.peers != PeerPlan::Answer).then_some(self.next_tick_ns);
        [expiry, tick].into_iter().flatten().min()
    }
}

/// The first tick strictly after `now_ns`.
fn next_tick_after(now_ns: u64, config: &SyncConfig) -> u64 {
    let interval = config.interval_ns.max(1);
    let phase = config.phase_ns % interval;
    let shifted = now_ns.saturating_add(phase);
    let next = (shifted / interval).saturating_add(1).saturating_mul(interval);
    next.saturating_sub(phase).max(now_ns.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(interval_ns: u64, phase_ns: u64) -> SyncConfig {
        SyncConfig {
            peers: PeerPlan::RoundRobin(vec![NodeId(1)].into()),
            interval_ns,
            phase_ns,
            session_timeout_ns: 50,
        }
    }

    #[test]
    fn ticks_fall_on_multiples_of_the_interval_shifted_by_the_phase() {
        assert_eq!(next_tick_after(0, &config(100, 0)), 100);
        assert_eq!(next_tick_after(99, &config(100, 0)), 100);
        assert_eq!(next_tick_after(100, &config(100, 0)), 200);
        assert_eq!(next_tick_after(0, &config(100, 30)), 70);
        assert_eq!(next_tick_after(70, &config(100, 30)), 170);
    }

    #[test]
    fn a_tick_near_the_end_of_time_saturates_instead_of_wrapping() {
        let tick = next_tick_after(u64::MAX - 5, &config(100, 0));
        assert_eq!(tick, u64::MAX);
    }

    #[test]
    fn round_robin_visits_every_peer_in_turn_and_random_stays_in_the_list() {
        let peers: Vec<NodeId> = (1..4).map(NodeId).collect();
        let mut plan = SyncConfig { peers: PeerPlan::RoundRobin(peers.clone().into()), ..config(10, 0) };
        let mut timers = Timers::new(0, &plan);
        let chosen: Vec<NodeId> = (1..=6).filter_map(|tick| timers.tick(tick * 10, &plan)).collect();
        assert_eq!(chosen, [1, 2, 3, 1, 2, 3].map(NodeId));
        plan.peers = PeerPlan::Random { peers: peers.clone().into(), seed: 7 };
        let mut timers = Timers::new(0, &plan);
        let drawn: Vec<NodeId> = (1..=300).filter_map(|tick| timers.tick(tick * 10, &plan)).collect();
        assert_eq!(drawn.len(), 300);
        for peer in &peers {
            let share = drawn.iter().filter(|drawn| *drawn == peer).count();
            assert!((60..=140).contains(&share), "{peer:?} drawn {share} of 300 times");
        }
    }

    #[test]
    fn a_session_expires_exactly_one_timeout_after_it_was_first_seen_open() {
        let plan = config(1000, 0);
        let mut replica =
            crate::Replica::new(crate::World, crate::ReplicaConfig::new(NodeId(0), [NodeId(0), NodeId(1)]));
        let mut syncer = Syncer::new(NodeId(0));
        let session = syncer.initiate(NodeId(1), &mut replica);
        let mut timers = Timers::new(0, &plan);
        timers.track_sessions(10, &syncer);
        timers.track_sessions(30, &syncer);
        assert_eq!(timers.expired(59, &plan), [], "open since 10, the timeout is 50");
        assert_eq!(timers.expired(60, &plan), [(NodeId(1), session)]);
        assert_eq!(timers.next_timeout(&plan), Some(60), "the expiry comes before the tick at 1000");
        syncer.abandon(NodeId(1), session, "test");
        timers.track_sessions(61, &syncer);
        assert_eq!(timers.expired(u64::MAX, &plan), [], "a closed session is forgotten");
        assert_eq!(timers.next_timeout(&plan), Some(1000));
    }

    #[test]
    fn no_tick_before_it_is_due_and_an_answering_node_has_no_tick_timeout() {
        let plan = config(100, 0);
        let mut timers = Timers::new(0, &plan);
        assert_eq!(timers.tick(99, &plan), None);
        assert_eq!(timers.next_timeout(&plan), Some(100));
        assert_eq!(timers.tick(100, &plan), Some(NodeId(1)));
        let answer = SyncConfig { peers: PeerPlan::Answer, ..plan };
        assert_eq!(Timers::new(0, &answer).next_timeout(&answer), None);
    }
}
