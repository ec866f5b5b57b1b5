//! Stock, and its expiry profile.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct StockForm {
    #[serde(default)]
    pub(super) gtin: String,
    #[serde(default)]
    pub(super) lot: String,
    #[serde(default)]
    pub(super) status: String,
    #[serde(default)]
    pub(super) site_id: String,
    #[serde(default)]
    pub(super) location: String,
    #[serde(default)]
    pub(super) expiry_before: String,
    pub(super) cursor: Option<String>,
}

pub(super) const STATUSES: [(&str, &str); 9] = [
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
        location: opt(&f.location),
        expiry_before: opt(&f.expiry_before),
        limit: Some(100),
        cursor: f.cursor.clone(),
    };
    let page = trace::stock(db, org, &query).await?;
    let chart = expiry_profile(expiry_counts(db, org, &query).await?);
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
                ("location", &f.location),
                ("expiry_before", &f.expiry_before),
                ("cursor", &c),
            ])
        )
    });
    let sites = sites(db, org).await?;
    let site_name = |id: &str| {
        sites
            .iter()
            .find(|s| s.id == id)
            .map_or_else(|| id.to_owned(), |s| s.name.clone())
    };
    let places = stock_places(db, org, &query)
        .await?
        .into_iter()
        .map(|(site_id, location, n)| StockPlace {
            site: site_name(&site_id),
            href: format!(
                "/stock?{}",
                query_string(&[
                    ("gtin", &f.gtin),
                    ("lot", &f.lot),
                    ("status", &f.status),
                    ("site_id", &site_id),
                    ("location", &location),
                    ("expiry_before", &f.expiry_before),
                ])
            ),
            location,
            count: n,
        })
        .collect();
    let sites = sites
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
            location: f.location,
            expiry_before: f.expiry_before,
        },
        statuses: STATUSES.to_vec(),
        sites,
        chart,
        lines,
        more_href,
        places,
    })
}

/// The places the filter's packs are at, most packs first (at most 50).
async fn stock_places(
    db: &DatabaseConnection,
    org: &str,
    q: &StockQuery,
) -> Result<Vec<(String, String, u64)>, ApiError> {
    let total = trace::units_total();
    let rows: Vec<(String, String, i64)> = trace::stock_levels(org, q)
        .select_only()
        .column(stock_level::Column::SiteId)
        .column(stock_level::Column::Location)
        .column_as(total.clone(), "n")
        .group_by(stock_level::Column::SiteId)
        .group_by(stock_level::Column::Location)
        .order_by_desc(total)
        .order_by_asc(stock_level::Column::SiteId)
        .order_by_asc(stock_level::Column::Location)
        .limit(50)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(s, l, n)| (s, l, u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// Packs by expiry, for the expiry profile: every pack the filter covers, of the status
/// asked (in stock when none), from `stock_level`.
pub(super) async fn expiry_counts(
    db: &DatabaseConnection,
    org: &str,
    q: &StockQuery,
) -> Result<Vec<(Option<String>, u64)>, ApiError> {
    let status = q.status.unwrap_or(trace_object::UnitStatus::InStock);
    let rows: Vec<(String, i64)> = trace::stock_levels(org, q)
        .filter(stock_level::Column::Status.eq(status.as_str()))
        .filter(stock_level::Column::Expiry.ne(""))
        .select_only()
        .column(stock_level::Column::Expiry)
        .column_as(trace::units_total(), "n")
        .group_by(stock_level::Column::Expiry)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(e, n)| (Some(e), u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// Packs by expiry month, the expired ones first: what has to be sold, moved or destroyed
/// soon.
pub(super) fn expiry_profile(rows: Vec<(Option<String>, u64)>) -> Option<Chart> {
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
    crate::console::charts::bars("Expiry profile", &labels, &values, "packs")
}
