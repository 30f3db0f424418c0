//! The harness's integration suite, linked once.

mod bad_input;
mod bugs;
mod campaign;
mod checkers;
mod cli;
mod real;
mod scenarios;
mod smoke;
mod tidy;
