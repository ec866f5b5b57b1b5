//! Device-local crash-safe persistence of task documents.
