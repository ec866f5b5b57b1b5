//! A business outcome waiting to be read by ERPs (change feed) and pushed to webhooks.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub event_id: String,
    pub organisation_id: String,
    pub kind: String,
    pub stream: String,
    /// Delivery order, given after commit by the sequencer; `None` until then.
    pub seq: Option<i64>,
    pub occurred_at_ms: i64,
    pub sequenced_at_ms: Option<i64>,
    pub payload: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
