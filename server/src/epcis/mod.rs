//! EPCIS 2.0 for swt: the event types we store and export, their JSON-LD form, the
//! CBV vocabulary we use, identifier rendering (GS1 Digital Link), and the CBV 2.0 event
//! hash ID used as our events' `eventID`.
//!
//! Not here: capture/query REST endpoints and importing partner documents (later work);
//! the mapping of warehouse scans to events lives in `projection`.

pub mod gcp;
pub mod hash;
pub mod ident;
pub mod render;
pub mod zone;

use serde::{Deserialize, Serialize};

pub use hash::{HashError, event_hash_id};
pub use swt_domain::unit::{UnitKey, UnitKeyError};
pub use zone::{SiteZone, UnknownZone};

/// The context URL every document names (mapped to the bundled copy, never fetched).
pub const EPCIS_CONTEXT: &str = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld";
/// The namespace of swt's own extension fields (`swt:scanId`); ends in `/` so JSON-LD
/// treats `swt` as a prefix.
pub const SWT_NS: &str = "https://ns.swt.example/epcis/";
/// Canonical Digital Link domain for identifiers we emit.
pub use swt_domain::unit::DIGITAL_LINK_STEM as DL_STEM;

/// EPCIS event types swt produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    /// Something happened to the listed objects.
    ObjectEvent,
    /// Children put into / taken out of a parent.
    AggregationEvent,
}

impl EventType {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ObjectEvent => "ObjectEvent",
            Self::AggregationEvent => "AggregationEvent",
        }
    }
}

/// EPCIS `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Created / put into.
    Add,
    /// Seen; no lifecycle change.
    Observe,
    /// Ended / taken out.
    Delete,
}

impl Action {
    /// The JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Observe => "OBSERVE",
            Self::Delete => "DELETE",
        }
    }
}

swt_domain::code_table! {
    /// CBV business steps swt emits.
    pub enum BizStep {
        /// Identifier first associated with an object.
        Commissioning = "commissioning",
        /// Goods receipt / returns receipt.
        Receiving = "receiving",
        /// Put-away and moves.
        Storing = "storing",
        /// Selecting for an order.
        Picking = "picking",
        /// Into a container.
        Packing = "packing",
        /// Out of a container.
        Unpacking = "unpacking",
        /// Dispatch.
        Shipping = "shipping",
        /// Review; stays viable.
        Inspecting = "inspecting",
        /// Segregated (quarantine).
        Holding = "holding",
        /// Terminated.
        Destroying = "destroying",
        /// Counted.
        CycleCounting = "cycle_counting",
    }
    /// The CBV 2.0 bare word (what JSON-LD documents carry, and the serde form).
    fn as_str;
}

swt_domain::code_table! {
    /// CBV dispositions swt emits.
    pub enum Disposition {
        /// Just commissioned.
        Active = "active",
        /// Normal warehouse stock.
        SellableNotAccessible = "sellable_not_accessible",
        /// Being packed.
        InProgress = "in_progress",
        /// Left us.
        InTransit = "in_transit",
        /// Came back from a customer.
        Returned = "returned",
        /// Quarantined for another reason.
        NonSellableOther = "non_sellable_other",
        /// Provenance could not be validated (failed product-identifier verification).
        NoPedigreeMatch = "no_pedigree_match",
        /// Held because its lot is recalled.
        Recalled = "recalled",
        /// Held because it is past its expiry.
        Expired = "expired",
        /// Terminated.
        Destroyed = "destroyed",
        /// Contents taken from supplier data, not scanned.
        CompletenessInferred = "completeness_inferred",
        /// Every expected child scanned.
        CompletenessVerified = "completeness_verified",
    }
    /// The CBV 2.0 bare word (what JSON-LD documents carry, and the serde form).
    fn as_str;
}

/// `readPoint` / `bizLocation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// SGLN as Digital Link (`https://id.gs1.org/414/<GLN>[/254/<ext>]`).
    pub id: String,
}

/// One `bizTransactionList` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BizTransaction {
    /// CBV transaction type (`po`, `desadv`, `rma`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The transaction's URI.
    #[serde(rename = "bizTransaction")]
    pub id: String,
}

/// `ilmd`: the lot and expiry DSCSA carries in the commissioning event (primer §5.1, §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ilmd {
    /// Lot / batch (AI 10).
    #[serde(
        rename = "cbvmda:lotNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub lot_number: Option<String>,
    /// Expiry as `xsd:date` (`2026-09-30`).
    #[serde(
        rename = "cbvmda:itemExpirationDate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub item_expiration_date: Option<String>,
}

/// `persistentDisposition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersistentDisposition {
    /// Dispositions set by this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Disposition>,
    /// Dispositions unset by this event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<Disposition>,
}

/// An EPCIS 2.0 event as swt stores and exports it. Field order is the JSON order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpcisEvent {
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The CBV 2.0 event hash ID of this event.
    #[serde(rename = "eventID", default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// When it happened, RFC 3339 UTC with milliseconds.
    pub event_time: String,
    /// Offset in force where it happened (`+01:00`).
    pub event_time_zone_offset: String,
    /// When swt stored it (present on query results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_time: Option<String>,
    /// ObjectEvent: the objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub epc_list: Vec<String>,
    /// AggregationEvent: the container.
    #[serde(rename = "parentID", default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    /// AggregationEvent: the contents.
    #[serde(rename = "childEPCs", default, skip_serializing_if = "Vec::is_empty")]
    pub child_epcs: Vec<String>,
    /// ADD / OBSERVE / DELETE.
    pub action: Action,
    /// CBV business step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_step: Option<BizStep>,
    /// CBV disposition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Disposition>,
    /// Persistent disposition changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_disposition: Option<PersistentDisposition>,
    /// Where it was seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_point: Option<Place>,
    /// Where the objects are afterwards (absent when they leave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_location: Option<Place>,
    /// Related business documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub biz_transaction_list: Vec<BizTransaction>,
    /// Instance/lot master data of the objects an ADD ObjectEvent commissions (the
    /// 2.0.1 schema allows it on no other event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ilmd: Option<Ilmd>,
    /// The scan this event was made from (extension; makes every event's hash unique
    /// and ties the record to the original scan for audits).
    #[serde(
        rename = "swt:scanId",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub swt_scan_id: Option<String>,
}

impl EpcisEvent {
    /// The event as JSON, with `eventID` set to its hash ID (computed without `eventID`
    /// and `recordTime`, as the algorithm says).
    pub fn with_hash_id(mut self) -> Result<Self, HashError> {
        self.event_id = None;
        self.record_time = None;
        let value = serde_json::to_value(&self).map_err(|e| HashError::Json(e.to_string()))?;
        let id = event_hash_id(&value, &hash::Prefixes::swt())?;
        self.event_id = Some(id);
        Ok(self)
    }
}

/// The CBV master-data namespace (`cbvmda:`), of the ILMD fields we write.
pub const CBV_MDA_NS: &str = "urn:epcglobal:cbv:mda:";

/// The `@context` of swt documents: the EPCIS context plus the `swt` prefix, and
/// `cbvmda` declared again (as GS1's own examples do): the EPCIS context defines it, but a
/// partner's hash tool that does not fetch that context (GS1's reference generator) would
/// otherwise hash `cbvmda:lotNumber` unexpanded and get another eventID.
pub fn swt_context() -> serde_json::Value {
    serde_json::json!([EPCIS_CONTEXT, {"swt": SWT_NS, "cbvmda": CBV_MDA_NS}])
}

/// An `EPCISDocument` (file exchange / capture) holding events.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpcisDocument {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: serde_json::Value,
    /// Always `EPCISDocument`.
    #[serde(rename = "type")]
    pub doc_type: String,
    /// Always `2.0`.
    pub schema_version: String,
    /// When the document was made (RFC 3339).
    pub creation_date: String,
    /// The events.
    pub epcis_body: EventListBody,
}

/// `epcisBody` of an `EPCISDocument`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventListBody {
    /// Events, ordered by event time. Typed, not `serde_json::Value`: a `Value` writes its
    /// members alphabetically, and the reference hash tool reads the members of list
    /// entries (`type` before `bizTransaction`) in document order, so only the struct
    /// order (the CBV order) lets a partner reproduce our `eventID`s.
    pub event_list: Vec<EpcisEvent>,
}

impl EpcisDocument {
    /// A document of events.
    pub fn new(creation_date: String, events: Vec<EpcisEvent>) -> Self {
        Self {
            context: swt_context(),
            doc_type: "EPCISDocument".to_owned(),
            schema_version: "2.0".to_owned(),
            creation_date,
            epcis_body: EventListBody { event_list: events },
        }
    }
}

/// An `EPCISQueryDocument`: the answer to a query (events with `recordTime`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpcisQueryDocument {
    /// JSON-LD context.
    #[serde(rename = "@context")]
    pub context: serde_json::Value,
    /// Always `EPCISQueryDocument`.
    #[serde(rename = "type")]
    pub doc_type: String,
    /// Always `2.0`.
    pub schema_version: String,
    /// When the document was made.
    pub creation_date: String,
    /// The query results.
    pub epcis_body: QueryBody,
}

/// `epcisBody` of a query document.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryBody {
    /// The results.
    pub query_results: QueryResults,
}

/// `queryResults`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResults {
    /// Name of the query (`SimpleEventQuery`).
    pub query_name: String,
    /// The events.
    pub results_body: EventListBody,
}

impl EpcisQueryDocument {
    /// A `SimpleEventQuery` result of stored events.
    pub fn new(creation_date: String, events: Vec<EpcisEvent>) -> Self {
        Self {
            context: swt_context(),
            doc_type: "EPCISQueryDocument".to_owned(),
            schema_version: "2.0".to_owned(),
            creation_date,
            epcis_body: QueryBody {
                query_results: QueryResults {
                    query_name: "SimpleEventQuery".to_owned(),
                    results_body: EventListBody { event_list: events },
                },
            },
        }
    }
}

/// RFC 3339 UTC with milliseconds, the only time form swt emits (hashes need it).
pub fn format_time_ms(ms: i64) -> String {
    match chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms) {
        // Same text as the format string `%Y-%m-%dT%H:%M:%S%.3fZ`, without parsing it per
        // call (a pallet's explosion formats 6,000 of these).
        Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        None => "1970-01-01T00:00:00.000Z".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_members_keep_the_cbv_order() {
        let event = EpcisEvent {
            event_type: EventType::ObjectEvent,
            event_id: Some("ni:///sha-256;00?ver=CBV2.0".to_owned()),
            event_time: format_time_ms(0),
            event_time_zone_offset: "+00:00".to_owned(),
            record_time: Some(format_time_ms(1)),
            epc_list: vec!["https://id.gs1.org/00/040987650000000027".to_owned()],
            parent_id: None,
            child_epcs: Vec::new(),
            action: Action::Observe,
            biz_step: Some(BizStep::Shipping),
            disposition: Some(Disposition::InTransit),
            persistent_disposition: None,
            read_point: Some(Place {
                id: "https://id.gs1.org/414/4098765000010".to_owned(),
            }),
            biz_location: None,
            biz_transaction_list: vec![BizTransaction {
                kind: "po".to_owned(),
                id: "urn:epcglobal:cbv:bt:4055555000001:4711".to_owned(),
            }],
            ilmd: None,
            swt_scan_id: Some("s.1".to_owned()),
        };
        let text = serde_json::to_string(&EpcisQueryDocument::new(format_time_ms(0), vec![event]))
            .unwrap_or_default();
        let at = |needle: &str| {
            text.find(needle)
                .unwrap_or_else(|| panic!("{needle} missing from {text}"))
        };
        // The CBV order (and that of every GS1 example), not the alphabetical one.
        let order = [
            r#""type":"ObjectEvent""#,
            r#""eventID""#,
            r#""eventTime""#,
            r#""eventTimeZoneOffset""#,
            r#""recordTime""#,
            r#""epcList""#,
            r#""action""#,
            r#""bizStep""#,
            r#""disposition""#,
            r#""readPoint""#,
            r#""bizTransactionList""#,
            r#""swt:scanId""#,
        ];
        for pair in order.windows(2) {
            assert!(
                at(pair[0]) < at(pair[1]),
                "{} after {}: {text}",
                pair[0],
                pair[1]
            );
        }
        // Inside list entries the type comes first (the reference hash tool reads them in
        // document order).
        at(r#"{"type":"po","bizTransaction":"#);
    }

    #[test]
    fn times_are_utc_with_milliseconds() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_time_ms(1_767_571_230_100),
            "2026-01-05T00:00:30.100Z"
        );
        assert_eq!(format_time_ms(-1), "1969-12-31T23:59:59.999Z");
        // Out of chrono's range: the epoch, not a panic.
        assert_eq!(format_time_ms(i64::MIN), "1970-01-01T00:00:00.000Z");
    }
}
