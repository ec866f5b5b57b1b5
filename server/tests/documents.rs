//! Task documents stored as a snapshot plus appended changes, read through each
//! process's cache: a write by another process is never hidden by a cached copy, a
//! stale writer is refused, and compaction loses no change. SQLite by default,
//! PostgreSQL with `SWT_TEST_DATABASE_URL`.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod projection_support;

use automerge::ActorId;
use chrono::Utc;
use projection_support::*;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    TransactionTrait,
};
use swt_domain::doc::{TaskDocument, TaskKind};
use swt_domain::model::{Action, ScanId};
use swt_server::db::entity::{task_document, task_document_change};
use swt_server::tasks::documents::{self, COMPACT_EVERY, DocumentCache, Persist, Stored};
use swt_tests::{TestDb, test_config};

const ORG: &str = "org-a";
const SITE: &str = "site-1";
const DOC: &str = "doc-1";

async fn setup() -> anyhow::Result<(TestDb, DatabaseConnection)> {
    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    org_with_site(&db, ORG, SITE, GLN).await;
    let mut doc = document(TaskKind::Picking, SITE, &[("order", "SO-1")]);
    let now = Utc::now();
    task_document::Entity::insert(task_document::ActiveModel {
        id: Set(DOC.to_owned()),
        organisation_id: Set(ORG.to_owned()),
        site_id: Set(SITE.to_owned()),
        kind: Set("picking".to_owned()),
        status: Set("open".to_owned()),
        title: Set("SO-1".to_owned()),
        doc: Set(doc.save()),
        version: Set(1),
        snapshot_version: Set(1),
        needs_projection: Set(false),
        scan_count: Set(0),
        created_by: Set("test".to_owned()),
        completion_event: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(&db)
    .await?;
    Ok((tdb, db))
}

fn pick(n: usize) -> swt_domain::model::Scan {
    scan(
        &ScanId::new_v7().to_string(),
        Item::Pack(&format!("SN{n:05}")),
        Action::Pick,
        None,
        None,
        at(n as u64),
        "u1",
        "dev-1",
    )
}

/// One "process": its cache and actor. Adds a scan to the document and writes the new
/// version as a sync would. `None` when another process wrote first.
async fn add_scan(
    db: &DatabaseConnection,
    cache: &DocumentCache,
    actor: &ActorId,
    n: usize,
) -> anyhow::Result<Option<Stored>> {
    let mut lock = cache.lock(DOC).await;
    let head = documents::head(db, DOC).await?.expect("document");
    let (stored, mut doc) = lock
        .get(db, DOC, head.version, actor)
        .await?
        .expect("document");
    let before = doc.heads();
    doc.add_scan(&pick(n))?;
    let persist = Persist::of(&mut doc, &before, stored);
    let txn = db.begin().await?;
    let written = documents::write(&txn, DOC, stored, persist, |u| u).await?;
    txn.commit().await?;
    if let Some(now) = written {
        lock.keep(now, doc);
    }
    Ok(written)
}

async fn stored_scans(db: &DatabaseConnection) -> anyhow::Result<usize> {
    let (_, doc) = documents::load(db, DOC, &ActorId::random())
        .await?
        .expect("document");
    Ok(doc.scan_count())
}

#[tokio::test]
async fn another_process_write_is_seen_not_the_cached_copy() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let (a, b) = (DocumentCache::default(), DocumentCache::default());
    let (actor_a, actor_b) = (ActorId::random(), ActorId::random());

    let v2 = add_scan(&db, &a, &actor_a, 1).await?.expect("written");
    assert_eq!(v2.version, 2);
    // B has nothing cached: it reads A's write from the database.
    let v3 = add_scan(&db, &b, &actor_b, 2).await?.expect("written");
    assert_eq!(v3.version, 3);
    // A still holds version 2; the database says 3, so A must not use its copy.
    let v4 = add_scan(&db, &a, &actor_a, 3).await?.expect("written");
    assert_eq!(v4.version, 4);
    {
        let mut lock = a.lock(DOC).await;
        let (_, doc) = lock.get(&db, DOC, 4, &actor_a).await?.expect("cached");
        assert_eq!(doc.scan_count(), 3, "A's document has B's scan too");
    }
    assert_eq!(stored_scans(&db).await?, 3);

    // A writer that read version 4 while someone else wrote 5 is refused, nothing kept.
    add_scan(&db, &b, &actor_b, 4).await?.expect("written");
    let (stored, mut doc) = documents::load(&db, DOC, &actor_a)
        .await?
        .expect("document");
    let stale = Stored {
        version: stored.version - 1,
        ..stored
    };
    let before = doc.heads();
    doc.add_scan(&pick(5))?;
    let persist = Persist::of(&mut doc, &before, stale);
    let txn = db.begin().await?;
    assert_eq!(
        documents::write(&txn, DOC, stale, persist, |u| u).await?,
        None
    );
    txn.rollback().await?;
    assert_eq!(stored_scans(&db).await?, 4);
    tdb.close().await
}

#[tokio::test]
async fn compaction_keeps_every_change() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let cache = DocumentCache::new(0);
    let actor = ActorId::random();
    let writes = usize::try_from(COMPACT_EVERY)? + 5;
    for n in 0..writes {
        add_scan(&db, &cache, &actor, n).await?.expect("written");
    }
    let row = task_document::Entity::find_by_id(DOC)
        .one(&db)
        .await?
        .expect("document");
    assert_eq!(row.version, i64::try_from(writes)? + 1);
    assert!(row.snapshot_version > 1, "a write saved the whole document");
    let rows = task_document_change::Entity::find()
        .filter(task_document_change::Column::DocumentId.eq(DOC))
        .count(&db)
        .await?;
    assert_eq!(
        i64::try_from(rows)?,
        row.version - row.snapshot_version,
        "one row per version after the snapshot, the absorbed ones deleted"
    );
    assert_eq!(stored_scans(&db).await?, writes);
    // The task detail reads snapshot + changes as well.
    let loaded: TaskDocument = documents::load(&db, DOC, &actor)
        .await?
        .map(|(_, d)| d)
        .expect("document");
    assert_eq!(loaded.scans().len(), writes);
    tdb.close().await
}
