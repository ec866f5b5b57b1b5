//! Serialized packs per organisation, GTIN, lot, expiry, status, site and location, kept
//! by the database's triggers on `trace_object` (see the migration). Absent values are
//! `''`; a zero count keeps its row.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stock_level")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub gtin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub lot: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub expiry: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub status: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub site_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub location: String,
    pub units: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
