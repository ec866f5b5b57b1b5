//! Trace reports: the transaction history a regulator asks for in a tracing request
//! (DSCSA: within one business day) — when, what, which business step, where, under which
//! business transactions, from whom and to whom, with each EPCIS event id — as a printable
//! page and as CSV. Read from the stored EPCIS events themselves, so the report says what
//! a partner's export says.

use std::collections::BTreeSet;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use crate::db::entity::{epcis_event, epcis_event_epc, trace_object};
use crate::http::ApiError;
use crate::state::AppState;

/// The report's columns, in order.
pub const COLUMNS: [&str; 9] = [
    "event_time",
    "objects",
    "biz_step",
    "disposition",
    "where",
    "business_transactions",
    "source",
    "destination",
    "event_id",
];

/// Events in one report at most: a lot of a few thousand packs has a few thousand
/// events; past this the report says it is cut.
pub const MAX_EVENTS: usize = 20_000;
/// Packs of a lot read for its report at most.
const MAX_LOT_OBJECTS: u64 = 20_000;
/// Keys per `IN (…)` list (SQLite's default limit on bound values is far above).
const CHUNK: usize = 500;

/// Report rows, oldest first.
pub struct Rows {
    /// One per event.
    pub rows: Vec<[String; 9]>,
    /// Cut at [`MAX_EVENTS`] (or the lot at [`MAX_LOT_OBJECTS`]).
    pub truncated: bool,
}

/// A pack's or container's events, with those of the containers it travelled in.
pub async fn unit_rows(state: &AppState, org: &str, id: &str) -> Result<Rows, ApiError> {
    let gcp = crate::epcis::gcp::GcpLengths::new(state.config.epcis.gcp_lengths.clone());
    let doc = crate::trace::service::epcis_history(
        &state.db,
        org,
        id,
        crate::epcis::render::EpcFormat::DigitalLink,
        &gcp,
    )
    .await?;
    let events = doc.epcis_body.query_results.results_body.event_list;
    let truncated = events.len() > MAX_EVENTS;
    let rows = events
        .iter()
        .take(MAX_EVENTS)
        .filter_map(|e| serde_json::to_value(e).ok())
        .map(|v| row(&v))
        .collect();
    Ok(Rows { rows, truncated })
}

/// Every event of every known pack and case of a lot.
pub async fn lot_rows(
    db: &DatabaseConnection,
    org: &str,
    gtin: &str,
    lot: &str,
) -> Result<Rows, ApiError> {
    let keys: Vec<String> = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::EpcKey)
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::Lot.eq(lot))
        .filter(trace_object::Column::Gtin.eq(gtin))
        .order_by_asc(trace_object::Column::EpcKey)
        .limit(MAX_LOT_OBJECTS + 1)
        .into_tuple()
        .all(db)
        .await?;
    if keys.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "not_found",
            format!("no pack of GTIN {gtin} lot {lot} is known"),
        ));
    }
    let mut truncated = keys.len() as u64 > MAX_LOT_OBJECTS;
    let mut pks = BTreeSet::new();
    for chunk in keys.chunks(CHUNK) {
        let found: Vec<i64> = epcis_event_epc::Entity::find()
            .select_only()
            .column(epcis_event_epc::Column::EventPk)
            .filter(epcis_event_epc::Column::OrganisationId.eq(org))
            .filter(epcis_event_epc::Column::EpcKey.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        pks.extend(found);
    }
    let pks: Vec<i64> = pks.into_iter().collect();
    let mut events: Vec<(i64, String)> = Vec::with_capacity(pks.len());
    for chunk in pks.chunks(CHUNK) {
        // By key alone, the organisation checked on the rows (see `trace::containers`:
        // SQLite may otherwise walk the organisation's index).
        let found: Vec<(i64, String, String)> = epcis_event::Entity::find()
            .select_only()
            .column(epcis_event::Column::EventTimeMs)
            .column(epcis_event::Column::Body)
            .column(epcis_event::Column::OrganisationId)
            .filter(epcis_event::Column::Pk.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(db)
            .await?;
        events.extend(
            found
                .into_iter()
                .filter(|(_, _, o)| o == org)
                .map(|(t, body, _)| (t, body)),
        );
        if events.len() > MAX_EVENTS {
            truncated = true;
            break;
        }
    }
    events.sort_by_key(|(t, _)| *t);
    let rows = events
        .iter()
        .take(MAX_EVENTS)
        .filter_map(|(_, body)| serde_json::from_str::<Value>(body).ok())
        .map(|v| row(&v))
        .collect();
    Ok(Rows { rows, truncated })
}

/// The identifiers of a Digital Link or URN, shortened for a person: the part after the
/// GS1 resolver.
fn short(id: &str) -> String {
    id.strip_prefix(crate::epcis::DL_STEM)
        .unwrap_or(id)
        .to_owned()
}

fn list(v: &Value, field: &str) -> Vec<String> {
    v[field]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(short).collect())
        .unwrap_or_default()
}

/// `type: id` pairs of a list of `{type, <id field>}` objects (bizTransactionList,
/// sourceList, destinationList).
fn typed(v: &Value, field: &str, id_field: &str) -> String {
    v[field]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    let ty = t["type"].as_str().unwrap_or("");
                    let ty = ty.rsplit(['/', ':']).next().unwrap_or(ty);
                    format!("{ty}: {}", short(t[id_field].as_str().unwrap_or("")))
                })
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default()
}

/// One report row of an EPCIS 2.0 event (JSON-LD).
pub fn row(v: &Value) -> [String; 9] {
    let mut objects = Vec::new();
    if let Some(p) = v["parentID"].as_str() {
        objects.push(format!("parent {}", short(p)));
    }
    let epcs = [list(v, "epcList"), list(v, "childEPCs")].concat();
    match epcs.len() {
        0 => {}
        1..=3 => objects.extend(epcs),
        n => objects.push(format!("{}, … ({n} in all)", epcs[..2].join(", "))),
    }
    let text = |f: &str| v[f].as_str().unwrap_or("").to_owned();
    let word = |f: &str| {
        let s = text(f);
        s.rsplit(['/', ':']).next().unwrap_or(&s).to_owned()
    };
    let place = v["bizLocation"]["id"]
        .as_str()
        .or_else(|| v["readPoint"]["id"].as_str())
        .map(short)
        .unwrap_or_default();
    [
        text("eventTime"),
        objects.join("; "),
        word("bizStep"),
        word("disposition"),
        place,
        typed(v, "bizTransactionList", "bizTransaction"),
        typed(v, "sourceList", "source"),
        typed(v, "destinationList", "destination"),
        text("eventID"),
    ]
}

/// The rows as an RFC 4180 CSV download with a header line.
pub fn csv_response(name: &str, rows: &[[String; 9]]) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).map_err(ApiError::internal)?;
    for r in rows {
        // A cell a spreadsheet would run as a formula is quoted with a leading '.
        let safe: Vec<String> = r.iter().map(|c| defuse(c)).collect();
        w.write_record(&safe).map_err(ApiError::internal)?;
    }
    let body = w.into_inner().map_err(ApiError::internal)?;
    let file = super::pages::safe_file_name(name);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.csv\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// CSV injection: a cell starting with `=`, `+`, `-`, `@`, tab or CR is a formula to a
/// spreadsheet. Serials and lots come from barcodes, which anyone can print.
fn defuse(cell: &str) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shipping_event_reads_as_a_transaction_line() {
        let v = serde_json::json!({
            "type": "ObjectEvent",
            "eventTime": "2026-12-01T10:00:00.000Z",
            "epcList": ["https://id.gs1.org/01/00361500231012/21/A1"],
            "bizStep": "shipping",
            "disposition": "in_transit",
            "bizLocation": {"id": "https://id.gs1.org/414/0614141000005"},
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:0614141000012:PO-7"}],
            "destinationList": [{"type": "owning_party", "destination": "https://id.gs1.org/417/0614141000012"}],
            "eventID": "ni:///sha-256;abc?ver=CBV2.0"
        });
        let r = row(&v);
        assert_eq!(r[0], "2026-12-01T10:00:00.000Z");
        assert_eq!(r[1], "/01/00361500231012/21/A1");
        assert_eq!((r[2].as_str(), r[3].as_str()), ("shipping", "in_transit"));
        assert_eq!(r[4], "/414/0614141000005");
        assert_eq!(r[5], "po: urn:epcglobal:cbv:bt:0614141000012:PO-7");
        assert_eq!(r[6], "");
        assert_eq!(r[7], "owning_party: /417/0614141000012");
        assert_eq!(r[8], "ni:///sha-256;abc?ver=CBV2.0");
    }

    #[test]
    fn formulas_are_defused_in_csv() {
        assert_eq!(defuse("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(defuse("-1"), "'-1");
        assert_eq!(defuse("LOT7"), "LOT7");
    }
}
