//! A business exception the CRDT cannot see (double pick, double ship, …) for a manager.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trace_exception")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    pub site_id: Option<String>,
    pub kind: String,
    pub state: String,
    pub epc_key: Option<String>,
    pub dedup_key: String,
    #[sea_orm(column_type = "Text")]
    pub detail: String,
    pub created_at_ms: i64,
    pub resolved_at_ms: Option<i64>,
    pub resolved_by: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub resolution: Option<String>,
    /// The user working on it (console: assign).
    pub assigned_to: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
