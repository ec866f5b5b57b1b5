//! swt-core: the scanner side of Smart Warehouse Traceability.
//!
//! The domain (`gs1`, `model`, `doc`, `rules`, `wire`, `api`) lives in the I/O-free
//! `swt-domain` crate, shared with the server, and is re-exported here so the scanner app
//! and the Kotlin API see one crate. This crate adds what only a device has: its store on
//! disk (`store`), the sync client (`sync`), the session that ties scanning, rules and
//! sync together (`session`), and the UniFFI surface (`ffi`).

pub use swt_domain::{api, codes, doc, gs1, model, rules, unit, wire};

pub mod ffi;
pub mod session;
pub mod store;
pub mod sync;

uniffi::setup_scaffolding!();
