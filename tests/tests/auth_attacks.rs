//! Attacks on sign-in through the real HTTP server, on both back-ends: concurrent
//! guessing (also across two server processes), floods of random names against the
//! bounded hash queue, lock expiry, the per-address budget, and a stranger's attempts
//! not locking out the real user at another address.

use std::time::Duration;

use serde_json::{Value, json};
use swt_server::config::{AuthConfig, Config};
use swt_server::demo;
use swt_tests::api::post_json;
use swt_tests::{TestDb, TestServer, test_config};

const MANAGER_PASSWORD: &str = demo::LOGINS[2].password;

fn config(url: &str, auth: AuthConfig) -> Config {
    Config {
        auth,
        ..test_config(url)
    }
}

async fn login(
    base: &str,
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> anyhow::Result<(u16, Value, reqwest::header::HeaderMap)> {
    let headers: Vec<(&str, &str)> = forwarded_for
        .map(|a| vec![("x-forwarded-for", a)])
        .unwrap_or_default();
    post_json(
        base,
        "/api/v1/auth/login",
        None,
        &headers,
        &json!({"username": username, "password": password}),
    )
    .await
}

fn retry_after(headers: &reqwest::header::HeaderMap) -> i64 {
    headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn concurrent_guesses_on_two_servers_check_exactly_the_limit() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let first = TestServer::start(test_config(tdb.url())).await?;
    let second = TestServer::start(test_config(tdb.url())).await?;
    demo::seed(&first.db).await?;
    let limit = AuthConfig::default().max_attempts_per_name_and_address;
    let mut attempts = Vec::new();
    for i in 0..40 {
        let base = if i % 2 == 0 {
            first.base_url.clone()
        } else {
            second.base_url.clone()
        };
        attempts.push(tokio::spawn(async move {
            login(&base, "manager", "wrong-password-guess", None).await
        }));
    }
    let (mut checked, mut throttled) = (0, 0);
    for a in attempts {
        let (status, body, headers) = a.await??;
        match status {
            401 => checked += 1,
            429 => {
                assert_eq!(body["code"], "too_many_attempts", "{body}");
                assert!(retry_after(&headers) > 0);
                throttled += 1;
            }
            other => anyhow::bail!("unexpected {other} {body}"),
        }
    }
    assert_eq!((checked, throttled), (limit, 40 - limit));
    second.stop().await?;
    first.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn a_flood_of_random_names_meets_the_bounded_queue() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(config(
        tdb.url(),
        AuthConfig {
            hash_workers: 1,
            hash_queue: 1,
            // Exactly the flood: the sign-in after it passes only if the attempts
            // answered 503 were given back.
            max_attempts_per_address: 60,
            ..AuthConfig::default()
        },
    ))
    .await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let flood: Vec<_> = (0..60)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                login(&base, &format!("nobody-{i}"), "wrong-password", None).await
            })
        })
        .collect();
    // The async workers still answer while Argon2 runs on the blocking pool.
    let health = swt_tests::http::get(server.url("/healthz")).await?;
    assert_eq!(health.status().as_u16(), 200);
    let (mut checked, mut busy) = (0, 0);
    for f in flood {
        let (status, body, headers) = f.await??;
        match status {
            401 => checked += 1,
            503 => {
                assert_eq!(body["code"], "login_busy", "{body}");
                assert_eq!(retry_after(&headers), 1);
                busy += 1;
            }
            other => anyhow::bail!("unexpected {other} {body}"),
        }
    }
    assert!(busy > 0, "the queue (1 worker + 1 waiting) never filled");
    assert!(checked >= 2, "{checked} hashed");
    let (status, body, _) = login(&base, "manager", MANAGER_PASSWORD, None).await?;
    assert_eq!(status, 200, "{body}");
    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn a_locked_name_unlocks_when_its_window_ends() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let server = TestServer::start(config(
        tdb.url(),
        AuthConfig {
            max_attempts_per_name_and_address: 2,
            window_secs: 2,
            ..AuthConfig::default()
        },
    ))
    .await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    for _ in 0..2 {
        assert_eq!(login(&base, "manager", "wrong-guess", None).await?.0, 401);
    }
    let (status, _, headers) = login(&base, "manager", MANAGER_PASSWORD, None).await?;
    assert_eq!(status, 429);
    let wait = retry_after(&headers);
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, body, _) = login(&base, "manager", MANAGER_PASSWORD, None).await?;
    assert_eq!(status, 200, "{body}");
    server.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn per_address_budget_and_forwarded_for_from_a_trusted_proxy() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let auth = AuthConfig {
        max_attempts_per_address: 3,
        ..AuthConfig::default()
    };
    // Without a trusted proxy, X-Forwarded-For is ignored: a client cannot pick its
    // address to escape the budget.
    let direct = TestServer::start(config(tdb.url(), auth.clone())).await?;
    demo::seed(&direct.db).await?;
    for i in 0..3 {
        let (status, ..) = login(
            &direct.base_url,
            &format!("sweep-{i}"),
            "wrong",
            Some(&format!("10.9.9.{i}")),
        )
        .await?;
        assert_eq!(status, 401);
    }
    let (status, body, _) = login(&direct.base_url, "sweep-x", "wrong", Some("10.9.9.99")).await?;
    assert_eq!(
        (status, body["code"].as_str()),
        (429, Some("too_many_attempts"))
    );
    direct.stop().await?;

    // Behind a trusted proxy each client has its own budget, and a stranger who locks a
    // name from its address does not lock the real user out at theirs.
    let proxied = TestServer::start(config(
        tdb.url(),
        AuthConfig {
            trusted_proxies: vec!["127.0.0.1".parse()?],
            ..auth
        },
    ))
    .await?;
    let base = proxied.base_url.clone();
    for _ in 0..3 {
        let (status, ..) = login(&base, "manager", "wrong", Some("203.0.113.7")).await?;
        assert_eq!(status, 401);
    }
    let (status, ..) = login(&base, "manager", "wrong", Some("203.0.113.7")).await?;
    assert_eq!(status, 429, "the stranger's address is spent");
    let (status, body, _) = login(&base, "manager", MANAGER_PASSWORD, Some("198.51.100.4")).await?;
    assert_eq!(status, 200, "the real user elsewhere: {body}");
    proxied.stop().await?;
    tdb.close().await
}

#[tokio::test]
async fn the_counter_table_is_bounded() -> anyhow::Result<()> {
    use sea_orm::{ActiveValue::Set, EntityTrait, PaginatorTrait};
    use swt_server::auth::throttle;
    use swt_server::db::entity::login_throttle;

    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    let rows = (0..30).map(|i| login_throttle::ActiveModel {
        scope_key: Set(format!("{i:064}")),
        attempts: Set(1),
        window_start: Set(i),
    });
    login_throttle::Entity::insert_many(rows).exec(&db).await?;
    // Windows that began at 0..=9 have ended; of the 20 left, the 5 oldest go over the cap.
    assert_eq!(throttle::purge(&db, 9, 15).await?, 15);
    assert_eq!(login_throttle::Entity::find().count(&db).await?, 15);
    let oldest = login_throttle::Entity::find_by_id(format!("{:064}", 15))
        .one(&db)
        .await?;
    assert!(oldest.is_some(), "the newest windows are kept");
    db.close().await?;
    tdb.close().await
}
