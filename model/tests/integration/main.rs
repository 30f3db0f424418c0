//! The model crate's integration suite, linked once: the engine judged by
//! the model over generated histories, the planted bugs that judgement must
//! find, and the tidy check that keeps the model independent.

mod support;

mod durable;
mod planted_bugs;
mod replica;
mod tidy;
