//! swt-bench: the tools that measure swt, kept out of the product (`swt`) so that none of
//! them is in a validated binary's scope. The library holds the trace benchmark
//! ([`trace`]); the binary `swt-bench` wires its commands (`trace`, `simulate`) to it.

pub mod trace;
