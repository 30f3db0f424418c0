//! # The SCX simulation harness
//!
//! Many virtual SCX nodes run the real engine inside the seeded `madsim`
//! simulator, which injects latency, reordering, duplication, loss,
//! partitions, crashes, pauses, clock skew and storage faults. Invariant
//! checkers confirm safety during the run and convergence after the last
//! heal; every run reproduces from its seed.
//!
//! Data flow: a scenario file and a seed resolve to a [`spec::RunSpec`];
//! [`runner::run`] builds a [`world::World`] (disks, network model, oracle,
//! trace) and the nodes ([`node`]), the [`nemesis`] executes the fault
//! schedule, and the [`checkers`] judge the outcome.

pub mod bugs;
pub mod checkers;
pub mod cli;
pub mod fuzz;
pub mod heap;
pub mod hostile;
pub mod hunt;
pub mod manifest;
pub mod nemesis;
pub mod network;
pub mod node;
pub mod node_config;
pub mod node_state;
pub mod observation;
pub mod panics;
pub mod plan;
pub mod real;
pub mod record;
pub mod rng;
pub mod runner;
pub mod scenario;
pub mod shard;
pub mod spec;
pub mod storage;
pub mod trace;
pub mod workload;
pub mod world;
