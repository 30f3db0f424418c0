//! Memory held by a replica of 1,000,000 lanes of 4 small ops (target:
//! <= 1 GiB), measured with a counting allocator. Run:
//! `cargo bench -p scx-engine --bench memory`.

#![allow(unsafe_code, reason = "the counting allocator below; nothing else")]

mod support;

use scx_engine::{Replica, World};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the
// counters are plain atomics.
#[allow(
    unsafe_code,
    reason = "a counting global allocator must implement the unsafe GlobalAlloc trait; it only forwards to System"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let lanes_wanted: usize = std::env::var("SCX_BENCH_LANES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let mut replica = Replica::new(World, support::config(1));
    let before = CURRENT.load(Ordering::Relaxed);
    // The generator holds its own replica; measure ours by difference after
    // dropping everything else.
    let mut held = 0usize;
    support::lanes(lanes_wanted, |lane| {
        replica.insert(lane).unwrap();
        held += 1;
    });
    let status = replica.status();
    let after = CURRENT.load(Ordering::Relaxed);
    let generator_estimate = after - before;
    drop(replica);
    let without = CURRENT.load(Ordering::Relaxed);
    let replica_bytes = after - without;
    println!("lanes held: {held} (lane index {})", status.lane_index);
    println!(
        "replica memory: {replica_bytes} bytes = {:.1} MiB = {:.0} bytes/lane",
        replica_bytes as f64 / (1 << 20) as f64,
        replica_bytes as f64 / held as f64
    );
    println!(
        "process peak (generator + replica): {:.1} MiB; allocated while building: {:.1} MiB",
        PEAK.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
        generator_estimate as f64 / (1 << 20) as f64
    );
    println!("target: <= 1 GiB for 1,000,000 lanes: {}", if replica_bytes <= 1 << 30 { "met" } else { "MISSED" });
}
