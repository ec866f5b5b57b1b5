//! sea-orm entities, one module per table. The schema itself lives in `swt-migrations`.

pub mod app_user;
pub mod device;
pub mod login_failure;
pub mod organisation;
pub mod product;
pub mod refresh_token;
pub mod signing_key;
pub mod site;
pub mod sync_refusal;
pub mod sync_state;
pub mod task_document;
