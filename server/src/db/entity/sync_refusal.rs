//! Sync messages the server refused, kept for the manager to see.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_refusal")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    pub document_id: String,
    pub device_id: String,
    pub user_id: String,
    pub reason: String,
    pub detail: String,
    /// First time refused.
    pub at: DateTimeUtc,
    /// Hash of the refused change (hex); the record's key with device, document, reason.
    pub change_hash: String,
    /// How many times the same change was refused.
    pub occurrences: i32,
    /// Last time refused.
    pub last_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
