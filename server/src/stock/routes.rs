//! `GET /api/v1/stock/snapshot` and `POST /api/v1/stock/reconcile`: an integration
//! account's key or a manager's (admin's) access token (see `docs/erp.md`, "Stock out").

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    BODY_LIMIT, By, ErpSnapshot, Format, ReconcileReport, Snapshot, SnapshotDoc, StockError,
};
use crate::auth::integration::ErpOrManager;
use crate::http::ApiError;
use crate::state::AppState;

/// The response header holding a CSV answer's `as_of` (a line before the CSV header would
/// break parsers); JSON answers carry it too.
pub const AS_OF: HeaderName = HeaderName::from_static("swt-as-of");

impl From<StockError> for ApiError {
    fn from(e: StockError) -> Self {
        match e {
            StockError::UnknownSite(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_site", e.to_string())
            }
            StockError::BadRequest(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            StockError::Invalid(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_snapshot",
                e.to_string(),
            ),
            StockError::TooManyLines => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too_many_lines",
                e.to_string(),
            ),
            StockError::Write(_) => ApiError::internal(e),
            StockError::Db(e) => ApiError::failure(e),
        }
    }
}

/// The stock routes, nested under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(snapshot)).merge(
        OpenApiRouter::new()
            .routes(routes!(reconcile))
            .layer(DefaultBodyLimit::max(BODY_LIMIT)),
    )
}

/// Query of the snapshot.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SnapshotQuery {
    /// The site: its GLN or its id.
    site: String,
    /// `lot` (default: per GTIN, lot, expiry and status) or `serial` (one row per pack).
    #[serde(default)]
    by: Option<By>,
    /// `json` (default) or `csv`; without it, `Accept: text/csv` asks for CSV.
    #[serde(default)]
    format: Option<Format>,
}

/// Query of the reconciliation.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReconcileQuery {
    /// The site: its GLN or its id.
    site: String,
    /// `json` (default) or `csv`; without it, `Accept: text/csv` asks for CSV.
    #[serde(default)]
    format: Option<Format>,
}

/// The format asked for: the query's, else CSV if the client accepts CSV and not JSON.
fn chosen(format: Option<Format>, headers: &HeaderMap) -> Format {
    format.unwrap_or_else(|| {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if accept.contains("text/csv") && !accept.contains("json") {
            Format::Csv
        } else {
            Format::Json
        }
    })
}

fn as_of_header(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""))
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8",
    }
}

/// A site's on-hand stock at one point in time: by lot (GTIN, lot, expiry, status,
/// quantity; summed over the site's locations) or by serial (one row per pack, with its
/// location and container). The rows are read in one database transaction that sees one
/// state, and `as_of` (the JSON field and the `Swt-As-Of` header) is the moment it shows.
/// On hand: every status but `shipped` and `destroyed`. The answer is streamed page by
/// page: a failure after the first page ends the transfer early (the client sees an
/// incomplete chunked body), never a complete-looking short file.
#[utoipa::path(get, path = "/stock/snapshot", tag = "stock", params(SnapshotQuery),
    security(("integration_key" = []), ("bearer" = [])),
    responses((status = 200, description = "the snapshot; header Swt-As-Of: its moment (RFC 3339)",
            content((SnapshotDoc = "application/json"), (String = "text/csv"))),
        (status = 400, description = "bad_request: no site, or an unknown by or format"),
        (status = 401, description = "no valid integration key or access token"),
        (status = 403, description = "forbidden: a role other than manager or admin"),
        (status = 404, description = "unknown_site: not a site of the caller's organisation")))]
async fn snapshot(
    State(state): State<AppState>,
    ErpOrManager(caller): ErpOrManager,
    Query(q): Query<SnapshotQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let format = chosen(q.format, &headers);
    let by = q.by.unwrap_or_default();
    let mut snap = Snapshot::open(&state.db, &caller.org_id, &q.site, by, format).await?;
    let as_of = super::rfc3339(&snap.as_of());
    let file = format!("stock-{}-{}.csv", snap.site().gln, by.as_str());
    // The first page is read before answering, so that what fails early is a JSON error.
    let first = snap.next_chunk().await?;
    tracing::info!(site = %snap.site().id, by = by.as_str(), caller = %caller.user_id,
        as_of = %as_of, "stock snapshot");
    let pages = futures_util::stream::unfold(Some((snap, first)), |state| async move {
        let (mut snap, first) = state?;
        let next = match first {
            Some(chunk) => Ok(Some(chunk)),
            None => snap.next_chunk().await,
        };
        match next {
            Ok(Some(chunk)) => Some((Ok::<Bytes, StockError>(chunk), Some((snap, None)))),
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "stock snapshot failed while streaming");
                // The snapshot (and its transaction) goes; the body ends after the error.
                Some((Err(e), None))
            }
        }
    });
    let mut response = Body::from_stream(pages).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(format)),
    );
    h.insert(AS_OF, as_of_header(&as_of));
    if format == Format::Csv
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// Compares the ERP's stock of a site with swt's on-hand packs there, per GTIN and lot,
/// in one database transaction: every pair that differs or is on one side only (state
/// `differs`, `only_in_erp`, `only_in_swt`), counts of matching pairs, totals and
/// `as_of`. The ERP's stock is CSV (`Content-Type: text/csv`; a header line naming
/// `gtin,lot,quantity`, optionally `expiry`) or JSON. A snapshot with any bad line
/// (malformed, bad check digit, quantity not a whole number ≥ 0, a GTIN and lot twice) is
/// refused whole, naming the lines (CSV line numbers, the header being line 1; JSON
/// `lines[i]`). At most 200,000 lines and 16 MiB.
#[utoipa::path(post, path = "/stock/reconcile", tag = "stock", params(ReconcileQuery),
    security(("integration_key" = []), ("bearer" = [])),
    request_body(description = "the ERP's stock at the site",
        content((ErpSnapshot = "application/json"), (String = "text/csv"))),
    responses((status = 200, description = "the report; header Swt-As-Of: the moment swt's side shows",
            content((ReconcileReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "bad_request: not JSON of the snapshot's shape, or the CSV header is wrong"),
        (status = 401, description = "no valid integration key or access token"),
        (status = 403, description = "forbidden: a role other than manager or admin"),
        (status = 404, description = "unknown_site: not a site of the caller's organisation"),
        (status = 413, description = "payload_too_large: more than 16 MiB"),
        (status = 415, description = "unsupported_media_type: neither JSON nor CSV"),
        (status = 422, description = "invalid_snapshot (the bad lines named) or too_many_lines")))]
async fn reconcile(
    State(state): State<AppState>,
    ErpOrManager(caller): ErpOrManager,
    Query(q): Query<ReconcileQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let format = chosen(q.format, &headers);
    let sent = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let lines = if sent.contains("json") {
        super::read_json(&body)?
    } else if sent.contains("csv") || sent.starts_with("text/plain") {
        super::read_csv(&body)?
    } else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the ERP's stock as Content-Type: text/csv or application/json",
        ));
    };
    let report = super::reconcile(&state.db, &caller.org_id, &q.site, &lines).await?;
    tracing::info!(site = %report.site_id, caller = %caller.user_id, as_of = %report.as_of,
        lines = report.summary.erp_lines, differing = report.lines.len(), "stock reconciled");
    respond(&report, format)
}

fn respond(report: &ReconcileReport, format: Format) -> Result<Response, ApiError> {
    let as_of = as_of_header(&report.as_of);
    match format {
        Format::Json => {
            let mut r = axum::Json(report).into_response();
            r.headers_mut().insert(AS_OF, as_of);
            Ok(r)
        }
        Format::Csv => {
            let body = super::report_csv(report)?;
            let s = &report.summary;
            let mut r = (StatusCode::OK, body).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(format)),
            );
            h.insert(AS_OF, as_of);
            for (name, n) in [
                ("swt-matching", s.matching),
                ("swt-erp-total", s.erp_total),
                ("swt-swt-total", s.swt_total),
            ] {
                h.insert(HeaderName::from_static(name), HeaderValue::from(n));
            }
            Ok(r)
        }
    }
}
