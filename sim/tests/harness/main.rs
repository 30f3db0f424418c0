//! The harness's integration suite, linked once.

mod bugs;
mod campaign;
mod checkers;
mod cli;
mod scenarios;
mod smoke;
mod tidy;
