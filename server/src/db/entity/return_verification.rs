//! The verification record (and retry state) of one returned pack.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "return_verification")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scan_id: String,
    pub document_id: String,
    pub site_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub gtin: String,
    pub serial: String,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    /// `pending`, `sellable`, `quarantined` or `review`.
    pub state: String,
    pub verified: Option<bool>,
    pub failure_reason: Option<String>,
    pub additional_info: Option<String>,
    pub responder: Option<String>,
    pub exchange_pk: Option<i64>,
    pub attempts: i32,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub next_attempt_ms: i64,
    pub scanned_at_ms: i64,
    pub decided_at_ms: Option<i64>,
    /// When the decision's events, state and exception were written.
    pub applied_at_ms: Option<i64>,
    /// When the projection found the synced scan and this record bound to the same device,
    /// user, task and identifiers; a decision is applied only after.
    pub bound_at_ms: Option<i64>,
    /// The superseded binding and verdict (JSON) when the synced scan differed from what
    /// was verified: the record was then bound to the scan and verified afresh.
    #[sea_orm(column_type = "Text", nullable)]
    pub mismatch: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
