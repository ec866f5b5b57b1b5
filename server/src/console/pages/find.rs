//! The search box: what a query names, settled against the database.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    pub(super) q: String,
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

pub(super) fn describe(key: &UnitKey) -> String {
    match key {
        UnitKey::Sscc(s) => format!("SSCC {s}"),
        UnitKey::Sgtin { gtin, serial } => format!("Pack GTIN {gtin} serial {serial}"),
    }
}

pub(super) async fn exists(
    db: &DatabaseConnection,
    org: &str,
    key: &str,
) -> Result<bool, ApiError> {
    Ok(
        trace_object::Entity::find_by_id((org.to_owned(), key.to_owned()))
            .count(db)
            .await?
            > 0,
    )
}

pub(super) async fn lot_exists(
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

pub(super) async fn gtin_known(
    db: &DatabaseConnection,
    org: &str,
    gtin: &str,
) -> Result<bool, ApiError> {
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
pub(super) async fn gln_target(
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
pub(super) async fn text_hits(
    db: &DatabaseConnection,
    org: &str,
    text: &str,
) -> Result<(String, Vec<Hit>), ApiError> {
    const MAX_HITS: u64 = 50;
    // Objects of one lot read to count them by GTIN (a lot is a few thousand packs).
    const MAX_LOT_ROWS: u64 = 100_000;
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
    // The lot's own index entries (GTIN is their last column), counted here: a GROUP BY
    // would let the planner prefer the stock index, in GTIN order, over every object.
    let lot_gtins: Vec<Option<String>> = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::Gtin)
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Lot.eq(text))
        .limit(MAX_LOT_ROWS)
        .into_tuple()
        .all(db)
        .await?;
    let mut lots: std::collections::BTreeMap<String, u64> = Default::default();
    for g in lot_gtins.into_iter().flatten() {
        *lots.entry(g).or_default() += 1;
    }
    for (g, n) in lots.into_iter().take(MAX_HITS as usize) {
        hits.push(Hit {
            href: lot_href(&g, text),
            label: format!("Lot {text}"),
            detail: format!("GTIN {g} · {n} packs and cases"),
        });
    }
    let orders = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::OrderRef.eq(text))
        .limit(MAX_HITS)
        .all(db)
        .await?;
    // Sorted here: an ORDER BY on the key let SQLite walk the primary key (every object)
    // instead of the order's index.
    let mut orders = orders;
    orders.sort_by(|a, b| a.epc_key.cmp(&b.epc_key));
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
