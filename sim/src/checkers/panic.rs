//! Always: the engine never panics. A panic whose location or innermost
//! project frame is in the engine is a violation; a panic of the harness is
//! a harness error instead (see `panics.rs`), never blamed on the engine.

use super::{Kind, Violation};

/// The violation for an engine panic.
pub fn violation(message: String) -> Violation {
    Violation { checker: "panic", kind: Kind::Always.name(), message, at_ns: 0, node: None }
}
