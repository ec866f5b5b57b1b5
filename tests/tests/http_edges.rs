//! The HTTP edges (issue #19, points 5 and 8) through the real server, on both back-ends:
//! hostile paging parameters are refused with a JSON 400 and the server keeps answering;
//! what axum rejects on its own (content type, JSON syntax and shape, method, unknown
//! route, body size) is answered as JSON `{code, message}` too; a database outage is a
//! 503 with `Retry-After`, not a 500.

use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde_json::{Value, json};
use swt_server::demo;
use swt_tests::api;
use swt_tests::{TestDb, TestServer, test_config};

/// Asserts an error answer: its status, a JSON body with `code` and a non-empty
/// `message`, and a request id; returns the body.
async fn expect_error(resp: reqwest::Response, status: u16, code: &str) -> anyhow::Result<Value> {
    let got = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await?;
    anyhow::ensure!(got == status, "expected {status}, got {got}: {text}");
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    anyhow::ensure!(
        content_type.starts_with("application/json"),
        "{status} answered as {content_type:?}: {text}"
    );
    anyhow::ensure!(
        headers.contains_key("x-request-id"),
        "no x-request-id on {status}"
    );
    let body: Value = serde_json::from_str(&text)?;
    anyhow::ensure!(body["code"] == code, "code of {body}");
    anyhow::ensure!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message of {body}"
    );
    Ok(body)
}

async fn manager_token(base: &str) -> anyhow::Result<String> {
    api::login(base, "manager", demo::LOGINS[2].password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_paging_is_refused_and_lists_page_by_cursor() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = manager_token(&base).await?;
    let client = swt_tests::http::client();

    // An offset past i64::MAX once panicked inside the SQL binding and dropped the
    // connection; offsets are gone (refused as unknown), numbers out of range and cursors
    // this server never made are a 400.
    for path in [
        "/api/v1/tasks?offset=18446744073709551615",
        "/api/v1/trace/stock?offset=9223372036854775808",
        "/api/v1/sync/refusals?offset=9223372036854775808",
        "/api/v1/tasks?limit=-1",
        "/api/v1/tasks?limit=99999999999999999999999",
        "/api/v1/trace/stock?limit=1e3",
        "/api/v1/trace/exceptions?limit=abc",
        "/api/v1/tasks?cursor=not-a-cursor",
        "/api/v1/trace/stock?cursor=%FF%FE",
        "/api/v1/trace/stock?cursor=WyJhIl0",
        "/api/v1/sync/refusals?cursor=AAAA",
        "/api/v1/trace/exceptions?cursor=x.y",
    ] {
        let resp = client
            .get(format!("{base}{path}"))
            .bearer_auth(&manager)
            .send()
            .await?;
        expect_error(resp, 400, "bad_request")
            .await
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        let alive = client.get(format!("{base}/healthz")).send().await?;
        anyhow::ensure!(
            alive.status() == 200,
            "server stopped answering after {path}"
        );
    }
    // A limit above the largest page is the largest page, not an error.
    let (status, _) = api::get_json(&base, &manager, "/api/v1/tasks?limit=100000").await?;
    assert_eq!(status, 200);

    // Three tasks, two per page: newest first, each once, the cursor in a header.
    let mut made = Vec::new();
    for order in ["SO-1", "SO-2", "SO-3"] {
        made.push(
            api::create_task(
                &base,
                &manager,
                &json!({"kind": "picking", "site": "0614141000012", "refs": {"order": order},
                        "expected": {"lines": [{"gtin": "00361500231012", "quantity": 1}]}}),
            )
            .await?,
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..3 {
        let mut url = format!("{base}/api/v1/tasks?limit=2");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let resp = client.get(url).bearer_auth(&manager).send().await?;
        assert_eq!(resp.status(), 200);
        cursor = resp
            .headers()
            .get("x-next-cursor")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let page: Vec<Value> = resp.json().await?;
        seen.extend(
            page.iter()
                .filter_map(|t| t["id"].as_str().map(str::to_owned)),
        );
        if cursor.is_none() {
            break;
        }
    }
    made.reverse();
    assert_eq!(seen, made, "every task once, newest first");

    // Stock comes in pages too; the demo has none projected, so one empty page.
    let (status, stock) = api::get_json(&base, &manager, "/api/v1/trace/stock?limit=1").await?;
    assert_eq!(
        (status, stock),
        (200, json!({"items": [], "next_cursor": null}))
    );

    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_json_with_stable_codes() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = manager_token(&base).await?;
    let client = swt_tests::http::client();
    let tasks = format!("{base}/api/v1/tasks");

    let wrong_type = client
        .post(&tasks)
        .bearer_auth(&manager)
        .header(CONTENT_TYPE, "text/plain")
        .body(r#"{"kind": "picking"}"#)
        .send()
        .await?;
    expect_error(wrong_type, 415, "unsupported_media_type").await?;

    let login_wrong_type = client
        .post(format!("{base}/api/v1/auth/login"))
        .body("username=manager")
        .send()
        .await?;
    expect_error(login_wrong_type, 415, "unsupported_media_type").await?;

    let bad_json = client
        .post(&tasks)
        .bearer_auth(&manager)
        .header(CONTENT_TYPE, "application/json")
        .body("{\"kind\": ")
        .send()
        .await?;
    expect_error(bad_json, 400, "bad_request").await?;

    let wrong_shape = client
        .post(&tasks)
        .bearer_auth(&manager)
        .json(&json!({"kind": 5}))
        .send()
        .await?;
    let body = expect_error(wrong_shape, 422, "unprocessable").await?;
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("kind")),
        "the message says what is wrong: {body}"
    );

    let wrong_method = client.delete(&tasks).bearer_auth(&manager).send().await?;
    let allow = wrong_method.headers().get("allow").cloned();
    expect_error(wrong_method, 405, "method_not_allowed").await?;
    assert!(allow.is_some(), "405 keeps its Allow header");

    let unknown = client
        .get(format!("{base}/api/v1/no-such-thing"))
        .send()
        .await?;
    expect_error(unknown, 404, "not_found").await?;
    let unknown_root = client.get(format!("{base}/nowhere")).send().await?;
    expect_error(unknown_root, 404, "not_found").await?;

    // Past the JSON body limit (2 MB by default).
    let huge = client
        .post(&tasks)
        .bearer_auth(&manager)
        .json(&json!({"kind": "picking", "title": "x".repeat(3 << 20)}))
        .send()
        .await?;
    expect_error(huge, 413, "payload_too_large").await?;

    // Handler-chosen errors keep their own codes. A new client: the server closes the
    // connection that sent the unread 3 MB body, and a pooled one may be that connection.
    let anonymous = swt_tests::http::client().get(&tasks).send().await?;
    expect_error(anonymous, 401, "unauthorized").await?;

    server.stop().await?;
    tdb.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_with_retry_after() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let manager = manager_token(&base).await?;
    let client = swt_tests::http::client();
    let (status, _) = api::get_json(&base, &manager, "/api/v1/tasks").await?;
    assert_eq!(status, 200);

    if tdb.is_postgres() {
        // The database goes away under the running server: its connections are
        // terminated and new ones are refused (the database does not exist).
        tdb.close().await?;
    } else {
        // A SQLite file keeps working through open handles even when deleted, so the
        // outage here is the server's connection pool closing under it.
        server.db.clone().close().await?;
    }
    for path in [
        "/api/v1/tasks",
        "/api/v1/trace/stock",
        "/api/v1/sync/refusals",
    ] {
        let resp = client
            .get(format!("{base}{path}"))
            .bearer_auth(&manager)
            .send()
            .await?;
        let retry = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        expect_error(resp, 503, "unavailable")
            .await
            .map_err(|e| anyhow::anyhow!("{path}: {e}"))?;
        assert!(
            retry.is_some_and(|s| s > 0),
            "{path}: Retry-After {retry:?}"
        );
    }
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "manager", "password": demo::LOGINS[2].password}))
        .send()
        .await?;
    expect_error(login, 503, "unavailable").await?;
    let ready = client.get(format!("{base}/readyz")).send().await?;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key(RETRY_AFTER));

    server.stop().await
}
