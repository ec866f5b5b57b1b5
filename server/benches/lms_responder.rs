//! LMS responder benchmark (issue #8): with 1,000,000 serials held, how many verification
//! requests a second does the responder answer, and how fast?
//!
//! ```text
//! cargo bench -p swt-server --bench lms_responder -- [--url URL] [--serials N]
//!     [--connections C] [--duration S] [--warmup S] [--rate R] [--db-connections P] [--drop]
//! ```
//!
//! Every flag also reads an environment variable (`SWT_BENCH_URL`, `SWT_BENCH_SERIALS`,
//! `SWT_BENCH_CONNECTIONS`, `SWT_BENCH_DURATION`, `SWT_BENCH_WARMUP`, `SWT_BENCH_RATE`,
//! `SWT_BENCH_DB_CONNECTIONS`). The default database is a SQLite file in the system
//! temporary directory; a `postgres://…/NAME` URL names a database that is created if
//! missing. A database already holding exactly N bench serials is reused, so only the first
//! run pays for seeding; `--drop` deletes it (file or database) at the end.
//!
//! The real server (router, middleware, audit group commit) runs in this process on a
//! loopback port; C keep-alive connections send requests for random serials (85 % exact
//! hits, 5 % wrong lot, 5 % wrong expiry, 5 % unknown serial). Without `--rate` each
//! connection sends its next request as soon as the last is answered (closed loop: the
//! throughput ceiling). With `--rate R` the connections together send R requests a second
//! on a fixed schedule, and latency counts from the scheduled time, so a stalled server is
//! charged for the requests it delayed (no coordinated omission). The last line of output
//! is one JSON object for scripts.

use std::str::FromStr;
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{AssertSqlSafe, ConnectOptions as _, Connection as _, Executor as _, raw_sql};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use swt_domain::gs1::mod10_check_digit;
use swt_domain::testing::Rng;
use swt_server::config::Config;
use swt_server::verification::partners::key_hash;
use swt_tests::TestServer;

const ORG: &str = "org-bench";
const MFR_GLN: &str = "0614141000005";
const REQ_GLN: &str = "0614141000012";
const KEY: &str = "swtp_bench-wholesaler-key";
/// Serials are spread over this many GTINs and, within each GTIN, this many lots.
const GTINS: u64 = 20;
const LOTS: u64 = 50;
/// Rows per INSERT statement and statements per transaction while seeding.
const ROWS_PER_INSERT: u64 = 1_000;
const INSERTS_PER_TX: u64 = 100;

struct Opts {
    url: String,
    serials: u64,
    connections: usize,
    duration: Duration,
    warmup: Duration,
    rate: Option<f64>,
    db_connections: u32,
    drop: bool,
}

fn parse<T: FromStr>(name: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| panic!("{name}: cannot parse {v:?}"))
}

impl Opts {
    fn from_env_and_args() -> Opts {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let default_url = format!(
            "sqlite://{}/swt-lms-bench.db",
            std::env::temp_dir().display()
        );
        let mut o = Opts {
            url: env("SWT_BENCH_URL").unwrap_or(default_url),
            serials: env("SWT_BENCH_SERIALS").map_or(1_000_000, |v| parse("serials", &v)),
            connections: env("SWT_BENCH_CONNECTIONS").map_or(32, |v| parse("connections", &v)),
            duration: Duration::from_secs_f64(
                env("SWT_BENCH_DURATION").map_or(20.0, |v| parse("duration", &v)),
            ),
            warmup: Duration::from_secs_f64(
                env("SWT_BENCH_WARMUP").map_or(5.0, |v| parse("warmup", &v)),
            ),
            rate: env("SWT_BENCH_RATE").map(|v| parse("rate", &v)),
            db_connections: env("SWT_BENCH_DB_CONNECTIONS")
                .map_or(Config::default().db_max_connections, |v| {
                    parse("db-connections", &v)
                }),
            drop: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(a) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
            match a.as_str() {
                // `cargo bench` passes this to every bench target.
                "--bench" => {}
                "--url" => o.url = value(),
                "--serials" => o.serials = parse("serials", &value()),
                "--connections" => o.connections = parse("connections", &value()),
                "--duration" => o.duration = Duration::from_secs_f64(parse("duration", &value())),
                "--warmup" => o.warmup = Duration::from_secs_f64(parse("warmup", &value())),
                "--rate" => o.rate = Some(parse("rate", &value())),
                "--db-connections" => o.db_connections = parse("db-connections", &value()),
                "--drop" => o.drop = true,
                other => panic!("unknown argument {other:?} (see the header of lms_responder.rs)"),
            }
        }
        assert!(
            o.serials > 0 && o.connections > 0,
            "serials and connections must be > 0"
        );
        o
    }
}

/// The GTIN-14 of bench product `i`.
fn gtin(i: u64) -> String {
    let body = format!("00312345{i:05}");
    let check = char::from(mod10_check_digit(body.as_bytes()));
    format!("{body}{check}")
}

/// Serial `n`: its GTIN index, serial, lot and expiry, all derived from `n` so that the
/// load generator knows the right answer without asking the database.
fn pack(n: u64) -> (u64, String, String, String) {
    let lot = (n / GTINS) % LOTS;
    (
        n % GTINS,
        format!("S{n:010}"),
        format!("L{lot:03}"),
        format!("{:02}{:02}28", 27 + lot % 4, 1 + lot % 12),
    )
}

fn status(n: u64) -> &'static str {
    match n % 1000 {
        999 => "illegitimate",
        x if x % 100 == 7 => "suspect",
        x if x % 100 == 13 => "decommissioned",
        _ => "active",
    }
}

fn request_path(rng: &mut Rng, serials: u64) -> String {
    let n = rng.next_u64() % serials;
    let (g, mut serial, mut lot, mut exp) = pack(n);
    match rng.next_u64() % 100 {
        0..85 => {}
        85..90 => lot = "LWRONG".to_owned(),
        90..95 => exp = "260101".to_owned(),
        _ => serial = format!("X{n:010}"),
    }
    // 64 random bits twice: enough to tell requests apart.
    let half = u128::from(rng.next_u64());
    let corr = uuid::Builder::from_random_bytes((half << 64 | half).to_le_bytes()).into_uuid();
    format!(
        "/verify/gtin/{}/lot/{lot}/ser/{serial}?exp={exp}&linkType=verificationService\
         &context=dscsaSaleableReturn&reqGLN={REQ_GLN}&corrUUID={corr}&ctrlPossessAtt=true",
        gtin(g)
    )
}

/// Creates the PostgreSQL database the URL names if it does not exist.
async fn ensure_postgres_database(url: &str) -> anyhow::Result<()> {
    let opts = PgConnectOptions::from_str(url)?;
    let name = opts.get_database().unwrap_or("postgres").to_owned();
    anyhow::ensure!(
        name.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "database name {name:?}: use lower-case letters, digits and _"
    );
    let mut conn = opts.clone().database("postgres").connect().await?;
    let exists: Option<(i32,)> =
        sea_orm::sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(&name)
            .fetch_optional(&mut conn)
            .await?;
    if exists.is_none() {
        conn.execute(raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\""
        ))))
        .await?;
        println!("created database {name}");
    }
    conn.close().await?;
    Ok(())
}

async fn drop_database(url: &str) -> anyhow::Result<()> {
    if url.starts_with("postgres") {
        let opts = PgConnectOptions::from_str(url)?;
        let name = opts.get_database().unwrap_or("postgres").to_owned();
        let mut conn = opts.database("postgres").connect().await?;
        conn.execute(raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        ))))
        .await?;
        conn.close().await?;
    } else {
        let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
        let path = path.split('?').next().unwrap_or(path);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    println!("dropped {url}");
    Ok(())
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            sql,
        ))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no row from {sql}"))?;
    Ok(row.try_get_by_index::<i64>(0)?)
}

/// Makes the database hold exactly the bench data, seeding only if it does not already.
async fn seed(db: &DatabaseConnection, serials: u64) -> anyhow::Result<()> {
    let held = count(
        db,
        &format!("SELECT COUNT(*) FROM verification_serial WHERE organisation_id = '{ORG}'"),
    )
    .await?;
    // Each run starts with an empty audit log so runs are comparable.
    db.execute_unprepared("DELETE FROM verification_exchange")
        .await?;
    if u64::try_from(held).ok() == Some(serials) {
        println!("reusing {held} serials already held");
        return Ok(());
    }
    let started = Instant::now();
    for table in [
        "verification_serial",
        "verification_lot",
        "verification_policy",
        "verification_partner",
    ] {
        db.execute_unprepared(&format!(
            "DELETE FROM {table} WHERE organisation_id = '{ORG}'"
        ))
        .await?;
    }
    db.execute_unprepared(&format!("DELETE FROM organisation WHERE id = '{ORG}'"))
        .await?;
    let now = chrono::Utc::now().to_rfc3339();
    let tx = db.begin().await?;
    tx.execute_unprepared(&format!(
        "INSERT INTO organisation (id, name, gln, created_at) VALUES ('{ORG}', 'Bench Pharma', '{MFR_GLN}', '{now}')"
    ))
    .await?;
    tx.execute_unprepared(&format!(
        "INSERT INTO verification_partner (id, organisation_id, gln, name, key_hash, status, created_at_ms) \
         VALUES ('bench-p1', '{ORG}', '{REQ_GLN}', 'Bench Wholesaler', '{}', 'active', 0)",
        key_hash(KEY)
    ))
    .await?;
    // Two manufacturers with a strict policy (by full GTIN, the longest possible prefix).
    for g in [3, 11] {
        tx.execute_unprepared(&format!(
            "INSERT INTO verification_policy (organisation_id, gtin_prefix, manufacturer, on_recalled, \
             on_expired, on_suspect, updated_at_ms) VALUES ('{ORG}', '{}', 'Strict {g}', \
             'manufacturer_policy', 'manufacturer_policy', 'not_for_redistribution', 0)",
            gtin(g)
        ))
        .await?;
    }
    let mut lots = Vec::new();
    for g in 0..GTINS {
        for l in 0..LOTS {
            let recalled = if l % 10 == 3 { "TRUE" } else { "FALSE" };
            let ext = if l % 10 == 5 { "'321228'" } else { "NULL" };
            lots.push(format!(
                "('{ORG}', '{}', 'L{l:03}', {recalled}, {ext}, 0)",
                gtin(g)
            ));
        }
    }
    tx.execute_unprepared(&format!(
        "INSERT INTO verification_lot (organisation_id, gtin, lot, recalled, expiry_extended_to, updated_at_ms) VALUES {}",
        lots.join(",")
    ))
    .await?;
    tx.commit().await?;

    let gtins: Vec<String> = (0..GTINS).map(gtin).collect();
    let mut n = 0;
    while n < serials {
        let tx = db.begin().await?;
        for _ in 0..INSERTS_PER_TX {
            if n >= serials {
                break;
            }
            let end = (n + ROWS_PER_INSERT).min(serials);
            let mut sql = String::with_capacity(100 * usize::try_from(end - n)?);
            sql.push_str(
                "INSERT INTO verification_serial (organisation_id, gtin, serial, lot, expiry, status, source, updated_at_ms) VALUES ",
            );
            for i in n..end {
                let (g, serial, lot, exp) = pack(i);
                if i > n {
                    sql.push(',');
                }
                sql.push_str(&format!(
                    "('{ORG}','{}','{serial}','{lot}','{exp}','{}','bench',0)",
                    gtins[usize::try_from(g)?],
                    status(i)
                ));
            }
            tx.execute_unprepared(&sql).await?;
            n = end;
        }
        tx.commit().await?;
        print!("\rseeded {n}/{serials} serials");
        use std::io::Write as _;
        let _ = std::io::stdout().flush();
    }
    // Fresh statistics so the planner sees a big table, not the empty one it was created as.
    db.execute_unprepared("ANALYZE").await?;
    println!("\nseeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

#[derive(Default)]
struct Tally {
    /// Latencies in microseconds of requests answered during the measured window.
    latencies_us: Vec<u32>,
    /// Non-200 answers and transport failures in the measured window.
    errors: u64,
    /// Every answer received, warm-up included (to compare with the audit log).
    answered: u64,
    first_error: Option<String>,
}

async fn connection(
    client: reqwest::Client,
    base: String,
    seed: u64,
    serials: u64,
    measure_from: Instant,
    until: Instant,
    schedule: Option<(Instant, Duration)>,
) -> Tally {
    let mut rng = Rng::new(seed);
    let mut t = Tally::default();
    let mut next = schedule.map(|(first, _)| first);
    loop {
        let sent = match (next, schedule) {
            (Some(at), Some((_, every))) => {
                if at >= until {
                    break;
                }
                tokio::time::sleep_until(at.into()).await;
                next = Some(at + every);
                // Latency counts from when the request was due, not when it went out.
                at
            }
            _ => Instant::now(),
        };
        if sent >= until {
            break;
        }
        let url = format!("{base}{}", request_path(&mut rng, serials));
        let result = client.get(&url).bearer_auth(KEY).send().await;
        let outcome = match result {
            Ok(r) => {
                let status = r.status();
                match r.bytes().await {
                    Ok(_) if status == reqwest::StatusCode::OK => Ok(()),
                    Ok(body) => Err(format!("{status}: {}", String::from_utf8_lossy(&body))),
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        let done = Instant::now();
        t.answered += u64::from(outcome.is_ok());
        if sent < measure_from {
            continue;
        }
        match outcome {
            Ok(()) => t
                .latencies_us
                .push(u32::try_from((done - sent).as_micros()).unwrap_or(u32::MAX)),
            Err(e) => {
                t.errors += 1;
                t.first_error.get_or_insert(e);
            }
        }
    }
    t
}

fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "null".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Opts::from_env_and_args();
    let backend = if o.url.starts_with("postgres") {
        ensure_postgres_database(&o.url).await?;
        "postgresql"
    } else {
        "sqlite"
    };
    let config = Config {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: o.url.clone(),
        db_max_connections: o.db_connections,
        ..Config::default()
    };
    let db = swt_server::app::open_database(&config).await?;
    seed(&db, o.serials).await?;
    let server = TestServer::start_with(config, db.clone()).await?;

    let client = swt_tests::http::builder()
        .pool_max_idle_per_host(o.connections)
        .tcp_nodelay(true)
        .build()?;
    let start = Instant::now();
    let measure_from = start + o.warmup;
    let until = measure_from + o.duration;
    println!(
        "{backend}: {} serials, {} connections, warm-up {:.0} s, measuring {:.0} s{}, load {}",
        o.serials,
        o.connections,
        o.warmup.as_secs_f64(),
        o.duration.as_secs_f64(),
        o.rate
            .map_or_else(String::new, |r| format!(" at {r} req/s")),
        load_average()
    );
    let mut tasks = Vec::with_capacity(o.connections);
    for c in 0..o.connections {
        let schedule = o.rate.map(|r| {
            let every = Duration::from_secs_f64(o.connections as f64 / r);
            // Staggered so the connections do not fire in bursts.
            (
                start + every.mul_f64(c as f64 / o.connections as f64),
                every,
            )
        });
        tasks.push(tokio::spawn(connection(
            client.clone(),
            server.base_url.clone(),
            0x5EED_0000 + c as u64,
            o.serials,
            measure_from,
            until,
            schedule,
        )));
    }
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await?;
        all.latencies_us.extend(t.latencies_us);
        all.errors += t.errors;
        all.answered += t.answered;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
    }
    let load = load_average();
    server.stop().await?;

    let db = swt_server::db::connect(&o.url, 1).await?;
    let audited = count(
        &db,
        "SELECT COUNT(*) FROM verification_exchange WHERE http_status = 200",
    )
    .await?;
    db.close().await?;

    let mut lat = all.latencies_us;
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let rps = ok as f64 / o.duration.as_secs_f64();
    let (p50, p90, p99, max) = (
        percentile_ms(&lat, 50.0),
        percentile_ms(&lat, 90.0),
        percentile_ms(&lat, 99.0),
        percentile_ms(&lat, 100.0),
    );
    println!(
        "answered {ok} in {:.0} s: {rps:.0} req/s",
        o.duration.as_secs_f64()
    );
    println!("latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    println!(
        "errors {}{}",
        all.errors,
        all.first_error
            .map_or_else(String::new, |e| format!(" (first: {e})"))
    );
    println!(
        "load {load}; audit log holds {audited} answers of {} received",
        all.answered
    );
    if u64::try_from(audited).ok() != Some(all.answered) {
        println!("WARNING: audit log and answers received differ");
    }
    println!(
        "{{\"bench\":\"lms_responder\",\"backend\":\"{backend}\",\"serials\":{},\"connections\":{},\
         \"duration_s\":{},\"rate\":{},\"requests\":{ok},\"errors\":{},\"rps\":{rps:.0},\
         \"p50_ms\":{p50:.3},\"p90_ms\":{p90:.3},\"p99_ms\":{p99:.3},\"max_ms\":{max:.3},\
         \"audited\":{audited},\"answered\":{},\"load1\":{load}}}",
        o.serials,
        o.connections,
        o.duration.as_secs_f64(),
        o.rate.map_or_else(|| "null".to_owned(), |r| r.to_string()),
        all.errors,
        all.answered
    );
    if o.drop {
        drop_database(&o.url).await?;
    }
    Ok(())
}
