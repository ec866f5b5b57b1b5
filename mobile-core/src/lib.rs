//! swt-core: the shared core of Smart Warehouse Traceability.
//!
//! The domain modules (`gs1`, `model`, `doc`, and later `rules`) do no I/O, so the
//! Android scanner and the server run exactly the same parsing and rules. Device-only
//! parts (`store`, the sync client, the FFI surface) sit beside them and depend on them.

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
