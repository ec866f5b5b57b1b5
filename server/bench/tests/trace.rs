//! `swt-bench trace` on a small load (10,000 events, pallets of 4 × 10), so the benchmark
//! path cannot rot: load, answers checked against the generator, percentiles, and the
//! second run reusing the first load. The 10-million-event run is by hand (docs/benchmarks.md).

use swt_bench::trace::run::{Options, run};
use swt_bench::trace::warehouse::Shape;
use swt_tests::TestDb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_bench_loads_measures_and_reuses() -> anyhow::Result<()> {
    let tdb = TestDb::new().await?;
    let opts = Options {
        database_url: tdb.url().to_owned(),
        shape: Shape {
            events: 10_000,
            cases: 4,
            packs: 10,
            seed: 3,
        },
        reseed: false,
        serial_lookups: 60,
        container_lookups: 20,
        warmup: 5,
        console_lookups: 10,
        progress: false,
    };
    let first = run(&opts).await?;
    assert!(!first.seed.reused);
    assert!(first.seed.events >= 10_000, "{:?}", first.seed);
    assert!(first.seed.event_identifiers > first.seed.events);
    assert!(first.seed.database_bytes > 0);
    assert_eq!(first.serial_history.http.n, 60);
    // A 44-object pallet is one page: one request per lookup.
    assert_eq!(first.container_contents.http.n, 20);
    assert_eq!(first.container_walk.http.n, 20);
    assert_eq!(first.container_walk.service.n, 20);
    assert!(first.container_contents.http.p99_ms >= first.container_contents.http.p50_ms);
    assert!(first.serial_history.mean_response_bytes > 100);
    // Every console page answered (the phase fails on any other status) and was timed.
    assert!(first.console.len() >= 12, "{:?}", first.console);
    assert!(
        first.console.iter().all(|p| p.http.n == 10),
        "{:?}",
        first.console
    );
    // A page has a body; the search box answers with a redirect to the pack.
    assert!(
        first
            .console
            .iter()
            .all(|p| p.page.starts_with("/search") || p.mean_bytes > 1000),
        "{:?}",
        first.console
    );

    let again = run(&opts).await?;
    assert!(again.seed.reused, "the finished load is reused");
    assert_eq!(again.seed.events, first.seed.events);

    // Another shape on the same database is refused rather than mixed in.
    let other = Options {
        shape: Shape {
            seed: 4,
            ..opts.shape
        },
        ..opts.clone()
    };
    assert!(run(&other).await.is_err());
    tdb.close().await?;
    Ok(())
}
