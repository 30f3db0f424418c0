//! `scx cluster`: the supervisor of a real run. It starts the plan's nodes
//! as `scx node` processes on 127.0.0.1 (free ports), puts the fault proxy
//! on every directed link, and carries out the fault schedule on the wall
//! clock: partitions and network changes at the proxy, crashes as SIGKILL
//! and a restart on the same data directory at the heal, pauses as SIGSTOP
//! and SIGCONT. After the last heal it watches the nodes' status samples
//! and stops as soon as every live node holds one status (or at the settle
//! bound), then stops the nodes cleanly so each writes its final state.
//!
//! Invariant: a run lasts at most the plan's run time (plus one sample
//! interval) and then [`super::children::STOP_GRACE`] for the nodes to
//! stop, and leaves no process behind (see `children.rs`); Ctrl-C, SIGTERM
//! and SIGHUP end every node first.

use super::children::Children;
use super::clock::Epoch;
use super::log::{Entry, Line, Status};
use super::proxy::{Proxy, ProxyCounters};
use super::{RealError, io_error};
use crate::spec::{FaultKind, RunSpec};
use std::collections::BTreeMap;
use std::io::{Read as _, Seek as _, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// What to run, and where.
#[derive(Clone, Debug)]
pub struct ClusterSetup {
    /// The plan (sim-only keys already left out).
    pub spec: RunSpec,
    /// The scenario file the nodes read.
    pub scenario: PathBuf,
    /// The run's directory: one data directory per node.
    pub out: PathBuf,
    /// The `scx` binary that runs `scx node`.
    pub program: PathBuf,
}

/// Something the supervisor did, at a time since the epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happening {
    /// A fault of the plan started (`healed` false) or healed.
    Fault {
        /// Its index in the plan.
        index: usize,
        /// It healed.
        healed: bool,
    },
    /// A node was SIGKILLed.
    Crashed(u32),
    /// A node was started again on its data directory.
    Restarted(u32),
    /// A node was SIGSTOPped.
    Paused(u32),
    /// A node was SIGCONTed.
    Resumed(u32),
    /// A node ended by itself (not asked to).
    Exited {
        /// The node.
        node: u32,
        /// How.
        status: String,
    },
}

/// How the supervisor stopped the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Every live node held one status at this sample after the last heal.
    Agreed {
        /// The sample.
        k: u64,
    },
    /// The settle bound passed.
    Settled,
    /// A signal (its number) ended it.
    Interrupted(i32),
}

/// What the supervisor saw.
#[derive(Clone, Debug)]
pub struct ClusterRun {
    /// The run's epoch.
    pub epoch: Epoch,
    /// Its happenings, in order, stamped in ns since the epoch.
    pub happenings: Vec<(u64, Happening)>,
    /// When it stopped the nodes (ns since the epoch).
    pub ended_at_ns: u64,
    /// Why.
    pub stop: Stop,
    /// The proxy's counters.
    pub proxy: ProxyCounters,
    /// The data directory of each node.
    pub data: Vec<PathBuf>,
}

/// Runs the cluster and returns what happened (the verdict is `collect`'s).
pub fn run(setup: &ClusterSetup) -> Result<ClusterRun, RealError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io_error("start the runtime for", &setup.out))?;
    runtime.block_on(supervise(setup))
}

async fn supervise(setup: &ClusterSetup) -> Result<ClusterRun, RealError> {
    let spec = &setup.spec;
    let addresses = free_ports(spec.nodes as usize)?;
    let proxy = Proxy::start(spec, &addresses).await.map_err(io_error("bind the proxy on", Path::new("127.0.0.1")))?;
    let epoch = Epoch::now();
    let data: Vec<PathBuf> = (0..spec.nodes).map(|node| setup.out.join(format!("n{node}"))).collect();
    let arguments = (0..spec.nodes).map(|node| node_arguments(setup, node, &addresses, &proxy, epoch)).collect();
    let mut children = Children::new(setup.program.clone(), arguments, data.clone());
    let mut happenings = Vec::new();
    for node in 0..spec.nodes {
        let pid = children.spawn(node)?;
        eprintln!("cluster: n{node} pid {pid} on {}", addresses[node as usize]);
    }
    let mut schedule = steps(spec);
    schedule.reverse();
    let mut monitor = Monitor::new(&data);
    let mut terminate = signal(SignalKind::terminate()).map_err(io_error("handle SIGTERM in", &setup.out))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(io_error("handle SIGINT in", &setup.out))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(io_error("handle SIGHUP in", &setup.out))?;
    let quiescent_ns = spec.quiescent_at().as_nanos() as u64;
    let end_ns = spec.run_time().as_nanos() as u64;
    let stop = loop {
        let next_step = schedule.last().map_or(Duration::from_secs(3600), |(at, _, _)| epoch.until(*at));
        tokio::select! {
            () = tokio::time::sleep(next_step), if !schedule.is_empty() => {
                let Some((_, heal, index)) = schedule.pop() else { continue };
                apply(spec, index, heal, &proxy, &mut children, &mut happenings, epoch).await?;
            }
            () = tokio::time::sleep(spec.sample_interval) => {
                for (node, status) in children.exited() {
                    eprintln!("cluster: n{node} exited by itself ({status})");
                    happenings.push((epoch.elapsed_ns(), Happening::Exited { node, status: status.to_string() }));
                }
                monitor.read_new();
                let live: Vec<u32> = (0..spec.nodes).filter(|node| children.is_up(*node)).collect();
                let paused = (0..spec.nodes).any(|node| !children.is_up(node) && !schedule_keeps_down(spec, node));
                if schedule.is_empty() && !paused
                    && let Some(k) = monitor.agreed_since(&live, quiescent_ns.div_ceil(spec.sample_interval.as_nanos().max(1) as u64))
                {
                    break Stop::Agreed { k };
                }
                if epoch.elapsed_ns() >= end_ns {
                    break Stop::Settled;
                }
            }
            _ = terminate.recv() => break Stop::Interrupted(15),
            _ = interrupt.recv() => break Stop::Interrupted(2),
            _ = hangup.recv() => break Stop::Interrupted(1),
        }
    };
    let ended_at_ns = epoch.elapsed_ns();
    match stop {
        Stop::Interrupted(_) => children.kill_all().await,
        _ => {
            children.stop_all().await;
        }
    }
    Ok(ClusterRun { epoch, happenings, ended_at_ns, stop, proxy: proxy.counters(), data })
}

/// Whether the plan keeps `node` down to the end (a crash that never heals).
fn schedule_keeps_down(spec: &RunSpec, node: u32) -> bool {
    spec.down_at_end().contains(&node)
}

/// The schedule as (ns since the epoch, heal, fault index), heals before
/// starts at one instant, as the simulator's nemesis orders them.
fn steps(spec: &RunSpec) -> Vec<(u64, bool, usize)> {
    let mut steps = Vec::new();
    for (index, fault) in spec.faults.iter().enumerate() {
        steps.push((fault.start.as_nanos() as u64, false, index));
        if let Some(end) = fault.end {
            steps.push((end.as_nanos() as u64, true, index));
        }
    }
    steps.sort_by_key(|(at, heal, index)| (*at, !*heal, *index));
    steps
}

async fn apply(
    spec: &RunSpec,
    index: usize,
    heal: bool,
    proxy: &Proxy,
    children: &mut Children,
    happenings: &mut Vec<(u64, Happening)>,
    epoch: Epoch,
) -> Result<(), RealError> {
    let fault = &spec.faults[index];
    let verb = if heal { "healed" } else { "started" };
    eprintln!("cluster: {:.3}s {} {verb} {:?}", epoch.elapsed_ns() as f64 / 1e9, fault.kind.name(), fault.kind.nodes());
    happenings.push((epoch.elapsed_ns(), Happening::Fault { index, healed: heal }));
    match (&fault.kind, heal) {
        (FaultKind::Crash { nodes, .. }, false) => {
            for &node in nodes {
                if children.crash(node).await {
                    happenings.push((epoch.elapsed_ns(), Happening::Crashed(node)));
                }
            }
        }
        (FaultKind::Crash { nodes, .. }, true) => {
            for &node in nodes {
                if !children.is_up(node) {
                    children.spawn(node)?;
                    happenings.push((epoch.elapsed_ns(), Happening::Restarted(node)));
                }
            }
        }
        (FaultKind::Pause { nodes }, false) => {
            for &node in nodes {
                if children.is_up(node) && children.pause(node) {
                    happenings.push((epoch.elapsed_ns(), Happening::Paused(node)));
                }
            }
        }
        (FaultKind::Pause { nodes }, true) => {
            for &node in nodes {
                if children.resume(node) {
                    happenings.push((epoch.elapsed_ns(), Happening::Resumed(node)));
                }
            }
        }
        (kind, false) => proxy.start_fault(kind),
        (kind, true) => proxy.heal_fault(kind),
    }
    Ok(())
}

/// `scx node` arguments for `node`.
fn node_arguments(
    setup: &ClusterSetup,
    node: u32,
    addresses: &[SocketAddr],
    proxy: &Proxy,
    epoch: Epoch,
) -> Vec<String> {
    let spec = &setup.spec;
    let mut arguments = vec![
        "node".to_owned(),
        setup.scenario.display().to_string(),
        "--seed".to_owned(),
        spec.seed.to_string(),
        "--id".to_owned(),
        node.to_string(),
        "--listen".to_owned(),
        addresses[node as usize].to_string(),
        "--data".to_owned(),
        setup.out.join(format!("n{node}")).display().to_string(),
        "--epoch-unix-ns".to_owned(),
        epoch.unix_ns().to_string(),
        "--supervisor-pid".to_owned(),
        std::process::id().to_string(),
    ];
    for peer in (0..spec.nodes).filter(|peer| *peer != node) {
        if let Some(address) = proxy.address(node, peer) {
            arguments.extend(["--peer".to_owned(), format!("{peer}={address}")]);
        }
    }
    if let Some(bug) = spec.bug {
        arguments.extend(["--bug".to_owned(), bug.name().to_owned()]);
    }
    arguments
}

/// Free loopback ports, one per node (bound, read and released: a node
/// binds its port again after each restart, with SO_REUSEADDR).
fn free_ports(nodes: usize) -> Result<Vec<SocketAddr>, RealError> {
    let listeners: Vec<TcpListener> = (0..nodes)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(io_error("bind", Path::new("127.0.0.1:0"))))
        .collect::<Result<_, _>>()?;
    listeners.iter().map(|listener| listener.local_addr().map_err(io_error("bind", Path::new("127.0.0.1:0")))).collect()
}

/// Follows the nodes' logs for their status samples.
struct Monitor {
    logs: Vec<(PathBuf, u64, Vec<u8>)>,
    samples: BTreeMap<u64, BTreeMap<u32, Status>>,
}

impl Monitor {
    fn new(data: &[PathBuf]) -> Self {
        Self {
            logs: data.iter().map(|dir| (dir.join("observations.jsonl"), 0, Vec::new())).collect(),
            samples: BTreeMap::new(),
        }
    }

    /// Reads what the logs gained since the last call.
    fn read_new(&mut self) {
        for (path, offset, partial) in &mut self.logs {
            let Ok(mut file) = std::fs::File::open(&*path) else { continue };
            if file.seek(SeekFrom::Start(*offset)).is_err() {
                continue;
            }
            let mut fresh = Vec::new();
            let Ok(read) = file.read_to_end(&mut fresh) else { continue };
            *offset += read as u64;
            partial.extend_from_slice(&fresh);
            let complete = partial.iter().rposition(|byte| *byte == b'\n').map_or(0, |at| at + 1);
            for line in partial[..complete].split(|byte| *byte == b'\n') {
                if !line.windows(15).any(|window| window == b"\"kind\":\"sample\"") {
                    continue;
                }
                if let Ok(Line { node, entry: Entry::Sample { k, status, .. }, .. }) = serde_json::from_slice(line) {
                    self.samples.entry(k).or_default().insert(node, status);
                }
            }
            partial.drain(..complete);
        }
    }

    /// The first sample at or after `from_k` at which every node of `live`
    /// reported one status.
    fn agreed_since(&self, live: &[u32], from_k: u64) -> Option<u64> {
        self.samples.range(from_k..).find_map(|(k, statuses)| {
            let mut views = live.iter().map(|node| statuses.get(node).map(Status::view));
            let first = views.next()??;
            views.all(|view| view == Some(first)).then_some(*k)
        })
    }
}
