//! After a real run: the nodes' observation logs and the supervisor's
//! happenings, merged in timestamp order, replayed into a fresh
//! [`Checkers`], the same checkers the simulator feeds as it runs, and
//! turned into the same [`RunOutcome`] (so the same record and report).
//!
//! Left out, because only the simulator has them: the trace hash (a real
//! run is not deterministic), the bytes a crash lost or tore (a SIGKILL
//! loses what was not synced, and nothing tells how much), per-datagram
//! events (the proxy counts frames instead), and hostile nodes, rot and
//! replacements (real mode refuses them).
//!
//! Invariant: verdicts come only from the checkers; this module only says
//! in which order they see what the processes logged.

use super::RealError;
use super::cluster::{ClusterRun, Happening, Stop};
use super::log::{Entry, Line, frontier, lane_from_hex, warning_of};
use super::timeline::{self, NodeSamples};
use crate::checkers::Checkers;
use crate::observation::Observation;
use crate::runner::{Ending, RunOutcome};
use crate::spec::RunSpec;
use crate::trace::{Event, Stamped};
use scx_reports::model::Metrics;
use std::collections::BTreeMap;

/// Where in an instant an item goes: what the processes did, then the sample.
const AT_ONCE: u8 = 0;
const SAMPLED: u8 = 1;
const SETTLED: u8 = 2;
const FINAL: u8 = 3;

/// One item of the merged stream.
struct Item {
    at_ns: u64,
    rank: u8,
    observation: Observation,
}

/// Reads every log of `run` and judges the run of `spec`.
pub fn collect(spec: &RunSpec, run: &ClusterRun) -> Result<RunOutcome, RealError> {
    let mut lines = Vec::new();
    for dir in &run.data {
        lines.extend(read_log(&dir.join("observations.jsonl"))?);
    }
    lines.sort_by_key(|line| (line.t_ns, line.node));
    let mut metrics = Metrics::default();
    let mut lane_bytes = (0, 0);
    let mut events = Vec::new();
    let mut items = Vec::new();
    let mut samples = NodeSamples::default();
    let mut finals = Vec::new();
    let mut traffic = Vec::new();
    let mut unacknowledged: BTreeMap<u32, Vec<(u64, scx_engine::LaneId, scx_engine::Lane<scx_engine::WorldOp>)>> =
        BTreeMap::new();
    for line in lines {
        let (at_ns, node) = (line.t_ns, line.node);
        let observation = match line.entry {
            Entry::Sample { k, status, frontier } => {
                samples.insert(k, node, status, frontier);
                continue;
            }
            Entry::Final { .. } => {
                finals.push(line);
                continue;
            }
            Entry::Authored { lane } => {
                if let Some((id, lane)) = lane_from_hex(&lane) {
                    unacknowledged.entry(node).or_default().push((at_ns, id, lane));
                }
                continue;
            }
            Entry::Wrote { lane } => {
                let Some((id, lane)) = lane_from_hex(&lane) else { continue };
                unacknowledged.entry(node).or_default().retain(|(_, authored, _)| *authored != id);
                metrics.lanes += 1;
                events.push(Stamped { at_ns, event: Event::Write { node, seq: lane.seq, ops: lane.ops.len() as u32 } });
                Observation::Wrote { node, id, lane }
            }
            Entry::Booted { boot, lanes, frontier: tips, status, torn_tail_bytes, corruption_detected, rejoining } => {
                let held = frontier(&tips);
                // The one lane a SIGKILL can catch between its fsync and its
                // acknowledgement: durable (it came back), so acknowledged.
                for (authored_ns, id, lane) in unacknowledged.remove(&node).unwrap_or_default() {
                    if held.get(&scx_engine::NodeId(node)) == Some(&(lane.seq, id)) {
                        items.push(Item {
                            at_ns: authored_ns,
                            rank: AT_ONCE,
                            observation: Observation::Wrote { node, id, lane },
                        });
                        metrics.lanes += 1;
                    }
                }
                metrics.torn_tails_recovered += u64::from(torn_tail_bytes > 0);
                metrics.rot_detected += u64::from(corruption_detected);
                if boot > 1 {
                    let event = Event::Recover { node, lanes, torn_tail_bytes, lane_index: status.lane_index };
                    events.push(Stamped { at_ns, event });
                }
                let status = status.view();
                Observation::Booted {
                    node,
                    boot,
                    frontier: held,
                    status,
                    torn_tail_bytes,
                    corruption_detected,
                    rejoining,
                }
            }
            Entry::RecoveryFailed { error } => Observation::RecoveryFailed { node, error },
            Entry::WriteRefused { error } => Observation::WriteRefused { node, error },
            Entry::StoreFailed { error } => Observation::StoreFailed { node, error },
            Entry::Read { key, value, frontier: tips } => {
                metrics.reads += 1;
                Observation::Read { node, key, value: value.model(), frontier: frontier(&tips) }
            }
            Entry::SessionStarted { peer, session, status } => {
                Observation::SessionStarted { node, peer, session, status: status.view() }
            }
            Entry::SessionEnded { peer, session, initiator, in_sync, status, metrics: counters } => {
                add_session(&mut metrics, &mut lane_bytes, &counters);
                traffic.push((at_ns, counters.bytes_sent, counters.bytes_missing));
                metrics.sessions += u64::from(initiator);
                let lanes_received = counters.lanes_missing;
                events
                    .push(Stamped { at_ns, event: Event::Session { node, peer, initiator, in_sync, lanes_received } });
                let status = status.map(|status| status.view());
                Observation::SessionEnded { node, peer, session, initiator, in_sync, status, lanes_received }
            }
            Entry::SessionFailed { peer, metrics: counters } => {
                add_session(&mut metrics, &mut lane_bytes, &counters);
                traffic.push((at_ns, counters.bytes_sent, counters.bytes_missing));
                metrics.sessions_abandoned += 1;
                events.push(Stamped { at_ns, event: Event::SessionTimeout { node, peer } });
                continue;
            }
            Entry::Warning { peer, warning, detail, at } => {
                let warning = warning_of(&warning, &detail, at);
                match &warning {
                    crate::observation::EngineWarning::ForkSuspected { .. } => {}
                    crate::observation::EngineWarning::SnapshotRejected(_) => {
                        metrics.snapshots_rejected += 1;
                        metrics.corrupt_inputs_rejected += 1;
                    }
                    _ => metrics.corrupt_inputs_rejected += 1,
                }
                Observation::Warning { node, peer, warning }
            }
            Entry::ForkEvidence { dot, kept, other } => {
                metrics.forks += 1;
                Observation::ForkEvidence { node, dot, kept, other }
            }
            Entry::SnapshotChainDiverged { peer, error } => Observation::SnapshotChainDiverged { node, peer, error },
            Entry::SnapshotCommitted { lane_index, id, chain_hash, state_digest, frontier: tips } => {
                metrics.snapshots += 1;
                events.push(Stamped { at_ns, event: Event::Snapshot { node, lane_index } });
                let frontier = frontier(&tips);
                Observation::SnapshotCommitted { node, lane_index, id, chain_hash, state_digest, frontier }
            }
            Entry::Rejoined => {
                metrics.rejoins += 1;
                Observation::Rejoined { node }
            }
        };
        items.push(Item { at_ns, rank: AT_ONCE, observation });
    }
    for (at_ns, happening) in &run.happenings {
        match happening {
            Happening::Crashed(node) => {
                metrics.crashes += 1;
                events.push(Stamped {
                    at_ns: *at_ns,
                    event: Event::Crash { node: *node, unsynced_bytes: 0, torn: false },
                });
                let observation = Observation::Crashed { node: *node, unsynced_bytes_lost: 0, torn_bytes: 0 };
                items.push(Item { at_ns: *at_ns, rank: AT_ONCE, observation });
            }
            Happening::Fault { index, healed } => {
                let fault = &spec.faults[*index];
                let event = Event::Fault { name: fault.kind.name(), healed: *healed, nodes: fault.kind.nodes() };
                events.push(Stamped { at_ns: *at_ns, event });
            }
            _ => {}
        }
    }
    metrics.split_lane_bytes(lane_bytes.0, lane_bytes.1);
    metrics.messages_sent = run.proxy.messages_sent;
    metrics.messages_dropped = run.proxy.messages_dropped;
    metrics.partition_drops = run.proxy.partition_drops;
    let sampled = timeline::sampled(spec, run, &samples, &traffic);
    for (at_ns, observation) in sampled.observations {
        items.push(Item { at_ns, rank: SAMPLED, observation });
    }
    if run.stop == Stop::Settled {
        let observation = Observation::SettleEnded {
            settle_ms: spec.settle.as_millis() as u64,
            quiescent_at_ms: spec.quiescent_at().as_millis() as u64,
        };
        items.push(Item { at_ns: run.ended_at_ns, rank: SETTLED, observation });
    }
    let live_at_end = finals.len();
    for line in finals {
        let Entry::Final { status, frontier: tips, lineage, latest_snapshot_error, replica } = line.entry else {
            continue;
        };
        metrics.rollbacks += replica.rollbacks;
        metrics.lanes_pruned += replica.lanes_pruned;
        metrics.lanes_pended += replica.lanes_pended;
        metrics.lanes_released += replica.lanes_released;
        metrics.conflicts = metrics.conflicts.max(replica.conflicts);
        let observation = Observation::Final {
            node: line.node,
            status: status.view(),
            frontier: frontier(&tips),
            lineage,
            latest_snapshot_error,
        };
        items.push(Item { at_ns: run.ended_at_ns.max(line.t_ns), rank: FINAL, observation });
    }
    items.sort_by_key(|item| (item.rank == FINAL, item.at_ns, item.rank));
    let mut checkers = Checkers::new(spec);
    for item in &items {
        for violation in checkers.observe(item.at_ns, &item.observation) {
            events.push(Stamped {
                at_ns: item.at_ns,
                event: Event::Violation { checker: violation.checker, node: violation.node },
            });
        }
    }
    events.sort_by_key(|stamped| stamped.at_ns);
    let converged_at_ns = checkers.converged_at_ns();
    let violations = checkers.violations().to_vec();
    let ending = ending(run, &metrics, live_at_end, converged_at_ns, violations.is_empty());
    Ok(RunOutcome {
        spec: spec.clone(),
        violations,
        trace_hash: String::new(),
        events_total: events.len() as u64,
        converged_at_ns,
        quiescent_at_ns: spec.quiescent_at().as_nanos() as u64,
        ended_at_ns: run.ended_at_ns,
        coverage: crate::checkers::coverage::reached(&metrics),
        metrics,
        samples: sampled.samples,
        events,
        last_write_at_ns: checkers.last_write_at_ns(),
        ending,
    })
}

fn ending(run: &ClusterRun, metrics: &Metrics, live_at_end: usize, converged: Option<u64>, clean: bool) -> Ending {
    if metrics.lanes == 0 {
        return Ending::NothingTested { reason: "no node acknowledged a write".to_owned() };
    }
    if live_at_end == 0 {
        return Ending::NothingTested { reason: "no node was up at the end of the run".to_owned() };
    }
    let exited = run.happenings.iter().find_map(|(_, happening)| match happening {
        Happening::Exited { node, status } => {
            Some(format!("n{node} exited by itself ({status}); see n{node}/stderr.log"))
        }
        _ => None,
    });
    if let (Some(message), true) = (exited, clean) {
        return Ending::HarnessPanic { message };
    }
    match run.stop {
        Stop::Agreed { k } if converged.is_none() && clean => Ending::HarnessPanic {
            message: format!("every live node reported one status at sample {k}, but the checkers saw no convergence"),
        },
        Stop::Interrupted(_) => Ending::Interrupted,
        _ => Ending::Finished,
    }
}

/// Adds a session's counters; `lane_bytes` gathers the lane-batch bytes
/// sent and the share found needed, which the end splits.
fn add_session(metrics: &mut Metrics, lane_bytes: &mut (u64, u64), counters: &super::log::Metrics) {
    metrics.bytes_sent += counters.bytes_sent;
    metrics.bytes_missing += counters.bytes_missing;
    metrics.bytes_sent_handshake += counters.bytes_sent_handshake;
    metrics.bytes_sent_summary += counters.bytes_sent_summary;
    metrics.bytes_sent_other += counters.bytes_sent_other;
    lane_bytes.0 += counters.bytes_sent_lanes;
    lane_bytes.1 += counters.bytes_received_lanes_needed;
    metrics.round_trips += counters.round_trips;
    metrics.snapshots_installed += counters.snapshots_installed;
    metrics.compact_summaries += counters.compact_summaries;
    metrics.bloom_supplies += counters.supplies;
}

/// The parsed lines of one log; a line that does not parse (a torn last
/// line after a SIGKILL) is skipped.
fn read_log(path: &std::path::Path) -> Result<Vec<Line>, RealError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(RealError::Io { what: "read", path: path.display().to_string(), source: error }),
    };
    Ok(text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect())
}
