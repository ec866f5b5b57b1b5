//! Marker that a scan went through the projection, exactly once.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projected_scan")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organisation_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub scan_id: String,
    pub document_id: String,
    pub outcome: ProjectionOutcome,
    pub exceptions: String,
    pub void_seen: bool,
    pub projected_at_ms: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What the projection did with a scan (`projected_scan.outcome`, and the scan's
/// `results.projection` in its task document).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum ProjectionOutcome {
    /// Events and state written.
    #[sea_orm(string_value = "projected")]
    Projected,
    /// Voided before projection: nothing written.
    #[sea_orm(string_value = "voided")]
    Voided,
    /// Not projectable (unreadable, not serialised, refused by the rules…); the reason
    /// is in the scan's exception codes.
    #[sea_orm(string_value = "rejected")]
    Rejected,
}

/// The outcome as the task document's vocabulary (`results.projection`); the codes are
/// the same (see the test in `db::entity`).
impl From<ProjectionOutcome> for swt_domain::doc::ProjectionOutcome {
    fn from(o: ProjectionOutcome) -> Self {
        match o {
            ProjectionOutcome::Projected => Self::Projected,
            ProjectionOutcome::Voided => Self::Voided,
            ProjectionOutcome::Rejected => Self::Rejected,
        }
    }
}

impl ProjectionOutcome {
    /// The stored code, also the scan's `results.projection`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProjectionOutcome::Projected => "projected",
            ProjectionOutcome::Voided => "voided",
            ProjectionOutcome::Rejected => "rejected",
        }
    }
}
