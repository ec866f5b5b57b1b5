//! The saleable-returns workflow: verifying each returned pack's product identifier,
//! from our own manufacturer data when we hold its GTIN, else by asking the responder
//! routed for it (LMS requester), and deciding what the pack becomes.
//!
//! Two ways in, one record per scan (`return_verification`, keyed by scan id):
//! - **online**: the scanner asks `POST /api/v1/returns/verify` right after the scan and
//!   shows the outcome in the scan's feedback;
//! - **offline**: the scan syncs later; its projection queues a pending record, and the
//!   worker here verifies it, retrying while responders are unreachable.
//!
//! A record is bound to the scan it verified (task, device, user, GTIN, serial, lot,
//! expiry): the online path refuses a scan id another binding holds (409) or that lies in
//! another scanner's id namespace (403), and the projection applies a verdict only to
//! the synced scan with the same binding (see `crate::projection::returns`).
//!
//! Either way the decision is applied to stock exactly once, after the scan itself is
//! projected (`crate::projection::returns::apply_decision`), and the outcome is written
//! back into the task document for the scanner to show after its next sync.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use swt_domain::api::VerifyReturn;
use tokio::sync::Notify;
use utoipa::ToSchema;

use super::Verification;
use super::audit::{self, Exchange};
use super::lms::{Context, ProductId, ReturnDecision, VerifyRequest};
use super::requester::Asked;
use super::responder::{answer_locally, today};
use crate::auth::{Principal, Role};
use crate::config::VerificationConfig;
use crate::db::entity::{organisation, return_verification, task_document, verification_exchange};
use crate::http::ApiError;
use crate::projection::returns::{
    Binding, BindingConflict, apply_decision, new_record, result_code, state,
};
use crate::state::AppState;

/// Why a returns verification could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    /// Database failure.
    #[error("returns verification: {0}")]
    Db(#[from] DbErr),
}

/// What an attempt changed in the record.
struct Outcome {
    state: &'static str,
    verified: Option<bool>,
    failure_reason: Option<String>,
    additional_info: Option<String>,
    responder: Option<String>,
    exchange_pk: Option<i64>,
    error: Option<String>,
}

impl Outcome {
    fn pending(error: String, responder: Option<String>, exchange_pk: Option<i64>) -> Outcome {
        Outcome {
            state: state::PENDING,
            verified: None,
            failure_reason: None,
            additional_info: None,
            responder,
            exchange_pk,
            error: Some(error),
        }
    }

    fn quarantined(error: String) -> Outcome {
        Outcome {
            state: state::QUARANTINED,
            error: Some(error),
            ..Outcome::pending(String::new(), None, None)
        }
    }

    fn answered(
        verified: bool,
        reason: Option<String>,
        info: Option<String>,
        responder: String,
        pk: i64,
    ) -> Outcome {
        Outcome {
            state: ReturnDecision::of(verified, info.as_deref()).state(),
            verified: Some(verified),
            failure_reason: reason,
            additional_info: info,
            responder: Some(responder),
            exchange_pk: Some(pk),
            error: None,
        }
    }
}

/// Verifies one pending record and stores the outcome (unless another process decided it
/// meanwhile). Returns the record as it now stands.
pub async fn attempt(
    db: &DatabaseConnection,
    v: &Verification,
    cfg: &VerificationConfig,
    rv: &return_verification::Model,
) -> Result<return_verification::Model, ReturnsError> {
    if rv.state != state::PENDING {
        return Ok(rv.clone());
    }
    let outcome = decide(db, v, rv).await?;
    let now = Utc::now().timestamp_millis();
    let decided = outcome.state != state::PENDING;
    let retry_ms = i64::try_from(cfg.retry_pending_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    return_verification::Entity::update_many()
        .col_expr(
            return_verification::Column::State,
            Expr::value(outcome.state),
        )
        .col_expr(
            return_verification::Column::Verified,
            Expr::value(outcome.verified),
        )
        .col_expr(
            return_verification::Column::FailureReason,
            Expr::value(outcome.failure_reason),
        )
        .col_expr(
            return_verification::Column::AdditionalInfo,
            Expr::value(outcome.additional_info),
        )
        .col_expr(
            return_verification::Column::Responder,
            Expr::value(outcome.responder),
        )
        .col_expr(
            return_verification::Column::ExchangePk,
            Expr::value(outcome.exchange_pk),
        )
        .col_expr(
            return_verification::Column::LastError,
            Expr::value(outcome.error),
        )
        .col_expr(
            return_verification::Column::Attempts,
            Expr::value(rv.attempts.saturating_add(1)),
        )
        .col_expr(
            return_verification::Column::NextAttemptMs,
            Expr::value(now.saturating_add(retry_ms)),
        )
        .col_expr(
            return_verification::Column::DecidedAtMs,
            Expr::value(decided.then_some(now)),
        )
        .filter(return_verification::Column::OrganisationId.eq(rv.organisation_id.as_str()))
        .filter(return_verification::Column::ScanId.eq(rv.scan_id.as_str()))
        .filter(return_verification::Column::State.eq(state::PENDING))
        // Only the binding it verified: a record set aside and bound to another scan
        // meanwhile must not receive this verdict.
        .filter(if rv.mismatch.is_some() {
            return_verification::Column::Mismatch.is_not_null()
        } else {
            return_verification::Column::Mismatch.is_null()
        })
        .exec(db)
        .await?;
    Ok(
        return_verification::Entity::find_by_id((rv.organisation_id.clone(), rv.scan_id.clone()))
            .one(db)
            .await?
            .unwrap_or_else(|| rv.clone()),
    )
}

async fn decide(
    db: &DatabaseConnection,
    v: &Verification,
    rv: &return_verification::Model,
) -> Result<Outcome, ReturnsError> {
    let (Some(lot), Some(expiry)) = (rv.lot.as_deref(), rv.expiry.as_deref()) else {
        // DSCSA verification needs all four elements; a pack without them cannot be
        // verified and so cannot be resold.
        return Ok(Outcome::quarantined(
            "the scan has no lot or expiry: the product identifier cannot be verified".into(),
        ));
    };
    let id = match ProductId::new(&rv.gtin, lot, &rv.serial, expiry) {
        Ok(id) => id,
        Err(e) => {
            return Ok(Outcome::quarantined(format!(
                "invalid product identifier: {e}"
            )));
        }
    };
    let started = std::time::Instant::now();
    if let Some(verdict) =
        answer_locally(db, &v.responder, &rv.organisation_id, &id, today()).await?
    {
        let reason = verdict.failure_reason.map(|r| r.as_str().to_owned());
        let info = verdict.additional_info.map(|i| i.as_str().to_owned());
        let pk = audit::insert_returning_pk(
            db,
            Exchange {
                organisation_id: Some(rv.organisation_id.clone()),
                direction: "local",
                context: Some(Context::SaleableReturn.as_str().to_owned()),
                gtin: Some(rv.gtin.clone()),
                lot: Some(lot.to_owned()),
                serial: Some(rv.serial.clone()),
                expiry: Some(expiry.to_owned()),
                request: "held manufacturer data".to_owned(),
                response_body: serde_json::to_string(&verdict).ok(),
                verified: Some(verdict.verified),
                failure_reason: reason.clone(),
                additional_info: info.clone(),
                scan_id: Some(rv.scan_id.clone()),
                started_at_ms: Utc::now().timestamp_millis(),
                duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
                ..Exchange::default()
            },
        )
        .await?;
        return Ok(Outcome::answered(
            verdict.verified,
            reason,
            info,
            "local".into(),
            pk,
        ));
    }
    let org = organisation::Entity::find_by_id(rv.organisation_id.as_str())
        .one(db)
        .await?;
    let Some(gln) = org
        .and_then(|o| o.gln)
        .and_then(|g| swt_domain::gs1::Gln::parse(&g).ok())
    else {
        return Ok(Outcome::pending(
            "the organisation has no valid GLN to ask as (reqGLN)".into(),
            None,
            None,
        ));
    };
    let req = VerifyRequest {
        id,
        context: Context::SaleableReturn,
        req_gln: gln,
        corr_uuid: uuid::Uuid::new_v4().to_string(),
        ctrl_possess_att: Some(true),
        email: None,
        telephone: None,
    };
    Ok(
        match v
            .requester
            .ask(db, &req, &rv.organisation_id, Some(&rv.scan_id))
            .await?
        {
            Asked::Answer {
                answer,
                peer,
                exchange_pk,
                ..
            } => Outcome::answered(
                answer.verified,
                answer.failure_reason,
                answer.additional_info,
                peer,
                exchange_pk,
            ),
            Asked::NoRoute => Outcome::pending(
                format!("no responder is configured for GTIN {}", rv.gtin),
                None,
                None,
            ),
            // The manufacturer's responder does not know the GTIN: not verifiable.
            Asked::Refused {
                peer,
                status: 404,
                exchange_pk,
            } => Outcome {
                responder: Some(peer),
                exchange_pk: Some(exchange_pk),
                ..Outcome::quarantined("the responder does not know this GTIN (404)".into())
            },
            // 400/401/403: our request or credentials are at fault; a person must fix the
            // configuration, then the retry succeeds.
            Asked::Refused {
                peer,
                status,
                exchange_pk,
            } => Outcome::pending(
                format!("the responder refused the request (HTTP {status})"),
                Some(peer),
                Some(exchange_pk),
            ),
            Asked::Unavailable {
                peer,
                error,
                exchange_pk,
            } => Outcome::pending(error, Some(peer), exchange_pk),
        },
    )
}

/// How often the worker looks for due work when nothing wakes it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop`: verifies due pending records, applies decided ones whose scans are
/// projected, and wakes the projector to write the outcomes back into documents.
pub async fn run(
    db: DatabaseConnection,
    v: Arc<Verification>,
    cfg: VerificationConfig,
    projector_wake: Arc<Notify>,
    stop: Arc<Notify>,
) {
    loop {
        match sweep(&db, &v, &cfg).await {
            Ok(applied) if applied > 0 => projector_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "returns verification sweep failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = stop.notified() => return,
        }
    }
}

/// One pass of the worker; returns how many decisions it applied.
pub async fn sweep(
    db: &DatabaseConnection,
    v: &Verification,
    cfg: &VerificationConfig,
) -> Result<usize, ReturnsError> {
    let now = Utc::now().timestamp_millis();
    let due = return_verification::Entity::find()
        .filter(return_verification::Column::State.eq(state::PENDING))
        .filter(return_verification::Column::NextAttemptMs.lte(now))
        .order_by_asc(return_verification::Column::NextAttemptMs)
        .limit(32)
        .all(db)
        .await?;
    for rv in due {
        // Lease the record: another process sweeping now skips it.
        let lease = now.saturating_add(30_000);
        let took = return_verification::Entity::update_many()
            .col_expr(
                return_verification::Column::NextAttemptMs,
                Expr::value(lease),
            )
            .filter(return_verification::Column::OrganisationId.eq(rv.organisation_id.as_str()))
            .filter(return_verification::Column::ScanId.eq(rv.scan_id.as_str()))
            .filter(return_verification::Column::NextAttemptMs.eq(rv.next_attempt_ms))
            .filter(return_verification::Column::State.eq(state::PENDING))
            .exec(db)
            .await?
            .rows_affected;
        if took == 1 {
            let after = attempt(db, v, cfg, &rv).await?;
            tracing::info!(scan = %after.scan_id, state = %after.state, error = ?after.last_error, "returned pack verification");
        }
    }
    let decided = return_verification::Entity::find()
        .filter(return_verification::Column::State.ne(state::PENDING))
        .filter(return_verification::Column::AppliedAtMs.is_null())
        // Unbound records wait for their scan's projection; left in, they could fill the
        // page forever.
        .filter(return_verification::Column::BoundAtMs.is_not_null())
        .limit(64)
        .all(db)
        .await?;
    let mut applied = 0;
    for rv in decided {
        match apply_decision(db, &rv).await {
            Ok(true) => applied += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(scan = %rv.scan_id, error = %e, "applying a returns decision failed; will retry")
            }
        }
    }
    Ok(applied)
}

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
    pub state: String,
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
            result: result_code(&r),
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
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", m);
    if swt_domain::model::ScanId::parse(&body.scan_id).is_err() {
        return Err(bad(format!("scan_id {:?} is not a scan id", body.scan_id)));
    }
    // The verdict is bound to the device that writes the scan: without one it could never
    // match a synced scan.
    let Some(device_id) = p.device_id.clone() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "device_required",
            "returns are verified from the scanner that records the scan (a device sign-in)",
        ));
    };
    scan_id_of_the_caller(&p, &body.scan_id)?;
    let gtin = swt_domain::gs1::Gtin::parse(&body.gtin).map_err(|e| bad(format!("gtin: {e}")))?;
    let doc = task_document::Entity::find_by_id(body.document_id.as_str())
        .filter(task_document::Column::OrganisationId.eq(p.org_id.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such task"))?;
    if doc.kind != "returns" {
        return Err(bad(format!(
            "task {} is a {} task, not returns",
            doc.id, doc.kind
        )));
    }
    let asked = Binding {
        document_id: doc.id.clone(),
        device_id: Some(device_id),
        user_id: Some(p.user_id.clone()),
        gtin: gtin.as_str().to_owned(),
        serial: body.serial.clone(),
        lot: body.lot.clone(),
        expiry: body.expiry.clone(),
    };
    let now = Utc::now().timestamp_millis();
    // Leased to this request: the worker leaves it alone while the clerk waits. Unbound
    // until the projection checks it against the synced scan.
    let row = new_record(
        &p.org_id,
        &body.scan_id,
        &doc.site_id,
        asked.clone(),
        now,
        now.saturating_add(30_000),
        None,
    );
    return_verification::Entity::insert(row)
        .on_conflict_do_nothing_on([
            return_verification::Column::OrganisationId,
            return_verification::Column::ScanId,
        ])
        .exec_without_returning(&state.db)
        .await?;
    let rv = return_verification::Entity::find_by_id((p.org_id.clone(), body.scan_id.clone()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::internal("verification record vanished"))?;
    if let Some(conflict) = Binding::of_record(&rv).conflict(&asked) {
        return Err(conflict_error(conflict, &body.scan_id));
    }
    let rv = attempt(
        &state.db,
        &state.verification,
        &state.config.verification,
        &rv,
    )
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(rv.into()))
}

/// Refuses (403 `scan_id_not_yours`) a scan id outside the calling device's id space:
/// sync takes only scans keyed `<the writing actor's hex>.…` (`foreign_scan_id`), so an id
/// without the caller's actor could never be synced by the caller, and verifying it would
/// reserve an id another scanner will use.
fn scan_id_of_the_caller(p: &Principal, scan_id: &str) -> Result<(), ApiError> {
    let own = p.actor_id.as_deref().is_some_and(|actor| {
        scan_id
            .split_once('.')
            .is_some_and(|(prefix, _)| prefix.eq_ignore_ascii_case(actor))
    });
    if own {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "scan_id_not_yours",
        format!("scan id {scan_id} is not in this device's id space (its actor, then '.')"),
    ))
}

/// 409: the scan id already has a record another binding made; nothing was changed.
fn conflict_error(c: BindingConflict, scan_id: &str) -> ApiError {
    let code = match c {
        BindingConflict::OtherCaller => "scan_id_taken",
        BindingConflict::OtherTask => "scan_id_other_task",
        BindingConflict::OtherIdentifiers => "identifiers_differ",
    };
    ApiError::new(StatusCode::CONFLICT, code, format!("scan {scan_id}: {c}"))
}

/// `GET /returns/verifications` filters.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only this state.
    pub state: Option<String>,
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
    let mut f = return_verification::Entity::find()
        .filter(return_verification::Column::OrganisationId.eq(p.org_id.as_str()));
    if let Some(s) = &q.state {
        f = f.filter(return_verification::Column::State.eq(s.as_str()));
    }
    if let Some(b) = q.before_ms {
        f = f.filter(return_verification::Column::ScannedAtMs.lt(b));
    }
    let rows = f
        .order_by_desc(return_verification::Column::ScannedAtMs)
        .limit(limit + 1)
        .all(&state.db)
        .await?;
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
    let rv = return_verification::Entity::find_by_id((p.org_id.clone(), scan_id.clone()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such verification"))?;
    let exchanges = verification_exchange::Entity::find()
        .filter(verification_exchange::Column::OrganisationId.eq(p.org_id.as_str()))
        .filter(verification_exchange::Column::ScanId.eq(scan_id.as_str()))
        .order_by_asc(verification_exchange::Column::Pk)
        .all(&state.db)
        .await?;
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
