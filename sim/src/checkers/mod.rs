//! Invariant checkers, one file per property, named by kind as stateright
//! names them:
//!
//! | checker | kind | property |
//! | --- | --- | --- |
//! | `durability` | always | a node's log holds every lane it acknowledged, after every crash |
//! | `forks` | always | no author signs two different lanes with one seq |
//! | `replay` | always | a node's hashes equal a from-scratch replay of what it holds |
//! | `snapshots` | always | snapshots verify, and nodes agree on the id at every snapshot point |
//! | `convergence` | eventually | after the last heal, every live node reaches the same hashes, equal to the oracle's replay |
//! | `coverage` | sometimes | the faults actually bit (drops, crash losses, rollbacks...), reported per run |
//!
//! Every checker has a test that makes it fail (`sim/tests/`).

pub mod convergence;
pub mod coverage;
pub mod determinism;
pub mod durability;
pub mod forks;
pub mod replay;
pub mod snapshots;
