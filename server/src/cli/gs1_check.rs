//! `swt gs1 check`: validate GS1 codes from arguments or standard input.
//! (Being written: see issue 3.)

/// Arguments of `swt gs1 check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Codes to check; with none, one code per line is read from standard input.
    pub codes: Vec<String>,
}

/// Runs the check and returns the process exit code.
pub fn run(_args: CheckArgs) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("swt gs1 check is not built yet")
}
