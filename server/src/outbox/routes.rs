//! The change feed (`GET /changes`) and webhook subscriptions (`/webhooks`), for
//! integration accounts and, to watch and replay deliveries, managers and admins.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::webhooks::{
    self, CreatedSubscription, NewSubscription, Replay, SubscriptionView, WebhookError,
};
use super::{OutboxEvent, parse_kinds};
use crate::auth::integration::{ErpOrAdmin, ErpOrManager};
use crate::http::{ApiError, json_body};
use crate::state::AppState;

impl From<WebhookError> for ApiError {
    fn from(err: WebhookError) -> Self {
        match err {
            WebhookError::Invalid(m) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_subscription", m)
            }
            WebhookError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", err.to_string())
            }
            WebhookError::Db(e) => ApiError::failure(e),
        }
    }
}

/// The outbox routes, nested under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(changes))
        .routes(routes!(list_subscriptions, add_subscription))
        .routes(routes!(remove_subscription))
        .routes(routes!(replay_subscription))
}

/// Most events one feed page returns.
const MAX_PAGE: u64 = 1_000;
/// Longest a feed request waits for new events: well inside the request time-out (30 s
/// by default), so a long poll ends with a page, not a 408.
const MAX_WAIT_S: u64 = 20;

/// `GET /changes` parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ChangesQuery {
    /// Resume after this cursor (the `next` of the previous page); absent: from the start.
    after: Option<String>,
    /// Most events in the page: 1 to 1000 (default 100).
    limit: Option<u64>,
    /// Comma-separated event types to return; absent: all.
    types: Option<String>,
    /// Seconds to wait for an event when there is none yet (long poll): 0 to 20
    /// (default 0).
    wait: Option<u64>,
}

/// A page of the change feed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
struct ChangesPage {
    /// Events after the cursor, in order.
    events: Vec<OutboxEvent>,
    /// The cursor to send as `after` next time (also when `events` is empty: it may have
    /// moved past events of other types).
    next: String,
}

/// The change feed: the organisation's business outcomes (tasks completed, exceptions,
/// quarantines, returns verified) in the order they were recorded, from a resumable
/// cursor: for ERPs that cannot receive webhooks. Events are kept; reading is
/// side-effect free, so a reader that lost its place resumes from the last cursor it
/// stored and sees every event again from there.
#[utoipa::path(get, path = "/changes", tag = "outbox", params(ChangesQuery),
    security(("integration_key" = []), ("bearer" = [])),
    responses((status = 200, description = "a page of events", body = ChangesPage),
        (status = 400, description = "bad_request: a malformed cursor, limit, types or wait"),
        (status = 401, description = "unauthorized or invalid_integration_key"),
        (status = 403, description = "not an integration account, manager or admin")))]
async fn changes(
    State(state): State<AppState>,
    ErpOrManager(caller): ErpOrManager,
    Query(q): Query<ChangesQuery>,
) -> Result<Response, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    let after = match q.after.as_deref() {
        None | Some("") => 0,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| bad(format!("after {c:?}: not a cursor this feed gave")))?,
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad(format!("limit {limit}: expected 1 to {MAX_PAGE}")));
    }
    let wait = q.wait.unwrap_or(0);
    if wait > MAX_WAIT_S {
        return Err(bad(format!(
            "wait {wait}: expected 0 to {MAX_WAIT_S} seconds"
        )));
    }
    let kinds = parse_kinds(q.types.as_deref().unwrap_or("")).map_err(bad)?;
    // A shorter request time-out than the default shortens the wait with it.
    let wait = wait.min(state.config.request_timeout_secs.saturating_sub(5));
    let deadline = Instant::now() + Duration::from_secs(wait);
    loop {
        let (events, last) = super::read(&state.db, &caller.org_id, after, limit, &kinds)
            .await
            .map_err(ApiError::failure)?;
        if !events.is_empty() || Instant::now() >= deadline {
            let page = ChangesPage {
                events,
                next: last.to_string(),
            };
            return Ok(axum::Json(page).into_response());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The organisation's webhook subscriptions, with their delivery state: how far
/// delivery got, what is pending, and why it fails (`retrying`, or `dead` after too many
/// failures: replay it).
#[utoipa::path(get, path = "/webhooks", tag = "outbox",
    security(("integration_key" = []), ("bearer" = [])),
    responses((status = 200, description = "the subscriptions", body = [SubscriptionView]),
        (status = 401, description = "unauthorized or invalid_integration_key"),
        (status = 403, description = "not an integration account, manager or admin")))]
async fn list_subscriptions(
    State(state): State<AppState>,
    ErpOrManager(caller): ErpOrManager,
) -> Result<axum::Json<Vec<SubscriptionView>>, ApiError> {
    Ok(axum::Json(
        webhooks::list(&state.db, &caller.org_id)
            .await
            .map_err(ApiError::failure)?,
    ))
}

/// Subscribes a receiver to the organisation's outcomes from now on (earlier ones: the
/// change feed, or a replay from a `seq`). The answer holds the signing secret, once.
#[utoipa::path(post, path = "/webhooks", tag = "outbox", request_body = NewSubscription,
    security(("integration_key" = []), ("bearer" = [])),
    responses((status = 201, description = "subscribed; keep the secret", body = CreatedSubscription),
        (status = 400, description = "bad_request: not JSON of this shape"),
        (status = 401, description = "unauthorized or invalid_integration_key"),
        (status = 403, description = "not an integration account or admin"),
        (status = 422, description = "invalid_subscription: a bad URL or event type, or too many subscriptions")))]
async fn add_subscription(
    State(state): State<AppState>,
    ErpOrAdmin(caller): ErpOrAdmin,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NewSubscription = json_body(&body)?;
    let created = webhooks::add(&state.db, &caller, &req).await?;
    tracing::info!(subscription = %created.subscription.id, url = %created.subscription.url,
        by = %caller.user_id, "webhook subscription added");
    Ok((StatusCode::CREATED, axum::Json(created)).into_response())
}

/// Removes a subscription: nothing more is sent to it.
#[utoipa::path(delete, path = "/webhooks/{id}", tag = "outbox",
    params(("id" = String, Path, description = "subscription id")),
    security(("integration_key" = []), ("bearer" = [])),
    responses((status = 204, description = "removed"),
        (status = 401, description = "unauthorized or invalid_integration_key"),
        (status = 403, description = "not an integration account or admin"),
        (status = 404, description = "no such subscription in the organisation")))]
async fn remove_subscription(
    State(state): State<AppState>,
    ErpOrAdmin(caller): ErpOrAdmin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    webhooks::remove(&state.db, &caller.org_id, &id).await?;
    tracing::info!(subscription = %id, by = %caller.user_id, "webhook subscription removed");
    Ok(StatusCode::NO_CONTENT)
}

/// Restarts a subscription's delivery now (a `dead` or `retrying` one from where it
/// stopped), or delivers again from `from_seq` on (the receiver lost events).
#[utoipa::path(post, path = "/webhooks/{id}/replay", tag = "outbox", request_body = Replay,
    params(("id" = String, Path, description = "subscription id")),
    security(("integration_key" = []), ("bearer" = [])),
    responses((status = 200, description = "delivery restarted", body = SubscriptionView),
        (status = 400, description = "bad_request: not JSON of this shape"),
        (status = 401, description = "unauthorized or invalid_integration_key"),
        (status = 403, description = "not an integration account, manager or admin"),
        (status = 404, description = "no such subscription in the organisation"),
        (status = 422, description = "invalid_subscription: from_seq out of range")))]
async fn replay_subscription(
    State(state): State<AppState>,
    ErpOrManager(caller): ErpOrManager,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<axum::Json<SubscriptionView>, ApiError> {
    let req: Replay = if body.is_empty() {
        Replay::default()
    } else {
        json_body(&body)?
    };
    let view = webhooks::replay(&state.db, &caller.org_id, &id, &req).await?;
    state.outbox_wake.notify_one();
    tracing::info!(subscription = %id, from_seq = ?req.from_seq, by = %caller.user_id, "webhook delivery replayed");
    Ok(axum::Json(view))
}
