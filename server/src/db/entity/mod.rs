//! sea-orm entities, one module per table. The schema itself lives in `swt-migrations`.

pub mod app_user;
pub mod device;
pub mod epcis_event;
pub mod epcis_event_epc;
pub mod login_throttle;
pub mod organisation;
pub mod product;
pub mod projected_scan;
pub mod reference_item;
pub mod reference_version;
pub mod refresh_token;
pub mod return_verification;
pub mod signing_key;
pub mod site;
pub mod sync_refusal;
pub mod sync_state;
pub mod task_document;
pub mod task_document_change;
pub mod trace_exception;
pub mod trace_exception_scan;
pub mod trace_object;
pub mod verification_exchange;
pub mod verification_lot;
pub mod verification_partner;
pub mod verification_policy;
pub mod verification_serial;
