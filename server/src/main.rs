//! `swt`: the Smart Warehouse Traceability server and command-line tool.
//! Commands only wire arguments to library calls; errors end as one line on stderr.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            // One line naming the problem and the setting to fix; no backtrace.
            eprintln!("swt: error: {}", format!("{err:#}").replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}
