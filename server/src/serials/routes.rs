//! `/api/v1/serials/…` (managers and admins: manufacturer serials and lots, EPCIS
//! import). Every query is scoped
//! to the caller's organisation: another organisation's data is answered 404, like
//! what does not exist. Handlers are thin; the work is in the sibling modules.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::epcis_import::{self, EpcisReport};
use super::store::{self, LotView, SerialView};
use super::{SerialStatus, SerialsError, check_lot, check_serial, parse_expiry, parse_gtin};
use crate::auth::{Principal, Role};
use crate::http::{ApiError, json_body};
use crate::state::AppState;

impl From<SerialsError> for ApiError {
    fn from(e: SerialsError) -> Self {
        match e {
            SerialsError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            SerialsError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            SerialsError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            SerialsError::Io { .. } | SerialsError::Db(_) => ApiError::failure(e),
        }
    }
}

const MANAGERS: &[Role] = &[Role::Manager, Role::Admin];

/// EPCIS documents from a packaging line can be large; the default 2 MB is not enough.
const EPCIS_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The routes, for the router to nest under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_serial))
        .routes(routes!(set_serial_status))
        .routes(routes!(get_lot))
        .routes(routes!(recall_lot, withdraw_recall))
        .routes(routes!(extend_expiry, remove_expiry_extension))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(import_epcis))
                .layer(DefaultBodyLimit::max(EPCIS_BODY_LIMIT)),
        )
}

fn bad(m: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m)
}

/// One held serial with its lot's facts.
#[utoipa::path(get, path = "/serials/{gtin}/{serial}", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("serial" = String, Path, description = "serial (AI 21), percent-encoded")),
    responses((status = 200, body = SerialView), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn get_serial(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, serial)): Path<(String, String)>,
) -> Result<Json<SerialView>, ApiError> {
    p.require(MANAGERS)?;
    let gtin = parse_gtin(&gtin).map_err(bad)?;
    Ok(Json(store::serial(&s.db, &p.org_id, &gtin, &serial).await?))
}

/// A new status for one serial.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    /// `active`, `decommissioned`, `suspect` or `illegitimate`.
    pub status: SerialStatus,
}

/// Sets one serial's status (managers).
#[utoipa::path(put, path = "/serials/{gtin}/{serial}/status", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("serial" = String, Path, description = "serial (AI 21)")),
    request_body = StatusRequest,
    responses((status = 200, body = SerialView), (status = 400, description = "bad status or identifier"), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn set_serial_status(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, serial)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<SerialView>, ApiError> {
    p.require(MANAGERS)?;
    let body: StatusRequest = json_body(&body)?;
    let gtin = parse_gtin(&gtin).map_err(bad)?;
    check_serial(&gtin, &serial).map_err(bad)?;
    let view = store::set_status(
        &s.db,
        &p.org_id,
        &gtin,
        &serial,
        body.status,
        &format!("api:{}", p.user_id),
    )
    .await?;
    tracing::info!(gtin = %gtin, serial = %serial, status = body.status.as_str(), by = %p.user_id, "serial status set");
    Ok(Json(view))
}

fn lot_key(gtin: &str, lot: &str) -> Result<swt_domain::gs1::Gtin, ApiError> {
    let gtin = parse_gtin(gtin).map_err(bad)?;
    check_lot(&gtin, lot).map_err(bad)?;
    Ok(gtin)
}

/// A lot: recall, expiry extension, serials held by status (managers).
#[utoipa::path(get, path = "/serials/lots/{gtin}/{lot}", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("lot" = String, Path, description = "lot (AI 10)")),
    responses((status = 200, body = LotView), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn get_lot(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, lot)): Path<(String, String)>,
) -> Result<Json<LotView>, ApiError> {
    p.require(MANAGERS)?;
    let gtin = lot_key(&gtin, &lot)?;
    Ok(Json(store::lot(&s.db, &p.org_id, &gtin, &lot).await?))
}

/// Marks a lot recalled by its manufacturer (managers).
#[utoipa::path(post, path = "/serials/lots/{gtin}/{lot}/recall", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("lot" = String, Path, description = "lot (AI 10)")),
    responses((status = 200, body = LotView), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn recall_lot(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, lot)): Path<(String, String)>,
) -> Result<Json<LotView>, ApiError> {
    set_recalled(&s, &p, &gtin, &lot, true).await
}

/// Recall and its withdrawal: the same change with the flag set either way.
async fn set_recalled(
    s: &AppState,
    p: &Principal,
    gtin: &str,
    lot: &str,
    recalled: bool,
) -> Result<Json<LotView>, ApiError> {
    p.require(MANAGERS)?;
    let gtin = lot_key(gtin, lot)?;
    let view = store::set_recalled(&s.db, &p.org_id, &gtin, lot, recalled).await?;
    tracing::info!(gtin = %gtin, lot = %lot, recalled, by = %p.user_id, "lot recall set");
    Ok(Json(view))
}

/// Withdraws a recall entered by mistake (managers).
#[utoipa::path(delete, path = "/serials/lots/{gtin}/{lot}/recall", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("lot" = String, Path, description = "lot (AI 10)")),
    responses((status = 200, body = LotView), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn withdraw_recall(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, lot)): Path<(String, String)>,
) -> Result<Json<LotView>, ApiError> {
    set_recalled(&s, &p, &gtin, &lot, false).await
}

/// An FDA expiry extension.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpiryExtensionRequest {
    /// The new expiry, `YYMMDD` or `YYYY-MM-DD`.
    pub expiry: String,
}

/// Records an FDA expiry extension for a whole lot (managers).
#[utoipa::path(post, path = "/serials/lots/{gtin}/{lot}/expiry-extension", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("lot" = String, Path, description = "lot (AI 10)")),
    request_body = ExpiryExtensionRequest,
    responses((status = 200, body = LotView), (status = 400, description = "not a date, or not later than the printed expiry"), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn extend_expiry(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, lot)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<LotView>, ApiError> {
    p.require(MANAGERS)?;
    let body: ExpiryExtensionRequest = json_body(&body)?;
    let gtin = lot_key(&gtin, &lot)?;
    let expiry = parse_expiry(&body.expiry).map_err(bad)?;
    let view = store::set_expiry_extension(&s.db, &p.org_id, &gtin, &lot, Some(&expiry)).await?;
    tracing::info!(gtin = %gtin, lot = %lot, expiry = %expiry, by = %p.user_id, "lot expiry extended");
    Ok(Json(view))
}

/// Removes a lot's expiry extension (managers).
#[utoipa::path(delete, path = "/serials/lots/{gtin}/{lot}/expiry-extension", tag = "serials",
    params(("gtin" = String, Path, description = "GTIN-8/12/13/14"), ("lot" = String, Path, description = "lot (AI 10)")),
    responses((status = 200, body = LotView), (status = 403, description = "role"), (status = 404, description = "not held in this organisation")))]
async fn remove_expiry_extension(
    State(s): State<AppState>,
    p: Principal,
    Path((gtin, lot)): Path<(String, String)>,
) -> Result<Json<LotView>, ApiError> {
    p.require(MANAGERS)?;
    let gtin = lot_key(&gtin, &lot)?;
    Ok(Json(
        store::set_expiry_extension(&s.db, &p.org_id, &gtin, &lot, None).await?,
    ))
}

/// Imports an EPCIS 2.0 JSON(-LD) document: commissioning events give serials with lot
/// and expiry (ILMD), decommissioning events mark them decommissioned; other events are
/// skipped. All or nothing (managers).
#[utoipa::path(post, path = "/serials/epcis", tag = "serials",
    request_body(content = Object, description = "EPCISDocument or EPCISQueryDocument", content_type = "application/json"),
    responses((status = 200, body = EpcisReport), (status = 400, description = "malformed document; nothing applied"), (status = 403, description = "role")))]
async fn import_epcis(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> Result<Json<EpcisReport>, ApiError> {
    p.require(MANAGERS)?;
    let doc = epcis_import::parse_json(&body)?;
    let report = epcis_import::import(&s.db, &p.org_id, &doc, "api").await?;
    tracing::info!(by = %p.user_id, commissioned = report.commissioned, decommissioned = report.decommissioned, "EPCIS serials imported");
    Ok(Json(report))
}
