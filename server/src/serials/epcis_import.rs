//! Importing manufacturer serials from EPCIS 2.0 JSON(-LD) documents: commissioning
//! ObjectEvents (action ADD) give serials with the lot and expiry of their ILMD;
//! decommissioning events mark held serials decommissioned. Other events are counted
//! and skipped, as are identifiers that are not serialized GTINs (SSCCs of pallets).
//!
//! The whole document is checked before anything is written, then applied in one
//! transaction in document order: a malformed document changes nothing.

use std::collections::BTreeMap;

use sea_orm::{DatabaseConnection, TransactionTrait};
use serde_json::Value;
use swt_domain::gs1::{self, Gtin, ParseOptions};

use super::store::{self, SerialRow};
use super::{SerialsError, check_serial_and_lot, now_ms, parse_expiry_at};

/// The CBV master-data prefix that `cbvmda:` stands for in the EPCIS 2.0 context.
use crate::epcis::CBV_MDA_NS as CBV_MDA;

/// What an EPCIS import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EpcisReport {
    /// Events in the document.
    pub events: u64,
    /// Commissioning events applied.
    pub commissioning_events: u64,
    /// Decommissioning events applied.
    pub decommissioning_events: u64,
    /// Events of other kinds, and error declarations, skipped.
    pub skipped_events: u64,
    /// Serials written by commissioning (new or updated).
    pub commissioned: u64,
    /// Held serials marked decommissioned.
    pub decommissioned: u64,
    /// Decommissioned serials we hold no data for (left unknown).
    pub decommissioned_unknown: u64,
    /// Identifiers in applied events that are not serialized GTINs (e.g. SSCCs).
    pub skipped_identifiers: u64,
    /// Lots seen for the first time.
    pub new_lots: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Commission {
        source: String,
        rows: Vec<SerialRow>,
    },
    Decommission {
        source: String,
        /// GTIN-14 → serials.
        serials: BTreeMap<String, Vec<String>>,
    },
}

/// A checked document, ready to apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    steps: Vec<Step>,
    report: EpcisReport,
}

/// Parses the bytes of a document as JSON.
pub fn parse_json(bytes: &[u8]) -> Result<Value, SerialsError> {
    serde_json::from_slice(bytes)
        .map_err(|e| SerialsError::Invalid(format!("the EPCIS document is not JSON: {e}")))
}

fn invalid(at: &str, what: impl std::fmt::Display) -> SerialsError {
    SerialsError::Invalid(format!("{at}: {what}"))
}

/// The CBV short name of a business step given as short name, CBV 2.0 URI or the
/// EPCIS 1.x URN.
fn short_biz_step(s: &str) -> &str {
    s.strip_prefix("https://ref.gs1.org/cbv/BizStep-")
        .or_else(|| s.strip_prefix("urn:epcglobal:cbv:bizstep:"))
        .unwrap_or(s)
}

/// An ILMD value by its CBV master-data name, as `cbvmda:name` or the full URN.
fn ilmd_value<'a>(ilmd: Option<&'a Value>, name: &str) -> Option<&'a Value> {
    let ilmd = ilmd?.as_object()?;
    ilmd.get(&format!("cbvmda:{name}"))
        .or_else(|| ilmd.get(&format!("{CBV_MDA}{name}")))
}

/// A serialized GTIN from an EPC URN or GS1 Digital Link URI; `None` for identifiers of
/// other kinds (SSCC, SGLN, classes).
fn sgtin(epc: &str) -> Result<Option<(Gtin, String)>, String> {
    let data = if epc.starts_with("urn:epc:id:sgtin:") {
        gs1::parse_epc_urn(epc)
            .map(|(d, _)| d)
            .map_err(|e| e.to_string())?
    } else if epc.starts_with("urn:") {
        return Ok(None);
    } else if epc.starts_with("https://") || epc.starts_with("http://") {
        gs1::parse_str(epc, &ParseOptions::default()).map_err(|e| e.to_string())?
    } else {
        return Err("not an EPC URN or GS1 Digital Link URI".to_owned());
    };
    match (data.gtin(), data.get("21")) {
        (Some(g), Some(s)) => Ok(Some((g, s.to_owned()))),
        _ => Ok(None),
    }
}

/// Checks a document and turns it into the steps to apply. `source_name` names the
/// document in `source` when an event has no `eventID`.
pub fn plan(doc: &Value, source_name: &str) -> Result<Plan, SerialsError> {
    let year = gs1::current_year();
    let doc_type = doc.get("type").and_then(Value::as_str);
    let events = match doc_type {
        Some("EPCISDocument") => doc.pointer("/epcisBody/eventList"),
        Some("EPCISQueryDocument") => doc.pointer("/epcisBody/queryResults/resultsBody/eventList"),
        _ => {
            return Err(SerialsError::Invalid(
                "not an EPCIS document: \"type\" must be EPCISDocument or EPCISQueryDocument"
                    .into(),
            ));
        }
    }
    .and_then(Value::as_array)
    .ok_or_else(|| SerialsError::Invalid("the EPCIS document has no eventList array".into()))?;

    let mut report = EpcisReport {
        events: events.len() as u64,
        ..EpcisReport::default()
    };
    let mut steps = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let event_id = event.get("eventID").and_then(Value::as_str);
        let at = match event_id {
            Some(id) => format!("event {} ({id})", i + 1),
            None => format!("event {}", i + 1),
        };
        let Some(obj) = event.as_object() else {
            return Err(invalid(&at, "an event is a JSON object"));
        };
        let Some(kind) = obj.get("type").and_then(Value::as_str) else {
            return Err(invalid(&at, "the event has no \"type\""));
        };
        let step = obj
            .get("bizStep")
            .and_then(Value::as_str)
            .map(short_biz_step);
        let commissioning = step == Some("commissioning");
        if kind != "ObjectEvent"
            || !(commissioning || step == Some("decommissioning"))
            // An error declaration retracts an earlier event: it commissions nothing.
            || obj.contains_key("errorDeclaration")
        {
            report.skipped_events += 1;
            continue;
        }
        let action = obj.get("action").and_then(Value::as_str);
        match (commissioning, action) {
            (true, Some("ADD")) | (false, Some("DELETE" | "OBSERVE")) => {}
            (true, a) => {
                return Err(invalid(
                    &at,
                    format!("a commissioning event has action ADD, not {a:?}"),
                ));
            }
            (false, a) => {
                return Err(invalid(
                    &at,
                    format!("a decommissioning event has action DELETE or OBSERVE, not {a:?}"),
                ));
            }
        }
        let epcs = match obj.get("epcList") {
            None => &Vec::new(),
            Some(v) => v
                .as_array()
                .ok_or_else(|| invalid(&at, "epcList is an array"))?,
        };
        let mut keys = Vec::with_capacity(epcs.len());
        for epc in epcs {
            let text = epc
                .as_str()
                .ok_or_else(|| invalid(&at, "epcList holds strings"))?;
            match sgtin(text).map_err(|e| invalid(&at, format!("{text}: {e}")))? {
                Some(key) => keys.push(key),
                None => report.skipped_identifiers += 1,
            }
        }
        let source = match event_id {
            Some(id) => format!("epcis:{id}"),
            None => format!("epcis:{source_name}#{}", i + 1),
        };
        if commissioning {
            report.commissioning_events += 1;
            if keys.is_empty() {
                continue;
            }
            let ilmd = obj.get("ilmd");
            let text = |name: &str| -> Result<&str, SerialsError> {
                match ilmd_value(ilmd, name) {
                    Some(Value::String(s)) => Ok(s),
                    Some(_) => Err(invalid(&at, format!("ILMD cbvmda:{name} is a string"))),
                    None => Err(invalid(
                        &at,
                        format!(
                            "commissioning serialized GTINs needs ILMD cbvmda:{name} (lot and expiry are what returns are verified against)"
                        ),
                    )),
                }
            };
            let lot = text("lotNumber")?;
            let expiry =
                parse_expiry_at(text("itemExpirationDate")?, year).map_err(|e| invalid(&at, e))?;
            let mut rows = Vec::with_capacity(keys.len());
            for (gtin, serial) in keys {
                check_serial_and_lot(&gtin, &serial, lot).map_err(|e| invalid(&at, e))?;
                rows.push(SerialRow {
                    gtin: gtin.as_str().to_owned(),
                    serial,
                    lot: lot.to_owned(),
                    expiry: expiry.clone(),
                    status: None,
                });
            }
            steps.push(Step::Commission { source, rows });
        } else {
            report.decommissioning_events += 1;
            let mut serials: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (gtin, serial) in keys {
                serials
                    .entry(gtin.as_str().to_owned())
                    .or_default()
                    .push(serial);
            }
            steps.push(Step::Decommission { source, serials });
        }
    }
    Ok(Plan { steps, report })
}

/// Applies a checked document for `org` in one transaction.
pub async fn apply(
    db: &DatabaseConnection,
    org: &str,
    plan: Plan,
) -> Result<EpcisReport, SerialsError> {
    let mut report = plan.report;
    let now = now_ms();
    let txn = db.begin().await?;
    for step in plan.steps {
        match step {
            Step::Commission { source, rows } => {
                let mut lots: Vec<(String, String)> = rows
                    .iter()
                    .map(|r| (r.gtin.clone(), r.lot.clone()))
                    .collect();
                lots.sort();
                lots.dedup();
                report.commissioned += store::upsert_serials(&txn, org, rows, &source, now).await?;
                report.new_lots += store::ensure_lots(&txn, org, &lots, now).await?;
            }
            Step::Decommission { source, serials } => {
                for (gtin, list) in serials {
                    let mut list = list;
                    list.sort();
                    list.dedup();
                    let held = store::decommission(&txn, org, &gtin, &list, &source, now).await?;
                    report.decommissioned += held;
                    report.decommissioned_unknown += list.len() as u64 - held;
                }
            }
        }
    }
    txn.commit().await?;
    Ok(report)
}

/// Checks and applies one document.
pub async fn import(
    db: &DatabaseConnection,
    org: &str,
    doc: &Value,
    source_name: &str,
) -> Result<EpcisReport, SerialsError> {
    let plan = plan(doc, source_name)?;
    apply(db, org, plan).await
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn doc(events: Value) -> Value {
        json!({"type": "EPCISDocument", "schemaVersion": "2.0",
               "creationDate": "2026-01-01T00:00:00Z", "epcisBody": {"eventList": events}})
    }

    #[test]
    fn commissioning_in_all_spellings() {
        let d = doc(json!([
            {"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
             "eventID": "urn:uuid:1",
             "epcList": ["urn:epc:id:sgtin:4012345.011111.SN0001A",
                         "https://id.gs1.org/01/04012345111118/21/SN0002B",
                         "urn:epc:id:sscc:4012345.0000000001"],
             "ilmd": {"cbvmda:lotNumber": "L2024A", "cbvmda:itemExpirationDate": "2026-09-30"}},
            {"type": "ObjectEvent", "action": "ADD",
             "bizStep": "https://ref.gs1.org/cbv/BizStep-commissioning",
             "epcList": ["urn:epc:id:sgtin:4012345.011111.SN0003C"],
             "ilmd": {"urn:epcglobal:cbv:mda:lotNumber": "L2024B",
                      "urn:epcglobal:cbv:mda:itemExpirationDate": "2027-01-31"}},
            {"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "shipping",
             "epcList": ["urn:epc:id:sgtin:4012345.011111.SN0003C"]},
            {"type": "AggregationEvent", "action": "ADD", "bizStep": "packing"},
            {"type": "ObjectEvent", "action": "DELETE", "bizStep": "decommissioning",
             "epcList": ["urn:epc:id:sgtin:4012345.011111.SN0001A"]}
        ]));
        let p = plan(&d, "test.json").expect("valid");
        assert_eq!(p.report.events, 5);
        assert_eq!(p.report.skipped_events, 2);
        assert_eq!(p.report.skipped_identifiers, 1);
        let Step::Commission { source, rows } = &p.steps[0] else {
            panic!("commissioning first")
        };
        assert_eq!(source, "epcis:urn:uuid:1");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].serial, "SN0002B");
        assert_eq!(rows[0].gtin, "04012345111118");
        assert_eq!(rows[0].expiry, "260930");
        let Step::Commission { source, rows } = &p.steps[1] else {
            panic!("second commissioning")
        };
        assert_eq!(source, "epcis:test.json#2");
        assert_eq!(
            (rows[0].lot.as_str(), rows[0].expiry.as_str()),
            ("L2024B", "270131")
        );
        assert!(
            matches!(&p.steps[2], Step::Decommission { serials, .. } if serials["04012345111118"] == ["SN0001A"])
        );
    }

    #[test]
    fn malformed_documents_are_refused() {
        let ev = |e: Value| doc(json!([e]));
        for (d, want) in [
            (json!({"type": "Nope"}), "not an EPCIS document"),
            (json!({"type": "EPCISDocument"}), "eventList"),
            (
                ev(
                    json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
                          "epcList": ["urn:epc:id:sgtin:4012345.011111.S1"]}),
                ),
                "lotNumber",
            ),
            (
                ev(
                    json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
                          "epcList": ["urn:epc:id:sgtin:4012345.011111.S1"],
                          "ilmd": {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2026-02-30"}}),
                ),
                "not a date",
            ),
            (
                ev(
                    json!({"type": "ObjectEvent", "action": "OBSERVE", "bizStep": "commissioning",
                          "epcList": []}),
                ),
                "action ADD",
            ),
            (
                ev(
                    json!({"type": "ObjectEvent", "action": "ADD", "bizStep": "commissioning",
                          "epcList": ["https://id.gs1.org/01/04012345111117/21/S1"],
                          "ilmd": {"cbvmda:lotNumber": "L1", "cbvmda:itemExpirationDate": "2026-02-28"}}),
                ),
                "check digit",
            ),
            (
                ev(
                    json!({"type": "ObjectEvent", "action": "DELETE", "bizStep": "decommissioning",
                          "epcList": ["SN0001"]}),
                ),
                "not an EPC URN",
            ),
        ] {
            let err = plan(&d, "x").expect_err("refused").to_string();
            assert!(err.contains(want), "{want} in {err}");
        }
    }
}
