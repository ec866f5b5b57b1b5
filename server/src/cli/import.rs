//! `swt import serials|epcis`: load manufacturer serials from a CSV file or an EPCIS
//! document. Only wiring and the progress bar: the work is in `swt_server::serials`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use swt_server::auth::service;
use swt_server::orders;
use swt_server::reference::products;
use swt_server::serials::epcis_import;
use swt_server::serials::import_csv::{self, CsvOptions};

use super::manufacturer::{OrgArgs, open};

/// `swt import`.
#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import manufacturer serials from CSV. The first line names the columns:
    /// `gtin,serial,lot,expiry` and optionally `status` (any order). GTIN: 8, 12, 13 or
    /// 14 digits with a valid check digit; serial and lot: GS1 AI 21 / 10 values;
    /// expiry: YYMMDD (day 00 = end of month) or YYYY-MM-DD; status: active,
    /// decommissioned, suspect or illegitimate (empty or absent: new serials are active,
    /// held ones keep theirs). A serial imported again is updated. Bad lines are listed
    /// with their line number and not imported; the exit status is then 1.
    Serials(SerialsArgs),
    /// Load products into the product master (upserts by GTIN; scanners get them at their
    /// next sync). The first line names the columns: `gtin,name` and optionally `ndc`,
    /// `serialized` (true/false, default true) and `pack_size`, in any order. Bad lines
    /// are listed with their line number and not loaded; the exit status is then 1.
    Products(ProductsArgs),
    /// Import ERP orders (receiving, picking, shipping) from CSV: one line per order line,
    /// grouped into orders by kind and order_ref; each order becomes one task, or changes
    /// the open task it made before. Columns (first line, any order): kind, order_ref,
    /// site_gln, partner_gln; gtin, quantity, lot for a quantity line; sscc, or gtin and
    /// serial, and parent_sscc for an expected unit; title, po, asn, order, shipment,
    /// invoice optional. An order with a bad line is not imported; bad lines are listed
    /// with their line number and the exit status is then 1. See docs/erp.md.
    Orders(OrdersArgs),
    /// Import an EPCIS 2.0 JSON(-LD) document: commissioning events (action ADD, lot and
    /// expiry in ILMD) add serials, decommissioning events mark them decommissioned,
    /// other events are skipped. All or nothing.
    Epcis(EpcisArgs),
}

#[derive(Debug, Args)]
pub struct SerialsArgs {
    #[command(flatten)]
    org: OrgArgs,
    /// The CSV file (`-` for standard input).
    file: PathBuf,
    /// Recorded as the rows' source [default: csv:<file name>].
    #[arg(long)]
    source: Option<String>,
    /// Import nothing if any line is bad (one transaction for the whole file).
    #[arg(long)]
    strict: bool,
    /// Commit after about this many rows (without --strict), so that a long import
    /// does not keep other writers of an SQLite database waiting.
    #[arg(long, default_value_t = 100_000, value_name = "ROWS")]
    commit_every: usize,
}

#[derive(Debug, Args)]
pub struct ProductsArgs {
    #[command(flatten)]
    org: OrgArgs,
    /// The CSV file (`-` for standard input).
    file: PathBuf,
    /// Load nothing if any line is bad.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Args)]
pub struct OrdersArgs {
    #[command(flatten)]
    org: OrgArgs,
    /// The CSV file (`-` for standard input).
    file: PathBuf,
    /// Import nothing if any line is bad.
    #[arg(long)]
    strict: bool,
}

#[derive(Debug, Args)]
pub struct EpcisArgs {
    #[command(flatten)]
    org: OrgArgs,
    /// The EPCIS document (JSON or JSON-LD).
    file: PathBuf,
}

/// Runs `swt import …`.
pub fn run(cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    super::serve::runtime()?.block_on(async move {
        match cmd {
            ImportCommand::Serials(a) => serials(a).await,
            ImportCommand::Products(a) => products(a).await,
            ImportCommand::Orders(a) => orders(a).await,
            ImportCommand::Epcis(a) => epcis(a).await,
        }
    })
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

async fn serials(a: SerialsArgs) -> anyhow::Result<ExitCode> {
    let conn = open(&a.org.common).await?;
    let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
    let stdin = a.file.as_os_str() == "-";
    let (reader, len): (Box<dyn std::io::Read + Send>, Option<u64>) = if stdin {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = std::fs::File::open(&a.file)
            .with_context(|| format!("cannot open {}", a.file.display()))?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let opts = CsvOptions {
        org,
        source: a.source.unwrap_or_else(|| {
            format!(
                "csv:{}",
                if stdin {
                    "stdin".into()
                } else {
                    file_name(&a.file)
                }
            )
        }),
        strict: a.strict,
        commit_every: a.commit_every.max(1),
    };
    let bar = progress_bar(len, Counting::Bytes);
    let started = Instant::now();
    let result = import_csv::import(&conn, reader, &opts, |bytes| bar.set_position(bytes)).await;
    bar.finish_and_clear();
    let report = result?;
    let secs = started.elapsed().as_secs_f64();
    print_bad_lines(&report.bad_lines, report.bad);
    let rate = if secs > 0.0 {
        report.imported as f64 / secs
    } else {
        0.0
    };
    println!(
        "{} lines read, {} serials imported ({} new lots), {} bad lines, in {secs:.1} s ({rate:.0} serials/s)",
        report.lines, report.imported, report.new_lots, report.bad
    );
    Ok(outcome(report.bad, opts.strict))
}

/// Bad lines on standard error, with their line numbers (the first ones, then a count).
fn print_bad_lines(shown: &[import_csv::BadLine], total: u64) {
    for b in shown {
        eprintln!("line {}: {}", b.line, b.reason);
    }
    if total > shown.len() as u64 {
        eprintln!(
            "… and {} more bad lines not shown",
            total - shown.len() as u64
        );
    }
}

/// Success only when every line was good; says what happened to the others.
fn outcome(bad: u64, strict: bool) -> ExitCode {
    if bad == 0 {
        return ExitCode::SUCCESS;
    }
    if strict {
        println!("--strict: nothing was imported because of the bad lines above");
    } else {
        println!("the bad lines above were not imported; the other lines were");
    }
    ExitCode::FAILURE
}

async fn products(a: ProductsArgs) -> anyhow::Result<ExitCode> {
    let conn = open(&a.org.common).await?;
    let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
    let rows = if a.file.as_os_str() == "-" {
        products::read_csv(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&a.file)
            .with_context(|| format!("cannot open {}", a.file.display()))?;
        products::read_csv(std::io::BufReader::new(f))
    }
    .with_context(|| format!("nothing loaded from {}", a.file.display()))?;
    let report = products::load(&conn, &org, &rows, a.strict).await?;
    print_bad_lines(&report.bad_lines, report.bad);
    println!(
        "{} lines read, {} products loaded, {} bad lines; reference data version {}",
        report.lines, report.imported, report.bad, report.version
    );
    Ok(outcome(report.bad, a.strict))
}

/// What a progress bar counts.
#[derive(Clone, Copy)]
enum Counting {
    /// Bytes of the file read.
    Bytes,
    /// Orders applied.
    Orders,
}

fn progress_bar(len: Option<u64>, counting: Counting) -> ProgressBar {
    // Only a person at a terminal wants it; logs and pipes get the summary line alone.
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = match counting {
        Counting::Bytes => {
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta} left)"
        }
        Counting::Orders => {
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} orders ({eta} left)"
        }
    };
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bytes} read")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}

async fn orders(a: OrdersArgs) -> anyhow::Result<ExitCode> {
    let conn = open(&a.org.common).await?;
    let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
    let read = if a.file.as_os_str() == "-" {
        orders::file::read(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(&a.file)
            .with_context(|| format!("cannot open {}", a.file.display()))?;
        orders::file::read(std::io::BufReader::new(f))
    };
    let (found, loose, lines) =
        read.with_context(|| format!("nothing imported from {}", a.file.display()))?;
    // The command line acts for the organisation with the database's own authority; the
    // tasks it makes name `cli` as their creator.
    let caller = swt_server::auth::integration::principal("cli", &org);
    let docs = swt_server::tasks::documents::DocumentCache::new(0);
    let actor = automerge::ActorId::random();
    let apply = orders::Apply {
        db: &conn,
        docs: &docs,
        actor: &actor,
    };
    let bar = progress_bar(Some(found.len() as u64), Counting::Orders);
    let started = Instant::now();
    let result = orders::file::import(&apply, &caller, &found, loose, lines, a.strict, |n| {
        bar.set_position(n)
    })
    .await;
    bar.finish_and_clear();
    let report = result?;
    print_bad_lines(&report.bad_lines, report.bad);
    println!(
        "{} lines read, {} orders: {} created, {} updated, {} unchanged, {} not imported; {} bad lines, in {:.1} s",
        report.lines,
        report.orders,
        report.created,
        report.updated,
        report.unchanged,
        report.bad_orders,
        report.bad,
        started.elapsed().as_secs_f64()
    );
    Ok(outcome(report.bad, a.strict))
}

async fn epcis(a: EpcisArgs) -> anyhow::Result<ExitCode> {
    let conn = open(&a.org.common).await?;
    let org = service::resolve_org(&conn, a.org.org.as_deref()).await?;
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let doc = epcis_import::parse_json(&bytes)
        .with_context(|| format!("{} is not an EPCIS document", a.file.display()))?;
    let report = epcis_import::import(&conn, &org, &doc, &file_name(&a.file))
        .await
        .with_context(|| format!("nothing imported from {}", a.file.display()))?;
    println!(
        "{} events: {} commissioning ({} serials, {} new lots), {} decommissioning ({} serials, {} not held), {} skipped; {} identifiers that are not serialized GTINs skipped",
        report.events,
        report.commissioning_events,
        report.commissioned,
        report.new_lots,
        report.decommissioning_events,
        report.decommissioned,
        report.decommissioned_unknown,
        report.skipped_events,
        report.skipped_identifiers,
    );
    Ok(ExitCode::SUCCESS)
}
