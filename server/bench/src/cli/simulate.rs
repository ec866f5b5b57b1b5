//! `swt-bench simulate`: a fleet of simulated scanners built on the real core (real GS1
//! parsing, real task documents and device store, real HTTP sync) working tasks against a
//! running server, to measure end-to-end throughput and sync latency.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use serde_json::{Value, json};
use swt_core::api::SignedIn;
use swt_core::gs1::{self, ParseOptions};
use swt_core::model::{Action, Feedback, Identifiers, Scan, ScanId};
use swt_core::store::{Durability, Store, StoreOptions};
use swt_core::sync::{Client, SyncError, SyncPlan, SyncScope, sync_store_with};
use swt_domain::testing::{self, Rng};

/// `swt-bench simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The server to work against.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Number of simulated scanners (each registers its own device and works its own task).
    #[arg(long, default_value_t = 10)]
    scanners: usize,
    /// Scans each scanner records.
    #[arg(long, default_value_t = 500)]
    scans: usize,
    /// Scans recorded between two syncs.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Scans per second each scanner records, paced as people scan (0: as fast as
    /// possible, a throughput ceiling). Sync latency is meaningful at a sustained rate:
    /// at full speed every scanner syncs at once and latency is just queueing. Scanners
    /// start spread over one batch period, as real ones are not in step.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Every N-th batch, the scanner goes offline for two batches (0: never).
    #[arg(long, default_value_t = 0)]
    offline_every: usize,
    /// fsync every scan as a real scanner does (slower); by default scans are flushed
    /// before each sync.
    #[arg(long)]
    durable: bool,
    /// Task kind the scanners work: receiving, picking or shipping.
    #[arg(long, default_value = "picking")]
    kind: String,
    /// Site (GLN or id) the scanners work at.
    #[arg(long, default_value = "0614141000012")]
    site: String,
    /// Admin login (registers the simulated devices).
    #[arg(long, default_value = "admin")]
    admin_user: String,
    /// Admin password.
    #[arg(
        long,
        env = "SWT_SIM_ADMIN_PASSWORD",
        default_value = "demo-admin-2026"
    )]
    admin_password: String,
    /// Scanner user login (must work at the site).
    #[arg(long, default_value = "picker")]
    user: String,
    /// Scanner user password.
    #[arg(long, env = "SWT_SIM_PASSWORD", default_value = "demo-picker-2026")]
    password: String,
    /// Where the scanners keep their stores (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Which tasks each scanner syncs, as the core client's `SyncScope`: `working` (the
    /// client's default: the task it opened, and the site's task list every 30 s) or
    /// `site` (every open task of the site, with every other scanner's scans: the work
    /// grows with the square of the fleet).
    #[arg(long, default_value = "working", value_parser = ["working", "site"])]
    scope: String,
    /// Scanners working each task together (two receivers on one truck): they merge into
    /// one document and each sees the others' scans.
    #[arg(long, default_value_t = 1)]
    per_task: usize,
    /// Accepted for scripts written for older builds, where it meant what `--scope
    /// working` does now.
    #[arg(long, hide = true)]
    own_task: bool,
    /// After the last sync, wait (at most this many seconds) until the server has
    /// projected every merged scan, and report the end-to-end figure (0: do not wait).
    #[arg(long, default_value_t = 120)]
    projection_wait: u64,
}

struct Api {
    agent: ureq::Agent,
    base: String,
}

impl Api {
    fn new(base: &str) -> Self {
        Self {
            agent: swt_bench::http_agent(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// One API call, retried like a scanner would (see [`with_retries`]).
    fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        with_retries(&mut 0, || self.call_once(method, path, token, body))
    }

    fn call_once(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}/api/v1{path}", self.base);
        let resp = match (method, body) {
            ("GET", _) => {
                let mut r = self.agent.get(&url);
                if let Some(t) = token {
                    r = r.header("Authorization", &format!("Bearer {t}"));
                }
                r.call()
            }
            (_, b) => {
                let mut r = self.agent.post(&url);
                if let Some(t) = token {
                    r = r.header("Authorization", &format!("Bearer {t}"));
                }
                r.send_json(b.cloned().unwrap_or(Value::Null))
            }
        }
        // No answer at all (refused, reset, timed out): a scanner tries again.
        .map_err(|e| Transient(format!("{method} {url}: {e}")))?;
        let status = resp.status().as_u16();
        let value: Value = resp.into_body().read_json().unwrap_or(Value::Null);
        if RETRY_STATUSES.contains(&status) {
            return Err(Transient(format!("{method} {path}: {status} {value}")).into());
        }
        anyhow::ensure!(
            (200..300).contains(&status),
            "{method} {path}: {status} {value}"
        );
        Ok(value)
    }

    /// The server's `/metrics` text, or `None` if it does not answer.
    fn metrics(&self) -> Option<String> {
        self.agent
            .get(&format!("{}/metrics", self.base))
            .call()
            .ok()?
            .into_body()
            .read_to_string()
            .ok()
    }

    /// The server's CPU seconds so far (`process_cpu_seconds_total` of its `/metrics`);
    /// `None` from a build that does not publish it.
    fn server_cpu(&self) -> Option<f64> {
        let text = self.metrics()?;
        text.lines()
            .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))?
            .trim()
            .parse()
            .ok()
    }

    /// The server's sync time per document exchange, by phase, in ms (from its
    /// `/metrics`, over the server's life), and the exchanges counted; `None` when the
    /// server does not publish them (an older build). The phases end with the whole
    /// documents loaded and saved per exchange, where the server publishes them.
    fn sync_phases(&self) -> Option<(Vec<(String, f64)>, f64)> {
        let text = self.metrics()?;
        let value = |line: &str| line.rsplit(' ').next()?.parse::<f64>().ok();
        let exchanges = text
            .lines()
            .find(|l| l.starts_with("swt_sync_documents_total "))
            .and_then(value)?;
        let mut phases: Vec<(String, f64)> = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("swt_sync_phase_seconds_total{phase=\"")?;
                let (phase, _) = rest.split_once('"')?;
                Some((phase.to_owned(), value(l)? * 1000.0 / exchanges.max(1.0)))
            })
            .collect();
        // In the order an exchange goes through them.
        let order = ["lock_wait", "load", "merge", "write"];
        phases.sort_by_key(|(p, _)| order.iter().position(|o| o == p).unwrap_or(order.len()));
        for (name, metric) in [
            ("whole loads", "swt_sync_document_loads_total "),
            ("whole saves", "swt_sync_snapshots_total "),
        ] {
            if let Some(n) = text.lines().find(|l| l.starts_with(metric)).and_then(value) {
                phases.push((name.to_owned(), n / exchanges.max(1.0)));
            }
        }
        Some((phases, exchanges))
    }

    fn login(&self, user: &str, password: &str) -> anyhow::Result<String> {
        let v = self.call(
            "POST",
            "/auth/login",
            None,
            Some(&json!({"username": user, "password": password})),
        )?;
        v["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access token")
    }
}

/// Statuses a scanner retries after a pause: timeout, throttled, server busy or
/// unavailable (503 with `Retry-After`), a proxy without its upstream.
const RETRY_STATUSES: [u16; 5] = [408, 429, 502, 503, 504];
/// Attempts after the first before a scanner gives up (backoff 0.2 s doubling to 6.4 s:
/// about 13 s in all).
const RETRIES: u32 = 6;

/// A failure worth trying again later.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Transient(String);

/// Runs `f` until it succeeds, fails for good, or [`RETRIES`] retries of a transient
/// failure (a [`Transient`] error, or a sync error the core calls transient) are spent,
/// waiting with exponential backoff in between as a real scanner does. `retries` counts
/// the retries made.
fn with_retries<T>(
    retries: &mut usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut attempt = 0u32;
    loop {
        match f() {
            Err(e) if attempt < RETRIES && is_transient(&e) => {
                attempt += 1;
                *retries += 1;
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
            other => return other,
        }
    }
}

fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.is::<Transient>()
            || c.downcast_ref::<SyncError>()
                .is_some_and(SyncError::is_transient)
    })
}

const GTINS: [&str; 6] = [
    "00361500231012",
    "00304094888026",
    "00368180513063",
    "00300937180562",
    "00343598257105",
    "00360505257935",
];

#[derive(Default)]
struct Totals {
    scans: usize,
    sync_ms: Vec<f64>,
    errors: Vec<String>,
    retries: usize,
    round_trips: usize,
    bytes_sent: usize,
}

/// Runs the simulation and prints its figures; the last line is one JSON summary.
pub fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.scanners > 0 && args.scans > 0 && args.batch > 0 && args.per_task > 0,
        "--scanners, --scans, --batch and --per-task must be at least 1"
    );
    anyhow::ensure!(
        args.rate == 0.0 || (0.01..=1_000_000.0).contains(&args.rate),
        "--rate must be 0 (as fast as possible) or between 0.01 and 1,000,000 scans/s"
    );
    let action = match args.kind.as_str() {
        "receiving" => Action::Receive,
        "picking" => Action::Pick,
        "shipping" => Action::Ship,
        other => anyhow::bail!("--kind {other}: expected receiving, picking or shipping"),
    };
    let api = Api::new(&args.server);
    let admin = api.login(&args.admin_user, &args.admin_password)?;
    let temp = tempfile_dir(&args.dir)?;
    eprintln!("preparing and signing in {} scanners …", args.scanners);
    let mut prepared = Vec::new();
    let client = Client::new(&args.server, Duration::from_secs(60));
    let mut sign_in_retries = 0usize;
    let run_tag = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut task_id = String::new();
    for i in 0..args.scanners {
        let device = api.call(
            "POST",
            "/devices",
            Some(&admin),
            Some(&json!({"site": args.site, "name": format!("sim-{run_tag}-{i}")})),
        )?;
        if i % args.per_task == 0 {
            let quantity = (args.scans * args.per_task).div_ceil(GTINS.len());
            let lines: Vec<Value> = GTINS
                .iter()
                .map(|g| json!({"gtin": g, "quantity": quantity}))
                .collect();
            let task = api.call(
                "POST",
                "/tasks",
                Some(&admin),
                Some(&json!({
                    "kind": args.kind,
                    "site": args.site,
                    "title": format!("simulation {run_tag} task {}", i / args.per_task),
                    "expected": {"lines": lines}
                })),
            )?;
            task_id = task["id"].as_str().context("task id")?.to_owned();
        }
        let device_id = device["id"].as_str().context("device id")?.to_owned();
        let task_id = task_id.clone();
        // Every scanner signs in as the same user from this one address, which the
        // server's sign-in throttle limits to a few attempts in flight (a real fleet has
        // one account per person): 50 scanners signing in at once were refused with
        // `too_many_attempts` and a Retry-After of the rest of the 15-minute window. So
        // the scanners sign in one after another here, as people arriving at a shift do;
        // the server hashes passwords one or two at a time anyway. Set-up, not measured.
        let tokens = with_retries(&mut sign_in_retries, || {
            Ok(client.login(&args.user, &args.password, &device_id)?)
        })
        .with_context(|| format!("scanner {i} signing in"))?;
        prepared.push((i, device_id, task_id, tokens));
    }

    if sign_in_retries > 0 {
        eprintln!("sign-in: {sign_in_retries} attempts retried after a transient failure");
    }

    let totals = Arc::new(Mutex::new(Totals::default()));
    // Sign-in (above: a deliberately slow password hash) and the first download of the
    // task are set-up, not scanning: the clock starts when every scanner is ready.
    let ready = std::sync::Barrier::new(prepared.len() + 1);
    let mut started = Instant::now();
    // The server's CPU seconds when the clock starts: set-up (sign-in hashes) is not the
    // run's.
    let mut cpu_at_start = None;
    std::thread::scope(|scope| {
        for (i, device_id, task_id, tokens) in &prepared {
            let totals = Arc::clone(&totals);
            let args = &args;
            let ready = &ready;
            let dir = temp.join(format!("scanner-{i}"));
            let job = Job {
                index: *i,
                device_id,
                task_id,
                tokens,
                dir,
            };
            scope.spawn(move || {
                let result = scanner(args, action, &job, ready, &totals);
                if let (Err(e), Ok(mut t)) = (result, totals.lock()) {
                    t.errors.push(format!("scanner {i}: {e:#}"));
                }
            });
        }
        ready.wait();
        started = Instant::now();
        cpu_at_start = api.server_cpu();
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_scanning = api.server_cpu();

    // Everything recorded must be on the server and queryable, and (unless told not to
    // wait) projected.
    // One list request per poll (the task detail would parse every document).
    let ids: std::collections::BTreeSet<&str> =
        prepared.iter().map(|(_, _, t, _)| t.as_str()).collect();
    let mut projected_after = None;
    let wait_until = Instant::now() + Duration::from_secs(args.projection_wait);
    let merged = loop {
        let list = api.call(
            "GET",
            &format!("/tasks?status=open&kind={}&limit=500", args.kind),
            Some(&admin),
            None,
        )?;
        let ours: Vec<&Value> = list
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|t| t["id"].as_str().is_some_and(|id| ids.contains(id)))
                    .collect()
            })
            .unwrap_or_default();
        let merged: i64 = ours
            .iter()
            .map(|t| t["scan_count"].as_i64().unwrap_or(0))
            .sum();
        let pending = ids.len() - ours.len()
            + ours
                .iter()
                .filter(|t| t["projection_pending"].as_bool().unwrap_or(true))
                .count();
        if pending == 0 {
            projected_after = Some(started.elapsed().as_secs_f64());
            break merged;
        }
        if Instant::now() >= wait_until {
            break merged;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let cpu_total = api.server_cpu();
    let since_start = |cpu: Option<f64>| Some(cpu? - cpu_at_start?);
    let (cpu_scanning, cpu_total) = (since_start(cpu_scanning), since_start(cpu_total));
    let totals = totals
        .lock()
        .map_err(|_| anyhow::anyhow!("a scanner thread panicked"))?;
    let mut lat = totals.sync_ms.clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((lat.len() as f64 - 1.0) * p).round() as usize;
        lat[idx.min(lat.len() - 1)]
    };
    let expected = args.scanners * args.scans;
    println!("scanners            {}", args.scanners);
    println!("scans recorded      {}", totals.scans);
    println!("scans on the server {merged} (expected {expected})");
    println!("wall time           {elapsed:.2} s");
    println!(
        "throughput          {:.0} scans/s (recorded, synced, merged)",
        totals.scans as f64 / elapsed
    );
    let projected_per_sec = projected_after.map(|t| totals.scans as f64 / t);
    match (projected_after, projected_per_sec) {
        (Some(t), Some(r)) => println!(
            "end to end          {r:.0} scans/s (… and projected: all done after {t:.2} s)"
        ),
        _ => println!("end to end          projection not finished in time"),
    }
    println!(
        "sync runs           {} ({} HTTP round trips, {} retried after a transient failure)",
        lat.len(),
        totals.round_trips,
        totals.retries
    );
    println!(
        "sync latency        p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    // Where the server's time per exchange went, so the next bottleneck is visible.
    let phases = api.sync_phases();
    if let Some((phases, exchanges)) = &phases {
        let list: Vec<String> = phases
            .iter()
            .map(|(p, v)| {
                if p.starts_with("whole") {
                    format!("{p} {v:.3}")
                } else {
                    format!("{p} {v:.2} ms")
                }
            })
            .collect();
        println!(
            "server per exchange {} ({exchanges:.0} document exchanges)",
            list.join(", ")
        );
    }
    if let (Some(scanning), Some(total), Some((_, exchanges))) = (cpu_scanning, cpu_total, &phases)
    {
        println!(
            "server CPU in run   {scanning:.1} s while scanning ({:.2} ms per exchange), {total:.1} s until projected ({:.0} µs per scan)",
            scanning * 1e3 / exchanges.max(1.0),
            total * 1e6 / (merged.max(1) as f64)
        );
    }
    // The scanners' stores live in this process: its peak memory over the fleet is
    // what one device holds (plus the simulator's own small share).
    let peak_rss_mb = peak_rss_kb().map(|kb| kb as f64 / 1024.0);
    if let Some(mb) = peak_rss_mb {
        println!(
            "simulator memory    peak {mb:.0} MB, {:.1} MB per scanner",
            mb / args.scanners as f64
        );
    }
    for e in totals.errors.iter().take(10) {
        println!("error               {e}");
    }
    let ok = totals.errors.is_empty()
        && merged == expected as i64
        && (args.projection_wait == 0 || projected_after.is_some());
    let summary = json!({
        "scanners": args.scanners,
        "scans": totals.scans,
        "scans_on_server": merged,
        "seconds": elapsed,
        "scans_per_sec": totals.scans as f64 / elapsed,
        "projected_seconds": projected_after,
        "projected_scans_per_sec": projected_per_sec,
        "scope": args.scope,
        "per_task": args.per_task,
        "rate_per_scanner": (args.rate > 0.0).then_some(args.rate),
        "sync_runs": lat.len(),
        "round_trips": totals.round_trips,
        "bytes_sent": totals.bytes_sent,
        "sync_p50_ms": pct(0.5),
        "sync_p90_ms": pct(0.9),
        "sync_p99_ms": pct(0.99),
        "sync_max_ms": pct(1.0),
        "server_exchanges": phases.as_ref().map(|(_, n)| *n),
        "server_sync_ms_per_exchange": phases.as_ref().map(|(p, _)| {
            p.iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect::<serde_json::Map<String, Value>>()
        }),
        "simulator_peak_rss_mb": peak_rss_mb,
        "server_cpu_scanning_s": cpu_scanning,
        "server_cpu_until_projected_s": cpu_total,
        "errors": totals.errors.len(),
        "retries": totals.retries,
        "ok": ok,
    });
    println!("{summary}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn tempfile_dir(given: &Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("swt-simulate-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// One simulated scanner's assignment.
struct Job<'a> {
    index: usize,
    device_id: &'a str,
    task_id: &'a str,
    /// The scanner's session (signed in during set-up).
    tokens: &'a SignedIn,
    dir: PathBuf,
}

fn scanner(
    args: &SimulateArgs,
    action: Action,
    job: &Job<'_>,
    ready: &std::sync::Barrier,
    totals: &Mutex<Totals>,
) -> anyhow::Result<()> {
    // Whatever happens, this scanner must reach the barrier, or the others wait forever.
    let mut ready = Some(ready);
    let result = scanner_inner(args, action, job, &mut ready, totals);
    if let Some(r) = ready {
        r.wait();
    }
    result
}

fn scanner_inner(
    args: &SimulateArgs,
    action: Action,
    job: &Job<'_>,
    ready: &mut Option<&std::sync::Barrier>,
    totals: &Mutex<Totals>,
) -> anyhow::Result<()> {
    let Job {
        index,
        device_id,
        task_id,
        tokens,
        ref dir,
    } = *job;
    let client = Client::new(&args.server, Duration::from_secs(60));
    let mut retries = 0usize;
    let device = tokens.device.clone().context("session without device")?;
    let actor = automerge::ActorId::from(hex::decode(&device.actor_id)?.as_slice());
    let durability = if args.durable {
        Durability::EachAppend
    } else {
        Durability::Batched
    };
    let mut store = Store::open(
        dir,
        actor.clone(),
        StoreOptions {
            durability,
            ..StoreOptions::default()
        },
    )?;
    let scope = if args.scope == "site" {
        SyncScope::Site
    } else {
        SyncScope::Working
    };
    // As the client's session: the task list at the first sync and every 30 s after;
    // the scanner opens its task (an empty document the first sync fills).
    let mut list_fetched: Option<Instant> = None;
    let mut sync = |store: &mut Store| -> anyhow::Result<swt_core::sync::SyncReport> {
        let fetch_list = list_fetched.is_none_or(|t| {
            t.elapsed() >= Duration::from_millis(swt_core::session::TASK_LIST_EVERY_MS)
        });
        let plan = SyncPlan {
            scope,
            fetch_list,
            only: None,
        };
        let report = sync_store_with(store, &client, &tokens.access_token, &actor, &plan)?;
        if fetch_list {
            list_fetched = Some(Instant::now());
        }
        // A document the server could not take this time (busy, database away) is
        // retried, as the client does next run; a refusal is not.
        if report.refused.is_empty() && !report.failed.is_empty() {
            return Err(Transient(format!("sync problems: {:?}", report.failed)).into());
        }
        Ok(report)
    };
    if store.doc(task_id).is_none() {
        store.insert_doc(task_id, swt_core::doc::TaskDocument::empty(actor.clone()))?;
    }
    let first = with_retries(&mut retries, || sync(&mut store))?;
    anyhow::ensure!(store.doc(task_id).is_some(), "task not received: {first:?}");
    if let Some(r) = ready.take() {
        r.wait();
    }

    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15 ^ ((index as u64 + 1) << 17));
    let opts = ParseOptions::default();
    let paced_from = (args.rate > 0.0).then(|| {
        let period = args.batch as f64 / args.rate;
        Instant::now() + Duration::from_secs_f64(period * index as f64 / args.scanners as f64)
    });
    // `<actor>.<run nonce>.<counter>`, as a real scanner's ids: the server takes only ids
    // in the writing actor's space, and the nonce keeps a later run's ids new.
    let id_prefix = format!(
        "{actor}.{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let mut recorded = 0usize;
    let mut batch_no = 0usize;
    let mut offline_left = 0usize;
    let mut sync_ms = Vec::new();
    let mut round_trips = 0;
    let mut bytes_sent = 0;
    while recorded < args.scans {
        let n = args.batch.min(args.scans - recorded);
        let mut scans = Vec::with_capacity(n);
        for k in 0..n {
            let gtin = GTINS[(recorded + k) % GTINS.len()];
            let raw = testing::pack_barcode(&mut rng, gtin);
            // The real parser fills the identifiers, as on a scanner.
            let parsed = gs1::parse(raw.as_bytes(), &opts).ok();
            let pi = parsed.as_ref().and_then(|p| p.product_identifier());
            scans.push(Scan {
                id: ScanId::from_device_counter(&id_prefix, (recorded + k) as u64)?,
                ids: Identifiers {
                    gtin: pi.as_ref().map(|p| p.gtin),
                    serial: pi.as_ref().and_then(|p| p.serial.clone()),
                    lot: pi.as_ref().and_then(|p| p.lot.clone()),
                    expiry: pi
                        .as_ref()
                        .and_then(|p| p.expiry.as_ref().map(|e| e.yymmdd.clone())),
                    sscc: None,
                },
                raw: raw.into_bytes(),
                action,
                user: tokens.user.id.clone(),
                device: device_id.to_owned(),
                location: None,
                device_time_ms: now_ms(),
                feedback: Feedback::Ok,
                parent: None,
            });
        }
        for scan in &scans {
            store.record_scan(task_id, scan)?;
        }
        recorded += n;
        batch_no += 1;
        if let Some(from) = paced_from {
            // The batch is synced when its last scan is due.
            let due = from + Duration::from_secs_f64(recorded as f64 / args.rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        if args.offline_every > 0 && batch_no.is_multiple_of(args.offline_every) {
            offline_left = 2;
        }
        if offline_left > 0 && recorded < args.scans {
            offline_left -= 1;
            continue;
        }
        store.flush()?;
        let t = Instant::now();
        // Scans stay in the store while the server is away; the sync is tried again.
        let report = with_retries(&mut retries, || sync(&mut store))?;
        sync_ms.push(t.elapsed().as_secs_f64() * 1e3);
        round_trips += report.round_trips;
        bytes_sent += report.bytes_sent;
        anyhow::ensure!(
            report.refused.is_empty() && report.failed.is_empty(),
            "sync problems: {report:?}"
        );
    }
    let mut t = totals
        .lock()
        .map_err(|_| anyhow::anyhow!("totals poisoned"))?;
    t.scans += recorded;
    t.sync_ms.extend(sync_ms);
    t.round_trips += round_trips;
    t.retries += retries;
    t.bytes_sent += bytes_sent;
    Ok(())
}

/// This process's peak resident memory (`VmHWM`, Linux), in KiB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_are_retried_and_others_are_not() {
        let mut retries = 0;
        let mut calls = 0;
        let got = with_retries(&mut retries, || {
            calls += 1;
            match calls {
                1 => Err(Transient("503 unavailable".into()).into()),
                2 => Err(anyhow::Error::from(SyncError::Network("refused".into()))),
                _ => Ok(calls),
            }
        });
        assert_eq!((got.ok(), retries), (Some(3), 2));

        let mut retries = 0;
        let refused = with_retries(&mut retries, || -> anyhow::Result<()> {
            Err(SyncError::Rejected {
                status: 403,
                code: "sync_refused".into(),
                message: "no".into(),
            }
            .into())
        });
        assert!(refused.is_err());
        assert_eq!(retries, 0, "a refusal is not retried");
        assert!(is_transient(&anyhow::Error::from(SyncError::Rejected {
            status: 408,
            code: "timeout".into(),
            message: "slow".into(),
        })));
    }
}
