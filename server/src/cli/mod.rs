//! Sub-commands of the `swt` binary: each only wires arguments to library calls.

pub mod gs1_check;
