//! The scanner's hot path, end to end through `Session::record_scan_at`: GS1 parse, scan
//! rules, scan record, store append (and the batched hand-over to Automerge).
//! Run: `cargo bench -p swt-core --bench record_scan`. Prints figures; asserts nothing.
//! Goals: >= 50,000 scans/s on one core into a task already holding 10,000 scans;
//! open a 10,000-scan task in <= 30 ms and <= 30 MB peak heap.

// A benchmark: a failed set-up step ends the run, which is all it can do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Instant;

use automerge::ActorId;
use swt_core::doc::{Expected, ExpectedLine, Header, TaskDocument, TaskKind, TaskStatus};
use swt_core::model::{ExpiryPolicy, Product, ReferenceData};
use swt_core::session::{Identity, Session, SessionOptions};
use swt_core::store::{Durability, StoreOptions};
use swt_domain::testing::{self, GTINS, Rng};

#[path = "support/alloc.rs"]
mod alloc;
#[path = "support/cpu.rs"]
mod cpu;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// 2026-11-24 12:00 UTC.
const NOW: u64 = 1_795_521_600_000;

/// A realistic DataMatrix read of a pack the task expects.
fn raw(rng: &mut Rng) -> Vec<u8> {
    let gtin = *rng.pick(&GTINS);
    testing::pack_barcode(rng, gtin).into_bytes()
}

fn task_bytes() -> Vec<u8> {
    let header = Header {
        kind: TaskKind::Receiving,
        site: "site-1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let mut doc = TaskDocument::create(ActorId::from(b"server".as_slice()), &header, 0).unwrap();
    let lines = GTINS
        .iter()
        .map(|g| ExpectedLine {
            gtin: g.parse().unwrap(),
            quantity: 1_000_000,
            lot: None,
        })
        .collect();
    doc.set_expected(
        &Expected {
            lines,
            units: vec![],
        },
        0,
    )
    .unwrap();
    doc.save()
}

fn session(dir: &Path, durability: Durability) -> Session {
    session_with(dir, durability, StoreOptions::default().apply_after_scans)
}

fn session_with(dir: &Path, durability: Durability, apply_after_scans: usize) -> Session {
    let opts = SessionOptions {
        store: StoreOptions {
            durability,
            apply_after_scans,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut s = Session::open(dir, opts).unwrap();
    s.set_identity(Identity {
        user: "u-0042".into(),
        device: "dev-7f3a".into(),
        ..Default::default()
    })
    .unwrap();
    let mut r = ReferenceData {
        site: "site-1".into(),
        version: 1,
        expiry_policy: ExpiryPolicy {
            min_remaining_days: 90,
            reject_expired: true,
        },
        ..Default::default()
    };
    for g in GTINS {
        r.products.insert(
            g.into(),
            Product {
                gtin: g.parse().unwrap(),
                name: "x".into(),
                serialized: true,
                ndc: None,
                pack_size: None,
            },
        );
    }
    s.put_reference(r).unwrap();
    if s.task_ids().is_empty() {
        s.add_task_bytes("t", &task_bytes()).unwrap();
    }
    s
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn dir_bytes(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn main() {
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let run = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);

    if run("throughput") {
        // Batched durability (flush at the end): the in-memory cost of the full path.
        let dir = tmp.path().join("a");
        let mut s = session(&dir, Durability::Batched);
        for i in 0..10_000 {
            s.record_scan_at("t", &raw(&mut rng), NOW + i).unwrap();
        }
        s.store_mut().apply_pending("t").unwrap();
        s.flush().unwrap();
        let n = 20_000u64;
        let raws: Vec<Vec<u8>> = (0..n).map(|_| raw(&mut rng)).collect();
        let t = Instant::now();
        let (ok, cpu_secs) = cpu::timed(|| {
            let mut ok = 0;
            for (i, r) in raws.iter().enumerate() {
                let f = s.record_scan_at("t", r, NOW + 10_000 + i as u64).unwrap();
                ok += usize::from(f.reason == swt_core::rules::Reason::Ok);
            }
            // Inside the measured work: every measured scan ends up in the Automerge
            // document (the last, partial batch too) and on disk.
            s.store_mut().apply_pending("t").unwrap();
            s.flush().unwrap();
            ok
        });
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(s.store().doc("t").unwrap().scan_count(), 30_000);
        drop(s);
        // The same with Automerge deferred (applied before sync / on open): the scan's own
        // path, then the deferred Automerge cost measured separately.
        let dir = tmp.path().join("a2");
        let mut s = session_with(&dir, Durability::Batched, usize::MAX);
        for i in 0..10_000 {
            s.record_scan_at("t", &raw(&mut rng), NOW + i).unwrap();
        }
        s.store_mut().apply_pending("t").unwrap();
        s.flush().unwrap();
        let raws: Vec<Vec<u8>> = (0..n).map(|_| raw(&mut rng)).collect();
        let t2 = Instant::now();
        let ((), hot_cpu) = cpu::timed(|| {
            for (i, r) in raws.iter().enumerate() {
                s.record_scan_at("t", r, NOW + 10_000 + i as u64).unwrap();
            }
            s.flush().unwrap();
        });
        let hot = t2.elapsed().as_secs_f64();
        let t3 = Instant::now();
        let ((), am_cpu) = cpu::timed(|| s.store_mut().apply_pending("t").unwrap());
        let am = t3.elapsed().as_secs_f64();
        // On a shared machine the wall clock includes waiting for a core; the on-CPU
        // figure is the work itself.
        let per_cpu =
            |c: Option<f64>| c.map_or("?".into(), |c| format!("{:.2}", c * 1e6 / n as f64));
        println!(
            "record_scan hot path (parse + rules + durable-unit append, Automerge deferred): {:.0} scans/s ({:.2} us/scan wall, {} us on CPU); deferred Automerge apply of {n} in one change: {:.0} ms ({:.2} us/scan wall, {} us on CPU)",
            n as f64 / hot,
            hot * 1e6 / n as f64,
            per_cpu(hot_cpu),
            am * 1e3,
            am * 1e6 / n as f64,
            per_cpu(am_cpu)
        );
        println!(
            "record_scan (parse + rules + append + Automerge, batched durability, Automerge batches of {} and the last partial batch included), task 10k -> {}k scans: {:.0} scans/s ({:.2} us/scan wall, {} us on CPU = {} scans/s; {ok} ok) (goal >= 50,000/s)",
            StoreOptions::default().apply_after_scans,
            (10_000 + n) / 1000,
            n as f64 / secs,
            secs * 1e6 / n as f64,
            per_cpu(cpu_secs),
            cpu_secs.map_or("?".into(), |c| format!("{:.0}", n as f64 / c)),
        );
        drop(s);
    }

    if run("durable") {
        let dir = tmp.path().join("b");
        let mut s = session(&dir, Durability::EachAppend);
        for i in 0..10_000 {
            if i == 0 {
                s.set_durability(Durability::Batched).unwrap();
            }
            s.record_scan_at("t", &raw(&mut rng), NOW + i).unwrap();
        }
        s.set_durability(Durability::EachAppend).unwrap();
        let mut lat = Vec::new();
        for i in 0..2000 {
            let r = raw(&mut rng);
            let t = Instant::now();
            s.record_scan_at("t", &r, NOW + 20_000 + i).unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(f64::total_cmp);
        println!(
            "durable record_scan (fdatasync each, task of 10k+ scans, 2000 scans): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    }

    if run("open") {
        let dir = tmp.path().join("d");
        {
            let mut s = session(&dir, Durability::Batched);
            for i in 0..10_000 {
                s.record_scan_at("t", &raw(&mut rng), NOW + i).unwrap();
            }
            s.flush().unwrap();
            s.store_mut().compact("t").unwrap();
        }
        let snap = std::fs::metadata(dir.join("docs/t/snapshot"))
            .unwrap()
            .len();
        println!(
            "saved: {:.1} B/scan in the snapshot ({snap} B for 10,000 scans); task dir {} B",
            snap as f64 / 10_000.0,
            dir_bytes(&dir.join("docs/t"))
        );
        // Pending-log cost per scan before it is folded into Automerge.
        {
            let mut s = session(&dir, Durability::Batched);
            s.set_durability(Durability::Batched).unwrap();
            let before = std::fs::metadata(dir.join("docs/t/pending")).unwrap().len();
            for i in 0..100 {
                s.record_scan_at("t", &raw(&mut rng), NOW + 50_000 + i)
                    .unwrap();
            }
            s.flush().unwrap();
            let after = std::fs::metadata(dir.join("docs/t/pending")).unwrap().len();
            println!(
                "pending log: {:.1} B/scan until applied",
                (after - before) as f64 / 100.0
            );
            s.store_mut().compact("t").unwrap();
        }
        let mut times = Vec::new();
        let mut opens = Vec::new();
        let (mut cpu_total, mut cpu_open) = (Vec::new(), Vec::new());
        let mut peak = 0;
        for _ in 0..7 {
            let base = alloc::reset_peak();
            let c0 = cpu::thread_ns();
            let t = Instant::now();
            let mut s = Session::open(&dir, SessionOptions::default()).unwrap();
            opens.push(t.elapsed().as_secs_f64() * 1e3);
            let c1 = cpu::thread_ns();
            // Ready to scan: the rules' indexes are built too.
            let p = s.progress("t").unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            let c2 = cpu::thread_ns();
            if let (Some(c0), Some(c1), Some(c2)) = (c0, c1, c2) {
                cpu_open.push((c1 - c0) as f64 / 1e6);
                cpu_total.push((c2 - c0) as f64 / 1e6);
            }
            peak = alloc::peak() - base;
            assert_eq!(p.scans_total, 10_100);
        }
        times.sort_by(f64::total_cmp);
        opens.sort_by(f64::total_cmp);
        cpu_total.sort_by(f64::total_cmp);
        cpu_open.sort_by(f64::total_cmp);
        // The first scan after an open pays one-off work: reading the document's scan
        // ids for the duplicate check and reserving an id block (one fsync).
        let mut s = Session::open(&dir, SessionOptions::default()).unwrap();
        s.progress("t").unwrap();
        let r = raw(&mut rng);
        let t = Instant::now();
        s.record_scan_at("t", &r, NOW + 90_000).unwrap();
        let first = t.elapsed().as_secs_f64() * 1e3;
        let r = raw(&mut rng);
        let t = Instant::now();
        s.record_scan_at("t", &r, NOW + 90_001).unwrap();
        let second = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "first scan after open (id set + id block, fsync'd): {first:.2} ms; second: {second:.2} ms"
        );
        drop(s);
        println!(
            "open 10.1k-scan task, ready to scan (session + store + rules index): median {:.1} ms (of which session + store open {:.1} ms), min {:.1} ms, peak heap {:.1} MB (goals <= 30 ms, <= 30 MB)",
            pct(&times, 0.5),
            pct(&opens, 0.5),
            times[0],
            peak as f64 / 1e6
        );
        if !cpu_total.is_empty() {
            println!(
                "  on CPU: median {:.1} ms (session + store open {:.1} ms, rules index {:.1} ms), min {:.1} ms",
                pct(&cpu_total, 0.5),
                pct(&cpu_open, 0.5),
                pct(&cpu_total, 0.5) - pct(&cpu_open, 0.5),
                cpu_total[0]
            );
        }
    }
}
