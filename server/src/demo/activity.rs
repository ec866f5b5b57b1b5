//! Three weeks of a warehouse, seeded through the product's own path: tasks created as
//! the API creates them ([`crate::tasks::create_at`]), scans recorded by in-process
//! scanners ([`super::scanner`]) and merged by the server's sync code, then projected
//! into events, stock and exceptions by the projector ([`worker::project_one`]);
//! returned packs verified by the returns worker ([`returns::worker::sweep`]); some
//! exceptions resolved by a manager ([`crate::trace::service::resolve`]). Nothing here
//! writes events, stock or exceptions itself.
//!
//! The story is planned in memory first (which packs each order takes), so a second
//! run plans the same tasks and skips those already done: tasks have fixed ids.

use std::collections::{BTreeMap, VecDeque};

use automerge::ActorId;
use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect,
};
use swt_domain::gs1::mod10_check_digit;
use swt_domain::model::{Action, ReferenceData};

use super::scanner::Scanner;
use super::{DEVICES, ORG_ID, PRODUCTS, SITE_IDS, demo_id};
use crate::auth::{Principal, Role};
use crate::db::entity::{
    epcis_event, return_verification, sync_state, task_document, trace_exception, trace_object,
};
use crate::projection::worker;
use crate::reference::cache::ReferenceCache;
use crate::returns::ReturnState;
use crate::tasks::documents::DocumentCache;
use crate::tasks::{CreateTask, EndTask, ExpectedInput, LineInput, UnitInput};

/// Why seeding the activity failed.
#[derive(Debug, thiserror::Error)]
pub enum ActivityError {
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// Creating or ending a task failed.
    #[error("task: {0}")]
    Task(#[from] crate::tasks::TaskError),
    /// The server refused a demo scanner's sync.
    #[error("sync: {0}")]
    Sync(#[from] crate::sync::SyncFailure),
    /// The device-side document refused a change.
    #[error("scanner document: {0}")]
    Doc(#[from] swt_domain::doc::DocError),
    /// The device-side sync failed.
    #[error("scanner sync: {0}")]
    DeviceSync(#[from] swt_domain::doc::SyncError),
    /// A scan id or record did not encode.
    #[error("scan record: {0}")]
    Record(#[from] swt_domain::model::RecordError),
    /// A demo device is set up wrongly.
    #[error("demo device: {0}")]
    Device(String),
    /// The projection failed.
    #[error("projection: {0}")]
    Projector(#[from] worker::ProjectorError),
    /// The returns worker failed.
    #[error("returns: {0}")]
    Returns(#[from] crate::returns::service::ReturnsError),
    /// Resolving an exception failed.
    #[error("resolving an exception: {0}")]
    Trace(#[from] crate::trace::service::TraceError),
    /// Reading a site's reference data failed.
    #[error("reference data: {0}")]
    Reference(#[from] crate::reference::ReferenceError),
}

/// What the server side of the seeding holds: what `swt serve` holds in its state.
pub(super) struct Server {
    pub(super) db: DatabaseConnection,
    pub(super) docs: DocumentCache,
    pub(super) actor: ActorId,
    references: ReferenceCache,
}

/// Seconds between two scans of one picker.
const SCAN_EVERY_MS: i64 = 35_000;
/// The manufacturer recalled lot AMX2311R this many days ago: scanners judged earlier
/// scans without knowing it (the server flags them now).
const RECALL_DAY: u32 = 5;
/// The demo's own GS1 company prefix (the organisation's GLN's), for carton SSCCs.
const OWN_PREFIX: &str = "0614141";

/// The demo manager (resolves exceptions, creates and closes tasks).
fn manager() -> Principal {
    Principal {
        user_id: demo_id(203),
        org_id: ORG_ID.to_owned(),
        site_id: None,
        role: Role::Manager,
        device_id: None,
        actor_id: None,
    }
}

/// Customers of the distribution centre: (name, GLN without its check digit).
const CUSTOMERS: [(&str, &str); 5] = [
    ("Riverbend Community Pharmacy", "086000000001"),
    ("Midsouth Regional Medical Center", "086000000002"),
    ("Bluff City Drug Co.", "086000000003"),
    ("Germantown Family Pharmacy", "086000000004"),
    ("St. Clair Hospice Pharmacy", "086000000005"),
];
/// The supplier of every delivery (the manufacturers' distributor).
const SUPPLIER: (&str, &str) = ("Meridian Generics", "086000000100");

fn with_check(digits: &str) -> String {
    format!(
        "{digits}{}",
        char::from(mod10_check_digit(digits.as_bytes()))
    )
}

/// One product line of a delivery: (product index, lot, expiry `YYMMDD`, first serial,
/// packs). The amoxicillin and heparin lines are the manufacturer data's serials.
type Line = (usize, &'static str, &'static str, u32, u32);

struct Delivery {
    day: u32,
    po: &'static str,
    lines: &'static [Line],
}

const DELIVERIES: [Delivery; 4] = [
    Delivery {
        day: 20,
        po: "PO-4500012301",
        lines: &[
            (0, "AMX2406A", "280331", 1_000_001, 60),
            (2, "LIS2409", "280131", 5_000_001, 40),
            (3, "ATV2410", "280630", 5_100_001, 40),
        ],
    },
    Delivery {
        day: 18,
        po: "PO-4500012317",
        lines: &[
            (0, "AMX2311R", "270930", 1_000_081, 12),
            (1, "HEP2405", "261031", 2_000_001, 30),
            // Short-dated when it came in; expired since.
            (6, "IBU2312", "261201", 5_200_001, 20),
        ],
    },
    Delivery {
        day: 15,
        po: "PO-4500012342",
        lines: &[
            (5, "MET2411", "281031", 5_300_001, 40),
            (4, "OND2407", "270831", 5_400_001, 30),
            (7, "PAN2408", "271130", 5_500_001, 40),
        ],
    },
    Delivery {
        day: 11,
        po: "PO-4500012388",
        lines: &[
            (8, "ENX2409", "270930", 5_600_001, 20),
            (9, "SAL2410", "280228", 5_700_001, 30),
            (10, "INS2411", "270531", 5_800_001, 20),
            (11, "LEV2406", "280430", 5_900_001, 40),
        ],
    },
];

/// How far an order got.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Picking still open: two packs short.
    Picking,
    /// Picked and packed; the shipping task waits.
    Packed,
    Shipped,
}

struct Order {
    day: u32,
    number: &'static str,
    customer: usize,
    /// Which Memphis scanner picks it.
    device: usize,
    /// (product index, lot, packs).
    lines: &'static [(usize, &'static str, u32)],
    /// A pack of an earlier order (its number, the pack's place in it) picked again by
    /// mistake, in place of one of this order's packs of the same product.
    double_pick: Option<(&'static str, usize)>,
    stage: Stage,
}

const ORDERS: [Order; 10] = [
    Order {
        day: 17,
        number: "SO-778101",
        customer: 0,
        device: 0,
        lines: &[(0, "AMX2406A", 10), (2, "LIS2409", 8)],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 16,
        number: "SO-778102",
        customer: 1,
        device: 1,
        lines: &[
            (0, "AMX2406A", 6),
            (0, "AMX2311R", 3),
            (1, "HEP2405", 6),
            (3, "ATV2410", 6),
        ],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 14,
        number: "SO-778103",
        customer: 2,
        device: 0,
        lines: &[(1, "HEP2405", 8), (6, "IBU2312", 5), (2, "LIS2409", 6)],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 12,
        number: "SO-778104",
        customer: 3,
        device: 1,
        lines: &[(5, "MET2411", 12), (4, "OND2407", 8), (7, "PAN2408", 10)],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 9,
        number: "SO-778105",
        customer: 4,
        device: 0,
        lines: &[(3, "ATV2410", 10), (5, "MET2411", 10), (8, "ENX2409", 6)],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 7,
        number: "SO-778106",
        customer: 0,
        device: 1,
        lines: &[(9, "SAL2410", 12), (10, "INS2411", 6), (11, "LEV2406", 10)],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 5,
        number: "SO-778107",
        customer: 2,
        device: 1,
        lines: &[(11, "LEV2406", 8), (7, "PAN2408", 6)],
        // A levothyroxine pack that left with SO-778106.
        double_pick: Some(("SO-778106", 20)),
        stage: Stage::Shipped,
    },
    Order {
        day: 4,
        number: "SO-778108",
        customer: 1,
        device: 0,
        lines: &[(0, "AMX2406A", 12), (4, "OND2407", 6)],
        double_pick: None,
        stage: Stage::Shipped,
    },
    Order {
        day: 2,
        number: "SO-778109",
        customer: 3,
        device: 1,
        lines: &[(2, "LIS2409", 8), (0, "AMX2406A", 4)],
        // An amoxicillin pack shipped with SO-778108.
        double_pick: Some(("SO-778108", 3)),
        stage: Stage::Packed,
    },
    Order {
        day: 0,
        number: "SO-778110",
        customer: 4,
        device: 0,
        lines: &[(9, "SAL2410", 6), (10, "INS2411", 4)],
        double_pick: None,
        stage: Stage::Picking,
    },
];

/// A returned pack.
enum Returned {
    /// The pack at this place of an order, as shipped.
    Shipped(&'static str, usize),
    /// That pack, its label read with another lot than the manufacturer's.
    WrongLot(&'static str, usize, &'static str),
    /// A pack the manufacturer never made: (product, serial, lot, expiry).
    Unknown(usize, &'static str, &'static str, &'static str),
}

struct Return {
    day: u32,
    rma: &'static str,
    customer: usize,
    packs: &'static [Returned],
    /// The clerk is still on it.
    open: bool,
}

const RETURNS: [Return; 3] = [
    Return {
        day: 8,
        rma: "RMA-24031",
        customer: 0,
        packs: &[
            Returned::Shipped("SO-778101", 0),
            Returned::Shipped("SO-778101", 1),
            Returned::Unknown(0, "1009999", "AMX2406A", "280331"),
            // No responder answers for lisinopril: stays pending.
            Returned::Shipped("SO-778101", 12),
        ],
        open: false,
    },
    Return {
        day: 6,
        rma: "RMA-24057",
        customer: 1,
        packs: &[
            // Recalled lot AMX2311R (the clerk's scanner did not know yet).
            Returned::Shipped("SO-778102", 6),
            Returned::WrongLot("SO-778102", 1, "AMX2406B"),
            // Heparin past its printed expiry, extended by FDA.
            Returned::Shipped("SO-778102", 9),
            Returned::Shipped("SO-778102", 2),
        ],
        open: false,
    },
    Return {
        day: 1,
        rma: "RMA-24090",
        customer: 2,
        packs: &[
            Returned::Shipped("SO-778103", 0),
            Returned::Shipped("SO-778103", 9),
        ],
        open: true,
    },
];

/// A pack as its label reads.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Pack {
    gtin: &'static str,
    serial: String,
    lot: &'static str,
    expiry: &'static str,
}

impl Pack {
    fn barcode(&self) -> String {
        format!(
            "01{}17{}10{}\u{1d}21{}",
            self.gtin, self.expiry, self.lot, self.serial
        )
    }
}

struct PlannedScan {
    raw: String,
    action: Action,
    location: Option<String>,
    parent: Option<String>,
}

/// A task and what its scanner does in it.
struct PlannedTask {
    /// Task number: the id is fixed by it, and so are the scan ids.
    n: u32,
    day: u32,
    /// 0, 1: the Memphis scanners; 2: the Louisville returns scanner.
    device: usize,
    req: CreateTask,
    scans: Vec<PlannedScan>,
    close: bool,
    returns: bool,
}

fn sscc(reference: u32) -> String {
    with_check(&format!("1{OWN_PREFIX}{reference:09}"))
}

fn lines_of(packs: &[Pack]) -> Vec<LineInput> {
    let mut by: BTreeMap<&str, u64> = BTreeMap::new();
    for p in packs {
        *by.entry(p.gtin).or_default() += 1;
    }
    by.into_iter()
        .map(|(gtin, quantity)| LineInput {
            gtin: gtin.to_owned(),
            quantity,
            lot: None,
        })
        .collect()
}

fn pack_scans(
    packs: &[Pack],
    action: Action,
    location: impl Fn(&Pack) -> String,
    parent: Option<&str>,
) -> Vec<PlannedScan> {
    packs
        .iter()
        .map(|p| PlannedScan {
            raw: p.barcode(),
            action,
            location: Some(location(p)),
            parent: parent.map(str::to_owned),
        })
        .collect()
}

/// Plans every task in the order it happened.
fn plan() -> Vec<PlannedTask> {
    let memphis = SITE_IDS[0].to_owned();
    let mut tasks = Vec::new();
    let mut stock: BTreeMap<(&str, &str), VecDeque<Pack>> = BTreeMap::new();
    let mut shipped: BTreeMap<&str, Vec<Pack>> = BTreeMap::new();
    let mut n = 0u32;
    let mut next = || {
        n += 1;
        n
    };
    let mut deliveries = DELIVERIES.iter().peekable();
    for order in &ORDERS {
        while let Some(d) = deliveries.next_if(|d| d.day > order.day) {
            let mut packs = Vec::new();
            for &(product, lot, expiry, first, count) in d.lines {
                let gtin = PRODUCTS[product].0;
                for serial in first..first + count {
                    let pack = Pack {
                        gtin,
                        serial: serial.to_string(),
                        lot,
                        expiry,
                    };
                    packs.push(pack);
                }
            }
            // Serials the manufacturer flagged are refused at receiving (the scanner
            // says "blocked"): they never reach a bin.
            let stored: Vec<Pack> = packs
                .iter()
                .filter(|p| {
                    !super::SERIAL_STATUSES
                        .iter()
                        .any(|(g, s, _)| *g == p.gtin && *s == p.serial)
                })
                .cloned()
                .collect();
            for p in &stored {
                stock
                    .entry((p.gtin, p.lot))
                    .or_default()
                    .push_back(p.clone());
            }
            let refs = BTreeMap::from([
                ("po".to_owned(), d.po.to_owned()),
                ("supplier_gln".to_owned(), with_check(SUPPLIER.1)),
                ("supplier".to_owned(), SUPPLIER.0.to_owned()),
            ]);
            let expected = ExpectedInput {
                lines: lines_of(&packs),
                units: Vec::new(),
            };
            tasks.push(PlannedTask {
                n: next(),
                day: d.day,
                device: 0,
                req: CreateTask {
                    kind: "receiving".into(),
                    site: memphis.clone(),
                    title: Some(format!("Receive {} ({})", d.po, SUPPLIER.0)),
                    refs: refs.clone(),
                    expected: expected.clone(),
                },
                scans: pack_scans(&packs, Action::Receive, |_| "DOCK-2".into(), None),
                close: true,
                returns: false,
            });
            // Put-away: the same packs, each to its product's bin.
            let mut putaway_refs = refs;
            putaway_refs.insert("putaway".into(), d.po.to_owned());
            tasks.push(PlannedTask {
                n: next(),
                day: d.day,
                device: 0,
                req: CreateTask {
                    kind: "receiving".into(),
                    site: memphis.clone(),
                    title: Some(format!("Put-away {}", d.po)),
                    refs: putaway_refs,
                    expected,
                },
                scans: pack_scans(
                    &stored,
                    Action::Store,
                    |p| format!("BIN-{}-{}", &p.gtin[10..13], &p.lot[..3]),
                    None,
                ),
                close: true,
                returns: false,
            });
        }
        let mut packs: Vec<Pack> = Vec::new();
        let mut double = order
            .double_pick
            .and_then(|(o, i)| shipped.get(o).and_then(|p| p.get(i)).cloned());
        for &(product, lot, count) in order.lines {
            let gtin = PRODUCTS[product].0;
            let mut take = count;
            if let Some(d) = double.take_if(|d| d.gtin == gtin) {
                packs.push(d);
                take -= 1;
            }
            let queue = stock.entry((gtin, lot)).or_default();
            for _ in 0..take {
                if let Some(p) = queue.pop_front() {
                    packs.push(p);
                }
            }
        }
        let (customer, customer_base) = CUSTOMERS[order.customer];
        let refs = BTreeMap::from([
            ("order".to_owned(), order.number.to_owned()),
            ("customer".to_owned(), customer.to_owned()),
            ("customer_gln".to_owned(), with_check(customer_base)),
        ]);
        let carton = sscc(order.number[3..].parse::<u32>().unwrap_or_default());
        let carton_key = format!("sscc:{carton}");
        let task = |n: u32, kind: &str, title: String, expected, scans, close| PlannedTask {
            n,
            day: order.day,
            device: order.device,
            req: CreateTask {
                kind: kind.into(),
                site: memphis.clone(),
                title: Some(title),
                refs: refs.clone(),
                expected,
            },
            scans,
            close,
            returns: false,
        };
        let lines = ExpectedInput {
            lines: lines_of(&packs),
            units: Vec::new(),
        };
        let picking = order.stage == Stage::Picking;
        let picked = if picking {
            &packs[..packs.len().saturating_sub(2)]
        } else {
            &packs[..]
        };
        tasks.push(task(
            next(),
            "picking",
            format!("Pick {} for {customer}", order.number),
            lines.clone(),
            pack_scans(picked, Action::Pick, |_| "PICK-CART".into(), None),
            !picking,
        ));
        if picking {
            continue;
        }
        tasks.push(task(
            next(),
            "packing",
            format!("Pack {}", order.number),
            lines,
            pack_scans(&packs, Action::Pack, |_| "PACK-1".into(), Some(&carton_key)),
            true,
        ));
        let ship = order.stage == Stage::Shipped;
        tasks.push(task(
            next(),
            "shipping",
            format!("Ship {} to {customer}", order.number),
            ExpectedInput {
                lines: Vec::new(),
                units: vec![UnitInput {
                    id: carton_key.clone(),
                    parent: None,
                }],
            },
            if ship {
                vec![PlannedScan {
                    raw: format!("00{carton}"),
                    action: Action::Ship,
                    location: Some("DOCK-5".into()),
                    parent: None,
                }]
            } else {
                Vec::new()
            },
            ship,
        ));
        shipped.insert(order.number, packs);
    }
    for r in &RETURNS {
        let packs: Vec<Pack> = r
            .packs
            .iter()
            .filter_map(|p| match *p {
                Returned::Shipped(o, i) => shipped.get(o)?.get(i).cloned(),
                Returned::WrongLot(o, i, lot) => {
                    shipped.get(o)?.get(i).cloned().map(|p| Pack { lot, ..p })
                }
                Returned::Unknown(product, serial, lot, expiry) => Some(Pack {
                    gtin: PRODUCTS[product].0,
                    serial: serial.to_owned(),
                    lot,
                    expiry,
                }),
            })
            .collect();
        let (customer, base) = CUSTOMERS[r.customer];
        tasks.push(PlannedTask {
            n: next(),
            day: r.day,
            device: 2,
            req: CreateTask {
                kind: "returns".into(),
                site: SITE_IDS[1].to_owned(),
                title: Some(format!("Returns {} from {customer}", r.rma)),
                refs: BTreeMap::from([
                    ("rma".to_owned(), r.rma.to_owned()),
                    ("customer".to_owned(), customer.to_owned()),
                    ("customer_gln".to_owned(), with_check(base)),
                ]),
                expected: ExpectedInput::default(),
            },
            scans: pack_scans(&packs, Action::Return, |_| "RET-IN".into(), None),
            close: !r.open,
            returns: true,
        });
    }
    tasks
}

/// What the seeded warehouse holds (whatever run seeded it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivitySummary {
    /// Tasks, and of them still open.
    pub tasks: u64,
    /// Open tasks.
    pub open_tasks: u64,
    /// Scans in all task documents.
    pub scans: i64,
    /// EPCIS events.
    pub events: u64,
    /// Packs and containers by status.
    pub objects: Vec<(String, u64)>,
    /// Exceptions open.
    pub exceptions_open: u64,
    /// Exceptions resolved.
    pub exceptions_resolved: u64,
    /// Return verifications by state.
    pub returns: Vec<(String, u64)>,
}

/// Reads the summary of what the demo organisation holds.
pub async fn summary(db: &DatabaseConnection) -> Result<ActivitySummary, DbErr> {
    let tasks = task_document::Entity::find()
        .filter(task_document::Column::OrganisationId.eq(ORG_ID))
        .count(db)
        .await?;
    let open_tasks = task_document::Entity::find()
        .filter(task_document::Column::OrganisationId.eq(ORG_ID))
        .filter(task_document::Column::Status.eq("open"))
        .count(db)
        .await?;
    let counts: Vec<i32> = task_document::Entity::find()
        .select_only()
        .column(task_document::Column::ScanCount)
        .filter(task_document::Column::OrganisationId.eq(ORG_ID))
        .into_tuple()
        .all(db)
        .await?;
    let events = epcis_event::Entity::find()
        .filter(epcis_event::Column::OrganisationId.eq(ORG_ID))
        .count(db)
        .await?;
    let objects: Vec<(trace_object::UnitStatus, i64)> = trace_object::Entity::find()
        .select_only()
        .column(trace_object::Column::Status)
        .column_as(Expr::col(trace_object::Column::EpcKey).count(), "n")
        .filter(trace_object::Column::OrganisationId.eq(ORG_ID))
        .group_by(trace_object::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let exceptions = |state: &'static str| {
        trace_exception::Entity::find()
            .filter(trace_exception::Column::OrganisationId.eq(ORG_ID))
            .filter(trace_exception::Column::State.eq(state))
            .count(db)
    };
    let returns: Vec<(ReturnState, i64)> = return_verification::Entity::find()
        .select_only()
        .column(return_verification::Column::State)
        .column_as(Expr::col(return_verification::Column::ScanId).count(), "n")
        .filter(return_verification::Column::OrganisationId.eq(ORG_ID))
        .group_by(return_verification::Column::State)
        .into_tuple()
        .all(db)
        .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(ActivitySummary {
        tasks,
        open_tasks,
        scans: counts.into_iter().map(i64::from).sum(),
        events,
        objects: objects
            .into_iter()
            .map(|(s, n)| (s.as_str().to_owned(), count(n)))
            .collect(),
        exceptions_open: exceptions("open").await?,
        exceptions_resolved: exceptions("resolved").await?,
        returns: returns
            .into_iter()
            .map(|(s, n)| (s.to_string(), count(n)))
            .collect(),
    })
}

/// Seeds the activity where it is missing; returns how many tasks it created now.
pub async fn seed(db: &DatabaseConnection) -> Result<usize, ActivityError> {
    let srv = Server {
        db: db.clone(),
        docs: DocumentCache::default(),
        actor: ActorId::random(),
        references: ReferenceCache::default(),
    };
    // A scanner session: the device's site, the user who signs in on it.
    let scanners = [
        Scanner::new(
            &demo_id(201),
            Role::Picker,
            SITE_IDS[0],
            DEVICES[0].0,
            DEVICES[0].3,
        )?,
        Scanner::new(
            &demo_id(201),
            Role::Picker,
            SITE_IDS[0],
            DEVICES[1].0,
            DEVICES[1].3,
        )?,
        Scanner::new(
            &demo_id(202),
            Role::ReturnsClerk,
            SITE_IDS[1],
            DEVICES[2].0,
            DEVICES[2].3,
        )?,
    ];
    let now = Utc::now();
    // Each day's work starts six hours before this time of day, so today's is past too.
    let start = |day: u32| now - Duration::days(i64::from(day)) - Duration::hours(6);
    let mut references = BTreeMap::new();
    for site in SITE_IDS {
        references.insert(site, crate::reference::snapshot(db, ORG_ID, site).await?);
    }
    let verification = crate::verification::Verification::start(
        db.clone(),
        &crate::config::VerificationConfig::default(),
    );
    let mut created = 0;
    let mut last_sync: [Option<DateTime<Utc>>; 3] = [None; 3];
    // A day's tasks one after the other: a carton ships after its packs were packed.
    let mut clock: BTreeMap<u32, DateTime<Utc>> = BTreeMap::new();
    for task in plan() {
        let id = demo_id(1000 + task.n);
        let at = clock
            .get(&task.day)
            .copied()
            .unwrap_or_else(|| start(task.day));
        let scanner = &scanners[task.device];
        let took = i64::try_from(task.scans.len()).unwrap_or(0) * SCAN_EVERY_MS;
        clock.insert(
            task.day,
            at + Duration::milliseconds(took) + Duration::minutes(15),
        );
        last_sync[task.device] = Some(at + Duration::milliseconds(took) + Duration::minutes(5));
        let existing = task_document::Entity::find_by_id(id.as_str())
            .one(db)
            .await?;
        if existing.is_some_and(|t| t.scan_count > 0 || t.status != "open" || task.scans.is_empty())
        {
            continue;
        }
        let manager = manager();
        if crate::tasks::create_at(
            db,
            &srv.actor,
            &manager,
            &task.req,
            &id,
            at - Duration::minutes(20),
        )
        .await?
        .is_some()
        {
            created += 1;
        }
        if task.scans.is_empty() {
            continue;
        }
        // What the scanner knew: not yet the recall, before it was announced.
        let mut reference: ReferenceData = references
            .get(task.req.site.as_str())
            .cloned()
            .unwrap_or_default();
        if task.day > RECALL_DAY {
            reference.recalled_lots.clear();
        }
        let mut open = scanner.open(&srv, &id, &reference).await?;
        for (i, s) in task.scans.iter().enumerate() {
            let offset = i64::try_from(i).unwrap_or(0) * SCAN_EVERY_MS;
            let time = at.timestamp_millis() + offset;
            scanner.record(
                &mut open,
                u64::from(task.n) * 1000 + i as u64,
                &s.raw,
                s.action,
                s.location.as_deref(),
                s.parent.as_deref(),
                u64::try_from(time).unwrap_or(0),
                &reference,
            )?;
        }
        scanner.sync(&srv, &mut open).await?;
        project(&srv).await?;
        if task.returns {
            crate::returns::worker::sweep(
                db,
                &verification,
                &crate::config::VerificationConfig::default(),
            )
            .await?;
            project(&srv).await?;
        }
        if task.close {
            crate::tasks::end(
                db,
                &srv.docs,
                &srv.actor,
                &manager,
                &id,
                &EndTask {
                    status: "closed".into(),
                },
            )
            .await?;
        }
    }
    resolve_some(db).await?;
    // The console shows a scanner's last sync: the last time each one synced its work.
    for (i, at) in last_sync.iter().enumerate() {
        if let Some(at) = at {
            sync_state::Entity::update_many()
                .col_expr(sync_state::Column::UpdatedAt, Expr::value(*at))
                .filter(sync_state::Column::DeviceId.eq(DEVICES[i].0))
                .exec(db)
                .await?;
        }
    }
    Ok(created)
}

/// Projects what the scanners merged, as the projector worker of `swt serve` would.
async fn project(srv: &Server) -> Result<(), ActivityError> {
    // A document still pending after this many passes is left to `swt serve`'s worker.
    for _ in 0..8 {
        let pending = worker::pending(&srv.db, 64).await?;
        if pending.is_empty() {
            break;
        }
        for id in pending {
            worker::project_one(&srv.db, &srv.docs, &srv.references, &srv.actor, &id).await?;
        }
    }
    Ok(())
}

/// The recalled packs that left with SO-778102 (the first three of lot AMX2311R).
const SHIPPED_RECALLED: [&str; 3] = [":1000081", ":1000082", ":1000083"];

/// A manager's follow-up: the double pick on SO-778107 was a label mix-up, and the
/// customer who received recalled packs was told.
async fn resolve_some(db: &DatabaseConnection) -> Result<(), ActivityError> {
    let open: Vec<trace_exception::Model> = trace_exception::Entity::find()
        .filter(trace_exception::Column::OrganisationId.eq(ORG_ID))
        .filter(trace_exception::Column::State.eq("open"))
        .all(db)
        .await?;
    let levothyroxine = format!("sgtin:{}:", PRODUCTS[11].0);
    for e in open {
        let key = e.epc_key.as_deref().unwrap_or_default();
        let resolution = match e.kind.as_str() {
            "double_pick" if key.starts_with(&levothyroxine) => {
                "Label mix-up: SO-778107 was re-picked from stock; no pack left twice."
            }
            "verdict_overturned"
                if e.detail.contains("recalled_lot")
                    && SHIPPED_RECALLED.iter().any(|s| key.ends_with(s)) =>
            {
                "Recalled pack shipped with SO-778102: customer notified, return authorised."
            }
            _ => continue,
        };
        crate::trace::service::resolve(db, ORG_ID, &e.id, &demo_id(203), resolution).await?;
    }
    Ok(())
}
