//! A task's Automerge document (a snapshot; the changes since are in
//! `task_document_change`, see `crate::tasks::documents`) with the columns lists and
//! filters need.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_document")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    pub site_id: String,
    pub kind: String,
    pub status: String,
    pub title: String,
    pub doc: Vec<u8>,
    pub version: i64,
    /// The version `doc` holds; later versions are rows of `task_document_change`.
    pub snapshot_version: i64,
    pub needs_projection: bool,
    pub scan_count: i32,
    pub created_by: String,
    /// The outbox event reporting this task's completion, once reported.
    pub completion_event: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
