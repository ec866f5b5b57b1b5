//! Operators acting on live sessions, through the real HTTP server on both back-ends:
//! disabling and re-enabling a scanner mid-session (seen by a second server process
//! within the revocation window), signing out and disabling a user ending their access
//! tokens, and users signing in only on scanners of their own site.

use std::time::Duration;

use serde_json::{Value, json};
use swt_server::auth::{Role, service};
use swt_server::config::{AuthConfig, Config};
use swt_server::demo;
use swt_tests::api::{get_json, login, post_json};
use swt_tests::{TestDb, TestServer, test_config};

/// Short, so the tests wait little; the mechanism is the same at the default 3 s.
const CACHE_MS: u64 = 300;

fn config(url: &str) -> Config {
    Config {
        auth: AuthConfig {
            revocation_cache_ms: CACHE_MS,
            ..AuthConfig::default()
        },
        ..test_config(url)
    }
}

fn password(username: &str) -> &'static str {
    demo::LOGINS
        .iter()
        .find(|l| l.username == username)
        .map_or("", |l| l.password)
}

/// Signs in on a device; returns the whole answer.
async fn scanner_login(base: &str, username: &str, device: &str) -> anyhow::Result<(u16, Value)> {
    let (status, body, _) = post_json(
        base,
        "/api/v1/auth/login",
        None,
        &[],
        &json!({"username": username, "password": password(username), "device_id": device}),
    )
    .await?;
    Ok((status, body))
}

/// GETs `path` until the answer's status is `want` (at most 5 s, far beyond the window).
async fn until_status(base: &str, token: &str, path: &str, want: u16) -> anyhow::Result<Value> {
    let mut last = (0, Value::Null);
    for _ in 0..100 {
        last = get_json(base, token, path).await?;
        if last.0 == want {
            return Ok(last.1);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{path}: still {} {} after 5 s", last.0, last.1)
}

#[tokio::test]
async fn a_disabled_device_is_refused_at_its_next_request_and_can_be_re_enabled()
-> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let admin_side = TestServer::start(config(tdb.url())).await?;
    let scanner_side = TestServer::start(config(tdb.url())).await?;
    demo::seed(&admin_side.db).await?;
    let (a, s) = (admin_side.base_url.clone(), scanner_side.base_url.clone());
    let device = demo::DEVICES[0].0;
    let admin = login(&a, "admin", password("admin")).await?;

    let (status, session) = scanner_login(&s, "picker", device).await?;
    assert_eq!(status, 200, "{session}");
    let token = session["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(get_json(&s, &token, "/api/v1/tasks").await?.0, 200);

    // Only admins of the device's organisation may disable it.
    let picker_try = post_json(
        &a,
        &format!("/api/v1/devices/{device}/disable"),
        Some(&token),
        &[],
        &json!({}),
    )
    .await?;
    assert_eq!(picker_try.0, 403);
    let other_org = service::add_org(&admin_side.db, "Other Logistics", None).await?;
    let other_site = service::add_site(
        &admin_side.db,
        &other_org.id,
        "Other DC",
        "0614141000036",
        None,
        "America/Chicago",
    )
    .await?;
    assert_eq!(other_site.gln, "0614141000036");
    service::add_user(
        &admin_side.db,
        &other_org.id,
        None,
        "other-admin",
        "Other admin",
        Role::Admin,
        "other-admin-password",
    )
    .await?;
    let stranger = login(&a, "other-admin", "other-admin-password").await?;
    let (status, body, _) = post_json(
        &a,
        &format!("/api/v1/devices/{device}/disable"),
        Some(&stranger),
        &[],
        &json!({}),
    )
    .await?;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));

    let (status, body, _) = post_json(
        &a,
        &format!("/api/v1/devices/{device}/disable"),
        Some(&admin),
        &[],
        &json!({}),
    )
    .await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);

    // The other process refuses the device's token within its cache time: tasks, sync.
    let refused = until_status(&s, &token, "/api/v1/tasks", 403).await?;
    assert_eq!(refused["code"], "device_disabled", "{refused}");
    let sync = swt_tests::http::client()
        .post(format!("{s}/api/v1/sync/{}", uuid::Uuid::new_v4()))
        .bearer_auth(&token)
        .header("content-type", "application/octet-stream")
        .body(vec![0u8; 4])
        .send()
        .await?;
    assert_eq!(sync.status().as_u16(), 403);
    let body: Value = sync.json().await?;
    assert_eq!(body["code"], "device_disabled", "{body}");
    // Its refresh token is revoked and it cannot sign in.
    let (status, body, _) = post_json(
        &s,
        "/api/v1/auth/refresh",
        None,
        &[],
        &json!({"refresh_token": session["refresh_token"]}),
    )
    .await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_refresh_token"))
    );
    let (status, body) = scanner_login(&s, "picker", device).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("device_not_allowed"))
    );
    let (_, listed) = get_json(&a, &admin, "/api/v1/devices").await?;
    let shown = listed
        .as_array()
        .and_then(|l| l.iter().find(|d| d["id"] == device))
        .cloned()
        .unwrap_or_default();
    assert_eq!(shown["disabled"], true, "{listed}");

    // Re-enabled, the user signs in on it again and works.
    let (status, body, _) = post_json(
        &a,
        &format!("/api/v1/devices/{device}/enable"),
        Some(&admin),
        &[],
        &json!({}),
    )
    .await?;
    assert_eq!(
        (status, body["disabled"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (status, session) = scanner_login(&s, "picker", device).await?;
    assert_eq!(status, 200, "{session}");
    let token = session["access_token"].as_str().unwrap_or_default();
    assert_eq!(get_json(&s, token, "/api/v1/tasks").await?.0, 200);

    let (status, _, _) = post_json(
        &a,
        "/api/v1/devices/no-such-device/disable",
        Some(&admin),
        &[],
        &json!({}),
    )
    .await?;
    assert_eq!(status, 404);
    scanner_side.stop().await?;
    admin_side.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn signing_out_and_disabling_a_user_end_access_tokens() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let first = TestServer::start(config(tdb.url())).await?;
    let second = TestServer::start(config(tdb.url())).await?;
    demo::seed(&first.db).await?;
    let (a, b) = (first.base_url.clone(), second.base_url.clone());

    let (status, session, _) = post_json(
        &a,
        "/api/v1/auth/login",
        None,
        &[],
        &json!({"username": "manager", "password": password("manager")}),
    )
    .await?;
    assert_eq!(status, 200);
    let token = session["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(get_json(&b, &token, "/api/v1/me").await?.0, 200);
    let (status, ..) = post_json(
        &a,
        "/api/v1/auth/logout",
        None,
        &[],
        &json!({"refresh_token": session["refresh_token"]}),
    )
    .await?;
    assert_eq!(status, 204);
    // At once on the process that signed out, within the window on the other.
    let (status, body) = get_json(&a, &token, "/api/v1/me").await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("session_revoked"))
    );
    let body = until_status(&b, &token, "/api/v1/me", 401).await?;
    assert_eq!(body["code"], "session_revoked");

    // Disabling a user (as `swt user disable` does, from another process) ends every token.
    let token = login(&a, "returns", password("returns")).await?;
    assert_eq!(get_json(&b, &token, "/api/v1/me").await?.0, 200);
    service::disable_user(&first.db, "returns").await?;
    let body = until_status(&b, &token, "/api/v1/me", 403).await?;
    assert_eq!(body["code"], "user_disabled");
    second.stop().await?;
    first.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn users_sign_in_only_on_scanners_of_their_site() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let returns_scanner = demo::DEVICES[2].0;
    // The picker works at the distribution centre, the scanner is at the returns centre.
    let (status, body) = scanner_login(&base, "picker", returns_scanner).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("wrong_site")),
        "{body}"
    );
    // The returns clerk works there; managers (no site) work at every site.
    assert_eq!(
        scanner_login(&base, "returns", returns_scanner).await?.0,
        200
    );
    assert_eq!(
        scanner_login(&base, "manager", returns_scanner).await?.0,
        200
    );
    server.stop().await?;
    tdb.close().await
}
