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
    pub state: ReturnState,
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

/// Where a returned pack's verification stands (`return_verification.state`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum ReturnState {
    /// Not decided yet (never asked, or the responder could not be reached).
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Verified with nothing to add: back to sellable stock.
    #[sea_orm(string_value = "sellable")]
    Sellable,
    /// Verified with additional information: held for review.
    #[sea_orm(string_value = "review")]
    Review,
    /// Not verified: quarantined.
    #[sea_orm(string_value = "quarantined")]
    Quarantined,
}

impl ReturnState {
    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnState::Pending => "pending",
            ReturnState::Sellable => "sellable",
            ReturnState::Review => "review",
            ReturnState::Quarantined => "quarantined",
        }
    }
}

impl std::fmt::Display for ReturnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
