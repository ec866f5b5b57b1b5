//! JSON shapes of the trace API (also its OpenAPI schemas).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

pub use crate::http::page::Page;

/// Current state of a serialized pack or a container.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObjectState {
    /// swt's key: `sgtin:<GTIN>:<serial>` or `sscc:<SSCC>`.
    pub id: String,
    /// GS1 Digital Link URI.
    pub digital_link: Option<String>,
    /// `sgtin` or `sscc`.
    pub kind: String,
    /// GTIN-14 (packs and cases).
    pub gtin: Option<String>,
    /// Serial (packs and cases).
    pub serial: Option<String>,
    /// SSCC (logistic units).
    pub sscc: Option<String>,
    /// Lot, when a scan read it.
    pub lot: Option<String>,
    /// Expiry, ISO date.
    pub expiry: Option<String>,
    /// Site (the last site it was at).
    pub site_id: Option<String>,
    /// Bin / dock / area at the site; absent once it left.
    pub location: Option<String>,
    /// `in_stock`, `picked`, `packed`, `shipped`, `returned`, `quarantined`, `destroyed`.
    pub status: crate::projection::UnitStatus,
    /// The container it is in.
    pub parent: Option<String>,
    /// The order it was picked/packed/shipped for.
    pub order_ref: Option<String>,
    /// Time of the scan the state reflects.
    pub last_event_time: Option<String>,
    /// The scan the state reflects.
    pub last_scan_id: Option<String>,
}

/// One event in an object's history: what, who, device, where, when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// EPCIS event id (CBV 2.0 hash).
    pub event_id: String,
    /// `ObjectEvent` / `AggregationEvent`.
    pub event_type: String,
    /// `ADD` / `OBSERVE` / `DELETE`.
    pub action: String,
    /// CBV business step.
    pub biz_step: Option<String>,
    /// CBV disposition.
    pub disposition: Option<String>,
    /// How the event names the object: `epc`, `parent` or `child`.
    pub role: String,
    /// When it happened (device clock, UTC).
    pub event_time: String,
    /// Offset at the site.
    pub event_time_zone_offset: String,
    /// When swt recorded it.
    pub record_time: String,
    /// Who scanned.
    pub user_id: Option<String>,
    /// On which device.
    pub device_id: Option<String>,
    /// At which site.
    pub site_id: Option<String>,
    /// Where at the site.
    pub location: Option<String>,
    /// EPCIS readPoint.
    pub read_point: Option<String>,
    /// EPCIS bizLocation.
    pub biz_location: Option<String>,
    /// The task document.
    pub document_id: Option<String>,
    /// The scan.
    pub scan_id: Option<String>,
}

/// History paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Page size (default 50, at most 500).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// `asc` (default, oldest first) or `desc`.
    pub order: Option<String>,
}

/// One object inside a container.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContentsEntry {
    /// The object (`parent` is the container it is directly in).
    #[serde(flatten)]
    pub object: ObjectState,
    /// Levels below the container asked about: 1 is directly inside it.
    pub depth: u32,
}

/// A container and one page of what is inside it, at any depth, depth first: each
/// container is followed by its own contents before its next sibling; siblings in
/// identifier order. A pallet of 60 cases × 100 packs is 6,060 entries, so it comes in
/// pages like every other list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ContainerContents {
    /// The container asked about.
    pub container: ObjectState,
    /// This page.
    pub items: Vec<ContentsEntry>,
    /// Absent on the last page.
    pub next_cursor: Option<String>,
}

/// Container explosion options.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContentsQuery {
    /// Levels to descend (default and maximum 8).
    pub max_depth: Option<u32>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Where a lot is.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LotWhereabouts {
    /// Lot.
    pub lot: String,
    /// GTIN filter, if given.
    pub gtin: Option<String>,
    /// Serialized objects of the lot known to swt.
    pub total: u64,
    /// Counts by site, location and status.
    pub places: Vec<LotPlace>,
}

/// Count of a lot at one place in one status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LotPlace {
    /// Site.
    pub site_id: Option<String>,
    /// Location at the site.
    pub location: Option<String>,
    /// Status.
    pub status: String,
    /// Number of objects.
    pub count: u64,
}

/// Lot filter.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LotQuery {
    /// Restrict to one GTIN.
    pub gtin: Option<String>,
}

/// Stock filters and paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
// An `offset` (this list took one once) is refused, not ignored: ignoring it would
// answer the first page again and again.
#[serde(deny_unknown_fields)]
pub struct StockQuery {
    /// GTIN-14.
    pub gtin: Option<String>,
    /// Lot.
    pub lot: Option<String>,
    /// Status (`in_stock`, …).
    pub status: Option<crate::projection::UnitStatus>,
    /// Site.
    pub site_id: Option<String>,
    /// Location at the site (a bin, dock or zone, as scanned).
    pub location: Option<String>,
    /// Only expiries before this ISO date.
    pub expiry_before: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Stock count of packs with one GTIN, lot, expiry and status.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StockLine {
    /// GTIN-14.
    pub gtin: Option<String>,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry (ISO date).
    pub expiry: Option<String>,
    /// Status.
    pub status: String,
    /// Number of packs.
    pub count: u64,
}

/// An exception for the manager.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ExceptionView {
    /// Id.
    pub id: String,
    /// `double_pick`, `double_ship`, `aggregation_mismatch`, `reparented`,
    /// `after_destroyed`, `voided_after_projection`, `return_not_verified`,
    /// `return_needs_review`, `device_clock_skew`, `duplicate_scan_id`.
    pub kind: String,
    /// `open` or `resolved`.
    pub state: String,
    /// The object concerned.
    pub object: Option<String>,
    /// Site.
    pub site_id: Option<String>,
    /// What was found (orders, parents…).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// The scans involved.
    pub scans: Vec<String>,
    /// When it was raised.
    pub created_at: String,
    /// When it was resolved.
    pub resolved_at: Option<String>,
    /// Who resolved it.
    pub resolved_by: Option<String>,
    /// The resolver's note.
    pub resolution: Option<String>,
    /// The user working on it.
    pub assigned_to: Option<String>,
}

/// Exception filters and paging.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExceptionQuery {
    /// `open` or `resolved`.
    pub state: Option<String>,
    /// Exception kind.
    pub kind: Option<String>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Resolving an exception.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResolveRequest {
    /// What was done about it (kept for the audit trail).
    pub resolution: String,
}
