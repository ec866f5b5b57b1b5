//! Which identifiers an EPCIS event names, and in which role (`epc`, `parent`, `child`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "epcis_event_epc")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub event_pk: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub role: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub epc_key: String,
    pub organisation_id: String,
    pub event_time_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
