//! The console's pages: each reads through the same services as the API (so the same
//! organisation scoping and the same queries), and fills a view of [`super::view`].
//! Handlers answer `ApiError` like the API; [`super::session::guard`] turns its JSON into a
//! page.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use sea_orm::ExprTrait;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveEnum, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::Deserialize;
use swt_domain::unit::{UnitKey, split_sgtin};

use super::report;
use super::search::{self, Query as Search};
use super::session::{self, ConsoleUser, CsrfToken, local_target};
use super::view::*;
use crate::auth::{Role, service as auth};
use crate::db::entity::{
    app_user, product, projected_scan, return_verification, scan_activity, site, stock_level,
    sync_refusal, sync_state, task_document, trace_exception, trace_object,
};
use crate::http::ApiError;
use crate::state::AppState;
use crate::trace::dto::{ContentsQuery, ExceptionQuery, HistoryQuery, StockQuery};
use crate::trace::service as trace;

type Page = Result<Response, ApiError>;

/// One business day: DSCSA's time to answer a tracing request, and when an open
/// exception turns late.
const LATE_MS: i64 = 24 * 3600 * 1000;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

/// `2026-12-07 14:03` (UTC) from epoch milliseconds.
fn when_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// A projected object's last event time (`i64::MIN` when no event has a time yet).
fn last_event(ms: i64) -> String {
    if ms > i64::MIN {
        when_ms(ms)
    } else {
        String::new()
    }
}

/// The same from an RFC 3339 text (the trace DTOs' form).
fn when_text(t: &str) -> String {
    DateTime::parse_from_rfc3339(t)
        .map(|t| t.with_timezone(&Utc).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|_| t.to_owned())
}

fn ms_of(t: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(t)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `3 h 12 min`, `2 d 4 h`.
fn age(ms: i64) -> String {
    let mins = Ord::max(ms, 0) / 60_000;
    match mins {
        m if m < 60 => format!("{m} min"),
        m if m < 24 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), (m / 60) % 24),
    }
}

fn status_text(s: &trace_object::UnitStatus) -> String {
    s.to_value()
}

/// The page of a traced object.
fn unit_href(key: &str) -> String {
    let k: String = percent_encoding::utf8_percent_encode(key, SEGMENT).collect();
    format!("/units/{k}")
}

/// What a path segment must escape (a serial may hold `/`, `?`, `#`, `%`).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':');

fn lot_href(gtin: &str, lot: &str) -> String {
    let l: String = percent_encoding::utf8_percent_encode(lot, SEGMENT).collect();
    format!("/lots/{gtin}/{l}")
}

fn query_string(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        s.append_pair(k, v);
    }
    s.finish()
}

/// Back to `path` after a form, saying what happened (the page shows `notice`).
fn with_notice(path: &str, notice: &str) -> Response {
    Redirect::to(&format!("{path}?{}", query_string(&[("notice", notice)]))).into_response()
}

async fn sites(db: &DatabaseConnection, org: &str) -> Result<Vec<site::Model>, ApiError> {
    Ok(site::Entity::find()
        .filter(site::Column::OrganisationId.eq(org))
        .order_by_asc(site::Column::Name)
        .all(db)
        .await?)
}

async fn site_names(
    db: &DatabaseConnection,
    org: &str,
) -> Result<HashMap<String, String>, ApiError> {
    Ok(sites(db, org)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect())
}

fn site_name(names: &HashMap<String, String>, id: Option<&str>) -> String {
    id.map(|i| names.get(i).cloned().unwrap_or_else(|| i.to_owned()))
        .unwrap_or_default()
}

async fn product_names(
    db: &DatabaseConnection,
    org: &str,
) -> Result<HashMap<String, String>, ApiError> {
    Ok(product::Entity::find()
        .filter(product::Column::OrganisationId.eq(org))
        .all(db)
        .await?
        .into_iter()
        .map(|p| {
            let name = match &p.strength {
                Some(s) => format!("{} {s}", p.name),
                None => p.name.clone(),
            };
            (p.gtin, name)
        })
        .collect())
}

async fn chrome(
    state: &AppState,
    user: &ConsoleUser,
    csrf: &CsrfToken,
    section: &str,
) -> Result<Chrome, ApiError> {
    let name = app_user::Entity::find_by_id(user.principal.user_id.as_str())
        .one(&state.db)
        .await?
        .map_or_else(|| user.principal.user_id.clone(), |u| u.display_name);
    Ok(Chrome::new(user, name, &csrf.0, section))
}

fn html<T: askama::Template>(page: &T) -> Page {
    Ok(render(StatusCode::OK, page))
}

mod admin;
mod devices;
mod exceptions;
mod find;
mod integrations;
mod lots;
mod overview;
mod reports;
mod returns;
mod sign_in;
mod stock;
mod tasks;
mod units;

pub use admin::*;
pub use devices::*;
pub use exceptions::*;
pub use find::*;
pub use integrations::*;
pub use lots::*;
pub use overview::*;
pub use reports::*;
pub use returns::*;
pub use sign_in::*;
pub use stock::*;
pub use tasks::*;
pub use units::*;
