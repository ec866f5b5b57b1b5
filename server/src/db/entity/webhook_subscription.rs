//! Where an organisation's outcomes are pushed, and how far delivery got.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_subscription")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    pub url: String,
    pub secret: String,
    pub kinds: String,
    pub state: String,
    pub delivered_seq: i64,
    pub attempts: i32,
    pub next_attempt_at_ms: i64,
    pub lease_until_ms: i64,
    pub last_error: Option<String>,
    pub last_attempt_at_ms: Option<i64>,
    pub last_delivered_at_ms: Option<i64>,
    pub created_by: String,
    pub created_at_ms: i64,
    pub removed_at_ms: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
