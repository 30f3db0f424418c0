//! The node processes of a real cluster. Each runs `scx node` in its own
//! process group, with stdin closed and its output in its data directory.
//! Crashes are SIGKILL, pauses SIGSTOP and SIGCONT (nix), a clean stop is
//! SIGTERM and then SIGKILL after a grace period.
//!
//! Invariant: no node outlives the supervisor. Every child is spawned with
//! kill-on-drop, [`Children`]'s `Drop` SIGKILLs every process group left
//! (on an error, a panic or an interrupt), and each node asks the kernel to
//! SIGKILL it when the supervisor dies (so even a SIGKILLed supervisor
//! leaves no orphan), and checks its parent at startup and while it runs.

use super::{RealError, io_error};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long the nodes have to write their final lines after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The node processes, by node index.
#[derive(Debug)]
pub struct Children {
    program: PathBuf,
    /// Each node's command-line arguments (after the program).
    arguments: Vec<Vec<String>>,
    /// Each node's data directory.
    data: Vec<PathBuf>,
    running: Vec<Option<Child>>,
    paused: Vec<bool>,
}

impl Children {
    /// No process yet; `arguments[i]` starts node i.
    pub fn new(program: PathBuf, arguments: Vec<Vec<String>>, data: Vec<PathBuf>) -> Self {
        let nodes = arguments.len();
        Self { program, arguments, data, running: (0..nodes).map(|_| None).collect(), paused: vec![false; nodes] }
    }

    /// Starts node `node` (again, after a crash: on the same data directory).
    pub fn spawn(&mut self, node: u32) -> Result<u32, RealError> {
        let index = node as usize;
        std::fs::create_dir_all(&self.data[index]).map_err(io_error("create", &self.data[index]))?;
        let output = self.data[index].join("stderr.log");
        let file = OpenOptions::new().create(true).append(true).open(&output).map_err(io_error("open", &output))?;
        let copy = file.try_clone().map_err(io_error("open", &output))?;
        let child = Command::new(&self.program)
            .args(&self.arguments[index])
            .stdin(Stdio::null())
            .stdout(Stdio::from(copy))
            .stderr(Stdio::from(file))
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(io_error("start", &self.program))?;
        let pid = child.id().unwrap_or(0);
        self.running[index] = Some(child);
        self.paused[index] = false;
        Ok(pid)
    }

    /// SIGKILLs node `node` and waits for it; false if it was not running.
    pub async fn crash(&mut self, node: u32) -> bool {
        let Some(mut child) = self.running[node as usize].take() else { return false };
        signal_group(&child, Signal::SIGKILL);
        let _ = child.wait().await;
        self.paused[node as usize] = false;
        true
    }

    /// SIGSTOPs node `node`; false if it was not running.
    pub fn pause(&mut self, node: u32) -> bool {
        let Some(child) = &self.running[node as usize] else { return false };
        signal_group(child, Signal::SIGSTOP);
        self.paused[node as usize] = true;
        true
    }

    /// SIGCONTs node `node` if it is paused.
    pub fn resume(&mut self, node: u32) -> bool {
        let (Some(child), true) = (&self.running[node as usize], self.paused[node as usize]) else { return false };
        signal_group(child, Signal::SIGCONT);
        self.paused[node as usize] = false;
        true
    }

    /// Whether node `node` runs and is not paused.
    pub fn is_up(&self, node: u32) -> bool {
        self.running[node as usize].is_some() && !self.paused[node as usize]
    }

    /// Nodes that ended by themselves since the last call, with how.
    pub fn exited(&mut self) -> Vec<(u32, ExitStatus)> {
        let mut ended = Vec::new();
        for (index, slot) in self.running.iter_mut().enumerate() {
            if let Some(Ok(Some(status))) = slot.as_mut().map(Child::try_wait) {
                *slot = None;
                ended.push((index as u32, status));
            }
        }
        ended
    }

    /// Stops every node: SIGCONT and SIGTERM, so each writes its final
    /// line, then SIGKILL for any still running after the grace period.
    /// Returns the nodes that stopped cleanly.
    pub async fn stop_all(&mut self) -> Vec<u32> {
        for child in self.running.iter().flatten() {
            signal_group(child, Signal::SIGCONT);
            if let Some(pid) = child.id() {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
        }
        // One grace period for all of them: they were all signalled at once.
        let deadline = super::clock::monotonic_now() + STOP_GRACE;
        let mut clean = Vec::new();
        for (index, slot) in self.running.iter_mut().enumerate() {
            let Some(mut child) = slot.take() else { continue };
            match tokio::time::timeout_at(deadline, child.wait()).await {
                Ok(Ok(status)) if status.success() => clean.push(index as u32),
                Ok(_) => {}
                Err(_) => {
                    signal_group(&child, Signal::SIGKILL);
                    let _ = child.wait().await;
                }
            }
        }
        clean
    }

    /// SIGKILLs every node at once (an interrupt or an error).
    pub async fn kill_all(&mut self) {
        for slot in &mut self.running {
            if let Some(mut child) = slot.take() {
                signal_group(&child, Signal::SIGKILL);
                let _ = child.wait().await;
            }
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in self.running.iter().flatten() {
            signal_group(child, Signal::SIGKILL);
        }
    }
}

/// Sends `signal` to the child's process group (it leads its own).
fn signal_group(child: &Child, signal: Signal) {
    if let Some(pid) = child.id() {
        let _ = killpg(Pid::from_raw(pid as i32), signal);
    }
}
