//! Sign-in and sync of the device session without a server: the registered actor is
//! adopted (and persisted) at sign-in, pending scans are re-authored by it, applied
//! writes by another actor block the switch, and a sync that cannot reach the server
//! keeps everything and records the error. The flow against a real server is in
//! `android-bindings/jvm-test/src/SyncSuite.kt` (run by `run-jvm-tests.sh`).

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use automerge::ActorId;
use swt_core::api::{DeviceInfo, SignedIn, UserInfo};
use swt_core::doc::{Expected, ExpectedLine, Header, TaskDocument, TaskKind, TaskStatus};
use swt_core::session::{Identity, Session, SessionError, SessionOptions};
use swt_core::sync::SyncError;

const G1: &str = "09506000134352";
const NOW: u64 = 1_795_521_600_000;
const REGISTERED: &str = "5d7e0000000000000000000000000401";

fn pack(serial: &str) -> Vec<u8> {
    format!("]d201{G1}1728013110LOT1\u{1d}21{serial}").into_bytes()
}

fn task() -> Vec<u8> {
    let header = Header {
        kind: TaskKind::Picking,
        site: "s1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let mut doc = TaskDocument::create(ActorId::from(b"server".as_slice()), &header, 1).unwrap();
    doc.set_expected(
        &Expected {
            lines: vec![ExpectedLine {
                gtin: G1.parse().unwrap(),
                quantity: 3,
                lot: None,
            }],
            units: vec![],
        },
        2,
    )
    .unwrap();
    doc.save()
}

fn tokens(actor: &str) -> SignedIn {
    SignedIn {
        access_token: "access".into(),
        token_type: "Bearer".into(),
        expires_in: 900,
        refresh_token: "refresh".into(),
        user: UserInfo {
            id: "user-1".into(),
            username: "picker".into(),
            display_name: "Picker".into(),
            role: "picker".into(),
            organisation_id: "org".into(),
            site_id: None,
        },
        device: Some(DeviceInfo {
            id: "dev-1".into(),
            site_id: "s1".into(),
            actor_id: actor.into(),
            name: "scanner".into(),
            disabled: false,
            unsent: None,
            unsent_reported_at: None,
        }),
    }
}

fn open(dir: &std::path::Path) -> Session {
    Session::open(dir, SessionOptions::default()).unwrap()
}

/// Actors of the document's changes made by anyone but the server.
fn device_actors(s: &Session, task: &str) -> Vec<String> {
    let mut doc = s.store().doc(task).unwrap().automerge().clone();
    let server = ActorId::from(b"server".as_slice());
    let mut out: Vec<String> = doc
        .get_changes(&[])
        .iter()
        .map(|c| c.actor_id().clone())
        .filter(|a| *a != server)
        .map(|a| a.to_hex_string())
        .collect();
    out.dedup();
    out
}

#[test]
fn login_adopts_the_registered_actor_and_pending_scans_follow_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let first = s.actor_hex().to_owned();
    assert_ne!(first, REGISTERED);
    s.add_task_bytes("t1", &task()).unwrap();
    // Scans recorded before sign-in (an app that set the identity by hand) stay in the
    // pending log: they are written into Automerge only later, by the adopted actor.
    s.set_identity(Identity {
        user: "user-1".into(),
        device: "dev-1".into(),
        ..Default::default()
    })
    .unwrap();
    let early = s.record_scan_at("t1", &pack("A"), NOW).unwrap();

    let id = s
        .apply_login("http://example.invalid/", tokens(REGISTERED), NOW)
        .unwrap();
    assert_eq!(id.user, "user-1");
    assert_eq!(id.device, "dev-1");
    assert_eq!(id.site.as_deref(), Some("s1"));
    assert_eq!(id.server_url.as_deref(), Some("http://example.invalid"));
    assert_eq!(id.access_expires_ms, Some(NOW + 900_000));
    assert_eq!(s.actor_hex(), REGISTERED);
    // Scan ids carry the writing actor (the server takes no other) and the install's
    // nonce from its first actor: unique per install.
    let prefix = format!("{REGISTERED}.{}", &first[..8]);
    assert_eq!(s.scan_id_prefix(), prefix);
    assert!(early.scan_id.as_str().starts_with(&format!("{first}.")));
    let later = s.record_scan_at("t1", &pack("B"), NOW + 1).unwrap();
    assert!(later.scan_id.as_str().starts_with(&prefix));
    s.store_mut().apply_pending("t1").unwrap();
    assert_eq!(device_actors(&s, "t1"), vec![REGISTERED.to_owned()]);
    // The scan recorded before sign-in was renamed into the registered actor's space.
    let doc = s.store().doc("t1").unwrap();
    let ids: Vec<String> = doc
        .scans()
        .into_iter()
        .map(|r| r.unwrap().id.to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with(&prefix)), "{ids:?}");
    drop(s);

    // Fixed at first login: a reopen writes with the registered actor, no login needed.
    let mut s = open(dir.path());
    assert_eq!(s.actor_hex(), REGISTERED);
    assert_eq!(
        s.identity().unwrap().refresh_token.as_deref(),
        Some("refresh")
    );
    s.record_scan_at("t1", &pack("C"), NOW + 2).unwrap();
    s.store_mut().apply_pending("t1").unwrap();
    assert_eq!(device_actors(&s, "t1"), vec![REGISTERED.to_owned()]);
    assert_eq!(s.progress("t1").unwrap().packs_counted, 3);
    // Signing in again with the same registration changes nothing.
    s.apply_login("http://example.invalid", tokens(REGISTERED), NOW)
        .unwrap();
    assert_eq!(s.actor_hex(), REGISTERED);
}

#[test]
fn applied_writes_by_another_actor_block_the_switch() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let first = s.actor_hex().to_owned();
    s.add_task_bytes("t1", &task()).unwrap();
    s.set_identity(Identity {
        user: "user-1".into(),
        device: "dev-1".into(),
        ..Default::default()
    })
    .unwrap();
    s.record_scan_at("t1", &pack("A"), NOW).unwrap();
    s.store_mut().apply_pending("t1").unwrap();
    match s.apply_login("http://x", tokens(REGISTERED), NOW) {
        Err(SessionError::ActorConflict {
            current,
            registered,
            writes,
        }) => {
            assert_eq!(current, first);
            assert_eq!(registered, REGISTERED);
            assert_eq!(writes, 1);
        }
        other => panic!("expected an actor conflict, got {other:?}"),
    }
    // Nothing changed: same actor, same (hand-set) identity without tokens.
    assert_eq!(s.actor_hex(), first);
    assert_eq!(s.identity().unwrap().access_token, None);
    drop(s);
    assert_eq!(open(dir.path()).actor_hex(), first);
}

#[test]
fn sign_in_answer_without_device_or_with_bad_actor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    let mut t = tokens(REGISTERED);
    t.device = None;
    assert!(matches!(
        s.apply_login("http://x", t, NOW),
        Err(SessionError::Sync(SyncError::Protocol(_)))
    ));
    assert!(matches!(
        s.apply_login("http://x", tokens("not hex"), NOW),
        Err(SessionError::Sync(SyncError::Protocol(_)))
    ));
    assert!(s.identity().is_none());
}

#[test]
fn sync_without_login_or_network_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    assert!(matches!(s.sync_now(), Err(SessionError::NotLoggedIn)));
    s.add_task_bytes("t1", &task()).unwrap();
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    s.apply_login("http://127.0.0.1:1", tokens(REGISTERED), NOW)
        .unwrap();
    s.record_scan_at("t1", &pack("A"), NOW).unwrap();
    s.record_scan_at("t1", &pack("B"), NOW + 1).unwrap();
    let err = s.sync_now().unwrap_err();
    assert!(
        matches!(err, SessionError::Sync(SyncError::Network(_))),
        "{err:?}"
    );
    let st = s.sync_status().unwrap();
    assert_eq!(st.pending_total, 2);
    assert!(st.refused.is_empty());
    assert!(st.outcome.last_error.is_some());
    assert!(st.outcome.last_success_ms.is_none());
    assert!(st.outcome.last_attempt_ms.is_some());
    // Tokens are kept on a network error (they may still be valid).
    assert_eq!(
        s.identity().unwrap().access_token.as_deref(),
        Some("access")
    );
    assert_eq!(s.progress("t1").unwrap().packs_counted, 2);
    drop(s);
    let mut s = open(dir.path());
    assert_eq!(s.sync_status().unwrap().pending_total, 2);
    // A refusal marker left by the sync client shows in the status, with its reason.
    std::fs::write(
        dir.path().join(swt_core::sync::refused_marker("t1")),
        b"wrong_user",
    )
    .unwrap();
    let st = s.sync_status().unwrap();
    assert_eq!(st.refused.len(), 1);
    assert_eq!(st.refused[0].task_id, "t1");
    assert_eq!(st.refused[0].reason, "wrong_user");
}

/// A sync waiting on a slow network must not hold the session: the picker keeps scanning.
/// The "server" accepts the connection and answers nothing until the main thread has
/// recorded a scan; had the sync held the session, that scan would wait for the sync and
/// the server would give up waiting (10 s) without the signal.
#[test]
fn scanning_goes_on_while_a_sync_waits_on_the_network() {
    use std::sync::mpsc;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut s = open(dir.path());
    s.add_task_bytes("t1", &task()).unwrap();
    s.apply_login(&url, tokens(REGISTERED), NOW).unwrap();
    s.record_scan_at("t1", &pack("A"), NOW).unwrap();
    let session = Arc::new(Mutex::new(s));

    let (accepted_tx, accepted_rx) = mpsc::channel();
    let (scanned_tx, scanned_rx) = mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        accepted_tx.send(()).unwrap();
        let signalled = scanned_rx.recv_timeout(Duration::from_secs(10)).is_ok();
        drop(conn);
        signalled
    });
    let syncing = {
        let session = Arc::clone(&session);
        // Only the error's kind crosses the thread (SessionError is large).
        std::thread::spawn(move || {
            swt_core::session::sync_now_shared(&*session).map_err(|e| {
                matches!(
                    e,
                    SessionError::Sync(SyncError::Network(_) | SyncError::Protocol(_))
                )
            })
        })
    };
    accepted_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    session
        .lock()
        .unwrap()
        .record_scan_at("t1", &pack("B"), NOW + 1)
        .unwrap();
    scanned_tx.send(()).unwrap();
    assert!(
        server.join().unwrap(),
        "record_scan waited for the sync's network I/O"
    );
    let network_error = syncing.join().unwrap().unwrap_err();
    assert!(network_error, "the sync fails as a network error");
    let mut s = session.lock().unwrap();
    let st = s.sync_status().unwrap();
    assert_eq!(st.pending_total, 2, "both scans are kept for the next sync");
    assert!(st.outcome.last_error.is_some());
}

#[test]
fn a_full_task_takes_no_more_scans_on_the_device() {
    use swt_core::doc::limits::MAX_SCANS;
    use swt_core::model::{Action, Feedback, Identifiers, Scan, ScanId};
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.add_task_bytes("t1", &task()).unwrap();
    s.apply_login("http://example.invalid", tokens(REGISTERED), NOW)
        .unwrap();
    let prefix = s.scan_id_prefix();
    let scans: Vec<Scan> = (0..MAX_SCANS as u64)
        .map(|n| Scan {
            id: ScanId::from_device_counter(&prefix, 1_000_000 + n).unwrap(),
            raw: pack(&format!("F{n}")),
            ids: Identifiers::default(),
            action: Action::Pick,
            user: "user-1".into(),
            device: "dev-1".into(),
            location: None,
            device_time_ms: NOW,
            feedback: Feedback::Ok,
            parent: None,
        })
        .collect();
    s.store_mut().record_scans("t1", &scans).unwrap();
    match s.record_scan_at("t1", &pack("ONE-TOO-MANY"), NOW) {
        Err(SessionError::DocumentFull(t)) => assert_eq!(t, "t1"),
        other => panic!("expected a full document, got {other:?}"),
    }
    assert_eq!(s.store().doc("t1").unwrap().scan_count(), MAX_SCANS);
}

#[test]
fn a_refused_task_is_set_aside_whole_and_can_start_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = open(dir.path());
    s.add_task_bytes("t1", &task()).unwrap();
    s.apply_login("http://example.invalid", tokens(REGISTERED), NOW)
        .unwrap();
    s.record_scan_at("t1", &pack("A"), NOW).unwrap();
    // Not refused: nothing to reset, nothing changes.
    assert!(matches!(
        s.reset_refused_task("t1"),
        Err(SessionError::InvalidInput(_))
    ));
    assert!(s.store().doc("t1").is_some());
    // What the sync client leaves after a refusal.
    let marker = dir.path().join(swt_core::sync::refused_marker("t1"));
    std::fs::write(&marker, b"wrong_device").unwrap();
    let to = s.reset_refused_task("t1").unwrap();
    assert!(!marker.exists());
    assert!(
        s.store().doc("t1").is_none(),
        "the next sync fetches it afresh"
    );
    // The local copy, its pending scan included, is kept for a person to examine.
    let kept = std::path::Path::new(&to);
    assert!(kept.starts_with(dir.path().join("quarantine")), "{to}");
    assert!(kept.join("pending").metadata().unwrap().len() > 0);
    assert!(s.sync_status().unwrap().refused.is_empty());
}
