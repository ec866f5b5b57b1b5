//! `swt-bench trace`: loads (or reuses) a database of about ten million EPCIS events and
//! measures the trace queries through the real server. See `swt_bench::trace`.

use std::process::ExitCode;

use clap::Args;
use swt_bench::trace::run::{self, Options, Report};
use swt_bench::trace::warehouse::Shape;

use super::runtime;

#[derive(Debug, Args)]
pub struct TraceArgs {
    /// The benchmark's own database: `sqlite://FILE` or `postgres://USER@HOST/DB` (made
    /// if missing). A database with data that the benchmark did not load is refused.
    #[arg(long, env = "SWT_BENCH_DATABASE_URL", value_name = "URL")]
    database_url: String,
    /// EPCIS events to load.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Cases per pallet.
    #[arg(long, default_value_t = 60)]
    cases: u32,
    /// Packs per case.
    #[arg(long, default_value_t = 100)]
    packs: u32,
    /// Seed of the generated data (the same seed gives the same rows).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Load again even if the database already holds this load.
    #[arg(long)]
    reseed: bool,
    /// Measured serial-history requests.
    #[arg(long, default_value_t = 5_000)]
    serial_lookups: usize,
    /// Measured container-explosion requests.
    #[arg(long, default_value_t = 1_000)]
    container_lookups: usize,
    /// Measured requests of each console page (0 skips the console).
    #[arg(long, default_value_t = 300)]
    console_lookups: usize,
    /// Unmeasured requests of each kind before measuring.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
}

pub fn run(a: TraceArgs) -> anyhow::Result<ExitCode> {
    // Warnings only: a log line per request would bury the progress lines.
    swt_server::telemetry::init(swt_server::config::LogFormat::Human, "warn")?;
    let opts = Options {
        database_url: a.database_url,
        shape: Shape {
            events: a.events,
            cases: a.cases,
            packs: a.packs,
            seed: a.seed,
        },
        reseed: a.reseed,
        serial_lookups: a.serial_lookups,
        container_lookups: a.container_lookups,
        warmup: a.warmup,
        console_lookups: a.console_lookups,
        progress: true,
    };
    let report = runtime()?.block_on(run::run(&opts))?;
    print_report(&report);
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &Report) {
    let s = &r.seed;
    println!(
        "{}: {} events, {} event identifiers, {} objects, {} pallets of {}, {:.1} GB; load {:.0} s (indexes {:.0} s){}",
        r.backend,
        s.events,
        s.event_identifiers,
        s.objects,
        s.pallets,
        s.pallet_shape,
        s.database_bytes as f64 / 1e9,
        s.load_seconds,
        s.index_seconds,
        if s.reused { ", reused" } else { "" }
    );
    println!(
        "{:<30} {:>7} {:>9} {:>9} {:>9} {:>9} {:>10}",
        "query (ms)", "n", "p50", "p95", "p99", "max", "bytes"
    );
    for (name, q) in [
        ("serial history", &r.serial_history),
        ("contents page", &r.container_contents),
        ("contents, all pages", &r.container_walk),
    ] {
        for (how, l) in [("http", &q.http), ("service", &q.service)] {
            println!(
                "{:<30} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}",
                format!("{name} ({how})"),
                l.n,
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                l.max_ms,
                if how == "http" {
                    q.mean_response_bytes.to_string()
                } else {
                    String::new()
                }
            );
        }
    }
    for p in &r.console {
        let l = &p.http;
        println!(
            "{:<30} {:>7} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>10}",
            format!("console {}", p.page),
            l.n,
            l.p50_ms,
            l.p95_ms,
            l.p99_ms,
            l.max_ms,
            p.mean_bytes
        );
    }
    println!(
        "{}",
        serde_json::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    );
}
