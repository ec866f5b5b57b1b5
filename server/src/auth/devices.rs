//! `/api/v1/devices`: admins register scanners, list, disable and re-enable them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::service::{self, DeviceInfo};
use super::{Principal, Role};
use crate::http::ApiError;
use crate::state::AppState;
use swt_domain::api::UnsentReport;

/// The device routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new().route("/devices", get(list).post(register))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    /// Site id or GLN.
    site: String,
    /// A name people recognise.
    name: String,
}

async fn register(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<DeviceInfo>), ApiError> {
    principal.require(&[Role::Admin])?;
    if req.name.trim().is_empty() || req.name.len() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "name must be 1 to 200 characters",
        ));
    }
    let site = service::resolve_site(&state.db, &principal.org_id, &req.site).await?;
    let device =
        service::register_device(&state.db, &principal.org_id, &site.id, &req.name).await?;
    tracing::info!(device = %device.id, site = %site.id, by = %principal.user_id, "device registered");
    Ok((StatusCode::CREATED, Json(device)))
}

async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<DeviceInfo>>, ApiError> {
    principal.require(&[Role::Manager, Role::Admin])?;
    Ok(Json(
        service::list_devices(&state.db, &principal.org_id).await?,
    ))
}

/// The documented device routes (OpenAPI), nested under `/api/v1`.
pub fn documented_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(unsent))
}

/// A scanner says how many scans and voids it holds that the server has not
/// acknowledged (its client sends this after a full sync run, when the figure changed).
/// The console shows it beside the last sync. Only a scanner's own session may report,
/// and only for itself.
#[utoipa::path(put, path = "/devices/self/unsent", tag = "devices",
    request_body = UnsentReport,
    responses((status = 204, description = "recorded"),
        (status = 400, description = "malformed or impossible figure"),
        (status = 403, description = "not a scanner's session")))]
async fn unsent(
    State(state): State<AppState>,
    principal: Principal,
    Json(report): Json<UnsentReport>,
) -> Result<StatusCode, ApiError> {
    let Some(device) = principal.device_id.as_deref() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "not_a_device",
            "only a scanner's session reports what the scanner holds",
        ));
    };
    service::report_unsent(&state.db, &principal.org_id, device, report.writes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Disables a scanner: it can no longer sign in, and every token bound to it is refused
/// (403 `device_disabled`) within the revocation window (admins).
#[utoipa::path(post, path = "/devices/{id}/disable", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, body = DeviceInfo), (status = 403, description = "role"), (status = 404, description = "no such device in this organisation")))]
async fn disable(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    set_disabled(&state, &principal, &id, true).await
}

/// Re-enables a disabled scanner; its user signs in on it again (admins).
#[utoipa::path(post, path = "/devices/{id}/enable", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, body = DeviceInfo), (status = 403, description = "role"), (status = 404, description = "no such device in this organisation")))]
async fn enable(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<DeviceInfo>, ApiError> {
    set_disabled(&state, &principal, &id, false).await
}

/// Disabling and enabling: the same change with the flag set either way.
async fn set_disabled(
    state: &AppState,
    principal: &Principal,
    id: &str,
    disabled: bool,
) -> Result<Json<DeviceInfo>, ApiError> {
    principal.require(&[Role::Admin])?;
    let device = service::set_device_disabled(&state.db, &principal.org_id, id, disabled).await?;
    // This process refuses the device at once; the others within their cache time.
    state.status.forget();
    tracing::info!(device = %id, disabled, by = %principal.user_id, "device status set");
    Ok(Json(device))
}
