//! A manufacturer's policy for answering about recalled, expired or suspect packs.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "verification_policy")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub gtin_prefix: String,
    pub manufacturer: String,
    /// `verified`, `manufacturer_policy` or `not_for_redistribution`.
    pub on_recalled: String,
    pub on_expired: String,
    pub on_suspect: String,
    /// Name the mismatching element, or answer only `No_reason_provided`.
    pub disclose_mismatch: bool,
    pub updated_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
