//! `/api/v1/devices`: admins register scanners and list them.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;

use super::service::{self, DeviceInfo};
use super::{Principal, Role};
use crate::db::entity::device;
use crate::http::{ApiError, AppState};

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
    let rows = device::Entity::find()
        .filter(device::Column::OrganisationId.eq(principal.org_id.as_str()))
        .order_by_asc(device::Column::RegisteredAt)
        .all(&state.db)
        .await?;
    Ok(Json(
        rows.into_iter()
            .map(|d| DeviceInfo {
                id: d.id,
                site_id: d.site_id,
                actor_id: d.actor_id,
                name: d.name,
            })
            .collect(),
    ))
}
