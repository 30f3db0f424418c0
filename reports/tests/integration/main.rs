//! The reports crate's integration suite, linked once.

mod aggregate;
mod comparison;
mod pages;
mod sections;
mod support;
