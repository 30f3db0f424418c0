//! The model crate's integration suite, linked once: the engine judged by
//! the model over generated histories, and the tidy check that keeps the
//! model independent.

mod support;

mod durable;
mod replica;
mod tidy;
