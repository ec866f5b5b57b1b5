//! Sign-in on both back-ends: tokens, refresh rotation and reuse detection, throttling
//! of password guessing, key rotation without logging anyone out, disabled users.

use serde_json::{Value, json};
use swt_server::auth::{keys, service};
use swt_server::config::AuthConfig;
use swt_server::demo;
use swt_tests::{TestDb, TestServer, test_config};

async fn post(
    base: &str,
    path: &str,
    body: &Value,
) -> anyhow::Result<(u16, Value, reqwest::header::HeaderMap)> {
    let resp = swt_tests::http::client()
        .post(format!("{base}/api/v1{path}"))
        .json(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    Ok((status, body, headers))
}

async fn me(base: &str, token: &str) -> anyhow::Result<(u16, Value)> {
    swt_tests::api::get_json(base, token, "/api/v1/me").await
}

#[tokio::test]
async fn tokens_refresh_rotation_and_reuse() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();

    let (status, session, _) = post(
        &base,
        "/auth/login",
        &json!({"username": "picker", "password": demo::LOGINS[0].password, "device_id": demo::DEVICES[0].0}),
    )
    .await?;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["token_type"], "Bearer");
    assert_eq!(session["expires_in"], 900);
    assert_eq!(session["device"]["actor_id"], demo::DEVICES[0].3);
    let access = session["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, who) = me(&base, &access).await?;
    assert_eq!(status, 200);
    assert_eq!(who["role"], "picker");
    assert_eq!(who["device_id"], demo::DEVICES[0].0);
    assert_eq!(who["site_id"], demo::SITE_IDS[0]);

    // A tampered token is refused.
    let mut tampered = access.clone();
    tampered.pop();
    tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(me(&base, &tampered).await?.0, 401);

    // Refresh rotates: the new token works, the old one is spent.
    let first_refresh = session["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, second, _) = post(
        &base,
        "/auth/refresh",
        &json!({"refresh_token": first_refresh}),
    )
    .await?;
    assert_eq!(status, 200, "{second}");
    let second_refresh = second["refresh_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(
        me(&base, second["access_token"].as_str().unwrap_or_default())
            .await?
            .0,
        200
    );

    // Reusing the spent token revokes the whole session family (stolen token).
    let (status, body, _) = post(
        &base,
        "/auth/refresh",
        &json!({"refresh_token": first_refresh}),
    )
    .await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("refresh_token_reused"))
    );
    let (status, _, _) = post(
        &base,
        "/auth/refresh",
        &json!({"refresh_token": second_refresh}),
    )
    .await?;
    assert_eq!(status, 401, "the family is revoked");

    // A device of another kind of request: unknown device id.
    let (status, body, _) = post(
        &base,
        "/auth/login",
        &json!({"username": "picker", "password": demo::LOGINS[0].password, "device_id": "nope"}),
    )
    .await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("device_not_allowed"))
    );

    // Malformed bodies are a 4xx with a reason, never a crash.
    let resp = swt_tests::http::client()
        .post(format!("{base}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 400);

    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn password_guessing_is_throttled() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    for _ in 0..AuthConfig::default().max_attempts_per_name_and_address {
        let (status, body, _) = post(
            &base,
            "/auth/login",
            &json!({"username": "manager", "password": "guess-guess-guess"}),
        )
        .await?;
        assert_eq!(
            (status, body["code"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    // Now even the right password waits.
    let (status, body, headers) = post(
        &base,
        "/auth/login",
        &json!({"username": "manager", "password": demo::LOGINS[2].password}),
    )
    .await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
    let retry: i64 = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(retry > 0 && retry <= 15 * 60, "Retry-After {retry}");
    // Other users are not affected.
    let (status, _, _) = post(
        &base,
        "/auth/login",
        &json!({"username": "admin", "password": demo::LOGINS[3].password}),
    )
    .await?;
    assert_eq!(status, 200);
    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn key_rotation_keeps_sessions_and_disabled_users_lose_them() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let (_, before, _) = post(
        &base,
        "/auth/login",
        &json!({"username": "manager", "password": demo::LOGINS[2].password}),
    )
    .await?;
    let old_access = before["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    // Another instance rotates the key: old tokens still verify, new ones use the new key.
    let kek = keys::Kek::resolve(&test_config(tdb.url()))?;
    keys::rotate(&server.db, kek.as_ref()).await?;
    assert_eq!(me(&base, &old_access).await?.0, 200);
    // A second server process (same database) verifies tokens the first one issued.
    let second = TestServer::start(test_config(tdb.url())).await?;
    assert_eq!(me(&second.base_url, &old_access).await?.0, 200);

    // Disabling the user revokes their refresh tokens.
    service::disable_user(&server.db, "manager").await?;
    let (status, _, _) = post(
        &base,
        "/auth/refresh",
        &json!({"refresh_token": before["refresh_token"]}),
    )
    .await?;
    assert_eq!(status, 401);
    let (status, _, _) = post(
        &base,
        "/auth/login",
        &json!({"username": "manager", "password": demo::LOGINS[2].password}),
    )
    .await?;
    assert_eq!(status, 401);
    second.stop().await?;
    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn signing_keys_are_encrypted_at_rest_and_a_wrong_key_stops_the_server() -> anyhow::Result<()>
{
    use sea_orm::EntityTrait;
    use swt_server::db::entity::signing_key;
    let tdb = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    let mut config = test_config(tdb.url());
    config.auth.key_encryption_key_file = Some(dir.path().join("signing.kek"));
    // A key stored before any key-encryption key was configured (an older install).
    let db = swt_server::app::open_database(&config).await?;
    let old_kid = keys::rotate(&db, None).await?;

    let server = TestServer::start(config.clone()).await?;
    demo::seed(&server.db).await?;
    let login = json!({"username": "manager", "password": demo::LOGINS[2].password});
    let (status, body, _) = post(&server.base_url, "/auth/login", &login).await?;
    assert_eq!(status, 200, "{body}");
    let stored = signing_key::Entity::find().all(&server.db).await?;
    assert!(
        stored.iter().any(|k| k.kid == old_kid),
        "the old key is kept"
    );
    for k in &stored {
        // Sealed: neither the PKCS#8 prefix nor anything plain is in the database.
        assert!(k.private_der.starts_with(b"SWTK1"), "{} is sealed", k.kid);
        assert!(
            !k.private_der
                .windows(4)
                .any(|w| w == [0x30, 0x2e, 0x02, 0x01])
        );
    }
    server.stop().await?;

    // Another key-encryption key: the server does not start, and says why.
    let mut wrong = config.clone();
    wrong.auth.key_encryption_key_file = Some(dir.path().join("another.kek"));
    match TestServer::start(wrong).await {
        Err(e) => assert!(e.to_string().contains("does not decrypt"), "{e}"),
        Ok(_) => anyhow::bail!("a server with the wrong key-encryption key started"),
    }
    // The right one again: tokens are issued as before.
    let again = TestServer::start(config).await?;
    let (status, body, _) = post(&again.base_url, "/auth/login", &login).await?;
    assert_eq!(status, 200, "{body}");
    again.stop().await?;
    drop(db);
    tdb.close().await
}
