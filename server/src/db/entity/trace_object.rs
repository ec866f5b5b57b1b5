//! Current state of one serialized pack (`sgtin:…`) or container (`sscc:…`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trace_object")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub epc_key: String,
    pub kind: String,
    pub gtin: Option<String>,
    pub serial: Option<String>,
    pub sscc: Option<String>,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    pub site_id: Option<String>,
    pub location: Option<String>,
    pub status: String,
    pub parent_key: Option<String>,
    pub order_ref: Option<String>,
    pub last_event_time_ms: i64,
    pub last_scan_id: Option<String>,
    pub updated_at_ms: i64,
    /// Something was packed into it at some time (see the migration that added it).
    pub holds: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
