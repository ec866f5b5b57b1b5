//! `PUT /api/v1/orders/{kind}/{order_ref}`: an ERP's order, with an `Idempotency-Key`
//! (integration accounts only; see `docs/erp.md`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Apply, OrderError, OrderInput, OrderOutcome, Reply};
use crate::auth::integration::IntegrationCaller;
use crate::http::{ApiError, json_body};
use crate::state::AppState;

/// The request header naming one request, so a retry is answered, not applied again.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        match err {
            OrderError::Task(t) => t.into(),
            OrderError::Db(e) => ApiError::failure(e),
            other => {
                let status = match other {
                    OrderError::Conflict(_) | OrderError::NotOpen { .. } => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                ApiError::new(status, other.code(), other.to_string())
            }
        }
    }
}

/// The order routes, nested under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(put_order))
}

/// Creates or updates the task of an order (integration accounts). One order, one task:
/// the order is `{kind}/{order_ref}` in the caller's organisation; sent again as it is,
/// nothing changes (200 `unchanged`); sent changed while its task is open, the task's
/// expected lines and references change (200 `updated`; scanners see it at their next
/// sync); its task ended, 409 `task_not_open`. The `Idempotency-Key` names this request:
/// a retry with the same key and order gets the first answer again, the same key with
/// another order 422 `idempotency_key_reused`. An invalid order (422 `invalid_order`,
/// `unknown_site`, `unknown_product`, every problem listed) changes nothing.
#[utoipa::path(put, path = "/orders/{kind}/{order_ref}", tag = "orders",
    params(("kind" = String, Path, description = "receiving (PO/ASN), picking (sales order) or shipping (delivery)"),
        ("order_ref" = String, Path, description = "the ERP's number for the order, 1 to 64 characters"),
        ("Idempotency-Key" = String, Header, description = "1 to 64 printable characters naming this request")),
    request_body = OrderInput,
    security(("integration_key" = [])),
    responses((status = 201, description = "created: the order's task was made", body = OrderOutcome),
        (status = 200, description = "updated or unchanged", body = OrderOutcome),
        (status = 400, description = "bad_request: not JSON of the order's shape, or idempotency_key_required"),
        (status = 401, description = "invalid_integration_key: unknown or revoked"),
        (status = 403, description = "not an integration account"),
        (status = 409, description = "order_conflict (another site or partner) or task_not_open"),
        (status = 422, description = "invalid_order, unknown_site, unknown_product or idempotency_key_reused")))]
async fn put_order(
    State(state): State<AppState>,
    IntegrationCaller(caller): IntegrationCaller,
    Path((kind, order_ref)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map(str::to_owned))
        .transpose()
        .ok()
        .flatten()
        .filter(|k| super::check_ref("Idempotency-Key", k).is_ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "send an Idempotency-Key header: 1 to 64 printable characters, new for each new request",
            )
        })?;
    let input: OrderInput = json_body(&body)?;
    let order = super::check(&state.db, &caller.org_id, &kind, &order_ref, &input).await?;
    let apply = Apply {
        db: &state.db,
        docs: &state.documents,
        actor: &state.server_actor,
    };
    match apply.apply(&caller, &order, Some(&key)).await? {
        Reply::Done(outcome) => {
            tracing::info!(order = %order_ref, kind = %kind, task = %outcome.task_id,
                outcome = ?outcome.outcome, account = %caller.user_id, "order applied");
            let status = if outcome.outcome == super::Outcome::Created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok((status, axum::Json(outcome)).into_response())
        }
        Reply::Replay { status, body } => Ok((
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response()),
    }
}
