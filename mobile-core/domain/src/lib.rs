//! swt-domain: the part of Smart Warehouse Traceability that scanners and server share,
//! with no I/O.
//!
//! GS1 parsing (`gs1`), the scan and reference-data model (`model`), the task document
//! (`doc`, with the vetting of incoming sync messages), the scan rules (`rules`), the
//! binary sync batch (`wire`), and the JSON types of the device-facing REST API (`api`)
//! exist here once. The Android scanner (through `swt-core`) and the server both depend on
//! this crate; it depends on neither, touches no file, socket or clock of its own, and the
//! compiler keeps it so: nothing here may name the device store, the sync client or the
//! database.

pub mod api;
pub mod codes;
pub mod doc;
pub mod gs1;
pub mod model;
pub mod rules;
pub mod unit;
pub mod wire;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
