//! `POST /api/v1/sync/{document_id}` (one document) and `POST /api/v1/sync` (a batch),
//! and `GET /api/v1/sync/refusals` for managers.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use swt_domain::wire::{self, ItemStatus, ResponseItem};

use super::SyncFailure;
use crate::auth::{Principal, Role};
use crate::http::{ApiError, page};
use crate::state::AppState;

/// Largest sync body accepted (a first sync of a full document fits easily).
pub const MAX_BODY: usize = 32 << 20;

/// The sync routes, nested under `/api/v1`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sync", post(batch))
        .route("/sync/refusals", get(refusals))
        .route("/sync/{document_id}", post(one))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

impl From<SyncFailure> for ApiError {
    fn from(err: SyncFailure) -> Self {
        match &err {
            SyncFailure::NotDevice => ApiError::new(
                StatusCode::FORBIDDEN,
                "device_token_required",
                err.to_string(),
            ),
            SyncFailure::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string())
            }
            SyncFailure::Malformed(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed_sync_message",
                err.to_string(),
            ),
            SyncFailure::Refused { reason, .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "sync_refused", err.to_string())
                    .with_reason(*reason)
            }
            SyncFailure::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", err.to_string())
            }
            SyncFailure::Internal(_) | SyncFailure::Db(_) => ApiError::failure(err),
        }
    }
}

async fn one(
    State(state): State<AppState>,
    principal: Principal,
    Path(document_id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let outcome = super::sync_document(
        &state.db,
        &state.documents,
        &state.server_actor,
        &principal,
        &document_id,
        body.to_vec(),
    )
    .await?;
    state.metrics.observe_sync(&outcome.timings);
    if outcome.new_scans > 0 || outcome.new_voids > 0 {
        tracing::info!(document = %document_id, scans = outcome.new_scans, voids = outcome.new_voids, "scans merged");
        state.projector_wake.notify_one();
    }
    Ok(match outcome.reply {
        Some(msg) => ([(header::CONTENT_TYPE, "application/octet-stream")], msg).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn batch(
    State(state): State<AppState>,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    let items = wire::decode_request(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_sync_batch",
            e.to_string(),
        )
    })?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let result = super::sync_document(
            &state.db,
            &state.documents,
            &state.server_actor,
            &principal,
            &item.doc_id,
            item.message,
        )
        .await;
        let (status, payload) = match result {
            Ok(o) => {
                state.metrics.observe_sync(&o.timings);
                if o.new_scans > 0 || o.new_voids > 0 {
                    state.projector_wake.notify_one();
                }
                match o.reply {
                    Some(msg) => (ItemStatus::Message, msg),
                    None => (ItemStatus::InSync, Vec::new()),
                }
            }
            Err(e) => {
                let status = match &e {
                    SyncFailure::Refused { .. } => ItemStatus::Refused,
                    SyncFailure::Malformed(_) => ItemStatus::Malformed,
                    SyncFailure::NotFound(_) | SyncFailure::NotDevice => ItemStatus::NotFound,
                    SyncFailure::Busy | SyncFailure::Internal(_) | SyncFailure::Db(_) => {
                        ItemStatus::Error
                    }
                };
                (status, ApiError::from(e).body_bytes())
            }
        };
        out.push(ResponseItem {
            doc_id: item.doc_id,
            status,
            payload,
        });
    }
    let body = wire::encode_response(&out).map_err(ApiError::internal)?;
    Ok(([(header::CONTENT_TYPE, wire::CONTENT_TYPE)], body).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalQuery {
    limit: Option<u64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
struct RefusalView {
    id: String,
    document_id: String,
    device_id: String,
    user_id: String,
    reason: String,
    detail: String,
    /// First refusal of this change.
    at: chrono::DateTime<chrono::Utc>,
    /// Hash of the refused change.
    change_hash: String,
    /// How many times the device offered the same change and was refused.
    occurrences: i32,
    /// Latest refusal of this change.
    last_at: chrono::DateTime<chrono::Utc>,
}

/// Refusals, newest first, one page (a bare array, the next cursor in `x-next-cursor`).
/// Ids are UUIDv7: id order is time order, and the last id is where the next page starts.
async fn refusals(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<RefusalQuery>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Manager, Role::Admin])?;
    let n = page::limit(q.limit, 100);
    let before: Option<String> =
        match &q.cursor {
            Some(c) => Some(page::decode(c).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.to_string())
            })?),
            None => None,
        };
    let rows = super::refusals(&state.db, &principal.org_id, before.as_deref(), n + 1).await?;
    let views = rows
        .into_iter()
        .map(|r| RefusalView {
            id: r.id,
            document_id: r.document_id,
            device_id: r.device_id,
            user_id: r.user_id,
            reason: r.reason,
            detail: r.detail,
            at: r.at,
            last_at: r.last_at.unwrap_or(r.at),
            change_hash: r.change_hash,
            occurrences: r.occurrences,
        })
        .collect();
    Ok(page::Page::from_rows(views, n, |r: &RefusalView| r.id.clone()).into_array_response())
}
