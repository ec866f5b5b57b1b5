//! The saleable-returns workflow end to end, on both back-ends: a returns clerk's scanner
//! (the real core session) scans returned packs at a wholesaler's `swt`; packs are
//! verified with the manufacturer's own `swt` acting as LMS responder — online within the
//! scan's feedback, or, for scans recorded offline, by the server after sync with the
//! outcome written back into the task document. Verified packs become sellable stock,
//! failed ones are quarantined with an exception and an investigation record; a pack
//! whose responder is down stays pending.

use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;
use swt_core::session::{Session, SessionOptions};
use swt_server::config::VerificationRoute;
use swt_server::db::entity::{epcis_event, return_verification, trace_exception, trace_object};
use swt_server::demo;
use swt_server::epcis::ObjectKey;
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
    let key = ObjectKey::sgtin(GTIN, serial)?.key();
    Ok(trace_object::Entity::find()
        .filter(trace_object::Column::EpcKey.eq(key))
        .one(db)
        .await?
        .map(|o| o.status)
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
        s.sync_now()?;
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
    // EPCIS: receipt as returned, then exactly one inspecting or holding event.
    let ok1 = &online[0].1;
    assert_eq!(
        events_of(&ws.db, ok1).await?,
        [
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
            if out
                .iter()
                .all(|v| v.as_deref().is_some_and(|v| v != "pending"))
            {
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
        [Some("verified".to_owned()), Some("not_verified".to_owned())]
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
    assert_eq!(r.state, "pending");
    assert!(r.last_error.is_some(), "{r:?}");
    assert_eq!(status_of(&ws.db, "SUS1").await?, "returned");

    ws.stop().await?;
    ws_db.close().await?;
    mfr_db.close().await
}
