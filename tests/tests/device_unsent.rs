//! A scanner tells the server what it still holds undelivered (`PUT
//! /api/v1/devices/self/unsent`, sent by the real client after a full sync run when the
//! figure changed), and managers see it in `GET /devices` and on the console's devices
//! page. Only a scanner's own session reports, and a broken or hostile report is refused
//! and changes nothing. On both back-ends.

use serde_json::{Value, json};
use swt_core::session::{Session, SessionOptions};
use swt_server::demo;
use swt_tests::api;
use swt_tests::{TestDb, TestServer, test_config};

const SITE_GLN: &str = "0614141000012";

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

/// A scanner's access token: the picker signed in on demo device 0.
async fn scanner_token(base: &str) -> anyhow::Result<String> {
    let resp: Value = swt_tests::http::client()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({
            "username": "picker",
            "password": demo::LOGINS[0].password,
            "device_id": demo::DEVICES[0].0,
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(resp["access_token"].as_str().unwrap_or_default().to_owned())
}

async fn report(base: &str, token: &str, body: &str) -> anyhow::Result<(u16, String)> {
    let resp = swt_tests::http::client()
        .put(format!("{base}/api/v1/devices/self/unsent"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

/// (unsent, reported at) of demo device 0, as managers read it.
async fn seen(base: &str, manager: &str) -> anyhow::Result<(Value, Value)> {
    let (status, list) = api::get_json(base, manager, "/api/v1/devices").await?;
    anyhow::ensure!(status == 200, "{list}");
    let d = list
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["id"] == demo::DEVICES[0].0)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("device 0 not listed: {list}"))?;
    Ok((d["unsent"].clone(), d["unsent_reported_at"].clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scanners_report_what_they_hold_undelivered() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    assert_eq!(seen(&base, &manager).await?, (Value::Null, Value::Null));

    // A scanner's session reports; the figure and its time are shown.
    let token = scanner_token(&base).await?;
    assert_eq!(report(&base, &token, r#"{"writes": 7}"#).await?.0, 204);
    let (n, at) = seen(&base, &manager).await?;
    assert_eq!(n, 7);
    assert!(at.as_str().is_some_and(|t| t.len() >= 20), "{at}");

    // Refused, and nothing changes: a person's session, impossible or malformed figures.
    let (status, body) = report(&base, &manager, r#"{"writes": 1}"#).await?;
    assert_eq!(status, 403);
    assert_eq!(
        serde_json::from_str::<Value>(&body)?["code"],
        "not_a_device"
    );
    for bad in [
        r#"{"writes": 10000001}"#,
        r#"{"writes": -1}"#,
        r#"{"writes": 1.5}"#,
        r#"{"writes": "3"}"#,
        r#"{"writes": 1, "device_id": "another"}"#,
        r#"{}"#,
        "writes=1",
    ] {
        let (status, body) = report(&base, &token, bad).await?;
        assert!(matches!(status, 400 | 422), "{bad}: {status} {body}");
        let err: Value = serde_json::from_str(&body)?;
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{body}"
        );
    }
    assert_eq!(
        report(&base, "not-a-token", r#"{"writes": 1}"#).await?.0,
        401
    );
    assert_eq!(seen(&base, &manager).await?, (json!(7), at.clone()));

    // The console shows it beside the last sync.
    let console = swt_tests::http::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = console
        .get(format!("{base}/devices"))
        .header("cookie", format!("swt_session={manager}"))
        .send()
        .await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(
        html.contains("Not yet on the server") && html.contains(">7<"),
        "{html}"
    );

    // The real client reports after a full run: it holds nothing undelivered, so the 7
    // becomes 0.
    let task = api::create_task(
        &base,
        &manager,
        &json!({"kind": "picking", "site": SITE_GLN, "refs": {"order": "SO-UNSENT"}}),
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_owned();
    let (b, t) = (base.clone(), task.clone());
    let session = blocking(move || {
        let mut s = Session::open(&path, SessionOptions::default())?;
        s.login(&b, "picker", demo::LOGINS[0].password, demo::DEVICES[0].0)?;
        s.open_task(&t)?;
        s.sync_now()?;
        Ok(s)
    })
    .await?;
    let (n, reported) = seen(&base, &manager).await?;
    assert_eq!(n, 0, "reported by the client");
    assert_ne!(reported, at);
    // A scan recorded and delivered leaves the figure at 0: not sent again.
    let _session = blocking(move || {
        let mut s = session;
        let scan = "0100361500231012172912311510L7\u{1d}21UNSENT1".to_owned();
        s.record_scan(&task, scan.as_bytes())?;
        anyhow::ensure!(s.sync_status()?.pending_total == 1);
        s.sync_now()?;
        anyhow::ensure!(s.sync_status()?.pending_total == 0);
        Ok(s)
    })
    .await?;
    assert_eq!(seen(&base, &manager).await?, (json!(0), reported));

    server.stop().await?;
    tdb.close().await
}
