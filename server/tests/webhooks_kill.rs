//! Webhook delivery survives its receiver going down and the server being SIGKILLed
//! (issue #24): the real `swt demo` process delivers the demo's outcomes, and more made
//! while it runs, to a local receiver that is down for a while; the server is killed
//! mid-delivery and while retrying, and started again. Afterwards every outcome of the
//! change feed reached the receiver, in `seq` order (each first arrival after the one
//! before), and the only repeats are batches sent again after a kill, as the
//! at-least-once contract allows. On the run's back-end (SQLite, or PostgreSQL with
//! `SWT_TEST_DATABASE_URL`).

// A poisoned lock in the receiver means a receiver thread panicked: the test fails anyway.
#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::{Value, json};
use swt_server::demo;
use swt_tests::process::{self, Running};
use swt_tests::{TestDb, api};

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_swt"))
}

/// What the receiver accepted: each batch's events, in arrival order.
#[derive(Clone, Default)]
struct Receiver {
    batches: Arc<Mutex<Vec<Vec<Value>>>>,
    down: Arc<AtomicBool>,
    /// Stores a batch, then takes 600 ms to answer: a kill then lands after the receiver
    /// has the batch and before swt knows it.
    slow: Arc<AtomicBool>,
}

impl Receiver {
    fn accepted(&self) -> Vec<Vec<Value>> {
        self.batches.lock().expect("lock").clone()
    }

    fn distinct(&self) -> usize {
        self.accepted()
            .iter()
            .flatten()
            .filter_map(|e| e["id"].as_str().map(str::to_owned))
            .collect::<HashSet<_>>()
            .len()
    }
}

async fn start_receiver(r: Receiver) -> anyhow::Result<String> {
    let app = axum::Router::new().route(
        "/in",
        axum::routing::post(move |body: Bytes| {
            let r = r.clone();
            async move {
                if r.down.load(Ordering::SeqCst) {
                    return StatusCode::BAD_GATEWAY;
                }
                let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                    return StatusCode::BAD_REQUEST;
                };
                let events = v["events"].as_array().cloned().unwrap_or_default();
                r.batches.lock().expect("lock").push(events);
                // Stored; the answer takes its time, so that kills land mid-delivery.
                let ms = if r.slow.load(Ordering::SeqCst) {
                    600
                } else {
                    30
                };
                tokio::time::sleep(Duration::from_millis(ms)).await;
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/in"))
}

fn start(args: &[&str], dir: &Path) -> anyhow::Result<Running> {
    process::start(bin(), args, dir)
}

fn kill(running: Running) -> anyhow::Result<()> {
    let (exit, _, logs) = process::signal_and_wait(running, "-KILL")?;
    anyhow::ensure!(!exit.success(), "SIGKILL ends the process abruptly");
    let panics: Vec<&String> = logs.iter().filter(|l| l.contains("panicked")).collect();
    anyhow::ensure!(panics.is_empty(), "the server panicked: {panics:?}");
    Ok(())
}

/// Waits until `done` or fails after `secs`.
async fn until(what: &str, secs: u64, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let t = Instant::now();
    while !done() {
        anyhow::ensure!(t.elapsed() < Duration::from_secs(secs), "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Every event of the change feed, in order.
async fn feed(api: &api::Api, key: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut after = "0".to_owned();
    loop {
        let (status, page) = api
            .get(key, &format!("/changes?after={after}&limit=1000"))
            .await;
        anyhow::ensure!(status == 200, "{status} {page}");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return Ok(all);
        }
        all.extend(events);
        after = page["next"].as_str().unwrap_or_default().to_owned();
    }
}

/// Closes up to `n` open tasks as the manager: each makes a `task.completed`.
async fn close_tasks(api: &api::Api, manager: &str, n: usize) -> anyhow::Result<usize> {
    let (status, list) = api.get(manager, "/tasks?status=open").await;
    anyhow::ensure!(status == 200, "{status} {list}");
    let ids: Vec<String> = list
        .as_array()
        .or_else(|| list["tasks"].as_array())
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t["id"].as_str().map(str::to_owned))
        .take(n)
        .collect();
    for id in &ids {
        let (status, body) = api
            .post(
                manager,
                &format!("/tasks/{id}/status"),
                json!({"status": "closed"}),
            )
            .await;
        anyhow::ensure!(status == 200, "{status} {body}");
    }
    Ok(ids.len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_survive_a_down_receiver_and_sigkill_in_order() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let dir = tempfile::tempdir()?;
    // Small batches and quick retries, so kills land mid-delivery and mid-retry; a short
    // time-out, so the lease a killed process held runs out soon (time-out + 5 s).
    let config = dir.path().join("swt.toml");
    std::fs::write(
        &config,
        "[webhooks]\nbatch = 5\ntimeout_ms = 1000\nfirst_backoff_ms = 50\nmax_backoff_ms = 200\nmax_attempts = 1000\npoll_ms = 20\n",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let listen = format!("127.0.0.1:{port}");
    let config = config.to_string_lossy().into_owned();
    let args = [
        "demo",
        "--listen",
        &listen,
        "--database-url",
        tdb.url(),
        "--config",
        &config,
    ];
    let t0 = Instant::now();
    let mut server = start(&args, dir.path())?;
    eprintln!("webhooks_kill: demo listening after {:?}", t0.elapsed());
    let base = format!("http://{listen}");
    let api = api::Api::new(&base);
    let admin = api::login(&base, "admin", demo::LOGINS[3].password).await?;
    let manager = api::login(&base, "manager", demo::LOGINS[2].password).await?;
    let (status, made) = api
        .post(&admin, "/integrations", json!({"name": "ERP"}))
        .await;
    anyhow::ensure!(status == 201, "{status} {made}");
    let key = made["key"].as_str().unwrap_or_default().to_owned();

    let receiver = Receiver::default();
    let url = start_receiver(receiver.clone()).await?;
    let (status, sub) = api.post(&key, "/webhooks", json!({"url": url})).await;
    anyhow::ensure!(status == 201, "{status} {sub}");
    let sub_id = sub["subscription"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Everything the demo recorded, from the first event on.
    let (status, body) = api
        .post(
            &key,
            &format!("/webhooks/{sub_id}/replay"),
            json!({"from_seq": 1}),
        )
        .await;
    anyhow::ensure!(status == 200, "{status} {body}");

    // 1. Killed mid-delivery: the receiver has stored a batch swt has no answer for yet.
    receiver.slow.store(true, Ordering::SeqCst);
    until("the first batch", 60, || !receiver.accepted().is_empty()).await?;
    kill(server)?;
    receiver.slow.store(false, Ordering::SeqCst);
    server = start(&args, dir.path())?;
    eprintln!(
        "webhooks_kill: first kill and restart done after {:?}",
        t0.elapsed()
    );
    close_tasks(&api, &manager, 3).await?;

    // 2. The receiver down, more outcomes made, the server killed while retrying.
    let before = receiver.distinct();
    until("some more deliveries", 60, || receiver.distinct() > before).await?;
    receiver.down.store(true, Ordering::SeqCst);
    close_tasks(&api, &manager, 3).await?;
    tokio::time::sleep(Duration::from_millis(400)).await;
    kill(server)?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server = start(&args, dir.path())?;
    close_tasks(&api, &manager, 2).await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    receiver.down.store(false, Ordering::SeqCst);

    // 3. Everything arrives.
    let expected = feed(&api, &key).await?;
    anyhow::ensure!(
        expected.len() > 20,
        "the demo made outcomes: {}",
        expected.len()
    );
    let total = expected.len();
    eprintln!("webhooks_kill: second kill done after {:?}", t0.elapsed());
    until("every outcome delivered", 120, || {
        receiver.distinct() >= total
    })
    .await?;
    let last = feed(&api, &key).await?;

    let batches = receiver.accepted();
    let mut first_arrival: Vec<i64> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut repeats = 0;
    for batch in &batches {
        let seqs: Vec<i64> = batch.iter().filter_map(|e| e["seq"].as_i64()).collect();
        anyhow::ensure!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a batch in order: {seqs:?}"
        );
        for e in batch {
            let id = e["id"].as_str().unwrap_or_default().to_owned();
            if seen.insert(id) {
                first_arrival.push(e["seq"].as_i64().unwrap_or(-1));
            } else {
                repeats += 1;
            }
        }
    }
    anyhow::ensure!(
        first_arrival.windows(2).all(|w| w[0] < w[1]),
        "every event first arrives after the one before it: {first_arrival:?}"
    );
    let want: Vec<i64> = last.iter().filter_map(|e| e["seq"].as_i64()).collect();
    anyhow::ensure!(
        first_arrival == want,
        "the receiver got exactly the feed's events: got {} of {}",
        first_arrival.len(),
        want.len()
    );
    // Each stream's events in the feed's order (implied by the above; stated for the
    // contract's sake).
    let mut by_stream: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for e in &last {
        by_stream
            .entry(e["stream"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(e["seq"].as_i64().unwrap_or(-1));
    }
    anyhow::ensure!(
        by_stream
            .values()
            .all(|s| s.windows(2).all(|w| w[0] < w[1]))
    );
    // At least once: the batch the first kill interrupted came again, and a repeat is
    // only ever such a batch (two kills, batches of 5).
    anyhow::ensure!((1..=2 * 5).contains(&repeats), "{repeats} repeated events");
    let kinds: HashSet<&str> = last.iter().filter_map(|e| e["type"].as_str()).collect();
    eprintln!(
        "webhooks_kill: {} events ({} batches, {repeats} repeated) of types {kinds:?}",
        last.len(),
        batches.len()
    );
    let (status, subs) = api.get(&key, "/webhooks").await;
    anyhow::ensure!(status == 200 && subs[0]["pending"] == 0, "{subs}");

    let (exit, _, _) = process::signal_and_wait(server, "-TERM")?;
    anyhow::ensure!(exit.success(), "the server stops cleanly on SIGTERM");
    tdb.close().await
}
