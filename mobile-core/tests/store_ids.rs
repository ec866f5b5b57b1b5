//! The store's duplicate check now comes from in-memory id sets (pending scans, and the
//! document's scans built on first use): it must still refuse every id already in the
//! document — applied before a reopen, added in bulk, or brought in by a sync.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use automerge::ActorId;
use swt_core::doc::{Header, SyncState, TaskDocument, TaskKind, TaskStatus};
use swt_core::model::{Action, Feedback, Identifiers, Scan, ScanId};
use swt_core::store::{Store, StoreError, StoreOptions};

fn header() -> Header {
    Header {
        kind: TaskKind::Receiving,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    }
}

fn scan(prefix: &str, n: u64) -> Scan {
    Scan {
        id: ScanId::from_device_counter(prefix, n).unwrap(),
        raw: format!("010950600013435221S{n}").into_bytes(),
        ids: Identifiers {
            gtin: Some("09506000134352".parse().unwrap()),
            serial: Some(format!("S{n}")),
            ..Default::default()
        },
        action: Action::Receive,
        user: "u1".into(),
        device: "d1".into(),
        location: None,
        device_time_ms: 1_764_000_000_000 + n,
        feedback: Feedback::Ok,
        parent: None,
    }
}

fn is_dup(r: Result<(), StoreError>) -> bool {
    matches!(
        r,
        Err(StoreError::Doc(swt_core::doc::DocError::DuplicateScan(_)))
    )
}

#[test]
fn duplicates_are_refused_from_every_source() {
    let dir = tempfile::tempdir().unwrap();
    let me = ActorId::from(b"device-a".as_slice());
    let mut server =
        TaskDocument::create(ActorId::from(b"server".as_slice()), &header(), 1).unwrap();
    let mut s = Store::open(dir.path(), me.clone(), StoreOptions::default()).unwrap();
    s.insert_doc("t", TaskDocument::load(&server.save(), me.clone()).unwrap())
        .unwrap();
    for n in 0..5 {
        s.record_scan("t", &scan("a", n)).unwrap();
    }
    assert!(
        is_dup(s.record_scan("t", &scan("a", 2))),
        "pending duplicate"
    );
    s.apply_pending("t").unwrap();
    assert!(
        is_dup(s.record_scan("t", &scan("a", 2))),
        "applied duplicate"
    );
    s.record_scans("t", &[scan("a", 10), scan("a", 11)])
        .unwrap();
    assert!(is_dup(s.record_scan("t", &scan("a", 11))), "bulk duplicate");
    drop(s);

    // After a reopen the set is rebuilt from the document.
    let mut s = Store::open(dir.path(), me.clone(), StoreOptions::default()).unwrap();
    assert_eq!(s.doc("t").unwrap().scan_count(), 7);
    assert!(
        is_dup(s.record_scan("t", &scan("a", 4))),
        "duplicate after reopen"
    );
    s.record_scan("t", &scan("a", 5)).unwrap();

    // Another device's scan arrives by sync: its id is known afterwards.
    let other = ActorId::from(b"device-b".as_slice());
    let mut b = TaskDocument::load(&server.save(), other).unwrap();
    b.add_scan(&scan("b", 0)).unwrap();
    let (mut sa, mut sb) = (SyncState::new(), SyncState::new());
    for _ in 0..10 {
        let m = s
            .update_doc("t", |d| d.generate_sync_message(&mut sa))
            .unwrap();
        if let Some(m) = m {
            b.receive_sync_message(&mut sb, &m).unwrap();
        }
        if let Some(m) = b.generate_sync_message(&mut sb) {
            s.update_doc("t", |d| d.receive_sync_message(&mut sa, &m))
                .unwrap()
                .unwrap();
        }
    }
    assert_eq!(s.doc("t").unwrap().scan_count(), 9);
    assert!(
        is_dup(s.record_scan("t", &scan("b", 0))),
        "synced duplicate"
    );
    assert_eq!(b.scan_count(), 9, "the other device got ours");
    let _ = server.save();
}

/// A finished task leaves the device only once the server holds everything of it: the
/// store refuses to remove a document with pending or unacknowledged writes, and a removal
/// interrupted by a crash never brings half a document back.
#[test]
fn a_document_is_removed_only_when_nothing_of_it_is_unsynced() {
    let dir = tempfile::tempdir().unwrap();
    let me = ActorId::from(b"device-a".as_slice());
    let mut server =
        TaskDocument::create(ActorId::from(b"server".as_slice()), &header(), 1).unwrap();
    let mut s = Store::open(dir.path(), me.clone(), StoreOptions::default()).unwrap();
    s.insert_doc("t", TaskDocument::load(&server.save(), me.clone()).unwrap())
        .unwrap();
    s.record_scan("t", &scan("a", 0)).unwrap();
    assert!(
        matches!(s.remove_doc("t"), Err(StoreError::Unsynced(_, 1))),
        "a pending scan keeps it"
    );
    s.apply_pending("t").unwrap();
    assert!(
        matches!(s.remove_doc("t"), Err(StoreError::Unsynced(_, 1))),
        "an applied, unacknowledged scan keeps it"
    );
    // The server takes the scan; the stored sync state now covers it.
    let mut st = s.sync_state("t").unwrap();
    let mut theirs = SyncState::new();
    for _ in 0..10 {
        if let Some(m) = s
            .update_doc("t", |d| d.generate_sync_message(&mut st))
            .unwrap()
        {
            server.receive_sync_message(&mut theirs, &m).unwrap();
        }
        if let Some(m) = server.generate_sync_message(&mut theirs) {
            s.update_doc("t", |d| d.receive_sync_message(&mut st, &m))
                .unwrap()
                .unwrap();
        }
    }
    s.save_sync_state("t", &st).unwrap();
    assert_eq!(server.scan_count(), 1);
    s.remove_doc("t").unwrap();
    assert!(s.doc("t").is_none());
    assert!(matches!(s.remove_doc("t"), Err(StoreError::UnknownDoc(_))));
    drop(s);
    assert!(
        Store::open(dir.path(), me.clone(), StoreOptions::default())
            .unwrap()
            .doc_ids()
            .is_empty()
    );

    // A crash between the rename and the delete leaves `.removed-…`: never loaded, cleared.
    let leftover = dir.path().join("docs").join(".removed-u");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("snapshot"), b"half").unwrap();
    let s = Store::open(dir.path(), me, StoreOptions::default()).unwrap();
    assert!(s.doc_ids().is_empty() && s.events().is_empty());
    assert!(!leftover.exists(), "cleared at open");
}
