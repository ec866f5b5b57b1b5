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
    app_user, device, product, projected_scan, return_verification, scan_activity, site,
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

// ---- sign-in ----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

/// The sign-in form.
pub async fn login_form(
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<LoginQuery>,
) -> Response {
    render(
        StatusCode::OK,
        &LoginPage {
            csrf: csrf.0,
            next: local_target(q.next.as_deref()),
            username: String::new(),
            error: None,
        },
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// Signs in: the API's sign-in (throttle included), then the session cookies. Roles the
/// console is not for are refused here, and their new session ended at once.
pub async fn login(
    State(state): State<AppState>,
    Extension(csrf): Extension<CsrfToken>,
    addr: crate::auth::throttle::ClientAddr,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let again = |status: StatusCode, error: String| {
        render(
            status,
            &LoginPage {
                csrf: csrf.0.clone(),
                next: local_target(form.next.as_deref()),
                username: form.username.chars().take(128).collect(),
                error: Some(error),
            },
        )
    };
    let result = auth::login(
        &state.db,
        &state.keys,
        &state.throttle,
        addr,
        &form.username,
        &form.password,
        None,
    )
    .await;
    let signed = match result {
        Ok(s) => s,
        Err(e) => {
            let api = ApiError::from(e);
            tracing::warn!(username = %form.username, code = api.code(), "console sign-in refused");
            let message = match api.code() {
                "invalid_credentials" => "Wrong user name or password.".to_owned(),
                _ => api.to_string(),
            };
            return again(api.status(), message);
        }
    };
    let allowed = signed
        .user
        .role
        .parse::<Role>()
        .is_ok_and(session::console_role);
    if !allowed {
        if let Err(e) = auth::logout(&state.db, &signed.refresh_token).await {
            tracing::warn!(error = %e, "ending a refused console session");
        }
        state.status.forget();
        return again(
            StatusCode::FORBIDDEN,
            format!(
                "The console is for managers and administrators; a {} works on the scanner app.",
                signed.user.role.replace('_', " ")
            ),
        );
    }
    tracing::info!(user = %signed.user.id, "signed in to the console");
    let mut response = Redirect::to(&local_target(form.next.as_deref())).into_response();
    for v in session::session_cookies(&headers, &signed) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// Signs out: ends the session on the server (every token of it) and in the browser.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(refresh) = session::cookie(&headers, session::REFRESH_COOKIE)
        && let Err(e) = auth::logout(&state.db, &refresh).await
    {
        tracing::warn!(error = %e, "console sign-out");
    }
    state.status.forget();
    let mut response = Redirect::to("/login").into_response();
    for v in session::cleared_cookies(&headers) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

// ---- overview ---------------------------------------------------------------------

/// Today's work, open exceptions with their clocks, and the sync backlog.
pub async fn overview(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let now = Utc::now();
    let midnight = now
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map_or(now, |t| t.and_utc());
    // Today's work from the task documents (a few thousand rows a year, each with its
    // scan count), not from the events (millions).
    let today: Vec<(String, i64, Option<i64>)> = task_document::Entity::find()
        .select_only()
        .column(task_document::Column::Kind)
        .column_as(Expr::col(task_document::Column::Id).count(), "n")
        .column_as(
            Expr::col(task_document::Column::ScanCount)
                .sum()
                .cast_as("bigint"),
            "scans",
        )
        .filter(task_document::Column::OrganisationId.eq(org))
        .filter(task_document::Column::UpdatedAt.gte(midnight))
        .group_by(task_document::Column::Kind)
        .into_tuple()
        .all(db)
        .await?;
    let by_kind = |kinds: &[&str]| {
        today
            .iter()
            .filter(|(k, _, _)| kinds.contains(&k.as_str()))
            .fold((0i64, 0i64), |(n, s), (_, tn, ts)| {
                (n + tn, s + ts.unwrap_or(0))
            })
    };
    let tile = |label: &str, (tasks, scans): (i64, i64)| Tile {
        label: label.to_owned(),
        value: scans.to_string(),
        sub: format!("scans in {tasks} task{}", if tasks == 1 { "" } else { "s" }),
    };
    let open_exceptions = trace_exception::Entity::find()
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .filter(trace_exception::Column::State.eq("open"))
        .count(db)
        .await?;
    let tiles = vec![
        tile("Received", by_kind(&["receiving", "receive"])),
        tile(
            "Picked and packed",
            by_kind(&["picking", "pick", "packing", "pack"]),
        ),
        tile("Shipped", by_kind(&["shipping", "ship"])),
        tile("Returns", by_kind(&["returns", "return"])),
        Tile {
            label: "Open exceptions".into(),
            value: open_exceptions.to_string(),
            sub: "see the work queue".into(),
        },
    ];
    let names = site_names(db, org).await?;
    let now_ms = now.timestamp_millis();
    let oldest: Vec<trace_exception::Model> = trace_exception::Entity::find()
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .filter(trace_exception::Column::State.eq("open"))
        .order_by_asc(trace_exception::Column::CreatedAtMs)
        .limit(10)
        .all(db)
        .await?;
    let exceptions = oldest
        .into_iter()
        .map(|e| {
            let open_ms = now_ms - e.created_at_ms;
            ExceptionLine {
                object_href: e.epc_key.as_deref().map(unit_href),
                object: e.epc_key.clone().unwrap_or_default(),
                site: site_name(&names, e.site_id.as_deref()),
                age: age(open_ms),
                urgency: if open_ms > LATE_MS { "late" } else { "" },
                kind: e.kind.replace('_', " "),
                id: e.id,
            }
        })
        .collect();
    let projection_backlog = task_document::Entity::find()
        .filter(task_document::Column::OrganisationId.eq(org))
        .filter(task_document::Column::NeedsProjection.eq(true))
        .count(db)
        .await?;
    let devices = device_rows(db, org, &names).await?;
    let day_ago = now - chrono::Duration::hours(24);
    let stale = devices
        .iter()
        .filter(|d| !d.disabled && d.last_sync_at.is_none_or(|t| t < day_ago))
        .count() as u64;
    let refusals = devices.iter().map(|d| d.row.refusals).sum();
    let charts = overview_charts(db, org, &names, now_ms).await?;
    let mut chrome = chrome(&state, &user, &csrf, "/").await?;
    chrome.query.clear();
    html(&OverviewPage {
        chrome,
        today: now.format("%Y-%m-%d").to_string(),
        tiles,
        exceptions,
        projection_backlog,
        stale_devices: stale,
        devices: devices.len() as u64,
        refusals,
        charts,
    })
}

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Scans per hour by site (7 days), exceptions opened and closed per day (30 days),
/// returns verdicts: each from a small table or a rollup, never from the events.
async fn overview_charts(
    db: &DatabaseConnection,
    org: &str,
    names: &HashMap<String, String>,
    now_ms: i64,
) -> Result<Vec<Chart>, ApiError> {
    let mut charts = Vec::new();
    let since = now_ms - 7 * DAY_MS;
    let rows: Vec<(String, i64, i64)> = scan_activity::Entity::find()
        .select_only()
        .column(scan_activity::Column::SiteId)
        .column(scan_activity::Column::HourMs)
        .column_as(
            Expr::col(scan_activity::Column::Scans)
                .sum()
                .cast_as("bigint"),
            "scans",
        )
        .filter(scan_activity::Column::OrganisationId.eq(org))
        .filter(scan_activity::Column::HourMs.gte(since))
        .group_by(scan_activity::Column::SiteId)
        .group_by(scan_activity::Column::HourMs)
        .order_by_asc(scan_activity::Column::HourMs)
        .into_tuple()
        .all(db)
        .await?;
    // Every hour of the week, so that a quiet hour is a zero rather than a straight line
    // from the last busy one.
    const HOUR: i64 = 3_600_000;
    let first = since.div_euclid(HOUR) * HOUR;
    let hours: Vec<i64> = (first..=now_ms).step_by(HOUR as usize).collect();
    let mut by_site: std::collections::BTreeMap<String, std::collections::BTreeMap<i64, u64>> =
        Default::default();
    for (site, hour, n) in rows {
        let counts = by_site
            .entry(site_name(names, Some(&site)))
            .or_insert_with(|| hours.iter().map(|h| (*h, 0)).collect());
        *counts.entry(hour).or_default() += u64::try_from(n).unwrap_or(0);
    }
    let series: Vec<(String, Vec<(i64, u64)>)> = by_site
        .into_iter()
        .map(|(site, counts)| (site, counts.into_iter().collect()))
        .collect();
    charts.extend(super::charts::lines(
        "Scans per hour by site, last 7 days",
        &series,
        "scans",
    ));
    let month_ago = now_ms - 30 * DAY_MS;
    let exceptions: Vec<(i64, Option<i64>)> = trace_exception::Entity::find()
        .select_only()
        .column(trace_exception::Column::CreatedAtMs)
        .column(trace_exception::Column::ResolvedAtMs)
        .filter(trace_exception::Column::OrganisationId.eq(org))
        .filter(
            sea_orm::Condition::any()
                .add(trace_exception::Column::CreatedAtMs.gte(month_ago))
                .add(trace_exception::Column::ResolvedAtMs.gte(month_ago)),
        )
        .into_tuple()
        .all(db)
        .await?;
    let day = |ms: i64| ms.div_euclid(DAY_MS) * DAY_MS;
    let mut opened: std::collections::BTreeMap<i64, u64> = Default::default();
    let mut closed: std::collections::BTreeMap<i64, u64> = Default::default();
    let first = day(month_ago);
    for d in (first..=day(now_ms)).step_by(DAY_MS as usize) {
        opened.insert(d, 0);
        closed.insert(d, 0);
    }
    for (created, resolved) in exceptions {
        if created >= first {
            *opened.entry(day(created)).or_default() += 1;
        }
        if let Some(r) = resolved.filter(|r| *r >= first) {
            *closed.entry(day(r)).or_default() += 1;
        }
    }
    charts.extend(super::charts::lines(
        "Exceptions opened and resolved per day, last 30 days",
        &[
            ("opened".to_owned(), opened.into_iter().collect()),
            ("resolved".to_owned(), closed.into_iter().collect()),
        ],
        "exceptions",
    ));
    let verdicts: Vec<(return_verification::ReturnState, i64)> =
        return_verification::Entity::find()
            .select_only()
            .column(return_verification::Column::State)
            .column_as(Expr::col(return_verification::Column::ScanId).count(), "n")
            .filter(return_verification::Column::OrganisationId.eq(org))
            .group_by(return_verification::Column::State)
            .into_tuple()
            .all(db)
            .await?;
    let (labels, values): (Vec<String>, Vec<u64>) = verdicts
        .into_iter()
        .map(|(s, n)| (s.as_str().to_owned(), u64::try_from(n).unwrap_or(0)))
        .unzip();
    charts.extend(super::charts::bars(
        "Returns verdicts",
        &labels,
        &values,
        "returned packs",
    ));
    Ok(charts)
}

/// Packs by expiry, for the expiry profile: with a GTIN or lot filter, every pack of it
/// (a range of the stock index); without, the lines of the page shown. A whole
/// organisation's profile would read every object (5 million at 10 million events),
/// which no page may do.
async fn expiry_counts(
    db: &DatabaseConnection,
    org: &str,
    q: &StockQuery,
    page: &[crate::trace::dto::StockLine],
) -> Result<(bool, Vec<(Option<String>, u64)>), ApiError> {
    let status = q.status.unwrap_or(trace_object::UnitStatus::InStock);
    if q.gtin.is_none() && q.lot.is_none() {
        let wanted = status_text(&status);
        return Ok((
            false,
            page.iter()
                .filter(|l| l.status == wanted)
                .map(|l| (l.expiry.clone(), l.count))
                .collect(),
        ));
    }
    let mut sel = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::Expiry)
        .column_as(Expr::col(trace_object::Column::EpcKey).count(), "n")
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Kind.eq("sgtin"))
        .filter(trace_object::Column::Expiry.is_not_null())
        .filter(trace_object::Column::Status.eq(status));
    if let Some(g) = &q.gtin {
        sel = sel.filter(trace_object::Column::Gtin.eq(g.as_str()));
    }
    if let Some(l) = &q.lot {
        sel = sel.filter(trace_object::Column::Lot.eq(l.as_str()));
    }
    if let Some(site) = &q.site_id {
        sel = sel.filter(trace_object::Column::SiteId.eq(site.as_str()));
    }
    let rows: Vec<(Option<String>, i64)> = sel
        .group_by(trace_object::Column::Expiry)
        .into_tuple()
        .all(db)
        .await?;
    Ok((
        true,
        rows.into_iter()
            .map(|(e, n)| (e, u64::try_from(n).unwrap_or(0)))
            .collect(),
    ))
}

/// Packs by expiry month, the expired ones first: what has to be sold, moved or destroyed
/// soon.
fn expiry_profile(whole: bool, rows: Vec<(Option<String>, u64)>) -> Option<Chart> {
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let this_month = &today[..7];
    let mut months: std::collections::BTreeMap<String, u64> = Default::default();
    let mut expired = 0u64;
    for (expiry, n) in rows {
        let Some(e) = expiry else {
            continue;
        };
        if e.as_str() < today.as_str() {
            expired += n;
        } else if let Some(month) = e.get(..7) {
            *months.entry(month.to_owned()).or_default() += n;
        }
    }
    // Months up to two years ahead, one bar each; later ones in one bar.
    let horizon = format!(
        "{}{}",
        this_month[..4].parse::<u32>().map_or(0, |y| y + 2),
        &this_month[4..]
    );
    let (mut labels, mut values) = (vec!["expired".to_owned()], vec![expired]);
    let mut later = 0u64;
    for (m, n) in months {
        if m.as_str() > horizon.as_str() {
            later += n;
        } else {
            labels.push(m);
            values.push(n);
        }
    }
    if later > 0 {
        labels.push(format!("after {horizon}"));
        values.push(later);
    }
    let title = if whole {
        "Expiry profile"
    } else {
        "Expiry profile of the lines on this page (filter by GTIN or lot for all of it)"
    };
    super::charts::bars(title, &labels, &values, "packs")
}

// ---- search -----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// The search box: goes straight to the page of what the query names, or lists the
/// candidates, or says that nothing matches.
pub async fn search(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<SearchQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let (message, hits) = match search::classify(&q.q) {
        Search::Empty => (String::new(), Vec::new()),
        Search::Unit(key) => {
            let k = key.key();
            if exists(db, org, &k).await? {
                return Ok(Redirect::to(&unit_href(&k)).into_response());
            }
            (
                format!(
                    "{} is not known to swt: no scan has named it.",
                    describe(&key)
                ),
                Vec::new(),
            )
        }
        Search::Lot {
            gtin,
            lot,
            lost_separator,
        } => {
            // A reading that splits off a known serial wins: the scanner lost a separator.
            for (l, serial) in &lost_separator {
                let k = swt_domain::unit::sgtin_key(&gtin, serial);
                if exists(db, org, &k).await? {
                    let _ = l;
                    return Ok(Redirect::to(&unit_href(&k)).into_response());
                }
            }
            if lot_exists(db, org, Some(&gtin), &lot).await? {
                return Ok(Redirect::to(&lot_href(&gtin, &lot)).into_response());
            }
            (
                format!("No pack of GTIN {gtin} lot {lot} is known to swt."),
                Vec::new(),
            )
        }
        Search::Gtin(gtin) => {
            if gtin_known(db, org, &gtin).await? {
                return Ok(
                    Redirect::to(&format!("/stock?{}", query_string(&[("gtin", &gtin)])))
                        .into_response(),
                );
            }
            text_hits(db, org, q.q.trim()).await?
        }
        Search::GlnOrGtin13(digits) => {
            if let Some(r) = gln_target(db, org, &digits).await? {
                return Ok(r);
            }
            let gtin = format!("0{digits}");
            if gtin_known(db, org, &gtin).await? {
                return Ok(
                    Redirect::to(&format!("/stock?{}", query_string(&[("gtin", &gtin)])))
                        .into_response(),
                );
            }
            text_hits(db, org, &digits).await?
        }
        Search::Gln(gln) => match gln_target(db, org, &gln).await? {
            Some(r) => return Ok(r),
            None => (
                format!("GLN {gln} is not a site or partner of this organisation."),
                Vec::new(),
            ),
        },
        Search::Text(text) => text_hits(db, org, &text).await?,
        Search::Unsupported(ais) => (
            format!("This GS1 code holds {ais}, which names no pack, container, lot or location."),
            Vec::new(),
        ),
    };
    // One hit is where the user wanted to go.
    if let [only] = hits.as_slice() {
        return Ok(Redirect::to(&only.href).into_response());
    }
    let mut chrome = chrome(&state, &user, &csrf, "").await?;
    chrome.query = q.q.chars().take(search::MAX_QUERY).collect();
    html(&SearchPage {
        chrome,
        message,
        hits,
    })
}

fn describe(key: &UnitKey) -> String {
    match key {
        UnitKey::Sscc(s) => format!("SSCC {s}"),
        UnitKey::Sgtin { gtin, serial } => format!("Pack GTIN {gtin} serial {serial}"),
    }
}

async fn exists(db: &DatabaseConnection, org: &str, key: &str) -> Result<bool, ApiError> {
    Ok(
        trace_object::Entity::find_by_id((org.to_owned(), key.to_owned()))
            .count(db)
            .await?
            > 0,
    )
}

async fn lot_exists(
    db: &DatabaseConnection,
    org: &str,
    gtin: Option<&str>,
    lot: &str,
) -> Result<bool, ApiError> {
    let mut q = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Lot.eq(lot));
    if let Some(g) = gtin {
        q = q.filter(trace_object::Column::Gtin.eq(g));
    }
    Ok(q.limit(1).count(db).await? > 0)
}

async fn gtin_known(db: &DatabaseConnection, org: &str, gtin: &str) -> Result<bool, ApiError> {
    let product = product::Entity::find()
        .filter(product::Column::OrganisationId.eq(org))
        .filter(product::Column::Gtin.eq(gtin))
        .count(db)
        .await?;
    if product > 0 {
        return Ok(true);
    }
    Ok(trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Gtin.eq(gtin))
        .limit(1)
        .count(db)
        .await?
        > 0)
}

/// A GLN of one of our sites goes to its stock; a partner's to the partners list.
async fn gln_target(
    db: &DatabaseConnection,
    org: &str,
    gln: &str,
) -> Result<Option<Response>, ApiError> {
    if let Some(s) = site::Entity::find()
        .filter(site::Column::OrganisationId.eq(org))
        .filter(site::Column::Gln.eq(gln))
        .one(db)
        .await?
    {
        return Ok(Some(
            Redirect::to(&format!("/stock?{}", query_string(&[("site_id", &s.id)])))
                .into_response(),
        ));
    }
    Ok(None)
}

/// Free text: a serial (any GTIN), a lot, or an order number.
async fn text_hits(
    db: &DatabaseConnection,
    org: &str,
    text: &str,
) -> Result<(String, Vec<Hit>), ApiError> {
    const MAX_HITS: u64 = 50;
    let mut hits = Vec::new();
    let serials = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Serial.eq(text))
        .limit(MAX_HITS)
        .all(db)
        .await?;
    for o in serials {
        hits.push(Hit {
            href: unit_href(&o.epc_key),
            label: format!("Serial {text}"),
            detail: format!(
                "GTIN {} · {} · {}",
                o.gtin.unwrap_or_default(),
                status_text(&o.status),
                o.lot.map(|l| format!("lot {l}")).unwrap_or_default()
            ),
        });
    }
    let lots: Vec<(Option<String>, i64)> = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::Gtin)
        .column_as(Expr::col(trace_object::Column::EpcKey).count(), "n")
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Lot.eq(text))
        .group_by(trace_object::Column::Gtin)
        .limit(MAX_HITS)
        .into_tuple()
        .all(db)
        .await?;
    for (gtin, n) in lots {
        if let Some(g) = gtin {
            hits.push(Hit {
                href: lot_href(&g, text),
                label: format!("Lot {text}"),
                detail: format!("GTIN {g} · {n} packs and cases"),
            });
        }
    }
    let orders = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::OrderRef.eq(text))
        .order_by_asc(trace_object::Column::EpcKey)
        .limit(MAX_HITS)
        .all(db)
        .await?;
    for o in orders {
        hits.push(Hit {
            href: unit_href(&o.epc_key),
            label: format!("Order {text}: {}", o.epc_key),
            detail: format!(
                "{} · {}",
                status_text(&o.status),
                last_event(o.last_event_time_ms)
            ),
        });
    }
    let message = match hits.len() {
        0 => format!(
            "Nothing matches {text:?}: no pack, container, serial, lot, GLN or order of this organisation."
        ),
        n => format!("{n} matches for {text:?}."),
    };
    Ok((message, hits))
}

// ---- a pack or container ----------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct CursorQuery {
    cursor: Option<String>,
}

/// A pack's or container's state and its history, newest first.
pub async fn unit(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Path(id): Path<String>,
    Query(q): Query<CursorQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let o = trace::object(db, org, &id).await?;
    let names = site_names(db, org).await?;
    let products = product_names(db, org).await?;
    let page = trace::history(
        db,
        org,
        &o.id,
        &HistoryQuery {
            limit: Some(100),
            cursor: q.cursor.clone(),
            order: Some("desc".into()),
        },
    )
    .await?;
    let mut props = Vec::new();
    let mut prop = |label: &'static str, value: Option<String>, href: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            props.push(Prop {
                label,
                value: v,
                href,
            });
        }
    };
    prop(
        "Product",
        o.gtin.as_ref().and_then(|g| products.get(g).cloned()),
        None,
    );
    prop(
        "GTIN",
        o.gtin.clone(),
        o.gtin
            .as_ref()
            .map(|g| format!("/stock?{}", query_string(&[("gtin", g)]))),
    );
    prop("Serial", o.serial.clone(), None);
    prop("SSCC", o.sscc.clone(), None);
    prop(
        "Lot",
        o.lot.clone(),
        match (&o.gtin, &o.lot) {
            (Some(g), Some(l)) => Some(lot_href(g, l)),
            _ => None,
        },
    );
    prop("Expiry", o.expiry.clone(), None);
    prop("Status", Some(status_text(&o.status)), None);
    prop("Site", Some(site_name(&names, o.site_id.as_deref())), None);
    prop("Location", o.location.clone(), None);
    prop(
        "Inside",
        o.parent.clone(),
        o.parent.as_deref().map(unit_href),
    );
    prop("Order", o.order_ref.clone(), None);
    prop("Digital Link", o.digital_link.clone(), None);
    prop(
        "Last event",
        o.last_event_time.as_deref().map(when_text),
        None,
    );
    let events = page
        .items
        .into_iter()
        .map(|e| TimelineEvent {
            time_short: when_text(&e.event_time),
            time: e.event_time,
            step: e.biz_step.unwrap_or_else(|| e.action.to_lowercase()),
            disposition: e.disposition.unwrap_or_default(),
            what: format!("{} {} ({})", e.event_type, e.action, e.role),
            place: [
                site_name(&names, e.site_id.as_deref()),
                e.location.unwrap_or_default(),
            ]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" · "),
            who: [e.user_id, e.device_id.map(|d| format!("device {d}"))]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" · "),
            event_id: e.event_id,
        })
        .collect();
    let href = unit_href(&o.id);
    let heading = match (&o.sscc, &o.gtin, &o.serial) {
        (Some(s), _, _) => format!("SSCC {s}"),
        (None, Some(g), Some(s)) => format!(
            "{} · serial {s}",
            products
                .get(g)
                .cloned()
                .unwrap_or_else(|| format!("GTIN {g}"))
        ),
        _ => o.id.clone(),
    };
    html(&UnitPage {
        chrome: chrome(&state, &user, &csrf, "").await?,
        heading,
        props,
        events,
        more_href: page
            .next_cursor
            .map(|c| format!("{href}?{}", query_string(&[("cursor", &c)]))),
        report_href: format!("{href}/report"),
        epcis_href: format!("{href}/epcis"),
        is_container: o.sscc.is_some(),
        sscc: o.sscc.clone().unwrap_or_default(),
    })
}

/// A container's tree, one page (depth first, like the API).
pub async fn container(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Path(sscc): Path<String>,
    Query(q): Query<CursorQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let key = UnitKey::sscc(&sscc).map_err(|e| bad_request(e.to_string()))?;
    let c = trace::contents(
        db,
        org,
        &key.key(),
        &ContentsQuery {
            max_depth: None,
            limit: Some(200),
            cursor: q.cursor.clone(),
        },
    )
    .await?;
    let names = site_names(db, org).await?;
    let summary = format!(
        "{} at {}{}",
        status_text(&c.container.status),
        site_name(&names, c.container.site_id.as_deref()),
        c.container
            .location
            .as_deref()
            .map(|l| format!(" · {l}"))
            .unwrap_or_default()
    );
    let items = c
        .items
        .into_iter()
        .map(|i| TreeRow {
            href: unit_href(&i.object.id),
            label: match (&i.object.sscc, &i.object.gtin, &i.object.serial) {
                (Some(s), _, _) => format!("SSCC {s}"),
                (None, Some(g), Some(s)) => format!("{g} · {s}"),
                _ => i.object.id.clone(),
            },
            depth: i.depth,
            lot: i.object.lot.unwrap_or_default(),
            expiry: i.object.expiry.unwrap_or_default(),
            status: status_text(&i.object.status),
            location: i.object.location.unwrap_or_default(),
        })
        .collect();
    html(&ContainerPage {
        chrome: chrome(&state, &user, &csrf, "").await?,
        summary,
        items,
        more_href: c
            .next_cursor
            .map(|n| format!("/containers/{sscc}?{}", query_string(&[("cursor", &n)]))),
        sscc: key.key().trim_start_matches("sscc:").to_owned(),
    })
}

// ---- stock ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct StockForm {
    #[serde(default)]
    gtin: String,
    #[serde(default)]
    lot: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    site_id: String,
    #[serde(default)]
    expiry_before: String,
    cursor: Option<String>,
}

const STATUSES: [(&str, &str); 9] = [
    ("", "Any status"),
    ("in_stock", "In stock"),
    ("picked", "Picked"),
    ("packed", "Packed"),
    ("shipped", "Shipped"),
    ("returned", "Returned"),
    ("quarantined", "Quarantined"),
    ("destroyed", "Destroyed"),
    ("unknown", "Unknown"),
];

/// Stock by GTIN, lot, expiry and status, filtered.
pub async fn stock(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(f): Query<StockForm>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let status = match f.status.as_str() {
        "" => None,
        s => Some(
            trace_object::UnitStatus::try_from_value(&s.to_owned())
                .map_err(|_| bad_request(format!("unknown status {s:?}")))?,
        ),
    };
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    let query = StockQuery {
        gtin: opt(&f.gtin),
        lot: opt(&f.lot),
        status,
        site_id: opt(&f.site_id),
        expiry_before: opt(&f.expiry_before),
        limit: Some(100),
        cursor: f.cursor.clone(),
    };
    let page = trace::stock(db, org, &query).await?;
    let (whole, counts) = expiry_counts(db, org, &query, &page.items).await?;
    let chart = expiry_profile(whole, counts);
    let products = product_names(db, org).await?;
    let lines = page
        .items
        .into_iter()
        .map(|l| StockRow {
            product: l
                .gtin
                .as_ref()
                .and_then(|g| products.get(g).cloned())
                .unwrap_or_default(),
            lot_href: match (&l.gtin, &l.lot) {
                (Some(g), Some(lot)) => Some(lot_href(g, lot)),
                _ => None,
            },
            gtin: l.gtin.unwrap_or_default(),
            lot: l.lot.unwrap_or_default(),
            expiry: l.expiry.unwrap_or_default(),
            status: l.status,
            count: l.count,
        })
        .collect();
    let more_href = page.next_cursor.map(|c| {
        format!(
            "/stock?{}",
            query_string(&[
                ("gtin", &f.gtin),
                ("lot", &f.lot),
                ("status", &f.status),
                ("site_id", &f.site_id),
                ("expiry_before", &f.expiry_before),
                ("cursor", &c),
            ])
        )
    });
    let sites = sites(db, org)
        .await?
        .into_iter()
        .map(|s| SiteOption {
            id: s.id,
            name: s.name,
        })
        .collect();
    html(&StockPage {
        chrome: chrome(&state, &user, &csrf, "/stock").await?,
        f: StockFilter {
            gtin: f.gtin,
            lot: f.lot,
            status: f.status,
            site_id: f.site_id,
            expiry_before: f.expiry_before,
        },
        statuses: STATUSES.to_vec(),
        sites,
        chart,
        lines,
        more_href,
    })
}

// ---- lot: recall impact -----------------------------------------------------------

/// Packs of a lot listed on one page.
const LOT_PAGE: u64 = 200;
/// Shipped packs of one order: (order, packs, last event time, latest scan).
type ShippedGroup = (Option<String>, i64, Option<i64>, Option<String>);

/// Orders of a lot whose customer is looked up.
const MAX_NAMED_ORDERS: usize = 50;

/// The customer (name and GLN) of the task a scan was recorded in.
async fn customer_of(state: &AppState, org: &str, scan: &str) -> Result<String, ApiError> {
    let doc: Option<String> = projected_scan::Entity::find_by_id((org.to_owned(), scan.to_owned()))
        .select_only()
        .column(projected_scan::Column::DocumentId)
        .into_tuple()
        .one(&state.db)
        .await?;
    let Some(doc) = doc else {
        return Ok(String::new());
    };
    let refs = crate::tasks::header_refs(&state.db, (*state.server_actor).clone(), &doc)
        .await
        .map_err(ApiError::from)?
        .unwrap_or_default();
    Ok(match (refs.get("customer"), refs.get("customer_gln")) {
        (Some(name), Some(gln)) => format!("{name} (GLN {gln})"),
        (Some(name), None) => name.clone(),
        (None, Some(gln)) => format!("GLN {gln}"),
        (None, None) => String::new(),
    })
}

/// Where every pack of a lot is: on hand by place, shipped by order, and the packs.
pub async fn lot(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Path((gtin, lot)): Path<(String, String)>,
    Query(q): Query<CursorQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let g = swt_domain::gs1::Gtin::parse(&gtin)
        .map_err(|e| bad_request(format!("GTIN {gtin:?}: {e}")))?;
    let where_ = trace::lot(db, org, &lot, Some(g.as_str())).await?;
    let names = site_names(db, org).await?;
    let products = product_names(db, org).await?;
    let facts = crate::serials::store::lot(db, org, &g, &lot).await.ok();
    let mut on_hand = Vec::new();
    let (mut shipped_n, mut returned_n, mut held_n) = (0u64, 0u64, 0u64);
    for p in &where_.places {
        match p.status.as_str() {
            "shipped" => shipped_n += p.count,
            "destroyed" => {}
            s => {
                if s == "returned" {
                    returned_n += p.count;
                }
                if s == "quarantined" {
                    held_n += p.count;
                }
                on_hand.push(PlaceRow {
                    site: site_name(&names, p.site_id.as_deref()),
                    location: p.location.clone().unwrap_or_default(),
                    status: p.status.clone(),
                    count: p.count,
                });
            }
        }
    }
    let shipped_rows: Vec<ShippedGroup> = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::OrderRef)
        .column_as(Expr::col(trace_object::Column::EpcKey).count(), "n")
        .column_as(
            Expr::col(trace_object::Column::LastEventTimeMs).max(),
            "last",
        )
        .column_as(Expr::col(trace_object::Column::LastScanId).max(), "scan")
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Lot.eq(lot.as_str()))
        .filter(trace_object::Column::Gtin.eq(g.as_str()))
        .filter(trace_object::Column::Status.eq(trace_object::UnitStatus::Shipped))
        .group_by(trace_object::Column::OrderRef)
        .into_tuple()
        .all(db)
        .await?;
    let mut shipped = Vec::with_capacity(shipped_rows.len());
    for (i, (order, n, last, scan)) in shipped_rows.into_iter().enumerate() {
        // Whom it went to is in the shipping task's header: the task of the scan that
        // shipped it. A recall of a big lot lists many orders; the first 50 are named.
        let to = match scan {
            Some(scan) if i < MAX_NAMED_ORDERS => customer_of(&state, org, &scan).await?,
            _ => String::new(),
        };
        shipped.push(ShippedRow {
            to,
            order: order.unwrap_or_else(|| "(no order)".into()),
            when: last.map(when_ms).unwrap_or_default(),
            count: u64::try_from(n).unwrap_or(0),
        });
    }
    let mut sel = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Lot.eq(lot.as_str()))
        .filter(trace_object::Column::Gtin.eq(g.as_str()));
    if let Some(c) = &q.cursor {
        sel = sel.filter(trace_object::Column::EpcKey.gt(c.as_str()));
    }
    let rows = sel
        .order_by_asc(trace_object::Column::EpcKey)
        .limit(LOT_PAGE + 1)
        .all(db)
        .await?;
    let base = lot_href(g.as_str(), &lot);
    let more_href = (rows.len() as u64 > LOT_PAGE)
        .then(|| rows.get(LOT_PAGE as usize - 1))
        .flatten()
        .map(|r| format!("{base}?{}", query_string(&[("cursor", &r.epc_key)])));
    let packs = rows
        .into_iter()
        .take(LOT_PAGE as usize)
        .map(|o| LotPack {
            href: unit_href(&o.epc_key),
            serial: split_sgtin(&o.epc_key)
                .map(|(_, s)| s.to_owned())
                .or(o.sscc.clone())
                .unwrap_or_else(|| o.epc_key.clone()),
            status: status_text(&o.status),
            site: site_name(&names, o.site_id.as_deref()),
            location: o.location.unwrap_or_default(),
            order: o.order_ref.unwrap_or_default(),
            when: last_event(o.last_event_time_ms),
        })
        .collect();
    let tiles = vec![
        Tile {
            label: "Known packs and cases".into(),
            value: where_.total.to_string(),
            sub: "of this lot".into(),
        },
        Tile {
            label: "On hand".into(),
            value: (where_.total - shipped_n).to_string(),
            sub: format!("{held_n} quarantined, {returned_n} returned"),
        },
        Tile {
            label: "Shipped".into(),
            value: shipped_n.to_string(),
            sub: "to customers".into(),
        },
    ];
    html(&LotPage {
        chrome: chrome(&state, &user, &csrf, "/stock").await?,
        product: products.get(g.as_str()).cloned().unwrap_or_default(),
        gtin: g.as_str().to_owned(),
        recalled: facts.as_ref().is_some_and(|f| f.recalled),
        extended: facts.and_then(|f| f.expiry_extended_to),
        lot,
        base,
        tiles,
        on_hand,
        shipped,
        packs,
        more_href,
    })
}

// ---- reports ----------------------------------------------------------------------

/// A pack's or container's transaction history as a printable page.
pub async fn unit_report(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    let rows = report::unit_rows(&state, &user.principal.org_id, &id).await?;
    report_page(&state, &user, id.clone(), rows, unit_href(&id)).await
}

/// The same as CSV.
pub async fn unit_report_csv(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    let rows = report::unit_rows(&state, &user.principal.org_id, &id).await?;
    report::csv_response(&format!("trace-{}", id.replace(':', "-")), &rows.rows)
}

/// A lot's transaction history as a printable page.
pub async fn lot_report(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((gtin, lot)): Path<(String, String)>,
) -> Page {
    let rows = report::lot_rows(&state.db, &user.principal.org_id, &gtin, &lot).await?;
    report_page(
        &state,
        &user,
        format!("GTIN {gtin} lot {lot}"),
        rows,
        lot_href(&gtin, &lot),
    )
    .await
}

/// The same as CSV.
pub async fn lot_report_csv(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((gtin, lot)): Path<(String, String)>,
) -> Page {
    let rows = report::lot_rows(&state.db, &user.principal.org_id, &gtin, &lot).await?;
    report::csv_response(&format!("trace-{gtin}-{lot}"), &rows.rows)
}

/// The EPCIS 2.0 JSON-LD of a pack or container, as the API gives it, as a download.
pub async fn unit_epcis(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Page {
    let gcp = crate::epcis::gcp::GcpLengths::new(state.config.epcis.gcp_lengths.clone());
    let doc = trace::epcis_history(
        &state.db,
        &user.principal.org_id,
        &id,
        crate::epcis::render::EpcFormat::DigitalLink,
        &gcp,
    )
    .await?;
    let body = serde_json::to_vec_pretty(&doc).map_err(ApiError::internal)?;
    let name = format!("epcis-{}.jsonld", safe_file_name(&id));
    Ok((
        [
            (header::CONTENT_TYPE, "application/ld+json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// A file name from an identifier: letters, digits, `-` and `.` only.
pub fn safe_file_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(100)
        .collect()
}

async fn report_page(
    state: &AppState,
    user: &ConsoleUser,
    subject: String,
    rows: report::Rows,
    back_href: String,
) -> Page {
    let org = crate::db::entity::organisation::Entity::find_by_id(user.principal.org_id.as_str())
        .one(&state.db)
        .await?
        .map(|o| o.name)
        .unwrap_or_default();
    let by = app_user::Entity::find_by_id(user.principal.user_id.as_str())
        .one(&state.db)
        .await?
        .map_or_else(|| user.principal.user_id.clone(), |u| u.display_name);
    html(&ReportPage {
        subject,
        organisation: org,
        produced: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        produced_by: by,
        truncated: rows.truncated,
        rows: rows.rows,
        csv_href: format!("{back_href}/report.csv"),
        back_href,
    })
}

// ---- exceptions -------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct ExceptionsQuery {
    state: Option<String>,
    cursor: Option<String>,
    notice: Option<String>,
}

/// The exceptions work queue.
pub async fn exceptions(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ExceptionsQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let db = &state.db;
    let which = match q.state.as_deref() {
        None | Some("" | "open") => "open",
        Some("resolved") => "resolved",
        Some(other) => {
            return Err(bad_request(format!(
                "unknown state {other:?}: open or resolved"
            )));
        }
    };
    let page = trace::exceptions(
        db,
        org,
        &ExceptionQuery {
            state: Some(which.into()),
            kind: None,
            limit: Some(50),
            cursor: q.cursor.clone(),
        },
    )
    .await?;
    let names = site_names(db, org).await?;
    let people = people(db, org).await?;
    let person = |id: &str| {
        people
            .iter()
            .find(|p| p.id == id)
            .map_or_else(|| id.to_owned(), |p| p.name.clone())
    };
    let ids: Vec<String> = page.items.iter().map(|e| e.id.clone()).collect();
    let mut notes: HashMap<String, Vec<NoteLine>> = HashMap::new();
    for n in trace::exception_notes(db, org, &ids).await? {
        notes
            .entry(n.exception_id.clone())
            .or_default()
            .push(NoteLine {
                when: when_ms(n.at_ms),
                who: person(&n.user_id),
                text: n.note,
            });
    }
    let now = Utc::now().timestamp_millis();
    let items = page
        .items
        .into_iter()
        .map(|e| {
            let raised = ms_of(&e.created_at).unwrap_or(now);
            let until = e.resolved_at.as_deref().and_then(ms_of).unwrap_or(now);
            ExceptionCard {
                kind: e.kind.replace('_', " "),
                site: site_name(&names, e.site_id.as_deref()),
                raised: when_text(&e.created_at),
                age: age(until - raised),
                object_href: e.object.as_deref().map(unit_href),
                object: e.object.unwrap_or_default(),
                detail: e.detail.to_string(),
                resolved_at: e.resolved_at.as_deref().map(when_text).unwrap_or_default(),
                resolved_by: e.resolved_by.as_deref().map(person).unwrap_or_default(),
                resolution: e.resolution,
                assigned: e.assigned_to.as_deref().map(person).unwrap_or_default(),
                notes: notes.remove(&e.id).unwrap_or_default(),
                id: e.id,
            }
        })
        .collect();
    html(&ExceptionsPage {
        chrome: chrome(&state, &user, &csrf, "/exceptions").await?,
        state: which.into(),
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        items,
        people,
        more_href: page.next_cursor.map(|c| {
            format!(
                "/exceptions?{}",
                query_string(&[("state", which), ("cursor", &c)])
            )
        }),
    })
}

#[derive(Debug, Deserialize)]
pub struct ResolveForm {
    resolution: String,
}

/// Resolves an exception with what was done (who and when are recorded).
pub async fn resolve_exception(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<ResolveForm>,
) -> Page {
    let note = form.resolution.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(bad_request("say what was done (1 to 2,000 characters)"));
    }
    trace::resolve(
        &state.db,
        &user.principal.org_id,
        &id,
        &user.principal.user_id,
        note,
    )
    .await?;
    tracing::info!(exception = %id, by = %user.principal.user_id, "exception resolved in the console");
    Ok(Redirect::to(&format!(
        "/exceptions?{}",
        query_string(&[("notice", "Exception resolved.")])
    ))
    .into_response())
}

/// The organisation's managers and admins (who exceptions are assigned to).
async fn people(db: &DatabaseConnection, org: &str) -> Result<Vec<Person>, ApiError> {
    Ok(app_user::Entity::find()
        .filter(app_user::Column::OrganisationId.eq(org))
        .filter(app_user::Column::Disabled.eq(false))
        .filter(app_user::Column::Role.is_in(["manager", "admin"]))
        .order_by_asc(app_user::Column::DisplayName)
        .all(db)
        .await?
        .into_iter()
        .map(|u| Person {
            id: u.id,
            name: u.display_name,
        })
        .collect())
}

#[derive(Debug, Deserialize)]
pub struct AssignForm {
    #[serde(default)]
    assignee: String,
}

/// Assigns an open exception (or takes the assignment away); recorded in its audit.
pub async fn assign_exception(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<AssignForm>,
) -> Page {
    let who = Some(form.assignee.trim()).filter(|a| !a.is_empty());
    trace::assign(
        &state.db,
        &user.principal.org_id,
        &id,
        &user.principal.user_id,
        who,
    )
    .await?;
    back_to_exception(&id, "Assignment saved.")
}

#[derive(Debug, Deserialize)]
pub struct CommentForm {
    note: String,
}

/// Adds a comment to an exception's audit.
pub async fn comment_exception(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CommentForm>,
) -> Page {
    trace::comment(
        &state.db,
        &user.principal.org_id,
        &id,
        &user.principal.user_id,
        &form.note,
    )
    .await?;
    back_to_exception(&id, "Comment added.")
}

fn back_to_exception(id: &str, notice: &str) -> Page {
    let anchor: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Ok(Redirect::to(&format!(
        "/exceptions?{}#x-{anchor}",
        query_string(&[("notice", notice)])
    ))
    .into_response())
}

// ---- returns ----------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct ReturnsQuery {
    state: Option<String>,
    before: Option<i64>,
}

const RETURN_STATES: [(&str, &str); 5] = [
    ("", "All"),
    ("pending", "Pending"),
    ("sellable", "Sellable"),
    ("review", "Review"),
    ("quarantined", "Quarantined"),
];

/// Returns page size.
const RETURNS_PAGE: u64 = 100;

/// The returns verification log, newest first.
pub async fn returns(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<ReturnsQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let which = q.state.clone().unwrap_or_default();
    let filter = match which.as_str() {
        "" => None,
        s => Some(
            return_verification::ReturnState::try_from_value(&s.to_owned())
                .map_err(|_| bad_request(format!("unknown state {s:?}")))?,
        ),
    };
    let rows =
        crate::returns::store::page(&state.db, org, filter, q.before, RETURNS_PAGE + 1).await?;
    let more_href = (rows.len() as u64 > RETURNS_PAGE)
        .then(|| rows.get(RETURNS_PAGE as usize - 1))
        .flatten()
        .map(|r| {
            format!(
                "/returns?{}",
                query_string(&[("state", &which), ("before", &r.scanned_at_ms.to_string())])
            )
        });
    let rows = rows
        .into_iter()
        .take(RETURNS_PAGE as usize)
        .map(|r| ReturnRow {
            href: format!(
                "/returns/{}",
                percent_encoding::utf8_percent_encode(&r.scan_id, SEGMENT)
            ),
            scanned: when_ms(r.scanned_at_ms),
            pack: format!("{} · {}", r.gtin, r.serial),
            lot: r.lot.clone().unwrap_or_default(),
            verdict: r.state.as_str().to_owned(),
            bad: r.state == return_verification::ReturnState::Quarantined,
            reason: r
                .failure_reason
                .clone()
                .or(r.additional_info.clone())
                .or(r.last_error.clone())
                .unwrap_or_default(),
            responder: r.responder.clone().unwrap_or_default(),
            attempts: r.attempts,
        })
        .collect();
    html(&ReturnsPage {
        chrome: chrome(&state, &user, &csrf, "/returns").await?,
        state: which,
        states: RETURN_STATES.to_vec(),
        rows,
        more_href,
    })
}

/// One returns verification and the LMS exchanges behind its verdict.
pub async fn return_detail(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Path(scan_id): Path<String>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let Some((r, exchanges)) =
        crate::returns::store::with_exchanges(&state.db, org, &scan_id).await?
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no returns verification for scan {scan_id}"),
        ));
    };
    let names = site_names(&state.db, org).await?;
    let key = swt_domain::unit::sgtin_key(&r.gtin, &r.serial);
    let mut props = vec![
        Prop {
            label: "Pack",
            value: format!("GTIN {} serial {}", r.gtin, r.serial),
            href: Some(unit_href(&key)),
        },
        Prop {
            label: "Verdict",
            value: r.state.as_str().to_owned(),
            href: None,
        },
    ];
    let mut add = |label: &'static str, v: Option<String>| {
        if let Some(value) = v.filter(|v| !v.is_empty()) {
            props.push(Prop {
                label,
                value,
                href: None,
            });
        }
    };
    add("Lot", r.lot.clone());
    add("Expiry", r.expiry.clone());
    add(
        "Verified",
        r.verified
            .map(|v| if v { "yes".into() } else { "no".into() }),
    );
    add("Failure reason", r.failure_reason.clone());
    add("Additional information", r.additional_info.clone());
    add("Responder", r.responder.clone());
    add("Last error", r.last_error.clone());
    add("Site", Some(site_name(&names, r.site_id.as_deref())));
    add("Scanned", Some(when_ms(r.scanned_at_ms)));
    add("Decided", r.decided_at_ms.map(when_ms));
    add("Applied to stock", r.applied_at_ms.map(when_ms));
    add("Scan", Some(r.scan_id.clone()));
    let exchanges = exchanges
        .into_iter()
        .map(|x| ExchangeLine {
            when: when_ms(x.started_at_ms),
            direction: x.direction,
            outcome: match (&x.error, x.http_status, x.verified) {
                (Some(e), _, _) => format!("failed: {e}"),
                (None, Some(st), Some(v)) => format!("HTTP {st}, verified: {v}"),
                (None, Some(st), None) => format!("HTTP {st}"),
                (None, None, _) => "no answer".into(),
            },
            duration: format!("{:.1} ms", x.duration_us as f64 / 1000.0),
            request: x.request,
            response: x.response_body.unwrap_or_default(),
        })
        .collect();
    html(&ReturnPage {
        chrome: chrome(&state, &user, &csrf, "/returns").await?,
        pack: format!("{} · {}", r.gtin, r.serial),
        props,
        exchanges,
    })
}

// ---- admin ------------------------------------------------------------------------

/// Users and trading partners (admins).
pub async fn admin(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let org = user.principal.org_id.as_str();
    let names = site_names(&state.db, org).await?;
    let users = auth::list_users(&state.db, org)
        .await?
        .into_iter()
        .map(|(u, disabled)| UserRow {
            site: site_name(&names, u.site_id.as_deref()),
            username: u.username,
            name: u.display_name,
            role: u.role.replace('_', " "),
            disabled,
        })
        .collect();
    let partners = crate::verification::partners::list_partners(&state.db, org)
        .await?
        .into_iter()
        .map(|p| PartnerRow {
            since: when_text(&p.created_at),
            gln: p.gln,
            name: p.name,
            status: p.status,
        })
        .collect();
    html(&AdminPage {
        chrome: chrome(&state, &user, &csrf, "/admin").await?,
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        users,
        partners,
    })
}

/// Suspends a trading partner (admins): its verification requests are refused.
pub async fn suspend_partner(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    gln: Path<String>,
) -> Page {
    set_partner(state, user, gln, false).await
}

/// Activates a trading partner again (admins).
pub async fn activate_partner(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    gln: Path<String>,
) -> Page {
    set_partner(state, user, gln, true).await
}

async fn set_partner(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(gln): Path<String>,
    active: bool,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let g = crate::verification::partners::parse_gln(&gln)?;
    let p = crate::verification::partners::set_partner_active(
        &state.db,
        &user.principal.org_id,
        &g,
        active,
    )
    .await?;
    tracing::info!(partner = %p.gln, active, by = %user.principal.user_id, "partner changed in the console");
    let notice = format!(
        "{} is {}.",
        p.name,
        if active { "active" } else { "suspended" }
    );
    Ok(Redirect::to(&format!("/admin?{}", query_string(&[("notice", &notice)]))).into_response())
}

// ---- devices ----------------------------------------------------------------------

struct DeviceFacts {
    row: DeviceRow,
    disabled: bool,
    last_sync_at: Option<DateTime<Utc>>,
}

async fn device_rows(
    db: &DatabaseConnection,
    org: &str,
    names: &HashMap<String, String>,
) -> Result<Vec<DeviceFacts>, ApiError> {
    let devices = auth::list_devices(db, org).await?;
    let ids: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let last: HashMap<String, Option<DateTime<Utc>>> = sync_state::Entity::find()
        .select_only()
        .column(sync_state::Column::DeviceId)
        .column_as(Expr::col(sync_state::Column::UpdatedAt).max(), "last")
        .filter(sync_state::Column::DeviceId.is_in(ids.clone()))
        .group_by(sync_state::Column::DeviceId)
        .into_tuple::<(String, Option<DateTime<Utc>>)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let week_ago = Utc::now() - chrono::Duration::days(7);
    let refusals: Vec<sync_refusal::Model> = sync_refusal::Entity::find()
        .filter(sync_refusal::Column::OrganisationId.eq(org))
        .filter(sync_refusal::Column::At.gte(week_ago))
        .order_by_desc(sync_refusal::Column::At)
        .limit(1000)
        .all(db)
        .await?;
    let disabled: HashMap<String, bool> = device::Entity::find()
        .filter(device::Column::OrganisationId.eq(org))
        .all(db)
        .await?
        .into_iter()
        .map(|d| (d.id, d.disabled))
        .collect();
    Ok(devices
        .into_iter()
        .map(|d| {
            let mine: Vec<&sync_refusal::Model> =
                refusals.iter().filter(|r| r.device_id == d.id).collect();
            let last_sync_at = last.get(&d.id).copied().flatten();
            let off = disabled.get(&d.id).copied().unwrap_or(false);
            DeviceFacts {
                disabled: off,
                last_sync_at,
                row: DeviceRow {
                    site: site_name(names, Some(&d.site_id)),
                    disabled: off,
                    last_sync: last_sync_at.map_or_else(
                        || "never".to_owned(),
                        |t| t.format("%Y-%m-%d %H:%M").to_string(),
                    ),
                    refusals: mine
                        .iter()
                        .map(|r| u64::try_from(r.occurrences).unwrap_or(1))
                        .sum(),
                    last_refusal: mine
                        .first()
                        .map(|r| format!("{}: {}", r.reason, r.detail))
                        .unwrap_or_default(),
                    name: d.name,
                    id: d.id,
                },
            }
        })
        .collect())
}

#[derive(Debug, Default, Deserialize)]
pub struct NoticeQuery {
    notice: Option<String>,
}

/// Scanners: last sync, refusals, and (for admins) disable and enable.
pub async fn devices(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<NoticeQuery>,
) -> Page {
    let org = user.principal.org_id.as_str();
    let names = site_names(&state.db, org).await?;
    let devices = device_rows(&state.db, org, &names)
        .await?
        .into_iter()
        .map(|d| d.row)
        .collect();
    html(&DevicesPage {
        chrome: chrome(&state, &user, &csrf, "/devices").await?,
        admin: user.principal.role == Role::Admin,
        notice: q.notice.map(|n| n.chars().take(200).collect()),
        devices,
    })
}

/// Disables a scanner (admins): its sessions end at once.
pub async fn disable_device(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    id: Path<String>,
) -> Page {
    set_device(state, user, id, true).await
}

/// Enables a scanner again (admins): its user signs in again on it.
pub async fn enable_device(
    state: State<AppState>,
    user: Extension<ConsoleUser>,
    id: Path<String>,
) -> Page {
    set_device(state, user, id, false).await
}

async fn set_device(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    disabled: bool,
) -> Page {
    user.principal.require(&[Role::Admin])?;
    let d = auth::set_device_disabled(&state.db, &user.principal.org_id, &id, disabled).await?;
    state.status.forget();
    tracing::info!(device = %d.id, disabled, by = %user.principal.user_id, "device changed in the console");
    let notice = format!(
        "{} is {}.",
        d.name,
        if disabled { "disabled" } else { "enabled" }
    );
    Ok(Redirect::to(&format!(
        "/devices?{}",
        query_string(&[("notice", &notice)])
    ))
    .into_response())
}

// ---- tasks ------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct TasksQuery {
    status: Option<String>,
    cursor: Option<String>,
}

const TASK_STATUSES: [(&str, &str); 4] = [
    ("open", "Open"),
    ("closed", "Closed"),
    ("cancelled", "Cancelled"),
    ("any", "All"),
];

/// Tasks and their progress.
pub async fn tasks(
    State(state): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Extension(csrf): Extension<CsrfToken>,
    Query(q): Query<TasksQuery>,
) -> Page {
    let status = q.status.clone().unwrap_or_else(|| "open".into());
    if !TASK_STATUSES.iter().any(|(v, _)| *v == status) {
        return Err(bad_request(format!("unknown status {status:?}")));
    }
    let page = crate::tasks::list(
        &state.db,
        &user.principal,
        &crate::tasks::TaskFilter {
            status: Some(status.clone()),
            limit: Some(100),
            cursor: q.cursor.clone(),
            ..Default::default()
        },
    )
    .await?;
    let names = site_names(&state.db, &user.principal.org_id).await?;
    let tasks = page
        .items
        .into_iter()
        .map(|t| TaskRow {
            title: if t.title.is_empty() {
                "(untitled)".into()
            } else {
                t.title.clone()
            },
            kind: t.kind.clone(),
            site: site_name(&names, Some(&t.site_id)),
            status: t.status.clone(),
            scans: t.scan_count,
            progress: if t.projection_pending {
                "scans being turned into events".into()
            } else {
                "up to date".into()
            },
            updated: when_text(&t.updated_at),
            id: t.id,
        })
        .collect();
    html(&TasksPage {
        chrome: chrome(&state, &user, &csrf, "/tasks").await?,
        more_href: page.next_cursor.map(|c| {
            format!(
                "/tasks?{}",
                query_string(&[("status", &status), ("cursor", &c)])
            )
        }),
        status,
        statuses: TASK_STATUSES.to_vec(),
        tasks,
    })
}
