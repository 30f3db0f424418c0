//! The reports crate's integration suite, linked once.

mod aggregate;
mod charts;
mod comparison;
mod pages;
mod sections;
mod support;
