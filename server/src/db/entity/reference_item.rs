//! One entry of an organisation's reference data for the scanners, with the version that
//! last changed it (see `crate::reference`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reference_item")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    /// '' for entries that hold at every site of the organisation.
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key1: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key2: String,
    pub payload: String,
    pub version: i64,
    pub removed: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
