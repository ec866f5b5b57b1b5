use std::collections::HashSet;

use super::*;
use crate::doc::ExpectedUnit;
use crate::doc::{Expected, ExpectedLine, Header, TaskDocument, TaskKind, TaskStatus};
use crate::gs1::Date;
use crate::gs1::{ParseOptions, parse};
use crate::model::Product;
use crate::model::{ExpiryPolicy, Feedback, ReferenceData, Scan, ScanId};

const G1: &str = "09506000134352";
const G2: &str = "04150123456782";
/// Valid GTIN, not in the product master.
const G3: &str = "00312345678906";
const SSCC1: &str = "009506000100000018";
const SSCC2: &str = "009506000100000025";
const SSCC3: &str = "009506000100000032";

fn today() -> Date {
    Date::new(2026, 11, 24).unwrap()
}

fn pack_with(gtin: &str, serial: &str, lot: &str, exp: &str) -> Vec<u8> {
    format!("]d201{gtin}17{exp}10{lot}\u{1d}21{serial}").into_bytes()
}

fn pack(serial: &str) -> Vec<u8> {
    pack_with(G1, serial, "LOT1", "280131")
}

fn sscc(s: &str) -> Vec<u8> {
    format!("]C100{s}").into_bytes()
}

fn reference() -> ReferenceData {
    let mut r = ReferenceData {
        site: "s1".into(),
        version: 1,
        expiry_policy: ExpiryPolicy {
            min_remaining_days: 90,
            reject_expired: true,
        },
        ..Default::default()
    };
    for g in [G1, G2] {
        r.products.insert(
            g.into(),
            Product {
                gtin: g.parse().unwrap(),
                name: "Product".into(),
                serialized: true,
                ndc: None,
                pack_size: None,
            },
        );
    }
    r.recall(G1, "RECALL");
    r.block(G1, "BLOCKED");
    r
}

type Line<'a> = (&'a str, u64, Option<&'a str>);

fn task(kind: TaskKind, lines: &[Line<'_>], units: &[(&str, Option<&str>)]) -> TaskState {
    let header = Header {
        kind,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let expected = Expected {
        lines: lines
            .iter()
            .map(|(g, q, l)| ExpectedLine {
                gtin: g.parse().unwrap(),
                quantity: *q,
                lot: l.map(Into::into),
            })
            .collect(),
        units: units
            .iter()
            .map(|(id, p)| ExpectedUnit {
                id: (*id).into(),
                parent: p.map(Into::into),
            })
            .collect(),
    };
    TaskState::new(&header, &expected)
}

fn record(st: &mut TaskState, raw: &[u8], r: &ReferenceData) -> Outcome {
    let parsed = parse(raw, &ParseOptions::default());
    let out = st.evaluate(raw, &parsed, r, today());
    let id = ScanId::from_device_counter("t", st.scans_total).unwrap();
    st.apply(&id, &out);
    out
}

fn hierarchy() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        ("sscc:009506000100000018", None),
        ("sscc:009506000100000025", Some("sscc:009506000100000018")),
        ("sgtin:09506000134352:A", Some("sscc:009506000100000025")),
        ("sgtin:09506000134352:B", Some("sscc:009506000100000025")),
        ("sgtin:09506000134352:C", Some("sscc:009506000100000018")),
    ]
}

struct Case {
    name: &'static str,
    kind: TaskKind,
    lines: Vec<Line<'static>>,
    units: Vec<(&'static str, Option<&'static str>)>,
    reference: fn(&mut ReferenceData),
    closed: bool,
    before: Vec<Vec<u8>>,
    raw: Vec<u8>,
    reason: Reason,
    verdict: Verdict,
}

fn keep(_: &mut ReferenceData) {}

fn case(name: &'static str, raw: Vec<u8>, reason: Reason, verdict: Verdict) -> Case {
    Case {
        name,
        kind: TaskKind::Picking,
        lines: vec![(G1, 2, None)],
        units: vec![],
        reference: keep,
        closed: false,
        before: vec![],
        raw,
        reason,
        verdict,
    }
}

fn cases() -> Vec<Case> {
    use Reason as R;
    use Verdict as V;
    vec![
        case("ok", pack("S1"), R::Ok, V::Accept),
        case(
            "invalid_barcode",
            b"]d2019506".to_vec(),
            R::InvalidBarcode,
            V::Reject,
        ),
        case("empty read", vec![], R::InvalidBarcode, V::Reject),
        case(
            "not gs1",
            b"]Q1hello".to_vec(),
            R::InvalidBarcode,
            V::Reject,
        ),
        Case {
            lines: vec![(G3, 1, None)],
            ..case(
                "unknown_product",
                pack_with(G3, "S1", "L", "280131"),
                R::UnknownProduct,
                V::Warn,
            )
        },
        case(
            "not_expected picking",
            pack_with(G2, "S1", "L", "280131"),
            R::NotExpected,
            V::Reject,
        ),
        Case {
            kind: TaskKind::Receiving,
            ..case(
                "not_expected receiving warns",
                pack_with(G2, "S1", "L", "280131"),
                R::NotExpected,
                V::Warn,
            )
        },
        Case {
            lines: vec![],
            kind: TaskKind::StockCount,
            ..case(
                "no expectations takes anything",
                pack_with(G2, "S1", "L", "280131"),
                R::Ok,
                V::Accept,
            )
        },
        Case {
            lines: vec![(G1, 1, None)],
            before: vec![pack("S1")],
            ..case("over_quantity", pack("S2"), R::OverQuantity, V::Reject)
        },
        Case {
            lines: vec![(G1, 1, Some("LOTA")), (G1, 1, Some("LOTB"))],
            ..case("wrong_lot", pack("S1"), R::WrongLot, V::Reject)
        },
        Case {
            lines: vec![(G1, 1, Some("LOTA")), (G1, 1, Some("LOT1"))],
            ..case("second line takes the lot", pack("S1"), R::Ok, V::Accept)
        },
        Case {
            before: vec![pack("S1")],
            ..case("duplicate", pack("S1"), R::Duplicate, V::Reject)
        },
        case(
            "expired",
            pack_with(G1, "S1", "LOT1", "261123"),
            R::Expired,
            V::Reject,
        ),
        Case {
            reference: |r| r.expiry_policy.reject_expired = false,
            ..case(
                "expired warns by policy",
                pack_with(G1, "S1", "LOT1", "261123"),
                R::Expired,
                V::Warn,
            )
        },
        case(
            "expiry today is not expired",
            pack_with(G1, "S1", "LOT1", "261124"),
            R::ExpiresSoon,
            V::Warn,
        ),
        case(
            "expires_soon",
            pack_with(G1, "S1", "LOT1", "270101"),
            R::ExpiresSoon,
            V::Warn,
        ),
        case(
            "recalled_lot",
            pack_with(G1, "S1", "RECALL", "280131"),
            R::RecalledLot,
            V::Reject,
        ),
        case(
            "blocked_serial",
            pack("BLOCKED"),
            R::BlockedSerial,
            V::Reject,
        ),
        Case {
            closed: true,
            ..case("task_closed", pack("S1"), R::TaskClosed, V::Reject)
        },
        Case {
            kind: TaskKind::Returns,
            ..case(
                "wrong_task_kind: container in returns",
                sscc(SSCC1),
                R::WrongTaskKind,
                V::Reject,
            )
        },
        Case {
            kind: TaskKind::Shipping,
            ..case(
                "wrong_task_kind: pack in shipping",
                pack("S1"),
                R::WrongTaskKind,
                V::Reject,
            )
        },
        case(
            "wrong_task_kind: location label",
            b"]d24149506000134352".to_vec(),
            R::WrongTaskKind,
            V::Reject,
        ),
        Case {
            reference: |r| r.site = "s2".into(),
            ..case(
                "wrong_task_kind: other site",
                pack("S1"),
                R::WrongTaskKind,
                V::Reject,
            )
        },
        case(
            "separator_suspected",
            format!("]d201{G1}10LOT121SERIAL1\u{1d}17280131").into_bytes(),
            R::SeparatorSuspected,
            V::Warn,
        ),
        Case {
            kind: TaskKind::Receiving,
            lines: vec![(G1, 3, None)],
            units: hierarchy(),
            ..case("container ok", sscc(SSCC1), R::Ok, V::Accept)
        },
        Case {
            kind: TaskKind::Receiving,
            lines: vec![(G1, 3, None)],
            units: hierarchy(),
            before: vec![sscc(SSCC2)],
            ..case(
                "pack inside counted case",
                pack("A"),
                R::Duplicate,
                V::Reject,
            )
        },
        Case {
            kind: TaskKind::Receiving,
            lines: vec![(G1, 3, None)],
            units: hierarchy(),
            before: vec![sscc(SSCC1)],
            ..case(
                "case inside counted pallet",
                sscc(SSCC2),
                R::Duplicate,
                V::Reject,
            )
        },
        Case {
            kind: TaskKind::Receiving,
            lines: vec![(G1, 3, None)],
            units: hierarchy(),
            ..case(
                "container not in hierarchy",
                sscc(SSCC3),
                R::NotExpected,
                V::Warn,
            )
        },
        Case {
            kind: TaskKind::Picking,
            lines: vec![(G1, 2, None)],
            units: hierarchy(),
            ..case(
                "pallet over the picked quantity",
                sscc(SSCC1),
                R::OverQuantity,
                V::Reject,
            )
        },
        Case {
            kind: TaskKind::Receiving,
            lines: vec![(G1, 3, None)],
            units: vec![
                ("sscc:009506000100000018", None),
                (
                    "sgtin:09506000134352:BLOCKED",
                    Some("sscc:009506000100000018"),
                ),
            ],
            ..case(
                "container holding a blocked pack",
                sscc(SSCC1),
                R::BlockedSerial,
                V::Reject,
            )
        },
    ]
}

#[test]
fn every_reason_by_table() {
    let mut seen = HashSet::new();
    for c in cases() {
        let mut r = reference();
        (c.reference)(&mut r);
        let mut st = task(c.kind, &c.lines, &c.units);
        for b in &c.before {
            let o = record(&mut st, b, &r);
            assert_ne!(o.verdict, Verdict::Reject, "{}: setup scan {o:?}", c.name);
        }
        if c.closed {
            st.status = TaskStatus::Closed;
        }
        let parsed = parse(&c.raw, &ParseOptions::default());
        let out = st.evaluate(&c.raw, &parsed, &r, today());
        assert_eq!(
            (out.reason, out.verdict),
            (c.reason, c.verdict),
            "{}: {out:?}",
            c.name
        );
        assert!(!out.message.is_empty(), "{}", c.name);
        if c.reason == Reason::InvalidBarcode {
            assert!(out.gs1_error.is_some(), "{}", c.name);
        }
        seen.insert(c.reason);
    }
    for r in Reason::ALL {
        assert!(seen.contains(r), "no table case for {r}");
    }
}

/// A scanner's session of `raws` in one task, as the server receives it: each scan
/// judged and counted on the scanner with `reference`, stored with its feedback.
/// Returns the document and the scanner's outcomes in order.
fn scanned(
    header: &Header,
    expected: &Expected,
    reference: &ReferenceData,
    raws: &[&Vec<u8>],
) -> (TaskDocument, Vec<(ScanId, Outcome)>) {
    let mut device = TaskState::new(header, expected);
    let mut doc = TaskDocument::create(crate::testing::server_actor(), header, 1).unwrap();
    doc.set_expected(expected, 1).unwrap();
    let start_ms = days_from_civil(today()) as u64 * 86_400_000 + 3_600_000;
    let mut given = Vec::new();
    for (n, raw) in raws.iter().enumerate() {
        let parsed = parse(raw, &ParseOptions::default());
        let out = device.evaluate(raw, &parsed, reference, today());
        let id = ScanId::from_device_counter("dev", n as u64).unwrap();
        device.apply(&id, &out);
        let scan = Scan {
            id: id.clone(),
            raw: (*raw).clone(),
            ids: out.identifiers.clone(),
            action: crate::model::Action::Pick,
            user: "u".into(),
            device: "dev".into(),
            location: None,
            device_time_ms: start_ms + n as u64,
            feedback: out.reason.feedback(),
            parent: None,
        };
        doc.add_scans(&[scan]).unwrap();
        given.push((id, out));
    }
    (doc, given)
}

/// The scanner's verdicts, stored in a document as its feedback, judged again the
/// way the server does at projection: with the same reference data, every reason
/// code comes out the same, and nothing is an overturn.
#[test]
fn the_server_judges_like_the_scanner_for_every_reason() {
    let mut seen = HashSet::new();
    for c in cases() {
        let mut r = reference();
        (c.reference)(&mut r);
        let header = Header {
            kind: c.kind,
            site: "s1".into(),
            refs: Default::default(),
            status: if c.closed {
                TaskStatus::Closed
            } else {
                TaskStatus::Open
            },
        };
        let expected = Expected {
            lines: c
                .lines
                .iter()
                .map(|(g, q, l)| ExpectedLine {
                    gtin: g.parse().unwrap(),
                    quantity: *q,
                    lot: l.map(Into::into),
                })
                .collect(),
            units: c
                .units
                .iter()
                .map(|(id, p)| ExpectedUnit {
                    id: (*id).into(),
                    parent: p.map(Into::into),
                })
                .collect(),
        };
        // The scanner: evaluate, count, store the feedback.
        let raws: Vec<&Vec<u8>> = c.before.iter().chain(std::iter::once(&c.raw)).collect();
        let (doc, given) = scanned(&header, &expected, &r, &raws);
        let judged = TaskState::judge_document(&doc, &r).unwrap();
        assert_eq!(judged.len(), given.len(), "{}", c.name);
        for (j, (id, out)) in judged.iter().zip(&given) {
            assert_eq!(&j.scan_id, id, "{}", c.name);
            assert_eq!(
                (j.outcome.reason, j.outcome.verdict, j.device),
                (out.reason, out.verdict, out.verdict),
                "{}: server {:?}, scanner {:?}",
                c.name,
                j.outcome,
                out
            );
            assert!(!j.overturned(), "{}", c.name);
        }
        seen.insert(c.reason);
    }
    for r in Reason::ALL {
        assert!(seen.contains(r), "no parity case for {r}");
    }
}

/// Reference data the scanner did not have: the server's verdict differs where that
/// data decides, and only there is it an overturn.
#[test]
fn newer_reference_data_overturns_only_what_it_decides() {
    let header = Header {
        kind: TaskKind::Picking,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let expected = Expected {
        lines: vec![ExpectedLine {
            gtin: G1.parse().unwrap(),
            quantity: 5,
            lot: None,
        }],
        units: vec![],
    };
    let stale = reference();
    let mut fresh = reference();
    fresh.recall(G1, "LATE");
    let raws = [
        pack_with(G1, "A", "LATE", "280131"),
        pack_with(G1, "B", "LOT1", "280131"),
        pack_with(G1, "B", "LOT1", "280131"),
    ];
    let (doc, _) = scanned(&header, &expected, &stale, &raws.iter().collect::<Vec<_>>());
    let judged = TaskState::judge_document(&doc, &fresh).unwrap();
    let got: Vec<(Reason, bool)> = judged
        .iter()
        .map(|j| (j.outcome.reason, j.overturned()))
        .collect();
    assert_eq!(
        got,
        [
            (Reason::RecalledLot, true),
            (Reason::Ok, false),
            // The scanner itself refused the repeat: judged the same, no overturn.
            (Reason::Duplicate, false),
        ]
    );
}

#[test]
fn task_closed_rejects() {
    let mut st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
    st.set_header(&Header {
        kind: TaskKind::Picking,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Closed,
    });
    let out = record(&mut st, &pack("S1"), &reference());
    assert_eq!(
        (out.reason, out.verdict),
        (Reason::TaskClosed, Verdict::Reject)
    );
    assert_eq!(st.progress().packs_counted, 0);
}

#[test]
fn plain_data_is_not_a_gs1_barcode() {
    let st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
    for raw in [
        &b"]d1WH-A12-03"[..],
        b"]Q1hello",
        b"HtTpS://id.gs1.org/01/09506000134352",
    ] {
        let parsed = parse(raw, &ParseOptions::default());
        let out = st.evaluate(raw, &parsed, &reference(), today());
        assert_eq!(
            (out.reason, out.verdict),
            (Reason::InvalidBarcode, Verdict::Reject)
        );
        assert!(out.message.starts_with("Not a GS1 barcode"), "{out:?}");
        let (code, msg) = out.gs1_error.unwrap_or_default();
        assert_eq!(code, "not_gs1");
        assert!(msg.starts_with("not a GS1 barcode"), "{msg}");
    }
}

#[test]
fn gs1_error_code_is_carried() {
    let st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
    let raw = format!("]d201{G1}17261331").into_bytes();
    let parsed = parse(&raw, &ParseOptions::default());
    let out = st.evaluate(&raw, &parsed, &reference(), today());
    let (code, msg) = out.gs1_error.unwrap();
    assert_eq!(code, parsed.unwrap_err().code());
    assert!(msg.contains("17"), "{msg}");
}

#[test]
fn findings_list_every_rule_most_severe_first() {
    let st = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
    let raw = pack_with(G1, "BLOCKED", "RECALL", "270101");
    let parsed = parse(&raw, &ParseOptions::default());
    let out = st.evaluate(&raw, &parsed, &reference(), today());
    let got: Vec<Reason> = out.findings.iter().map(|f| f.reason).collect();
    assert_eq!(
        got,
        [
            Reason::BlockedSerial,
            Reason::RecalledLot,
            Reason::ExpiresSoon
        ]
    );
    assert_eq!(
        out.effect,
        Effect::default(),
        "rejected scans count nothing"
    );
}

#[test]
fn aggregation_counts_contents_and_void_takes_them_back() {
    let r = reference();
    let mut st = task(TaskKind::Receiving, &[(G1, 3, None)], &hierarchy());
    let out = record(&mut st, &sscc(SSCC1), &r);
    assert_eq!(out.effect.packs(), 3);
    let p = st.progress();
    assert_eq!((p.units_counted, p.units_expected), (3, 3));
    assert_eq!((p.lines_complete, p.containers_counted), (1, 2));
    assert_eq!(p.to_string(), "1 of 1 lines complete, 3 of 3 units");
    let id = ScanId::from_device_counter("t", 0).unwrap();
    assert!(st.void(&id));
    assert!(!st.void(&id), "a second void changes nothing");
    let p = st.progress();
    assert_eq!(
        (p.units_counted, p.packs_counted, p.scans_voided),
        (0, 0, 1)
    );
    // After the void the pack may be scanned on its own.
    assert_eq!(record(&mut st, &pack("A"), &r).reason, Reason::Ok);
    // And the pallet then counts only what is not yet counted.
    let out = record(&mut st, &sscc(SSCC1), &r);
    assert_eq!((out.reason, out.effect.packs()), (Reason::Ok, 2));
    assert_eq!(st.progress().units_counted, 3);
}

#[test]
fn units_without_lines_are_the_target() {
    let r = reference();
    let mut st = task(TaskKind::Returns, &[], &hierarchy()[2..]);
    assert_eq!(record(&mut st, &pack("A"), &r).reason, Reason::Ok);
    assert_eq!(record(&mut st, &pack("Z"), &r).reason, Reason::NotExpected);
    let p = st.progress();
    assert_eq!(
        (p.units_counted, p.units_expected, p.packs_counted),
        (1, 3, 2)
    );
}

#[test]
fn replay_counts_as_stored_feedback_says() {
    let r = reference();
    let mut live = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
    let mut replayed = task(TaskKind::Picking, &[(G1, 2, None)], &[]);
    for (n, raw) in [pack("S1"), pack("S1"), pack("S2"), pack("S3")]
        .iter()
        .enumerate()
    {
        let parsed = parse(raw, &ParseOptions::default());
        let out = live.evaluate(raw, &parsed, &r, today());
        let id = ScanId::from_device_counter("d", n as u64).unwrap();
        live.apply(&id, &out);
        let scan = Scan {
            id,
            raw: raw.clone(),
            ids: out.identifiers.clone(),
            action: crate::model::Action::Pick,
            user: "u".into(),
            device: "d".into(),
            location: None,
            device_time_ms: n as u64,
            feedback: out.reason.feedback(),
            parent: None,
        };
        replayed.replay(&scan, &r);
        replayed.replay(&scan, &r); // idempotent
    }
    assert_eq!(live.progress(), replayed.progress());
    assert_eq!(live.progress().scans_rejected, 2);
}

#[test]
fn feedback_codes_map_both_ways() {
    for r in Reason::ALL {
        assert_eq!(Reason::from_feedback(r.feedback()), Some(*r));
    }
    assert_eq!(Reason::from_feedback(Feedback::Warning), None);
    assert_eq!(Reason::InvalidBarcode.feedback().code(), 8);
    assert_eq!(Reason::WrongTaskKind.feedback().code(), 13);
    assert_eq!(Reason::TaskClosed.feedback().code(), 14);
}

#[test]
fn calendar_arithmetic() {
    let d = Date::new(2026, 11, 24).unwrap();
    let days = days_from_civil(d);
    assert_eq!(days, 20_781); // 2026-01-01 is day 20,454
    assert_eq!(date_from_unix_ms(days as u64 * 86_400_000 + 86_399_999), d);
    assert_eq!(date_from_unix_ms(0), Date::new(1970, 1, 1).unwrap());
    assert_eq!(
        days_from_civil(Date::new(2028, 3, 1).unwrap())
            - days_from_civil(Date::new(2028, 2, 28).unwrap()),
        2
    );
}
