//! An order an ERP sent, and the task made from it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "erp_order")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub organisation_id: String,
    /// `receiving`, `picking` or `shipping`.
    pub kind: String,
    /// The ERP's number for it (PO, sales order, delivery).
    pub order_ref: String,
    pub site_id: String,
    pub partner_gln: String,
    pub task_id: String,
    /// SHA-256 (hex) of the order as last applied.
    pub content_hash: String,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
