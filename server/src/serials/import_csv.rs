//! Importing manufacturer serials from CSV: a header line naming the columns `gtin`,
//! `serial`, `lot`, `expiry` and optionally `status` (any order), then one serial a line.
//!
//! One thread parses and validates while the caller's task writes, in large
//! transactions of multi-row upserts. Bad lines are collected with their line number and
//! reason, never written. Without `strict`, good lines are committed every
//! [`CsvOptions::commit_every`] rows (so a long import does not hold SQLite's write lock
//! for its whole length); with `strict`, everything is one transaction, rolled back if
//! any line is bad.

use std::collections::HashSet;
use std::io::Read;

use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use swt_domain::gs1::{self, Gtin};
use tokio::sync::mpsc;

use super::store::{self, SerialRow};
use super::{SerialStatus, SerialsError, check_serial_and_lot, now_ms, parse_expiry_at};

/// At most this many bad lines are kept with their reason (all are counted).
pub const MAX_REPORTED: usize = 1000;
/// Rows parsed per batch handed to the writer.
const BATCH_ROWS: usize = 20_000;

/// How to import.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The organisation the serials belong to.
    pub org: String,
    /// Recorded on every row (`csv:<file name>` by default in the CLI).
    pub source: String,
    /// Import nothing if any line is bad.
    pub strict: bool,
    /// Commit after about this many rows (not in strict mode).
    pub commit_every: usize,
}

/// A line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BadLine {
    /// 1-based line number in the file (the header is line 1).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CsvReport {
    /// Data lines read (not counting the header).
    pub lines: u64,
    /// Lines imported (inserted or updated); 0 when a strict import found bad lines.
    pub imported: u64,
    /// Lines refused.
    pub bad: u64,
    /// The first [`MAX_REPORTED`] refused lines.
    pub bad_lines: Vec<BadLine>,
    /// Lots seen for the first time.
    pub new_lots: u64,
}

struct Columns {
    gtin: usize,
    serial: usize,
    lot: usize,
    expiry: usize,
    status: Option<usize>,
    count: usize,
}

const HEADER_HELP: &str = "the first line must name the columns: gtin,serial,lot,expiry[,status]";

fn columns(header: &csv::ByteRecord) -> Result<Columns, String> {
    let (mut gtin, mut serial, mut lot, mut expiry, mut status) = (None, None, None, None, None);
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw);
        // Spreadsheets save a byte-order mark before the first name.
        let name = name
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        let slot = match name.as_str() {
            "gtin" => &mut gtin,
            "serial" => &mut serial,
            "lot" => &mut lot,
            "expiry" => &mut expiry,
            "status" => &mut status,
            other => return Err(format!("unknown column {other:?}: {HEADER_HELP}")),
        };
        if slot.replace(i).is_some() {
            return Err(format!("column {name:?} appears twice"));
        }
    }
    match (gtin, serial, lot, expiry) {
        (Some(gtin), Some(serial), Some(lot), Some(expiry)) => Ok(Columns {
            gtin,
            serial,
            lot,
            expiry,
            status,
            count: header.len(),
        }),
        _ => Err(HEADER_HELP.to_owned()),
    }
}

fn field<'r>(rec: &'r csv::ByteRecord, i: usize, name: &str) -> Result<&'r str, String> {
    let raw = rec.get(i).unwrap_or_default();
    std::str::from_utf8(raw)
        .map(str::trim)
        .map_err(|_| format!("{name} is not UTF-8 text"))
}

struct LineParser {
    cols: Columns,
    year: u16,
    last_gtin: Option<(String, Gtin)>,
}

impl LineParser {
    fn parse(&mut self, rec: &csv::ByteRecord) -> Result<SerialRow, String> {
        if rec.len() != self.cols.count {
            return Err(format!(
                "{} fields, the header has {}",
                rec.len(),
                self.cols.count
            ));
        }
        let gtin_text = field(rec, self.cols.gtin, "gtin")?;
        // Files list many serials of one GTIN in a row: parse it once per run.
        let gtin = match &self.last_gtin {
            Some((text, g)) if text == gtin_text => *g,
            _ => {
                let g = super::parse_gtin(gtin_text)?;
                self.last_gtin = Some((gtin_text.to_owned(), g));
                g
            }
        };
        let serial = field(rec, self.cols.serial, "serial")?;
        let lot = field(rec, self.cols.lot, "lot")?;
        check_serial_and_lot(&gtin, serial, lot)?;
        let expiry = parse_expiry_at(field(rec, self.cols.expiry, "expiry")?, self.year)?;
        let status = match self.cols.status {
            Some(i) => match field(rec, i, "status")? {
                "" => None,
                s => Some(s.parse::<SerialStatus>()?),
            },
            None => None,
        };
        Ok(SerialRow {
            gtin: gtin.as_str().to_owned(),
            serial: serial.to_owned(),
            lot: lot.to_owned(),
            expiry,
            status,
        })
    }
}

enum Msg {
    Batch {
        rows: Vec<SerialRow>,
        bad: Vec<BadLine>,
        lines: u64,
        bytes: u64,
    },
    Failed(SerialsError),
}

/// Reads the header, then parses every line into batches sent to `tx`.
fn parse_all<R: Read>(reader: R, tx: &mpsc::Sender<Msg>) -> Result<(), SerialsError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let io = |e: csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        match e.into_kind() {
            csv::ErrorKind::Io(source) => SerialsError::Io {
                what: format!("the CSV file near line {line}"),
                source,
            },
            other => SerialsError::Invalid(format!("line {line}: {other:?}")),
        }
    };
    let mut rec = csv::ByteRecord::new();
    if !rdr.read_byte_record(&mut rec).map_err(io)? {
        return Err(SerialsError::Invalid(format!(
            "the file is empty: {HEADER_HELP}"
        )));
    }
    let cols = columns(&rec).map_err(|e| SerialsError::Invalid(format!("line 1: {e}")))?;
    let mut parser = LineParser {
        cols,
        year: gs1::current_year(),
        last_gtin: None,
    };
    loop {
        let mut rows = Vec::with_capacity(BATCH_ROWS);
        let mut bad = Vec::new();
        let mut lines = 0;
        let mut more = true;
        while rows.len() < BATCH_ROWS {
            if !rdr.read_byte_record(&mut rec).map_err(io)? {
                more = false;
                break;
            }
            lines += 1;
            let line = rec.position().map_or(0, |p| p.line());
            match parser.parse(&rec) {
                Ok(row) => rows.push(row),
                Err(reason) => bad.push(BadLine { line, reason }),
            }
        }
        let bytes = rdr.position().byte();
        if tx
            .blocking_send(Msg::Batch {
                rows,
                bad,
                lines,
                bytes,
            })
            .is_err()
        {
            // The writer stopped (it failed and says why itself).
            return Ok(());
        }
        if !more {
            return Ok(());
        }
    }
}

/// Imports serials from CSV `reader` into `db`. `progress` is called with the bytes read
/// so far after each batch. Returns the report; bad lines are in it, not an error.
pub async fn import<R: Read + Send + 'static>(
    db: &DatabaseConnection,
    reader: R,
    opts: &CsvOptions,
    mut progress: impl FnMut(u64) + Send,
) -> Result<CsvReport, SerialsError> {
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let parser = std::thread::spawn(move || {
        if let Err(e) = parse_all(reader, &tx) {
            let _ = tx.blocking_send(Msg::Failed(e));
        }
    });
    let result = write_all(db, &mut rx, opts, &mut progress).await;
    // Unblock and reap the parser whatever happened.
    drop(rx);
    let _ = tokio::task::spawn_blocking(move || parser.join()).await;
    result
}

async fn write_all(
    db: &DatabaseConnection,
    rx: &mut mpsc::Receiver<Msg>,
    opts: &CsvOptions,
    progress: &mut (impl FnMut(u64) + Send),
) -> Result<CsvReport, SerialsError> {
    let mut report = CsvReport::default();
    let mut txn: DatabaseTransaction = db.begin().await?;
    let mut since_commit = 0usize;
    let mut seen_lots: HashSet<(String, String)> = HashSet::new();
    let mut pending_lots: Vec<(String, String)> = Vec::new();
    let now = now_ms();
    while let Some(msg) = rx.recv().await {
        let (rows, bad, lines, bytes) = match msg {
            Msg::Batch {
                rows,
                bad,
                lines,
                bytes,
            } => (rows, bad, lines, bytes),
            Msg::Failed(e) => {
                txn.rollback().await?;
                return Err(e);
            }
        };
        report.lines += lines;
        report.bad += bad.len() as u64;
        for b in bad {
            if report.bad_lines.len() < MAX_REPORTED {
                report.bad_lines.push(b);
            }
        }
        // A strict import that has seen a bad line only reads on, to report them all.
        if !(opts.strict && report.bad > 0) {
            for r in &rows {
                // Files run lot by lot: compare with the previous row before hashing.
                let same_as_last = pending_lots
                    .last()
                    .is_some_and(|(g, l)| *g == r.gtin && *l == r.lot);
                if !same_as_last && seen_lots.insert((r.gtin.clone(), r.lot.clone())) {
                    pending_lots.push((r.gtin.clone(), r.lot.clone()));
                }
            }
            since_commit += rows.len();
            report.imported += rows.len() as u64;
            store::upsert_serials(&txn, &opts.org, rows, &opts.source, now).await?;
            if !opts.strict && since_commit >= opts.commit_every {
                report.new_lots += store::ensure_lots(&txn, &opts.org, &pending_lots, now).await?;
                pending_lots.clear();
                txn.commit().await?;
                txn = db.begin().await?;
                since_commit = 0;
            }
        }
        progress(bytes);
    }
    if opts.strict && report.bad > 0 {
        txn.rollback().await?;
        report.imported = 0;
        return Ok(report);
    }
    report.new_lots += store::ensure_lots(&txn, &opts.org, &pending_lots, now).await?;
    txn.commit().await?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn header_in_any_order_and_with_bom() {
        let c = columns(&rec(&["\u{feff}Serial", "gtin", "EXPIRY", "lot"])).expect("header");
        assert_eq!((c.serial, c.gtin, c.expiry, c.lot), (0, 1, 2, 3));
        assert!(c.status.is_none());
        assert!(columns(&rec(&["gtin", "serial", "lot"])).is_err());
        assert!(columns(&rec(&["gtin", "serial", "lot", "expiry", "colour"])).is_err());
        assert!(columns(&rec(&["00312345678906", "S1", "L1", "270131"])).is_err());
    }

    #[test]
    fn lines_are_checked() {
        let mut p = LineParser {
            cols: columns(&rec(&["gtin", "serial", "lot", "expiry", "status"])).expect("header"),
            year: 2026,
            last_gtin: None,
        };
        let ok = p
            .parse(&rec(&[
                "0312345678906",
                "S,1",
                "L1",
                "2027-01-31",
                "suspect",
            ]))
            .expect("good line");
        assert_eq!(ok.gtin, "00312345678906");
        assert_eq!(ok.serial, "S,1");
        assert_eq!(ok.expiry, "270131");
        assert_eq!(ok.status, Some(SerialStatus::Suspect));
        let none = p
            .parse(&rec(&["00312345678906", "S2", "L1", "270100", ""]))
            .expect("no status");
        assert_eq!(none.status, None);
        for (line, want) in [
            (["00312345678907", "S1", "L1", "270131", ""], "GTIN"),
            (["00312345678906", "S 1", "L1", "270131", ""], "serial"),
            (["00312345678906", "S1", "", "270131", ""], "lot"),
            (["00312345678906", "S1", "L1", "271331", ""], "expiry"),
            (["00312345678906", "S1", "L1", "270131", "gone"], "status"),
        ] {
            let err = p.parse(&rec(&line)).expect_err("bad line");
            assert!(err.contains(want), "{line:?}: {err}");
        }
        assert!(p.parse(&rec(&["00312345678906", "S1"])).is_err());
    }
}
