//! A registered scanner, bound to a site, with its own Automerge actor id.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "device")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    pub site_id: String,
    pub name: String,
    pub actor_id: String,
    pub disabled: bool,
    pub registered_at: DateTimeUtc,
    /// Scans and voids it held that the server had not acknowledged, as it last reported.
    pub unsent_writes: Option<i64>,
    /// When it reported that.
    pub unsent_reported_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
