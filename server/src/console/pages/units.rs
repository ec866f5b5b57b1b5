//! A pack's or container's page and a container's tree.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct CursorQuery {
    pub(super) cursor: Option<String>,
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
