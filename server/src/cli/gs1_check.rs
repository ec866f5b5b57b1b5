//! `swt gs1 check`: validate GS1 codes from arguments or standard input.
//!
//! Only wiring: parsing and validation are `swt_domain::gs1`. Standard input is streamed one
//! line at a time through a locked buffered writer, so a million lines run in constant
//! memory.

use std::borrow::Cow;
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;

use serde::Serialize;
use swt_domain::gs1::{self, Gs1Data, Gs1Error, ParseOptions};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// Readable text.
    Human,
}

/// Arguments of `swt gs1 check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Codes to check; with none, one code per line is read from standard input
    /// (bytes as scanned, GS as byte 0x1D; a trailing CR is dropped with the line end).
    pub codes: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,

    /// A character the scanner sends instead of the GS separator, e.g. `~`, or a byte as
    /// `0xNN`. Off by default (standard verdicts).
    #[arg(long, value_name = "CHAR", value_parser = parse_separator)]
    pub separator: Option<u8>,

    /// Accept a GS (FNC1) at the very start of an element string.
    #[arg(long)]
    pub allow_leading_fnc1: bool,

    /// Read bare 8/12/13/14/18-digit numbers with a valid check digit as GTINs/SSCCs
    /// keyed in by hand before trying them as AI data. Off by default, as in GS1's engine,
    /// which reads such digits as an element string.
    #[arg(long)]
    pub keyed_in: bool,

    /// Accepted for old scripts and ignored: keyed-in reading is off unless `--keyed-in`.
    #[arg(long, hide = true)]
    pub no_keyed_in: bool,

    /// Skip the requisite-AI check (e.g. (21) needs (01)).
    #[arg(long)]
    pub no_requisites: bool,
}

fn parse_separator(s: &str) -> Result<u8, String> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u8::from_str_radix(hex, 16).map_err(|e| format!("bad byte {s}: {e}"));
    }
    match s.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(format!(
            "the separator must be one ASCII character or 0xNN, not {s:?}"
        )),
    }
}

#[derive(Serialize)]
struct AiOut<'a> {
    ai: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct ErrorOut<'a> {
    code: &'a str,
    ai: Option<&'a str>,
    /// Put together for this line only (the parse keeps just the facts).
    message: Cow<'static, str>,
}

#[derive(Serialize)]
struct WarningOut<'a> {
    code: &'a str,
    ai: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct LineOut<'a> {
    input: &'a str,
    valid: bool,
    ais: Vec<AiOut<'a>>,
    error: Option<ErrorOut<'a>>,
    warnings: Vec<WarningOut<'a>>,
}

/// Readable form of input bytes: GS as `<GS>`, other control bytes as `<0xNN>`.
fn printable(input: &str) -> String {
    let mut s = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '\u{1d}' => s.push_str("<GS>"),
            c if c.is_control() => s.push_str(&format!("<0x{:02X}>", c as u32)),
            c => s.push(c),
        }
    }
    s
}

fn write_result(
    out: &mut impl Write,
    format: Format,
    input: &str,
    result: &Result<Gs1Data, Gs1Error>,
) -> io::Result<()> {
    match format {
        Format::Json => {
            let line = match result {
                Ok(d) => LineOut {
                    input,
                    valid: true,
                    ais: d
                        .iter()
                        .map(|x| AiOut {
                            ai: x.ai,
                            value: x.value,
                        })
                        .collect(),
                    error: None,
                    warnings: d
                        .warnings()
                        .iter()
                        .map(|w| WarningOut {
                            code: w.code(),
                            ai: w.ai(),
                            message: w.message(),
                        })
                        .collect(),
                },
                Err(e) => LineOut {
                    input,
                    valid: false,
                    ais: Vec::new(),
                    error: Some(ErrorOut {
                        code: e.code(),
                        ai: e.ai(),
                        message: e.message(),
                    }),
                    warnings: Vec::new(),
                },
            };
            serde_json::to_writer(&mut *out, &line).map_err(json_to_io)?;
            out.write_all(b"\n")
        }
        Format::Human => match result {
            Ok(d) => {
                writeln!(out, "valid    {}", printable(input))?;
                for x in d.iter() {
                    writeln!(out, "         ({}) {:<22} {}", x.ai, x.title, x.value)?;
                }
                for w in d.warnings() {
                    writeln!(out, "  warning [{}] {}", w.code(), w.message())?;
                }
                Ok(())
            }
            Err(e) => {
                writeln!(out, "INVALID  {}", printable(input))?;
                let at = e
                    .position()
                    .map(|p| format!(" at byte {p}"))
                    .unwrap_or_default();
                writeln!(out, "         [{}{at}] {e}", e.code())
            }
        },
    }
}

/// A JSON write error as the I/O error it wraps, when it wraps one: a closed pipe must
/// stay `BrokenPipe` to end the run quietly.
fn json_to_io(e: serde_json::Error) -> io::Error {
    match e.io_error_kind() {
        Some(kind) => io::Error::from(kind),
        None => io::Error::other(e),
    }
}

/// Checks one code, writes its line, returns whether it was valid.
fn check_one(
    out: &mut impl Write,
    format: Format,
    opts: &ParseOptions,
    bytes: &[u8],
) -> io::Result<bool> {
    let result = gs1::parse(bytes, opts);
    let input = String::from_utf8_lossy(bytes);
    write_result(out, format, &input, &result)?;
    Ok(result.is_ok())
}

fn run_inner(args: &CheckArgs) -> io::Result<bool> {
    let opts = ParseOptions {
        separator_substitute: args.separator,
        allow_leading_fnc1: args.allow_leading_fnc1,
        keyed_in_keys: args.keyed_in && !args.no_keyed_in,
        check_requisites: !args.no_requisites,
        ..ParseOptions::default()
    };
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let mut all_valid = true;
    if args.codes.is_empty() {
        let stdin = io::stdin();
        let mut reader = stdin.lock();
        let mut line = Vec::with_capacity(256);
        loop {
            line.clear();
            if reader.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            all_valid &= check_one(&mut out, args.format, &opts, &line)?;
        }
    } else {
        for code in &args.codes {
            all_valid &= check_one(&mut out, args.format, &opts, code.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(all_valid)
}

/// Runs the check and returns the process exit code: 0 when every input is valid, 1 when
/// any is not (usage errors exit 2 through clap). When the reader of standard output
/// goes away (`swt gs1 check < codes | head`), the run stops quietly with 0, as `cat`
/// and `grep` do under a shell: nobody is left to read a verdict, and a "Broken pipe"
/// error would only be noise. Rust ignores SIGPIPE, so this is handled on the write.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    match run_inner(&args) {
        Ok(true) => Ok(ExitCode::SUCCESS),
        Ok(false) => Ok(ExitCode::from(1)),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e.into()),
    }
}
