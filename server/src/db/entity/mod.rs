//! sea-orm entities, one module per table. The schema itself lives in `swt-migrations`.

pub mod app_user;
pub mod device;
pub mod organisation;
pub mod product;
pub mod site;
