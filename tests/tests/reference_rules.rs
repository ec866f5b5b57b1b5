//! Issue #20, points 1 and 2, through the real server and the real scanner session, on
//! both back-ends: reference data served by version (full, delta, current), scoped to the
//! organisation and the caller's site, and loaded by API; a scanner fetching it at every
//! sync and judging offline with it; the server judging the same scans with the same
//! rules, and telling the manager when it overturns a verdict the scanner gave offline.

use std::time::Duration;

use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};
use swt_core::codes::Code;
use swt_core::doc::{ExceptionKind, Issue};
use swt_core::rules::{Reason, Verdict};
use swt_core::session::{Session, SessionOptions};
use swt_server::db::entity::{verification_lot, verification_serial};
use swt_server::demo;
use swt_tests::api;
use swt_tests::{TestDb, TestServer, test_config};

/// A demo product (in the product master).
const GTIN: &str = "00361500231012";
const SITE_GLN: &str = "0614141000012";

fn site() -> &'static str {
    demo::SITE_IDS[0]
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn start() -> anyhow::Result<(TestDb, TestServer, String)> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let manager = api::login(&server.base_url, "manager", demo::LOGINS[2].password).await?;
    Ok((tdb, server, manager))
}

async fn reference(base: &str, token: &str, since: Option<u64>) -> anyhow::Result<(u16, Value)> {
    let path = match since {
        Some(v) => format!("/api/v1/reference/{}?since={v}", site()),
        None => format!("/api/v1/reference/{}", site()),
    };
    api::get_json(base, token, &path).await
}

async fn send(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut req = swt_tests::http::client()
        .request(method, format!("{base}{path}"))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// A held manufacturer serial and its lot, so recalls and statuses have something to
/// act on.
async fn hold(server: &TestServer, serial: &str, lot: &str) -> anyhow::Result<()> {
    verification_serial::Entity::insert(verification_serial::ActiveModel {
        organisation_id: Set(demo::ORG_ID.into()),
        gtin: Set(GTIN.into()),
        serial: Set(serial.into()),
        lot: Set(lot.into()),
        expiry: Set("301231".into()),
        status: Set("active".into()),
        source: Set("test".into()),
        updated_at_ms: Set(0),
    })
    .exec(&server.db)
    .await?;
    verification_lot::Entity::insert(verification_lot::ActiveModel {
        organisation_id: Set(demo::ORG_ID.into()),
        gtin: Set(GTIN.into()),
        lot: Set(lot.into()),
        recalled: Set(false),
        expiry_extended_to: Set(None),
        updated_at_ms: Set(0),
    })
    .exec(&server.db)
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_data_by_version() -> anyhow::Result<()> {
    let (tdb, server, manager) = start().await?;
    let base = server.base_url.clone();

    let (status, full) = reference(&base, &manager, None).await?;
    assert_eq!(status, 200, "{full}");
    assert_eq!(full["kind"], "full");
    assert_eq!(full["site"], site());
    assert!(full["products"][GTIN]["name"].is_string(), "{full}");
    let v1 = full["version"].as_u64().unwrap_or(0);
    assert!(v1 > 0);
    let (_, same) = reference(&base, &manager, Some(v1)).await?;
    assert_eq!(
        same,
        json!({"kind": "current", "site": site(), "version": v1})
    );

    // A product load: good entries written, a bad one reported by its position.
    let (status, report) = send(
        &base,
        &manager,
        reqwest::Method::PUT,
        "/api/v1/products",
        Some(json!([
            {"gtin": "09506000134352", "name": "Aspirin 100", "ndc": "0002-3227-30"},
            {"gtin": "09506000134353", "name": "bad check digit"},
            {"gtin": "4150123456782", "name": "Ibuprofen 400", "serialized": false}
        ])),
    )
    .await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["imported"].as_u64(), report["bad"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["bad_lines"][0]["line"], 2, "{report}");

    // Recall, serial status, policy and a location each move the version.
    hold(&server, "S-SUS", "L-REC").await?;
    let path = format!("/api/v1/serials/lots/{GTIN}/L-REC/recall");
    let (status, body) = send(&base, &manager, reqwest::Method::POST, &path, None).await?;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/v1/serials/{GTIN}/S-SUS/status");
    let (status, body) = send(
        &base,
        &manager,
        reqwest::Method::PUT,
        &path,
        Some(json!({"status": "suspect"})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/v1/sites/{}/expiry-policy", site());
    let policy = json!({"min_remaining_days": 90, "reject_expired": true});
    let (status, body) = send(&base, &manager, reqwest::Method::PUT, &path, Some(policy)).await?;
    assert_eq!(status, 200, "{body}");
    let path = format!("/api/v1/sites/{}/locations/A-01-02", site());
    let (status, body) = send(
        &base,
        &manager,
        reqwest::Method::PUT,
        &path,
        Some(json!({"name": "Aisle A, bay 1, shelf 2"})),
    )
    .await?;
    assert_eq!(status, 200, "{body}");

    let (_, delta) = reference(&base, &manager, Some(v1)).await?;
    assert_eq!(delta["kind"], "delta", "{delta}");
    assert_eq!(delta["from_version"], v1);
    let gtins: Vec<&str> = delta["upsert_products"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["gtin"].as_str())
        .collect();
    assert_eq!(gtins, ["04150123456782", "09506000134352"]);
    assert_eq!(
        delta["add_recalled_lots"],
        json!([{"gtin": GTIN, "lot": "L-REC"}])
    );
    assert_eq!(
        delta["add_blocked_serials"],
        json!([{"gtin": GTIN, "serial": "S-SUS"}])
    );
    assert_eq!(delta["expiry_policy"]["min_remaining_days"], 90);
    assert_eq!(delta["upsert_locations"][0]["code"], "A-01-02");
    // The delta brings a copy at v1 to exactly the full copy at its version.
    let (_, now) = reference(&base, &manager, None).await?;
    assert_eq!(now["version"], delta["to_version"]);
    let mut copy: swt_core::model::ReferenceData = serde_json::from_value(full)?;
    copy.apply_delta(&serde_json::from_value(delta.clone())?)?;
    assert_eq!(copy, serde_json::from_value(now)?);

    // Undoing a change is a removal in the next delta; nothing else moves.
    let v2 = delta["to_version"].as_u64().unwrap_or(0);
    let path = format!("/api/v1/serials/{GTIN}/S-SUS/status");
    send(
        &base,
        &manager,
        reqwest::Method::PUT,
        &path,
        Some(json!({"status": "active"})),
    )
    .await?;
    let (_, undo) = reference(&base, &manager, Some(v2)).await?;
    assert_eq!(
        undo["remove_blocked_serials"],
        json!([{"gtin": GTIN, "serial": "S-SUS"}])
    );
    assert_eq!(undo["upsert_products"], json!([]));

    // Refusals: another site of the caller's, an unknown site, a bad version.
    let picker = api::login(&base, "picker", demo::LOGINS[0].password).await?;
    let other = format!("/api/v1/reference/{}", demo::SITE_IDS[1]);
    let (status, body) = api::get_json(&base, &picker, &other).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("wrong_site")),
        "{body}"
    );
    let (status, _) = api::get_json(&base, &manager, "/api/v1/reference/no-such-site").await?;
    assert_eq!(status, 404);
    let path = format!("/api/v1/reference/{}?since=-1", site());
    let (status, body) = api::get_json(&base, &manager, &path).await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["code"].is_string(), "{body}");
    // A version the server never gave (another database's) gets a full copy.
    let (_, fut) = reference(&base, &manager, Some(1_000_000)).await?;
    assert_eq!(fut["kind"], "full");

    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_verdicts_use_synced_data_and_the_server_overturns_stale_ones() -> anyhow::Result<()>
{
    let (tdb, server, manager) = start().await?;
    let base = server.base_url.clone();
    hold(&server, "S1", "L-LATE").await?;
    hold(&server, "S9", "L-OLD").await?;
    let path = format!("/api/v1/serials/lots/{GTIN}/L-OLD/recall");
    send(&base, &manager, reqwest::Method::POST, &path, None).await?;
    let task = api::create_task(
        &base,
        &manager,
        &json!({"kind": "picking", "site": SITE_GLN, "refs": {"order": "SO-REF"}}),
    )
    .await?;

    let dir = tempfile::tempdir()?;
    let path = dir.path().to_owned();
    let (b, t) = (base.clone(), task.clone());
    let (session, offline) = blocking(move || {
        let mut s = Session::open(&path, SessionOptions::default())?;
        s.login(&b, "picker", demo::LOGINS[0].password, demo::DEVICES[0].0)?;
        s.open_task(&t)?;
        let report = s.sync_now()?;
        anyhow::ensure!(report.reference_version.is_some(), "{report:?}");
        let pack = |serial: &str, lot: &str| {
            format!("01{GTIN}1730123110{lot}\u{1d}21{serial}").into_bytes()
        };
        // Known product, lot recalled before the sync, unknown product: judged offline.
        let recalled = s.record_scan(&t, &pack("S9", "L-OLD"))?;
        let unknown = s.record_scan(&t, b"]d20100312345678906172912311051\x1d21X1")?;
        // Not recalled yet when scanned: the scanner accepts it.
        let late = s.record_scan(&t, &pack("S1", "L-LATE"))?;
        Ok((s, (recalled, unknown, late)))
    })
    .await?;
    let (recalled, unknown, late) = offline;
    assert_eq!(
        (recalled.verdict, recalled.reason),
        (Verdict::Reject, Reason::RecalledLot)
    );
    assert_eq!(unknown.reason, Reason::UnknownProduct, "{unknown:?}");
    assert_eq!(
        (late.verdict, late.reason),
        (Verdict::Accept, Reason::Ok),
        "{late:?}"
    );

    // The lot is recalled before the scanner syncs its pick.
    let path = format!("/api/v1/serials/lots/{GTIN}/L-LATE/recall");
    let (status, body) = send(&base, &manager, reqwest::Method::POST, &path, None).await?;
    assert_eq!(status, 200, "{body}");

    let (t, late_id, recalled_id) = (
        task.clone(),
        late.scan_id.to_string(),
        recalled.scan_id.to_string(),
    );
    let mut session = session;
    let mut results = None;
    for _ in 0..100 {
        let (s, r) = blocking({
            let (t, a, b) = (t.clone(), late_id.clone(), recalled_id.clone());
            move || {
                let mut s = session;
                s.sync_now()?;
                let r = (s.scan_result(&t, &a)?, s.scan_result(&t, &b)?);
                Ok((s, r))
            }
        })
        .await?;
        session = s;
        if let (Some(a), Some(b)) = &r
            && a.verdict.is_some()
            && b.projection.is_some()
        {
            results = Some((a.clone(), b.clone()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (late_result, recalled_result) =
        results.ok_or_else(|| anyhow::anyhow!("no results written back"))?;
    // The server's verdict reaches the scanner; the pick happened, so it is projected.
    assert_eq!(
        late_result.verdict.as_ref().map(Code::as_str),
        Some("reject"),
        "{late_result:?}"
    );
    assert_eq!(
        late_result.reason.as_ref().map(Code::as_str),
        Some("recalled_lot")
    );
    assert_eq!(
        late_result.projection.as_ref().map(Code::as_str),
        Some("projected")
    );
    assert!(
        late_result
            .exceptions
            .contains(&ExceptionKind::VerdictOverturned.into()),
        "{late_result:?}"
    );
    // The pack the scanner refused did not move.
    assert_eq!(
        recalled_result.projection.as_ref().map(Code::as_str),
        Some("rejected"),
        "{recalled_result:?}"
    );
    // Why it did not move: the scanner's own refusal.
    assert_eq!(
        recalled_result.exceptions,
        vec![Issue::Refused(Reason::RecalledLot)]
    );
    let (_, obj) = api::get_json(
        &base,
        &manager,
        &format!("/api/v1/trace/objects/sgtin:{GTIN}:S9"),
    )
    .await?;
    assert_ne!(obj["status"], "picked", "{obj}");

    // The manager sees it once, with the rule's reason.
    let (_, list) = api::get_json(&base, &manager, "/api/v1/trace/exceptions?limit=500").await?;
    let overturned: Vec<&Value> = list
        .as_array()
        .or_else(|| list["items"].as_array())
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "verdict_overturned")
        .collect();
    assert_eq!(overturned.len(), 1, "{list}");

    // The scanner now knows the recall: the next pack of that lot is refused offline.
    let t = task.clone();
    let again = blocking(move || {
        let mut s = session;
        let f = s.record_scan(
            &t,
            &format!("01{GTIN}1730123110L-LATE\u{1d}21S2").into_bytes(),
        )?;
        let status = s
            .reference_status(site())?
            .ok_or_else(|| anyhow::anyhow!("no reference data"))?;
        Ok((f, status))
    })
    .await?;
    assert_eq!(again.0.reason, Reason::RecalledLot);
    assert!(again.1.fetched_at_ms.is_some());
    server.stop().await?;
    tdb.close().await
}
