//! `swt`: the Smart Warehouse Traceability server and command-line tool.

mod cli;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "swt", version, about = "Smart Warehouse Traceability")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// GS1 barcode tools.
    #[command(subcommand)]
    Gs1(Gs1Command),
}

#[derive(Debug, Subcommand)]
enum Gs1Command {
    /// Check GS1 codes (element strings, bracketed, Digital Link URIs, plain GTINs/SSCCs).
    Check(cli::gs1_check::CheckArgs),
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Gs1(Gs1Command::Check(args)) => cli::gs1_check::run(args),
    }
}
