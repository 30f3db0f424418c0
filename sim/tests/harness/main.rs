//! The harness's integration suite, linked once.

mod smoke;
