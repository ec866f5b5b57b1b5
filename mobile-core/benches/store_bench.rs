//! Device store benchmarks: durable append latency (fsync-bound), and opening a
//! 10,000-scan task from disk (time and peak heap, measured by a counting allocator).
//! Run: `cargo bench -p swt-core --bench store_bench`. Prints figures; asserts nothing.

// A benchmark: a failed set-up step ends the run, which is all it can do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use automerge::ActorId;
use swt_core::doc::{Header, TaskDocument, TaskKind, TaskStatus};
use swt_core::model::{Scan, ScanId};
use swt_core::store::{Durability, Store, StoreOptions};
use swt_domain::testing::{self, Rng};

#[path = "support/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

fn realistic_scan(rng: &mut Rng, n: u64) -> Scan {
    let id = ScanId::from_device_counter("7f3a91c2", n).unwrap();
    testing::realistic_scan(rng, id, n, 1_764_000_000_000)
}

fn actor() -> ActorId {
    ActorId::from(b"dev-7f3a-install-1".as_slice())
}

fn new_doc() -> TaskDocument {
    let header = Header {
        kind: TaskKind::Receiving,
        site: "site-1".into(),
        refs: Default::default(),
        status: TaskStatus::Open,
    };
    let mut server = TaskDocument::create(ActorId::from(b"server".as_slice()), &header, 0).unwrap();
    TaskDocument::load(&server.save(), actor()).unwrap()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p) as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng::new(0x9e3779b97f4a7c15);

    // (b) durable appends: one fsync per scan.
    let mut store = Store::open(dir.path().join("b"), actor(), StoreOptions::default()).unwrap();
    store.insert_doc("t", new_doc()).unwrap();
    let mut lat = Vec::new();
    for n in 0..2000 {
        let s = realistic_scan(&mut rng, n);
        let t = Instant::now();
        store.record_scan("t", &s).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "durable append (fsync each, {} scans): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    );
    drop(store);

    // (d) a 10,000-scan task on disk, in two shapes: all in the snapshot, and the worst
    // case just before compaction (snapshot + 1,999 single-scan frames in the log).
    for (name, in_log) in [("snapshot only", 0u64), ("snapshot + 1999-frame log", 1999)] {
        let root = dir.path().join(format!("d{in_log}"));
        let mut store = Store::open(&root, actor(), StoreOptions::default()).unwrap();
        store.insert_doc("t", new_doc()).unwrap();
        store.set_durability(Durability::Batched).unwrap();
        let scans: Vec<Scan> = (0..10_000).map(|n| realistic_scan(&mut rng, n)).collect();
        let (bulk, single) = scans.split_at((10_000 - in_log) as usize);
        for s in bulk {
            store.record_scan("t", s).unwrap();
        }
        store.compact("t").unwrap();
        for s in single {
            store.record_scan("t", s).unwrap();
        }
        store.flush().unwrap();
        drop(store);
        let snap = std::fs::metadata(root.join("docs/t/snapshot"))
            .unwrap()
            .len();
        let log = std::fs::metadata(root.join("docs/t/log")).unwrap().len();

        let mut times = Vec::new();
        let mut peak = 0;
        for _ in 0..5 {
            let base = alloc::reset_peak();
            let t = Instant::now();
            let store = Store::open(&root, actor(), StoreOptions::default()).unwrap();
            times.push(t.elapsed().as_secs_f64() * 1e3);
            peak = alloc::peak() - base;
            assert_eq!(store.doc("t").unwrap().scan_count(), 10_000);
        }
        times.sort_by(f64::total_cmp);
        println!(
            "open 10k-scan task ({name}; snapshot {snap} B, log {log} B): median {:.1} ms, min {:.1} ms, peak heap {:.1} MB (goals <= 30 ms, <= 30 MB)",
            pct(&times, 0.5),
            times[0],
            peak as f64 / 1e6
        );
    }
}
