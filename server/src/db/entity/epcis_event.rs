//! One stored EPCIS 2.0 event (the JSON-LD body plus the columns queries filter on).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "epcis_event")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub pk: i64,
    pub organisation_id: String,
    pub event_id: String,
    pub event_type: String,
    pub action: String,
    pub biz_step: Option<String>,
    pub disposition: Option<String>,
    pub event_time_ms: i64,
    pub event_time_zone_offset: String,
    pub record_time_ms: i64,
    pub site_id: Option<String>,
    pub location: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    pub document_id: Option<String>,
    pub scan_id: Option<String>,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub body: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
