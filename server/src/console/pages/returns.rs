//! The returns verification log.

use super::*;

#[derive(Debug, Default, Deserialize)]
pub struct ReturnsQuery {
    pub(super) state: Option<String>,
    pub(super) before: Option<i64>,
}

pub(super) const RETURN_STATES: [(&str, &str); 5] = [
    ("", "All"),
    ("pending", "Pending"),
    ("sellable", "Sellable"),
    ("review", "Review"),
    ("quarantined", "Quarantined"),
];

/// Returns page size.
pub(super) const RETURNS_PAGE: u64 = 100;

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
