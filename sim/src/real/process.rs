//! `scx node`: one SCX node as a real process. It recovers the engine's
//! [`Node`] from a [`FileStore`] in its data directory and drives it per
//! the run-loop contract, as `sim/src/node.rs` does inside madsim: after
//! every input it drains `poll`, makes each persist durable (append and
//! `fdatasync`, or an atomic replace) before `persisted`, sends each
//! datagram over the framed TCP transport, logs each event as an
//! observation, and sleeps on tokio timers until `poll_timeout`, the
//! workload's next write or the next status sample. SIGTERM (or SIGINT)
//! ends it cleanly, after a `final` line; SIGKILL ends it anywhere.
//!
//! Invariant: nothing here decides protocol behaviour: sessions, timers,
//! peer choice and write-ahead are the engine's; the config, the workload
//! and the read choices come from the plan and the seed, as in the
//! simulator (the same functions build them).

use super::clock::Epoch;
use super::log::{Entry, Line};
use super::transport::{self, Outgoing};
use super::{RealError, io_error};
use crate::rng::SimRng;
use crate::spec::RunSpec;
use crate::workload;
use scx_engine::node::Output;
use scx_engine::{Node, NodeId};
use scx_store::{FileStore, Store};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// How often a supervised node checks that its supervisor still runs.
const PARENT_CHECK: Duration = Duration::from_millis(200);
/// A timer "never": the loop wakes at least this often anyway.
const IDLE: Duration = Duration::from_secs(3600);

/// Everything one node process needs.
#[derive(Clone, Debug)]
pub struct NodeSetup {
    /// The run plan (the node uses its config, workload and timing).
    pub spec: RunSpec,
    /// This node.
    pub id: u32,
    /// Where it accepts its peers' connections.
    pub listen: SocketAddr,
    /// Where it dials each peer (in a cluster, that link's proxy).
    pub peers: BTreeMap<u32, SocketAddr>,
    /// Its data directory: the log, the boot count, the observations.
    pub data: PathBuf,
    /// The run's epoch.
    pub epoch: Epoch,
    /// The supervisor's pid: the node dies with it.
    pub supervisor: Option<i32>,
}

/// Runs the node until SIGTERM, SIGINT or its supervisor's death.
pub fn run(setup: NodeSetup) -> Result<(), RealError> {
    if let Some(supervisor) = setup.supervisor {
        die_with(supervisor);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("start the runtime for", &setup.data))?;
    runtime.block_on(serve(setup))
}

/// Asks the kernel to SIGKILL this process when its parent dies, and exits
/// at once if the parent already did (the race before the request).
fn die_with(supervisor: i32) {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    if nix::unistd::getppid().as_raw() != supervisor {
        std::process::exit(3);
    }
}

/// The node's open files and its engine.
pub(super) struct RealNode {
    pub(super) id: u32,
    pub(super) spec: RunSpec,
    pub(super) engine: Node<scx_engine::World>,
    store: FileStore,
    log: ObservationLog,
    /// The node's own stream (reads after sessions), as in the simulator.
    pub(super) rng: SimRng,
    outgoing: Outgoing,
}

async fn serve(setup: NodeSetup) -> Result<(), RealError> {
    std::fs::create_dir_all(&setup.data).map_err(io_error("create", &setup.data))?;
    let boot = next_boot(&setup.data)?;
    let mut log = ObservationLog::open(&setup.data.join("observations.jsonl"), setup.id, setup.epoch)?;
    let listener = tokio::net::TcpListener::bind(setup.listen)
        .await
        .map_err(io_error("listen on", Path::new(&setup.listen.to_string())))?;
    let incoming = transport::listen(listener);
    let outgoing = Outgoing::start(setup.id, &setup.peers);
    let mut store = FileStore::open(setup.data.join("log"))?;
    let config = crate::node_config::node_config(&setup.spec, setup.id, boot, false);
    let recovered = store.load().map_err(|error| error.to_string()).and_then(|recovered| {
        let opened = Node::recover(scx_engine::World, config, &recovered, setup.epoch.elapsed_ns());
        opened.map_err(|error| error.to_string())
    });
    let (engine, report) = match recovered {
        Ok(opened) => opened,
        Err(error) => {
            log.write(Entry::RecoveryFailed { error })?;
            return idle(&setup).await;
        }
    };
    let rng = SimRng::new(setup.spec.seed, "node", u64::from(setup.id) << 32 | u64::from(boot));
    let mut node = RealNode { id: setup.id, spec: setup.spec.clone(), engine, store, log, rng, outgoing };
    // Recovery's own writes (a rejoin record) go first.
    node.drive()?;
    let status = node.status();
    let frontier = super::log::tips(&node.engine.replica().author_tips());
    node.log.write(Entry::Booted {
        boot,
        lanes: report.lanes,
        frontier,
        status,
        torn_tail_bytes: report.torn_tail_bytes,
        corruption_detected: report.corruption_detected,
        rejoining: node.engine.is_rejoining(),
    })?;
    eprintln!("n{}: boot {boot}, {} lanes recovered, listening on {}", setup.id, report.lanes, setup.listen);
    node.run(incoming, &setup, boot).await
}

/// A node that could not recover waits to be stopped.
async fn idle(setup: &NodeSetup) -> Result<(), RealError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(io_error("handle SIGTERM in", &setup.data))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io_error("handle SIGINT in", &setup.data))?;
    tokio::select! {
        _ = terminate.recv() => Ok(()),
        _ = interrupt.recv() => Ok(()),
    }
}

/// Counts this start in the data directory's `boots` file: 1 is the first.
fn next_boot(data: &Path) -> Result<u32, RealError> {
    let path = data.join("boots");
    let before = std::fs::read_to_string(&path).ok().and_then(|text| text.trim().parse::<u32>().ok()).unwrap_or(0);
    std::fs::write(&path, format!("{}\n", before + 1)).map_err(io_error("write", &path))?;
    Ok(before + 1)
}

impl RealNode {
    async fn run(
        mut self,
        mut incoming: tokio::sync::mpsc::Receiver<(u32, Vec<u8>)>,
        setup: &NodeSetup,
        boot: u32,
    ) -> Result<(), RealError> {
        let mut terminate = signal(SignalKind::terminate()).map_err(io_error("handle SIGTERM in", &setup.data))?;
        let mut interrupt = signal(SignalKind::interrupt()).map_err(io_error("handle SIGINT in", &setup.data))?;
        let mut workload = Workload::new(&self.spec, self.id, boot, setup.epoch.elapsed_ns());
        let sample_ns = self.spec.sample_interval.as_nanos().max(1) as u64;
        let epoch = setup.epoch;
        // The next sample's index: kept across iterations, so another input
        // winning the race at a sample time delays that sample, never skips it.
        let mut next_k = epoch.elapsed_ns() / sample_ns + 1;
        loop {
            // Earlier is harmless, and a floor keeps a due timeout from spinning.
            let timer = self.engine.poll_timeout().map_or(IDLE, |at| epoch.until(at).max(Duration::from_millis(1)));
            let write = workload.due_ns.map_or(IDLE, |at| epoch.until(at).max(workload::MIN_SLEEP));
            let sample = epoch.until(next_k * sample_ns);
            let orphaned = setup.supervisor.is_some_and(|pid| nix::unistd::getppid().as_raw() != pid);
            if orphaned {
                return Ok(());
            }
            tokio::select! {
                Some((from, bytes)) = incoming.recv() => {
                    self.engine.handle_datagram(epoch.elapsed_ns(), NodeId(from), &bytes);
                    self.drive()?;
                }
                () = tokio::time::sleep(timer) => {
                    self.engine.handle_timeout(epoch.elapsed_ns());
                    self.drive()?;
                }
                () = tokio::time::sleep(write), if workload.due_ns.is_some() => {
                    let now = epoch.elapsed_ns();
                    let in_time = now < workload.end_ns;
                    workload.advance(now);
                    // A replacement neither writes nor serves reads until it rejoined.
                    if in_time && !self.engine.is_rejoining() {
                        self.write_lane(&mut workload.rng, epoch.elapsed_ns())?;
                        let key = workload::read_key(&mut workload.rng, &self.spec.workload);
                        self.read(key)?;
                        self.drive()?;
                    }
                }
                () = tokio::time::sleep(sample) => {
                    self.sample(next_k)?;
                    // After a pause (SIGSTOP) the missed samples are gone, not made up.
                    next_k = (epoch.elapsed_ns() / sample_ns + 1).max(next_k + 1);
                }
                () = tokio::time::sleep(PARENT_CHECK), if setup.supervisor.is_some() => {}
                _ = terminate.recv() => return self.finish(),
                _ = interrupt.recv() => return self.finish(),
            }
        }
    }

    /// Drains the engine's outputs per the run-loop contract. A persist the
    /// store refuses ends the node: its memory is ahead of its disk.
    pub(super) fn drive(&mut self) -> Result<(), RealError> {
        while let Some(output) = self.engine.poll() {
            match output {
                Output::Persist(persist) => {
                    if let Err(error) = scx_store::persist(&mut self.store, &persist.op) {
                        self.log.write(Entry::StoreFailed { error: error.to_string() })?;
                        return Err(RealError::Store(error));
                    }
                    self.engine.persisted(persist.token);
                }
                Output::Transmit(transmit) => {
                    // A full queue drops the datagram, as a network would.
                    let _ = self.outgoing.send(transmit.to.0, transmit.bytes);
                }
                Output::Event(event) => self.report(event)?,
            }
        }
        Ok(())
    }

    /// Appends one line to the observation log.
    pub(super) fn log(&mut self, entry: Entry) -> Result<(), RealError> {
        self.log.write(entry)
    }

    fn write_lane(&mut self, rng: &mut SimRng, now_ns: u64) -> Result<(), RealError> {
        let ops = workload::next_ops(rng, &self.spec.workload, self.engine.state());
        match self.engine.write(now_ns, ops) {
            Ok(id) => {
                // Logged before it is durable: if the node dies between the
                // fsync and the acknowledgement, the model still knows the lane.
                let lane = self.engine.replica().lane(&id).map(super::log::lane_hex);
                if let Some(lane) = lane {
                    self.log(Entry::Authored { lane })?;
                }
            }
            Err(error) => self.log(Entry::WriteRefused { error: error.to_string() })?,
        }
        // The acknowledgement (`Written`) comes out once the lane is durable.
        self.drive()
    }

    /// Reads one key and logs what it returned and what the node held.
    pub(super) fn read(&mut self, key: u32) -> Result<(), RealError> {
        let value = crate::node::read_value(self.engine.state(), key);
        let frontier = super::log::tips(&self.engine.replica().author_tips());
        self.log(Entry::Read { key, value: (&value).into(), frontier })
    }

    /// The node's hashes and position.
    pub(super) fn status(&mut self) -> super::log::Status {
        let status = self.engine.status();
        super::log::Status {
            lane_index: status.lane_index,
            chain_hash: status.chain_hash,
            state_digest: status.state_digest,
            snapshot_index: status.snapshot_index,
        }
    }

    fn sample(&mut self, k: u64) -> Result<(), RealError> {
        let status = self.status();
        let frontier = super::log::tips(&self.engine.replica().author_tips());
        self.log(Entry::Sample { k, status, frontier })
    }

    fn finish(mut self) -> Result<(), RealError> {
        let status = self.status();
        let replica = self.engine.replica();
        let metrics = replica.metrics();
        let entry = Entry::Final {
            status,
            frontier: super::log::tips(&replica.author_tips()),
            lineage: replica.snapshots().lineage().collect(),
            latest_snapshot_error: replica
                .snapshots()
                .latest()
                .and_then(|latest| latest.verify(replica.law()).err())
                .map(|error| error.to_string()),
            replica: super::log::ReplicaCounters {
                rollbacks: metrics.rollbacks,
                conflicts: metrics.conflicts,
                lanes_pruned: metrics.lanes_pruned,
                lanes_pended: metrics.lanes_pended,
                lanes_released: metrics.lanes_released,
            },
        };
        self.log(entry)
    }
}

/// The workload's schedule: the simulator's Poisson process on an absolute
/// schedule from the boot, writing until the end of the faulty phase.
struct Workload {
    rng: SimRng,
    spec: crate::spec::WorkloadSpec,
    due: f64,
    end_ns: u64,
    /// When the next lane is due (ns after the epoch), if one is.
    due_ns: Option<u64>,
}

impl Workload {
    fn new(spec: &RunSpec, node: u32, boot: u32, now_ns: u64) -> Self {
        let rng = SimRng::new(spec.seed, "workload", u64::from(node) << 32 | u64::from(boot));
        let end_ns = spec.duration.as_nanos() as u64;
        let mut workload = Self { rng, spec: spec.workload.clone(), due: now_ns as f64, end_ns, due_ns: None };
        workload.schedule();
        workload
    }

    fn schedule(&mut self) {
        let gap = workload::next_delay_secs(&mut self.rng, &self.spec);
        self.due += gap * 1e9;
        self.due_ns = (gap.is_finite() && self.due < self.end_ns as f64).then_some(self.due as u64);
    }

    /// The lane that was due is written now: schedule the next (none past the end).
    fn advance(&mut self, now_ns: u64) {
        self.schedule();
        if now_ns >= self.end_ns {
            self.due_ns = None;
        }
    }
}

/// The observation log: JSON lines, flushed per line.
struct ObservationLog {
    file: BufWriter<File>,
    path: PathBuf,
    node: u32,
    epoch: Epoch,
}

impl ObservationLog {
    fn open(path: &Path, node: u32, epoch: Epoch) -> Result<Self, RealError> {
        let file = OpenOptions::new().create(true).append(true).open(path).map_err(io_error("open", path))?;
        Ok(Self { file: BufWriter::new(file), path: path.to_path_buf(), node, epoch })
    }

    fn write(&mut self, entry: Entry) -> Result<(), RealError> {
        let line = Line { t_ns: self.epoch.elapsed_ns(), node: self.node, entry };
        let mut text = serde_json::to_string(&line).expect("a log line serialises: plain values only");
        text.push('\n');
        let path = &self.path;
        self.file.write_all(text.as_bytes()).and_then(|()| self.file.flush()).map_err(io_error("write", path))
    }
}
