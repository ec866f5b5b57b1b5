//! The swt database schema as an ordered list of migrations.
//!
//! Applied migrations are never edited: every change to the schema is a new file
//! `mYYYYMMDD_HHMMSS_name.rs` (the file name is the migration's recorded name).
//! Every migration runs on both SQLite and PostgreSQL.

pub use sea_orm_migration::MigrationStatus;
pub use sea_orm_migration::prelude::*;

mod m20261124_000001_identity_and_products;
mod m20261124_000002_auth_tasks_sync;
mod m20261124_100000_projection;
mod m20261124_200000_document_changes;
mod m20261125_000001_verification;
mod m20261125_100000_trace_object_holds;
mod m20261125_110000_drop_unread_event_indexes;
mod m20261125_120000_partial_parent_index;
mod m20261206_000001_refusals_once;
mod m20261206_100000_login_throttle;
mod m20261206_300000_return_verification_binding;
mod m20261207_000001_reference_data;
mod m20261208_000001_site_time_zone;
mod m20261209_000001_console;
mod m20261210_000001_stock_level;
mod m20261210_000002_device_unsent;
mod m20261210_000003_trace_object_gtin_lot;
mod m20261211_000001_erp_intake;
mod m20261212_000001_outbox;

pub use m20261125_100000_trace_object_holds::MARK_HOLDERS;

/// The list of all migrations, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_identity_and_products::Migration),
            Box::new(m20261124_000002_auth_tasks_sync::Migration),
            Box::new(m20261124_100000_projection::Migration),
            Box::new(m20261124_200000_document_changes::Migration),
            Box::new(m20261125_000001_verification::Migration),
            Box::new(m20261125_100000_trace_object_holds::Migration),
            Box::new(m20261125_110000_drop_unread_event_indexes::Migration),
            Box::new(m20261125_120000_partial_parent_index::Migration),
            Box::new(m20261206_000001_refusals_once::Migration),
            Box::new(m20261206_100000_login_throttle::Migration),
            Box::new(m20261206_300000_return_verification_binding::Migration),
            Box::new(m20261207_000001_reference_data::Migration),
            Box::new(m20261208_000001_site_time_zone::Migration),
            Box::new(m20261209_000001_console::Migration),
            Box::new(m20261210_000001_stock_level::Migration),
            Box::new(m20261210_000002_device_unsent::Migration),
            Box::new(m20261210_000003_trace_object_gtin_lot::Migration),
            Box::new(m20261211_000001_erp_intake::Migration),
            Box::new(m20261212_000001_outbox::Migration),
        ]
    }
}
