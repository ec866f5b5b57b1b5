//! A lot: recall impact.

use super::*;

/// Packs of a lot listed on one page.
pub(super) const LOT_PAGE: u64 = 200;
/// Shipped packs of one order: (order, packs, last event time, latest scan).
pub(super) type ShippedGroup = (Option<String>, i64, Option<i64>, Option<String>);

/// Orders of a lot whose customer is looked up.
pub(super) const MAX_NAMED_ORDERS: usize = 50;

/// The customer (name and GLN) of the task a scan was recorded in.
pub(super) async fn customer_of(
    state: &AppState,
    org: &str,
    scan: &str,
) -> Result<String, ApiError> {
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
    // The packs in key order: a range of `ix_trace_object_gtin_lot`.
    let from = q.cursor.clone().unwrap_or_default();
    let sel = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Gtin.eq(g.as_str()))
        .filter(trace_object::Column::Lot.eq(lot.as_str()))
        .filter(trace_object::Column::EpcKey.gt(from));
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
