//! Database access: connecting to SQLite or PostgreSQL, migrations, entities.
//! Nothing here knows HTTP.

pub mod entity;
pub mod failure;
mod policy;

pub use policy::{Policy, Writer};

use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use swt_migrations::{Migrator, MigratorTrait};

/// Why the database could not be used. Each message names the setting to fix.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is not one we can use.
    #[error("invalid database URL {url}: {reason} (set --database-url / SWT_DATABASE_URL)")]
    BadUrl {
        /// The URL, with any password masked.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The SQLite file cannot be opened or created.
    #[error(
        "cannot open SQLite database {path}: {reason} (check that the directory exists and is writable, or set --database-url / SWT_DATABASE_URL)"
    )]
    SqliteOpen {
        /// The file.
        path: String,
        /// The driver's reason.
        reason: String,
    },
    /// The server is not reachable or refused us.
    #[error("cannot connect to database {url}: {reason} (check --database-url / SWT_DATABASE_URL)")]
    Unreachable {
        /// The URL, with any password masked.
        url: String,
        /// The driver's reason.
        reason: String,
    },
    /// Applying or reading migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Any other database error.
    #[error("database error: {0}")]
    Other(#[from] DbErr),
}

/// Masks the password in a database URL, for logs and messages.
pub fn redact_url(url: &str) -> String {
    // postgres://user:secret@host/db -> postgres://user:***@host/db
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((creds, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match creds.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// The database kinds swt runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Checks a database URL and says which backend it names. Adds `mode=rwc` to SQLite URLs
/// without a mode so that a new file is created, as users expect of an embedded database.
pub fn normalise_url(url: &str) -> Result<(Backend, String), DbError> {
    let bad = |reason: &str| DbError::BadUrl {
        url: redact_url(url),
        reason: reason.to_owned(),
    };
    if url.starts_with("sqlite:") {
        let url = if url.contains("mode=") {
            url.to_owned()
        } else if url.contains('?') {
            format!("{url}&mode=rwc")
        } else {
            format!("{url}?mode=rwc")
        };
        SqliteConnectOptions::from_str(&url).map_err(|e| bad(&one_line(&e)))?;
        Ok((Backend::Sqlite, url))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        PgConnectOptions::from_str(url).map_err(|e| bad(&one_line(&e)))?;
        Ok((Backend::Postgres, url.to_owned()))
    } else {
        Err(bad(
            "expected sqlite://FILE or postgres://USER@HOST/DATABASE",
        ))
    }
}

fn one_line(e: &dyn std::fmt::Display) -> String {
    e.to_string().replace('\n', " ")
}

/// The file of an `sqlite://FILE` URL; `None` for other back-ends and in-memory SQLite.
pub fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    if !url.starts_with("sqlite:") {
        return None;
    }
    let path = sqlite_path(url);
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

fn sqlite_path(url: &str) -> String {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    rest.split('?').next().unwrap_or(rest).to_owned()
}

/// Opens a connection pool on the configured database.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbError> {
    let (backend, url) = normalise_url(url)?;
    let mut opt = ConnectOptions::new(url.clone());
    opt.max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|o| {
            // WAL lets readers work while a writer commits. FULL syncs the log at every
            // commit, so an acknowledged sync round or audit record survives power loss,
            // not only a crash; an append sync costs ~0.15 ms here, and it leaves the
            // background checkpoint (see `checkpointer`) no log to sync in one long go.
            o.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
                // Statement journals (multi-row upserts) and temp indexes in memory, not
                // in temporary files: they were a sixth of the projection's write cost.
                .pragma("temp_store", "memory")
                // A projection chunk dirties more pages than the default 2 MB cache holds;
                // spilling them mid-transaction wrote many pages twice. 16 MB per
                // connection, allocated only as used.
                .pragma("cache_size", "-16384")
                // The background checkpointer keeps the log short; this is only the backstop
                // for processes that do not run it (imports, tools), at ~40 MB of log so a
                // page changed by many commits is copied back once, not once per 4 MB.
                .pragma("wal_autocheckpoint", "10000")
        });
    if backend == Backend::Sqlite {
        opt.map_sqlx_sqlite_pool_opts(|o| {
            o.after_connect(|conn, _| {
                Box::pin(async move {
                    let mut handle = conn.lock_handle().await?;
                    stable_plans::enable(&mut handle);
                    Ok(())
                })
            })
        });
    }
    if backend == Backend::Postgres {
        preflight_postgres(&url).await?;
        let port = PgConnectOptions::from_str(&url).map_or(5432, |o| o.get_port());
        opt.map_sqlx_postgres_pool_opts(move |o| {
            o.after_connect(move |_, _| {
                Box::pin(async move {
                    nodelay::database_sockets(port);
                    Ok(())
                })
            })
        });
    }
    Database::connect(opt).await.map_err(|e| {
        let reason = one_line(&e);
        match backend {
            Backend::Sqlite => DbError::SqliteOpen {
                path: sqlite_path(&url),
                reason,
            },
            Backend::Postgres => DbError::Unreachable {
                url: redact_url(&url),
                reason,
            },
        }
    })
}

/// The connection pool the projector works on.
///
/// SQLite: one connection of its own. In WAL mode a connection throws away its whole
/// page cache when it starts a transaction after another connection committed, so with
/// the projector's statements spread over the pool, each projection chunk read its index
/// pages back from the file (`pread` and an allocation per page) and every pooled
/// connection filled a cache of its own. On one connection the cache survives from chunk
/// to chunk while no sync commits in between: less memory and system CPU for the same
/// throughput (figures: `docs/benchmarks.md`, "The projector's own SQLite connection").
/// Sync commits stay on the pool: on the projector's one connection each
/// projector statement queued behind every waiting sync request. The projector's writes
/// take turns with the syncs' anyway ([`Policy::write_turn`]). PostgreSQL: the pool.
pub async fn projector_connection(
    db: &DatabaseConnection,
    url: &str,
) -> Result<DatabaseConnection, DbError> {
    if db.get_database_backend() == DbBackend::Sqlite {
        connect(url, 1).await
    } else {
        Ok(db.clone())
    }
}

/// Checkpoints SQLite's write-ahead log in the background until `stop` is notified.
///
/// Left to itself SQLite checkpoints inside the commit that pushes the log past
/// `wal_autocheckpoint` pages, so that commit (often the LMS audit log's group commit,
/// which every waiting answer is held for) also copies the log into the database and
/// syncs it: at a 40 MB threshold that stalled answers by 30 ms (on tmpfs there was no
/// stall: it is the disk). A passive checkpoint of its own every [`CHECKPOINT_EVERY`]
/// keeps each one small and out of every commit; `wal_autocheckpoint` stays as the backstop for processes without this task (imports,
/// tools). PostgreSQL: returns at once.
pub async fn checkpointer(db: DatabaseConnection, stop: std::sync::Arc<tokio::sync::Notify>) {
    if db.get_database_backend() != DbBackend::Sqlite {
        return;
    }
    loop {
        let stopping = tokio::select! {
            () = tokio::time::sleep(CHECKPOINT_EVERY) => false,
            () = stop.notified() => true,
        };
        if let Err(e) = db
            .execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)")
            .await
        {
            tracing::warn!(error = %e, "background checkpoint");
        }
        if stopping {
            return;
        }
    }
}

/// How often [`checkpointer`] runs: often enough that each checkpoint has little to copy,
/// so answers waiting for their commit are not held behind a large one. Shorter gave
/// lower tail latency down to 50 ms, not below (figures: `docs/benchmarks.md`,
/// "Background checkpoint interval").
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// One direct connection first: the pool only reports "timed out" on failure, while a
/// single attempt says why (refused, unknown database, authentication).
async fn preflight_postgres(url: &str) -> Result<(), DbError> {
    use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
    let unreachable = |reason: String| DbError::Unreachable {
        url: redact_url(url),
        reason,
    };
    let opts = PgConnectOptions::from_str(url).map_err(|e| unreachable(one_line(&e)))?;
    match tokio::time::timeout(Duration::from_secs(5), opts.connect()).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(unreachable(one_line(&e))),
        Err(_) => Err(unreachable("no answer within 5 s".into())),
    }
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbError> {
    Migrator::up(db, None)
        .await
        .map_err(|e| DbError::Migration(one_line(&e)))
}

/// One migration and whether it is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name.
    pub name: String,
    /// Whether it has been applied to this database.
    pub applied: bool,
}

/// The state of every known migration, in order.
pub async fn migration_status(db: &DatabaseConnection) -> Result<Vec<MigrationState>, DbError> {
    let all = Migrator::get_migration_with_status(db)
        .await
        .map_err(|e| DbError::Migration(one_line(&e)))?;
    Ok(all
        .iter()
        .map(|m| MigrationState {
            name: m.name().to_owned(),
            applied: m.status() == swt_migrations::MigrationStatus::Applied,
        })
        .collect())
}

/// Whether the database answers and has every migration applied.
pub async fn ready(db: &DatabaseConnection) -> Result<(), String> {
    db.ping()
        .await
        .map_err(|e| format!("database unreachable: {}", one_line(&e)))?;
    let pending = Migrator::get_pending_migrations(db)
        .await
        .map_err(|e| format!("cannot read migrations: {}", one_line(&e)))?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(format!("{} migration(s) pending", pending.len()))
    }
}

/// Pool figures for `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolState {
    /// Connections open.
    pub size: u32,
    /// Open connections not in use.
    pub idle: u32,
    /// Configured maximum.
    pub max: u32,
}

/// Reads the pool's current size and idle count.
pub fn pool_state(db: &DatabaseConnection, max: u32) -> PoolState {
    let (size, idle) = match db.get_database_backend() {
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            )
        }
        DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            )
        }
        _ => (0, 0),
    };
    PoolState { size, idle, max }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password() {
        assert_eq!(
            redact_url("postgres://swt:hunter2@db.example/swt"),
            "postgres://swt:***@db.example/swt"
        );
        assert_eq!(redact_url("sqlite://swt.db"), "sqlite://swt.db");
    }

    #[test]
    fn sqlite_gets_create_mode() {
        let (backend, url) = normalise_url("sqlite://data/swt.db").expect("valid");
        assert_eq!(backend, Backend::Sqlite);
        assert_eq!(url, "sqlite://data/swt.db?mode=rwc");
        let (_, url) = normalise_url("sqlite://x.db?mode=ro").expect("valid");
        assert_eq!(url, "sqlite://x.db?mode=ro");
    }

    #[tokio::test]
    async fn sqlite_connections_keep_one_plan_per_statement() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("plans.db").display());
        let db = connect(&url, 3).await.expect("open");
        let pool = db.get_sqlite_connection_pool();
        let mut held = Vec::new();
        for _ in 0..3 {
            let mut conn = pool.acquire().await.expect("connection");
            let mut handle = conn.lock_handle().await.expect("handle");
            assert!(stable_plans::enabled(&mut handle));
            drop(handle);
            held.push(conn);
        }
    }

    #[tokio::test]
    async fn sqlite_projector_works_on_one_connection_of_its_own() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("own.db").display());
        let db = connect(&url, 4).await.expect("open");
        let own = projector_connection(&db, &url)
            .await
            .expect("projector connection");
        let own_pool = own.get_sqlite_connection_pool();
        assert_eq!(own_pool.options().get_max_connections(), 1);
        assert_eq!(
            db.get_sqlite_connection_pool()
                .options()
                .get_max_connections(),
            4
        );
        // Its own pool on the same database: what it commits, the pool reads.
        own.execute_unprepared("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)")
            .await
            .expect("write");
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                "SELECT x FROM t",
            ))
            .await
            .expect("read")
            .expect("a row");
        assert_eq!(row.try_get::<i64>("", "x").expect("x"), 7);
        own.close().await.expect("close");
        // The pool stays usable without it.
        assert!(db.ping().await.is_ok());
    }

    #[test]
    fn unknown_scheme_refused() {
        let err = normalise_url("mysql://root@localhost/x").expect_err("refused");
        assert!(err.to_string().contains("--database-url"));
        assert!(normalise_url("postgres://[::1").is_err());
    }
}

/// TCP_NODELAY on the PostgreSQL connections. sqlx 0.9.0 stopped setting it
/// (launchbadge/sqlx#4335, fixed upstream after 0.9.0): a statement larger than one TCP
/// segment then waits for the server's delayed ACK, ~40 ms per multi-row insert — it
/// made projection on PostgreSQL ~50 times slower. sqlx does not expose its socket, so
/// right after each connection opens we set the option on this process's TCP sockets
/// whose peer is the database port. Remove when sqlx sets it again.
mod nodelay {
    /// Sets TCP_NODELAY on every TCP socket of this process connected to `port`.
    #[cfg(target_os = "linux")]
    #[allow(unsafe_code)]
    pub fn database_sockets(port: u16) {
        use std::os::fd::{BorrowedFd, RawFd};
        let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for entry in dir.flatten() {
            let is_socket = std::fs::read_link(entry.path())
                .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"));
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
                .filter(|_| is_socket)
            else {
                continue;
            };
            // SAFETY: the descriptor is borrowed for two socket calls only. Had another
            // thread closed it meanwhile, they fail (EBADF) or reach a newer socket of
            // this process, where TCP_NODELAY is harmless too; nothing else is touched.
            let fd = unsafe { BorrowedFd::borrow_raw(fd) };
            let sock = socket2::SockRef::from(&fd);
            let to_database = sock
                .peer_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .is_some_and(|a| a.port() == port);
            if to_database {
                let _ = sock.set_tcp_nodelay(true);
            }
        }
    }

    /// Elsewhere: nothing (the delay remains; see above).
    #[cfg(not(target_os = "linux"))]
    pub fn database_sockets(_port: u16) {}
}

/// SQLite re-plans a statement whenever a value bound to `LIMIT ?` (or a `LIKE` pattern)
/// changes, and it changes on every page: each paged query was prepared again on every
/// execution, a sixth of a container explosion's time. The query planner stability
/// guarantee keeps one plan per statement; swt's statements do not want plans chosen by
/// their bound values (it also keeps plans steady as tables grow).
mod stable_plans {
    use sea_orm::sqlx::sqlite::LockedSqliteHandle;

    #[allow(unsafe_code)]
    pub fn enable(handle: &mut LockedSqliteHandle<'_>) {
        let db = handle.as_raw_handle().as_ptr();
        // SAFETY: the handle is locked (no other thread uses the connection) and open;
        // this option takes an int and an optional int out-pointer, given as null.
        unsafe {
            libsqlite3_sys::sqlite3_db_config(
                db,
                libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                1 as std::ffi::c_int,
                std::ptr::null_mut::<std::ffi::c_int>(),
            );
        }
    }

    /// Whether the option is on.
    #[cfg(test)]
    #[allow(unsafe_code)]
    pub fn enabled(handle: &mut LockedSqliteHandle<'_>) -> bool {
        let db = handle.as_raw_handle().as_ptr();
        let mut on: std::ffi::c_int = 0;
        // SAFETY: as in `enable`; -1 queries without changing, into `on`.
        unsafe {
            libsqlite3_sys::sqlite3_db_config(
                db,
                libsqlite3_sys::SQLITE_DBCONFIG_ENABLE_QPSG,
                -1 as std::ffi::c_int,
                &mut on as *mut std::ffi::c_int,
            );
        }
        on == 1
    }
}
