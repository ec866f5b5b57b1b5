//! On-CPU time of the calling thread, so a bench on a busy shared machine can report the
//! work it did next to the wall-clock time it waited. Include it with
//! `#[path = "support/cpu.rs"] mod cpu;`.

// Each bench uses only some of the helpers.
#![allow(dead_code)]

/// Nanoseconds this thread has run on a CPU (Linux `/proc/thread-self/schedstat`), or
/// None where that file does not exist.
pub fn thread_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Runs `f` and returns its result with the thread's on-CPU seconds it took (None if
/// unknown).
pub fn timed<R>(f: impl FnOnce() -> R) -> (R, Option<f64>) {
    let before = thread_ns();
    let r = f();
    let cpu = match (before, thread_ns()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / 1e9),
        _ => None,
    };
    (r, cpu)
}
