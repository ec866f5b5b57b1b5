//! The mapping of one scan to EPCIS events, state changes and exceptions (no I/O).
//! The table per operation is in the EPCIS primer §5; what swt does differently is noted
//! where it happens. Public so that the trace benchmark (`swt-bench`) makes its events
//! with [`plan`] rather than with a copy of it.

use std::collections::{BTreeMap, BTreeSet};

use swt_domain::doc::{Expected, Header, TaskKind};
use swt_domain::gs1::{Date, Gln};
use swt_domain::model::{Action as ScanAction, Scan};

use crate::db::entity::{site, trace_object, verification_serial};
use crate::epcis::ident::sgln_digital_link;
use crate::epcis::{
    Action, BizStep, BizTransaction, Disposition, EpcisEvent, EventType, Ilmd,
    PersistentDisposition, Place, SiteZone, UnitKey, format_time_ms,
};

pub use crate::db::entity::trace_object::UnitStatus;

/// The scan-level vocabularies written into `results` are the domain's: scanners read
/// them too.
pub use swt_domain::doc::{ExceptionKind, Rejection};

/// Everything about the document a scan's mapping needs.
pub struct Context {
    pub org: String,
    pub doc_id: String,
    pub site_id: String,
    pub gln: String,
    /// The organisation's party GLN: the issuer of the business documents that are ours.
    pub party_gln: Option<String>,
    /// The task's kind: whether a document of the header is ours or the partner's depends
    /// on the direction of the goods.
    pub kind: TaskKind,
    /// The site's time zone (events' `eventTimeZoneOffset`).
    pub zone: SiteZone,
    pub refs: BTreeMap<String, String>,
    /// Expected hierarchy (manufacturer / ASN data): parent key → its children's keys.
    pub expected_children: BTreeMap<String, Vec<String>>,
}

impl Context {
    pub fn new(
        org: &str,
        party_gln: Option<&str>,
        doc_id: &str,
        site: &site::Model,
        header: &Header,
        expected: &Expected,
    ) -> Self {
        // One parent per child (a unit listed twice: the last listing counts).
        let parent_of: BTreeMap<String, String> = expected
            .units
            .iter()
            .filter_map(|u| {
                let child = UnitKey::parse(&u.id).ok()?;
                let parent = UnitKey::parse(u.parent.as_deref()?).ok()?;
                Some((child.key(), parent.key()))
            })
            .collect();
        let mut expected_children: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (child, parent) in parent_of {
            expected_children.entry(parent).or_default().push(child);
        }
        Self {
            org: org.to_owned(),
            doc_id: doc_id.to_owned(),
            site_id: site.id.clone(),
            gln: site.gln.clone(),
            party_gln: party_gln.map(str::to_owned),
            kind: header.kind,
            zone: SiteZone::stored(&site.time_zone),
            refs: header.refs.clone(),
            expected_children,
        }
    }

    /// The order a pick/pack/ship belongs to: the header's order, else its PO, else the
    /// document (one pick document = one order).
    pub fn order_ref(&self) -> String {
        self.refs
            .get("order")
            .or_else(|| self.refs.get("po"))
            .cloned()
            .unwrap_or_else(|| self.doc_id.clone())
    }

    /// Children (recursively) the expected data puts under `key`, each with its parent.
    pub fn expected_contents(&self, key: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut frontier = vec![key.to_owned()];
        // Each child has one parent, so a unit is listed once; a cycle in bad data
        // would still come back round, so each parent is expanded once.
        let mut expanded = BTreeSet::new();
        while let Some(p) = frontier.pop() {
            if !expanded.insert(p.clone()) {
                continue;
            }
            for c in self.expected_children.get(&p).into_iter().flatten() {
                out.push((c.clone(), p.clone()));
                frontier.push(c.clone());
            }
        }
        out
    }

    pub(crate) fn place(&self, location: Option<&str>) -> Option<Place> {
        sgln_digital_link(&self.gln, location)
            .ok()
            .map(|id| Place { id })
    }

    /// Business transactions of the header that go with a step, as
    /// `urn:epcglobal:cbv:bt:<issuer GLN>:<ref>` (primer §3: the GLN of the party that
    /// issued the document). Which party issued a reference depends on the direction:
    /// inbound, the PO is ours and the ASN and invoice the supplier's; outbound, the PO
    /// is the customer's, our own order (`order`) is the seller's confirmation of it
    /// (`poc`, not a second `po`), and ASN, invoice and bill of lading are ours. A
    /// partner's GLN comes from the header (`supplier_gln`, `customer_gln`); where it is
    /// missing the transaction is left out rather than given a wrong issuer.
    fn transactions(&self, kinds: &[&str]) -> Vec<BizTransaction> {
        let inbound = self.kind == TaskKind::Receiving;
        let outbound = matches!(
            self.kind,
            TaskKind::Picking | TaskKind::Packing | TaskKind::Shipping
        );
        let mut out: Vec<BizTransaction> = Vec::new();
        for (key, value) in &self.refs {
            let (kind, issuer) = match key.as_str() {
                "po" if outbound => ("po", Issuer::Customer),
                "order" if outbound => ("poc", Issuer::Us),
                "po" | "order" => ("po", Issuer::Us),
                "asn" | "desadv" | "shipment" if inbound => ("desadv", Issuer::Supplier),
                "asn" | "desadv" | "shipment" => ("desadv", Issuer::Us),
                "inv" | "invoice" if inbound => ("inv", Issuer::Supplier),
                "inv" | "invoice" => ("inv", Issuer::Us),
                "rma" => ("rma", Issuer::Us),
                "bol" => ("bol", Issuer::Us),
                _ => continue,
            };
            if !kinds.contains(&kind) {
                continue;
            }
            let Some(gln) = self.issuer_gln(issuer) else {
                continue;
            };
            let id = format!("urn:epcglobal:cbv:bt:{gln}:{}", uri_escape(value));
            if !out.iter().any(|t| t.kind == kind && t.id == id) {
                out.push(BizTransaction {
                    kind: kind.to_owned(),
                    id,
                });
            }
        }
        out
    }

    /// The GLN of a document's issuer: ours is the organisation's party GLN (the site's
    /// location GLN only while the organisation has none); a partner's is the header's,
    /// if it is a GLN.
    fn issuer_gln(&self, issuer: Issuer) -> Option<&str> {
        let partner = |key: &str| {
            self.refs
                .get(key)
                .map(|g| g.trim())
                .filter(|g| Gln::parse(g).is_ok())
        };
        match issuer {
            Issuer::Us => Some(self.party_gln.as_deref().unwrap_or(&self.gln)),
            Issuer::Supplier => partner(SUPPLIER_GLN),
            Issuer::Customer => partner(CUSTOMER_GLN),
        }
    }
}

/// Header reference naming the supplier's party GLN (issuer of its ASN and invoice).
pub const SUPPLIER_GLN: &str = "supplier_gln";
/// Header reference naming the customer's party GLN (issuer of its purchase order).
pub const CUSTOMER_GLN: &str = "customer_gln";

/// Who issued a business document.
#[derive(Debug, Clone, Copy)]
enum Issuer {
    Us,
    Supplier,
    Customer,
}

fn uri_escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The object a scan names and the container its `parent` field names.
pub fn subject(scan: &Scan) -> Result<(UnitKey, Option<UnitKey>), Rejection> {
    if matches!(scan.action, ScanAction::Other(_)) {
        return Err(Rejection::UnknownAction);
    }
    let ids = &scan.ids;
    let key = if let Some(sscc) = &ids.sscc {
        UnitKey::sscc(sscc.as_str()).map_err(|_| Rejection::Unreadable)?
    } else {
        match (&ids.gtin, &ids.serial) {
            (Some(g), Some(s)) => {
                UnitKey::sgtin(g.as_str(), s).map_err(|_| Rejection::Unreadable)?
            }
            (Some(_), None) => return Err(Rejection::NotSerialised),
            _ => return Err(Rejection::Unreadable),
        }
    };
    let parent = match &scan.parent {
        Some(p) => Some(UnitKey::parse(p).map_err(|_| Rejection::BadParent)?),
        None => None,
    };
    Ok((key, parent))
}

/// Expiry `YYMMDD` as ISO date, with the century resolved around the scan's own year
/// (deterministic: a re-projection years later gives the same date).
pub(crate) fn expiry_iso(yymmdd: &str, device_time_ms: u64) -> Option<String> {
    let year =
        chrono::DateTime::<chrono::Utc>::from_timestamp_millis(i64::try_from(device_time_ms).ok()?)
            .map(|t| t.format("%Y").to_string())?
            .parse::<u16>()
            .ok()?;
    Date::from_yymmdd(yymmdd, year).map(|d| d.to_iso8601())
}

/// A fresh state row for an object first seen now.
pub fn new_object(org: &str, key: &UnitKey, now_ms: i64) -> trace_object::Model {
    let (gtin, serial, sscc) = match key {
        UnitKey::Sgtin { gtin, serial } => (Some(gtin.clone()), Some(serial.clone()), None),
        UnitKey::Sscc(s) => (None, None, Some(s.clone())),
    };
    trace_object::Model {
        organisation_id: org.to_owned(),
        epc_key: key.key(),
        kind: key.kind().to_owned(),
        gtin,
        serial,
        sscc,
        lot: None,
        expiry: None,
        site_id: None,
        location: None,
        status: UnitStatus::Unknown,
        parent_key: None,
        order_ref: None,
        last_event_time_ms: i64::MIN,
        last_scan_id: None,
        updated_at_ms: now_ms,
        holds: false,
    }
}

/// A change to every object inside a container (shipping a pallet ships its packs).
#[derive(Debug, Clone, Default)]
pub struct Propagate {
    pub status: Option<UnitStatus>,
    /// `Some(None)` clears the location (goods left).
    pub location: Option<Option<String>>,
}

/// An exception to open.
#[derive(Debug, Clone)]
pub struct NewException {
    pub kind: ExceptionKind,
    pub epc_key: String,
    /// Other scans involved besides the scan being projected.
    pub other_scans: Vec<String>,
    pub detail: serde_json::Value,
}

/// What projecting a scan does.
#[derive(Debug, Default)]
pub struct Plan {
    pub events: Vec<EpcisEvent>,
    /// New state of the subject (None: unchanged, e.g. a late scan).
    pub subject: Option<trace_object::Model>,
    /// New state of the parent container named by the scan.
    pub parent: Option<trace_object::Model>,
    pub propagate: Option<Propagate>,
    /// Receiving a container whose contents the expected data lists: (child, parent).
    pub inferred: Vec<(String, String)>,
    pub exceptions: Vec<NewException>,
    pub rejection: Option<Rejection>,
}

/// Maps one scan, given the locked current state of its subject and named parent.
/// `manufactured`: the manufacturer's imported data for the subject's serial, if held.
#[allow(clippy::too_many_arguments)] // each is one fact about the scan's objects
pub fn plan(
    ctx: &Context,
    scan: &Scan,
    key: &UnitKey,
    parent_key: Option<&UnitKey>,
    current: &trace_object::Model,
    parent_state: Option<&trace_object::Model>,
    manufactured: Option<&verification_serial::Model>,
    now_ms: i64,
) -> Plan {
    let mut plan = Plan::default();
    let t = i64::try_from(scan.device_time_ms).unwrap_or(i64::MAX);
    let loc = scan.location.clone();
    let epc = match key.to_digital_link() {
        Ok(e) => e,
        Err(_) => {
            plan.rejection = Some(Rejection::Unreadable);
            return plan;
        }
    };
    let known = current.status != UnitStatus::Unknown;
    // A late scan (older than what the state reflects) records history but leaves state.
    let apply = !known || t >= current.last_event_time_ms;
    let mut next = current.clone();
    next.site_id = Some(ctx.site_id.clone());
    // The manufacturer's lot and expiry: what its commissioning said (primer §5.1).
    let mfr_lot = manufactured.map(|m| m.lot.clone());
    let mfr_expiry = manufactured.and_then(|m| expiry_iso(&m.expiry, scan.device_time_ms));
    if let UnitKey::Sgtin { .. } = key {
        if let Some(l) = &scan.ids.lot {
            next.lot = Some(l.clone());
        }
        if let Some(e) = scan
            .ids
            .expiry
            .as_deref()
            .and_then(|e| expiry_iso(e, scan.device_time_ms))
        {
            next.expiry = Some(e);
        }
        // What the barcode does not say (a case label without expiry), the
        // manufacturer's data does.
        next.lot = next.lot.or_else(|| mfr_lot.clone());
        next.expiry = next.expiry.or_else(|| mfr_expiry.clone());
    }
    next.last_event_time_ms = t;
    next.last_scan_id = Some(scan.id.to_string());
    next.updated_at_ms = now_ms;

    let base = |event_type, action, step: BizStep| EpcisEvent {
        event_type,
        event_id: None,
        event_time: format_time_ms(t),
        event_time_zone_offset: ctx.zone.offset_at(t),
        record_time: None,
        epc_list: Vec::new(),
        parent_id: None,
        child_epcs: Vec::new(),
        action,
        biz_step: Some(step),
        disposition: None,
        persistent_disposition: None,
        read_point: ctx.place(loc.as_deref()),
        biz_location: ctx.place(None),
        biz_transaction_list: Vec::new(),
        ilmd: None,
        swt_scan_id: Some(scan.id.to_string()),
    };
    let object_event = |action, step, disp: Option<Disposition>| {
        let mut e = base(EventType::ObjectEvent, action, step);
        e.epc_list = vec![epc.clone()];
        e.disposition = disp;
        e
    };
    let aggregation = |action, step, parent: &UnitKey| -> Option<EpcisEvent> {
        let mut e = base(EventType::AggregationEvent, action, step);
        e.parent_id = Some(parent.to_digital_link().ok()?);
        e.child_epcs = vec![epc.clone()];
        Some(e)
    };
    let other_scan = || current.last_scan_id.clone().into_iter().collect::<Vec<_>>();
    let raise = |plan: &mut Plan, kind, detail| {
        plan.exceptions.push(NewException {
            kind,
            epc_key: key.key(),
            other_scans: other_scan(),
            detail,
        })
    };

    if current.status == UnitStatus::Destroyed && scan.action != ScanAction::Destroy {
        raise(
            &mut plan,
            ExceptionKind::AfterDestroyed,
            serde_json::json!({"action": scan.action.as_str()}),
        );
    }

    match scan.action {
        ScanAction::Receive => {
            let mut e = object_event(
                Action::Observe,
                BizStep::Receiving,
                Some(Disposition::SellableNotAccessible),
            );
            e.biz_transaction_list = ctx.transactions(&["po", "desadv"]);
            let contents = ctx.expected_contents(&key.key());
            if key.is_container() && !contents.is_empty() {
                // Contents come from supplier data, not scans (primer §3, §5.2).
                e.persistent_disposition = Some(PersistentDisposition {
                    set: vec![Disposition::CompletenessInferred],
                    unset: Vec::new(),
                });
                plan.inferred = contents;
            }
            plan.events.push(e);
            next.status = UnitStatus::InStock;
            next.location = loc.clone();
            next.parent_key = None;
            next.order_ref = None;
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::InStock),
                location: Some(loc.clone()),
            });
        }
        ScanAction::Unpack => {
            let Some(parent) = parent_key.cloned().or_else(|| {
                current
                    .parent_key
                    .as_deref()
                    .and_then(|p| UnitKey::parse(p).ok())
            }) else {
                plan.rejection = Some(Rejection::UnknownParent);
                return plan;
            };
            if let Some(known_parent) = &current.parent_key
                && *known_parent != parent.key()
            {
                raise(
                    &mut plan,
                    ExceptionKind::AggregationMismatch,
                    serde_json::json!({"scanned_parent": parent.key(), "known_parent": known_parent}),
                );
            }
            if let Some(e) = aggregation(Action::Delete, BizStep::Unpacking, &parent) {
                plan.events.push(e);
            }
            next.parent_key = None;
            if !known {
                next.status = UnitStatus::InStock;
            }
            if loc.is_some() {
                next.location = loc.clone();
            }
        }
        ScanAction::Store | ScanAction::Move => {
            let mut e = object_event(
                Action::Observe,
                BizStep::Storing,
                Some(Disposition::SellableNotAccessible),
            );
            e.biz_location = ctx.place(loc.as_deref());
            plan.events.push(e);
            next.status = UnitStatus::InStock;
            next.location = loc.clone();
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::InStock),
                location: Some(loc.clone()),
            });
        }
        ScanAction::Pick => {
            let order = ctx.order_ref();
            if matches!(
                current.status,
                UnitStatus::Picked | UnitStatus::Packed | UnitStatus::Shipped
            ) && current.order_ref.as_deref().is_some_and(|o| o != order)
            {
                raise(
                    &mut plan,
                    ExceptionKind::DoublePick,
                    serde_json::json!({"order": order, "other_order": current.order_ref}),
                );
            }
            // Taking a pack out of a case is an unpacking first (primer §5.5).
            if let Some(p) = current
                .parent_key
                .as_deref()
                .and_then(|p| UnitKey::parse(p).ok())
                && let Some(e) = aggregation(Action::Delete, BizStep::Unpacking, &p)
            {
                plan.events.push(e);
            }
            let mut e = object_event(Action::Observe, BizStep::Picking, None);
            e.biz_transaction_list = ctx.transactions(&["po", "poc"]);
            plan.events.push(e);
            next.status = UnitStatus::Picked;
            next.order_ref = Some(order);
            next.parent_key = None;
            next.location = loc.clone();
        }
        ScanAction::Pack => {
            let Some(parent) = parent_key else {
                plan.rejection = Some(Rejection::UnknownParent);
                return plan;
            };
            if let Some(old) = &current.parent_key
                && *old != parent.key()
            {
                raise(
                    &mut plan,
                    ExceptionKind::Reparented,
                    serde_json::json!({"new_parent": parent.key(), "old_parent": old}),
                );
            }
            let mut e = match aggregation(Action::Add, BizStep::Packing, parent) {
                Some(e) => e,
                None => {
                    plan.rejection = Some(Rejection::BadParent);
                    return plan;
                }
            };
            e.disposition = Some(Disposition::InProgress);
            plan.events.push(e);
            next.parent_key = Some(parent.key());
            next.status = UnitStatus::Packed;
            if next.order_ref.is_none() {
                next.order_ref = Some(ctx.order_ref());
            }
            next.location = loc.clone();
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::Packed),
                location: Some(loc.clone()),
            });
            if let Some(ps) = parent_state {
                let mut p = ps.clone();
                if p.status == UnitStatus::Unknown || p.status == UnitStatus::InStock {
                    p.status = UnitStatus::Packed;
                }
                p.site_id = Some(ctx.site_id.clone());
                if p.order_ref.is_none() {
                    p.order_ref = next.order_ref.clone();
                }
                if p.location.is_none() {
                    p.location = loc.clone();
                }
                if p.last_event_time_ms < t {
                    p.last_event_time_ms = t;
                }
                p.updated_at_ms = now_ms;
                plan.parent = Some(p);
            }
        }
        ScanAction::Ship => {
            if current.status == UnitStatus::Shipped {
                raise(
                    &mut plan,
                    ExceptionKind::DoubleShip,
                    serde_json::json!({"order": ctx.order_ref(), "previous_order": current.order_ref}),
                );
            }
            let mut e = object_event(
                Action::Observe,
                BizStep::Shipping,
                Some(Disposition::InTransit),
            );
            // No bizLocation: the goods are leaving (primer §5.7).
            e.biz_location = None;
            e.biz_transaction_list = ctx.transactions(&["po", "poc", "desadv", "inv", "bol"]);
            plan.events.push(e);
            next.status = UnitStatus::Shipped;
            next.location = None;
            if next.order_ref.is_none() {
                next.order_ref = Some(ctx.order_ref());
            }
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::Shipped),
                location: Some(None),
            });
        }
        ScanAction::Return => {
            let mut e = object_event(
                Action::Observe,
                BizStep::Receiving,
                Some(Disposition::Returned),
            );
            e.biz_location = ctx.place(loc.as_deref());
            e.biz_transaction_list = ctx.transactions(&["rma"]);
            plan.events.push(e);
            next.status = UnitStatus::Returned;
            next.location = loc.clone();
            next.parent_key = None;
            next.order_ref = None;
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::Returned),
                location: Some(loc.clone()),
            });
        }
        ScanAction::Quarantine => {
            let mut e = object_event(
                Action::Observe,
                BizStep::Holding,
                Some(Disposition::NonSellableOther),
            );
            e.biz_location = ctx.place(loc.as_deref());
            plan.events.push(e);
            next.status = UnitStatus::Quarantined;
            next.location = loc.clone();
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::Quarantined),
                location: Some(loc.clone()),
            });
        }
        ScanAction::Destroy => {
            let mut e = object_event(
                Action::Delete,
                BizStep::Destroying,
                Some(Disposition::Destroyed),
            );
            e.biz_location = None;
            plan.events.push(e);
            next.status = UnitStatus::Destroyed;
            next.location = None;
            next.parent_key = None;
            plan.propagate = Some(Propagate {
                status: Some(UnitStatus::Destroyed),
                location: Some(None),
            });
        }
        ScanAction::Inspect => {
            plan.events.push(object_event(
                Action::Observe,
                BizStep::Inspecting,
                Some(Disposition::SellableNotAccessible),
            ));
            if matches!(
                current.status,
                UnitStatus::Returned | UnitStatus::Quarantined | UnitStatus::Unknown
            ) {
                next.status = UnitStatus::InStock;
            }
            if loc.is_some() {
                next.location = loc.clone();
            }
        }
        ScanAction::Count => {
            let mut e = object_event(Action::Observe, BizStep::CycleCounting, None);
            e.biz_location = ctx.place(loc.as_deref());
            plan.events.push(e);
            if !known {
                next.status = UnitStatus::InStock;
            }
            if loc.is_some() {
                next.location = loc.clone();
            }
        }
        ScanAction::Other(_) => {
            plan.rejection = Some(Rejection::UnknownAction);
            return plan;
        }
    }
    // A destroyed object stays destroyed whatever is scanned later; out-of-site objects
    // only come back through receiving or returns.
    let keeps_state = current.status == UnitStatus::Destroyed && scan.action != ScanAction::Destroy
        || (current.status.is_out()
            && !matches!(
                scan.action,
                ScanAction::Receive | ScanAction::Return | ScanAction::Ship | ScanAction::Destroy
            ));
    if apply && !keeps_state {
        // Lot and expiry travel only in a commissioning event's ILMD (primer §6; the
        // schema allows ILMD on ADD ObjectEvents only, never on this scan's OBSERVE).
        // swt stores no manufacturer's events, so when it first learns a pack's lot or
        // expiry it records that as a commissioning ADD of its own, at its site and the
        // scan's time, carrying the manufacturer's values where it holds them (imported
        // serial data) and the barcode's otherwise. Once per pack: a pack whose lot or
        // expiry is known already had it.
        if let UnitKey::Sgtin { .. } = key
            && current.lot.is_none()
            && current.expiry.is_none()
        {
            let ilmd = Ilmd {
                lot_number: mfr_lot.or_else(|| next.lot.clone()),
                item_expiration_date: mfr_expiry.or_else(|| next.expiry.clone()),
            };
            if ilmd.lot_number.is_some() || ilmd.item_expiration_date.is_some() {
                let mut e = object_event(
                    Action::Add,
                    BizStep::Commissioning,
                    Some(Disposition::Active),
                );
                e.ilmd = Some(ilmd);
                plan.events.insert(0, e);
            }
        }
        plan.subject = Some(next);
    } else {
        plan.propagate = None;
        plan.inferred.clear();
        plan.parent = None;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use swt_domain::doc::{ExpectedUnit, TaskKind, TaskStatus};

    const PALLET: &str = "sscc:040123450000000122";
    const CASE_GTIN: &str = "14012345111115";
    const UNIT_GTIN: &str = "04012345111118";

    fn context(units: &[(String, Option<&str>)]) -> Context {
        let site = site::Model {
            id: "site-1".into(),
            organisation_id: "org".into(),
            name: "Site".into(),
            gln: "4098765000010".into(),
            address: None,
            time_zone: "UTC".to_owned(),
            created_at: chrono::Utc::now(),
        };
        let header = Header {
            kind: TaskKind::Receiving,
            site: "site-1".into(),
            refs: BTreeMap::new(),
            status: TaskStatus::Open,
        };
        let expected = Expected {
            lines: Vec::new(),
            units: units
                .iter()
                .map(|(id, parent)| ExpectedUnit {
                    id: id.clone(),
                    parent: parent.map(str::to_owned),
                })
                .collect(),
        };
        Context::new("org", None, "doc", &site, &header, &expected)
    }

    #[test]
    fn expected_contents_are_the_whole_hierarchy_below_a_container() {
        let case = |n: u32| format!("sgtin:{CASE_GTIN}:C{n}");
        let pack = |c: u32, n: u32| format!("sgtin:{UNIT_GTIN}:P{c}-{n}");
        let mut units = vec![(PALLET.to_owned(), None)];
        for c in 1..=2 {
            units.push((case(c), Some(PALLET)));
        }
        let (c1, c2) = (case(1), case(2));
        for n in 1..=3 {
            units.push((pack(1, n), Some(c1.as_str())));
            units.push((pack(2, n), Some(c2.as_str())));
        }
        let ctx = context(&units);

        let mut all = ctx.expected_contents(PALLET);
        all.sort();
        let mut want: Vec<(String, String)> = units
            .iter()
            .filter_map(|(id, parent)| Some((id.clone(), (*parent)?.to_owned())))
            .collect();
        want.sort();
        assert_eq!(all, want);
        let mut in_case = ctx.expected_contents(&c2);
        in_case.sort();
        assert_eq!(
            in_case,
            (1..=3)
                .map(|n| (pack(2, n), c2.clone()))
                .collect::<Vec<_>>()
        );
        assert!(ctx.expected_contents(&pack(1, 1)).is_empty());
    }

    #[test]
    fn expected_contents_end_on_a_cycle_in_bad_data() {
        let (a, b) = (
            format!("sgtin:{CASE_GTIN}:A"),
            format!("sgtin:{CASE_GTIN}:B"),
        );
        let ctx = context(&[(a.clone(), Some(b.as_str())), (b.clone(), Some(a.as_str()))]);
        assert_eq!(
            ctx.expected_contents(&a),
            vec![(b.clone(), a.clone()), (a.clone(), b.clone())]
        );
    }

    fn transactions_of(
        kind: TaskKind,
        refs: &[(&str, &str)],
        party: Option<&str>,
        kinds: &[&str],
    ) -> Vec<(String, String)> {
        let mut ctx = context(&[]);
        ctx.kind = kind;
        ctx.party_gln = party.map(str::to_owned);
        ctx.refs = refs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let mut out: Vec<(String, String)> = ctx
            .transactions(kinds)
            .into_iter()
            .map(|t| (t.kind, t.id))
            .collect();
        out.sort();
        out
    }

    const US: &str = "4098765000003";
    const SUPPLIER: &str = "4012345000009";
    const CUSTOMER: &str = "4055555000001";

    fn bt(kind: &str, gln: &str, id: &str) -> (String, String) {
        (kind.to_owned(), format!("urn:epcglobal:cbv:bt:{gln}:{id}"))
    }

    #[test]
    fn receiving_names_our_po_and_the_suppliers_asn() {
        // Primer §5.2: our PO, the supplier's despatch advice.
        let refs = [
            ("po", "PO-2025-118"),
            ("asn", "DEL-5531"),
            (SUPPLIER_GLN, SUPPLIER),
        ];
        assert_eq!(
            transactions_of(TaskKind::Receiving, &refs, Some(US), &["po", "desadv"]),
            [
                bt("desadv", SUPPLIER, "DEL-5531"),
                bt("po", US, "PO-2025-118")
            ]
        );
        // Without the supplier's GLN its ASN is left out, never issued in our name.
        assert_eq!(
            transactions_of(TaskKind::Receiving, &refs[..2], Some(US), &["po", "desadv"]),
            [bt("po", US, "PO-2025-118")]
        );
        // An organisation without a party GLN: the site's GLN stands in for ours only.
        assert_eq!(
            transactions_of(TaskKind::Receiving, &refs, None, &["po"]),
            [bt("po", "4098765000010", "PO-2025-118")]
        );
    }

    #[test]
    fn outbound_names_the_customers_po_and_our_order_asn_and_invoice() {
        // Primer §5.5 and §5.7: the customer's PO; ASN and invoice are ours; our sales
        // order is the seller's confirmation of the PO.
        let refs = [
            ("po", "4711"),
            ("order", "SO-88"),
            ("shipment", "ASN-2025-0042"),
            ("invoice", "INV-88120"),
            (CUSTOMER_GLN, CUSTOMER),
        ];
        let ship = ["po", "poc", "desadv", "inv", "bol"];
        assert_eq!(
            transactions_of(TaskKind::Shipping, &refs, Some(US), &ship),
            [
                bt("desadv", US, "ASN-2025-0042"),
                bt("inv", US, "INV-88120"),
                bt("po", CUSTOMER, "4711"),
                bt("poc", US, "SO-88"),
            ]
        );
        assert_eq!(
            transactions_of(TaskKind::Picking, &refs, Some(US), &["po", "poc"]),
            [bt("po", CUSTOMER, "4711"), bt("poc", US, "SO-88")]
        );
        // No customer GLN, or not a GLN: the customer's PO is left out.
        let bad = [("po", "4711"), (CUSTOMER_GLN, "4055555000002")];
        assert!(transactions_of(TaskKind::Picking, &bad, Some(US), &["po"]).is_empty());
    }

    #[test]
    fn a_return_authorisation_is_ours() {
        assert_eq!(
            transactions_of(TaskKind::Returns, &[("rma", "RMA 1")], Some(US), &["rma"]),
            [bt("rma", US, "RMA%201")]
        );
    }
}
