//! Scanners sync task documents with the real server over HTTP, on both back-ends:
//! scans recorded offline arrive; forged or misattributed changes are refused whole and
//! logged for managers; another organisation sees nothing; a scanner offline while the
//! server restarts syncs afterwards.

use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;
use swt_core::codes::Code;
use swt_core::doc::ProjectionOutcome;
use swt_server::db::entity::{app_user, organisation};
use swt_server::demo;
use swt_tests::api::{self, Scanner};
use swt_tests::{TestDb, TestServer, test_config};

const GTIN: &str = "00361500231012";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// Polls a serial's history until the projector has written it (it runs beside the API).
async fn wait_for_history(base: &str, token: &str, id: &str) -> anyhow::Result<serde_json::Value> {
    for _ in 0..100 {
        let (status, body) =
            api::get_json(base, token, &format!("/api/v1/trace/objects/{id}/history")).await?;
        if status == 200 && body["items"].as_array().is_some_and(|a| !a.is_empty()) {
            return Ok(body);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("{id} was never projected")
}

/// Waits until the task's merged scans are projected and their outcomes written back
/// into the document (events become visible a moment before the write-back).
async fn wait_for_projection(base: &str, token: &str, task: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        let (status, body) = api::get_json(base, token, &format!("/api/v1/tasks/{task}")).await?;
        if status == 200 && body["projection_pending"] == false {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    anyhow::bail!("task {task} was never fully projected")
}

fn picker_password() -> &'static str {
    demo::LOGINS[0].password
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_sync_and_forgeries_are_refused() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let task = api::create_task(
        &base,
        &manager,
        &json!({
            "kind": "picking",
            "site": "0614141000012",
            "refs": {"order": "SO-1001"},
            "expected": {"lines": [{"gtin": GTIN, "quantity": 3}]}
        }),
    )
    .await?;

    // A scanner learns the task, records three picks offline, then syncs them.
    let (b, t) = (base.clone(), task.clone());
    let scanner = blocking(move || {
        let mut s = Scanner::sign_in(&b, "picker", picker_password(), demo::DEVICES[0].0, None)?;
        let first = s.sync()?;
        anyhow::ensure!(first.new_tasks == vec![t.clone()], "{first:?}");
        let header = s.store.doc(&t).map(|d| d.header());
        anyhow::ensure!(
            matches!(header, Some(Ok(ref h)) if h.refs.get("order").map(String::as_str) == Some("SO-1001")),
            "the task's header arrived: {header:?}"
        );
        for serial in ["S1", "S2", "S3"] {
            let scan = s.pack_scan(GTIN, serial, "L1", "290131");
            s.store.record_scan(&t, &scan)?;
        }
        let report = s.sync()?;
        anyhow::ensure!(report.in_sync.contains(&t) && report.refused.is_empty(), "{report:?}");
        Ok(s)
    })
    .await?;

    let (status, detail) = api::get_json(&base, &manager, &format!("/api/v1/tasks/{task}")).await?;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["scan_count"], 3, "{detail}");

    // The projector turns the merged picks into events and state, and writes each scan's
    // outcome back into the document; the scanner sees it after its next sync.
    let history = wait_for_history(&base, &manager, &format!("sgtin:{GTIN}:S2")).await?;
    let entries = history["items"].as_array().cloned().unwrap_or_default();
    // The pick, after the commissioning that records the pack's lot and expiry.
    let steps: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["biz_step"].as_str())
        .collect();
    assert_eq!(steps, ["commissioning", "picking"], "{history}");
    let (_, object) = api::get_json(
        &base,
        &manager,
        &format!("/api/v1/trace/objects/sgtin:{GTIN}:S2"),
    )
    .await?;
    assert_eq!(object["status"], "picked", "{object}");
    wait_for_projection(&base, &manager, &task).await?;
    let t = task.clone();
    let mut scanner = scanner;
    let outcomes = blocking(move || {
        scanner.sync()?;
        let doc = scanner
            .store
            .doc(&t)
            .ok_or_else(|| anyhow::anyhow!("doc"))?;
        let mut outcomes = Vec::new();
        for scan in doc.scans() {
            let scan = scan?;
            outcomes.push(doc.result(&scan.id)?.and_then(|r| r.projection));
        }
        Ok((scanner, outcomes))
    })
    .await?;
    let (scanner, outcomes) = outcomes;
    assert_eq!(
        outcomes,
        vec![Some(Code::Known(ProjectionOutcome::Projected)); 3]
    );

    // A client writing with an actor other than its device's is refused whole.
    let (b, t) = (base.clone(), task.clone());
    let forged = blocking(move || {
        let mut s = Scanner::sign_in(
            &b,
            "picker",
            picker_password(),
            demo::DEVICES[1].0,
            Some(automerge::ActorId::random()),
        )?;
        s.sync()?;
        let scan = s.pack_scan(GTIN, "S9", "L1", "290131");
        s.store.record_scan(&t, &scan)?;
        let report = s.sync()?;
        Ok(report)
    })
    .await?;
    assert_eq!(
        forged.refused.get(&task).map(String::as_str),
        Some("foreign_actor"),
        "{forged:?}"
    );

    // A scan attributed to another user is refused too, and nothing of it lands.
    let (b, t) = (base.clone(), task.clone());
    let _ = &b;
    let mut scanner = scanner;
    let wrong_user = blocking(move || {
        let mut scan = scanner.pack_scan(GTIN, "S4", "L1", "290131");
        scan.user = "someone-else".into();
        scanner.store.record_scan(&t, &scan)?;
        Ok(scanner.sync()?)
    })
    .await?;
    assert_eq!(
        wrong_user.refused.get(&task).map(String::as_str),
        Some("wrong_user"),
        "{wrong_user:?}"
    );
    let (_, detail) = api::get_json(&base, &manager, &format!("/api/v1/tasks/{task}")).await?;
    assert_eq!(
        detail["scan_count"], 3,
        "refused messages applied nothing: {detail}"
    );

    let (status, refusals) = api::get_json(&base, &manager, "/api/v1/sync/refusals").await?;
    assert_eq!(status, 200);
    let reasons: Vec<&str> = refusals
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["reason"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        reasons.contains(&"foreign_actor") && reasons.contains(&"wrong_user"),
        "{refusals}"
    );

    // A picker may not read the refusal log; nobody without a token reads anything.
    let picker = api::login(&base, "picker", picker_password()).await?;
    assert_eq!(
        api::get_json(&base, &picker, "/api/v1/sync/refusals")
            .await?
            .0,
        403
    );
    assert_eq!(
        api::get_json(&base, "not-a-token", "/api/v1/tasks")
            .await?
            .0,
        401
    );

    // Another organisation's manager sees nothing of it: 404, not 403.
    let other_org = "0193f5a0-0000-7000-8000-0000000009aa";
    organisation::Entity::insert(organisation::ActiveModel {
        id: Set(other_org.into()),
        name: Set("Other 3PL".into()),
        gln: Set(None),
        created_at: Set(chrono::Utc::now()),
    })
    .exec(&server.db)
    .await?;
    app_user::Entity::insert(app_user::ActiveModel {
        id: Set("0193f5a0-0000-7000-8000-0000000009ab".into()),
        organisation_id: Set(other_org.into()),
        site_id: Set(None),
        username: Set("other-manager".into()),
        display_name: Set("Other manager".into()),
        role: Set("manager".into()),
        password_hash: Set(swt_server::auth::password::hash("other-manager-pass")?),
        disabled: Set(false),
        created_at: Set(chrono::Utc::now()),
    })
    .exec(&server.db)
    .await?;
    let other = api::login(&base, "other-manager", "other-manager-pass").await?;
    assert_eq!(
        api::get_json(&base, &other, &format!("/api/v1/tasks/{task}"))
            .await?
            .0,
        404
    );
    let (_, list) = api::get_json(&base, &other, "/api/v1/tasks?status=any").await?;
    assert_eq!(list, json!([]));
    let (_, refusals) = api::get_json(&base, &other, "/api/v1/sync/refusals").await?;
    assert_eq!(refusals, json!([]));

    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_scans_sync_after_the_server_comes_back() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let task = api::create_task(
        &base,
        &manager,
        &json!({"kind": "receiving", "site": "0614141000012", "refs": {"po": "PO-7"}}),
    )
    .await?;
    let (b, t) = (base.clone(), task.clone());
    let mut scanner = blocking(move || {
        let mut s = Scanner::sign_in(&b, "picker", picker_password(), demo::DEVICES[0].0, None)?;
        s.sync()?;
        anyhow::ensure!(s.store.doc(&t).is_some());
        Ok(s)
    })
    .await?;

    server.stop().await?;
    // Offline: scans are recorded; a sync attempt fails as a transient network error.
    let t = task.clone();
    let scanner_back = blocking(move || {
        for i in 0..25 {
            let scan = scanner.pack_scan(GTIN, &format!("OFF{i}"), "L2", "300630");
            scanner.store.record_scan(&t, &scan)?;
        }
        let err = scanner.sync().err();
        anyhow::ensure!(err.as_ref().is_some_and(|e| e.is_transient()), "{err:?}");
        Ok(scanner)
    })
    .await?;
    scanner = scanner_back;

    // The server comes back (on another port); the scanner points at it and syncs.
    let server = TestServer::start(test_config(tdb.url())).await?;
    let base = server.base_url.clone();
    let t = task.clone();
    let report = blocking(move || {
        scanner.client = swt_core::sync::Client::new(&base, std::time::Duration::from_secs(30));
        Ok(scanner.sync()?)
    })
    .await?;
    assert!(report.in_sync.contains(&task), "{report:?}");
    let manager = api::login(&server.base_url, "manager", demo::LOGINS[2].password).await?;
    let (_, detail) =
        api::get_json(&server.base_url, &manager, &format!("/api/v1/tasks/{t}")).await?;
    assert_eq!(detail["scan_count"], 25, "{detail}");
    server.stop().await?;
    tdb.close().await
}
