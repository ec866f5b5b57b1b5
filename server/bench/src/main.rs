//! `swt-bench`: load and benchmark tools for swt (not part of the product binary `swt`).
//! Commands only wire arguments to library calls; errors end as one line on stderr.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!(
                "swt-bench: error: {}",
                format!("{err:#}").replace('\n', " ")
            );
            ExitCode::FAILURE
        }
    }
}
