//! The product master: one row per GTIN an organisation handles.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    /// Always the 14-digit form.
    pub gtin: String,
    pub name: String,
    pub strength: Option<String>,
    pub pack_size: Option<String>,
    /// US National Drug Code, 10 digits without hyphens, where known.
    pub ndc: Option<String>,
    /// Packs carry a serial (DSCSA/FMD serialized product).
    pub serialized: bool,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
