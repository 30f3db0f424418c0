//! Whose bug a panic is. A panic inside a seed is either the engine's (an
//! assertion or a bug of the system under test: a `panic` violation) or the
//! harness's own (a bug of the simulator, the checkers or the plan: never a
//! verdict on the engine). The panic hook records where each panic of a
//! seed thread happened; the runner reads it back on the same thread.
//!
//! Invariant: a panic is blamed on the engine only with evidence: its
//! location is in the engine's sources, or the innermost project frame of
//! its backtrace is an engine function. Anything else is a harness error.

use std::cell::{Cell, RefCell};
use std::sync::Once;

/// Who panicked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Culprit {
    /// The engine under test.
    Engine,
    /// The harness itself (or a dependency called from it).
    Harness,
}

/// A panic caught in a seed thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaughtPanic {
    /// Who panicked.
    pub culprit: Culprit,
    /// `file:line:column` of the panic.
    pub location: String,
    /// The panic message.
    pub message: String,
}

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST: RefCell<Option<CaughtPanic>> = const { RefCell::new(None) };
}

static INSTALL: Once = Once::new();

/// Installs the hook (once per process) and marks this thread as a seed
/// thread: its panics are recorded quietly instead of printed.
pub fn capture_on_this_thread() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CAPTURING.with(Cell::get) {
                previous(info);
                return;
            }
            let location = info.location().map_or_else(String::new, ToString::to_string);
            let message = payload_message(info.payload());
            let culprit = blame(&location, &std::backtrace::Backtrace::force_capture().to_string());
            LAST.with(|last| {
                // The first panic is the cause; later ones (madsim re-raising it) are not.
                last.borrow_mut().get_or_insert(CaughtPanic { culprit, location, message });
            });
        }));
    });
    CAPTURING.with(|capturing| capturing.set(true));
    LAST.with(|last| last.borrow_mut().take());
}

/// The first panic recorded on this thread since `capture_on_this_thread`.
pub fn take() -> Option<CaughtPanic> {
    LAST.with(|last| last.borrow_mut().take())
}

/// The message of a panic payload.
pub fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|message| (*message).to_owned()))
        .unwrap_or_else(|| "a panic with a non-string payload".to_owned())
}

/// Blames the engine when the panic's location is in its sources, or when
/// the innermost frame of this workspace in `backtrace` is an engine frame.
pub fn blame(location: &str, backtrace: &str) -> Culprit {
    let location = location.replace('\\', "/");
    if location.starts_with("engine/src/") || location.contains("/engine/src/") {
        return Culprit::Engine;
    }
    if location.starts_with("sim/src/") || location.contains("/sim/src/") {
        return Culprit::Harness;
    }
    for line in backtrace.lines() {
        let line = line.trim_start();
        if line.contains("scx_engine::") {
            return Culprit::Engine;
        }
        if line.contains("scx_sim::") || line.contains("scx_model::") || line.contains("scx_reports::") {
            return Culprit::Harness;
        }
    }
    Culprit::Harness
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_are_blamed_by_location_then_by_the_innermost_project_frame() {
        assert_eq!(blame("engine/src/replica.rs:10:5", ""), Culprit::Engine);
        assert_eq!(blame("/work/x/engine/src/dag.rs:1:1", ""), Culprit::Engine);
        assert_eq!(blame("sim/src/node.rs:10:5", "scx_engine::replica::x"), Culprit::Harness);
        let from_engine =
            "  0: std::panicking::begin_panic\n  5: scx_engine::dag::Dag::insert\n  9: scx_sim::node::pump";
        assert_eq!(blame("/rustc/abc/library/alloc/src/vec/mod.rs:1:1", from_engine), Culprit::Engine);
        let from_sim = "  3: scx_sim::checkers::replay::check_node\n  9: scx_engine::replica::Replica::status";
        assert_eq!(blame("/rustc/abc/library/core/src/option.rs:1:1", from_sim), Culprit::Harness);
        assert_eq!(blame("/root/.cargo/registry/madsim/src/x.rs:1:1", ""), Culprit::Harness);
    }
}
