//! Task documents in the database and in memory: a snapshot plus the changes appended
//! since, every write guarded by an optimistic version check, and a small per-process
//! cache of parsed documents so a sync round neither re-reads nor re-parses the whole
//! document. Not here: vetting and merging (`swt_domain::doc`), projection.
//!
//! # Storage
//! A write appends only its new Automerge changes (`task_document_change`, one row per
//! version) instead of saving the whole document again, which cost more the longer a
//! task ran. Every [`COMPACT_EVERY`] versions a write saves the whole document instead
//! (`task_document.doc` at `snapshot_version`) and deletes the rows it absorbed. A reader
//! takes the snapshot and the rows `snapshot_version < version <= task_document.version`;
//! there must be exactly one per version, so a compaction racing the read is noticed
//! and the read simply starts again.
//!
//! # Cache
//! A kept document is used only when its version is the database's version, so a write
//! by another `swt serve` on the same database just makes it a miss: the cache holds
//! nothing another process could not rebuild. Requests of one process on one document
//! take turns; the document is taken out while a request works on it and kept again with
//! the version it was stored at, so a failed write never leaves a half-merged document
//! behind.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use automerge::{ActorId, ChangeHash};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, UpdateMany,
};
use swt_domain::doc::{Header, TaskDocument};

use crate::db::entity::{task_document, task_document_change};

/// A write saves the whole document once this many versions were appended as changes:
/// loads stay short (one snapshot and at most this many increments) while most writes
/// store only what they added.
pub const COMPACT_EVERY: i64 = 32;
/// Documents kept parsed per process: at least one per scanner of a busy site, so that
/// a fleet's sync rounds find their documents parsed (200 scanners on 200 tasks thrashed
/// a cache of 64: two whole loads in three exchanges).
pub const CACHE_DOCUMENTS: usize = 1024;
/// … and at most this many scans in them all, which is what bounds the memory: 50 tasks
/// of 2,000 scans held in the cache left the server at ~235 MB in all. The least
/// recently used documents go first.
pub const CACHE_SCANS: usize = 150_000;
/// Reads retried when compactions keep racing them.
const READ_ATTEMPTS: usize = 8;

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The stored bytes do not load.
    #[error("task document {0} does not load: {1}")]
    Damaged(String, String),
    /// Compactions kept changing the document while it was read.
    #[error("task document {0} kept changing while it was read")]
    Busy(String),
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// A document row without its bytes: what a request needs before it decides whether to
/// read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// Document id.
    pub id: String,
    /// Owner.
    pub organisation_id: String,
    /// Site of the task.
    pub site_id: String,
    /// Current version.
    pub version: i64,
    /// Merged scans wait for the projection.
    pub needs_projection: bool,
}

/// The row's columns without the document bytes.
pub async fn head<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<Head>, DbErr> {
    let row: Option<(String, String, String, i64, bool)> = task_document::Entity::find_by_id(id)
        .select_only()
        .columns([
            task_document::Column::Id,
            task_document::Column::OrganisationId,
            task_document::Column::SiteId,
            task_document::Column::Version,
            task_document::Column::NeedsProjection,
        ])
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map(
        |(id, organisation_id, site_id, version, needs_projection)| Head {
            id,
            organisation_id,
            site_id,
            version,
            needs_projection,
        },
    ))
}

/// Where a loaded document stands in the database: the version a write must find, and
/// the snapshot it builds on (which decides when to compact).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The version the document was read at.
    pub version: i64,
    /// The version of the snapshot under it.
    pub snapshot_version: i64,
}

/// The stored bytes of a document at its current version: the snapshot followed by the
/// appended changes, in the form [`TaskDocument::load`] takes. `None` if there is no
/// such document.
pub async fn read<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<(Stored, Vec<u8>)>, DocumentError> {
    for _ in 0..READ_ATTEMPTS {
        let row: Option<(Vec<u8>, i64, i64)> = task_document::Entity::find_by_id(id)
            .select_only()
            .columns([
                task_document::Column::Doc,
                task_document::Column::Version,
                task_document::Column::SnapshotVersion,
            ])
            .into_tuple()
            .one(db)
            .await?;
        let Some((mut bytes, version, snapshot_version)) = row else {
            return Ok(None);
        };
        let changes: Vec<Vec<u8>> = task_document_change::Entity::find()
            .select_only()
            .column(task_document_change::Column::Changes)
            .filter(task_document_change::Column::DocumentId.eq(id))
            .filter(task_document_change::Column::Version.gt(snapshot_version))
            .filter(task_document_change::Column::Version.lte(version))
            .order_by_asc(task_document_change::Column::Version)
            .into_tuple()
            .all(db)
            .await?;
        if i64::try_from(changes.len()).ok() != Some(version - snapshot_version) {
            // A compaction deleted rows after we read the snapshot: read again.
            continue;
        }
        for c in changes {
            bytes.extend_from_slice(&c);
        }
        return Ok(Some((
            Stored {
                version,
                snapshot_version,
            },
            bytes,
        )));
    }
    Err(DocumentError::Busy(id.to_owned()))
}

/// Reads and parses a document at its current version (bypassing the cache).
pub async fn load<C: ConnectionTrait>(
    db: &C,
    id: &str,
    actor: &ActorId,
) -> Result<Option<(Stored, TaskDocument)>, DocumentError> {
    let Some((stored, bytes)) = read(db, id).await? else {
        return Ok(None);
    };
    let actor = actor.clone();
    // Parsing grows with the document: keep it off the async workers.
    let doc = tokio::task::spawn_blocking(move || TaskDocument::load(&bytes, actor))
        .await
        .map_err(|e| DocumentError::Damaged(id.to_owned(), e.to_string()))?
        .map_err(|e| DocumentError::Damaged(id.to_owned(), e.to_string()))?;
    Ok(Some((stored, doc)))
}

/// What a write stores: the new changes, or the whole document when it is time to
/// compact.
#[derive(Debug)]
pub enum Persist {
    /// The changes since the heads the write started from.
    Increment(Vec<u8>),
    /// The whole document.
    Snapshot(Vec<u8>),
}

impl Persist {
    /// What to store after changing a document read at `stored`, whose heads were
    /// `before`. CPU work that grows with the change (or, when compacting, with the
    /// document): call it off the async workers.
    pub fn of(doc: &mut TaskDocument, before: &[ChangeHash], stored: Stored) -> Self {
        if stored.version + 1 - stored.snapshot_version >= COMPACT_EVERY {
            Self::Snapshot(doc.save())
        } else {
            Self::Increment(doc.save_after(before))
        }
    }
}

/// Writes the next version of a document still at `stored.version`, with the extra
/// column updates `more` adds. Returns the new [`Stored`], or `None` (nothing written)
/// when another writer came first. Run it in a transaction: the row update and the
/// change row go together.
pub async fn write<C: ConnectionTrait>(
    txn: &C,
    id: &str,
    stored: Stored,
    persist: Persist,
    more: impl FnOnce(UpdateMany<task_document::Entity>) -> UpdateMany<task_document::Entity>,
) -> Result<Option<Stored>, DbErr> {
    let next = stored.version + 1;
    let mut update = task_document::Entity::update_many()
        .col_expr(task_document::Column::Version, Expr::value(next))
        .col_expr(task_document::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(task_document::Column::Id.eq(id))
        .filter(task_document::Column::Version.eq(stored.version));
    update = more(update);
    match persist {
        Persist::Snapshot(bytes) => {
            let updated = update
                .col_expr(task_document::Column::Doc, Expr::value(bytes))
                .col_expr(task_document::Column::SnapshotVersion, Expr::value(next))
                .exec(txn)
                .await?;
            if updated.rows_affected != 1 {
                return Ok(None);
            }
            task_document_change::Entity::delete_many()
                .filter(task_document_change::Column::DocumentId.eq(id))
                .filter(task_document_change::Column::Version.lte(next))
                .exec(txn)
                .await?;
            Ok(Some(Stored {
                version: next,
                snapshot_version: next,
            }))
        }
        Persist::Increment(changes) => {
            // The row update first: it is the version check (and on PostgreSQL the row
            // lock that makes a second writer wait and then find the new version).
            if update.exec(txn).await?.rows_affected != 1 {
                return Ok(None);
            }
            task_document_change::Entity::insert(task_document_change::ActiveModel {
                document_id: Set(id.to_owned()),
                version: Set(next),
                changes: Set(changes),
            })
            .exec_without_returning(txn)
            .await?;
            Ok(Some(Stored {
                version: next,
                snapshot_version: stored.snapshot_version,
            }))
        }
    }
}

/// A task document about to be created.
pub struct NewDocument<'a> {
    /// Its id.
    pub id: String,
    /// The owning organisation.
    pub organisation_id: &'a str,
    /// The site it runs at.
    pub site_id: &'a str,
    /// What managers and scanners see as its name.
    pub title: String,
    /// The user who created it.
    pub created_by: &'a str,
}

/// Writes a new task document at version 1 (a snapshot, no changes); `None` if one with
/// that id exists already.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: &NewDocument<'_>,
    header: &Header,
    doc: &mut TaskDocument,
    now: DateTime<Utc>,
) -> Result<Option<task_document::Model>, DbErr> {
    let model = task_document::ActiveModel {
        id: Set(new.id.clone()),
        organisation_id: Set(new.organisation_id.to_owned()),
        site_id: Set(new.site_id.to_owned()),
        kind: Set(header.kind.as_str().to_owned()),
        status: Set(header.status.as_str().to_owned()),
        title: Set(new.title.clone()),
        doc: Set(doc.save()),
        version: Set(1),
        snapshot_version: Set(1),
        needs_projection: Set(false),
        scan_count: Set(0),
        created_by: Set(new.created_by.to_owned()),
        completion_event: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let inserted = task_document::Entity::insert(model)
        .on_conflict_do_nothing_on([task_document::Column::Id])
        .exec_without_returning(db)
        .await?;
    if !matches!(inserted, sea_orm::TryInsertResult::Inserted(n) if n > 0) {
        return Ok(None);
    }
    task_document::Entity::find_by_id(new.id.clone())
        .one(db)
        .await
}

/// Parsed documents of this process, by id, each at the version it is stored at, and
/// one lock per document: requests of this process on the same document take turns
/// instead of each reading its own copy (they would conflict on the write anyway).
pub struct DocumentCache {
    capacity: usize,
    max_scans: usize,
    inner: Mutex<Slots>,
}

type Slot = Option<(Stored, TaskDocument)>;

struct Entry {
    slot: Arc<tokio::sync::Mutex<Slot>>,
    used: u64,
    /// Scans in the kept document (plus one), set when it is kept.
    weight: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Slots {
    map: HashMap<String, Entry>,
    clock: u64,
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for DocumentCache {
    fn default() -> Self {
        Self::with_limits(CACHE_DOCUMENTS, CACHE_SCANS)
    }
}

impl DocumentCache {
    /// A cache of at most `capacity` documents (0: keeps none between requests).
    pub fn new(capacity: usize) -> Self {
        Self::with_limits(capacity, usize::MAX)
    }

    /// A cache of at most `capacity` documents holding at most `max_scans` scans in all
    /// (the document in use is kept whatever its size).
    pub fn with_limits(capacity: usize, max_scans: usize) -> Self {
        Self {
            capacity,
            max_scans,
            inner: Mutex::new(Slots::default()),
        }
    }

    /// Waits for exclusive use of a document in this process. Other processes are kept
    /// apart by the version check of [`write`], not by this.
    pub async fn lock(&self, id: &str) -> DocumentLock {
        let (slot, weight, evicted) = {
            // A panic while holding this lock cannot leave the map half-changed (each
            // step is one map call), so a poisoned map is still good.
            let mut s = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            s.clock += 1;
            let now = s.clock;
            let entry = s.map.entry(id.to_owned()).or_insert_with(|| Entry {
                slot: Arc::new(tokio::sync::Mutex::new(None)),
                used: now,
                weight: Arc::new(AtomicUsize::new(0)),
            });
            entry.used = now;
            let (slot, weight) = (Arc::clone(&entry.slot), Arc::clone(&entry.weight));
            let mut scans: usize = s.map.values().map(|e| e.weight.load(Relaxed)).sum();
            let mut evicted = Vec::new();
            while s.map.len() > self.capacity.max(1) || scans > self.max_scans {
                let Some(oldest) = s
                    .map
                    .iter()
                    .filter(|(k, _)| k.as_str() != id)
                    .min_by_key(|(_, e)| e.used)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                // A request still holding the evicted slot finishes with it undisturbed;
                // the document is freed with the last reference.
                if let Some(e) = s.map.remove(&oldest) {
                    scans = scans.saturating_sub(e.weight.load(Relaxed));
                    evicted.push(e);
                }
            }
            (slot, weight, evicted)
        };
        drop(evicted);
        let mut guard = slot.lock_owned().await;
        if self.capacity == 0 {
            *guard = None;
        }
        DocumentLock { guard, weight }
    }

    /// Documents (or slots for them) held now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map
            .len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Exclusive use of one document in this process (see [`DocumentCache::lock`]).
pub struct DocumentLock {
    guard: tokio::sync::OwnedMutexGuard<Slot>,
    weight: Arc<AtomicUsize>,
}

impl DocumentLock {
    /// The document at `version`: the one kept by an earlier request if it is at exactly
    /// that version, else read from the database at whatever version it has now (the
    /// caller writes against the returned [`Stored`]). A kept document at another version
    /// is stale (another process wrote) and dropped. The document is out of the cache
    /// until [`DocumentLock::keep`]: a request that fails leaves nothing half-merged.
    pub async fn get<C: ConnectionTrait>(
        &mut self,
        db: &C,
        id: &str,
        version: i64,
        actor: &ActorId,
    ) -> Result<Option<(Stored, TaskDocument)>, DocumentError> {
        if let Some((stored, doc)) = self.guard.take() {
            if stored.version == version {
                return Ok(Some((stored, doc)));
            }
            drop(doc);
        }
        load(db, id, actor).await
    }

    /// Keeps a document that is stored at `stored` for the next request.
    pub fn keep(&mut self, stored: Stored, doc: TaskDocument) {
        self.weight.store(doc.scan_count() + 1, Relaxed);
        *self.guard = Some((stored, doc));
    }

    /// The version of the kept document, if any.
    pub fn kept_version(&self) -> Option<i64> {
        self.guard.as_ref().map(|(s, _)| s.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> TaskDocument {
        TaskDocument::empty(ActorId::random())
    }

    fn at(version: i64) -> Stored {
        Stored {
            version,
            snapshot_version: 1,
        }
    }

    async fn kept(cache: &DocumentCache, id: &str) -> Option<i64> {
        cache.lock(id).await.kept_version()
    }

    #[tokio::test]
    async fn a_kept_document_is_given_only_at_its_version() -> anyhow::Result<()> {
        let db = sea_orm::Database::connect("sqlite::memory:").await?;
        let cache = DocumentCache::new(4);
        cache.lock("a").await.keep(at(3), doc());
        let mut lock = cache.lock("a").await;
        let got = lock.get(&db, "a", 3, &ActorId::random()).await?;
        assert_eq!(got.map(|(s, _)| s), Some(at(3)));
        lock.keep(at(3), doc());
        drop(lock);
        // Another process wrote version 4: the kept copy is stale. (The database here
        // has no such table, so reading it fails: proof that the cache was not used.)
        let mut lock = cache.lock("a").await;
        assert!(lock.get(&db, "a", 4, &ActorId::random()).await.is_err());
        drop(lock);
        assert_eq!(kept(&cache, "a").await, None, "the stale copy is gone");
        Ok(())
    }

    #[tokio::test]
    async fn the_least_recently_used_document_goes_first() {
        let cache = DocumentCache::new(2);
        cache.lock("a").await.keep(at(1), doc());
        cache.lock("b").await.keep(at(1), doc());
        assert_eq!(kept(&cache, "a").await, Some(1));
        cache.lock("c").await.keep(at(1), doc());
        assert_eq!(cache.len(), 2);
        assert_eq!(kept(&cache, "a").await, Some(1));
        assert_eq!(kept(&cache, "b").await, None, "b was used least recently");
    }

    #[tokio::test]
    async fn requests_on_one_document_take_turns() {
        let cache = Arc::new(DocumentCache::new(4));
        let first = cache.lock("a").await;
        let c = Arc::clone(&cache);
        let second = tokio::spawn(async move { c.lock("a").await.kept_version() });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!second.is_finished(), "waits for the first");
        let mut first = first;
        first.keep(at(7), doc());
        drop(first);
        assert_eq!(
            second.await.ok().flatten(),
            Some(7),
            "sees what the first kept"
        );
    }

    #[tokio::test]
    async fn the_scans_held_are_bounded_whatever_the_number_of_documents() {
        use swt_domain::testing;
        let with_scans = |n: u64| {
            let mut d = TaskDocument::create(ActorId::random(), &testing::header(), 1).unwrap();
            let scans: Vec<_> = (0..n).map(|i| testing::scan("d1", "u1", i)).collect();
            d.add_scans(&scans).unwrap();
            d
        };
        let cache = DocumentCache::with_limits(16, 10);
        cache.lock("a").await.keep(at(1), with_scans(4));
        cache.lock("b").await.keep(at(1), with_scans(4));
        // a and b weigh 5 each: a third document pushes out the oldest (at the next
        // request, once its own weight is known).
        cache.lock("c").await.keep(at(1), with_scans(4));
        assert_eq!(kept(&cache, "c").await, Some(1));
        assert_eq!(kept(&cache, "a").await, None, "a went first");
        assert_eq!(kept(&cache, "b").await, Some(1), "b and c fit");
    }

    #[tokio::test]
    async fn capacity_zero_keeps_nothing() {
        let cache = DocumentCache::new(0);
        cache.lock("a").await.keep(at(1), doc());
        assert_eq!(kept(&cache, "a").await, None);
    }
}
