//! The harness's integration suite, linked once.

mod bad_input;
mod bugs;
mod checkers;
mod cli;
mod scenarios;
mod smoke;
mod tidy;
