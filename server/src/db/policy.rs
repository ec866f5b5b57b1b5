//! What the two back-ends do differently, in one place. SQLite has one writer and no row
//! locks; PostgreSQL locks rows and writes concurrently. Modules ask the [`Policy`] of
//! their connection a question named by what they need (how large a transaction, whether
//! to lock the rows they claim, whose turn it is to write) rather than testing the
//! back-end themselves, so tuning one back-end is done here and nowhere else.

use std::time::Duration;

use sea_orm::{
    AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    IsolationLevel, TransactionTrait,
};

/// The back-end policy of one connection. Cheap: make one where needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    backend: DbBackend,
}

impl Policy {
    /// The policy of `db`'s back-end.
    pub fn of<C: ConnectionTrait>(db: &C) -> Policy {
        Policy {
            backend: db.get_database_backend(),
        }
    }

    /// The back-end, for hand-written SQL (placeholders, dialect).
    pub fn backend(self) -> DbBackend {
        self.backend
    }

    /// SQLite: one writer holds the database lock from `BEGIN IMMEDIATE` to commit, so a
    /// row missing inside a write transaction cannot appear before it commits.
    pub fn single_writer(self) -> bool {
        self.backend == DbBackend::Sqlite
    }

    /// Whether rows a write transaction claims must be locked (`FOR UPDATE`): on
    /// PostgreSQL, yes; SQLite's immediate transactions already serialise every writer.
    pub fn locks_rows(self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// Whether a page of rows is cheaper read as one JSON text: on SQLite the driver
    /// hands each result row from its database thread to the caller with a wake-up
    /// (~20 µs a row), so one row holding the page costs one hand-over.
    pub fn pages_as_json(self) -> bool {
        self.backend == DbBackend::Sqlite
    }

    /// Scans for the next projection transaction: see [`CHUNK`], [`SYNCING_CHUNK`] and
    /// [`CATCH_UP_CHUNK`].
    pub fn projection_chunk(self) -> usize {
        chunk_size(self.backend, since_sync_turn())
    }

    /// How many batches the audit-log writer commits at once: PostgreSQL commits
    /// concurrently; SQLite's one writer would only queue them.
    pub fn audit_writers(self, postgres: usize) -> usize {
        match self.backend {
            DbBackend::Postgres => postgres,
            _ => 1,
        }
    }

    /// Waits for this process's write turn (SQLite; PostgreSQL: none). See
    /// [`write_turn`].
    pub async fn write_turn(self, writer: Writer) -> Option<tokio::sync::MutexGuard<'static, ()>> {
        write_turn(self.backend, writer).await
    }

    /// Begins a read that sees one consistent state for its whole length: SQLite's
    /// transactions see one snapshot (WAL) without options; PostgreSQL needs repeatable
    /// read.
    pub async fn begin_snapshot_read(
        self,
        db: &DatabaseConnection,
    ) -> Result<DatabaseTransaction, DbErr> {
        match self.backend {
            DbBackend::Sqlite => db.begin().await,
            _ => {
                db.begin_with_config(
                    Some(IsolationLevel::RepeatableRead),
                    Some(AccessMode::ReadOnly),
                )
                .await
            }
        }
    }

    /// `(?,?),(?,?)…` or `($1,$2),($3,$4)…`: the value placeholders of a multi-row insert.
    pub fn placeholders(self, rows: usize, cols: usize) -> String {
        let mut s = String::with_capacity(rows * cols * 6);
        let mut n = 0;
        for r in 0..rows {
            if r > 0 {
                s.push(',');
            }
            s.push('(');
            for c in 0..cols {
                if c > 0 {
                    s.push(',');
                }
                n += 1;
                match self.backend {
                    DbBackend::Postgres => {
                        s.push('$');
                        s.push_str(&n.to_string());
                    }
                    _ => s.push('?'),
                }
            }
            s.push(')');
        }
        s
    }
}

/// Scans projected per transaction on PostgreSQL. Large enough that commits stop
/// dominating, small enough that a chunk holds its row locks only briefly.
const CHUNK: usize = 200;

/// Scans per transaction on SQLite while sync rounds are asking for the write turn: each
/// round waits for the chunk that holds it, so short chunks keep sync latency down, and
/// as many scans are projected meanwhile (the commit's cost follows the pages written,
/// not the number of commits). Figures: `docs/benchmarks.md`, "Projection chunk sizes on
/// SQLite".
const SYNCING_CHUNK: usize = 50;

/// Scans per transaction on SQLite once no sync round has asked for the write turn for
/// [`QUIET`]: catching up on a backlog, nobody waits behind a chunk, and each index page a
/// transaction touches is written to the log once for more scans. Larger is faster and
/// holds a little more memory; the cost is that the first sync round after a quiet second
/// may wait for one whole chunk. Figures: `docs/benchmarks.md`, "Projection chunk sizes
/// on SQLite".
const CATCH_UP_CHUNK: usize = 3_000;

/// How long after a sync round's write the projection keeps its chunks short.
const QUIET: Duration = Duration::from_secs(1);

/// Scans for the next projection transaction, given the back-end and how long ago a sync
/// round last asked for the write turn (`None`: never in this process).
fn chunk_size(backend: DbBackend, since_sync: Option<Duration>) -> usize {
    match backend {
        DbBackend::Sqlite if since_sync.is_none_or(|d| d >= QUIET) => CATCH_UP_CHUNK,
        DbBackend::Sqlite => SYNCING_CHUNK,
        // PostgreSQL holds row locks, not one write lock: nobody waits for a chunk.
        _ => CHUNK,
    }
}

/// Who asks for the write turn ([`Policy::write_turn`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A sync round: a scanner waits for the answer.
    Sync,
    /// Work nobody waits for (projection).
    Background,
}

/// Serialises this process's busiest write transactions on SQLite, in arrival order.
/// SQLite has one writer, and a writer that finds the lock taken sleeps in its busy
/// handler (1, 2, 5 … 100 ms): the projector, committing chunk after chunk, took the lock
/// again before a sleeping sync woke up, and sync rounds waited up to 250 ms. Waiting
/// here instead is first come, first served, and wakes at once. PostgreSQL: no turn
/// (row locks). Process-wide, so two SQLite files in one process (tests) share it: that
/// only orders their writes. A sync round's request is noted ([`Policy::projection_chunk`] reads it).
async fn write_turn(
    backend: DbBackend,
    writer: Writer,
) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    if backend == DbBackend::Sqlite {
        if writer == Writer::Sync {
            sync_turns::note();
        }
        Some(TURN.lock().await)
    } else {
        None
    }
}

/// How long ago a sync round last asked for the SQLite write turn in this process;
/// `None` if none ever did. Background writers size their transactions by it.
fn since_sync_turn() -> Option<Duration> {
    sync_turns::since()
}

mod sync_turns {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    fn epoch() -> Instant {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        *EPOCH.get_or_init(Instant::now)
    }

    /// Microseconds after [`epoch`] plus one; 0: never.
    static LAST: AtomicU64 = AtomicU64::new(0);

    pub fn note() {
        let at = u64::try_from(epoch().elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        LAST.fetch_max(at + 1, Ordering::Relaxed);
    }

    /// The raw stamp of the last noted turn (0: never), for tests of the bookkeeping.
    #[cfg(test)]
    pub fn stamp() -> u64 {
        LAST.load(Ordering::Relaxed)
    }

    pub fn since() -> Option<Duration> {
        match LAST.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                epoch()
                    .elapsed()
                    .saturating_sub(Duration::from_micros(at - 1)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::connect;

    #[test]
    fn sqlite_catches_up_in_large_chunks_only_when_no_sync_is_near() {
        let sqlite = |since| chunk_size(DbBackend::Sqlite, since);
        assert_eq!(sqlite(None), CATCH_UP_CHUNK);
        assert_eq!(sqlite(Some(QUIET)), CATCH_UP_CHUNK);
        assert_eq!(sqlite(Some(QUIET / 2)), SYNCING_CHUNK);
        assert_eq!(sqlite(Some(Duration::ZERO)), SYNCING_CHUNK);
        // PostgreSQL holds row locks, not one write lock: the same size throughout.
        assert_eq!(chunk_size(DbBackend::Postgres, None), CHUNK);
        assert_eq!(chunk_size(DbBackend::Postgres, Some(Duration::ZERO)), CHUNK);
    }

    #[tokio::test]
    async fn a_sync_rounds_turn_is_noted_and_a_background_one_is_not() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("turns.db").display());
        let db = connect(&url, 1).await.expect("open");
        // Other tests in this process may note sync turns at any time, so only what this
        // test's own turns must have changed is checked.
        let before = since_sync_turn();
        drop(Policy::of(&db).write_turn(Writer::Background).await);
        if let (Some(b), Some(a)) = (before, since_sync_turn()) {
            assert!(a >= b, "a background turn noted a sync: {b:?} then {a:?}");
        }
        // A sync round's turn is noted: the stamp is set and never goes back.
        let stamp = sync_turns::stamp();
        drop(Policy::of(&db).write_turn(Writer::Sync).await);
        assert!(sync_turns::stamp() > 0, "a sync turn was not noted");
        assert!(sync_turns::stamp() >= stamp, "the stamp went back");
        assert!(since_sync_turn().is_some());
        db.close().await.expect("close");
    }

    #[test]
    fn placeholders_follow_the_dialect() {
        let sqlite = Policy {
            backend: DbBackend::Sqlite,
        };
        let pg = Policy {
            backend: DbBackend::Postgres,
        };
        assert_eq!(sqlite.placeholders(2, 2), "(?,?),(?,?)");
        assert_eq!(pg.placeholders(2, 2), "($1,$2),($3,$4)");
    }
}
