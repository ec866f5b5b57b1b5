//! Damaged files: torn tails are cut, damaged files are quarantined and reported, intact
//! data is still loaded, and nothing panics.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::path::Path;

use automerge::ActorId;
use swt_core::doc::{Header, SyncState, TaskDocument, TaskKind, TaskStatus};
use swt_core::model::{Action, Feedback, Identifiers, ReferenceData, Scan, ScanId};
use swt_core::store::{Store, StoreEvent, StoreOptions};

fn actor() -> ActorId {
    ActorId::from(b"corrupt-test-device".as_slice())
}

fn scan(n: u64) -> Scan {
    // SSCC n: 17 digits and their check digit.
    let mut sscc = format!("{n:017}");
    sscc.push(char::from(swt_core::gs1::mod10_check_digit(
        sscc.as_bytes(),
    )));
    Scan {
        id: ScanId::from_device_counter("dev1", n).unwrap(),
        raw: format!("00{sscc}").into_bytes(),
        ids: Identifiers {
            sscc: Some(sscc.parse().unwrap()),
            ..Default::default()
        },
        action: Action::Ship,
        user: "u1".into(),
        device: "dev1".into(),
        location: None,
        device_time_ms: n,
        feedback: Feedback::Ok,
        parent: None,
    }
}

/// A store with one document holding `n` scans, all in the change log, one change each
/// (no compaction).
fn make(dir: &Path, n: u64) {
    make_with(
        dir,
        n,
        StoreOptions {
            apply_after_scans: 1,
            ..Default::default()
        },
    );
}

/// A store with one document whose `n` scans all wait in the pending log.
fn make_pending(dir: &Path, n: u64) {
    make_with(dir, n, StoreOptions::default());
    let pending = fs::metadata(dir.join("docs/t/pending")).unwrap().len();
    assert!(pending > 0, "scans are in the pending log");
}

fn make_with(dir: &Path, n: u64, opts: StoreOptions) {
    let mut s = Store::open(dir, actor(), opts).unwrap();
    let header = Header {
        kind: TaskKind::Shipping,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let mut server = TaskDocument::create(ActorId::from(b"server".as_slice()), &header, 0).unwrap();
    s.insert_doc("t", TaskDocument::load(&server.save(), actor()).unwrap())
        .unwrap();
    for i in 0..n {
        s.record_scan("t", &scan(i)).unwrap();
    }
}

fn quarantined(dir: &Path) -> Vec<String> {
    fs::read_dir(dir.join("quarantine"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn torn_tail_is_dropped_not_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 30);
    let log = dir.path().join("docs/t/log");
    let len = fs::metadata(&log).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(
        matches!(s.events(), [StoreEvent::TornTailDropped { .. }]),
        "{:?}",
        s.events()
    );
    assert_eq!(s.doc("t").unwrap().scan_count(), 29);
    assert!(quarantined(dir.path()).is_empty());
    drop(s);
    // The cut is durable: the next open is clean.
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(s.events().is_empty());
    assert_eq!(s.doc("t").unwrap().scan_count(), 29);
}

#[test]
fn damaged_log_is_quarantined_and_intact_frames_kept() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 30);
    let log = dir.path().join("docs/t/log");
    let mut bytes = fs::read(&log).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&log, &bytes).unwrap();
    let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    match s.events() {
        [StoreEvent::Quarantined { to, reason, .. }] => {
            assert!(to.exists(), "the damaged file is kept in quarantine");
            assert!(reason.contains("damaged"), "{reason}");
        }
        other => panic!("expected one quarantine event, got {other:?}"),
    }
    assert_eq!(quarantined(dir.path()).len(), 1);
    // One scan's frame is damaged. Later changes by the same actor depend on it, so
    // Automerge holds them back until the missing change arrives (e.g. from the server);
    // every scan that is shown decodes, and the quarantined file still holds them all.
    let n = s.doc("t").unwrap().scan_count();
    assert!((14..30).contains(&n), "{n}");
    for r in s.doc("t").unwrap().scans() {
        r.unwrap();
    }
    s.record_scan("t", &scan(100)).unwrap();
    drop(s);
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(
        s.events().is_empty(),
        "store is whole again: {:?}",
        s.events()
    );
    assert_eq!(s.doc("t").unwrap().scan_count(), n + 1);
    // The held-back frames were kept in the new log, not only in quarantine.
    let log_len = fs::metadata(dir.path().join("docs/t/log")).unwrap().len();
    assert!(log_len as usize > bytes.len() / 2, "{log_len}");
}

#[test]
fn damaged_snapshot_sync_state_and_reference_are_quarantined() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 5);
    {
        let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
        s.compact("t").unwrap();
        s.save_sync_state("t", &SyncState::new()).unwrap();
        s.put_reference(&ReferenceData {
            site: "s1".into(),
            version: 3,
            ..Default::default()
        })
        .unwrap();
    }
    for p in ["docs/t/snapshot", "docs/t/sync", "reference/s1"] {
        let path = dir.path().join(p);
        let mut b = fs::read(&path).unwrap();
        let last = b.len() - 1;
        b[last] ^= 0x01;
        fs::write(&path, b).unwrap();
    }
    let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(
        matches!(s.events(), [StoreEvent::Quarantined { .. }]),
        "{:?}",
        s.events()
    );
    assert_eq!(
        s.sync_state("t").unwrap().encode(),
        SyncState::new().encode()
    );
    assert!(s.reference("s1").unwrap().is_none());
    assert_eq!(s.events().len(), 3);
    assert_eq!(quarantined(dir.path()).len(), 3);
}

#[test]
fn random_garbage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    make(dir.path(), 3);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..20 {
        let mut g = Vec::new();
        for _ in 0..(round * 37) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            g.push(x as u8);
        }
        fs::write(dir.path().join("docs/t/log"), &g).unwrap();
        fs::write(dir.path().join("docs/t/snapshot"), &g).unwrap();
        fs::write(dir.path().join("docs/t/pending"), &g).unwrap();
        let s = Store::open(dir.path(), actor(), StoreOptions::default());
        assert!(s.is_ok(), "{:?}", s.err());
    }
}

#[test]
fn torn_pending_tail_loses_only_the_unacknowledged_scan() {
    let dir = tempfile::tempdir().unwrap();
    make_pending(dir.path(), 30);
    let p = dir.path().join("docs/t/pending");
    let len = fs::metadata(&p).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(
        matches!(s.events(), [StoreEvent::TornTailDropped { .. }]),
        "{:?}",
        s.events()
    );
    assert_eq!(s.doc("t").unwrap().scan_count(), 29);
    assert!(quarantined(dir.path()).is_empty());
    drop(s);
    // Opening moved the pending scans into the change log and emptied the pending log.
    assert_eq!(fs::metadata(&p).unwrap().len(), 0);
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(s.events().is_empty(), "{:?}", s.events());
    assert_eq!(s.doc("t").unwrap().scan_count(), 29);
}

#[test]
fn damaged_pending_log_is_quarantined_and_intact_scans_kept() {
    let dir = tempfile::tempdir().unwrap();
    make_pending(dir.path(), 30);
    let p = dir.path().join("docs/t/pending");
    let mut bytes = fs::read(&p).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    fs::write(&p, &bytes).unwrap();
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    match s.events() {
        [StoreEvent::Quarantined { to, reason, .. }] => {
            assert!(to.exists(), "the damaged file is kept in quarantine");
            assert!(reason.contains("pending"), "{reason}");
        }
        other => panic!("expected one quarantine event, got {other:?}"),
    }
    // Pending records are independent of each other: only the damaged one is missing.
    assert_eq!(s.doc("t").unwrap().scan_count(), 29);
    for r in s.doc("t").unwrap().scans() {
        r.unwrap();
    }
    drop(s);
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(s.events().is_empty(), "{:?}", s.events());
    assert_eq!(s.doc("t").unwrap().scan_count(), 29);
}

#[test]
fn replaying_a_pending_log_already_applied_changes_nothing() {
    // A crash between "change fsynced into the log" and "pending log emptied".
    let dir = tempfile::tempdir().unwrap();
    make_pending(dir.path(), 10);
    let p = dir.path().join("docs/t/pending");
    let saved = fs::read(&p).unwrap();
    let s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert_eq!(s.doc("t").unwrap().scan_count(), 10);
    drop(s);
    fs::write(&p, &saved).unwrap();
    let mut s = Store::open(dir.path(), actor(), StoreOptions::default()).unwrap();
    assert!(s.events().is_empty(), "{:?}", s.events());
    assert_eq!(s.doc("t").unwrap().scan_count(), 10);
    // And the ids stay taken.
    assert!(s.record_scan("t", &scan(3)).is_err());
}
