//! `swt-bench webhooks`: outcome delivery against a local receiver (issue #24's target:
//! at least 5,000 outcomes/s delivered, lag p99 ≤ 1 s). Makes a fresh database with the
//! demo operator, subscribes a receiver in this process, runs the server's own outbox
//! worker (sequencer and webhook delivery), and records outcomes through the server's
//! own `outbox::record` at a steady rate, in transactions of a projection chunk's size,
//! spread over 50 tasks like a 50-scanner site. The receiver takes each event's lag from
//! its `occurred_at` (the recording transaction's time) to its arrival, and checks that
//! events arrive in `seq` order, each once. Ends with one JSON summary line.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::StatusCode;
use clap::Args;
use swt_server::config::{Config, WebhookConfig};
use swt_server::outbox::{self, Outcome, OutcomeKind, webhooks};
use swt_server::{app, demo};

use super::runtime;

#[derive(Debug, Args)]
pub struct WebhooksArgs {
    /// The benchmark's own database: `sqlite://FILE` or `postgres://USER@HOST/DB`
    /// [default: a fresh SQLite file in a temporary directory].
    #[arg(long, env = "SWT_BENCH_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Outcomes recorded per second.
    #[arg(long, default_value_t = 6_000)]
    rate: u64,
    /// Seconds of recording.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Outcomes per recording transaction.
    #[arg(long, default_value_t = 60)]
    per_transaction: u64,
    /// Events per delivery request (`[webhooks] batch`).
    #[arg(long, default_value_t = 100)]
    batch: u32,
}

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    lags_ms: Vec<f64>,
    last_seq: i64,
    out_of_order: usize,
    requests: usize,
}

pub fn run(a: WebhooksArgs) -> anyhow::Result<ExitCode> {
    swt_server::telemetry::init(swt_server::config::LogFormat::Human, "warn")?;
    runtime()?.block_on(async move {
        let dir =
            std::env::temp_dir().join(format!("swt-bench-webhooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let url = a
            .database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}/webhooks.db?mode=rwc", dir.display()));
        let config = Config {
            database_url: url.clone(),
            ..Config::default()
        };
        let db = app::open_database(&config).await?;
        demo::seed(&db).await?;

        let seen = Arc::new(Mutex::new(Seen::default()));
        let receiver = {
            let seen = Arc::clone(&seen);
            axum::Router::new().route(
                "/in",
                axum::routing::post(move |body: Bytes| {
                    let seen = Arc::clone(&seen);
                    async move {
                        let now = chrono::Utc::now();
                        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
                            return StatusCode::BAD_REQUEST;
                        };
                        let Ok(mut s) = seen.lock() else {
                            return StatusCode::INTERNAL_SERVER_ERROR;
                        };
                        s.requests += 1;
                        for e in v["events"].as_array().into_iter().flatten() {
                            let seq = e["seq"].as_i64().unwrap_or(0);
                            if seq <= s.last_seq {
                                s.out_of_order += 1;
                            }
                            s.last_seq = seq;
                            // The demo's own outcomes (its tasks' completions) come too.
                            if !e["stream"].as_str().is_some_and(|t| t.starts_with("bench-task-")) {
                                continue;
                            }
                            if let Some(at) = e["occurred_at"]
                                .as_str()
                                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                            {
                                let lag = now.signed_duration_since(at);
                                s.lags_ms.push(lag.num_microseconds().unwrap_or(0) as f64 / 1e3);
                            }
                        }
                        StatusCode::NO_CONTENT
                    }
                }),
            )
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, receiver).await });

        let caller = swt_server::auth::integration::principal("bench", demo::ORG_ID);
        webhooks::add(
            &db,
            &caller,
            &webhooks::NewSubscription {
                url: format!("http://{addr}/in"),
                types: Vec::new(),
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("subscribing: {e}"))?;
        let stop = Arc::new(tokio::sync::Notify::new());
        let worker = tokio::spawn(webhooks::run(
            db.clone(),
            Arc::new(automerge::ActorId::random()),
            WebhookConfig {
                batch: a.batch,
                ..WebhookConfig::default()
            },
            Arc::new(tokio::sync::Notify::new()),
            Arc::clone(&stop),
        ));

        // Record at the rate: one transaction per tick.
        let per_txn = a.per_transaction.max(1);
        let tick = Duration::from_secs_f64(per_txn as f64 / a.rate.max(1) as f64);
        let total = a.rate * a.seconds;
        let started = Instant::now();
        let mut recorded: u64 = 0;
        let mut next = Instant::now();
        while recorded < total {
            let n = per_txn.min(total - recorded);
            let outcomes = (0..n)
                .map(|i| {
                    let k = recorded + i;
                    Outcome {
                        kind: OutcomeKind::ExceptionOpened,
                        stream: format!("bench-task-{}", k % 50),
                        data: serde_json::json!({
                            "exception_id": format!("exc-bench-{k}"), "kind": "duplicate_pick",
                            "object": format!("sgtin:00361500231012:B{k}"), "site_id": "site-mem",
                            "task_id": format!("bench-task-{}", k % 50), "scan_id": format!("scan-{k}"),
                            "detail": {"device": "bench"},
                        }),
                    }
                })
                .collect();
            let txn = sea_orm::TransactionTrait::begin(&db).await?;
            outbox::record(&txn, demo::ORG_ID, outcomes, chrono::Utc::now().timestamp_millis())
                .await?;
            txn.commit().await?;
            recorded += n;
            next += tick;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let recording = started.elapsed().as_secs_f64();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = seen.lock().map(|s| s.lags_ms.len()).unwrap_or(0) as u64;
            if got >= total || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let elapsed = started.elapsed().as_secs_f64();
        stop.notify_one();
        let _ = worker.await;
        let mut s = std::mem::take(
            &mut *seen
                .lock()
                .map_err(|_| anyhow::anyhow!("the receiver's lock is poisoned"))?,
        );
        let delivered = s.lags_ms.len();
        s.lags_ms.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            let i = ((s.lags_ms.len() as f64 * p).ceil() as usize).saturating_sub(1);
            s.lags_ms.get(i).copied().unwrap_or(f64::NAN)
        };
        let (p50, p95, p99, max) = (pct(0.50), pct(0.95), pct(0.99), pct(1.0));
        let backend = if url.starts_with("postgres") {
            "postgresql"
        } else {
            "sqlite"
        };
        println!(
            "recorded {total} outcomes in {recording:.2} s ({:.0}/s), delivered {delivered} in {elapsed:.2} s ({:.0}/s) in {} requests, {} out of order",
            total as f64 / recording,
            delivered as f64 / elapsed,
            s.requests,
            s.out_of_order
        );
        println!("lag ms: p50 {p50:.1}, p95 {p95:.1}, p99 {p99:.1}, max {max:.1}");
        println!(
            "{}",
            serde_json::json!({"bench": "webhooks", "backend": backend, "recorded": total,
                "recorded_per_s": total as f64 / recording, "delivered": delivered,
                "delivered_per_s": delivered as f64 / elapsed, "requests": s.requests,
                "out_of_order": s.out_of_order, "lag_ms": {"p50": p50, "p95": p95, "p99": p99, "max": max}})
        );
        anyhow::ensure!(
            delivered as u64 == total && s.out_of_order == 0,
            "not every outcome arrived once and in order"
        );
        db.close().await?;
        std::fs::remove_dir_all(&dir)?;
        Ok(ExitCode::SUCCESS)
    })
}
