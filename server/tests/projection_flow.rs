//! Projection of a whole warehouse flow on SQLite (or PostgreSQL with
//! `SWT_TEST_DATABASE_URL`): receive a pallet with cases and packs, unpack, store, pick
//! for two orders on two scanners, pack, ship (twice), return — then check events, state,
//! exceptions, idempotence, crash recovery, concurrency and voids exactly.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod projection_support;

use projection_support::*;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};
use swt_domain::codes::Code;
use swt_domain::doc::{ExceptionKind, Issue, ProjectionOutcome, Rejection, TaskDocument, TaskKind};
use swt_domain::model::{Action, ScanId, Void};
use swt_server::db::entity::{
    epcis_event, epcis_event_epc, projected_scan, trace_exception, trace_object,
};
use swt_server::projection::{
    ProjectionError, ProjectionOptions, project_document, project_document_with,
};
use swt_tests::{TestDb, test_config};

const ORG: &str = "org-a";
const SITE: &str = "site-1";

async fn setup() -> anyhow::Result<(TestDb, DatabaseConnection)> {
    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    org_with_site(&db, ORG, SITE, GLN).await;
    Ok((tdb, db))
}

async fn events(db: &DatabaseConnection) -> anyhow::Result<Vec<epcis_event::Model>> {
    Ok(epcis_event::Entity::find()
        .filter(epcis_event::Column::OrganisationId.eq(ORG))
        .order_by_asc(epcis_event::Column::EventTimeMs)
        .order_by_asc(epcis_event::Column::Pk)
        .all(db)
        .await?)
}

async fn object(db: &DatabaseConnection, key: &str) -> anyhow::Result<trace_object::Model> {
    trace_object::Entity::find_by_id((ORG.to_owned(), key.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no state for {key}"))
}

fn pack(sn: &str) -> String {
    format!("sgtin:{UNIT_GTIN}:{sn}")
}

fn case(sn: &str) -> String {
    format!("sgtin:{CASE_GTIN}:{sn}")
}

/// Picking document: `order` picked by one scanner.
fn picking_doc(order: &str, picks: &[(&str, &str, u64)], device: &str) -> TaskDocument {
    let mut d = document(TaskKind::Picking, SITE, &[("order", order)]);
    for (id, sn, t) in picks {
        d.add_scan(&scan(
            id,
            Item::Pack(sn),
            Action::Pick,
            Some("PICK-01"),
            None,
            *t,
            "u-pick",
            device,
        ))
        .expect("scan");
    }
    d
}

/// Packing document for order ORD-A: packs put into the container `into` at PACK-02.
fn packing_doc(into: &str, packs: &[(&str, &str, u64)]) -> TaskDocument {
    let mut d = document(TaskKind::Packing, SITE, &[("order", "ORD-A")]);
    for (id, sn, t) in packs {
        d.add_scan(&scan(
            id,
            Item::Pack(sn),
            Action::Pack,
            Some("PACK-02"),
            Some(into),
            *t,
            "u-pack",
            "dev-p",
        ))
        .expect("scan");
    }
    d
}

#[tokio::test]
async fn whole_flow_events_state_exceptions() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;

    // 1. Receiving: pallet (contents inferred from the ASN), two cases unpacked and stored.
    let rcv = receiving_doc(SITE);
    let r = project_document(&db, ORG, "doc-rcv", &rcv).await?;
    assert_eq!(r.newly_projected, 5);
    // Five scans, and the commissioning (with the lot) of each case when first seen.
    assert_eq!(r.events_written, 7);
    assert!(
        r.results
            .iter()
            .all(
                |o| o.result.projection.as_ref().map(Code::as_str) == Some("projected")
                    && o.result.exceptions.is_empty()
            ),
        "{r:?}"
    );
    let ev = events(&db).await?;
    let shape: Vec<(&str, &str, Option<&str>, Option<&str>)> = ev
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.action.as_str(),
                e.biz_step.as_deref(),
                e.disposition.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (
                "ObjectEvent",
                "OBSERVE",
                Some("receiving"),
                Some("sellable_not_accessible")
            ),
            ("ObjectEvent", "ADD", Some("commissioning"), Some("active")),
            ("AggregationEvent", "DELETE", Some("unpacking"), None),
            ("ObjectEvent", "ADD", Some("commissioning"), Some("active")),
            ("AggregationEvent", "DELETE", Some("unpacking"), None),
            (
                "ObjectEvent",
                "OBSERVE",
                Some("storing"),
                Some("sellable_not_accessible")
            ),
            (
                "ObjectEvent",
                "OBSERVE",
                Some("storing"),
                Some("sellable_not_accessible")
            ),
        ]
    );
    let receiving: serde_json::Value = serde_json::from_str(&ev[0].body)?;
    assert_eq!(
        receiving["persistentDisposition"]["set"][0],
        "completeness_inferred"
    );
    assert_eq!(
        receiving["epcList"][0],
        format!("https://id.gs1.org/00/{PALLET}")
    );
    assert_eq!(
        receiving["readPoint"]["id"],
        "https://id.gs1.org/414/4098765000010/254/DOCK-01"
    );
    assert_eq!(
        receiving["bizLocation"]["id"],
        "https://id.gs1.org/414/4098765000010"
    );
    assert_eq!(
        receiving["bizTransactionList"].as_array().map(Vec::len),
        Some(2)
    );
    assert!(
        ev.iter().all(
            |e| e.event_id.starts_with("ni:///sha-256;") && e.event_id.ends_with("?ver=CBV2.0")
        )
    );
    assert_eq!(ev[0].user_id.as_deref(), Some("u-recv"));
    assert_eq!(ev[0].device_id.as_deref(), Some("dev-1"));

    // Packs were never scanned but are known inside their cases, at the case's bin.
    let sn4 = object(&db, &pack("SN4")).await?;
    assert_eq!(
        (
            sn4.status.as_str(),
            sn4.parent_key.as_deref(),
            sn4.location.as_deref()
        ),
        ("in_stock", Some(case("C2").as_str()), Some("BIN-A0104"))
    );
    let c1 = object(&db, &case("C1")).await?;
    assert_eq!(
        (
            c1.status.as_str(),
            c1.parent_key.as_deref(),
            c1.location.as_deref()
        ),
        ("in_stock", None, Some("BIN-A0103"))
    );

    // 2. Two pickers, two orders. Scanner B was offline and picked SN1 for ORD-B *before*
    //    scanner A picked it for ORD-A; A syncs first.
    let pick_a = picking_doc(
        "ORD-A",
        &[("pa.1", "SN1", at(60)), ("pa.2", "SN2", at(61))],
        "dev-a",
    );
    let pick_b = picking_doc(
        "ORD-B",
        &[("pb.1", "SN1", at(55)), ("pb.2", "SN3", at(56))],
        "dev-b",
    );
    let ra = project_document(&db, ORG, "doc-pick-a", &pick_a).await?;
    assert_eq!(
        ra.events_written, 6,
        "commissioning (lot, expiry) + unpack from the case + picking, twice"
    );
    let rb = project_document(&db, ORG, "doc-pick-b", &pick_b).await?;
    assert_eq!(
        rb.events_written, 4,
        "SN1 picking (already out of its case and known) + SN3 commissioning, unpack, picking"
    );
    assert_eq!(
        rb.result("pb.1").map(|r| r.exceptions.clone()),
        Some(vec![ExceptionKind::DoublePick.into()])
    );
    assert_eq!(
        rb.result("pb.2").map(|r| r.exceptions.clone()),
        Some(vec![])
    );
    // The late scan does not overwrite the newer state.
    let sn1 = object(&db, &pack("SN1")).await?;
    assert_eq!(
        (sn1.status.as_str(), sn1.order_ref.as_deref()),
        ("picked", Some("ORD-A"))
    );
    // The exception names both scans, and the other document sees it on its next run.
    let ra2 = project_document(&db, ORG, "doc-pick-a", &pick_a).await?;
    assert_eq!(ra2.newly_projected, 0);
    assert_eq!(
        ra2.result("pa.1").map(|r| r.exceptions.clone()),
        Some(vec![ExceptionKind::DoublePick.into()])
    );

    // 3. Packing ORD-A into an outbound SSCC, 4. shipping it twice, 5. a return.
    let out1 = format!("sscc:{OUT1}");
    let packing = packing_doc(&out1, &[("pk.1", "SN1", at(70)), ("pk.2", "SN2", at(71))]);
    assert_eq!(
        project_document(&db, ORG, "doc-pack", &packing)
            .await?
            .events_written,
        2
    );
    // Packing marked the outbound SSCC as a holder (the contents walk descends into
    // holders only); the packs hold nothing.
    assert!(object(&db, &out1).await?.holds);
    assert!(!object(&db, &format!("sgtin:{UNIT_GTIN}:SN1")).await?.holds);
    let mut ship = document(
        TaskKind::Shipping,
        SITE,
        &[("order", "ORD-A"), ("shipment", "ASN-42")],
    );
    ship.add_scan(&scan(
        "sh.1",
        Item::Sscc(OUT1),
        Action::Ship,
        Some("DOCK-04"),
        None,
        at(90),
        "u-ship",
        "dev-s",
    ))?;
    let rs = project_document(&db, ORG, "doc-ship", &ship).await?;
    assert_eq!(rs.events_written, 1);
    let mut ship2 = document(TaskKind::Shipping, SITE, &[("order", "ORD-A")]);
    ship2.add_scan(&scan(
        "sh2.1",
        Item::Sscc(OUT1),
        Action::Ship,
        Some("DOCK-05"),
        None,
        at(95),
        "u-ship",
        "dev-t",
    ))?;
    let rs2 = project_document(&db, ORG, "doc-ship-2", &ship2).await?;
    assert_eq!(
        rs2.result("sh2.1").map(|r| r.exceptions.clone()),
        Some(vec![ExceptionKind::DoubleShip.into()])
    );
    let mut ret = document(TaskKind::Returns, SITE, &[("rma", "RMA-0193")]);
    ret.add_scan(&scan(
        "rt.1",
        Item::Pack("SN2"),
        Action::Return,
        Some("RET-01"),
        None,
        at(600),
        "u-ret",
        "dev-r",
    ))?;
    project_document(&db, ORG, "doc-ret", &ret).await?;

    let all = events(&db).await?;
    assert_eq!(all.len(), 7 + 6 + 4 + 2 + 1 + 1 + 1);
    let count = |step: &str| {
        all.iter()
            .filter(|e| e.biz_step.as_deref() == Some(step))
            .count()
    };
    assert_eq!(
        [
            count("receiving"),
            count("unpacking"),
            count("storing"),
            count("picking"),
            count("packing"),
            count("shipping"),
            count("commissioning")
        ],
        [2, 5, 2, 4, 2, 2, 5]
    );
    let returned: serde_json::Value = serde_json::from_str(
        &all.iter()
            .find(|e| e.disposition.as_deref() == Some("returned"))
            .map(|e| e.body.clone())
            .unwrap_or_default(),
    )?;
    assert_eq!(returned["bizTransactionList"][0]["type"], "rma");

    // Final state of every object.
    let expect = [
        (format!("sscc:{PALLET}"), "in_stock", None, Some("DOCK-01")),
        (case("C1"), "in_stock", None, Some("BIN-A0103")),
        (case("C2"), "in_stock", None, Some("BIN-A0104")),
        (pack("SN1"), "shipped", Some(out1.clone()), None),
        (pack("SN2"), "returned", None, Some("RET-01")),
        (pack("SN3"), "picked", None, Some("PICK-01")),
        (pack("SN4"), "in_stock", Some(case("C2")), Some("BIN-A0104")),
        (out1.clone(), "shipped", None, None),
    ];
    for (key, status, parent, loc) in expect {
        let o = object(&db, &key).await?;
        assert_eq!(
            (
                o.status.as_str(),
                o.parent_key.clone(),
                o.location.as_deref(),
                o.site_id.as_deref()
            ),
            (status, parent, loc, Some(SITE)),
            "{key}"
        );
    }
    let sn3 = object(&db, &pack("SN3")).await?;
    assert_eq!(
        (
            sn3.lot.as_deref(),
            sn3.expiry.as_deref(),
            sn3.order_ref.as_deref()
        ),
        (Some("L2024A"), Some("2027-09-30"), Some("ORD-B"))
    );

    // Exceptions: exactly the two conflicts, open, with the scans involved.
    let ex = trace_exception::Entity::find()
        .filter(trace_exception::Column::OrganisationId.eq(ORG))
        .order_by_asc(trace_exception::Column::Kind)
        .all(&db)
        .await?;
    let kinds: Vec<(&str, &str, Option<&str>)> = ex
        .iter()
        .map(|e| (e.kind.as_str(), e.state.as_str(), e.epc_key.as_deref()))
        .collect();
    let sn1k = pack("SN1");
    assert_eq!(
        kinds,
        vec![
            ("double_pick", "open", Some(sn1k.as_str())),
            ("double_ship", "open", Some(out1.as_str()))
        ]
    );

    // History of SN1 via the join table: commissioning, unpack from C1, two picks,
    // packing.
    let sn1_events = epcis_event_epc::Entity::find()
        .filter(epcis_event_epc::Column::OrganisationId.eq(ORG))
        .filter(epcis_event_epc::Column::EpcKey.eq(pack("SN1")))
        .count(&db)
        .await?;
    assert_eq!(sn1_events, 5);

    // Projecting every document again changes nothing.
    let before = (
        events(&db).await?.len(),
        trace_exception::Entity::find().count(&db).await?,
    );
    for (id, d) in [
        ("doc-rcv", &rcv),
        ("doc-pick-a", &pick_a),
        ("doc-pick-b", &pick_b),
        ("doc-pack", &packing),
        ("doc-ship", &ship),
        ("doc-ship-2", &ship2),
        ("doc-ret", &ret),
    ] {
        let again = project_document(&db, ORG, id, d).await?;
        assert_eq!(
            (again.newly_projected, again.events_written),
            (0, 0),
            "{id}"
        );
    }
    assert_eq!(
        before,
        (
            events(&db).await?.len(),
            trace_exception::Entity::find().count(&db).await?
        )
    );
    tdb.close().await
}

/// Packing into a new outbound SSCC and moving it, all in one chunk: the SSCC is not
/// flagged a holder in the database yet, and the move must still carry its contents.
#[tokio::test]
async fn a_container_filled_and_moved_in_one_chunk_carries_its_contents() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let out1 = format!("sscc:{OUT1}");
    let mut d = packing_doc(&out1, &[("pk.1", "SN1", at(1)), ("pk.2", "SN2", at(2))]);
    d.add_scan(&scan(
        "mv.1",
        Item::Sscc(OUT1),
        Action::Move,
        Some("DOCK-09"),
        None,
        at(3),
        "u-pack",
        "dev-p",
    ))?;
    let r = project_document(&db, ORG, "doc-pack", &d).await?;
    // Three scans, and the commissioning (lot, expiry) of each pack first seen here.
    assert_eq!((r.newly_projected, r.events_written), (3, 5));
    let sscc = object(&db, &out1).await?;
    assert!(sscc.holds);
    assert_eq!(sscc.location.as_deref(), Some("DOCK-09"));
    for sn in ["SN1", "SN2"] {
        let p = object(&db, &pack(sn)).await?;
        assert_eq!(p.parent_key.as_deref(), Some(out1.as_str()), "{sn}");
        assert_eq!(
            p.location.as_deref(),
            Some("DOCK-09"),
            "{sn} moved with its case"
        );
        assert_eq!(p.status.as_str(), "in_stock", "{sn}");
    }
    tdb.close().await
}

#[tokio::test]
async fn crash_mid_projection_leaves_nothing_half_applied() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let rcv = receiving_doc(SITE);
    let opts = ProjectionOptions {
        fail_after_scans: Some(2),
    };
    let err = project_document_with(&db, ORG, "doc-rcv", &rcv, &opts).await;
    assert!(matches!(err, Err(ProjectionError::Injected(2))), "{err:?}");
    // Two scans fully applied, the third (whose transaction failed after writing) not at all.
    assert_eq!(projected_scan::Entity::find().count(&db).await?, 2);
    let ev = events(&db).await?;
    // rcv.2 also commissioned case C1 (its lot, first seen).
    assert_eq!(ev.len(), 3);
    assert_eq!(
        ev.iter()
            .filter_map(|e| e.scan_id.as_deref())
            .collect::<Vec<_>>(),
        vec!["rcv.1", "rcv.2", "rcv.2"]
    );
    assert_eq!(epcis_event_epc::Entity::find().count(&db).await?, 1 + 1 + 2);
    let c2 = object(&db, &case("C2")).await?;
    assert_eq!(
        c2.parent_key,
        Some(format!("sscc:{PALLET}")),
        "C2's unpack was rolled back"
    );

    let r = project_document(&db, ORG, "doc-rcv", &rcv).await?;
    assert_eq!((r.newly_projected, r.events_written), (3, 4));
    assert_eq!(r.results.len(), 5);
    assert_eq!(events(&db).await?.len(), 7);
    assert_eq!(object(&db, &case("C2")).await?.parent_key, None);
    let r = project_document(&db, ORG, "doc-rcv", &rcv).await?;
    assert_eq!(r.newly_projected, 0);
    assert_eq!(events(&db).await?.len(), 7);
    tdb.close().await
}

#[tokio::test]
async fn two_processes_project_the_same_document_once() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    // A second pool stands in for a second server process on the same database.
    let other = swt_server::db::connect(tdb.url(), 4).await?;
    let rcv = receiving_doc(SITE);
    let (a, b) = tokio::join!(
        project_document(&db, ORG, "doc-rcv", &rcv),
        project_document(&other, ORG, "doc-rcv", &rcv)
    );
    let (a, b) = (a?, b?);
    assert_eq!(a.newly_projected + b.newly_projected, 5);
    // Five scans, two of which also commission a case.
    assert_eq!(a.events_written + b.events_written, 7);
    assert_eq!(events(&db).await?.len(), 7);
    assert_eq!(
        a.results, b.results,
        "both report the same outcome per scan"
    );
    tdb.close().await
}

#[tokio::test]
async fn voids_before_and_after_projection() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let mut d = picking_doc(
        "ORD-V",
        &[("v.1", "SN7", at(1)), ("v.2", "SN8", at(2))],
        "dev-v",
    );
    let void = |id: &str| Void {
        scan_id: ScanId::parse(id).expect("id"),
        user: "u-pick".to_owned(),
        device: "dev-v".to_owned(),
        device_time_ms: at(3),
    };
    d.void_scan(&void("v.1"))?;
    let r = project_document(&db, ORG, "doc-v", &d).await?;
    assert_eq!(
        r.result("v.1")
            .and_then(|r| r.projection.clone())
            .as_ref()
            .map(Code::as_str),
        Some("voided")
    );
    assert_eq!(
        r.events_written, 2,
        "only the scan not voided (and its pack's commissioning)"
    );
    assert_eq!(
        epcis_event::Entity::find()
            .filter(epcis_event::Column::ScanId.eq("v.1"))
            .count(&db)
            .await?,
        0
    );

    // Voided after projection: events stay, one exception for the manager, once.
    d.void_scan(&void("v.2"))?;
    let r = project_document(&db, ORG, "doc-v", &d).await?;
    assert_eq!(r.exceptions_opened, 1);
    assert_eq!(
        r.result("v.2").map(|r| r.exceptions.clone()),
        Some(vec![ExceptionKind::VoidedAfterProjection.into()])
    );
    let r = project_document(&db, ORG, "doc-v", &d).await?;
    assert_eq!(r.exceptions_opened, 0);
    assert_eq!(trace_exception::Entity::find().count(&db).await?, 1);

    // The results go back into the document, keeping the verification outcome.
    let n = r.write_back(&mut d)?;
    d.commit(0);
    assert_eq!(n, 2);
    let v2 = d.result(&ScanId::parse("v.2")?)?.unwrap_or_default();
    assert_eq!(v2.projection.as_ref().map(Code::as_str), Some("projected"));
    assert_eq!(
        v2.exceptions,
        vec![ExceptionKind::VoidedAfterProjection.into()]
    );
    assert_eq!(r.write_back(&mut d)?, 0, "nothing changes the second time");
    tdb.close().await
}

#[tokio::test]
async fn unreadable_and_unserialised_scans_are_rejected() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let mut d = document(TaskKind::Picking, SITE, &[("order", "ORD-R")]);
    let mut unread = scan(
        "x.1",
        Item::Pack("SN9"),
        Action::Pick,
        None,
        None,
        at(1),
        "u",
        "d",
    );
    unread.ids = Default::default();
    let mut lot_only = scan(
        "x.2",
        Item::Pack("SN9"),
        Action::Pick,
        None,
        None,
        at(2),
        "u",
        "d",
    );
    lot_only.ids.serial = None;
    let mut pack_no_parent = scan(
        "x.3",
        Item::Pack("SN9"),
        Action::Pack,
        None,
        None,
        at(3),
        "u",
        "d",
    );
    pack_no_parent.parent = None;
    for s in [unread, lot_only, pack_no_parent] {
        d.add_scan(&s)?;
    }
    let r = project_document(&db, ORG, "doc-x", &d).await?;
    let rejected = Some(Code::Known(ProjectionOutcome::Rejected));
    let codes: Vec<(Option<Code<ProjectionOutcome>>, Vec<Issue>)> = r
        .results
        .iter()
        .map(|o| (o.result.projection.clone(), o.result.exceptions.clone()))
        .collect();
    assert_eq!(
        codes,
        vec![
            (rejected.clone(), vec![Rejection::Unreadable.into()]),
            (rejected.clone(), vec![Rejection::NotSerialised.into()]),
            (rejected, vec![Rejection::UnknownParent.into()]),
        ]
    );
    assert_eq!(events(&db).await?.len(), 0);
    assert_eq!(
        trace_object::Entity::find().count(&db).await?,
        0,
        "rejections leave no state"
    );
    tdb.close().await
}
