//! A fleet of scanners (the real core client, `swt_tests::api::Scanner`) that record
//! scans and sync them without pause while the fault tests break things under them.
//!
//! A scan counts as *acknowledged* once a sync run that started after it was recorded
//! ended with its document in sync with the server: the server said it holds it. Every
//! sync attempt's outcome is tallied by what the client saw and by the phase the fault
//! test was in (up, down), for the report and for the checks on what the server answered.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockWriteGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use swt_core::model::ScanId;
use swt_core::sync::SyncError;
use swt_server::demo;
use swt_tests::api::Scanner;

pub const GTIN: &str = "00368180513063";
/// The demo warehouse site the picker and the scanners belong to.
pub const SITE: &str = "0614141000012";
/// How long scanners may take to get every scan acknowledged once told to finish.
const CONVERGE: Duration = Duration::from_secs(120);
/// A scanner records no more while this many of its scans wait for the server, as a
/// picker waits for a sync; it keeps outages from piling up thousands of scans.
const BACKLOG: usize = 50;

/// What the fault test is doing to the system while a sync runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Everything is running.
    Up,
    /// The server (or its database) is down.
    Down,
    /// The phase changed while the sync ran.
    Changing,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Up,
            1 => Self::Down,
            _ => Self::Changing,
        }
    }
}

/// Outcome tallies: (phase, what the client saw) -> count.
pub type Outcomes = BTreeMap<(Phase, String), u64>;

struct Shared {
    stop: AtomicBool,
    phase: AtomicU8,
    /// Held for reading by every sync; the test takes it for writing to hold syncs back.
    gate: RwLock<()>,
    acked: Mutex<Vec<(String, ScanId)>>,
    acked_count: AtomicU64,
    /// Sync attempts that did not end with every document in sync.
    unsuccessful: AtomicU64,
    outcomes: Mutex<Outcomes>,
}

/// Scanners syncing in threads of their own.
pub struct Fleet {
    shared: Arc<Shared>,
    threads: Vec<Option<JoinHandle<anyhow::Result<()>>>>,
}

/// Classifies a failed sync by what the client saw.
fn classify(e: &SyncError) -> String {
    match e {
        SyncError::Rejected { status, code, .. } => format!("HTTP {status} {code}"),
        SyncError::Unauthorized(_) => "HTTP 401".to_owned(),
        SyncError::Network(m) => {
            let m = m.to_ascii_lowercase();
            let kind = if m.contains("refused") {
                "connection refused"
            } else if m.contains("reset") || m.contains("closed") || m.contains("broken pipe") {
                "connection dropped"
            } else if m.contains("timeout") || m.contains("timed out") {
                "timed out"
            } else {
                return format!("no answer: {}", m.chars().take(80).collect::<String>());
            };
            format!("no answer: {kind}")
        }
        SyncError::Protocol(_) => "unreadable answer".to_owned(),
        SyncError::Store(_) => "local store error".to_owned(),
        SyncError::Unavailable(_) => "session unavailable".to_owned(),
    }
}

impl Fleet {
    /// Starts one scanner per device, recording `batch` scans per sync, spread over
    /// `tasks`.
    pub fn start(base: &str, devices: Vec<String>, tasks: Vec<String>, batch: usize) -> Self {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            phase: AtomicU8::new(Phase::Up as u8),
            gate: RwLock::new(()),
            acked: Mutex::new(Vec::new()),
            acked_count: AtomicU64::new(0),
            unsuccessful: AtomicU64::new(0),
            outcomes: Mutex::new(BTreeMap::new()),
        });
        let threads = devices
            .into_iter()
            .enumerate()
            .map(|(i, device)| {
                let (base, tasks, shared) = (base.to_owned(), tasks.clone(), Arc::clone(&shared));
                Some(std::thread::spawn(move || {
                    scanner(&base, &device, i, &tasks, batch, &shared)
                }))
            })
            .collect();
        Self { shared, threads }
    }

    /// Scans acknowledged so far.
    pub fn acked_count(&self) -> u64 {
        self.shared.acked_count.load(Ordering::SeqCst)
    }

    /// Sync attempts so far that did not end in sync.
    pub fn unsuccessful(&self) -> u64 {
        self.shared.unsuccessful.load(Ordering::SeqCst)
    }

    /// Every acknowledged scan so far: (document id, scan id).
    pub fn acked(&self) -> Vec<(String, ScanId)> {
        self.shared
            .acked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Labels the syncs that run from now on.
    pub fn set_phase(&self, phase: Phase) {
        self.shared.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// Holds syncs back (after the ones running end) until the guard is dropped.
    pub fn pause(&self) -> RwLockWriteGuard<'_, ()> {
        self.shared
            .gate
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The outcome tallies so far.
    pub fn outcomes(&self) -> Outcomes {
        self.shared
            .outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An error if a scanner has stopped (it only stops on a failure before `finish`).
    pub fn check_running(&mut self) -> anyhow::Result<()> {
        for slot in &mut self.threads {
            if slot.as_ref().is_some_and(JoinHandle::is_finished)
                && let Some(t) = slot.take()
            {
                t.join()
                    .map_err(|_| anyhow::anyhow!("a scanner thread panicked"))??;
                anyhow::bail!("a scanner stopped early without an error");
            }
        }
        Ok(())
    }

    /// Waits (up to `limit`) until `done` holds, checking the scanners meanwhile; the
    /// error names `what` was awaited.
    pub fn wait_for(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        while !done(self) {
            self.check_running()?;
            anyhow::ensure!(
                start.elapsed() < limit,
                "gave up after {limit:?} waiting for {what} (acknowledged scans: {}, outcomes: {:?})",
                self.acked_count(),
                self.outcomes()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(start.elapsed())
    }

    /// Stops recording, lets every scanner sync until all its scans are acknowledged, and
    /// returns every acknowledged (= recorded) scan and the outcome tallies.
    pub fn finish(mut self) -> anyhow::Result<(Vec<(String, ScanId)>, Outcomes)> {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.iter_mut().filter_map(Option::take) {
            t.join()
                .map_err(|_| anyhow::anyhow!("a scanner thread panicked"))??;
        }
        Ok((self.acked(), self.outcomes()))
    }
}

/// One scanner: record a batch, sync, tally, until told to stop and all is acknowledged.
fn scanner(
    base: &str,
    device: &str,
    i: usize,
    tasks: &[String],
    batch: usize,
    shared: &Shared,
) -> anyhow::Result<()> {
    let password = demo::LOGINS[0].password;
    let mut s = Scanner::sign_in(base, "picker", password, device, None)?;
    let mut unacked: Vec<(String, ScanId)> = Vec::new();
    let mut n = 0u64;
    let mut last = String::new();
    let mut converge_by: Option<Instant> = None;
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            let by = *converge_by.get_or_insert_with(|| Instant::now() + CONVERGE);
            anyhow::ensure!(
                Instant::now() < by,
                "scanner {i}: {} scans never acknowledged within {CONVERGE:?}; last outcome: {last}",
                unacked.len()
            );
        } else if unacked.len() < BACKLOG && tasks.iter().all(|t| s.store.doc(t).is_some()) {
            // Until the first sync has brought the task documents there is nothing to
            // record into.
            for _ in 0..batch {
                let task = &tasks[usize::try_from(n)? % tasks.len()];
                let scan = s.pack_scan(GTIN, &format!("F{i}N{n}"), "LF", "300101");
                s.store.record_scan(task, &scan)?;
                unacked.push((task.clone(), scan.id));
                n += 1;
            }
        }
        let (phase, result) = {
            let _turn = shared.gate.read().unwrap_or_else(PoisonError::into_inner);
            let before = shared.phase.load(Ordering::SeqCst);
            let result = s.sync();
            let after = shared.phase.load(Ordering::SeqCst);
            let phase = if before == after {
                Phase::from_u8(before)
            } else {
                Phase::Changing
            };
            (phase, result)
        };
        let mut all_in_sync = false;
        let outcome = match &result {
            Ok(r) => {
                anyhow::ensure!(
                    r.refused.is_empty(),
                    "scanner {i}: the server refused {:?}",
                    r.refused
                );
                let mut acked = shared.acked.lock().unwrap_or_else(PoisonError::into_inner);
                let before = unacked.len();
                unacked.retain(|(task, id)| {
                    let done = r.in_sync.contains(task);
                    if done {
                        acked.push((task.clone(), id.clone()));
                    }
                    !done
                });
                shared
                    .acked_count
                    .fetch_add(u64::try_from(before - unacked.len())?, Ordering::SeqCst);
                all_in_sync = r.failed.is_empty() && tasks.iter().all(|t| r.in_sync.contains(t));
                if all_in_sync {
                    "in sync".to_owned()
                } else if let Some(why) = r.failed.values().next() {
                    // "code: message": the code is enough to tell outcomes apart.
                    let code = why.split(':').next().unwrap_or(why);
                    format!("HTTP 200, a document failed: {code}")
                } else {
                    // The run's rounds ran out before the document was in sync.
                    format!("HTTP 200, not in sync after {} round trips", r.round_trips)
                }
            }
            Err(e) => classify(e),
        };
        *shared
            .outcomes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((phase, outcome.clone()))
            .or_default() += 1;
        if !all_in_sync {
            shared.unsuccessful.fetch_add(1, Ordering::SeqCst);
        }
        match result {
            Ok(_) if all_in_sync => {
                if shared.stop.load(Ordering::SeqCst) && unacked.is_empty() {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(SyncError::Unauthorized(_)) => {
                // The access token ran out (a long run): sign in again, as the app does.
                if let Ok(tokens) = s.client.login("picker", password, device) {
                    s.tokens = tokens;
                }
            }
            Err(SyncError::Store(e)) => anyhow::bail!("scanner {i}: local store: {e}"),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
        last = outcome;
    }
}
