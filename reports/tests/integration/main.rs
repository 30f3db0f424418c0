//! The reports crate's integration suite, linked once.

mod pages;
