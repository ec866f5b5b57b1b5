//! Task-document benchmarks: in-memory append rate at 10k scans, saved size per scan,
//! scan-id formats compared. Run: `cargo bench -p swt-domain --bench doc_bench`.
//! Prints figures; asserts nothing (timings vary by machine).

// A benchmark: a failed set-up step ends the run, which is all it can do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use automerge::ActorId;
use swt_domain::doc::{Header, TaskDocument, TaskKind, TaskStatus};
use swt_domain::model::{Scan, ScanId};
use swt_domain::testing::{Rng, realistic_scan};

fn header() -> Header {
    Header {
        kind: TaskKind::Receiving,
        site: "site-1".into(),
        refs: [("asn".to_string(), "ASN-1".to_string())].into(),
        status: TaskStatus::Open,
    }
}

fn device_doc() -> TaskDocument {
    let mut server =
        TaskDocument::create(ActorId::from(b"server".as_slice()), &header(), 0).unwrap();
    let bytes = server.save();
    TaskDocument::load(&bytes, ActorId::from(b"dev-7f3a-install-1".as_slice())).unwrap()
}

fn make_id(kind: &str, n: u64) -> ScanId {
    match kind {
        "v7" => ScanId::new_v7(),
        _ => ScanId::from_device_counter("7f3a91c2", n).unwrap(),
    }
}

/// Baseline: the same puts on a bare AutoCommit (no duplicate check, no record encoding),
/// to show what the typed layer costs on top of Automerge itself.
fn baseline(scans: &[Scan]) {
    use automerge::transaction::{CommitOptions, Transactable};
    let mut doc = automerge::AutoCommit::new();
    let m = doc
        .put_object(automerge::ROOT, "scans", automerge::ObjType::Map)
        .unwrap();
    let recs: Vec<(String, Vec<u8>)> = scans
        .iter()
        .map(|s| (s.id.to_string(), s.encode_record().unwrap()))
        .collect();
    let (first, rest) = recs.split_at(10_000);
    for (k, v) in first {
        doc.put(&m, k.as_str(), automerge::ScalarValue::Bytes(v.clone()))
            .unwrap();
        doc.commit_with(CommitOptions::default().with_time(1));
    }
    let start = Instant::now();
    for (k, v) in rest {
        doc.put(&m, k.as_str(), automerge::ScalarValue::Bytes(v.clone()))
            .unwrap();
        doc.commit_with(CommitOptions::default().with_time(1));
    }
    let el = start.elapsed();
    println!(
        "baseline bare automerge put+commit after 10k: {:>7.0} scans/s",
        rest.len() as f64 / el.as_secs_f64()
    );
    let start = Instant::now();
    for s in scans {
        std::hint::black_box(s.encode_record().unwrap());
    }
    println!(
        "record encode alone: {:.2} us/scan",
        start.elapsed().as_secs_f64() * 1e6 / scans.len() as f64
    );
}

fn main() {
    let t0 = 1_764_000_000_000u64;
    {
        let mut rng = Rng::new(7);
        let scans: Vec<Scan> = (0..30_000)
            .map(|n| realistic_scan(&mut rng, make_id("counter", n), n, t0))
            .collect();
        baseline(&scans);
    }
    for kind in ["counter", "v7"] {
        let mut rng = Rng::new(0x9e3779b97f4a7c15);
        let mut doc = device_doc();
        let scans: Vec<Scan> = (0..10_000)
            .map(|n| realistic_scan(&mut rng, make_id(kind, n), n, t0))
            .collect();
        let rec: usize = scans.iter().map(|s| s.encode_record().unwrap().len()).sum();
        let start = Instant::now();
        for s in &scans {
            doc.add_scan(s).unwrap();
        }
        let fill = start.elapsed();
        let empty = device_doc().save().len();
        let saved = doc.save();
        println!(
            "ids={kind:8} 10k scans: fill {:>7.0} scans/s | record {:.1} B/scan raw | saved {} B = {:.1} B/scan (goal <= 60)",
            10_000.0 / fill.as_secs_f64(),
            rec as f64 / 10_000.0,
            saved.len(),
            (saved.len() - empty) as f64 / 10_000.0
        );
        // (a) appending to a task that already holds 10k scans, one change per scan.
        let more: Vec<Scan> = (10_000..30_000)
            .map(|n| realistic_scan(&mut rng, make_id(kind, n), n, t0))
            .collect();
        let start = Instant::now();
        for s in &more {
            doc.add_scan(s).unwrap();
        }
        let el = start.elapsed();
        println!(
            "ids={kind:8} append 20k more to a 10k-scan task: {:>7.0} scans/s ({:.2} us/scan; goal >= 80,000/s)",
            more.len() as f64 / el.as_secs_f64(),
            el.as_secs_f64() * 1e6 / more.len() as f64
        );
        // Bulk import: one change per batch.
        for batch in [10usize, 100] {
            let extra: Vec<Scan> = (0..20_000u64)
                .map(|n| {
                    realistic_scan(&mut rng, make_id(kind, 1_000_000 * batch as u64 + n), n, t0)
                })
                .collect();
            let start = Instant::now();
            for chunk in extra.chunks(batch) {
                doc.add_scans(chunk).unwrap();
            }
            let el = start.elapsed();
            println!(
                "ids={kind:8} append 20k in changes of {batch:>3} scans: {:>7.0} scans/s",
                extra.len() as f64 / el.as_secs_f64()
            );
        }
    }
}
