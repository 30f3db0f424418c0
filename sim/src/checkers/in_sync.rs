//! Always: a node says "in sync" only when the hashes really match. A
//! responder that answers "in sync" must hold exactly the status the
//! initiator sent in its hello; an initiator that concludes "in sync" must
//! have started from the status the responder held when it answered. A
//! node that ends a session early on a wrong comparison never learns the
//! lanes it lacks, and would only surface later as a convergence timeout.

use super::{Checker, Found, Kind, Knowledge};
use crate::observation::{Observation, StatusView};
use std::collections::BTreeMap;

/// Open sessions remembered at least; older ones (abandoned) are forgotten.
const REMEMBERED_SESSIONS: usize = 4096;
/// Open sessions remembered per node: every node may have one under way and
/// some abandoned, so a 10,000-node cluster does not push out sessions still
/// open (their check would be skipped, silently).
const REMEMBERED_SESSIONS_PER_NODE: usize = 4;

/// The in-sync checker.
#[derive(Debug)]
pub struct InSync {
    /// (initiator, session) → the initiator's status at its hello.
    started: BTreeMap<(u32, u64), StatusView>,
    /// (initiator, session) → (responder, its status when it answered in sync).
    answered: BTreeMap<(u32, u64), (u32, StatusView)>,
    /// Entries each map keeps at most.
    remembered: usize,
}

impl InSync {
    /// The checker for a cluster of `nodes`.
    pub fn new(nodes: u32) -> Self {
        let remembered = REMEMBERED_SESSIONS.max(REMEMBERED_SESSIONS_PER_NODE * nodes as usize);
        Self { started: BTreeMap::new(), answered: BTreeMap::new(), remembered }
    }
}

impl Checker for InSync {
    fn name(&self) -> &'static str {
        "in-sync"
    }

    fn kind(&self) -> Kind {
        Kind::Always
    }

    fn observe(&mut self, _at_ns: u64, observation: &Observation, knowledge: &Knowledge, found: &mut Found) {
        let involves_hostile = match observation {
            Observation::SessionStarted { node, peer, .. } | Observation::SessionEnded { node, peer, .. } => {
                knowledge.hostile.contains(node) || knowledge.hostile.contains(peer)
            }
            _ => false,
        };
        if involves_hostile {
            // A hostile node's hello may lie about its status.
            return;
        }
        match observation {
            Observation::SessionStarted { node, session, status, .. } => {
                if self.started.len() >= self.remembered {
                    self.started.pop_first();
                }
                self.started.insert((*node, *session), *status);
            }
            Observation::SessionEnded {
                node,
                peer,
                session,
                initiator: false,
                in_sync: true,
                status: Some(status),
                ..
            } => {
                if let Some(sent) = self.started.get(&(*peer, *session))
                    && sent != status
                {
                    found.violation(Some(*node), mismatch("answered", *node, status, *peer, sent));
                }
                if self.answered.len() >= self.remembered {
                    self.answered.pop_first();
                }
                self.answered.insert((*peer, *session), (*node, *status));
            }
            Observation::SessionEnded { node, session, initiator: true, in_sync, .. } => {
                let sent = self.started.remove(&(*node, *session));
                let answer = self.answered.remove(&(*node, *session));
                if let (true, Some(sent), Some((responder, held))) = (*in_sync, sent, answer)
                    && sent != held
                {
                    found.violation(Some(*node), mismatch("concluded", *node, &sent, responder, &held));
                }
            }
            _ => {}
        }
    }
}

fn mismatch(verb: &str, node: u32, own: &StatusView, peer: u32, theirs: &StatusView) -> String {
    format!(
        "n{node} {verb} \"in sync\" with n{peer} while it held chain {} digest {} at lane index {} and n{peer} held chain {} digest {} at {}",
        own.chain_hash.short(),
        own.state_digest.short(),
        own.lane_index,
        theirs.chain_hash.short(),
        theirs.state_digest.short(),
        theirs.lane_index
    )
}
