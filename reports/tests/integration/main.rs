//! The reports crate's integration suite, linked once.

mod aggregate;
mod pages;
mod support;
