//! The foundation on both back-ends: migrations, ops endpoints, metrics, request ids,
//! demo seeding, readiness against an unmigrated database.

use sea_orm::{EntityTrait, PaginatorTrait};
use swt_server::db::{self, entity};
use swt_server::demo;
use swt_tests::{TestDb, TestServer, test_config};

#[tokio::test]
async fn health_ready_and_metrics() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    let client = swt_tests::http::client();

    let health = client.get(server.url("/healthz")).send().await?;
    assert_eq!(health.status(), 200);
    let request_id = health
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert!(
        request_id.as_deref().is_some_and(|id| id.len() == 36),
        "every response carries a request id: {request_id:?}"
    );

    let ready = client.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 200);

    // A client-supplied request id is kept, so logs correlate across systems.
    let echoed = client
        .get(server.url("/healthz"))
        .header("x-request-id", "scanner-42-req-7")
        .send()
        .await?;
    assert_eq!(
        echoed.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"scanner-42-req-7"[..])
    );

    let missing = client.get(server.url("/no/such/route")).send().await?;
    assert_eq!(missing.status(), 404);

    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics
            .contains(r#"swt_http_requests_total{method="GET",route="/healthz",status="200"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="unmatched",status="404"} 1"#),
        "unknown paths are counted under one label: {metrics}"
    );
    assert!(
        metrics.contains("swt_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    assert!(
        metrics.contains("swt_db_pool_max_connections 8"),
        "{metrics}"
    );

    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn migrations_apply_and_report_status() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let conn = db::connect(tdb.url(), 2).await?;
    let before = db::migration_status(&conn).await?;
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|m| !m.applied),
        "fresh database: {before:?}"
    );

    db::migrate(&conn).await?;
    let after = db::migration_status(&conn).await?;
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|m| m.applied), "{after:?}");
    db::ready(&conn).await.map_err(anyhow::Error::msg)?;

    // Applying again is a no-op.
    db::migrate(&conn).await?;
    // The schema is really there on this back-end.
    assert_eq!(entity::product::Entity::find().count(&conn).await?, 0);
    conn.close().await?;
    tdb.close().await
}

#[tokio::test]
async fn readyz_refuses_an_unmigrated_database() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let config = test_config(tdb.url());
    let conn = db::connect(tdb.url(), 2).await?;
    let server = TestServer::start_with(config, conn).await?;
    let client = swt_tests::http::client();
    assert_eq!(
        client.get(server.url("/healthz")).send().await?.status(),
        200
    );
    let ready = client.get(server.url("/readyz")).send().await?;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await?;
    assert_eq!(body["code"], "unavailable");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("pending")),
        "{body}"
    );
    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn demo_seed_is_complete_and_idempotent() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(test_config(tdb.url())).await?;
    let first = demo::seed(&server.db).await?;
    assert!(first.inserted > 0);

    let counts = |db: sea_orm::DatabaseConnection| async move {
        anyhow::Ok((
            entity::organisation::Entity::find().count(&db).await?,
            entity::site::Entity::find().count(&db).await?,
            entity::app_user::Entity::find().count(&db).await?,
            entity::product::Entity::find().count(&db).await?,
        ))
    };
    let after_first = counts(server.db.clone()).await?;
    assert_eq!(after_first, (1, 2, 4, 12));
    assert_eq!(entity::device::Entity::find().count(&server.db).await?, 3);

    let second = demo::seed(&server.db).await?;
    assert_eq!(second.inserted, 0, "second run inserts nothing");
    assert_eq!(counts(server.db.clone()).await?, after_first);

    let users = entity::app_user::Entity::find().all(&server.db).await?;
    let mut roles: Vec<_> = users.iter().map(|u| u.role.as_str()).collect();
    roles.sort_unstable();
    assert_eq!(roles, ["admin", "manager", "picker", "returns_clerk"]);
    for login in &demo::LOGINS {
        let user = users
            .iter()
            .find(|u| u.username == login.username)
            .ok_or_else(|| anyhow::anyhow!("missing {}", login.username))?;
        assert!(swt_server::auth::password::verify(
            login.password,
            &user.password_hash
        ));
    }
    server.stop().await?;
    tdb.close().await
}
