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

/// Packs by expiry, for the expiry profile: with a GTIN or lot filter, every pack of it
/// (a range of the stock index); without, the lines of the page shown. A whole
/// organisation's profile would read every object (5 million at 10 million events),
/// which no page may do.
pub(super) async fn expiry_counts(
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
pub(super) fn expiry_profile(whole: bool, rows: Vec<(Option<String>, u64)>) -> Option<Chart> {
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
    crate::console::charts::bars(title, &labels, &values, "packs")
}
