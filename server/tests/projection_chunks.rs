//! Projection in chunks (several scans per transaction) stays exactly-once: across chunk
//! boundaries, with two runs racing on the same document, and after a crash between
//! chunks. SQLite by default, PostgreSQL with `SWT_TEST_DATABASE_URL`.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod projection_support;

use projection_support::*;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use swt_domain::doc::{TaskDocument, TaskKind};
use swt_domain::model::Action;
use swt_server::db::entity::epcis_event;
use swt_server::projection::{
    ProjectionError, ProjectionOptions, project_document, project_document_with,
};
use swt_tests::projected::counts;
use swt_tests::{TestDb, test_config};

const ORG: &str = "org-a";
const SITE: &str = "site-1";
/// More than two chunks' worth.
const SCANS: usize = 450;

async fn setup() -> anyhow::Result<(TestDb, DatabaseConnection)> {
    let tdb = TestDb::new().await?;
    let db = swt_server::app::open_database(&test_config(tdb.url())).await?;
    org_with_site(&db, ORG, SITE, GLN).await;
    Ok((tdb, db))
}

/// A receiving of `SCANS` distinct packs, one scan each.
fn many_packs() -> TaskDocument {
    let mut d = document(TaskKind::Receiving, SITE, &[("po", "PO-CHUNK")]);
    for n in 0..SCANS {
        d.add_scan(&scan(
            &format!("chunk.{n:04}"),
            Item::Pack(&format!("P{n:05}")),
            Action::Receive,
            Some("DOCK-01"),
            None,
            at(n as u64),
            "u-recv",
            "dev-1",
        ))
        .expect("scan");
    }
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_runs_project_each_scan_once() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let doc = std::sync::Arc::new(many_packs());
    let runs = (0..2).map(|_| {
        let (db, doc) = (db.clone(), std::sync::Arc::clone(&doc));
        tokio::spawn(async move { project_document(&db, ORG, "doc-many", &doc).await })
    });
    let mut newly = 0;
    for r in runs.collect::<Vec<_>>() {
        let report = r.await??;
        assert_eq!(report.results.len(), SCANS);
        newly += report.newly_projected;
    }
    assert_eq!(newly, SCANS, "each scan claimed by exactly one run");
    let (markers, events) = counts(&db, "doc-many").await?;
    assert_eq!(markers, SCANS as u64);
    assert_eq!(
        events, SCANS as u64,
        "one receive event per scan, none twice"
    );
    // And each pack, first seen here, commissioned once with its lot and expiry.
    let all = epcis_event::Entity::find()
        .filter(epcis_event::Column::DocumentId.eq("doc-many"))
        .count(&db)
        .await?;
    assert_eq!(all, 2 * SCANS as u64);

    let again = project_document(&db, ORG, "doc-many", &doc).await?;
    assert_eq!((again.newly_projected, again.events_written), (0, 0));
    tdb.close().await
}

#[tokio::test]
async fn a_crash_between_chunks_keeps_the_committed_ones_only() -> anyhow::Result<()> {
    let (tdb, db) = setup().await?;
    let doc = many_packs();
    // The crash falls inside the second chunk's worth of scans.
    let opts = ProjectionOptions {
        fail_after_scans: Some(250),
    };
    let err = project_document_with(&db, ORG, "doc-many", &doc, &opts).await;
    assert!(
        matches!(err, Err(ProjectionError::Injected(250))),
        "{err:?}"
    );
    assert_eq!(counts(&db, "doc-many").await?, (250, 250));

    let rest = project_document(&db, ORG, "doc-many", &doc).await?;
    assert_eq!(rest.newly_projected, SCANS - 250);
    assert_eq!(counts(&db, "doc-many").await?, (SCANS as u64, SCANS as u64));
    tdb.close().await
}
