//! The scans an exception involves.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trace_exception_scan")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub exception_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scan_id: String,
    pub organisation_id: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
