//! A serial the organisation holds manufacturer data for (LMS responder).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_serial")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub gtin: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub serial: String,
    pub lot: String,
    /// YYMMDD as printed (DD may be 00).
    pub expiry: String,
    /// `active`, `decommissioned`, `suspect` or `illegitimate`.
    pub status: String,
    pub source: String,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
