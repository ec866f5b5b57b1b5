//! The overview: today's work, open exceptions with their clocks, sync, charts.

use super::*;

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
        .filter(|d| !d.row.disabled && d.last_sync_at.is_none_or(|t| t < day_ago))
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

pub(super) const DAY_MS: i64 = 24 * 3600 * 1000;

/// Scans per hour by site (7 days), exceptions opened and closed per day (30 days),
/// returns verdicts: each from a small table or a rollup, never from the events.
pub(super) async fn overview_charts(
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
    charts.extend(crate::console::charts::lines(
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
    charts.extend(crate::console::charts::lines(
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
    charts.extend(crate::console::charts::bars(
        "Returns verdicts",
        &labels,
        &values,
        "returned packs",
    ));
    Ok(charts)
}
