//! Sub-commands of `swt-bench`.

mod orders;
mod simulate;
mod trace;
mod webhooks;

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

/// swt-bench — load and benchmark tools for swt (Smart Warehouse Traceability). Not part
/// of the product: run them against a test server or a database of their own.
#[derive(Debug, Parser)]
#[command(name = "swt-bench", version, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a fleet of simulated scanners against a running server and report
    /// throughput and sync latency (ends with one JSON summary line).
    Simulate(simulate::SimulateArgs),
    /// Serial history and container explosion latency at scale (issue #5's target: p99 ≤
    /// 10 ms each with 10 million events stored). Loads the database first unless it
    /// already holds this load; prints p50/p95/p99/max, then one JSON summary line.
    Trace(trace::TraceArgs),
    /// The CSV drop of ERP orders: 10,000 order lines by default, imported new, again
    /// unchanged, and changed (issue #24's target: ≤ 2 s); one JSON summary line.
    Orders(orders::OrdersArgs),
    /// Outcome delivery to a local webhook receiver at a steady rate (issue #24's target:
    /// ≥ 5,000 outcomes/s, lag p99 ≤ 1 s); one JSON summary line.
    Webhooks(webhooks::WebhooksArgs),
}

/// Runs the chosen command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Orders(args) => orders::run(args),
        Command::Webhooks(args) => webhooks::run(args),
    }
}

/// A multi-threaded runtime, as the server's own commands use.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
