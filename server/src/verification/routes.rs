//! `/api/v1/verification/partners|policies` (admins): who may ask us to verify, and how
//! each manufacturer wants its packs answered. Every query is scoped to the caller's
//! organisation: another organisation's partner or policy is answered 404.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::partners::{self, NewPartner, PartnerError, PartnerView, PolicyInput, PolicyView};
use crate::auth::{Principal, Role};
use crate::http::{ApiError, json_body};
use crate::state::AppState;

impl From<PartnerError> for ApiError {
    fn from(e: PartnerError) -> Self {
        match e {
            PartnerError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            PartnerError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            PartnerError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            PartnerError::Random(_) | PartnerError::Db(_) => ApiError::failure(e),
        }
    }
}

const ADMINS: &[Role] = &[Role::Admin];

/// The routes, for the router to nest under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_partners, add_partner))
        .routes(routes!(suspend_partner))
        .routes(routes!(activate_partner))
        .routes(routes!(list_policies, set_policy))
        .routes(routes!(remove_policy))
}

/// The trading partners allowed to send verification requests (admins).
#[utoipa::path(get, path = "/verification/partners", tag = "verification admin",
    responses((status = 200, body = Vec<PartnerView>), (status = 403, description = "role")))]
async fn list_partners(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<PartnerView>>, ApiError> {
    p.require(ADMINS)?;
    Ok(Json(partners::list_partners(&s.db, &p.org_id).await?))
}

/// A partner to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerRequest {
    /// The partner's party GLN (13 digits).
    pub gln: String,
    /// Its name.
    pub name: String,
}

/// Adds a trading partner; the answer holds its API key, shown this once (admins).
#[utoipa::path(post, path = "/verification/partners", tag = "verification admin",
    request_body = PartnerRequest,
    responses((status = 201, body = NewPartner), (status = 400, description = "bad GLN or name"), (status = 403, description = "role"), (status = 409, description = "GLN already a partner")))]
async fn add_partner(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> Result<(StatusCode, Json<NewPartner>), ApiError> {
    p.require(ADMINS)?;
    let body: PartnerRequest = json_body(&body)?;
    let gln = partners::parse_gln(&body.gln)?;
    let new = partners::add_partner(&s.db, &p.org_id, &gln, &body.name).await?;
    tracing::info!(gln = %gln, partner = %new.partner.id, by = %p.user_id, "trading partner added");
    Ok((StatusCode::CREATED, Json(new)))
}

/// Suspends a partner: its requests are refused until re-activated (admins).
#[utoipa::path(post, path = "/verification/partners/{gln}/suspend", tag = "verification admin",
    params(("gln" = String, Path, description = "the partner's GLN")),
    responses((status = 200, body = PartnerView), (status = 403, description = "role"), (status = 404, description = "no such partner in this organisation")))]
async fn suspend_partner(
    State(s): State<AppState>,
    p: Principal,
    Path(gln): Path<String>,
) -> Result<Json<PartnerView>, ApiError> {
    set_partner_active(&s, &p, &gln, false).await
}

/// Suspension and re-activation: the same change with the status set either way.
async fn set_partner_active(
    s: &AppState,
    p: &Principal,
    gln: &str,
    active: bool,
) -> Result<Json<PartnerView>, ApiError> {
    p.require(ADMINS)?;
    let gln = partners::parse_gln(gln)?;
    let view = partners::set_partner_active(&s.db, &p.org_id, &gln, active).await?;
    tracing::info!(gln = %gln, status = %view.status, by = %p.user_id, "trading partner status set");
    Ok(Json(view))
}

/// Re-activates a suspended partner (admins).
#[utoipa::path(post, path = "/verification/partners/{gln}/activate", tag = "verification admin",
    params(("gln" = String, Path, description = "the partner's GLN")),
    responses((status = 200, body = PartnerView), (status = 403, description = "role"), (status = 404, description = "no such partner in this organisation")))]
async fn activate_partner(
    State(s): State<AppState>,
    p: Principal,
    Path(gln): Path<String>,
) -> Result<Json<PartnerView>, ApiError> {
    set_partner_active(&s, &p, &gln, true).await
}

/// Manufacturers' policies (admins).
#[utoipa::path(get, path = "/verification/policies", tag = "verification admin",
    responses((status = 200, body = Vec<PolicyView>), (status = 403, description = "role")))]
async fn list_policies(
    State(s): State<AppState>,
    p: Principal,
) -> Result<Json<Vec<PolicyView>>, ApiError> {
    p.require(ADMINS)?;
    Ok(Json(partners::list_policies(&s.db, &p.org_id).await?))
}

/// Sets (creates or replaces) a manufacturer's policy for a GTIN prefix (admins).
#[utoipa::path(post, path = "/verification/policies", tag = "verification admin",
    request_body = PolicyInput,
    responses((status = 200, body = PolicyView), (status = 400, description = "bad prefix or name"), (status = 403, description = "role")))]
async fn set_policy(
    State(s): State<AppState>,
    p: Principal,
    body: Bytes,
) -> Result<Json<PolicyView>, ApiError> {
    p.require(ADMINS)?;
    let body: PolicyInput = json_body(&body)?;
    let view = partners::set_policy(&s.db, &p.org_id, &body).await?;
    tracing::info!(prefix = %view.gtin_prefix, by = %p.user_id, "manufacturer policy set");
    Ok(Json(view))
}

/// Removes the policy of a GTIN prefix (admins).
#[utoipa::path(delete, path = "/verification/policies/{prefix}", tag = "verification admin",
    params(("prefix" = String, Path, description = "the GTIN prefix")),
    responses((status = 204, description = "removed"), (status = 403, description = "role"), (status = 404, description = "no policy for that prefix in this organisation")))]
async fn remove_policy(
    State(s): State<AppState>,
    p: Principal,
    Path(prefix): Path<String>,
) -> Result<StatusCode, ApiError> {
    p.require(ADMINS)?;
    partners::remove_policy(&s.db, &p.org_id, &prefix).await?;
    Ok(StatusCode::NO_CONTENT)
}
