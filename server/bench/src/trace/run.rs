//! The query phase: the real server (full router, middleware, auth) on an ephemeral
//! loopback port, a manager's real token, and one client asking one request at a time,
//! so each figure is the latency of one request on an otherwise idle server.
//!
//! Lookups are random over what the load holds: serial histories of packs that went
//! through picking (three events, six for returns), and explosions of whole pallets
//! (`cases` cases × `packs` packs). Every answer is checked against the generator's own
//! account of the data, so a fast wrong answer fails the run instead of passing it.

use std::time::Instant;

use serde::Serialize;
use swt_domain::testing::Rng;

use super::BenchError;
use super::load::{self, Seeded};
use super::warehouse::{ORG, PICK_LAG, Shape};
use swt_server::app::{self, Server};
use swt_server::auth::Role;
use swt_server::auth::keys::KeyRing;
use swt_server::auth::token::{self, Subject};
use swt_server::config::Config;
use swt_server::trace::dto::{ContentsQuery, HistoryQuery};
use swt_server::trace::service;

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://FILE` or `postgres://…/DB` (created when missing).
    pub database_url: String,
    /// The warehouse to load.
    pub shape: Shape,
    /// Load again even if the database holds a finished load of this shape.
    pub reseed: bool,
    /// Measured serial-history requests.
    pub serial_lookups: usize,
    /// Measured container-explosion requests.
    pub container_lookups: usize,
    /// Unmeasured requests of each kind first (caches, connections, statement caches).
    pub warmup: usize,
    /// Measured requests of each console page (0: no console phase).
    pub console_lookups: usize,
    /// Progress lines on standard error.
    pub progress: bool,
}

/// Latency of one kind of request, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Measured requests.
    pub n: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

/// One query kind: end to end over HTTP, and the same query called in-process (database
/// and mapping only), to tell where the time goes.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    /// Request path pattern.
    pub route: &'static str,
    /// Over HTTP: routing, auth, query, JSON, loopback.
    pub http: Latency,
    /// The service function alone.
    pub service: Latency,
    /// Mean response size, bytes.
    pub mean_response_bytes: usize,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The load (reused or made now).
    pub seed: SeedSummary,
    /// Serial history (default page: every event of a pack here).
    pub serial_history: QueryReport,
    /// A whole pallet's contents, one page (of [`CONTENTS_PAGE`]) per request: each
    /// request is one sample.
    pub container_contents: QueryReport,
    /// The same, all pages of one pallet one after another: each pallet is one sample.
    pub container_walk: QueryReport,
    /// The console's pages (issue #23), each over HTTP.
    pub console: Vec<super::console::PageReport>,
}

/// Page size the benchmark asks the explosion for (the largest the API gives).
pub const CONTENTS_PAGE: u64 = swt_server::trace::service::MAX_LIMIT;

/// The load, as reported.
#[derive(Debug, Clone, Serialize)]
pub struct SeedSummary {
    /// `epcis_event` rows.
    pub events: u64,
    /// `epcis_event_epc` rows.
    pub event_identifiers: u64,
    /// `trace_object` rows.
    pub objects: u64,
    /// Pallets received.
    pub pallets: u64,
    /// Cases per pallet × packs per case.
    pub pallet_shape: String,
    /// Seconds the load took when it was made.
    pub load_seconds: f64,
    /// Of which indexes and statistics.
    pub index_seconds: f64,
    /// Whether this run reused an earlier load.
    pub reused: bool,
    /// Bytes on disk now.
    pub database_bytes: u64,
}

/// Percentiles of request times.
pub fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let n = ms.len();
    let at = |q: f64| -> f64 {
        if n == 0 {
            return 0.0;
        }
        let i = ((q * n as f64).ceil() as usize).clamp(1, n) - 1;
        ms[i]
    };
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    Latency {
        n,
        p50_ms: round(at(0.50)),
        p95_ms: round(at(0.95)),
        p99_ms: round(at(0.99)),
        max_ms: round(ms.last().copied().unwrap_or(0.0)),
        mean_ms: round(ms.iter().sum::<f64>() / n.max(1) as f64),
    }
}

/// A lookup and what its answer must say.
struct Lookup {
    key: String,
    /// History length, or descendants.
    expect: usize,
}

fn serial_lookups(seeded: &Seeded, rng: &mut Rng, n: usize) -> Result<Vec<Lookup>, BenchError> {
    let s = &seeded.shape;
    let per = u64::from(s.cases) * u64::from(s.packs);
    let eligible: Vec<u64> = (0..seeded.hours)
        .filter(|&p| s.pallet_picked(p) && p + PICK_LAG < seeded.hours)
        .collect();
    if eligible.is_empty() {
        return Err(BenchError::Setup(
            "the load holds no picked packs: load more events".into(),
        ));
    }
    Ok((0..n)
        .map(|_| {
            let p = eligible[rng.below(eligible.len() as u64) as usize];
            let k = rng.below(per);
            Lookup {
                key: s.pack_key(p, k),
                expect: s.pack_history_len(seeded.hours, p, k),
            }
        })
        .collect())
}

fn container_lookups(seeded: &Seeded, rng: &mut Rng, n: usize) -> Result<Vec<Lookup>, BenchError> {
    let s = &seeded.shape;
    let whole: Vec<u64> = (0..seeded.hours)
        .filter(|&p| s.pallet_whole(seeded.hours, p))
        .collect();
    if whole.is_empty() {
        return Err(BenchError::Setup("the load holds no whole pallet".into()));
    }
    Ok((0..n)
        .map(|_| Lookup {
            key: s.pallet_key(whole[rng.below(whole.len() as u64) as usize]),
            expect: s.pallet_descendants(),
        })
        .collect())
}

/// Loads (or reuses) the database, then measures.
pub async fn run(opts: &Options) -> Result<Report, BenchError> {
    let seeded =
        load::ensure_seeded(&opts.database_url, opts.shape, opts.reseed, opts.progress).await?;
    let database_bytes = load::database_bytes(&opts.database_url).await?;
    if opts.progress {
        eprintln!(
            "bench: {} events, {} objects, {:.1} GB on disk{}",
            seeded.events,
            seeded.objects,
            database_bytes as f64 / 1e9,
            if seeded.reused {
                " (reused an earlier load)"
            } else {
                ""
            }
        );
    }
    let (backend, _) = swt_server::db::normalise_url(&opts.database_url)
        .map_err(|e| BenchError::Setup(e.to_string()))?;
    let config = Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: opts.database_url.clone(),
        ..Config::default()
    };
    let db = app::open_database(&config)
        .await
        .map_err(|e| BenchError::Db(e.to_string()))?;
    // The token is minted here with the server's own key-encryption key.
    let kek = swt_server::auth::keys::Kek::resolve(&config)
        .map_err(|e| BenchError::Setup(format!("key-encryption key: {e}")))?;
    let server = Server::bind(config, db.clone()).await?;
    let root = format!("http://{}", server.local_addr()?);
    let base = format!("{root}/api/v1");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stop_rx.await;
    }));
    let keys = KeyRing::with_kek(kek);
    let bearer = token::issue(
        &keys,
        &db,
        &Subject {
            user_id: "bench-manager",
            org_id: ORG,
            site_id: None,
            role: Role::Manager,
            device: None,
            session: None,
        },
    )
    .await
    .map(|t| format!("Bearer {t}"))
    .map_err(|e| BenchError::Setup(format!("issuing a manager token: {e}")))?;

    let mut rng = Rng::new(opts.shape.seed ^ 0xBE7C_4000);
    let serials = serial_lookups(&seeded, &mut rng, opts.warmup + opts.serial_lookups)?;
    let pallets = container_lookups(&seeded, &mut rng, opts.warmup + opts.container_lookups)?;

    let client = HttpClient::new(base, bearer);
    let (client, serial_http) = timed_http(client, &serials, opts, Kind::History).await?;
    let (_client, contents_http) = timed_http(client, &pallets, opts, Kind::Contents).await?;

    // The same lookups in-process: the database and mapping without HTTP.
    let mut serial_service = Vec::with_capacity(opts.serial_lookups);
    for (i, l) in serials.iter().enumerate() {
        let t = Instant::now();
        let page = service::history(&db, ORG, &l.key, &HistoryQuery::default())
            .await
            .map_err(|e| request_err(&l.key, e))?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if page.items.len() != l.expect {
            return Err(request_err(
                &l.key,
                format!("{} events, expected {}", page.items.len(), l.expect),
            ));
        }
        if i >= opts.warmup {
            serial_service.push(ms);
        }
    }
    let mut contents_service = Vec::with_capacity(opts.container_lookups * 16);
    let mut walk_service = Vec::with_capacity(opts.container_lookups);
    for (i, l) in pallets.iter().enumerate() {
        let (mut q, mut listed) = (
            ContentsQuery {
                limit: Some(CONTENTS_PAGE),
                ..Default::default()
            },
            0,
        );
        let (walk, mut pages) = (Instant::now(), Vec::new());
        loop {
            let t = Instant::now();
            let page = service::contents(&db, ORG, &l.key, &q)
                .await
                .map_err(|e| request_err(&l.key, e))?;
            pages.push(t.elapsed().as_secs_f64() * 1e3);
            listed += page.items.len();
            match page.next_cursor {
                Some(c) => q.cursor = Some(c),
                None => break,
            }
        }
        let walk_ms = walk.elapsed().as_secs_f64() * 1e3;
        if listed != l.expect {
            return Err(request_err(
                &l.key,
                format!("{listed} objects inside, expected {}", l.expect),
            ));
        }
        if i >= opts.warmup {
            contents_service.extend(pages);
            walk_service.push(walk_ms);
        }
    }

    let console = if opts.console_lookups > 0 {
        let packs: Vec<String> = serials.iter().map(|l| l.key.clone()).collect();
        let whole: Vec<String> = pallets.iter().map(|l| l.key.clone()).collect();
        super::console::run(
            &db,
            root,
            &packs,
            &whole,
            opts.console_lookups,
            opts.warmup.min(opts.console_lookups),
            opts.progress,
        )
        .await?
    } else {
        Vec::new()
    };

    let _ = stop_tx.send(());
    if let Ok(Err(e)) = serving.await {
        tracing::warn!(error = %e, "benchmark server stopped with an error");
    }
    Ok(Report {
        backend: match backend {
            swt_server::db::Backend::Sqlite => "sqlite",
            swt_server::db::Backend::Postgres => "postgres",
        },
        seed: SeedSummary {
            events: seeded.events,
            event_identifiers: seeded.epcs,
            objects: seeded.objects,
            pallets: seeded.hours,
            pallet_shape: format!("{} x {}", opts.shape.cases, opts.shape.packs),
            load_seconds: (seeded.load_seconds * 10.0).round() / 10.0,
            index_seconds: (seeded.index_seconds * 10.0).round() / 10.0,
            reused: seeded.reused,
            database_bytes,
        },
        serial_history: QueryReport {
            route: "GET /api/v1/trace/objects/{id}/history",
            http: latency(serial_http.ms),
            service: latency(serial_service),
            mean_response_bytes: serial_http.mean_bytes,
        },
        container_contents: QueryReport {
            route: "GET /api/v1/trace/containers/{id}/contents",
            http: latency(contents_http.ms),
            service: latency(contents_service),
            mean_response_bytes: contents_http.mean_bytes,
        },
        container_walk: QueryReport {
            route: "GET /api/v1/trace/containers/{id}/contents (every page)",
            http: latency(contents_http.walk_ms),
            service: latency(walk_service),
            mean_response_bytes: contents_http.mean_walk_bytes,
        },
        console,
    })
}

fn request_err(path: &str, why: impl std::fmt::Display) -> BenchError {
    BenchError::Request {
        path: path.to_owned(),
        why: why.to_string(),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    History,
    Contents,
}

/// What the benchmark reads of a page: both routes answer `items` and `next_cursor`.
#[derive(serde::Deserialize)]
struct PageBody {
    items: Vec<serde::de::IgnoredAny>,
    next_cursor: Option<String>,
}

impl Kind {
    fn path(self, key: &str) -> String {
        match self {
            Self::History => format!("/trace/objects/{key}/history"),
            Self::Contents => format!("/trace/containers/{key}/contents?limit={CONTENTS_PAGE}"),
        }
    }

    /// Whether a lookup follows `next_cursor` to the end (history's default page already
    /// holds every event of a pack here).
    fn walks(self) -> bool {
        matches!(self, Self::Contents)
    }
}

/// A keep-alive HTTP/1.1 client, as a manager's browser or an integration would hold.
struct HttpClient {
    agent: ureq::Agent,
    base: String,
    bearer: String,
}

impl HttpClient {
    fn new(base: String, bearer: String) -> Self {
        Self {
            agent: crate::http_agent(),
            base,
            bearer,
        }
    }

    fn get(&self, path: &str) -> Result<Vec<u8>, BenchError> {
        let mut resp = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.bearer)
            .call()
            .map_err(|e| request_err(path, e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_vec()
            .map_err(|e| request_err(path, e))?;
        if status != 200 {
            return Err(request_err(
                path,
                format!("status {status}: {}", String::from_utf8_lossy(&body)),
            ));
        }
        Ok(body)
    }
}

struct HttpRun {
    /// Each request.
    ms: Vec<f64>,
    mean_bytes: usize,
    /// Each lookup, all its pages.
    walk_ms: Vec<f64>,
    mean_walk_bytes: usize,
}

/// Times the lookups one after another on a blocking thread (the server has the
/// runtime), checking each answer after its clock stopped.
async fn timed_http(
    client: HttpClient,
    lookups: &[Lookup],
    opts: &Options,
    kind: Kind,
) -> Result<(HttpClient, HttpRun), BenchError> {
    let (warmup, progress) = (opts.warmup, opts.progress);
    let todo: Vec<(String, usize)> = lookups
        .iter()
        .map(|l| (kind.path(&l.key), l.expect))
        .collect();
    tokio::task::spawn_blocking(move || {
        let mut run = HttpRun {
            ms: Vec::with_capacity(todo.len()),
            mean_bytes: 0,
            walk_ms: Vec::with_capacity(todo.len()),
            mean_walk_bytes: 0,
        };
        let mut bytes = 0usize;
        let started = Instant::now();
        for (i, (first, expect)) in todo.iter().enumerate() {
            let (walk, mut path, mut got) = (Instant::now(), first.clone(), 0);
            let (mut pages, mut walk_bytes) = (Vec::new(), 0);
            loop {
                let t = Instant::now();
                let body = client.get(&path)?;
                pages.push(t.elapsed().as_secs_f64() * 1e3);
                walk_bytes += body.len();
                let page: PageBody =
                    serde_json::from_slice(&body).map_err(|e| request_err(&path, e))?;
                got += page.items.len();
                match page.next_cursor {
                    Some(c) if kind.walks() => path = format!("{first}&cursor={c}"),
                    _ => break,
                }
            }
            let walk_ms = walk.elapsed().as_secs_f64() * 1e3;
            if got != *expect {
                return Err(request_err(
                    first,
                    format!("answered {got}, expected {expect}"),
                ));
            }
            if i >= warmup {
                run.ms.extend(pages);
                run.walk_ms.push(walk_ms);
                bytes += walk_bytes;
            }
            if progress && (i + 1) % 1000 == 0 {
                eprintln!(
                    "bench: {}: {} / {} lookups, {:.0} s",
                    first.rsplit('/').next().unwrap_or_default(),
                    i + 1,
                    todo.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
        run.mean_bytes = bytes / run.ms.len().max(1);
        run.mean_walk_bytes = bytes / run.walk_ms.len().max(1);
        Ok((client, run))
    })
    .await
    .map_err(|e| BenchError::Setup(format!("client thread: {e}")))?
}
