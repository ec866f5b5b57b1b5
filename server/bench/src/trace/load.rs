//! Loading the generated warehouse into SQLite or PostgreSQL, fast: the schema comes from
//! the real migrations; secondary indexes (read from the database's own catalogue, so they
//! are exactly what the migrations made) are dropped during the load and built again
//! after it; rows go in as multi-row INSERTs in one transaction per simulated hour
//! (SQLite) or COPY (PostgreSQL).
//!
//! A marker table, `swt_bench_seed`, says which shape a database holds. It is written
//! before the first row ("seeding") and completed after the last ("done"), so a finished
//! load is reused and an interrupted one is started over, and a database that holds data
//! but no marker (someone's real one) is never touched.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::sqlx::Row as _;
use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous,
};
use sea_orm::sqlx::{self, AssertSqlSafe, ConnectOptions as _, Connection as _, Executor as _};
use serde::{Deserialize, Serialize};

use super::BenchError;
use super::warehouse::{Batch, EpcRow, EventRow, Generator, ORG, ObjectRow, SITE, Shape, site_gln};
use swt_server::db::{self, Backend};

/// What a finished load recorded in the marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Seeded {
    /// The shape loaded.
    pub shape: Shape,
    /// Simulated hours (pallets received).
    pub hours: u64,
    /// `epcis_event` rows.
    pub events: u64,
    /// `epcis_event_epc` rows.
    pub epcs: u64,
    /// `trace_object` rows.
    pub objects: u64,
    /// Seconds the load took (rows, then indexes).
    pub load_seconds: f64,
    /// Seconds building the indexes and statistics after the rows.
    pub index_seconds: f64,
    /// Whether this run found the load done and reused it.
    #[serde(skip)]
    pub reused: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    state: String,
    shape: Shape,
    seeded: Option<Seeded>,
}

const MARKER_TABLE: &str = "swt_bench_seed";
const TABLES: [&str; 3] = ["epcis_event", "epcis_event_epc", "trace_object"];

/// Either database, one raw connection.
enum Conn {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

fn err(e: impl std::fmt::Display) -> BenchError {
    BenchError::Db(e.to_string().replace('\n', " "))
}

impl Conn {
    async fn open(backend: Backend, url: &str) -> Result<Self, BenchError> {
        Ok(match backend {
            Backend::Sqlite => {
                // Bulk-load settings for this connection only: a crash mid-load is handled
                // by starting over (see the marker), so durability is not needed here.
                let o = SqliteConnectOptions::from_str(url)
                    .map_err(err)?
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Off)
                    .foreign_keys(false)
                    .busy_timeout(Duration::from_secs(30))
                    .pragma("cache_size", "-1000000");
                Self::Sqlite(o.connect().await.map_err(err)?)
            }
            Backend::Postgres => Self::Pg(
                PgConnectOptions::from_str(url)
                    .map_err(err)?
                    .connect()
                    .await
                    .map_err(err)?,
            ),
        })
    }

    async fn exec(&mut self, sql: &str) -> Result<(), BenchError> {
        let q = sqlx::raw_sql(AssertSqlSafe(sql.to_owned()));
        match self {
            Self::Sqlite(c) => c.execute(q).await.map(|_| ()),
            Self::Pg(c) => c.execute(q).await.map(|_| ()),
        }
        .map_err(err)
    }

    /// First column of every row, as text.
    async fn strings(&mut self, sql: &str) -> Result<Vec<String>, BenchError> {
        // One query value per arm: its type names the database.
        macro_rules! q {
            () => {
                sqlx::query(AssertSqlSafe(sql.to_owned()))
            };
        }
        match self {
            Self::Sqlite(c) => q!()
                .fetch_all(c)
                .await
                .map_err(err)?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>(),
            Self::Pg(c) => q!()
                .fetch_all(c)
                .await
                .map_err(err)?
                .iter()
                .map(|r| r.try_get::<String, _>(0))
                .collect::<Result<_, _>>(),
        }
        .map_err(err)
    }

    async fn count(&mut self, sql: &str) -> Result<i64, BenchError> {
        macro_rules! q {
            () => {
                sqlx::query(AssertSqlSafe(sql.to_owned()))
            };
        }
        match self {
            Self::Sqlite(c) => q!().fetch_one(c).await.and_then(|r| r.try_get::<i64, _>(0)),
            Self::Pg(c) => q!().fetch_one(c).await.and_then(|r| r.try_get::<i64, _>(0)),
        }
        .map_err(err)
    }

    async fn close(self) {
        let _ = match self {
            Self::Sqlite(c) => c.close().await,
            Self::Pg(c) => c.close().await,
        };
    }

    async fn marker(&mut self) -> Result<Option<Marker>, BenchError> {
        self.exec(&format!(
            "CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (name VARCHAR(32) PRIMARY KEY, value TEXT NOT NULL)"
        ))
        .await?;
        let rows = self
            .strings(&format!(
                "SELECT value FROM {MARKER_TABLE} WHERE name = 'trace'"
            ))
            .await?;
        match rows.first() {
            Some(v) => Ok(Some(serde_json::from_str(v).map_err(err)?)),
            None => Ok(None),
        }
    }

    async fn set_marker(&mut self, m: &Marker) -> Result<(), BenchError> {
        let v = serde_json::to_string(m).map_err(err)?;
        let sql = format!(
            "INSERT INTO {MARKER_TABLE} (name, value) VALUES ('trace', $1) ON CONFLICT (name) DO UPDATE SET value = excluded.value"
        );
        macro_rules! q {
            () => {
                sqlx::query(AssertSqlSafe(sql.clone()))
            };
        }
        match self {
            Self::Sqlite(c) => q!().bind(v).execute(c).await.map(|_| ()),
            Self::Pg(c) => q!().bind(v).execute(c).await.map(|_| ()),
        }
        .map_err(err)
    }
}

/// The database URL with another database name (PostgreSQL).
fn pg_database(url: &str) -> Result<(String, String), BenchError> {
    let opts = PgConnectOptions::from_str(url).map_err(err)?;
    let name = opts
        .get_database()
        .ok_or_else(|| BenchError::Setup("the PostgreSQL URL names no database".into()))?
        .to_owned();
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(BenchError::Setup(format!(
            "use a plain database name (letters, digits, _ and -), not {name:?}"
        )));
    }
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(h, q)| (h, Some(q)));
    let prefix = head.rsplit_once('/').map_or(head, |(p, _)| p);
    let admin = match query {
        Some(q) => format!("{prefix}/postgres?{q}"),
        None => format!("{prefix}/postgres"),
    };
    Ok((admin, name))
}

async fn pg_create(url: &str, drop_first: bool) -> Result<(), BenchError> {
    let (admin, name) = pg_database(url)?;
    let mut c = PgConnectOptions::from_str(&admin)
        .map_err(err)?
        .connect()
        .await
        .map_err(err)?;
    // A database made by hand in another tablespace (say, on a bigger disk) is made
    // again in the same one.
    let space: Option<String> = sqlx::query(
        "SELECT t.spcname::text FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace \
         WHERE d.datname = $1 AND t.spcname <> 'pg_default'",
    )
    .bind(&name)
    .fetch_optional(&mut c)
    .await
    .map_err(err)?
    .map(|r| r.try_get(0))
    .transpose()
    .map_err(err)?;
    if drop_first {
        c.execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        ))))
        .await
        .map_err(err)?;
    }
    let exists: i64 = sqlx::query("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_one(&mut c)
        .await
        .and_then(|r| r.try_get(0))
        .map_err(err)?;
    if exists == 0 {
        let space = space
            .map(|t| format!(" TABLESPACE \"{}\"", t.replace('"', "")))
            .unwrap_or_default();
        c.execute(sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE \"{name}\"{space}"
        ))))
        .await
        .map_err(err)?;
    }
    c.close().await.map_err(err)?;
    Ok(())
}

fn sqlite_files(url: &str) -> Vec<String> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    vec![format!("{path}-wal"), format!("{path}-shm"), path]
}

/// Bytes the database takes on disk.
pub async fn database_bytes(url: &str) -> Result<u64, BenchError> {
    let (backend, url) = db::normalise_url(url).map_err(err)?;
    match backend {
        Backend::Sqlite => Ok(sqlite_files(&url)
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum()),
        Backend::Postgres => {
            let mut c = Conn::open(backend, &url).await?;
            let n = c
                .count("SELECT pg_database_size(current_database())::bigint")
                .await?;
            c.close().await;
            Ok(u64::try_from(n).unwrap_or(0))
        }
    }
}

/// Makes sure `url` holds the warehouse of `shape`: reuses a finished load of the same
/// shape, else (re)creates the database and loads it. `reseed` starts over even when a
/// finished load is there.
pub async fn ensure_seeded(
    url: &str,
    shape: Shape,
    reseed: bool,
    progress: bool,
) -> Result<Seeded, BenchError> {
    let (backend, url) = db::normalise_url(url).map_err(err)?;
    if backend == Backend::Postgres {
        pg_create(&url, false).await?;
    }
    let mut fresh = false;
    loop {
        let pool = db::connect(&url, 2).await.map_err(err)?;
        db::migrate(&pool).await.map_err(err)?;
        pool.close().await.map_err(err)?;
        let mut c = Conn::open(backend, &url).await?;
        let marker = c.marker().await?;
        match marker {
            Some(Marker {
                state,
                shape: s,
                seeded: Some(mut done),
            }) if state == "done" && s == shape && !reseed => {
                c.close().await;
                done.reused = true;
                return Ok(done);
            }
            Some(m) if m.state == "done" && m.shape != shape && !reseed => {
                c.close().await;
                return Err(BenchError::Setup(format!(
                    "this database holds another benchmark shape ({:?}); pass --reseed or use another database",
                    m.shape
                )));
            }
            Some(_) if !fresh => {
                // An interrupted or unwanted load: start from an empty database.
                c.close().await;
                match backend {
                    Backend::Sqlite => {
                        for f in sqlite_files(&url) {
                            let _ = std::fs::remove_file(f);
                        }
                    }
                    Backend::Postgres => pg_create(&url, true).await?,
                }
                fresh = true;
                continue;
            }
            _ => {}
        }
        let rows = c.count("SELECT count(*) FROM epcis_event").await?;
        if rows > 0 {
            c.close().await;
            return Err(BenchError::Setup(
                "the database holds events but is not a benchmark database; point the benchmark at its own database".into(),
            ));
        }
        let seeded = load(&mut c, backend, shape, progress).await;
        c.close().await;
        return seeded;
    }
}

async fn load(
    c: &mut Conn,
    backend: Backend,
    shape: Shape,
    progress: bool,
) -> Result<Seeded, BenchError> {
    let started = Instant::now();
    c.set_marker(&Marker {
        state: "seeding".into(),
        shape,
        seeded: None,
    })
    .await?;
    seed_identity(c).await?;
    // The secondary indexes as the migrations made them, to build again afterwards.
    let indexes = match backend {
        Backend::Sqlite => {
            c.strings(
                "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
                 AND tbl_name IN ('epcis_event', 'epcis_event_epc', 'trace_object') ORDER BY name",
            )
            .await?
        }
        Backend::Postgres => {
            c.strings(
                "SELECT i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() \
                 AND i.tablename IN ('epcis_event', 'epcis_event_epc', 'trace_object') \
                 AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname) \
                 ORDER BY i.indexname",
            )
            .await?
        }
    };
    let index_names: Vec<String> = match backend {
        Backend::Sqlite => c.strings(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             AND tbl_name IN ('epcis_event', 'epcis_event_epc', 'trace_object') ORDER BY name",
        ),
        Backend::Postgres => c.strings(
            "SELECT i.indexname::text FROM pg_indexes i WHERE i.schemaname = current_schema() \
             AND i.tablename IN ('epcis_event', 'epcis_event_epc', 'trace_object') \
             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname) \
             ORDER BY i.indexname",
        ),
    }
    .await?;
    for name in &index_names {
        c.exec(&format!("DROP INDEX \"{name}\"")).await?;
    }
    // Foreign keys are checked row by row during COPY; checked once at the end instead.
    let fks = if backend == Backend::Postgres {
        let fks = c
            .strings(
                "SELECT conname::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint \
                 WHERE conrelid = 'epcis_event_epc'::regclass AND contype = 'f'",
            )
            .await?;
        for f in &fks {
            let name = f.split(' ').next().unwrap_or_default();
            c.exec(&format!(
                "ALTER TABLE epcis_event_epc DROP CONSTRAINT \"{name}\""
            ))
            .await?;
        }
        c.exec("SET synchronous_commit = off").await?;
        fks
    } else {
        Vec::new()
    };

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(4);
    let generator = std::thread::spawn(move || -> Result<(), BenchError> {
        let mut g = Generator::new(shape);
        while let Some(b) = g.next_batch()? {
            if tx.blocking_send(b).is_err() {
                break;
            }
        }
        Ok(())
    });
    let (hours, total) = shape.hours();
    let mut seeded = Seeded {
        shape,
        hours,
        events: 0,
        epcs: 0,
        objects: 0,
        load_seconds: 0.0,
        index_seconds: 0.0,
        reused: false,
    };
    let mut sql = SqlCache::default();
    let mut last = Instant::now();
    while let Some(b) = rx.recv().await {
        match c {
            Conn::Sqlite(conn) => sqlite_batch(conn, &mut sql, &b).await?,
            Conn::Pg(conn) => pg_batch(conn, &b).await?,
        }
        seeded.events += b.events.len() as u64;
        seeded.epcs += b.epcs.len() as u64;
        seeded.objects += b.objects.len() as u64;
        if progress && last.elapsed() >= Duration::from_secs(5) {
            last = Instant::now();
            let secs = started.elapsed().as_secs_f64();
            let rate = seeded.events as f64 / secs.max(0.001);
            eprintln!(
                "seed: {:>10} / {total} events ({:.1}%), {:.0} events/s, {:.0} s so far, ~{:.0} s to go (then indexes)",
                seeded.events,
                100.0 * seeded.events as f64 / total as f64,
                rate,
                secs,
                (total - seeded.events.min(total)) as f64 / rate.max(1.0),
            );
        }
    }
    // A generator error ends its batches early: it is reported rather than the short load.
    generator
        .join()
        .map_err(|_| BenchError::Setup("the generator thread panicked".into()))??;
    let rows_done = Instant::now();
    if progress {
        eprintln!(
            "seed: rows loaded in {:.0} s ({} events, {} event-identifier rows, {} objects); building {} indexes",
            started.elapsed().as_secs_f64(),
            seeded.events,
            seeded.epcs,
            seeded.objects,
            indexes.len()
        );
    }
    if backend == Backend::Postgres {
        c.exec("SET maintenance_work_mem = '1GB'").await?;
    }
    for ddl in &indexes {
        let t = Instant::now();
        c.exec(ddl).await?;
        if progress {
            eprintln!("seed: {:.0} s  {ddl}", t.elapsed().as_secs_f64());
        }
    }
    for f in &fks {
        let (name, def) = f.split_once(' ').unwrap_or((f, ""));
        c.exec(&format!(
            "ALTER TABLE epcis_event_epc ADD CONSTRAINT \"{name}\" {def}"
        ))
        .await?;
    }
    // The rows were written with `holds` unset, as the migration found old rows.
    let t = Instant::now();
    c.exec(swt_migrations::MARK_HOLDERS).await?;
    if progress {
        eprintln!("seed: {:.0} s  mark holders", t.elapsed().as_secs_f64());
    }
    if backend == Backend::Postgres {
        // The next event the projection writes gets the next key.
        c.exec("SELECT setval(pg_get_serial_sequence('epcis_event', 'pk'), (SELECT max(pk) FROM epcis_event))")
            .await?;
        // What autovacuum would do soon after such a load: statistics and a visibility map
        // (index-only scans). Without it the first queries would measure the load instead.
        let t = Instant::now();
        for table in TABLES {
            c.exec(&format!("VACUUM ANALYZE {table}")).await?;
        }
        if progress {
            eprintln!("seed: {:.0} s  VACUUM ANALYZE", t.elapsed().as_secs_f64());
        }
    } else {
        // The load ran with synchronous = OFF: make it durable and fold the WAL back.
        c.exec("PRAGMA wal_checkpoint(TRUNCATE)").await?;
    }
    seeded.index_seconds = rows_done.elapsed().as_secs_f64();
    seeded.load_seconds = started.elapsed().as_secs_f64();
    c.set_marker(&Marker {
        state: "done".into(),
        shape,
        seeded: Some(seeded.clone()),
    })
    .await?;
    Ok(seeded)
}

/// The organisation and site the rows belong to (so the database is whole).
async fn seed_identity(c: &mut Conn) -> Result<(), BenchError> {
    let gln = site_gln();
    let now = chrono::Utc::now();
    match c {
        Conn::Sqlite(conn) => {
            sqlx::query("INSERT INTO organisation (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(ORG).bind("Benchmark Logistics").bind(now)
                .execute(&mut *conn).await.map_err(err)?;
            sqlx::query("INSERT INTO site (id, organisation_id, name, gln, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(SITE).bind(ORG).bind("Benchmark DC").bind(gln).bind(now)
                .execute(&mut *conn).await.map_err(err)?;
        }
        Conn::Pg(conn) => {
            sqlx::query("INSERT INTO organisation (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(ORG).bind("Benchmark Logistics").bind(now)
                .execute(&mut *conn).await.map_err(err)?;
            sqlx::query("INSERT INTO site (id, organisation_id, name, gln, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .bind(SITE).bind(ORG).bind("Benchmark DC").bind(gln).bind(now)
                .execute(&mut *conn).await.map_err(err)?;
        }
    }
    Ok(())
}

const EVENT_COLS: &str = "pk, organisation_id, event_id, event_type, action, biz_step, disposition, \
    event_time_ms, event_time_zone_offset, record_time_ms, site_id, location, read_point, \
    biz_location, document_id, scan_id, user_id, device_id, body";
const EPC_COLS: &str = "event_pk, role, epc_key, organisation_id, event_time_ms";
const OBJECT_COLS: &str = "organisation_id, epc_key, kind, gtin, serial, sscc, lot, expiry, \
    site_id, location, status, parent_key, order_ref, last_event_time_ms, last_scan_id, updated_at_ms";

/// Multi-row INSERT statements by table and row count (a handful of distinct texts, so
/// the driver's prepared-statement cache keeps them).
#[derive(Default)]
struct SqlCache(HashMap<(&'static str, usize), Arc<str>>);

impl SqlCache {
    fn get(&mut self, table: &'static str, cols: &'static str, rows: usize) -> Arc<str> {
        self.0
            .entry((table, rows))
            .or_insert_with(|| {
                let n = cols.split(',').count();
                let one = format!("({})", vec!["?"; n].join(","));
                format!(
                    "INSERT INTO {table} ({cols}) VALUES {}",
                    vec![one; rows].join(",")
                )
                .into()
            })
            .clone()
    }
}

// SQLite allows 32766 parameters per statement.
const SQLITE_ROWS: usize = 1000;

async fn sqlite_batch(
    c: &mut SqliteConnection,
    sql: &mut SqlCache,
    b: &Batch,
) -> Result<(), BenchError> {
    let mut tx = c.begin().await.map_err(err)?;
    for rows in b.events.chunks(SQLITE_ROWS) {
        let mut q = sqlx::query(AssertSqlSafe(sql.get(
            "epcis_event",
            EVENT_COLS,
            rows.len(),
        )));
        for r in rows {
            q = q
                .bind(r.pk)
                .bind(ORG)
                .bind(r.event_id.as_str())
                .bind(r.event_type)
                .bind(r.action)
                .bind(r.biz_step)
                .bind(r.disposition)
                .bind(r.event_time_ms)
                .bind("+00:00")
                .bind(r.record_time_ms)
                .bind(SITE)
                .bind(r.location.as_deref())
                .bind(r.read_point.as_deref())
                .bind(r.biz_location.as_deref())
                .bind(r.document_id.as_str())
                .bind(r.scan_id.as_str())
                .bind(r.user_id.as_str())
                .bind(r.device_id.as_str())
                .bind(r.body.as_str());
        }
        q.execute(&mut *tx).await.map_err(err)?;
    }
    for rows in b.epcs.chunks(SQLITE_ROWS * 3) {
        let mut q = sqlx::query(AssertSqlSafe(sql.get(
            "epcis_event_epc",
            EPC_COLS,
            rows.len(),
        )));
        for r in rows {
            q = q
                .bind(r.event_pk)
                .bind(r.role)
                .bind(r.epc_key.as_str())
                .bind(ORG)
                .bind(r.event_time_ms);
        }
        q.execute(&mut *tx).await.map_err(err)?;
    }
    for rows in b.objects.chunks(SQLITE_ROWS) {
        let mut q = sqlx::query(AssertSqlSafe(sql.get(
            "trace_object",
            OBJECT_COLS,
            rows.len(),
        )));
        for r in rows {
            q = q
                .bind(ORG)
                .bind(r.epc_key.as_str())
                .bind(r.kind)
                .bind(r.gtin.as_deref())
                .bind(r.serial.as_deref())
                .bind(r.sscc.as_deref())
                .bind(r.lot.as_deref())
                .bind(r.expiry.as_deref())
                .bind(SITE)
                .bind(r.location.as_deref())
                .bind(r.status)
                .bind(r.parent_key.as_deref())
                .bind(r.order_ref.as_deref())
                .bind(r.last_event_time_ms)
                .bind(r.last_scan_id.as_deref())
                .bind(r.updated_at_ms);
        }
        q.execute(&mut *tx).await.map_err(err)?;
    }
    tx.commit().await.map_err(err)
}

/// COPY text format: tab-separated, `\N` for NULL, backslash escapes.
fn field(buf: &mut String, v: Option<&str>) {
    match v {
        None => buf.push_str("\\N"),
        Some(s) => {
            for ch in s.chars() {
                match ch {
                    '\\' => buf.push_str("\\\\"),
                    '\t' => buf.push_str("\\t"),
                    '\n' => buf.push_str("\\n"),
                    '\r' => buf.push_str("\\r"),
                    c => buf.push(c),
                }
            }
        }
    }
}

fn line(buf: &mut String, fields: &[Option<&str>]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            buf.push('\t');
        }
        field(buf, *f);
    }
    buf.push('\n');
}

fn event_line(buf: &mut String, r: &EventRow) {
    let (pk, t, rt) = (
        r.pk.to_string(),
        r.event_time_ms.to_string(),
        r.record_time_ms.to_string(),
    );
    line(
        buf,
        &[
            Some(&pk),
            Some(ORG),
            Some(&r.event_id),
            Some(r.event_type),
            Some(r.action),
            r.biz_step,
            r.disposition,
            Some(&t),
            Some("+00:00"),
            Some(&rt),
            Some(SITE),
            r.location.as_deref(),
            r.read_point.as_deref(),
            r.biz_location.as_deref(),
            Some(&r.document_id),
            Some(&r.scan_id),
            Some(&r.user_id),
            Some(&r.device_id),
            Some(&r.body),
        ],
    );
}

fn epc_line(buf: &mut String, r: &EpcRow) {
    let (pk, t) = (r.event_pk.to_string(), r.event_time_ms.to_string());
    line(
        buf,
        &[
            Some(&pk),
            Some(r.role),
            Some(&r.epc_key),
            Some(ORG),
            Some(&t),
        ],
    );
}

fn object_line(buf: &mut String, r: &ObjectRow) {
    let (t, u) = (
        r.last_event_time_ms.to_string(),
        r.updated_at_ms.to_string(),
    );
    line(
        buf,
        &[
            Some(ORG),
            Some(&r.epc_key),
            Some(r.kind),
            r.gtin.as_deref(),
            r.serial.as_deref(),
            r.sscc.as_deref(),
            r.lot.as_deref(),
            r.expiry.as_deref(),
            Some(SITE),
            r.location.as_deref(),
            Some(r.status),
            r.parent_key.as_deref(),
            r.order_ref.as_deref(),
            Some(&t),
            r.last_scan_id.as_deref(),
            Some(&u),
        ],
    );
}

async fn copy(c: &mut PgConnection, table: &str, cols: &str, data: &str) -> Result<(), BenchError> {
    if data.is_empty() {
        return Ok(());
    }
    let mut copy = c
        .copy_in_raw(&format!("COPY {table} ({cols}) FROM STDIN"))
        .await
        .map_err(err)?;
    copy.send(data.as_bytes()).await.map_err(err)?;
    copy.finish().await.map_err(err)?;
    Ok(())
}

async fn pg_batch(c: &mut PgConnection, b: &Batch) -> Result<(), BenchError> {
    let mut buf = String::with_capacity(b.events.len() * 1200);
    for r in &b.events {
        event_line(&mut buf, r);
    }
    copy(c, "epcis_event", EVENT_COLS, &buf).await?;
    buf.clear();
    for r in &b.epcs {
        epc_line(&mut buf, r);
    }
    copy(c, "epcis_event_epc", EPC_COLS, &buf).await?;
    buf.clear();
    for r in &b.objects {
        object_line(&mut buf, r);
    }
    copy(c, "trace_object", OBJECT_COLS, &buf).await
}
