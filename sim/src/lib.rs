//! Placeholder: the simulation harness lands with issue 5.
