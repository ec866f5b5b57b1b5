//! Which identifiers an EPCIS event names, and in which role (`epc`, `parent`, `child`).
use sea_orm::entity::prelude::*;

/// `role` of an identifier in the event's `epcList` (or `quantityList`).
pub const ROLE_EPC: &str = "epc";
/// `role` of an aggregation event's `parentID`.
pub const ROLE_PARENT: &str = "parent";
/// `role` of an identifier in an aggregation event's `childEPCs`.
pub const ROLE_CHILD: &str = "child";

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
