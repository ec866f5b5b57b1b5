//! Returns over HTTP: the online verification a scanner asks for, and the verification
//! log managers and returns clerks read.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use swt_domain::api::VerifyReturn;
use utoipa::ToSchema;

use super::service::{self, VerifyNowError};
use super::{BindingConflict, ReturnState, result_code, store};
use crate::auth::{Principal, Role};
use crate::db::entity::return_verification;
use crate::http::ApiError;
use crate::state::AppState;

/// Routes under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/returns/verify", post(verify_now))
        .route("/returns/verifications", get(list))
        .route("/returns/verifications/{scan_id}", get(detail))
}

/// A verification record as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationView {
    /// Scan id.
    pub scan_id: String,
    /// Task document.
    pub document_id: String,
    /// `pending`, `sellable`, `review` or `quarantined`.
    pub state: ReturnState,
    /// What the scanner shows: `pending`, `verified`, `review`, `not_verified`, or
    /// `identifiers_mismatch` (the synced scan was not what was verified).
    pub result: &'static str,
    /// GTIN.
    pub gtin: String,
    /// Serial.
    pub serial: String,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry.
    pub expiry: Option<String>,
    /// `data.verified`.
    pub verified: Option<bool>,
    /// `data.verificationFailureReason`.
    pub verification_failure_reason: Option<String>,
    /// `data.additionalInfo`.
    pub additional_info: Option<String>,
    /// `local` or the responder's URL.
    pub responder: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
    /// Why it is still pending (or why it could not be verified).
    pub last_error: Option<String>,
    /// Who scanned it.
    pub user_id: Option<String>,
    /// On which device.
    pub device_id: Option<String>,
    /// When (device clock, UTC ms).
    pub scanned_at_ms: i64,
    /// When decided.
    pub decided_at_ms: Option<i64>,
    /// When applied to stock.
    pub applied_at_ms: Option<i64>,
    /// When checked against the synced scan (decisions are applied only after).
    pub bound_at_ms: Option<i64>,
    /// The verdict set aside because the synced scan differed from what it was for:
    /// `{detected_at_ms, verified: {binding, state, …}, scanned}`.
    #[schema(value_type = Option<Object>)]
    pub mismatch: Option<serde_json::Value>,
}

impl From<return_verification::Model> for VerificationView {
    fn from(r: return_verification::Model) -> Self {
        VerificationView {
            result: result_code(&r).as_str(),
            mismatch: r
                .mismatch
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok()),
            bound_at_ms: r.bound_at_ms,
            scan_id: r.scan_id,
            document_id: r.document_id,
            state: r.state,
            gtin: r.gtin,
            serial: r.serial,
            lot: r.lot,
            expiry: r.expiry,
            verified: r.verified,
            verification_failure_reason: r.failure_reason,
            additional_info: r.additional_info,
            responder: r.responder,
            attempts: r.attempts,
            last_error: r.last_error,
            user_id: r.user_id,
            device_id: r.device_id,
            scanned_at_ms: r.scanned_at_ms,
            decided_at_ms: r.decided_at_ms,
            applied_at_ms: r.applied_at_ms,
        }
    }
}

/// Verifies a returns scan's pack now, binding the verdict to the calling scanner, its
/// user and the identifiers given; the scan's later sync applies it only if it is the
/// same scan (see docs/returns-verification.md).
#[utoipa::path(post, path = "/returns/verify", tag = "returns", request_body = VerifyReturn,
    responses((status = 200, body = VerificationView, description = "the record: decided, or pending with the reason"),
        (status = 400, description = "invalid_request: malformed scan id, GTIN, or not a returns task"),
        (status = 403, description = "forbidden (role), device_required (not a device sign-in), scan_id_not_yours (the id is not in the calling device's actor id space)"),
        (status = 404, description = "not_found: no such task"),
        (status = 409, description = "the scan id's record has another binding, nothing changed: scan_id_taken (another device or user), scan_id_other_task, identifiers_differ")))]
async fn verify_now(
    State(state): State<AppState>,
    p: Principal,
    Json(body): Json<VerifyReturn>,
) -> Result<Json<VerificationView>, ApiError> {
    p.require(&[Role::ReturnsClerk, Role::Manager, Role::Admin])?;
    let rv = service::verify_now(
        &state.db,
        &state.verification,
        &state.config.verification,
        &p,
        &body,
    )
    .await?;
    Ok(Json(rv.into()))
}

impl From<VerifyNowError> for ApiError {
    fn from(e: VerifyNowError) -> Self {
        let message = e.to_string();
        match e {
            VerifyNowError::Invalid(_) | VerifyNowError::NotReturns { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
            }
            VerifyNowError::DeviceRequired => {
                ApiError::new(StatusCode::FORBIDDEN, "device_required", message)
            }
            VerifyNowError::NotYours(_) => {
                ApiError::new(StatusCode::FORBIDDEN, "scan_id_not_yours", message)
            }
            VerifyNowError::NoSuchTask => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            VerifyNowError::Taken { conflict, .. } => {
                let code = match conflict {
                    BindingConflict::OtherCaller => "scan_id_taken",
                    BindingConflict::OtherTask => "scan_id_other_task",
                    BindingConflict::OtherIdentifiers => "identifiers_differ",
                };
                ApiError::new(StatusCode::CONFLICT, code, message)
            }
            VerifyNowError::Db(e) => e.into(),
            VerifyNowError::Returns(e) => ApiError::internal(e),
        }
    }
}

/// `GET /returns/verifications` filters.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this state.
    pub state: Option<ReturnState>,
    /// Page size (default 50, at most 500).
    pub limit: Option<u64>,
    /// Records scanned before this time (UTC ms), for the next page.
    pub before_ms: Option<i64>,
}

async fn list(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<ListQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(&[Role::ReturnsClerk, Role::Manager, Role::Admin])?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rows = store::page(&state.db, &p.org_id, q.state, q.before_ms, limit + 1).await?;
    let more = rows.len() as u64 > limit;
    let items: Vec<VerificationView> = rows
        .into_iter()
        .take(limit as usize)
        .map(Into::into)
        .collect();
    let next = if more {
        items.last().map(|i| i.scanned_at_ms)
    } else {
        None
    };
    Ok(Json(
        serde_json::json!({ "items": items, "next_before_ms": next }),
    ))
}

/// The investigation record: the verification and every LMS exchange behind it.
async fn detail(
    State(state): State<AppState>,
    p: Principal,
    Path(scan_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    p.require(&[Role::ReturnsClerk, Role::Manager, Role::Admin])?;
    let (rv, exchanges) = store::with_exchanges(&state.db, &p.org_id, &scan_id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such verification"))?;
    let exchanges: Vec<serde_json::Value> = exchanges
        .into_iter()
        .map(|e| {
            serde_json::json!({
                "direction": e.direction, "peer_url": e.peer_url, "request": e.request,
                "http_status": e.http_status, "response_body": e.response_body,
                "verified": e.verified, "verification_failure_reason": e.failure_reason,
                "additional_info": e.additional_info, "error": e.error,
                "corr_uuid": e.corr_uuid, "started_at_ms": e.started_at_ms,
                "duration_us": e.duration_us,
            })
        })
        .collect();
    let view: VerificationView = rv.into();
    Ok(Json(
        serde_json::json!({ "verification": view, "exchanges": exchanges }),
    ))
}
