//! `swt-bench orders`: the CSV drop of ERP orders (issue #24's target: 10,000 order lines
//! imported in at most 2 s). Makes a fresh database with the demo operator, writes an
//! order file of N lines (GTINs from the demo product master, a lot each), and times
//! `swt import orders`' own path (read, check, apply) three times: every order new,
//! the same file again (every order unchanged), and every quantity changed (every open
//! task's expected lines rewritten). Ends with one JSON summary line.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use swt_server::orders::{self, file};
use swt_server::{app, config::Config, demo};

use super::runtime;

#[derive(Debug, Args)]
pub struct OrdersArgs {
    /// The benchmark's own database, which must hold no orders yet: `sqlite://FILE` or
    /// `postgres://USER@HOST/DB` [default: a fresh SQLite file in a temporary directory].
    #[arg(long, env = "SWT_BENCH_DATABASE_URL", value_name = "URL")]
    database_url: Option<String>,
    /// Order lines in the file.
    #[arg(long, default_value_t = 10_000)]
    lines: usize,
    /// Lines per order (a sales order of a pharmacy wholesaler has tens).
    #[arg(long, default_value_t = 20)]
    lines_per_order: usize,
}

/// The order file: `lines` lines in orders of `per_order`, quantities plus `bump`.
fn order_file(lines: usize, per_order: usize, bump: u64) -> String {
    let gtins: Vec<&str> = demo::product_gtins().collect();
    let mut text = String::from("kind,order_ref,site_gln,partner_gln,gtin,quantity,lot\n");
    for i in 0..lines {
        let gtin = gtins.get(i % gtins.len()).copied().unwrap_or_default();
        let _ = writeln!(
            text,
            "picking,SO-{},0614141000012,{},{gtin},{},L{}",
            i / per_order.max(1),
            demo::PARTNER_GLN,
            1 + (i as u64 % 7) + bump,
            i % per_order.max(1)
        );
    }
    text
}

pub fn run(a: OrdersArgs) -> anyhow::Result<ExitCode> {
    swt_server::telemetry::init(swt_server::config::LogFormat::Human, "warn")?;
    runtime()?.block_on(async move {
        // A fresh file per run (removed at the end), so every run starts empty.
        let dir = std::env::temp_dir().join(format!("swt-bench-orders-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let url = a.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}/orders.db?mode=rwc", dir.display())
        });
        let config = Config {
            database_url: url.clone(),
            ..Config::default()
        };
        let db = app::open_database(&config).await?;
        demo::seed(&db).await?;
        let caller = swt_server::auth::integration::principal("bench", demo::ORG_ID);
        let docs = swt_server::tasks::documents::DocumentCache::new(0);
        let actor = automerge::ActorId::random();
        let apply = orders::Apply {
            db: &db,
            docs: &docs,
            actor: &actor,
        };
        let mut rounds = Vec::new();
        for (name, bump) in [("new", 0), ("unchanged", 0), ("updated", 10)] {
            let text = order_file(a.lines, a.lines_per_order, bump);
            let started = Instant::now();
            let (found, loose, lines) = file::read(text.as_bytes())?;
            let report = file::import(&apply, &caller, &found, loose, lines, true, |_| {}).await?;
            let secs = started.elapsed().as_secs_f64();
            anyhow::ensure!(report.bad == 0, "the generated file has bad lines: {report:?}");
            println!(
                "{name:<9} {} lines, {} orders ({} created, {} updated, {} unchanged) in {secs:.2} s ({:.0} lines/s)",
                report.lines,
                report.orders,
                report.created,
                report.updated,
                report.unchanged,
                report.lines as f64 / secs.max(1e-9)
            );
            rounds.push(serde_json::json!({"round": name, "lines": report.lines,
                "orders": report.orders, "seconds": secs}));
        }
        let backend = if url.starts_with("postgres") { "postgresql" } else { "sqlite" };
        println!(
            "{}",
            serde_json::json!({"bench": "orders", "backend": backend, "rounds": rounds})
        );
        db.close().await?;
        std::fs::remove_dir_all(&dir)?;
        Ok(ExitCode::SUCCESS)
    })
}
