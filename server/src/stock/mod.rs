//! Stock out (issue #24, point 3): a site's stock as one consistent snapshot, for the
//! ERP's inventory reconciliation, and the difference between the ERP's stock and swt's.
//!
//! - The snapshot by lot reads `stock_level` (kept by triggers on `trace_object`: a few
//!   thousand rows however many packs there are), summed over the site's locations: an
//!   ERP keeps stock per plant and batch, not per bin. By serial it reads the site's packs
//!   from `trace_object`, in key order, a page at a time.
//! - Everything a snapshot or a reconciliation reads is read in one transaction that sees
//!   one state ([`crate::db::Policy::begin_snapshot_read`]: SQLite's read transaction,
//!   PostgreSQL's repeatable read), and `as_of` is taken inside it, right after its first
//!   read fixed what it sees.
//! - "On hand" ([`ON_HAND`]) is every pack at the site that has not left our custody:
//!   all statuses but `shipped` and `destroyed`, as the console's lot page counts them.
//!
//! The routes are in [`routes`]; the contract is `docs/erp.md`, "Stock out".

pub mod routes;

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Condition, Expr};
// `gt()` on expressions is a trait method in sea-orm 2.
use sea_orm::ExprTrait;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::db::entity::trace_object::UnitStatus;
use crate::db::entity::{site, stock_level, trace_object};
use crate::trace::dto::StockQuery;
use crate::trace::service::{present, stock_levels, units_total};

/// The statuses of a pack that is in the site's stock: everything not out of our custody
/// ([`UnitStatus::is_out`]). Picked and packed packs are still in the building (an ERP
/// books the goods issue at shipping); returned and quarantined ones are blocked stock,
/// which an ERP keeps too; `unknown` is a pack scanned at the site whose state no scan
/// told yet, listed rather than hidden so that a reconciliation shows it.
pub const ON_HAND: [UnitStatus; 6] = [
    UnitStatus::Unknown,
    UnitStatus::InStock,
    UnitStatus::Picked,
    UnitStatus::Packed,
    UnitStatus::Returned,
    UnitStatus::Quarantined,
];

/// Rows read per query of a snapshot: bounded memory however large the site.
pub const PAGE: u64 = 5_000;
/// Lines of an ERP snapshot at most (a site with more GTIN-lot pairs than that is not
/// one we know of).
pub const MAX_LINES: usize = 200_000;
/// Bytes of an ERP snapshot at most: 200,000 lines of JSON with long lots fit.
pub const BODY_LIMIT: usize = 16 << 20;
/// Problems named in a refusal at most (all are counted).
const MAX_LISTED: usize = 20;

/// The stored codes of [`ON_HAND`].
pub fn on_hand() -> Vec<&'static str> {
    ON_HAND.iter().map(|s| s.as_str()).collect()
}

/// Where in an ERP snapshot a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Where {
    /// A CSV file line (the header is line 1).
    Line(u64),
    /// `lines[i]` of a JSON body.
    Index(usize),
}

impl std::fmt::Display for Where {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Line(n) => write!(f, "line {n}"),
            Self::Index(i) => write!(f, "lines[{i}]"),
        }
    }
}

/// One thing wrong with a line of an ERP snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// Which line.
    pub at: Where,
    /// What, for a person.
    pub message: String,
}

fn listed(problems: &[LineProblem]) -> String {
    let mut text = problems
        .iter()
        .take(MAX_LISTED)
        .map(|p| format!("{}: {}", p.at, p.message))
        .collect::<Vec<_>>()
        .join("; ");
    if problems.len() > MAX_LISTED {
        text.push_str(&format!("; and {} more", problems.len() - MAX_LISTED));
    }
    text
}

/// Why a stock request has no answer.
#[derive(Debug, thiserror::Error)]
pub enum StockError {
    /// No site of that id or GLN in the caller's organisation.
    #[error("site {0:?} is not a site of your organisation")]
    UnknownSite(String),
    /// The request cannot be read at all (header, JSON shape, content type).
    #[error("{0}")]
    BadRequest(String),
    /// Lines of the ERP's snapshot are wrong; every one is counted, the first named.
    #[error("{}", listed(.0))]
    Invalid(Vec<LineProblem>),
    /// More than [`MAX_LINES`] lines.
    #[error("more than {MAX_LINES} lines in one snapshot")]
    TooManyLines,
    /// Writing the answer failed (a row that would not serialise: a bug, not the input).
    #[error("writing the stock answer: {0}")]
    Write(String),
    /// The database failed.
    #[error("stock database error: {0}")]
    Db(#[from] DbErr),
}

/// A snapshot row by lot: packs of one GTIN, lot, expiry and status at the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotRow {
    /// GTIN-14.
    pub gtin: String,
    /// Lot (AI 10); null if no scan told it.
    pub lot: Option<String>,
    /// Expiry, ISO date; null if no scan told it.
    pub expiry: Option<String>,
    /// One of the on-hand statuses.
    pub status: String,
    /// Packs.
    pub quantity: u64,
}

/// A snapshot row by serial: one pack at the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SerialRow {
    /// GTIN-14.
    pub gtin: String,
    /// Serial (AI 21).
    pub serial: String,
    /// Lot; null if unknown.
    pub lot: Option<String>,
    /// Expiry, ISO date; null if unknown.
    pub expiry: Option<String>,
    /// One of the on-hand statuses.
    pub status: String,
    /// Location at the site (bin, dock, zone) as last scanned; null if none.
    pub location: Option<String>,
    /// The SSCC of the case or pallet it is in; null if loose.
    pub container: Option<String>,
}

/// A row of a snapshot (the document's shape; the rows of one snapshot are all of its
/// `by`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SnapshotRow {
    /// `by=lot`.
    Lot(LotRow),
    /// `by=serial`.
    Serial(SerialRow),
}

/// A site's stock at one point in time (`GET /stock/snapshot`, JSON).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SnapshotDoc {
    /// The site's id.
    pub site_id: String,
    /// The site's GLN.
    pub site_gln: String,
    /// `lot` or `serial`.
    pub by: String,
    /// The moment the snapshot shows (RFC 3339, UTC, milliseconds).
    pub as_of: String,
    /// The statuses counted as on hand.
    pub on_hand_statuses: Vec<String>,
    /// The rows, in key order (GTIN, lot, expiry, status; or the pack's key).
    pub rows: Vec<SnapshotRow>,
    /// Rows listed.
    pub row_count: u64,
    /// Packs in all.
    pub packs: u64,
}

/// How a snapshot is grouped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum By {
    /// Per GTIN, lot, expiry and status.
    #[default]
    Lot,
    /// One row per pack.
    Serial,
}

impl By {
    /// The query value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lot => "lot",
            Self::Serial => "serial",
        }
    }
}

/// What a stock answer is written as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `application/json`.
    #[default]
    Json,
    /// `text/csv`, RFC 4180 with a header line.
    Csv,
}

/// CSV columns of a snapshot by lot.
pub const LOT_COLUMNS: [&str; 5] = ["gtin", "lot", "expiry", "status", "quantity"];
/// CSV columns of a snapshot by serial.
pub const SERIAL_COLUMNS: [&str; 7] = [
    "gtin",
    "serial",
    "lot",
    "expiry",
    "status",
    "location",
    "container",
];
/// CSV columns of a reconciliation report.
pub const REPORT_COLUMNS: [&str; 6] = [
    "gtin",
    "lot",
    "erp_quantity",
    "swt_quantity",
    "difference",
    "state",
];

/// RFC 3339, UTC, milliseconds: how `as_of` is written.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The site of `org` named by `site` (its id or its GLN).
async fn find_site<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site: &str,
) -> Result<site::Model, StockError> {
    let site = site.trim();
    if site.is_empty() {
        return Err(StockError::BadRequest(
            "name the site: site=<GLN or site id>".to_owned(),
        ));
    }
    site::Entity::find()
        .filter(site::Column::OrganisationId.eq(org))
        .filter(
            Condition::any()
                .add(site::Column::Id.eq(site))
                .add(site::Column::Gln.eq(site)),
        )
        .one(conn)
        .await?
        .ok_or_else(|| StockError::UnknownSite(site.to_owned()))
}

/// Begins the snapshot read, finds the site in it and takes `as_of`: the site's read is
/// the transaction's first, which fixes what it sees on both back-ends, so commits after
/// `as_of` are not in the snapshot.
async fn begin(
    db: &DatabaseConnection,
    org: &str,
    site: &str,
) -> Result<(DatabaseTransaction, site::Model, DateTime<Utc>), StockError> {
    let txn = crate::db::Policy::of(db).begin_snapshot_read(db).await?;
    let site = find_site(&txn, org, site).await?;
    Ok((txn, site, Utc::now()))
}

/// The on-hand `stock_level` rows of a site.
fn site_levels(org: &str, site_id: &str) -> sea_orm::Select<stock_level::Entity> {
    let q = StockQuery {
        site_id: Some(site_id.to_owned()),
        ..StockQuery::default()
    };
    stock_levels(org, &q).filter(stock_level::Column::Status.is_in(on_hand()))
}

/// Grouping key of a snapshot by lot.
type LotKey = [String; 4];

/// One page of a snapshot by lot, after `after`, summed over locations.
async fn lot_page<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
    after: Option<&LotKey>,
    limit: u64,
) -> Result<Vec<(LotKey, u64)>, DbErr> {
    let key = [
        stock_level::Column::Gtin,
        stock_level::Column::Lot,
        stock_level::Column::Expiry,
        stock_level::Column::Status,
    ];
    let mut sel = site_levels(org, site_id)
        .select_only()
        .columns(key)
        .column_as(units_total(), "n");
    if let Some(after) = after {
        sel = sel
            .filter(Expr::tuple(key.map(Expr::col)).gt(Expr::tuple(after.clone().map(Expr::val))));
    }
    for c in key {
        sel = sel.group_by(c).order_by_asc(c);
    }
    let rows: Vec<(String, String, String, String, i64)> =
        sel.limit(limit).into_tuple().all(conn).await?;
    Ok(rows
        .into_iter()
        .map(|(g, l, e, s, n)| ([g, l, e, s], u64::try_from(n).unwrap_or(0)))
        .collect())
}

/// A `trace_object` row of a pack, as a snapshot reads it.
type PackTuple = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

/// One page of a snapshot by serial: the site's on-hand packs after key `after`, in key
/// order (a range of the primary key).
async fn serial_page<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<(String, SerialRow)>, DbErr> {
    use trace_object::Column as C;
    let mut sel = trace_object::Entity::find()
        .select_only()
        .columns([
            C::EpcKey,
            C::Gtin,
            C::Serial,
            C::Lot,
            C::Expiry,
            C::Status,
            C::Location,
            C::ParentKey,
        ])
        .filter(C::OrganisationId.eq(org))
        .filter(C::Kind.eq("sgtin"))
        .filter(C::SiteId.eq(site_id))
        .filter(C::Status.is_in(ON_HAND));
    if let Some(after) = after {
        sel = sel.filter(C::EpcKey.gt(after));
    }
    let rows: Vec<PackTuple> = sel
        .order_by_asc(C::EpcKey)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(key, gtin, serial, lot, expiry, status, location, parent)| {
                let row = SerialRow {
                    gtin: gtin.unwrap_or_default(),
                    serial: serial.unwrap_or_default(),
                    lot,
                    expiry,
                    status,
                    location,
                    // Containers are SSCCs: the ERP knows the 18 digits, not our key.
                    container: parent
                        .map(|p| p.strip_prefix("sscc:").map_or(p.clone(), str::to_owned)),
                };
                (key, row)
            },
        )
        .collect())
}

/// Where a snapshot's reading is.
enum Cursor {
    Lot(Option<LotKey>),
    Serial(Option<String>),
}

/// A snapshot being written, a page at a time, from its own transaction: the answer is
/// streamed, so a site of millions of packs is never held whole in memory.
pub struct Snapshot {
    txn: Option<DatabaseTransaction>,
    org: String,
    site: site::Model,
    as_of: DateTime<Utc>,
    by: By,
    format: Format,
    cursor: Cursor,
    page: u64,
    started: bool,
    rows: u64,
    packs: u64,
}

impl Snapshot {
    /// Begins the snapshot of `site` (id or GLN) of `org`: 404 for a site of another
    /// organisation, exactly as for none.
    pub async fn open(
        db: &DatabaseConnection,
        org: &str,
        site: &str,
        by: By,
        format: Format,
    ) -> Result<Self, StockError> {
        let (txn, site, as_of) = begin(db, org, site).await?;
        Ok(Self {
            txn: Some(txn),
            org: org.to_owned(),
            site,
            as_of,
            by,
            format,
            cursor: match by {
                By::Lot => Cursor::Lot(None),
                By::Serial => Cursor::Serial(None),
            },
            page: PAGE,
            started: false,
            rows: 0,
            packs: 0,
        })
    }

    /// Reads `rows` rows per query instead of [`PAGE`] (at least one): for tests of the
    /// paging, which the demo's few hundred packs would not reach.
    pub fn with_page(mut self, rows: u64) -> Self {
        self.page = Ord::max(rows, 1);
        self
    }

    /// The moment the snapshot shows.
    pub fn as_of(&self) -> DateTime<Utc> {
        self.as_of
    }

    /// The site.
    pub fn site(&self) -> &site::Model {
        &self.site
    }

    /// The next piece of the document (the head with the first page, then a page each,
    /// the last with the end); `None` once it is all written and the transaction ended.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, StockError> {
        let Some(txn) = self.txn.as_ref() else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(usize::try_from(200 * self.page).unwrap_or(0));
        if !self.started {
            self.started = true;
            self.head(&mut out);
        }
        let (org, site_id, limit) = (self.org.as_str(), self.site.id.as_str(), self.page);
        let full = match &mut self.cursor {
            Cursor::Lot(after) => {
                let page = lot_page(txn, org, site_id, after.as_ref(), limit).await?;
                let full = page.len() as u64 == limit;
                for ([gtin, lot, expiry, status], quantity) in page.iter().cloned() {
                    let row = LotRow {
                        gtin,
                        lot: present(lot),
                        expiry: present(expiry),
                        status,
                        quantity,
                    };
                    self.packs += quantity;
                    write_row(&mut out, self.format, self.rows, &row, |r| {
                        vec![
                            r.gtin.clone(),
                            r.lot.clone().unwrap_or_default(),
                            r.expiry.clone().unwrap_or_default(),
                            r.status.clone(),
                            r.quantity.to_string(),
                        ]
                    })?;
                    self.rows += 1;
                }
                *after = page.last().map(|(k, _)| k.clone());
                full
            }
            Cursor::Serial(after) => {
                let page = serial_page(txn, org, site_id, after.as_deref(), limit).await?;
                let full = page.len() as u64 == limit;
                for (_, row) in &page {
                    self.packs += 1;
                    write_row(&mut out, self.format, self.rows, row, |r| {
                        vec![
                            r.gtin.clone(),
                            r.serial.clone(),
                            r.lot.clone().unwrap_or_default(),
                            r.expiry.clone().unwrap_or_default(),
                            r.status.clone(),
                            r.location.clone().unwrap_or_default(),
                            r.container.clone().unwrap_or_default(),
                        ]
                    })?;
                    self.rows += 1;
                }
                *after = page.last().map(|(k, _)| k.clone());
                full
            }
        };
        if !full {
            if self.format == Format::Json {
                out.extend_from_slice(
                    format!("],\"row_count\":{},\"packs\":{}}}", self.rows, self.packs).as_bytes(),
                );
            }
            // Read only: ending it changes nothing, it only gives the connection back.
            if let Some(txn) = self.txn.take() {
                txn.commit().await?;
            }
        }
        Ok(Some(Bytes::from(out)))
    }

    /// What comes before the rows: the JSON document's fields, or the CSV header line.
    fn head(&self, out: &mut Vec<u8>) {
        match self.format {
            Format::Json => {
                let fields = serde_json::json!({
                    "site_id": self.site.id,
                    "site_gln": self.site.gln,
                    "by": self.by.as_str(),
                    "as_of": rfc3339(&self.as_of),
                    "on_hand_statuses": on_hand(),
                });
                let text = fields.to_string();
                // The object without its closing brace, then the rows' array.
                out.extend_from_slice(text.trim_end_matches('}').as_bytes());
                out.extend_from_slice(b",\"rows\":[");
            }
            Format::Csv => {
                let columns: &[&str] = match self.by {
                    By::Lot => &LOT_COLUMNS,
                    By::Serial => &SERIAL_COLUMNS,
                };
                out.extend_from_slice(columns.join(",").as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
    }
}

/// Appends one row: a JSON array element (after a comma unless it is the first) or a
/// CSV record.
fn write_row<T: Serialize>(
    out: &mut Vec<u8>,
    format: Format,
    index: u64,
    row: &T,
    cells: impl Fn(&T) -> Vec<String>,
) -> Result<(), StockError> {
    match format {
        Format::Json => {
            if index > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, row).map_err(|e| StockError::Write(e.to_string()))?;
        }
        Format::Csv => csv_record(out, &cells(row))?,
    }
    Ok(())
}

/// Appends one RFC 4180 record (quoted where a cell needs it). Values are written as they
/// are, with no spreadsheet defusing: this is a machine interface, and an ERP must read
/// back exactly the lot it matches on.
fn csv_record(out: &mut Vec<u8>, cells: &[String]) -> Result<(), StockError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let written = w
        .write_record(cells)
        .map_err(|e| e.to_string())
        .and_then(|()| w.into_inner().map_err(|e| e.to_string()))
        .map_err(StockError::Write)?;
    out.extend_from_slice(&written);
    Ok(())
}

/// One line of the ERP's stock, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErpLine {
    /// Where it was.
    pub at: Where,
    /// GTIN-14.
    pub gtin: String,
    /// Lot; `''` for none.
    pub lot: String,
    /// Packs the ERP holds.
    pub quantity: u64,
}

/// The ERP's stock as JSON (the CSV has the same columns).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpSnapshot {
    /// One line per GTIN and lot.
    pub lines: Vec<ErpStockLine>,
}

/// A line of the ERP's stock.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErpStockLine {
    /// GTIN-8/12/13/14, check digit verified.
    pub gtin: String,
    /// Lot (AI 10); absent or empty for packs without one.
    #[serde(default)]
    pub lot: Option<String>,
    /// Packs, a whole number, 0 or more.
    pub quantity: u64,
    /// Expiry (`YYMMDD` or ISO date): checked, not compared.
    #[serde(default)]
    pub expiry: Option<String>,
}

/// Checks one line's fields; `quantity` is the text or JSON value as given.
fn check_line(
    at: Where,
    gtin: &str,
    lot: &str,
    quantity: Result<u64, String>,
    expiry: &str,
    problems: &mut Vec<LineProblem>,
) -> Option<ErpLine> {
    let before = problems.len();
    let mut bad = |message: String| problems.push(LineProblem { at, message });
    let parsed = crate::serials::parse_gtin(gtin).map_err(&mut bad).ok();
    let lot = lot.trim();
    if let Some(g) = &parsed
        && !lot.is_empty()
        && let Err(e) = crate::serials::check_lot(g, lot)
    {
        bad(format!("lot {lot:?}: {e}"));
    }
    let quantity = quantity.map_err(&mut bad).ok();
    let expiry = expiry.trim();
    if !expiry.is_empty()
        && let Err(e) = crate::serials::parse_expiry(expiry)
    {
        bad(format!("expiry {expiry:?}: {e}"));
    }
    match (parsed, quantity) {
        (Some(g), Some(quantity)) if problems.len() == before => Some(ErpLine {
            at,
            gtin: g.as_str().to_owned(),
            lot: lot.to_owned(),
            quantity,
        }),
        _ => None,
    }
}

fn whole(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<u64>()
        .map_err(|_| format!("quantity {text:?} is not a whole number of packs, 0 or more"))
}

/// Refuses a snapshot with bad lines, or one (GTIN, lot) on two lines; else its lines.
fn finish(lines: Vec<ErpLine>, mut problems: Vec<LineProblem>) -> Result<Vec<ErpLine>, StockError> {
    let mut seen: HashMap<(&str, &str), Where> = HashMap::with_capacity(lines.len());
    for l in &lines {
        if let Some(first) = seen.insert((l.gtin.as_str(), l.lot.as_str()), l.at) {
            problems.push(LineProblem {
                at: l.at,
                message: format!(
                    "GTIN {} lot {:?} is also on {first}: one line per GTIN and lot",
                    l.gtin, l.lot
                ),
            });
        }
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        problems.sort_by_key(|p| p.at);
        Err(StockError::Invalid(problems))
    }
}

/// Reads the ERP's stock from CSV: a header line naming `gtin`, `lot`, `quantity` and
/// optionally `expiry` (any order, any case), then one line per GTIN and lot.
pub fn read_csv(body: &[u8]) -> Result<Vec<ErpLine>, StockError> {
    const REQUIRED: [&str; 3] = ["gtin", "lot", "quantity"];
    let help = "the first line must name the columns gtin,lot,quantity (and optionally expiry)";
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut rec = csv::StringRecord::new();
    let read = rdr
        .read_record(&mut rec)
        .map_err(|e| StockError::BadRequest(format!("line 1: {e}")))?;
    if !read {
        return Err(StockError::BadRequest(format!("the body is empty: {help}")));
    }
    let mut cols: HashMap<String, usize> = HashMap::new();
    for (i, name) in rec.iter().enumerate() {
        let name = name
            .trim_start_matches('\u{feff}')
            .trim()
            .to_ascii_lowercase();
        if !REQUIRED.contains(&name.as_str()) && name != "expiry" {
            return Err(StockError::BadRequest(format!(
                "line 1: unknown column {name:?}: {help}"
            )));
        }
        if cols.insert(name.clone(), i).is_some() {
            return Err(StockError::BadRequest(format!(
                "line 1: column {name:?} appears twice"
            )));
        }
    }
    if let Some(missing) = REQUIRED.iter().find(|c| !cols.contains_key(**c)) {
        return Err(StockError::BadRequest(format!(
            "line 1: column {missing:?} is missing: {help}"
        )));
    }
    let width = rec.len();
    let (mut lines, mut problems) = (Vec::new(), Vec::new());
    loop {
        let read = rdr.read_record(&mut rec);
        let line = match &read {
            Ok(_) => rec.position().map_or(0, |p| p.line()),
            Err(e) => e.position().map_or(0, |p| p.line()),
        };
        let at = Where::Line(line);
        match read {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                problems.push(LineProblem {
                    at,
                    message: format!("not CSV: {e}"),
                });
                continue;
            }
        }
        if lines.len() + problems.len() >= MAX_LINES {
            return Err(StockError::TooManyLines);
        }
        if rec.len() != width {
            problems.push(LineProblem {
                at,
                message: format!("{} fields, the header has {width}", rec.len()),
            });
            continue;
        }
        let get = |c: &str| cols.get(c).and_then(|i| rec.get(*i)).unwrap_or("");
        if let Some(l) = check_line(
            at,
            get("gtin"),
            get("lot"),
            whole(get("quantity")),
            get("expiry"),
            &mut problems,
        ) {
            lines.push(l);
        }
    }
    finish(lines, problems)
}

/// Reads the ERP's stock from JSON `{"lines": [{"gtin", "lot", "quantity", "expiry"}]}`.
/// Each line is checked on its own, so that a bad one is named by its index rather than
/// refused by the parser with a byte position.
pub fn read_json(body: &[u8]) -> Result<Vec<ErpLine>, StockError> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        lines: Vec<serde_json::Map<String, Value>>,
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| {
        StockError::BadRequest(format!(
            "request body: {e}: expected {{\"lines\": [{{\"gtin\", \"lot\", \"quantity\"}}]}}"
        ))
    })?;
    if body.lines.len() > MAX_LINES {
        return Err(StockError::TooManyLines);
    }
    let (mut lines, mut problems) = (Vec::new(), Vec::new());
    for (i, line) in body.lines.iter().enumerate() {
        let at = Where::Index(i);
        let mut wrong = Vec::new();
        for k in line.keys() {
            if !["gtin", "lot", "quantity", "expiry"].contains(&k.as_str()) {
                wrong.push(format!("unknown field {k:?}"));
            }
        }
        let text = |field: &str, wrong: &mut Vec<String>| match line.get(field) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                wrong.push(format!("{field} must be text, not {other}"));
                String::new()
            }
        };
        let gtin = text("gtin", &mut wrong);
        let lot = text("lot", &mut wrong);
        let expiry = text("expiry", &mut wrong);
        if gtin.is_empty() && wrong.is_empty() {
            wrong.push("gtin is missing".to_owned());
        }
        let quantity = match line.get("quantity") {
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("quantity {n} is not a whole number of packs, 0 or more")),
            None | Some(Value::Null) => Err("quantity is missing".to_owned()),
            Some(other) => Err(format!("quantity must be a number, not {other}")),
        };
        if !wrong.is_empty() {
            problems.extend(wrong.into_iter().map(|message| LineProblem { at, message }));
            continue;
        }
        if let Some(l) = check_line(at, &gtin, &lot, quantity, &expiry, &mut problems) {
            lines.push(l);
        }
    }
    finish(lines, problems)
}

/// How a (GTIN, lot) compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiffState {
    /// The ERP has it; swt has no pack of it on hand at the site.
    OnlyInErp,
    /// swt has packs of it on hand; the ERP sent no line for it.
    OnlyInSwt,
    /// Both have a line, with other quantities.
    Differs,
}

impl DiffState {
    /// The code, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OnlyInErp => "only_in_erp",
            Self::OnlyInSwt => "only_in_swt",
            Self::Differs => "differs",
        }
    }
}

/// A (GTIN, lot) whose quantities differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Difference {
    /// GTIN-14.
    pub gtin: String,
    /// Lot; null for packs without one.
    pub lot: Option<String>,
    /// The ERP's quantity (0 without a line).
    pub erp_quantity: u64,
    /// Packs on hand in swt.
    pub swt_quantity: u64,
    /// `swt_quantity - erp_quantity`.
    pub difference: i64,
    /// Why it is listed.
    pub state: DiffState,
}

/// Counts of a reconciliation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconcileSummary {
    /// Lines the ERP sent.
    pub erp_lines: u64,
    /// (GTIN, lot) pairs with packs on hand in swt.
    pub swt_lines: u64,
    /// Pairs whose quantities agree (a line of 0 with nothing on hand agrees).
    pub matching: u64,
    /// Pairs on both sides with other quantities.
    pub differs: u64,
    /// Pairs only the ERP has.
    pub only_in_erp: u64,
    /// Pairs only swt has.
    pub only_in_swt: u64,
    /// Packs in the ERP's lines.
    pub erp_total: u64,
    /// Packs on hand in swt.
    pub swt_total: u64,
    /// `swt_total - erp_total`.
    pub difference: i64,
}

/// The difference between the ERP's stock and swt's at one site, at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReconcileReport {
    /// The site's id.
    pub site_id: String,
    /// The site's GLN.
    pub site_gln: String,
    /// The moment swt's side shows (RFC 3339, UTC, milliseconds).
    pub as_of: String,
    /// The statuses counted as on hand.
    pub on_hand_statuses: Vec<String>,
    /// Counts and totals.
    pub summary: ReconcileSummary,
    /// Every differing or one-sided pair, by GTIN and lot.
    pub lines: Vec<Difference>,
}

/// Packs on hand at a site per (GTIN, lot), summed over expiry, status and location.
async fn on_hand_by_lot<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    site_id: &str,
) -> Result<BTreeMap<(String, String), u64>, DbErr> {
    let rows: Vec<(String, String, i64)> = site_levels(org, site_id)
        .select_only()
        .column(stock_level::Column::Gtin)
        .column(stock_level::Column::Lot)
        .column_as(units_total(), "n")
        .group_by(stock_level::Column::Gtin)
        .group_by(stock_level::Column::Lot)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(g, l, n)| ((g, l), u64::try_from(n).unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect())
}

/// Compares the ERP's checked lines with swt's on-hand stock at `site` (id or GLN) of
/// `org`, read in one snapshot.
pub async fn reconcile(
    db: &DatabaseConnection,
    org: &str,
    site: &str,
    erp: &[ErpLine],
) -> Result<ReconcileReport, StockError> {
    let (txn, site, as_of) = begin(db, org, site).await?;
    let swt = on_hand_by_lot(&txn, org, &site.id).await?;
    txn.commit().await?;
    Ok(ReconcileReport {
        site_id: site.id,
        site_gln: site.gln,
        as_of: rfc3339(&as_of),
        on_hand_statuses: on_hand().into_iter().map(str::to_owned).collect(),
        ..compare(erp, &swt)
    })
}

/// The report's counts and lines (without the site and time).
pub fn compare(erp: &[ErpLine], swt: &BTreeMap<(String, String), u64>) -> ReconcileReport {
    let mut s = ReconcileSummary {
        erp_lines: erp.len() as u64,
        swt_lines: swt.len() as u64,
        swt_total: swt.values().sum(),
        ..ReconcileSummary::default()
    };
    let mut both: BTreeMap<(&str, &str), (Option<u64>, u64)> = BTreeMap::new();
    for l in erp {
        s.erp_total += l.quantity;
        both.insert((&l.gtin, &l.lot), (Some(l.quantity), 0));
    }
    for ((g, l), n) in swt {
        both.entry((g, l)).or_insert((None, 0)).1 = *n;
    }
    let mut lines = Vec::new();
    for ((gtin, lot), (erp_q, swt_q)) in both {
        let state = match erp_q {
            None => DiffState::OnlyInSwt,
            Some(e) if e == swt_q => {
                s.matching += 1;
                continue;
            }
            Some(_) if swt_q == 0 => DiffState::OnlyInErp,
            Some(_) => DiffState::Differs,
        };
        match state {
            DiffState::OnlyInErp => s.only_in_erp += 1,
            DiffState::OnlyInSwt => s.only_in_swt += 1,
            DiffState::Differs => s.differs += 1,
        }
        let erp_q = erp_q.unwrap_or(0);
        lines.push(Difference {
            gtin: gtin.to_owned(),
            lot: present(lot.to_owned()),
            erp_quantity: erp_q,
            swt_quantity: swt_q,
            difference: signed(swt_q) - signed(erp_q),
            state,
        });
    }
    s.difference = signed(s.swt_total) - signed(s.erp_total);
    ReconcileReport {
        site_id: String::new(),
        site_gln: String::new(),
        as_of: String::new(),
        on_hand_statuses: Vec::new(),
        summary: s,
        lines,
    }
}

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A report as CSV: one record per listed pair (the counts are in the JSON form and in
/// the response's headers).
pub fn report_csv(report: &ReconcileReport) -> Result<Vec<u8>, StockError> {
    let mut out = Vec::new();
    out.extend_from_slice(REPORT_COLUMNS.join(",").as_bytes());
    out.extend_from_slice(b"\r\n");
    for d in &report.lines {
        csv_record(
            &mut out,
            &[
                d.gtin.clone(),
                d.lot.clone().unwrap_or_default(),
                d.erp_quantity.to_string(),
                d.swt_quantity.to_string(),
                d.difference.to_string(),
                d.state.as_str().to_owned(),
            ],
        )?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: &str = "00361500231012";

    fn line(at: u64, lot: &str, quantity: u64) -> ErpLine {
        ErpLine {
            at: Where::Line(at),
            gtin: G.to_owned(),
            lot: lot.to_owned(),
            quantity,
        }
    }

    #[test]
    fn each_pair_gets_its_state() {
        let erp = [
            line(2, "A", 5),
            line(3, "B", 2),
            line(4, "C", 4),
            line(5, "Z", 0),
        ];
        let swt: BTreeMap<(String, String), u64> = [("A", 5), ("B", 3), ("D", 7)]
            .into_iter()
            .map(|(l, n)| ((G.to_owned(), l.to_owned()), n))
            .collect();
        let r = compare(&erp, &swt);
        let states: Vec<(&str, DiffState, i64)> = r
            .lines
            .iter()
            .map(|d| (d.lot.as_deref().unwrap_or(""), d.state, d.difference))
            .collect();
        assert_eq!(
            states,
            [
                ("B", DiffState::Differs, 1),
                ("C", DiffState::OnlyInErp, -4),
                ("D", DiffState::OnlyInSwt, 7)
            ]
        );
        // A and the ERP's zero line of Z agree.
        assert_eq!(r.summary.matching, 2);
        assert_eq!((r.summary.erp_total, r.summary.swt_total), (11, 15));
        assert_eq!(r.summary.difference, 4);
    }

    #[test]
    fn bad_csv_lines_are_named_by_number() {
        let body = format!(
            "gtin,lot,quantity\n{G},A,1\n00361500231013,B,1\n{G},C,-2\n{G},D,1.5\n{G},A,3\n"
        );
        let Err(StockError::Invalid(p)) = read_csv(body.as_bytes()) else {
            panic!("refused");
        };
        let at: Vec<Where> = p.iter().map(|p| p.at).collect();
        assert_eq!(
            at,
            [
                Where::Line(3),
                Where::Line(4),
                Where::Line(5),
                Where::Line(6)
            ]
        );
        assert!(p[3].message.contains("line 2"), "{p:?}");
    }

    #[test]
    fn json_lines_are_checked_one_by_one() {
        let body = serde_json::json!({"lines": [
            {"gtin": G, "lot": "A", "quantity": 1},
            {"gtin": G, "lot": "B", "quantity": -1},
            {"gtin": G, "lot": "C"},
            {"gtin": G, "lot": "D", "quantity": 2, "colour": "red"},
            {"gtin": "12345678", "lot": "E", "quantity": 1}
        ]});
        let Err(StockError::Invalid(p)) = read_json(body.to_string().as_bytes()) else {
            panic!("refused");
        };
        let at: Vec<Where> = p.iter().map(|p| p.at).collect();
        assert_eq!(
            at,
            [
                Where::Index(1),
                Where::Index(2),
                Where::Index(3),
                Where::Index(4)
            ]
        );
        let ok = read_json(br#"{"lines":[{"gtin":"00361500231012","quantity":0}]}"#);
        assert_eq!(ok.ok().map(|l| l.len()), Some(1));
    }
}
