//! The CSV drop: `swt import orders FILE`. One line per order line; the first line names
//! the columns (any order, any case):
//!
//! - `kind`, `order_ref`, `site_gln`, `partner_gln` (required): the order the line is of;
//!   equal on every line of one order;
//! - `gtin`, `quantity`, `lot`: a quantity line (a line with a quantity is one);
//! - `sscc`, `serial`, `parent_sscc`: an expected unit (an SSCC, or `gtin` and `serial`),
//!   optionally inside a container of the order;
//! - `title`, `po`, `asn`, `order`, `shipment`, `invoice` (optional): the order's title and
//!   other references, equal on every line of one order.
//!
//! Lines are grouped into orders by `(kind, order_ref)`, and each order goes the API's
//! way ([`super::check`], [`super::Apply::apply`]): an order with a bad line is not
//! applied at all, and every bad line is reported with its number. Without `strict` the
//! good orders are applied; with it, nothing is if any line is bad.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use futures_util::StreamExt;
use serde::Serialize;

use super::{Apply, At, Checked, OrderError, OrderInput, OrderUnit, Outcome, Reply};
use crate::auth::Principal;
use crate::serials::import_csv::{BadLine, MAX_REPORTED};
use crate::tasks::LineInput;

/// Lines per file at most.
pub const MAX_LINES: usize = 1_000_000;

const REQUIRED: [&str; 4] = ["kind", "order_ref", "site_gln", "partner_gln"];
const OPTIONAL: [&str; 12] = [
    "title",
    "gtin",
    "quantity",
    "lot",
    "sscc",
    "serial",
    "parent_sscc",
    "po",
    "asn",
    "order",
    "shipment",
    "invoice",
];
/// Columns that belong to the order, not to the line: equal on all its lines.
const ORDER_COLUMNS: [&str; 8] = [
    "site_gln",
    "partner_gln",
    "title",
    "po",
    "asn",
    "order",
    "shipment",
    "invoice",
];

/// Why a file could not be read at all (nothing was imported).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The header is missing or wrong, or the file too long.
    #[error("{0}")]
    Invalid(String),
    /// Applying an order failed for a reason that is not the order's (database).
    #[error(transparent)]
    Order(#[from] OrderError),
}

/// One order read from the file, with the file line of each of its entries.
#[derive(Debug, Clone, Default)]
pub struct FileOrder {
    /// `kind` column.
    pub kind: String,
    /// `order_ref` column.
    pub order_ref: String,
    /// The order as the API would take it.
    pub input: OrderInput,
    /// File line of `input.lines[i]`.
    pub line_of_line: Vec<u64>,
    /// File line of `input.units[i]`.
    pub line_of_unit: Vec<u64>,
    /// Its first line.
    pub first_line: u64,
    /// Its lines that could not even be read, and why.
    pub unreadable: Vec<BadLine>,
    /// The values of its order columns, from its first line.
    order_values: Vec<String>,
}

/// What a file import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileReport {
    /// Data lines read (not counting the header).
    pub lines: u64,
    /// Orders in the file.
    pub orders: u64,
    /// Orders whose task was made.
    pub created: u64,
    /// Orders whose open task was changed.
    pub updated: u64,
    /// Orders known as they are.
    pub unchanged: u64,
    /// Orders not applied (bad lines, or refused as a whole).
    pub bad_orders: u64,
    /// Bad lines found (all counted).
    pub bad: u64,
    /// The first [`MAX_REPORTED`] bad lines, by line number.
    pub bad_lines: Vec<BadLine>,
}

impl FileReport {
    fn bad_line(&mut self, line: u64, reason: String) {
        self.bad += 1;
        if self.bad_lines.len() < MAX_REPORTED {
            self.bad_lines.push(BadLine { line, reason });
        }
    }
}

/// Reads an order file into orders, in the order they first appear. Lines that cannot be
/// read are kept with their order (which is then bad) or, without a readable order, as
/// bad lines of their own (second value).
pub fn read<R: Read>(reader: R) -> Result<(Vec<FileOrder>, Vec<BadLine>, u64), FileError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let mut rec = csv::StringRecord::new();
    let help = format!(
        "the first line must name the columns {} and any of {}",
        REQUIRED.join(","),
        OPTIONAL.join(",")
    );
    if !rdr
        .read_record(&mut rec)
        .map_err(|e| FileError::Invalid(format!("line 1: {e}")))?
    {
        return Err(FileError::Invalid(format!("the file is empty: {help}")));
    }
    let mut cols: HashMap<&'static str, usize> = HashMap::new();
    for (i, name) in rec.iter().enumerate() {
        let name = name
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        let Some(known) = REQUIRED.iter().chain(OPTIONAL.iter()).find(|c| **c == name) else {
            return Err(FileError::Invalid(format!(
                "line 1: unknown column {name:?}: {help}"
            )));
        };
        if cols.insert(known, i).is_some() {
            return Err(FileError::Invalid(format!(
                "line 1: column {name:?} appears twice"
            )));
        }
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !cols.contains_key(*c)) {
        return Err(FileError::Invalid(format!(
            "line 1: column {missing:?} is missing: {help}"
        )));
    }
    let width = rec.len();
    let mut orders: Vec<FileOrder> = Vec::new();
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    let mut loose = Vec::new();
    let mut lines = 0u64;
    loop {
        let read = rdr.read_record(&mut rec);
        let line = match &read {
            Ok(_) => rec.position().map_or(0, |p| p.line()),
            Err(e) => e.position().map_or(0, |p| p.line()),
        };
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                lines += 1;
                loose.push(BadLine {
                    line,
                    reason: format!("not CSV: {e}"),
                });
                continue;
            }
        }
        lines += 1;
        if lines as usize > MAX_LINES {
            return Err(FileError::Invalid(format!(
                "more than {MAX_LINES} lines in one file: split it"
            )));
        }
        let get = |c: &str| {
            cols.get(c)
                .and_then(|i| rec.get(*i))
                .map(str::trim)
                .unwrap_or("")
        };
        let (kind, order_ref) = (get("kind"), get("order_ref"));
        if kind.is_empty() || order_ref.is_empty() {
            loose.push(BadLine {
                line,
                reason: "kind and order_ref are required on every line".to_owned(),
            });
            continue;
        }
        let key = (kind.to_ascii_lowercase(), order_ref.to_owned());
        let values: Vec<String> = ORDER_COLUMNS.iter().map(|c| get(c).to_owned()).collect();
        let at = *index.entry(key.clone()).or_insert_with(|| {
            let mut refs = BTreeMap::new();
            for r in super::EXTRA_REFS {
                let v = get(r);
                if !v.is_empty() {
                    refs.insert(r.to_owned(), v.to_owned());
                }
            }
            let title = get("title");
            orders.push(FileOrder {
                kind: key.0.clone(),
                order_ref: key.1.clone(),
                input: OrderInput {
                    site_gln: get("site_gln").to_owned(),
                    partner_gln: get("partner_gln").to_owned(),
                    title: (!title.is_empty()).then(|| title.to_owned()),
                    refs,
                    ..OrderInput::default()
                },
                first_line: line,
                order_values: values.clone(),
                ..FileOrder::default()
            });
            orders.len() - 1
        });
        let Some(order) = orders.get_mut(at) else {
            continue;
        };
        if rec.len() != width {
            order.unreadable.push(BadLine {
                line,
                reason: format!("{} fields, the header has {width}", rec.len()),
            });
            continue;
        }
        if let Some((c, _)) = ORDER_COLUMNS
            .iter()
            .zip(&values)
            .zip(&order.order_values)
            .find(|((_, v), first)| v != first)
            .map(|((c, v), _)| (c, v))
        {
            order.unreadable.push(BadLine {
                line,
                reason: format!(
                    "{c} differs from line {} of the same order",
                    order.first_line
                ),
            });
            continue;
        }
        let opt = |c: &str| Some(get(c)).filter(|v| !v.is_empty()).map(str::to_owned);
        match get("quantity") {
            "" => {
                order.input.units.push(OrderUnit {
                    sscc: opt("sscc"),
                    gtin: opt("gtin"),
                    serial: opt("serial"),
                    parent_sscc: opt("parent_sscc"),
                });
                order.line_of_unit.push(line);
            }
            q => match q.parse::<u64>() {
                Ok(quantity) => {
                    order.input.lines.push(LineInput {
                        gtin: get("gtin").to_owned(),
                        quantity,
                        lot: opt("lot"),
                    });
                    order.line_of_line.push(line);
                }
                Err(_) => order.unreadable.push(BadLine {
                    line,
                    reason: format!("quantity {q:?} is not a whole number"),
                }),
            },
        }
    }
    Ok((orders, loose, lines))
}

impl FileOrder {
    /// The file line of a problem of this order.
    fn line_of(&self, at: At) -> u64 {
        match at {
            At::Order => Some(self.first_line),
            At::Line(i) => self.line_of_line.get(i).copied(),
            At::Unit(i) => self.line_of_unit.get(i).copied(),
        }
        .unwrap_or(self.first_line)
    }

    /// Reports a refusal of the whole order at its first line; a list of problems at
    /// their own lines.
    fn report(&self, err: &OrderError, report: &mut FileReport) {
        match err {
            OrderError::Invalid(problems) => {
                for p in problems {
                    let reason = match p.at {
                        At::Order => format!("order {}/{}: {}", self.kind, self.order_ref, p),
                        _ => p.message.clone(),
                    };
                    report.bad_line(self.line_of(p.at), reason);
                }
            }
            other => report.bad_line(
                self.first_line,
                format!("order {}/{}: {other}", self.kind, self.order_ref),
            ),
        }
    }
}

/// Orders checked at once. Four keep two cores and a handful of pooled connections busy
/// (SQLite reads run side by side in WAL mode; PostgreSQL's round trips overlap).
const CHECKS_AT_ONCE: usize = 4;

/// Checks every order of a file and applies the good ones for `caller` (all or none with
/// `strict`); `progress` is told how many orders are done.
pub async fn import(
    apply: &Apply<'_>,
    caller: &Principal,
    orders: &[FileOrder],
    loose: Vec<BadLine>,
    lines: u64,
    strict: bool,
    mut progress: impl FnMut(u64),
) -> Result<FileReport, FileError> {
    let mut report = FileReport {
        lines,
        orders: orders.len() as u64,
        ..FileReport::default()
    };
    for b in loose {
        report.bad_line(b.line, b.reason);
    }
    // Checking is reads only: several orders at once (answers kept in file order), so
    // the look-ups of one overlap another's (see `CHECKS_AT_ONCE`).
    let checks: Vec<_> = futures_util::stream::iter(orders)
        .map(|order| async move {
            let checked = super::check(
                apply.db,
                &caller.org_id,
                &order.kind,
                &order.order_ref,
                &order.input,
            )
            .await;
            let refusal = match &checked {
                Ok(c) if order.unreadable.is_empty() => Some(apply.refusal(caller, c).await),
                _ => None,
            };
            (order, checked, refusal)
        })
        .buffered(CHECKS_AT_ONCE)
        .collect()
        .await;
    let mut good: Vec<(&FileOrder, Checked)> = Vec::with_capacity(orders.len());
    for (order, checked, refusal) in checks {
        for b in &order.unreadable {
            report.bad_line(b.line, b.reason.clone());
        }
        let checked = match checked {
            Ok(c) => c,
            Err(
                e @ (OrderError::Invalid(_) | OrderError::Conflict(_) | OrderError::NotOpen { .. }),
            ) => {
                order.report(&e, &mut report);
                report.bad_orders += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if !order.unreadable.is_empty() {
            report.bad_orders += 1;
            continue;
        }
        // So that --strict applies nothing, refusals an order would meet are found now.
        if let Some(refusal) = refusal.transpose()?.flatten() {
            order.report(&refusal, &mut report);
            report.bad_orders += 1;
            continue;
        }
        good.push((order, checked));
    }
    report.bad_lines.sort_by_key(|b| b.line);
    if strict && report.bad > 0 {
        return Ok(report);
    }
    for (done, (order, checked)) in (1u64..).zip(&good) {
        match apply.apply(caller, checked, None).await {
            Ok(Reply::Done(outcome)) => match outcome.outcome {
                Outcome::Created => report.created += 1,
                Outcome::Updated => report.updated += 1,
                Outcome::Unchanged => report.unchanged += 1,
            },
            // No key, no replay; counted as it was.
            Ok(Reply::Replay { .. }) => report.unchanged += 1,
            // Changed by someone else since the check: this order only.
            Err(
                e @ (OrderError::Invalid(_) | OrderError::Conflict(_) | OrderError::NotOpen { .. }),
            ) => {
                order.report(&e, &mut report);
                report.bad_orders += 1;
            }
            Err(e) => return Err(e.into()),
        }
        progress(done);
    }
    report.bad_lines.sort_by_key(|b| b.line);
    Ok(report)
}
