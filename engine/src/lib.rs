//! The SCX sync engine.
