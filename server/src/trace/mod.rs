//! Traceability API: the history of a serial, the contents of a container, where a lot
//! is, stock by GTIN/lot/expiry/status, and exceptions (list, resolve). JSON, paginated,
//! every query scoped to the caller's organisation: what belongs to another
//! organisation is answered 404, exactly like what does not exist.
//!
//! Who may do what: every role reads objects, histories and container contents (pickers
//! and returns clerks need them at the scanner); managers and admins also read lots,
//! stock and exceptions and resolve exceptions. Handlers are thin; queries are in
//! [`service`].

pub mod dto;
pub mod service;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::dto::*;
use self::service::TraceError;
use crate::auth::{Principal, Role};
use crate::epcis::gcp::GcpLengths;
use crate::epcis::render::{EPC_FORMAT_HEADER, EpcFormat, RenderError};
use crate::http::ApiError;
use crate::state::AppState;

impl From<TraceError> for ApiError {
    fn from(e: TraceError) -> Self {
        match e {
            TraceError::NotFound(what) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{what} not found"),
            ),
            TraceError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            TraceError::AlreadyResolved(id) => ApiError::new(
                StatusCode::CONFLICT,
                "already_resolved",
                format!("exception {id} is already resolved"),
            ),
            TraceError::Render(e @ RenderError::BadFormat(_)) => {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_epc_format", e.to_string())
            }
            TraceError::Render(e @ RenderError::GcpUnknown(_)) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "gcp_length_unknown",
                e.to_string(),
            ),
            TraceError::Render(e @ RenderError::Unsupported(_)) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_an_epc",
                e.to_string(),
            ),
            TraceError::Db(e) => ApiError::failure(e),
        }
    }
}

const MANAGERS: &[Role] = &[Role::Manager, Role::Admin];

/// The trace routes, for the lead to mount under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_object))
        .routes(routes!(get_history))
        .routes(routes!(get_epcis_history))
        .routes(routes!(get_contents))
        .routes(routes!(get_lot))
        .routes(routes!(get_stock))
        .routes(routes!(list_exceptions))
        .routes(routes!(get_exception))
        .routes(routes!(resolve_exception))
}

/// Current state of a pack or container.
#[utoipa::path(get, path = "/trace/objects/{id}", tag = "trace",
    params(("id" = String, Path, description = "sgtin:<GTIN>:<serial>, sscc:<SSCC>, EPC URN, Digital Link or GS1 element string (percent-encoded)")),
    responses((status = 200, body = ObjectState), (status = 404, description = "unknown in this organisation")))]
async fn get_object(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ObjectState>, ApiError> {
    Ok(Json(service::object(&s.db, &p.org_id, &id).await?))
}

/// Every event of a pack or container: what, who, device, where, when.
#[utoipa::path(get, path = "/trace/objects/{id}/history", tag = "trace",
    params(("id" = String, Path, description = "object identifier"), HistoryQuery),
    responses((status = 200, body = Page<HistoryEntry>), (status = 404, description = "unknown in this organisation")))]
async fn get_history(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> Result<Json<Page<HistoryEntry>>, ApiError> {
    Ok(Json(service::history(&s.db, &p.org_id, &id, &q).await?))
}

/// The object's events as an EPCIS 2.0 query document (JSON-LD), with those of every
/// container it was inside while it was inside (the shipping of the SSCC it left in, the
/// receipt of the pallet it came in). Identifiers are GS1
/// Digital Links unless `GS1-EPC-Format: Always_EPC_URN` asks for EPC URNs (DSCSA
/// partners); either form has the same `eventID`.
#[utoipa::path(get, path = "/trace/objects/{id}/epcis", tag = "trace",
    params(("id" = String, Path, description = "object identifier"),
        ("GS1-EPC-Format" = Option<String>, Header, description = "No_Preference, Always_GS1_Digital_Link (default), Always_EPC_URN or Never_Translates")),
    responses((status = 200, description = "EPCISQueryDocument", body = Object),
        (status = 400, description = "unknown GS1-EPC-Format"),
        (status = 404, description = "unknown in this organisation"),
        (status = 422, description = "an identifier cannot be written as an EPC URN (company prefix length unknown)")))]
async fn get_epcis_history(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Json<crate::epcis::EpcisQueryDocument>, ApiError> {
    let format = headers
        .get(EPC_FORMAT_HEADER)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let format = EpcFormat::from_header(format).map_err(service::TraceError::from)?;
    let gcp = GcpLengths::new(s.config.epcis.gcp_lengths.clone());
    Ok(Json(
        service::epcis_history(&s.db, &p.org_id, &id, format, &gcp).await?,
    ))
}

/// What is inside a container at any depth (pallet → cases → packs), one page, depth
/// first: each container is followed by its own contents.
#[utoipa::path(get, path = "/trace/containers/{id}/contents", tag = "trace",
    params(("id" = String, Path, description = "container identifier"), ContentsQuery),
    responses((status = 200, body = ContainerContents), (status = 400, description = "bad cursor"), (status = 404, description = "unknown in this organisation")))]
async fn get_contents(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Query(q): Query<ContentsQuery>,
) -> Result<Json<ContainerContents>, ApiError> {
    Ok(Json(service::contents(&s.db, &p.org_id, &id, &q).await?))
}

/// Where a lot is now: counts by site, location and status (managers).
#[utoipa::path(get, path = "/trace/lots/{lot}", tag = "trace",
    params(("lot" = String, Path, description = "lot / batch"), LotQuery),
    responses((status = 200, body = LotWhereabouts), (status = 403, description = "role"), (status = 404, description = "unknown in this organisation")))]
async fn get_lot(
    State(s): State<AppState>,
    p: Principal,
    Path(lot): Path<String>,
    Query(q): Query<LotQuery>,
) -> Result<Json<LotWhereabouts>, ApiError> {
    p.require(MANAGERS)?;
    Ok(Json(
        service::lot(&s.db, &p.org_id, &lot, q.gtin.as_deref()).await?,
    ))
}

/// Stock of serialized packs by GTIN, lot, expiry and status (managers).
#[utoipa::path(get, path = "/trace/stock", tag = "trace", params(StockQuery),
    responses((status = 200, body = Page<StockLine>), (status = 403, description = "role")))]
async fn get_stock(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<StockQuery>,
) -> Result<Json<Page<StockLine>>, ApiError> {
    p.require(MANAGERS)?;
    Ok(Json(service::stock(&s.db, &p.org_id, &q).await?))
}

/// Exceptions, newest first (managers).
#[utoipa::path(get, path = "/trace/exceptions", tag = "trace", params(ExceptionQuery),
    responses((status = 200, body = Page<ExceptionView>), (status = 403, description = "role")))]
async fn list_exceptions(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ExceptionQuery>,
) -> Result<Json<Page<ExceptionView>>, ApiError> {
    p.require(MANAGERS)?;
    Ok(Json(service::exceptions(&s.db, &p.org_id, &q).await?))
}

/// One exception (managers).
#[utoipa::path(get, path = "/trace/exceptions/{id}", tag = "trace",
    params(("id" = String, Path, description = "exception id")),
    responses((status = 200, body = ExceptionView), (status = 403, description = "role"), (status = 404, description = "unknown in this organisation")))]
async fn get_exception(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
) -> Result<Json<ExceptionView>, ApiError> {
    p.require(MANAGERS)?;
    Ok(Json(service::exception(&s.db, &p.org_id, &id).await?))
}

/// Resolves an exception with a note (managers).
#[utoipa::path(post, path = "/trace/exceptions/{id}/resolve", tag = "trace",
    params(("id" = String, Path, description = "exception id")), request_body = ResolveRequest,
    responses((status = 200, body = ExceptionView), (status = 403, description = "role"),
        (status = 404, description = "unknown in this organisation"), (status = 409, description = "already resolved")))]
async fn resolve_exception(
    State(s): State<AppState>,
    p: Principal,
    Path(id): Path<String>,
    Json(body): Json<ResolveRequest>,
) -> Result<Json<ExceptionView>, ApiError> {
    p.require(MANAGERS)?;
    let note = body.resolution.trim();
    if note.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "say how the exception was resolved (resolution)",
        ));
    }
    Ok(Json(
        service::resolve(&s.db, &p.org_id, &id, &p.user_id, note).await?,
    ))
}
