//! The process heap over a long campaign. Every seed runs on a fresh
//! thread (see `runner`), and glibc gives short-lived threads arenas of
//! their own that fragment, so a campaign's memory crept up with its length
//! (BENCHMARKS.md, "Campaign memory"). One arena, and free pages handed
//! back to the OS every few hundred seeds, keep it flat.
//!
//! These are the only `unsafe` blocks of the workspace: two calls that pass
//! integers to glibc's allocator tuning functions.

/// Asks glibc for a single malloc arena. Call first thing in `main`,
/// before any other thread exists.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "mallopt only tunes the allocator, and runs before any other thread exists")]
    // SAFETY: mallopt takes two integers and changes a tuning parameter; nothing else allocates concurrently yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns free heap pages to the OS (glibc's `malloc_trim`).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code, reason = "malloc_trim only releases free pages; it is thread-safe")]
    // SAFETY: malloc_trim takes an integer, locks the arenas itself and only releases memory no allocation uses.
    unsafe {
        libc::malloc_trim(0);
    }
}
