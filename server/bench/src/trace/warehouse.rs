//! The synthetic warehouse the trace benchmark loads: deterministic (same shape and seed,
//! same rows), generated in time order, shaped like what the projection writes.
//!
//! One inbound pallet (`cases` × `packs`, contents inferred from supplier data) is received
//! and put away every simulated hour. Most pallets are later broken down for orders
//! ([`PICK_LAG`] hours on): every pack is unpacked from its case, picked, packed into an
//! outbound carton (one per order) and shipped with it; a few packs come back as returns
//! ([`RETURN_LAG`] hours after that). The other pallets stay whole in reserve stock and
//! are cycle-counted. Events of one pack are therefore far apart in the table, as in a
//! real warehouse, and never clustered on one page by construction.
//!
//! Each step is a scan as a scanner records it, and the events are what the product's own
//! mapping ([`swt_server::projection::map::plan`]) makes of it, so the benchmark measures
//! data of the product's shape, not of a copy of its logic.
//!
//! Object rows are written with their final state: each pallet's objects are kept in
//! memory while events can still change them, then handed out once.

use std::collections::{BTreeMap, VecDeque};

use sha2::{Digest, Sha256};
use swt_domain::doc::{Expected, ExpectedUnit, Header, TaskKind, TaskStatus};
use swt_domain::gs1::mod10_check_digit;
use swt_domain::model::{Action as ScanAction, Feedback, Identifiers, Scan, ScanId};
use swt_server::db::entity::site;
use swt_server::epcis::UnitKey;
use swt_server::projection::map::{self, Context};

use super::BenchError;

/// Organisation every generated row belongs to.
pub const ORG: &str = "org-bench";
/// The one site.
pub const SITE: &str = "site-bench";
/// Hours between receiving a pallet and breaking it down for orders.
pub const PICK_LAG: u64 = 20;
/// Hours between shipping and the returns of the same packs.
pub const RETURN_LAG: u64 = 60;
/// Packs per order (one outbound carton each).
pub const ORDER_PACKS: u32 = 24;
/// Of 100 pallets, how many are broken down; the rest stay whole.
const PICKED_PCT: u64 = 70;
/// Of 100 shipped packs, how many come back.
const RETURNED_PCT: u64 = 3;
const PRODUCTS: u64 = 12;
const HOUR_MS: i64 = 3_600_000;
/// 2026-01-01T00:00:00Z.
const T0_MS: i64 = 1_767_225_600_000;
/// What the manufacturer's and our own identifiers start with (GS1 company prefixes).
const MAKER_PREFIX: &str = "4012345";
const OWN_PREFIX: &str = "4098765";

/// How big the generated warehouse is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shape {
    /// Events to generate (at least; the last hour is completed).
    pub events: u64,
    /// Cases per pallet.
    pub cases: u32,
    /// Packs per case.
    pub packs: u32,
    /// Seed of every random choice.
    pub seed: u64,
}

/// One `epcis_event` row.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub pk: i64,
    pub event_id: String,
    pub event_type: &'static str,
    pub action: &'static str,
    pub biz_step: Option<&'static str>,
    pub disposition: Option<&'static str>,
    pub event_time_ms: i64,
    pub record_time_ms: i64,
    pub location: Option<String>,
    pub read_point: Option<String>,
    pub biz_location: Option<String>,
    pub document_id: String,
    pub scan_id: String,
    pub user_id: String,
    pub device_id: String,
    pub body: String,
}

/// One `epcis_event_epc` row.
#[derive(Debug, Clone)]
pub struct EpcRow {
    pub event_pk: i64,
    pub role: &'static str,
    pub epc_key: String,
    pub event_time_ms: i64,
}

/// One `trace_object` row (final state).
#[derive(Debug, Clone)]
pub struct ObjectRow {
    pub epc_key: String,
    pub kind: &'static str,
    pub gtin: Option<String>,
    pub serial: Option<String>,
    pub sscc: Option<String>,
    pub lot: Option<String>,
    pub expiry: Option<String>,
    pub location: Option<String>,
    pub status: &'static str,
    pub parent_key: Option<String>,
    pub order_ref: Option<String>,
    pub last_event_time_ms: i64,
    pub last_scan_id: Option<String>,
    pub updated_at_ms: i64,
}

/// The rows of one simulated hour.
#[derive(Debug, Default)]
pub struct Batch {
    pub events: Vec<EventRow>,
    pub epcs: Vec<EpcRow>,
    pub objects: Vec<ObjectRow>,
}

/// splitmix64's finaliser: a bijection on u64, so distinct inputs give distinct outputs.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn with_check(body: &str) -> String {
    let cd = mod10_check_digit(body.as_bytes());
    format!("{body}{}", char::from(cd))
}

/// FMD-style random serial: 13 characters of Crockford base 32 (unique per input).
fn serial(x: u64) -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut v = x;
    let mut s = [0u8; 13];
    for c in s.iter_mut().rev() {
        *c = ALPHABET[(v & 31) as usize];
        v >>= 5;
    }
    String::from_utf8_lossy(&s).into_owned()
}

impl Shape {
    fn per_pallet(&self) -> u64 {
        u64::from(self.cases) * u64::from(self.packs)
    }

    fn orders_per_pallet(&self) -> u64 {
        self.per_pallet().div_ceil(u64::from(ORDER_PACKS))
    }

    /// Whether pallet `p` is broken down for orders (else it stays whole).
    pub fn pallet_picked(&self, p: u64) -> bool {
        mix(self.seed ^ p.wrapping_mul(0x1000_0000_01B3)) % 100 < PICKED_PCT
    }

    /// Whether pack `n` (0-based within pallet `p`) comes back as a return.
    pub fn pack_returned(&self, p: u64, n: u64) -> bool {
        let id = p * self.per_pallet() + n;
        mix(self.seed ^ 0x5EED_0000 ^ id.wrapping_mul(0x9E37)) % 100 < RETURNED_PCT
    }

    /// Events of hour `e`.
    fn events_in_hour(&self, e: u64) -> u64 {
        let mut n = 2;
        if e >= PICK_LAG {
            let q = e - PICK_LAG;
            n += if self.pallet_picked(q) {
                3 * self.per_pallet() + self.orders_per_pallet()
            } else {
                1
            };
        }
        if e >= PICK_LAG + RETURN_LAG {
            let r = e - PICK_LAG - RETURN_LAG;
            if self.pallet_picked(r) {
                n += 3
                    * (0..self.per_pallet())
                        .filter(|&k| self.pack_returned(r, k))
                        .count() as u64;
            }
        }
        n
    }

    /// Hours to simulate for at least `events` events, and the events they make.
    pub fn hours(&self) -> (u64, u64) {
        let (mut e, mut total) = (0, 0);
        while total < self.events {
            total += self.events_in_hour(e);
            e += 1;
        }
        (e, total)
    }

    /// Unit GTIN and case GTIN of pallet `p`'s product.
    fn gtins(&self, p: u64) -> (String, String) {
        let item = 10_001 + p % PRODUCTS;
        (
            with_check(&format!("0{MAKER_PREFIX}{item:05}")),
            with_check(&format!("1{MAKER_PREFIX}{item:05}")),
        )
    }

    /// Key of pallet `p`.
    pub fn pallet_key(&self, p: u64) -> String {
        format!("sscc:{}", with_check(&format!("3{MAKER_PREFIX}{p:09}")))
    }

    /// Key of pack `n` of pallet `p`.
    pub fn pack_key(&self, p: u64, n: u64) -> String {
        let (unit, _) = self.gtins(p);
        format!("sgtin:{unit}:{}", self.pack_serial(p, n))
    }

    fn pack_serial(&self, p: u64, n: u64) -> String {
        serial(mix(self.seed ^ (p * self.per_pallet() + n)))
    }

    fn case_serial(&self, p: u64, c: u64) -> String {
        // A different input space than packs' (top bit set), still unique per case.
        serial(mix(self.seed ^ (1 << 63) ^ (p * u64::from(self.cases) + c)))
    }

    fn carton_sscc(&self, p: u64, j: u64) -> String {
        with_check(&format!(
            "0{OWN_PREFIX}{:09}",
            p * self.orders_per_pallet() + j
        ))
    }

    /// Events the history of pack `n` of pallet `p` holds once `hours` hours are loaded.
    pub fn pack_history_len(&self, hours: u64, p: u64, n: u64) -> usize {
        if !self.pallet_picked(p) || p + PICK_LAG >= hours {
            return 0;
        }
        let back = self.pack_returned(p, n) && p + PICK_LAG + RETURN_LAG < hours;
        if back { 6 } else { 3 }
    }

    /// Objects inside a pallet that was never broken down.
    pub fn pallet_descendants(&self) -> usize {
        usize::try_from(u64::from(self.cases) + self.per_pallet()).unwrap_or(usize::MAX)
    }

    /// Whether pallet `p` is still whole after `hours` hours.
    pub fn pallet_whole(&self, hours: u64, p: u64) -> bool {
        !self.pallet_picked(p) || p + PICK_LAG >= hours
    }
}

/// A pallet's objects while events may still change them: pallet, cases, packs, cartons.
struct Pallet {
    objects: Vec<ObjectRow>,
}

/// One scan of a step of the warehouse's work, and the task it belongs to.
struct Step<'a> {
    action: ScanAction,
    /// The object scanned.
    key: &'a str,
    /// The container the scan names (packing into it).
    parent: Option<&'a str>,
    /// The container the object is in before the scan (picking takes it out).
    inside: Option<&'a str>,
    location: Option<String>,
    task: TaskKind,
    /// The task header's business references (`po`, `desadv`, `rma`).
    refs: Vec<(&'static str, String)>,
    /// What the supplier data lists inside the object (receiving infers its contents).
    expected: &'a [String],
    document: String,
    user: String,
    device: String,
}

/// Generates the warehouse hour by hour.
pub struct Generator {
    shape: Shape,
    hours: u64,
    site: site::Model,
    hour: u64,
    next_pk: i64,
    scan_seq: u64,
    open: VecDeque<(u64, Pallet)>,
}

impl Generator {
    /// A generator for `shape` (see [`Shape::hours`]).
    pub fn new(shape: Shape) -> Self {
        let (hours, _) = shape.hours();
        Self {
            shape,
            hours,
            site: site::Model {
                id: SITE.to_owned(),
                organisation_id: ORG.to_owned(),
                name: "Bench site".to_owned(),
                gln: site_gln(),
                address: None,
                time_zone: "UTC".to_owned(),
                created_at: chrono::DateTime::from_timestamp_millis(T0_MS).unwrap_or_default(),
            },
            hour: 0,
            next_pk: 1,
            scan_seq: 0,
            open: VecDeque::new(),
        }
    }

    /// Hours this run simulates.
    pub fn hours(&self) -> u64 {
        self.hours
    }

    fn bin(p: u64) -> String {
        format!("A{:02}-{:02}-{}", p % 40 + 1, (p / 40) % 30 + 1, p % 5 + 1)
    }

    fn time(&self, i: u64) -> i64 {
        T0_MS
            + i64::try_from(self.hour).unwrap_or(0) * HOUR_MS
            + i64::try_from(i).unwrap_or(0) * 100
    }

    /// The next hour's rows, `None` when done. An error means the product's mapping
    /// refused a generated scan: the generator and the mapping disagree.
    pub fn next_batch(&mut self) -> Result<Option<Batch>, BenchError> {
        if self.hour >= self.hours {
            let mut batch = Batch::default();
            while let Some((_, p)) = self.open.pop_front() {
                batch.objects.extend(p.objects);
            }
            return Ok((!batch.objects.is_empty()).then_some(batch));
        }
        let e = self.hour;
        let mut b = Batch::default();
        self.receive(e, &mut b)?;
        if e >= PICK_LAG {
            let q = e - PICK_LAG;
            if self.shape.pallet_picked(q) {
                self.pick(q, &mut b)?;
            } else {
                self.count(q, &mut b)?;
            }
        }
        if e >= PICK_LAG + RETURN_LAG {
            let r = e - PICK_LAG - RETURN_LAG;
            if self.shape.pallet_picked(r) {
                self.returns(r, &mut b)?;
            }
            // Nothing changes pallet r's objects any more.
            while self.open.front().is_some_and(|(p, _)| *p <= r) {
                if let Some((_, p)) = self.open.pop_front() {
                    b.objects.extend(p.objects);
                }
            }
        }
        self.hour += 1;
        Ok(Some(b))
    }

    fn pallet(&mut self, p: u64) -> Option<&mut Pallet> {
        self.open
            .iter_mut()
            .find(|(q, _)| *q == p)
            .map(|(_, pallet)| pallet)
    }

    /// Records one scan and writes the events the product's mapping makes of it (with
    /// their identifier rows); returns the scan's time and id.
    fn emit(&mut self, b: &mut Batch, s: Step<'_>) -> Result<(i64, String), BenchError> {
        let t = self.time(b.events.len() as u64);
        self.scan_seq += 1;
        let scan_id = format!("{}.{}", s.device, self.scan_seq);
        let refused = |why: &dyn std::fmt::Display| {
            BenchError::Setup(format!(
                "the mapping refused generated scan {scan_id}: {why}"
            ))
        };
        let ids = match UnitKey::parse(s.key).map_err(|e| refused(&e))? {
            UnitKey::Sgtin { gtin, serial } => Identifiers {
                gtin: Some(gtin.parse().map_err(|e| refused(&e))?),
                serial: Some(serial),
                ..Identifiers::default()
            },
            UnitKey::Sscc(sscc) => Identifiers {
                sscc: Some(sscc.parse().map_err(|e| refused(&e))?),
                ..Identifiers::default()
            },
        };
        let scan = Scan {
            id: ScanId::parse(&scan_id).map_err(|e| refused(&e))?,
            raw: Vec::new(),
            ids,
            action: s.action,
            user: s.user,
            device: s.device,
            location: s.location,
            device_time_ms: u64::try_from(t).unwrap_or_default(),
            feedback: Feedback::Ok,
            parent: s.parent.map(str::to_owned),
        };
        let header = Header {
            kind: s.task,
            site: SITE.to_owned(),
            refs: s
                .refs
                .into_iter()
                .map(|(kind, r)| (kind.to_owned(), r))
                .collect(),
            status: TaskStatus::Open,
        };
        let expected = Expected {
            lines: Vec::new(),
            units: s
                .expected
                .iter()
                .map(|child| ExpectedUnit {
                    id: child.clone(),
                    parent: Some(s.key.to_owned()),
                })
                .collect(),
        };
        let ctx = Context::new(ORG, None, &s.document, &self.site, &header, &expected);
        let (key, parent) = map::subject(&scan).map_err(|why| refused(&why))?;
        let now = t + 30_000;
        let mut current = map::new_object(ORG, &key, now);
        current.parent_key = s.inside.map(str::to_owned);
        let plan = map::plan(
            &ctx,
            &scan,
            &key,
            parent.as_ref(),
            &current,
            None,
            None,
            now,
        );
        if let Some(why) = plan.rejection {
            return Err(refused(&why));
        }
        for mut ev in plan.events {
            let pk = self.next_pk;
            self.next_pk += 1;
            // The real id is the CBV hash of the event; a digest of the same length and form
            // is enough here and a hundred times cheaper.
            let digest = Sha256::digest(format!("{}|{pk}", self.shape.seed).as_bytes());
            let event_id = format!("ni:///sha-256;{}?ver=CBV2.0", hex::encode(digest));
            ev.event_id = Some(event_id.clone());
            let named = (ev.epc_list.iter().map(|uri| ("epc", uri)))
                .chain(ev.parent_id.iter().map(|uri| ("parent", uri)))
                .chain(ev.child_epcs.iter().map(|uri| ("child", uri)));
            for (role, uri) in named {
                b.epcs.push(EpcRow {
                    event_pk: pk,
                    role,
                    epc_key: UnitKey::parse(uri).map_err(|e| refused(&e))?.key(),
                    event_time_ms: t,
                });
            }
            b.events.push(EventRow {
                pk,
                event_id,
                event_type: ev.event_type.as_str(),
                action: ev.action.as_str(),
                biz_step: ev.biz_step.map(|s| s.as_str()),
                disposition: ev.disposition.map(|d| d.as_str()),
                event_time_ms: t,
                record_time_ms: now,
                location: scan.location.clone(),
                read_point: ev.read_point.as_ref().map(|p| p.id.clone()),
                biz_location: ev.biz_location.as_ref().map(|p| p.id.clone()),
                document_id: s.document.clone(),
                scan_id: scan_id.clone(),
                user_id: scan.user.clone(),
                device_id: scan.device.clone(),
                body: serde_json::to_string(&ev).map_err(|e| refused(&e))?,
            });
        }
        Ok((t, scan_id))
    }

    fn receive(&mut self, p: u64, b: &mut Batch) -> Result<(), BenchError> {
        let shape = self.shape;
        let key = shape.pallet_key(p);
        let bin = Self::bin(p);
        let (unit, case_gtin) = shape.gtins(p);
        let case_keys: Vec<String> = (0..u64::from(shape.cases))
            .map(|c| format!("sgtin:{case_gtin}:{}", shape.case_serial(p, c)))
            .collect();
        // The supplier's data lists the cases on the pallet: its contents are inferred.
        self.emit(
            b,
            Step {
                action: ScanAction::Receive,
                key: &key,
                parent: None,
                inside: None,
                location: Some(format!("DOCK-0{}", p % 4 + 1)),
                task: TaskKind::Receiving,
                refs: vec![
                    ("po", format!("PO-{p:06}")),
                    ("desadv", format!("ASN-{p:06}")),
                ],
                expected: &case_keys,
                document: format!("rcv-{p:06}"),
                user: format!("u-recv-{}", p % 5),
                device: format!("dev-r{}", p % 3),
            },
        )?;
        let (t, scan) = self.emit(
            b,
            Step {
                action: ScanAction::Store,
                key: &key,
                parent: None,
                inside: None,
                location: Some(bin.clone()),
                task: TaskKind::Receiving,
                refs: Vec::new(),
                expected: &[],
                document: format!("put-{p:06}"),
                user: format!("u-store-{}", p % 4),
                device: format!("dev-s{}", p % 3),
            },
        )?;
        let lot = format!("L{:05}", p / 4);
        let expiry = format!("2028-{:02}-28", p % 12 + 1);
        let state = |key: String, kind: &'static str, parent: Option<String>| ObjectRow {
            epc_key: key,
            kind,
            gtin: None,
            serial: None,
            sscc: None,
            lot: None,
            expiry: None,
            location: Some(bin.clone()),
            status: "in_stock",
            parent_key: parent,
            order_ref: None,
            last_event_time_ms: t,
            last_scan_id: Some(scan.clone()),
            updated_at_ms: t + 30_000,
        };
        let n = shape.pallet_descendants() + 1;
        let mut objects =
            Vec::with_capacity(n + usize::try_from(shape.orders_per_pallet()).unwrap_or(0));
        let mut pallet = state(key.clone(), "sscc", None);
        pallet.sscc = key.strip_prefix("sscc:").map(str::to_owned);
        objects.push(pallet);
        for (c, ck) in (0..u64::from(shape.cases)).zip(&case_keys) {
            let mut o = state(ck.clone(), "sgtin", Some(key.clone()));
            o.gtin = Some(case_gtin.clone());
            o.serial = Some(shape.case_serial(p, c));
            o.lot = Some(lot.clone());
            o.expiry = Some(expiry.clone());
            objects.push(o);
        }
        for n in 0..shape.per_pallet() {
            let serial = shape.pack_serial(p, n);
            let case = &case_keys[(n / u64::from(shape.packs)) as usize];
            let mut o = state(
                format!("sgtin:{unit}:{serial}"),
                "sgtin",
                Some(case.clone()),
            );
            o.gtin = Some(unit.clone());
            o.serial = Some(serial);
            o.lot = Some(lot.clone());
            o.expiry = Some(expiry.clone());
            objects.push(o);
        }
        self.open.push_back((p, Pallet { objects }));
        Ok(())
    }

    fn count(&mut self, p: u64, b: &mut Batch) -> Result<(), BenchError> {
        let key = self.shape.pallet_key(p);
        let (t, scan) = self.emit(
            b,
            Step {
                action: ScanAction::Count,
                key: &key,
                parent: None,
                inside: None,
                location: Some(Self::bin(p)),
                task: TaskKind::StockCount,
                refs: Vec::new(),
                expected: &[],
                document: format!("cnt-{p:06}"),
                user: "u-count-1".to_owned(),
                device: "dev-c1".to_owned(),
            },
        )?;
        if let Some(pallet) = self.pallet(p) {
            pallet.objects[0].last_event_time_ms = t;
            pallet.objects[0].last_scan_id = Some(scan);
            pallet.objects[0].updated_at_ms = t + 30_000;
        }
        Ok(())
    }

    fn pick(&mut self, p: u64, b: &mut Batch) -> Result<(), BenchError> {
        let shape = self.shape;
        let Some(pallet) = self.pallet(p) else {
            return Ok(());
        };
        let keys: Vec<String> = pallet.objects.iter().map(|o| o.epc_key.clone()).collect();
        let cases = shape.cases as usize;
        let bin = Self::bin(p);
        let per = shape.per_pallet();
        let mut cartons = Vec::new();
        for j in 0..shape.orders_per_pallet() {
            let order = format!("ORD-{p:06}-{j:03}");
            let carton = format!("sscc:{}", shape.carton_sscc(p, j));
            let doc = format!("pick-{p:06}-{j:03}");
            let picker = format!("u-pick-{}", j % 8);
            let device = format!("dev-p{}", j % 8);
            let packs: Vec<u64> =
                (j * u64::from(ORDER_PACKS)..((j + 1) * u64::from(ORDER_PACKS)).min(per)).collect();
            for &n in &packs {
                let pack = &keys[1 + cases + n as usize];
                let case = &keys[1 + (n / u64::from(shape.packs)) as usize];
                // Taking the pack out of its case: the mapping writes the unpacking too.
                self.emit(
                    b,
                    Step {
                        action: ScanAction::Pick,
                        key: pack,
                        parent: None,
                        inside: Some(case),
                        location: Some(bin.clone()),
                        task: TaskKind::Picking,
                        refs: vec![("po", order.clone())],
                        expected: &[],
                        document: doc.clone(),
                        user: picker.clone(),
                        device: device.clone(),
                    },
                )?;
            }
            let bench = format!("PACK-0{}", j % 4 + 1);
            let mut packed = BTreeMap::new();
            for &n in &packs {
                let pack = &keys[1 + cases + n as usize];
                let got = self.emit(
                    b,
                    Step {
                        action: ScanAction::Pack,
                        key: pack,
                        parent: Some(&carton),
                        inside: None,
                        location: Some(bench.clone()),
                        task: TaskKind::Packing,
                        refs: Vec::new(),
                        expected: &[],
                        document: format!("pack-{p:06}-{j:03}"),
                        user: format!("u-pack-{}", j % 4),
                        device: format!("dev-k{}", j % 4),
                    },
                )?;
                packed.insert(n, got);
            }
            let (ts, ship_scan) = self.emit(
                b,
                Step {
                    action: ScanAction::Ship,
                    key: &carton,
                    parent: None,
                    inside: None,
                    location: Some("SHIP-01".to_owned()),
                    task: TaskKind::Shipping,
                    refs: vec![
                        ("po", order.clone()),
                        ("desadv", format!("DN-{p:06}-{j:03}")),
                    ],
                    expected: &[],
                    document: format!("ship-{p:06}"),
                    user: "u-ship-1".to_owned(),
                    device: "dev-x1".to_owned(),
                },
            )?;
            let Some(pallet) = self.pallet(p) else {
                return Ok(());
            };
            for (n, (t, scan)) in packed {
                let o = &mut pallet.objects[1 + cases + n as usize];
                o.status = "shipped";
                o.location = None;
                o.parent_key = Some(carton.clone());
                o.order_ref = Some(order.clone());
                o.last_event_time_ms = t;
                o.last_scan_id = Some(scan);
                o.updated_at_ms = ts + 30_000;
            }
            cartons.push(ObjectRow {
                epc_key: carton.clone(),
                kind: "sscc",
                gtin: None,
                serial: None,
                sscc: carton.strip_prefix("sscc:").map(str::to_owned),
                lot: None,
                expiry: None,
                location: None,
                status: "shipped",
                parent_key: None,
                order_ref: Some(order),
                last_event_time_ms: ts,
                last_scan_id: Some(ship_scan),
                updated_at_ms: ts + 30_000,
            });
        }
        if let Some(pallet) = self.pallet(p) {
            pallet.objects.extend(cartons);
        }
        Ok(())
    }

    fn returns(&mut self, p: u64, b: &mut Batch) -> Result<(), BenchError> {
        let shape = self.shape;
        let cases = shape.cases as usize;
        let Some(pallet) = self.pallet(p) else {
            return Ok(());
        };
        let back: Vec<(u64, String)> = (0..shape.per_pallet())
            .filter(|&n| shape.pack_returned(p, n))
            .map(|n| (n, pallet.objects[1 + cases + n as usize].epc_key.clone()))
            .collect();
        for (i, (n, pack)) in back.into_iter().enumerate() {
            let rma = format!("RMA-{p:06}-{i:03}");
            let shelf = format!("R{:02}-{:02}-1", i % 10 + 1, p % 20 + 1);
            let step = |action, location: &str| Step {
                action,
                key: pack.as_str(),
                parent: None,
                inside: None,
                location: Some(location.to_owned()),
                task: TaskKind::Returns,
                refs: vec![("rma", rma.clone())],
                expected: &[],
                document: format!("ret-{p:06}"),
                user: "u-returns-1".to_owned(),
                device: "dev-t1".to_owned(),
            };
            self.emit(b, step(ScanAction::Return, "RET-01"))?;
            self.emit(b, step(ScanAction::Inspect, "RET-01"))?;
            let (t, scan) = self.emit(b, step(ScanAction::Store, &shelf))?;
            if let Some(pallet) = self.pallet(p) {
                let o = &mut pallet.objects[1 + cases + n as usize];
                o.status = "in_stock";
                o.location = Some(shelf);
                o.parent_key = None;
                o.order_ref = None;
                o.last_event_time_ms = t;
                o.last_scan_id = Some(scan);
                o.updated_at_ms = t + 30_000;
            }
        }
        Ok(())
    }
}

/// The site's GLN (valid check digit).
pub fn site_gln() -> String {
    with_check(&format!("{OWN_PREFIX}00000"))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn small() -> Shape {
        Shape {
            events: 3_000,
            cases: 3,
            packs: 10,
            seed: 7,
        }
    }

    #[test]
    fn generated_keys_are_valid_gs1() {
        let s = small();
        for p in 0..5 {
            UnitKey::parse(&s.pallet_key(p)).expect("pallet");
            UnitKey::parse(&s.pack_key(p, 3)).expect("pack");
            UnitKey::parse(&format!("sscc:{}", s.carton_sscc(p, 1))).expect("carton");
        }
        UnitKey::parse(&format!("sgtin:{}:X", s.gtins(0).1)).expect("case gtin");
    }

    #[test]
    fn rows_add_up_to_the_shape() {
        let s = small();
        let mut g = Generator::new(s);
        let hours = g.hours();
        let (mut events, mut objects) = (0u64, 0u64);
        let mut keys = std::collections::HashSet::new();
        let mut history: HashMap<String, usize> = HashMap::new();
        while let Some(b) = g
            .next_batch()
            .expect("the mapping takes every generated scan")
        {
            events += b.events.len() as u64;
            for e in &b.epcs {
                *history.entry(e.epc_key.clone()).or_default() += 1;
            }
            for o in b.objects {
                objects += 1;
                assert!(keys.insert(o.epc_key), "object keys are unique");
            }
        }
        assert_eq!(events, s.hours().1);
        assert!(events >= s.events);
        let cartons: u64 = (0..hours)
            .filter(|&p| s.pallet_picked(p) && p + PICK_LAG < hours)
            .count() as u64
            * s.orders_per_pallet();
        assert_eq!(objects, hours * (1 + 3 + 30) + cartons);
        for p in 0..hours {
            for n in 0..s.per_pallet() {
                let want = s.pack_history_len(hours, p, n);
                let got = history.get(&s.pack_key(p, n)).copied().unwrap_or(0);
                assert_eq!(got, want, "history of pallet {p} pack {n}");
            }
        }
    }
}
