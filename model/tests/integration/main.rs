//! The model crate's integration suite, linked once: the tidy check that
//! keeps the model independent of the engine it judges.

mod tidy;
