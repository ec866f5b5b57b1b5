//! Kills a writer process with SIGKILL at random instants, many times, and checks that
//! every scan it acknowledged is in the store afterwards and nothing is garbage.
//!
//! The writer is this test binary re-invoked with `SWT_CRASH_CHILD=<dir>`: it runs
//! `crash_child`, which appends scans forever and prints `ACK <id>` after each one returns.

// Integration tests: an unwrap that fails is a failed test (clippy.toml allows it only
// inside #[test] functions, not in the helpers beside them).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use automerge::ActorId;
use swt_core::doc::{Header, TaskDocument, TaskKind, TaskStatus};
use swt_core::model::{Action, Feedback, Identifiers, Scan, ScanId};
use swt_core::store::{Store, StoreEvent, StoreOptions};
use swt_domain::testing::Rng;

/// SIGKILLs per run.
const KILLS: u32 = 50;

/// Documents the writers rotate through: each stays small (opening is fast even in a
/// debug build) and each is reopened and appended to after several kills.
const DOCS: u32 = 12;

fn actor() -> ActorId {
    ActorId::from(b"crash-test-device".as_slice())
}

fn opts() -> StoreOptions {
    // Compact often, and move pending scans into the document every few scans, so kills
    // also land inside compaction and inside the pending-log → change-log hand-over.
    StoreOptions {
        compact_after_frames: 40,
        apply_after_scans: 7,
        ..Default::default()
    }
}

fn scan(id: ScanId, n: u64) -> Scan {
    let serial = format!("S{n:012}X");
    Scan {
        id,
        raw: format!("0109506000134352{}{serial}\u{1d}10L{}", "21", n % 7).into_bytes(),
        ids: Identifiers {
            gtin: Some("09506000134352".parse().unwrap()),
            serial: Some(serial),
            lot: Some(format!("L{}", n % 7)),
            expiry: None,
            sscc: None,
        },
        action: Action::Receive,
        user: "u1".into(),
        device: "dev1".into(),
        location: None,
        device_time_ms: 1_764_000_000_000 + n,
        feedback: Feedback::Ok,
        parent: None,
    }
}

fn ensure_doc(store: &mut Store, doc_id: &str) {
    if store.doc(doc_id).is_none() {
        let header = Header {
            kind: TaskKind::Receiving,
            site: "s1".into(),
            refs: Default::default(),
            status: TaskStatus::Open,
        };
        let mut server =
            TaskDocument::create(ActorId::from(b"server".as_slice()), &header, 0).expect("create");
        let doc = TaskDocument::load(&server.save(), actor()).expect("load");
        store.insert_doc(doc_id, doc).expect("insert");
    }
}

/// The writer. Does nothing unless started by `kill_at_random_points`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var("SWT_CRASH_CHILD") else {
        return;
    };
    let doc_id = std::env::var("SWT_CRASH_DOC").unwrap_or_else(|_| "task-0".into());
    let mut store = Store::open(&dir, actor(), opts()).expect("open");
    ensure_doc(&mut store, &doc_id);
    let mut out = std::io::stdout().lock();
    writeln!(out, "READY").expect("stdout");
    out.flush().expect("flush");
    for n in 0.. {
        // UUIDv7: unique across restarts without any counter to persist.
        let id = ScanId::new_v7();
        store
            .record_scan(&doc_id, &scan(id.clone(), n))
            .expect("record");
        writeln!(out, "ACK {id}").expect("stdout");
        out.flush().expect("flush");
    }
}

/// Reopens the store; returns (scans present, torn tails reported).
fn check_store(dir: &Path, acked: &HashSet<String>) -> (usize, usize) {
    let store = Store::open(dir, actor(), opts()).expect("reopen after kill");
    for e in store.events() {
        assert!(
            matches!(e, StoreEvent::TornTailDropped { .. }),
            "a kill may only tear the last append, got {e:?}"
        );
    }
    let mut present = HashSet::new();
    for id in store.doc_ids() {
        let doc = store.doc(&id).expect("listed document present");
        for s in doc.scans() {
            let s = s.expect("every stored scan decodes");
            assert!(present.insert(s.id.to_string()), "scan {} twice", s.id);
        }
    }
    for id in acked {
        assert!(present.contains(id), "acknowledged scan {id} lost");
    }
    (present.len(), store.events().len())
}

#[test]
fn kill_at_random_points() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("current exe");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    println!("seed {seed}");
    let mut rng = Rng::new(seed);
    let mut acked = HashSet::new();
    let started = Instant::now();
    let mut torn = 0;
    // A fixed number of kills, however long they take: a slow machine runs longer rather
    // than testing less.
    for kills in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
            .env("SWT_CRASH_CHILD", dir.path())
            .env("SWT_CRASH_DOC", format!("task-{}", kills % DOCS))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the writer to be ready, then let it run a random while (sometimes
        // zero: killed during open or its first append).
        let ready_deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < ready_deadline {
            match rx.recv_timeout(Duration::from_millis(50)) {
                // libtest may print "test crash_child ... " before it on the same line.
                Ok(l) if l.ends_with("READY") => break,
                Ok(l) => {
                    if let Some(id) = l.strip_prefix("ACK ") {
                        acked.insert(id.to_owned());
                    }
                }
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_micros(rng.below(40_000)));
        child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix.
        let _ = child.wait();
        let _ = reader.join();
        // Only complete lines count: a line cut by the kill was never printed whole.
        for l in rx.try_iter() {
            if let Some(id) = l.strip_prefix("ACK ")
                && id.len() == 32
            {
                acked.insert(id.to_owned());
            }
        }
        let (n, t) = check_store(dir.path(), &acked);
        assert!(n >= acked.len());
        torn += t;
    }
    println!(
        "{KILLS} kills, {} acknowledged scans all present, {torn} torn tails seen, {:?}",
        acked.len(),
        started.elapsed()
    );
    assert!(!acked.is_empty(), "the writer never acknowledged a scan");
}
