//! The engine's integration suite, linked once: each module is one property.

mod support;

mod convergence;
mod driver;
mod durable;
mod limits;
mod net;
mod pfuzz;
mod protocol;
mod rejection;
mod rejoin;
mod sessions;
mod snapshots;
mod transfer;
