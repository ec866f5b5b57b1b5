//! swt-core: the shared core of Smart Warehouse Traceability.
//!
//! The domain modules (`gs1`, `model`, `doc`, `rules`, `wire`) do no I/O, so the Android
//! scanner and the server run exactly the same parsing, document schema and rules.
//! Device-only parts (`store`, `session`, the `sync` client, the `ffi` surface) sit beside
//! them and depend on them, never the reverse.

pub mod doc;
pub mod ffi;
pub mod gs1;
pub mod model;
pub mod rules;
pub mod session;
pub mod store;
pub mod sync;
pub mod wire;

uniffi::setup_scaffolding!();
