//! The saleable-returns workflow end to end, on both back-ends: a returns clerk's scanner
//! (the real core session) scans returned packs at a wholesaler's `swt`; packs are
//! verified with the manufacturer's own `swt` acting as LMS responder — online within the
//! scan's feedback, or, for scans recorded offline, by the server after sync with the
//! outcome written back into the task document. Verified packs become sellable stock,
//! failed ones are quarantined with an exception and an investigation record; a pack
//! whose responder is down stays pending.
//!
//! A verdict holds only for the scan it verified (issue #19): a returns scan that syncs
//! under a verified scan id with another pack is held and verified afresh, never sold on
//! the first pack's verdict; nobody else can verify, and so take, a scan id already
//! verified or another scanner's.

use std::time::Duration;

use sea_orm::{ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use swt_core::codes::Code;
use swt_core::doc::{ExceptionKind, VerificationOutcome};
use swt_core::model::{Action, ScanId};
use swt_core::session::{Session, SessionOptions};
use swt_server::config::VerificationRoute;
use swt_server::db::entity::{
    epcis_event, return_verification, trace_exception, trace_exception_scan, trace_object,
    verification_serial,
};
use swt_server::demo;
use swt_server::epcis::UnitKey;
use swt_tests::api::Scanner;
use swt_tests::lms::{self, GTIN, KEY};
use swt_tests::{TestDb, TestServer, api, test_config};

const RETURNS_SITE_GLN: &str = "0614141000029";

fn raw(serial: &str, lot: &str, exp: &str) -> Vec<u8> {
    format!("01{GTIN}17{exp}10{lot}\u{1d}21{serial}").into_bytes()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Waits until `scan`'s verification is decided and applied (or `want_pending`).
async fn wait_record(
    db: &DatabaseConnection,
    scan: &str,
    settled: impl Fn(&return_verification::Model) -> bool,
) -> anyhow::Result<return_verification::Model> {
    for _ in 0..200 {
        if let Some(r) = return_verification::Entity::find()
            .filter(return_verification::Column::ScanId.eq(scan))
            .one(db)
            .await?
            && settled(&r)
        {
            return Ok(r);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("verification of {scan} never settled")
}

fn applied(r: &return_verification::Model) -> bool {
    r.applied_at_ms.is_some()
}

async fn status_of(db: &DatabaseConnection, serial: &str) -> anyhow::Result<String> {
    let key = UnitKey::sgtin(GTIN, serial)?.key();
    Ok(trace_object::Entity::find()
        .filter(trace_object::Column::EpcKey.eq(key))
        .one(db)
        .await?
        .map(|o| o.status.as_str().to_owned())
        .unwrap_or_default())
}

/// (bizStep, disposition) of every event of a scan, in order.
async fn events_of(db: &DatabaseConnection, scan: &str) -> anyhow::Result<Vec<(String, String)>> {
    Ok(epcis_event::Entity::find()
        .filter(epcis_event::Column::ScanId.eq(scan))
        .all(db)
        .await?
        .into_iter()
        .map(|e| {
            (
                e.biz_step.unwrap_or_default(),
                e.disposition.unwrap_or_default(),
            )
        })
        .collect())
}

/// The JSON-LD body of a scan's event of `step`.
async fn decision_event(
    db: &DatabaseConnection,
    scan: &str,
    step: &str,
) -> anyhow::Result<serde_json::Value> {
    let e = epcis_event::Entity::find()
        .filter(epcis_event::Column::ScanId.eq(scan))
        .filter(epcis_event::Column::BizStep.eq(step))
        .one(db)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no {step} event for {scan}"))?;
    Ok(serde_json::from_str(&e.body)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_packs_are_verified_online_and_after_sync() -> anyhow::Result<()> {
    // The manufacturer's responder.
    let mfr_db = TestDb::new().await?;
    let mfr = TestServer::start(test_config(mfr_db.url())).await?;
    lms::seed(&mfr.db).await?;
    // The wholesaler, routing GTINs 003… to the manufacturer.
    let ws_db = TestDb::new().await?;
    let mut cfg = test_config(ws_db.url());
    cfg.verification.routes = vec![VerificationRoute {
        gtin_prefix: "003".into(),
        url: mfr.url("/verify"),
        api_key: Some(KEY.into()),
    }];
    cfg.verification.peer_timeout_ms = 500;
    cfg.verification.peer_retries = 1;
    cfg.verification.retry_pending_secs = 1;
    let ws = TestServer::start(cfg).await?;
    demo::seed(&ws.db).await?;
    let base = ws.base_url.clone();
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let task = api::create_task(
        &base,
        &manager,
        &json!({"kind": "returns", "site": RETURNS_SITE_GLN, "refs": {"rma": "RMA-77"}}),
    )
    .await?;

    // Online: each pack is verified within the scan's feedback.
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_owned();
    let (b, t) = (base.clone(), task.clone());
    let (session, online) = blocking(move || {
        let mut s = Session::open(&path, SessionOptions::default())?;
        s.login(&b, "returns", demo::LOGINS[1].password, demo::DEVICES[2].0)?;
        s.open_task(&t)?;
        s.sync_now()?;
        s.set_location(Some("RET-01".to_owned()))?;
        let mut out = Vec::new();
        for (serial, lot) in [("OK1", "LOT42"), ("ILL1", "LOT42"), ("REC1", "LOTR")] {
            let f = s.record_scan(&t, &raw(serial, lot, "300131"))?;
            let check = s.verify_return(&t, &f)?;
            out.push((serial, f.scan_id.to_string(), check));
        }
        Ok((s, out))
    })
    .await?;
    let results: Vec<(&str, &str)> = online
        .iter()
        .map(|(s, _, c)| (*s, c.result.as_str()))
        .collect();
    assert_eq!(
        results,
        [
            ("OK1", "verified"),
            ("ILL1", "not_verified"),
            ("REC1", "review")
        ]
    );
    assert_eq!(
        online[1].2.failure_reason.as_deref(),
        Some("Not_for_re-distribution")
    );
    assert_eq!(online[1].2.additional_info.as_deref(), Some("Illegitimate"));
    assert_eq!(online[2].2.additional_info.as_deref(), Some("Recalled"));

    // Offline: two packs recorded without a check, then synced; the server verifies them.
    let t = task.clone();
    let (mut session, offline) = blocking(move || {
        let mut s = session;
        let a = s
            .record_scan(&t, &raw("OK2", "LOT42", "300131"))?
            .scan_id
            .to_string();
        let b = s
            .record_scan(&t, &raw("NOPE", "LOT42", "300131"))?
            .scan_id
            .to_string();
        s.sync_now()?;
        Ok((s, [a, b]))
    })
    .await?;

    // Every decision is applied once the scan is projected.
    let mut records = Vec::new();
    for (_, scan, _) in &online {
        records.push(wait_record(&ws.db, scan, applied).await?);
    }
    for scan in &offline {
        records.push(wait_record(&ws.db, scan, applied).await?);
    }
    let states: Vec<&str> = records.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(
        states,
        [
            "sellable",
            "quarantined",
            "review",
            "sellable",
            "quarantined"
        ]
    );
    assert_eq!(
        records[4].failure_reason.as_deref(),
        Some("No_match_GTIN_Serial")
    );
    assert!(
        records
            .iter()
            .all(|r| r.responder.as_deref() == Some(mfr.url("/verify").as_str()))
    );

    // Stock: verified packs sellable, the others held.
    for (serial, want) in [
        ("OK1", "in_stock"),
        ("ILL1", "quarantined"),
        ("REC1", "quarantined"),
        ("OK2", "in_stock"),
        ("NOPE", "quarantined"),
    ] {
        assert_eq!(status_of(&ws.db, serial).await?, want, "{serial}");
    }
    // EPCIS: the pack's commissioning with lot and expiry (first seen here), receipt as
    // returned, then exactly one inspecting or holding event.
    let ok1 = &online[0].1;
    assert_eq!(
        events_of(&ws.db, ok1).await?,
        [
            ("commissioning".to_owned(), "active".to_owned()),
            ("receiving".to_owned(), "returned".to_owned()),
            (
                "inspecting".to_owned(),
                "sellable_not_accessible".to_owned()
            )
        ]
    );
    assert_eq!(
        events_of(&ws.db, &online[1].1).await?.last().cloned(),
        Some(("holding".to_owned(), "no_pedigree_match".to_owned()))
    );
    assert_eq!(
        events_of(&ws.db, &online[2].1).await?.last().cloned(),
        Some(("holding".to_owned(), "recalled".to_owned()))
    );
    // The recall stays on the pack (primer §5.10), under the default policy too.
    let recalled = decision_event(&ws.db, &online[2].1, "holding").await?;
    assert_eq!(
        recalled["persistentDisposition"],
        json!({"set": ["recalled"]}),
        "{recalled}"
    );
    // Decisions are made where the pack is (primer §5.8): a held pack stays in the
    // returns area, a verified one rejoins the site's stock.
    let returns_area = format!("https://id.gs1.org/414/{RETURNS_SITE_GLN}/254/RET-01");
    let site = format!("https://id.gs1.org/414/{RETURNS_SITE_GLN}");
    let held = decision_event(&ws.db, &online[1].1, "holding").await?;
    assert_eq!(
        (&held["readPoint"]["id"], &held["bizLocation"]["id"]),
        (&json!(returns_area), &json!(returns_area)),
        "{held}"
    );
    let verified = decision_event(&ws.db, ok1, "inspecting").await?;
    assert_eq!(
        (&verified["readPoint"]["id"], &verified["bizLocation"]["id"]),
        (&json!(returns_area), &json!(site)),
        "{verified}"
    );
    // Exceptions for the manager.
    let mut kinds: Vec<String> = trace_exception::Entity::find()
        .all(&ws.db)
        .await?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "return_needs_review",
            "return_not_verified",
            "return_not_verified"
        ]
    );

    // The investigation record: who, what, when, and the LMS exchange itself.
    let (status, body) = api::get_json(
        &base,
        &manager,
        &format!("/api/v1/returns/verifications/{}", online[1].1),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["verification"]["state"], "quarantined");
    assert_eq!(
        body["verification"]["user_id"].as_str().map(str::is_empty),
        Some(false)
    );
    let ex = &body["exchanges"][0];
    assert_eq!(
        (ex["direction"].as_str(), ex["http_status"].as_i64()),
        (Some("outbound"), Some(200))
    );
    assert!(
        ex["request"]
            .as_str()
            .unwrap_or("")
            .contains("/ser/ILL1?exp=300131&linkType=verificationService")
    );
    assert!(
        ex["response_body"]
            .as_str()
            .unwrap_or("")
            .contains("Illegitimate")
    );
    let (status, list) = api::get_json(
        &base,
        &manager,
        "/api/v1/returns/verifications?state=quarantined",
    )
    .await?;
    assert_eq!(
        (status, list["items"].as_array().map(Vec::len)),
        (200, Some(2))
    );

    // The scanner sees the server's outcome after its next sync.
    let (t, offline_ids) = (task.clone(), offline.clone());
    let shown = blocking(move || {
        let mut out = Vec::new();
        for _ in 0..100 {
            session.sync_now()?;
            out = offline_ids
                .iter()
                .map(|id| {
                    session
                        .scan_result(&t, id)
                        .ok()
                        .flatten()
                        .and_then(|r| r.verification)
                })
                .collect::<Vec<_>>();
            if out.iter().all(|v| {
                v.as_ref()
                    .is_some_and(|v| *v != VerificationOutcome::Pending)
            }) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok((session, out))
    })
    .await?;
    let (session, shown) = shown;
    assert_eq!(
        shown,
        [
            Some(VerificationOutcome::Verified.into()),
            Some(VerificationOutcome::NotVerified.into())
        ]
    );

    // With the manufacturer's responder down, a synced return stays pending (not
    // sellable), says why, and is retried.
    mfr.stop().await?;
    let t = task.clone();
    let down_scan = blocking(move || {
        let mut s = session;
        let f = s.record_scan(&t, &raw("SUS1", "LOT42", "300131"))?;
        let check = s.verify_return(&t, &f)?;
        anyhow::ensure!(check.result == "pending", "{check:?}");
        s.sync_now()?;
        Ok(f.scan_id.to_string())
    })
    .await?;
    let r = wait_record(&ws.db, &down_scan, |r| r.attempts >= 2).await?;
    assert_eq!(r.state.as_str(), "pending");
    assert!(r.last_error.is_some(), "{r:?}");
    assert_eq!(status_of(&ws.db, "SUS1").await?, "returned");
    // Returns decisions moved the stock counts with the packs' status.
    swt_tests::stock::assert_consistent(&ws.db).await?;

    ws.stop().await?;
    ws_db.close().await?;
    mfr_db.close().await
}

/// A wholesaler that holds manufacturer data for `GTIN` itself (so returns are verified
/// locally), with a returns task; returns the task id.
async fn wholesaler_with_local_data(db: &TestDb) -> anyhow::Result<(TestServer, String)> {
    let mut cfg = test_config(db.url());
    cfg.verification.retry_pending_secs = 1;
    let ws = TestServer::start(cfg).await?;
    demo::seed(&ws.db).await?;
    let serial = |s: &str, status: &str| verification_serial::ActiveModel {
        organisation_id: Set(demo::ORG_ID.into()),
        gtin: Set(GTIN.into()),
        serial: Set(s.into()),
        lot: Set("LOT42".into()),
        expiry: Set("300131".into()),
        status: Set(status.into()),
        source: Set("test".into()),
        updated_at_ms: Set(0),
    };
    verification_serial::Entity::insert_many([
        serial("OK1", "active"),
        serial("OK2", "active"),
        serial("SUS1", "suspect"),
    ])
    .exec(&ws.db)
    .await?;
    let manager = api::login(&ws.base_url, "manager", demo::LOGINS[2].password).await?;
    let task = api::create_task(
        &ws.base_url,
        &manager,
        &json!({"kind": "returns", "site": RETURNS_SITE_GLN, "refs": {"rma": "RMA-19"}}),
    )
    .await?;
    Ok((ws, task))
}

/// The returns clerk's scanner at the returns site, with the task synced.
async fn returns_scanner(base: &str, device: &str) -> anyhow::Result<Scanner> {
    let b = base.to_owned();
    let d = device.to_owned();
    blocking(move || {
        let mut s = Scanner::sign_in(&b, "returns", demo::LOGINS[1].password, &d, None)?;
        s.sync()?;
        Ok(s)
    })
    .await
}

/// `POST /api/v1/returns/verify` for pack `serial` (lot LOT42, expiry 300131).
async fn verify(
    base: &str,
    token: &str,
    task: &str,
    scan: &ScanId,
    serial: &str,
) -> anyhow::Result<(u16, serde_json::Value)> {
    let (status, body, _) = api::post_json(
        base,
        "/api/v1/returns/verify",
        Some(token),
        &[],
        &json!({"document_id": task, "scan_id": scan.as_str(), "gtin": GTIN,
                "serial": serial, "lot": "LOT42", "expiry": "300131"}),
    )
    .await?;
    Ok((status, body))
}

/// Records a returns scan of `serial` under `id` and syncs it.
async fn sync_return(
    scanner: Scanner,
    task: &str,
    id: ScanId,
    serial: &str,
) -> anyhow::Result<Scanner> {
    let (t, serial) = (task.to_owned(), serial.to_owned());
    blocking(move || {
        let mut s = scanner;
        let mut scan = s.pack_scan(GTIN, &serial, "LOT42", "300131");
        scan.id = id;
        scan.action = Action::Return;
        s.store.record_scan(&t, &scan)?;
        let report = s.sync()?;
        anyhow::ensure!(report.refused.is_empty(), "{report:?}");
        Ok(s)
    })
    .await
}

/// Syncs until the document carries a settled verification result for `id`.
async fn document_result(
    scanner: Scanner,
    task: &str,
    id: &ScanId,
) -> anyhow::Result<(Scanner, swt_core::doc::ScanResult)> {
    let (t, id) = (task.to_owned(), id.clone());
    blocking(move || {
        let mut s = scanner;
        for _ in 0..100 {
            s.sync()?;
            let r = s.store.doc(&t).and_then(|d| d.result(&id).ok().flatten());
            if let Some(r) = r
                && r.verification
                    .as_ref()
                    .is_some_and(|v| *v != VerificationOutcome::Pending)
            {
                return Ok((s, r));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        anyhow::bail!("no settled result for {id} in the document")
    })
    .await
}

/// Open exception kinds linked to a scan.
async fn open_exceptions_of(db: &DatabaseConnection, scan: &str) -> anyhow::Result<Vec<String>> {
    let mut kinds = Vec::new();
    for link in trace_exception_scan::Entity::find()
        .filter(trace_exception_scan::Column::ScanId.eq(scan))
        .all(db)
        .await?
    {
        if let Some(e) = trace_exception::Entity::find_by_id(link.exception_id)
            .one(db)
            .await?
            && e.state == "open"
        {
            kinds.push(e.kind);
        }
    }
    kinds.sort();
    Ok(kinds)
}

/// Every event naming a pack, by (bizStep, disposition).
async fn events_naming(
    db: &DatabaseConnection,
    serial: &str,
) -> anyhow::Result<Vec<(String, String)>> {
    let epc = UnitKey::sgtin(GTIN, serial)?.to_digital_link()?;
    Ok(epcis_event::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .filter(|e| e.body.contains(epc.as_str()))
        .map(|e| {
            (
                e.biz_step.unwrap_or_default(),
                e.disposition.unwrap_or_default(),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_is_not_applied_to_another_pack_synced_under_its_scan_id() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let (ws, task) = wholesaler_with_local_data(&db).await?;
    let base = ws.base_url.clone();
    let scanner = returns_scanner(&base, demo::DEVICES[2].0).await?;
    let token = scanner.tokens.access_token.clone();

    // Pack A (OK1) verified online under S…
    let s = scanner.scan_id();
    let (status, body) = verify(&base, &token, &task, &s, "OK1").await?;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("verified")),
        "{body}"
    );
    // …then S syncs carrying pack B (OK2), a pack that would itself verify.
    let scanner = sync_return(scanner, &task, s.clone(), "OK2").await?;

    let r = wait_record(&ws.db, s.as_str(), |r| r.mismatch.is_some() && applied(r)).await?;
    // The record now stands for what was scanned, verified afresh; the verdict for A is
    // kept for the investigation.
    assert_eq!(r.serial, "OK2");
    assert!(r.exchange_pk.is_some(), "{r:?}");
    let set_aside: serde_json::Value = serde_json::from_str(r.mismatch.as_deref().unwrap_or(""))?;
    assert_eq!(set_aside["verified"]["binding"]["serial"], "OK1");
    assert_eq!(set_aside["verified"]["state"], "sellable");
    assert_eq!(set_aside["scanned"]["serial"], "OK2");

    // Nothing sellable: B held, A never received, no event for A at all.
    assert_eq!(status_of(&ws.db, "OK2").await?, "quarantined");
    assert_eq!(status_of(&ws.db, "OK1").await?, "");
    assert_eq!(events_naming(&ws.db, "OK1").await?, []);
    let events = events_of(&ws.db, s.as_str()).await?;
    assert_eq!(
        events,
        [
            ("commissioning".to_owned(), "active".to_owned()),
            ("receiving".to_owned(), "returned".to_owned()),
            ("holding".to_owned(), "non_sellable_other".to_owned())
        ]
    );
    assert_eq!(
        open_exceptions_of(&ws.db, s.as_str()).await?,
        ["return_identifiers_mismatch"]
    );

    // The clerk's scanner is told, and so is whoever reads the investigation record.
    let (_scanner, result) = document_result(scanner, &task, &s).await?;
    assert_eq!(
        result.verification.as_ref().map(Code::as_str),
        Some("identifiers_mismatch")
    );
    assert!(
        result
            .exceptions
            .contains(&ExceptionKind::ReturnIdentifiersMismatch.into()),
        "{result:?}"
    );
    let (status, detail) =
        api::get_json(&base, &token, &format!("/api/v1/returns/verifications/{s}")).await?;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["verification"]["result"], "identifiers_mismatch");
    assert_eq!(
        detail["verification"]["mismatch"]["verified"]["binding"]["serial"],
        "OK1"
    );

    ws.stop().await?;
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_scan_id_is_not_taken_by_another_device_or_user() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let (ws, task) = wholesaler_with_local_data(&db).await?;
    let base = ws.base_url.clone();
    let owner = returns_scanner(&base, demo::DEVICES[2].0).await?;
    let s = owner.scan_id();
    let (status, body) = verify(&base, &owner.tokens.access_token, &task, &s, "OK1").await?;
    assert_eq!(status, 200, "{body}");
    let before = wait_record(&ws.db, s.as_str(), |_| true).await?;

    // The same user on another scanner of the returns site, and another user on another
    // scanner; both ask under the owner's ids.
    let admin = api::login(&base, "admin", demo::LOGINS[3].password).await?;
    let second = api::register_device(&base, &admin, demo::SITE_IDS[1], "returns 2").await?;
    let b = base.clone();
    let (same_user, other_user) = blocking(move || {
        let same = Scanner::sign_in(&b, "returns", demo::LOGINS[1].password, &second, None)?;
        let other = Scanner::sign_in(
            &b,
            "manager",
            demo::LOGINS[2].password,
            demo::DEVICES[0].0,
            None,
        )?;
        Ok((same, other))
    })
    .await?;
    // An id outside the caller's own id space (no actor prefix): refused, no record.
    let plain = ScanId::parse("0193f5a0c0de7000800000000000abcd")?;
    let (status, body) = verify(&base, &owner.tokens.access_token, &task, &plain, "OK1").await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("scan_id_not_yours")),
        "{body}"
    );
    for caller in [&same_user, &other_user] {
        let token = &caller.tokens.access_token;
        // An id in the owner's namespace: not theirs, whatever it carries.
        for serial in ["OK1", "OK2"] {
            let (status, body) = verify(&base, token, &task, &s, serial).await?;
            assert_eq!(
                (status, body["code"].as_str()),
                (403, Some("scan_id_not_yours")),
                "{body}"
            );
        }
    }
    // Another user signed in on the owner's own scanner: the id is in that device's
    // space, but another user's verdict holds it: taken.
    let b = base.clone();
    let borrower = blocking(move || {
        Scanner::sign_in(
            &b,
            "manager",
            demo::LOGINS[2].password,
            demo::DEVICES[2].0,
            None,
        )
    })
    .await?;
    let (status, body) = verify(&base, &borrower.tokens.access_token, &task, &s, "OK1").await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("scan_id_taken")),
        "{body}"
    );
    // Another scanner's future id: refused before any record exists.
    let owner_next = owner.scan_id();
    let (status, body) = verify(
        &base,
        &other_user.tokens.access_token,
        &task,
        &owner_next,
        "OK2",
    )
    .await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("scan_id_not_yours")),
        "{body}"
    );
    assert!(
        return_verification::Entity::find()
            .filter(return_verification::Column::ScanId.eq(owner_next.as_str()))
            .one(&ws.db)
            .await?
            .is_none()
    );
    // The owner itself may not re-bind its scan id to other identifiers either.
    let (status, body) = verify(&base, &owner.tokens.access_token, &task, &s, "OK2").await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("identifiers_differ")),
        "{body}"
    );
    // A sign-in without a device cannot verify: no scan could ever match it.
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let fresh = ScanId::parse("0193f5a0c0de7000800000000000abce")?;
    let (status, body) = verify(&base, &manager, &task, &fresh, "OK1").await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("device_required")),
        "{body}"
    );

    // Nothing changed.
    let after = wait_record(&ws.db, s.as_str(), |_| true).await?;
    assert_eq!(after, before);
    assert!(
        return_verification::Entity::find()
            .filter(return_verification::Column::ScanId.eq(plain.as_str()))
            .one(&ws.db)
            .await?
            .is_none()
    );

    ws.stop().await?;
    db.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verdict_is_applied_to_the_same_pack_synced_by_the_same_scanner() -> anyhow::Result<()> {
    let db = TestDb::new().await?;
    let (ws, task) = wholesaler_with_local_data(&db).await?;
    let base = ws.base_url.clone();
    let scanner = returns_scanner(&base, demo::DEVICES[2].0).await?;
    let token = scanner.tokens.access_token.clone();
    let s = scanner.scan_id();
    let (status, body) = verify(&base, &token, &task, &s, "OK1").await?;
    assert_eq!(
        (status, body["result"].as_str()),
        (200, Some("verified")),
        "{body}"
    );
    // Asking again is answered from the record.
    let (status, again) = verify(&base, &token, &task, &s, "OK1").await?;
    assert_eq!(
        (status, &again["attempts"]),
        (200, &body["attempts"]),
        "{again}"
    );
    let scanner = sync_return(scanner, &task, s.clone(), "OK1").await?;

    let r = wait_record(&ws.db, s.as_str(), applied).await?;
    assert_eq!(
        (r.state.as_str(), r.mismatch.as_deref()),
        ("sellable", None)
    );
    assert!(r.bound_at_ms.is_some());
    let records = return_verification::Entity::find()
        .filter(return_verification::Column::ScanId.eq(s.as_str()))
        .all(&ws.db)
        .await?;
    assert_eq!(records.len(), 1);
    assert_eq!(status_of(&ws.db, "OK1").await?, "in_stock");
    assert_eq!(
        events_of(&ws.db, s.as_str()).await?,
        [
            ("commissioning".to_owned(), "active".to_owned()),
            ("receiving".to_owned(), "returned".to_owned()),
            (
                "inspecting".to_owned(),
                "sellable_not_accessible".to_owned()
            )
        ]
    );
    assert_eq!(
        open_exceptions_of(&ws.db, s.as_str()).await?,
        Vec::<String>::new()
    );
    let (_scanner, result) = document_result(scanner, &task, &s).await?;
    assert_eq!(
        result.verification.as_ref().map(Code::as_str),
        Some("verified")
    );

    ws.stop().await?;
    db.close().await
}
