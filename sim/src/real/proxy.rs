//! The userspace fault proxy: one listener per directed link (a → b) on
//! loopback. Node a dials it to reach b; the proxy dials b and relays the
//! frames, deciding each one's fate with the simulator's own network model
//! ([`Network`], seeded from the run's seed): dropped by a partition
//! (blackholed, one-way too) or by loss, delayed by the latency model (so
//! frames may overtake each other, as datagrams do in the simulator),
//! duplicated, or one bit flipped. One lost frame in [`RESET_ONE_IN`]
//! resets the connection instead, losing what was in flight.
//!
//! Invariant: the proxy forwards whole frames or nothing, so a receiver
//! never sees a torn frame; the hello frame that names the sender passes
//! unharmed, and a partition is checked again when a delayed frame is due.

use crate::network::{Fate, Network};
use crate::rng::SimRng;
use crate::spec::{FaultKind, RunSpec};
use crate::trace::DropReason;
use crate::world::lock;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};

/// One lost frame in this many resets its connection instead.
pub const RESET_ONE_IN: u64 = 16;

/// What the proxy did, over all links.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyCounters {
    /// Frames nodes sent (hellos not counted).
    pub messages_sent: u64,
    /// Frames lost (loss, partitions, resets).
    pub messages_dropped: u64,
    /// Frames a partition dropped.
    pub partition_drops: u64,
    /// Frames delivered twice.
    pub duplicates: u64,
    /// Frames with a bit flipped.
    pub corrupted: u64,
    /// Connections reset.
    pub resets: u64,
}

#[derive(Debug)]
struct Shared {
    network: Mutex<Network>,
    counters: Mutex<ProxyCounters>,
    resets: Mutex<SimRng>,
}

/// The proxy of a cluster.
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    links: BTreeMap<(u32, u32), SocketAddr>,
}

impl Proxy {
    /// Binds one listener per directed link between the nodes at
    /// `addresses` and starts relaying (on the current runtime).
    pub async fn start(spec: &RunSpec, addresses: &[SocketAddr]) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            network: Mutex::new(Network::new(spec)),
            counters: Mutex::new(ProxyCounters::default()),
            resets: Mutex::new(SimRng::new(spec.seed, "proxy-resets", 0)),
        });
        let mut links = BTreeMap::new();
        for (from, _) in addresses.iter().enumerate() {
            for (to, target) in addresses.iter().enumerate() {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let link = (from as u32, to as u32);
                links.insert(link, listener.local_addr()?);
                tokio::spawn(accept(listener, link, *target, shared.clone()));
            }
        }
        Ok(Self { shared, links })
    }

    /// Where `from` dials to reach `to`.
    pub fn address(&self, from: u32, to: u32) -> Option<SocketAddr> {
        self.links.get(&(from, to)).copied()
    }

    /// Starts a network fault (partition, one-way partition, latency, loss).
    pub fn start_fault(&self, kind: &FaultKind) {
        lock(&self.shared.network).start(kind);
    }

    /// Heals a network fault.
    pub fn heal_fault(&self, kind: &FaultKind) {
        lock(&self.shared.network).heal(kind);
    }

    /// Whether a link into or out of `node` is cut now.
    pub fn is_partitioned(&self, node: u32) -> bool {
        lock(&self.shared.network).is_partitioned(node)
    }

    /// What the proxy did so far.
    pub fn counters(&self) -> ProxyCounters {
        *lock(&self.shared.counters)
    }
}

async fn accept(listener: TcpListener, link: (u32, u32), target: SocketAddr, shared: Arc<Shared>) {
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of descriptors, say: wait rather than spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        // The receiver may be down: then the sender's connection closes and it dials again.
        let Ok(outbound) = TcpStream::connect(target).await else { continue };
        let _ = (inbound.set_nodelay(true), outbound.set_nodelay(true));
        tokio::spawn(relay(inbound, outbound, link, shared.clone()));
    }
}

/// Relays one connection's frames until either side closes or a reset.
async fn relay(inbound: TcpStream, outbound: TcpStream, link: (u32, u32), shared: Arc<Shared>) {
    let mut reader = FramedRead::new(inbound, super::transport::codec());
    let mut writer = FramedWrite::new(outbound, super::transport::codec());
    let Some(Ok(hello)) = reader.next().await else { return };
    if writer.send(hello.freeze()).await.is_err() {
        return;
    }
    let (due, queue) = mpsc::unbounded_channel();
    let mut delivery = tokio::spawn(deliver(writer, queue, link, shared.clone()));
    loop {
        let frame = tokio::select! {
            frame = reader.next() => frame,
            // The receiver went away (a crash): close the sender's side too,
            // so it dials again and the proxy dials the restarted receiver.
            _ = &mut delivery => return,
        };
        let Some(Ok(frame)) = frame else { return };
        match fate(&shared, link, frame) {
            Some(copies) => {
                for copy in copies {
                    let _ = due.send(copy);
                }
            }
            None if lock(&shared.resets).below(RESET_ONE_IN) == 0 => {
                lock(&shared.counters).resets += 1;
                // Dropping both ends loses every frame still in flight.
                delivery.abort();
                return;
            }
            None => {}
        }
    }
}

/// The copies of a frame to deliver, with when; `None` when it is lost
/// to random loss (a partition's drop is counted and returns no copy).
fn fate(shared: &Shared, (from, to): (u32, u32), frame: BytesMut) -> Option<Vec<(Instant, Bytes)>> {
    let mut network = lock(&shared.network);
    let fate = network.fate(from, to);
    let mut counters = lock(&shared.counters);
    counters.messages_sent += 1;
    let (delays, corrupted) = match fate {
        Fate::Dropped(reason) => {
            counters.messages_dropped += 1;
            if reason == DropReason::Partition {
                counters.partition_drops += 1;
                return Some(Vec::new());
            }
            return None;
        }
        Fate::Deliver { delays, corrupted } => (delays, corrupted),
    };
    let mut bytes = frame.to_vec();
    if corrupted && network.corrupt(&mut bytes) {
        counters.corrupted += 1;
    }
    counters.duplicates += u64::from(delays.len() > 1);
    let now = super::clock::monotonic_now();
    let bytes = Bytes::from(bytes);
    Some(delays.into_iter().map(|delay| (now + delay, bytes.clone())).collect())
}

/// Writes frames to the receiver when they are due, earliest first.
async fn deliver(
    mut writer: FramedWrite<TcpStream, tokio_util::codec::LengthDelimitedCodec>,
    mut queue: mpsc::UnboundedReceiver<(Instant, Bytes)>,
    (from, to): (u32, u32),
    shared: Arc<Shared>,
) {
    let mut waiting: BinaryHeap<Reverse<(Instant, u64, Bytes)>> = BinaryHeap::new();
    let mut order = 0u64;
    let mut open = true;
    loop {
        let next = waiting.peek().map(|Reverse((at, _, _))| *at);
        if !open && next.is_none() {
            return;
        }
        tokio::select! {
            received = queue.recv(), if open => match received {
                Some((at, bytes)) => {
                    order += 1;
                    waiting.push(Reverse((at, order, bytes)));
                }
                None => open = false,
            },
            () = tokio::time::sleep_until(next.unwrap_or_else(|| super::clock::monotonic_now() + Duration::from_secs(3600))), if next.is_some() => {
                let Some(Reverse((_, _, bytes))) = waiting.pop() else { continue };
                if lock(&shared.network).is_blocked(from, to) {
                    let mut counters = lock(&shared.counters);
                    counters.messages_dropped += 1;
                    counters.partition_drops += 1;
                    continue;
                }
                if writer.send(bytes).await.is_err() {
                    return;
                }
            }
        }
    }
}
