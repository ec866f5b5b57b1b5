//! ERP results out (issue #24), on the run's back-end: an order becomes a task, a picker
//! scans it through the real sync client, a manager closes it, and a local receiver gets
//! `task.completed` (quantities, lots, serials) signed with the subscription's secret;
//! exceptions opened and resolved follow, in order. The receiver down: deliveries are
//! retried, then the subscription is dead until a manager replays it, and nothing is lost
//! or reordered. The change feed gives the same events from a resumable cursor. Broken
//! and hostile requests are refused and change nothing.

// A poisoned lock in the receiver means a receiver thread panicked: the test fails anyway.
#![allow(clippy::expect_used)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use swt_server::demo;
use swt_tests::api::{self, Api, Scanner};
use swt_tests::{TestDb, TestServer, projected, test_config};

const SITE_GLN: &str = "0614141000012";
const CUSTOMER_GLN: &str = "0860000000017";

fn gtin(i: usize) -> &'static str {
    demo::product_gtins().nth(i).unwrap_or_default()
}

/// HMAC-SHA256 written out from RFC 2104, so the check does not reuse the server's code.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |b: u8| k.iter().map(|x| x ^ b).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .to_vec()
}

/// A delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    signature: String,
    body: Vec<u8>,
}

/// A local webhook receiver: records what it accepts; while `down`, answers 503.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Got>>>,
    down: Arc<AtomicBool>,
    refused: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(&self) -> anyhow::Result<String> {
        let me = self.clone();
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let me = me.clone();
                async move {
                    if me.down.load(Ordering::SeqCst) {
                        *me.refused.lock().expect("lock") += 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    let signature = headers
                        .get("swt-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    me.got.lock().expect("lock").push(Got {
                        signature,
                        body: body.to_vec(),
                    });
                    StatusCode::NO_CONTENT
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(format!("http://{addr}/hooks"))
    }

    /// Every event received so far, in arrival order.
    fn events(&self) -> Vec<Value> {
        self.got
            .lock()
            .expect("lock")
            .iter()
            .flat_map(|g| {
                serde_json::from_slice::<Value>(&g.body)
                    .ok()
                    .and_then(|v| v["events"].as_array().cloned())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// Waits (up to 30 s) until an event of `kind` for `stream` has arrived.
    async fn wait_for(&self, kind: &str, stream: &str) -> anyhow::Result<Value> {
        for _ in 0..300 {
            if let Some(e) = self
                .events()
                .into_iter()
                .find(|e| e["type"] == kind && e["stream"] == stream)
            {
                return Ok(e);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!("no {kind} for {stream}: got {:?}", self.events())
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f).await?
}

async fn subscription(api: &Api, token: &str) -> anyhow::Result<Value> {
    let (status, list) = api.get(token, "/webhooks").await;
    anyhow::ensure!(status == 200, "{status} {list}");
    Ok(list[0].clone())
}

async fn wait_state(api: &Api, token: &str, state: &str) -> anyhow::Result<Value> {
    for _ in 0..300 {
        let sub = subscription(api, token).await?;
        if sub["state"] == state {
            return Ok(sub);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "the subscription never became {state}: {}",
        subscription(api, token).await?
    )
}

async fn close(api: &Api, manager: &str, task: &str) -> anyhow::Result<()> {
    let (status, body) = api
        .post(
            manager,
            &format!("/tasks/{task}/status"),
            json!({"status": "closed"}),
        )
        .await;
    anyhow::ensure!(status == 200, "{status} {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_reach_a_signed_webhook_and_the_change_feed_in_order() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let mut config = test_config(tdb.url());
    // Quick retries, and dead after three failures, so the test sees every state.
    config.webhooks.first_backoff_ms = 50;
    config.webhooks.max_backoff_ms = 200;
    config.webhooks.max_attempts = 3;
    config.webhooks.poll_ms = 20;
    let server = TestServer::start(config).await?;
    demo::seed(&server.db).await?;
    let base = server.base_url.clone();
    let api = Api::new(&base);
    let admin = api::login(&base, "admin", demo::LOGINS[3].password).await?;
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let picker = api::login(&base, "picker", demo::LOGINS[0].password).await?;
    let (status, made) = api
        .post(&admin, "/integrations", json!({"name": "SAP production"}))
        .await;
    assert_eq!(status, 201, "{made}");
    let key = made["key"].as_str().unwrap_or_default().to_owned();

    let receiver = Receiver::default();
    let url = receiver.start().await?;

    // Broken and hostile subscriptions are refused and make nothing.
    for (token, body, status, code) in [
        (
            &key,
            json!({"url": "ftp://erp.example.com/in"}),
            422,
            "invalid_subscription",
        ),
        (
            &key,
            json!({"url": "https://u:p@erp.example.com/in"}),
            422,
            "invalid_subscription",
        ),
        (
            &key,
            json!({"url": url, "types": ["task.exploded"]}),
            422,
            "invalid_subscription",
        ),
        (
            &key,
            json!({"url": url, "secret": "mine"}),
            400,
            "bad_request",
        ),
        (&key, json!("https://erp.example.com"), 400, "bad_request"),
        (&manager, json!({"url": url}), 403, "forbidden"),
        (&picker, json!({"url": url}), 403, "forbidden"),
        (
            &"swti_not-a-key".to_owned(),
            json!({"url": url}),
            401,
            "invalid_integration_key",
        ),
    ] {
        let (got, answer) = api.post(token, "/webhooks", body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_eq!(answer["code"], code, "{body}: {answer}");
    }
    let (status, list) = api.get(&key, "/webhooks").await;
    assert_eq!(
        (status.as_u16(), list.as_array().map(Vec::len)),
        (200, Some(0))
    );

    // The ERP subscribes; the secret is shown once, never listed.
    let (status, created) = api.post(&key, "/webhooks", json!({"url": url})).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap_or_default().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    let sub_id = created["subscription"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let listed = subscription(&api, &key).await?;
    assert_eq!(listed["id"], sub_id.as_str());
    assert!(listed.get("secret").is_none(), "{listed}");

    // An order, a picker's three packs through the real sync client, and the same pack
    // again for a second order: a double pick, which opens an exception there.
    let order =
        |lines: Value| json!({"site_gln": SITE_GLN, "partner_gln": CUSTOMER_GLN, "lines": lines});
    let mut tasks = Vec::new();
    for (n, so) in ["SO-71", "SO-72"].into_iter().enumerate() {
        let (status, body) = api
            .call_with(
                Method::PUT,
                &key,
                &format!("/orders/picking/{so}"),
                Some(order(json!([{"gtin": gtin(0), "quantity": 3}]))),
                &[("Idempotency-Key", &format!("k{n}"))],
            )
            .await;
        assert_eq!(status, 201, "{body}");
        tasks.push(body["task_id"].as_str().unwrap_or_default().to_owned());
    }
    let (b, t1, t2) = (base.clone(), tasks[0].clone(), tasks[1].clone());
    blocking(move || {
        let mut s = Scanner::sign_in(
            &b,
            "picker",
            demo::LOGINS[0].password,
            demo::DEVICES[0].0,
            None,
        )?;
        s.sync()?;
        let now = u64::try_from(chrono::Utc::now().timestamp_millis())?;
        for (n, serial) in ["W1", "W2", "W3"].into_iter().enumerate() {
            let mut scan = s.pack_scan(gtin(0), serial, "L9", "301231");
            scan.device_time_ms = now + n as u64;
            s.store.record_scan(&t1, &scan)?;
        }
        let mut again = s.pack_scan(gtin(0), "W1", "L9", "301231");
        again.device_time_ms = now + 10;
        s.store.record_scan(&t2, &again)?;
        let report = s.sync()?;
        anyhow::ensure!(report.refused.is_empty(), "{report:?}");
        Ok(())
    })
    .await?;
    projected::wait_for(&server.db, &tasks[0], 3).await?;
    projected::wait_for(&server.db, &tasks[1], 1).await?;
    close(&api, &manager, &tasks[0]).await?;

    // The completion arrives, signed, with what was picked.
    let done = receiver.wait_for("task.completed", &tasks[0]).await?;
    assert_eq!(done["data"]["kind"], "picking", "{done}");
    assert_eq!(done["data"]["order"]["order_ref"], "SO-71", "{done}");
    assert_eq!(
        done["data"]["lines"],
        json!([{"gtin": gtin(0), "lot": "L9", "expiry": "301231", "quantity": 3,
            "serials": ["W1", "W2", "W3"]}]),
        "{done}"
    );
    assert_eq!(done["data"]["scans_projected"], 3);
    let opened = receiver.wait_for("exception.opened", &tasks[1]).await?;
    assert_eq!(opened["data"]["object"], format!("sgtin:{}:W1", gtin(0)));
    for got in receiver.got.lock().expect("lock").iter() {
        let (t, v1) = got
            .signature
            .strip_prefix("t=")
            .and_then(|s| s.split_once(",v1="))
            .unwrap_or_default();
        let mut signed = format!("{t}.").into_bytes();
        signed.extend_from_slice(&got.body);
        assert_eq!(
            v1,
            hex::encode(hmac_sha256(secret.as_bytes(), &signed)),
            "a delivery's signature checks with the secret"
        );
        let age = chrono::Utc::now().timestamp() - t.parse::<i64>()?;
        assert!((0..120).contains(&age), "timestamp {t}");
    }

    // The receiver goes down: the next outcome is retried, then the subscription dies.
    receiver.down.store(true, Ordering::SeqCst);
    let exception = opened["data"]["exception_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (status, body) = api
        .post(
            &manager,
            &format!("/trace/exceptions/{exception}/resolve"),
            json!({"resolution": "second pick cancelled with the customer"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    close(&api, &manager, &tasks[1]).await?;
    let dead = wait_state(&api, &key, "dead").await?;
    assert_eq!(dead["attempts"], 3, "{dead}");
    assert_eq!(dead["last_error"], "HTTP 503", "{dead}");
    assert!(dead["pending"].as_i64().unwrap_or(0) >= 2, "{dead}");
    assert_eq!(*receiver.refused.lock().expect("lock"), 3);
    // Dead stays dead with the receiver back, until a manager replays it.
    receiver.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        receiver
            .events()
            .iter()
            .all(|e| e["stream"] != tasks[1].as_str() || e["type"] == "exception.opened")
    );
    let (status, body) = api
        .post(&picker, &format!("/webhooks/{sub_id}/replay"), json!({}))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = api
        .post(
            &manager,
            &format!("/webhooks/{sub_id}/replay"),
            json!({"from_seq": -1}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), body["code"].as_str()),
        (422, Some("invalid_subscription"))
    );
    let (status, body) = api
        .post(&manager, &format!("/webhooks/{sub_id}/replay"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    receiver.wait_for("task.completed", &tasks[1]).await?;
    let resolved = receiver.wait_for("exception.resolved", &tasks[1]).await?;
    assert_eq!(resolved["data"]["exception_id"], exception.as_str());
    wait_state(&api, &key, "active").await?;

    // Every delivery is as `docs/schemas/webhooks/` says.
    let schema = |name: &str| -> anyhow::Result<Value> {
        let path = format!(
            "{}/../docs/schemas/webhooks/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        Ok(serde_json::from_str(&std::fs::read_to_string(path)?)?)
    };
    let event_schema = schema("event.schema.json")?;
    let mut delivery_schema = schema("delivery.schema.json")?;
    // The delivery's `$ref` to the event schema, inlined: nothing is fetched.
    delivery_schema["properties"]["events"]["items"] = event_schema;
    let validator = jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&delivery_schema)?;
    for got in receiver.got.lock().expect("lock").iter() {
        let body: Value = serde_json::from_slice(&got.body)?;
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{errors:?} in {body}");
    }

    // Everything arrived once, in `seq` order, with no gap; each task's events in the
    // order they happened.
    let events = receiver.events();
    let seqs: Vec<i64> = events.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let kinds_of = |task: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["stream"] == task)
            .filter_map(|e| e["type"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(kinds_of(&tasks[0]), ["task.completed"]);
    assert_eq!(
        kinds_of(&tasks[1]),
        ["exception.opened", "exception.resolved", "task.completed"]
    );

    // The change feed: the same events, from a resumable cursor, for ERPs without a
    // receiver.
    let (status, page) = api.get(&key, "/changes?limit=2").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"].as_array().map(Vec::len), Some(2));
    let next = page["next"].as_str().unwrap_or_default().to_owned();
    let (_, rest) = api
        .get(&key, &format!("/changes?after={next}&limit=1000"))
        .await;
    let mut feed: Vec<Value> = page["events"].as_array().cloned().unwrap_or_default();
    feed.extend(rest["events"].as_array().cloned().unwrap_or_default());
    let ids = |v: &[Value]| v.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    assert_eq!(ids(&feed), ids(&events), "the feed and the webhook agree");
    let end = rest["next"].as_str().unwrap_or_default().to_owned();
    let (_, empty) = api.get(&key, &format!("/changes?after={end}")).await;
    assert_eq!(empty["events"], json!([]));
    assert_eq!(empty["next"], end.as_str());
    let (_, only) = api
        .get(&manager, "/changes?types=task.completed&limit=1000")
        .await;
    assert_eq!(only["events"].as_array().map(Vec::len), Some(2), "{only}");
    for (token, query, status) in [
        (&key, "after=abc", 400),
        (&key, "after=-4", 400),
        (&key, "limit=0", 400),
        (&key, "limit=1001", 400),
        (&key, "wait=21", 400),
        (&key, "types=task.exploded", 400),
        (&key, "cursor=1", 400),
        (&picker, "", 403),
    ] {
        let (got, body) = api.get(token, &format!("/changes?{query}")).await;
        assert_eq!(got.as_u16(), status, "{query}: {body}");
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{body}"
        );
    }

    // Removed, a subscription gets nothing more; another organisation's id is not found.
    let (status, _) = api
        .call(Method::DELETE, &key, &format!("/webhooks/{sub_id}"), None)
        .await;
    assert_eq!(status, 204);
    let (status, _) = api
        .call(Method::DELETE, &key, &format!("/webhooks/{sub_id}"), None)
        .await;
    assert_eq!(status, 404);

    server.stop().await?;
    tdb.close().await
}
