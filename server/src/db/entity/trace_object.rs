//! Current state of one serialized pack (`sgtin:…`) or container (`sscc:…`).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trace_object")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub epc_key: String,
    pub kind: String,
    pub gtin: Option<String>,
    pub serial: Option<String>,
    pub sscc: Option<String>,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    pub site_id: Option<String>,
    pub location: Option<String>,
    pub status: UnitStatus,
    pub parent_key: Option<String>,
    pub order_ref: Option<String>,
    pub last_event_time_ms: i64,
    pub last_scan_id: Option<String>,
    pub updated_at_ms: i64,
    /// Something was packed into it at some time (see the migration that added it).
    pub holds: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Where a pack or container stands in our custody (`trace_object.status`).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "snake_case")]
pub enum UnitStatus {
    /// First mentioned by a scan; nothing known yet.
    #[sea_orm(string_value = "unknown")]
    Unknown,
    /// In our stock.
    #[sea_orm(string_value = "in_stock")]
    InStock,
    /// Picked for an order.
    #[sea_orm(string_value = "picked")]
    Picked,
    /// Packed into an outbound container.
    #[sea_orm(string_value = "packed")]
    Packed,
    /// Left the site.
    #[sea_orm(string_value = "shipped")]
    Shipped,
    /// Returned by a customer, not yet inspected.
    #[sea_orm(string_value = "returned")]
    Returned,
    /// On hold.
    #[sea_orm(string_value = "quarantined")]
    Quarantined,
    /// Destroyed; no further events expected.
    #[sea_orm(string_value = "destroyed")]
    Destroyed,
}

impl UnitStatus {
    /// Statuses that block a pack on every scanner (see `crate::reference`).
    pub const HELD: [UnitStatus; 2] = [UnitStatus::Quarantined, UnitStatus::Destroyed];

    /// Quarantined or destroyed: blocked everywhere.
    pub fn is_held(self) -> bool {
        Self::HELD.contains(&self)
    }

    /// The stored code.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Unknown => "unknown",
            UnitStatus::InStock => "in_stock",
            UnitStatus::Picked => "picked",
            UnitStatus::Packed => "packed",
            UnitStatus::Shipped => "shipped",
            UnitStatus::Returned => "returned",
            UnitStatus::Quarantined => "quarantined",
            UnitStatus::Destroyed => "destroyed",
        }
    }

    /// Out of our custody: shipped or destroyed.
    pub fn is_out(self) -> bool {
        matches!(self, UnitStatus::Shipped | UnitStatus::Destroyed)
    }
}

impl std::fmt::Display for UnitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
