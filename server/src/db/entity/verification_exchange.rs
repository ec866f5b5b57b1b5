//! The audit record of one LMS exchange, inbound or outbound.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_exchange")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub pk: i64,
    pub organisation_id: Option<String>,
    /// `inbound` or `outbound`.
    pub direction: String,
    pub corr_uuid: Option<String>,
    pub requestor_gln: Option<String>,
    pub responder_gln: Option<String>,
    pub peer_url: Option<String>,
    pub context: Option<String>,
    pub gtin: Option<String>,
    pub lot: Option<String>,
    pub serial: Option<String>,
    pub expiry: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub request: String,
    pub http_status: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    pub verified: Option<bool>,
    pub failure_reason: Option<String>,
    pub additional_info: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    pub scan_id: Option<String>,
    pub started_at_ms: i64,
    pub duration_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
