//! The device session end to end on a real directory: identity, scanning with feedback,
//! failed reads kept, voids, reopen (progress, ids and identity survive), sync status.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use automerge::ActorId;
use swt_core::doc::{Expected, ExpectedLine, Header, TaskDocument, TaskKind, TaskStatus};
use swt_core::model::{ExpiryPolicy, Feedback, Product, ReferenceData};
use swt_core::rules::{Reason, Verdict};
use swt_core::session::{Identity, Session, SessionError, SessionOptions};

const G1: &str = "09506000134352";
/// 2026-11-24 12:00 UTC.
const NOW: u64 = 1_795_521_600_000;

fn pack(serial: &str) -> Vec<u8> {
    format!("]d201{G1}1728013110LOT1\u{1d}21{serial}").into_bytes()
}

fn server_task(kind: TaskKind, qty: u64) -> Vec<u8> {
    let header = Header {
        kind,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let mut doc = TaskDocument::create(ActorId::from(b"server".as_slice()), &header, 1).unwrap();
    doc.set_expected(
        &Expected {
            lines: vec![ExpectedLine {
                gtin: G1.parse().unwrap(),
                quantity: qty,
                lot: None,
            }],
            units: vec![],
        },
        2,
    )
    .unwrap();
    doc.save()
}

fn identity() -> Identity {
    Identity {
        user: "picker-1".into(),
        device: "scanner-7".into(),
        site: Some("s1".into()),
        access_token: Some("token".into()),
        ..Default::default()
    }
}

fn open(dir: &std::path::Path) -> Session {
    Session::open(dir, SessionOptions::default()).unwrap()
}

fn setup(dir: &std::path::Path) -> Session {
    let mut s = open(dir);
    s.set_identity(identity()).unwrap();
    let mut r = ReferenceData {
        site: "s1".into(),
        version: 1,
        expiry_policy: ExpiryPolicy {
            min_remaining_days: 30,
            reject_expired: true,
        },
        ..Default::default()
    };
    r.products.insert(
        G1.into(),
        Product {
            gtin: G1.parse().unwrap(),
            name: "Paracetamol 500".into(),
            serialized: true,
            ndc: None,
            pack_size: None,
        },
    );
    s.put_reference(r).unwrap();
    s.add_task_bytes("pick-1", &server_task(TaskKind::Picking, 3))
        .unwrap();
    s
}

#[test]
fn scan_feedback_void_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    let a = s.record_scan_at("pick-1", &pack("A"), NOW).unwrap();
    assert_eq!(
        (a.verdict, a.reason),
        (Verdict::Accept, Reason::Ok),
        "{a:?}"
    );
    assert_eq!(a.progress.units_counted, 1);
    let dup = s.record_scan_at("pick-1", &pack("A"), NOW + 1).unwrap();
    assert_eq!(dup.reason, Reason::Duplicate);
    let bad = s.record_scan_at("pick-1", b"]d2019506", NOW + 2).unwrap();
    assert_eq!(bad.reason, Reason::InvalidBarcode);
    assert!(bad.gs1_error.is_some());
    let b = s.record_scan_at("pick-1", &pack("B"), NOW + 3).unwrap();
    assert_eq!(
        b.progress.to_string(),
        "0 of 1 lines complete, 2 of 3 units"
    );
    assert_ne!(a.scan_id, b.scan_id);

    let p = s
        .void_scan_at("pick-1", a.scan_id.as_str(), NOW + 4)
        .unwrap();
    assert_eq!((p.units_counted, p.scans_voided), (1, 1));
    assert!(matches!(
        s.void_scan_at("pick-1", a.scan_id.as_str(), NOW + 5),
        Err(SessionError::UnknownScan(_))
    ));
    // After the void the same pack is taken again.
    let again = s.record_scan_at("pick-1", &pack("A"), NOW + 6).unwrap();
    assert_eq!(again.reason, Reason::Ok);
    let before = s.progress("pick-1").unwrap();
    let status = s.sync_status().unwrap();
    assert_eq!(status.pending_total, 6, "5 scans + 1 void: {status:?}");
    drop(s);

    let mut s = open(dir.path());
    assert!(s.events().is_empty(), "{:?}", s.events());
    assert_eq!(s.identity(), Some(&identity()));
    assert_eq!(s.progress("pick-1").unwrap(), before);
    // The failed read is in the document with its raw bytes.
    let doc_scans = s.store_mut().doc("pick-1").unwrap().scans();
    let failed: Vec<_> = doc_scans
        .into_iter()
        .map(Result::unwrap)
        .filter(|x| x.feedback == Feedback::ReadFailed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].raw, b"]d2019506");
    assert_eq!(failed[0].user, "picker-1");
    // Duplicates are still caught after a restart, and new ids never collide.
    let dup = s.record_scan_at("pick-1", &pack("B"), NOW + 7).unwrap();
    assert_eq!(dup.reason, Reason::Duplicate);
    let c = s.record_scan_at("pick-1", &pack("C"), NOW + 8).unwrap();
    assert_eq!(c.reason, Reason::Ok);
    assert_eq!(c.progress.lines_complete, 1);
    let over = s.record_scan_at("pick-1", &pack("D"), NOW + 9).unwrap();
    assert_eq!(
        (over.reason, over.verdict),
        (Reason::OverQuantity, Verdict::Reject)
    );
}

#[test]
fn scans_need_a_user_and_survive_logout() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    s.record_scan_at("pick-1", &pack("A"), NOW).unwrap();
    // Token expired, user logged out: the scan stays pending for the next login.
    s.logout().unwrap();
    assert!(matches!(
        s.record_scan_at("pick-1", &pack("B"), NOW),
        Err(SessionError::NotLoggedIn)
    ));
    drop(s);
    let mut s = open(dir.path());
    assert_eq!(s.identity(), None);
    assert_eq!(s.sync_status().unwrap().pending_total, 1);
    s.set_identity(identity()).unwrap();
    s.set_tokens(
        Some("new".into()),
        Some("refresh".into()),
        Some(NOW + 60_000),
    )
    .unwrap();
    assert_eq!(s.identity().unwrap().access_token.as_deref(), Some("new"));
    assert!(matches!(
        s.record_scan_at("nope", &pack("B"), NOW),
        Err(SessionError::Store(_) | SessionError::UnknownTask(_))
    ));
}

#[test]
fn sync_outcome_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    s.sync_finished(NOW, Some("network unreachable".into()))
        .unwrap();
    s.sync_finished(NOW + 10, None).unwrap();
    s.sync_finished(NOW + 20, Some("timeout".into())).unwrap();
    drop(s);
    let mut s = open(dir.path());
    let st = s.sync_status().unwrap();
    assert_eq!(st.outcome.last_success_ms, Some(NOW + 10));
    assert_eq!(st.outcome.last_attempt_ms, Some(NOW + 20));
    assert_eq!(st.outcome.last_error.as_deref(), Some("timeout"));
    let tasks = s.tasks().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].header.as_ref().unwrap().kind, TaskKind::Picking);
}

#[test]
fn keyed_in_gtin_is_an_explicit_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = setup(dir.path());
    // Bare digits from the scanner are AI data, as for GS1's engine: not a guessed GTIN.
    let scanned = s.record_scan_at("pick-1", G1.as_bytes(), NOW).unwrap();
    assert_eq!(scanned.reason, Reason::InvalidBarcode);
    assert_eq!(
        scanned.gs1_error.as_ref().map(|(c, _)| c.as_str()),
        Some("unknown_ai")
    );
    // Typed by hand through the explicit entry, the same digits are the GTIN.
    let typed = s
        .record_keyed_at("pick-1", &format!(" {G1} "), NOW + 1)
        .unwrap();
    assert_ne!(typed.reason, Reason::InvalidBarcode, "{typed:?}");
    assert_eq!(
        typed.identifiers.gtin.as_ref().map(|g| g.as_str()),
        Some(G1)
    );
    // Stored as the bracketed key, which the server's default reading parses back.
    let stored: Vec<Vec<u8>> = s
        .store()
        .pending_scans("pick-1")
        .iter()
        .map(|x| x.raw.clone())
        .collect();
    let bracketed = format!("(01){G1}").into_bytes();
    assert!(stored.contains(&bracketed), "{stored:?}");
    let again = swt_core::gs1::parse(&bracketed, &Default::default()).unwrap();
    assert_eq!(again.get("01"), Some(G1));
    // A mistyped digit is caught by the check digit, and said so.
    let mistyped = s
        .record_keyed_at("pick-1", "09506000134353", NOW + 2)
        .unwrap();
    assert_eq!(mistyped.reason, Reason::InvalidBarcode);
    assert_eq!(
        mistyped.gs1_error.as_ref().map(|(c, _)| c.as_str()),
        Some("bad_check_digit")
    );
}
