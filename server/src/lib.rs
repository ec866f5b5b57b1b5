//! swt-server: the central server of Smart Warehouse Traceability.
//!
//! The binary `swt` (see `main.rs`) only wires command-line arguments to the modules
//! here. Routes are thin; the logic sits in modules named by what they do.

pub mod app;
pub mod auth;
pub mod config;
pub mod console;
pub mod db;
pub mod demo;
pub mod epcis;
pub mod http;
pub mod metrics;
pub mod orders;
pub mod outbox;
pub mod projection;
pub mod reference;
pub mod returns;
pub mod serials;
pub mod state;
pub mod stock;
pub mod sync;
pub mod tasks;
pub mod telemetry;
pub mod trace;
pub mod verification;
