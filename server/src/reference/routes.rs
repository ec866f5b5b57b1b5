//! `/api/v1/reference/{site}` (everyone of the organisation; a scanner or site-bound user
//! only for its own site), `/api/v1/products` (managers load, everyone reads) and
//! `/api/v1/sites/{site}/expiry-policy|locations/{code}` (managers).

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ReferenceError;
use super::products::{self, ProductInput, ProductReport, ProductView};
use crate::auth::{Principal, Role};
use crate::http::{ApiError, json_body};
use crate::state::AppState;
use swt_domain::model::ExpiryPolicy;

impl From<ReferenceError> for ApiError {
    fn from(e: ReferenceError) -> Self {
        match e {
            ReferenceError::UnknownSite(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            ReferenceError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m),
            ReferenceError::Db(_) => ApiError::failure(e),
        }
    }
}

const MANAGERS: &[Role] = &[Role::Manager, Role::Admin];

/// A product master of 100,000 lines as JSON is ~15 MB.
const PRODUCTS_BODY_LIMIT: usize = 32 * 1024 * 1024;

/// The routes, for the router to nest under `/api/v1`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(reference))
        .merge(
            OpenApiRouter::new()
                .routes(routes!(list_products, load_products))
                .layer(DefaultBodyLimit::max(PRODUCTS_BODY_LIMIT)),
        )
        .routes(routes!(set_expiry_policy))
        .routes(routes!(set_location, remove_location))
}

/// Query of the reference route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ReferenceQuery {
    /// The version the caller holds; absent or 0 for a full copy.
    since: Option<u64>,
}

/// A site's reference data for the scan rules: `{"kind":"current"}` when `since` is the
/// current version, `{"kind":"delta",…}` with the changes since it, or `{"kind":"full",…}`
/// (products by GTIN, recalled lots and blocked serials grouped by GTIN, expiry policy,
/// locations). Served gzip-compressed to clients that accept it.
#[utoipa::path(get, path = "/reference/{site}", tag = "reference",
    params(("site" = String, Path, description = "site id"), ReferenceQuery),
    responses((status = 200, description = "ReferenceUpdate: current, delta or full", body = Object),
        (status = 400, description = "bad version"), (status = 403, description = "another site than the caller's"),
        (status = 404, description = "no such site in this organisation")))]
async fn reference(
    State(s): State<AppState>,
    p: Principal,
    Path(site): Path<String>,
    Query(q): Query<ReferenceQuery>,
) -> Result<Json<swt_domain::api::ReferenceUpdate>, ApiError> {
    if let Some(own) = &p.site_id
        && *own != site
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "wrong_site",
            format!("this account works at site {own}, not {site}"),
        ));
    }
    Ok(Json(super::update(&s.db, &p.org_id, &site, q.since).await?))
}

/// Page of the product list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ProductQuery {
    /// Products after this GTIN-14 (the last of the previous page).
    after: Option<String>,
    /// At most this many (default 500, at most 5,000).
    limit: Option<u64>,
}

/// The organisation's product master, by GTIN.
#[utoipa::path(get, path = "/products", tag = "reference", params(ProductQuery),
    responses((status = 200, body = Vec<ProductView>), (status = 400, description = "bad limit")))]
async fn list_products(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<ProductQuery>,
) -> Result<Json<Vec<ProductView>>, ApiError> {
    let limit = q.limit.unwrap_or(500);
    if !(1..=5_000).contains(&limit) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "limit must be 1 to 5000",
        ));
    }
    Ok(Json(
        products::list(&s.db, &p.org_id, q.after.as_deref(), limit).await?,
    ))
}

/// Options of a product load.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct LoadQuery {
    /// Write nothing if any product is bad.
    #[serde(default)]
    strict: bool,
}

/// Loads products (upserts by GTIN; managers). Bad entries are reported by their 1-based
/// position and reason; the good ones are written unless `strict`.
#[utoipa::path(put, path = "/products", tag = "reference", params(LoadQuery),
    request_body = Vec<ProductInput>,
    responses((status = 200, body = ProductReport), (status = 400, description = "not a JSON list of products, or too many"),
        (status = 403, description = "role")))]
async fn load_products(
    State(s): State<AppState>,
    p: Principal,
    Query(q): Query<LoadQuery>,
    body: Bytes,
) -> Result<Json<ProductReport>, ApiError> {
    p.require(MANAGERS)?;
    // Entries are decoded one by one, so one bad entry is reported, not the whole list.
    let list: Vec<serde_json::Value> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("request body must be a JSON list of products: {e}"),
        )
    })?;
    let input: Vec<products::Numbered> = list
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            (
                i as u64 + 1,
                serde_json::from_value(v).map_err(|e| e.to_string()),
            )
        })
        .collect();
    let report = products::load(&s.db, &p.org_id, &input, q.strict).await?;
    tracing::info!(imported = report.imported, bad = report.bad, by = %p.user_id, "products loaded");
    Ok(Json(report))
}

/// A site's expiry policy as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    /// Packs expiring within this many days are flagged `expires_soon` (0 to 3650).
    min_remaining_days: u32,
    /// Expired packs are rejected (else flagged).
    reject_expired: bool,
}

/// What a reference change answers: the version scanners will fetch.
#[derive(Debug, serde::Serialize, ToSchema)]
struct VersionView {
    version: u64,
}

/// Sets a site's expiry policy (managers).
#[utoipa::path(put, path = "/sites/{site}/expiry-policy", tag = "reference",
    params(("site" = String, Path, description = "site id")), request_body = PolicyBody,
    responses((status = 200, body = VersionView), (status = 400, description = "bad policy"),
        (status = 403, description = "role"), (status = 404, description = "no such site")))]
async fn set_expiry_policy(
    State(s): State<AppState>,
    p: Principal,
    Path(site): Path<String>,
    body: Bytes,
) -> Result<Json<VersionView>, ApiError> {
    p.require(MANAGERS)?;
    let b: PolicyBody = json_body(&body)?;
    if b.min_remaining_days > 3650 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "min_remaining_days must be 0 to 3650",
        ));
    }
    let policy = ExpiryPolicy {
        min_remaining_days: b.min_remaining_days,
        reject_expired: b.reject_expired,
    };
    let version = super::set_policy(&s.db, &p.org_id, &site, &policy).await?;
    Ok(Json(VersionView { version }))
}

/// A location as sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LocationBody {
    /// Display name, 1 to 200 characters.
    name: String,
}

/// Adds or renames a location of a site (managers).
#[utoipa::path(put, path = "/sites/{site}/locations/{code}", tag = "reference",
    params(("site" = String, Path, description = "site id"), ("code" = String, Path, description = "location code as on its label")),
    request_body = LocationBody,
    responses((status = 200, body = VersionView), (status = 400, description = "bad code or name"),
        (status = 403, description = "role"), (status = 404, description = "no such site")))]
async fn set_location(
    State(s): State<AppState>,
    p: Principal,
    Path((site, code)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<VersionView>, ApiError> {
    p.require(MANAGERS)?;
    let b: LocationBody = json_body(&body)?;
    let version = super::set_location(&s.db, &p.org_id, &site, &code, Some(&b.name)).await?;
    Ok(Json(VersionView { version }))
}

/// Removes a location of a site (managers).
#[utoipa::path(delete, path = "/sites/{site}/locations/{code}", tag = "reference",
    params(("site" = String, Path, description = "site id"), ("code" = String, Path, description = "location code")),
    responses((status = 200, body = VersionView), (status = 400, description = "bad code"),
        (status = 403, description = "role"), (status = 404, description = "no such site")))]
async fn remove_location(
    State(s): State<AppState>,
    p: Principal,
    Path((site, code)): Path<(String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    p.require(MANAGERS)?;
    let version = super::set_location(&s.db, &p.org_id, &site, &code, None).await?;
    Ok(Json(VersionView { version }))
}
