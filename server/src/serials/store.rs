//! Reads and writes of manufacturer serials and lots. Bulk writes are multi-row
//! `INSERT … ON CONFLICT DO UPDATE` statements (the same SQL on SQLite and PostgreSQL),
//! since a million rows one statement each would take minutes.

use std::collections::HashMap;

use sea_orm::TransactionSession;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Statement, TransactionTrait, Value,
};
use serde::{Deserialize, Serialize};
use swt_domain::gs1::Gtin;
use utoipa::ToSchema;

use super::{SerialStatus, SerialsError, expiry_date, now_ms};
use crate::db::entity::{verification_lot, verification_serial};
use crate::reference::Touched;

/// Rows per INSERT statement: 8 parameters each stays under SQLite's 32,766 bound
/// parameters and PostgreSQL's 65,535, and is large enough that per-statement cost
/// vanishes.
pub const ROWS_PER_STATEMENT: usize = 2000;

/// One serial to write, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialRow {
    /// GTIN-14.
    pub gtin: String,
    /// Serial (AI 21).
    pub serial: String,
    /// Lot (AI 10).
    pub lot: String,
    /// Expiry `YYMMDD`.
    pub expiry: String,
    /// The status to set; `None` leaves a held serial's status as it is (new ones start
    /// `active`), so that re-importing a commissioning file does not clear a suspect or
    /// decommissioned mark made since.
    pub status: Option<SerialStatus>,
}

/// Inserts or updates serials of `org` (the last row wins when a key repeats), all with
/// the given `source`. Returns the number of distinct serials written.
pub async fn upsert_serials<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    rows: Vec<SerialRow>,
    source: &str,
    now: i64,
) -> Result<u64, DbErr> {
    // PostgreSQL refuses to update one row twice in a statement, so keys are made unique
    // here; the last occurrence wins, as it would row by row.
    let mut index: HashMap<(String, String), usize> = HashMap::with_capacity(rows.len());
    let mut unique: Vec<SerialRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match index.get(&(row.gtin.clone(), row.serial.clone())) {
            Some(&i) => {
                if let Some(slot) = unique.get_mut(i) {
                    *slot = row;
                }
            }
            None => {
                index.insert((row.gtin.clone(), row.serial.clone()), unique.len());
                unique.push(row);
            }
        }
    }
    let written = unique.len() as u64;
    let (with_status, without): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|r| r.status.is_some());
    // Only an explicit status can change what scanners block (new rows without one are
    // active, held rows keep theirs).
    let status_keys: Vec<(String, String)> = with_status
        .iter()
        .map(|r| (r.gtin.clone(), r.serial.clone()))
        .collect();
    for (group, set_status) in [(with_status, true), (without, false)] {
        let on_conflict = if set_status {
            OnConflict::UpdateWithStatus
        } else {
            OnConflict::Update
        };
        write_rows(conn, org, group, source, now, on_conflict).await?;
    }
    crate::reference::touched(conn, org, Touched::Serials(&status_keys)).await?;
    Ok(written)
}

/// Inserts the serials that are not held yet and leaves held ones exactly as they are
/// (the demo seed: running it again must not undo what a user changed since). Returns
/// how many were new.
pub async fn insert_new_serials<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    rows: Vec<SerialRow>,
    source: &str,
    now: i64,
) -> Result<u64, DbErr> {
    write_rows(conn, org, rows, source, now, OnConflict::Keep).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    Keep,
    Update,
    UpdateWithStatus,
}

async fn write_rows<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    rows: Vec<SerialRow>,
    source: &str,
    now: i64,
    on_conflict: OnConflict,
) -> Result<u64, DbErr> {
    let policy = crate::db::Policy::of(conn);
    let mut affected = 0;
    {
        let mut group = rows.into_iter().peekable();
        while group.peek().is_some() {
            let chunk: Vec<SerialRow> = group.by_ref().take(ROWS_PER_STATEMENT).collect();
            let sql = upsert_sql(policy, chunk.len(), on_conflict);
            let mut values = Vec::with_capacity(chunk.len() * 8);
            for r in chunk {
                let status = r.status.unwrap_or(SerialStatus::Active).as_str();
                values.extend([
                    Value::from(org),
                    Value::from(r.gtin),
                    Value::from(r.serial),
                    Value::from(r.lot),
                    Value::from(r.expiry),
                    Value::from(status),
                    Value::from(source),
                    Value::from(now),
                ]);
            }
            affected += conn
                .execute_raw(Statement::from_sql_and_values(
                    policy.backend(),
                    sql,
                    values,
                ))
                .await?
                .rows_affected();
        }
    }
    Ok(affected)
}

fn upsert_sql(policy: crate::db::Policy, rows: usize, on_conflict: OnConflict) -> String {
    let action = match on_conflict {
        OnConflict::Keep => "DO NOTHING",
        OnConflict::Update => {
            "DO UPDATE SET lot = excluded.lot, expiry = excluded.expiry, \
             source = excluded.source, updated_at_ms = excluded.updated_at_ms"
        }
        OnConflict::UpdateWithStatus => {
            "DO UPDATE SET lot = excluded.lot, expiry = excluded.expiry, \
             status = excluded.status, source = excluded.source, \
             updated_at_ms = excluded.updated_at_ms"
        }
    };
    format!(
        "INSERT INTO verification_serial \
         (organisation_id, gtin, serial, lot, expiry, status, source, updated_at_ms) VALUES {} \
         ON CONFLICT (organisation_id, gtin, serial) {action}",
        policy.placeholders(rows, 8)
    )
}

/// Makes sure a lot row exists for each (GTIN, lot), leaving existing ones (a recall, an
/// extension) untouched. Returns how many were new.
pub async fn ensure_lots<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    lots: &[(String, String)],
    now: i64,
) -> Result<u64, DbErr> {
    let policy = crate::db::Policy::of(conn);
    let mut new = 0;
    for chunk in lots.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO verification_lot \
             (organisation_id, gtin, lot, recalled, expiry_extended_to, updated_at_ms) VALUES {} \
             ON CONFLICT (organisation_id, gtin, lot) DO NOTHING",
            policy.placeholders(chunk.len(), 6)
        );
        let mut values = Vec::with_capacity(chunk.len() * 6);
        for (gtin, lot) in chunk {
            values.extend([
                Value::from(org),
                Value::from(gtin.as_str()),
                Value::from(lot.as_str()),
                Value::from(false),
                Value::String(None),
                Value::from(now),
            ]);
        }
        new += conn
            .execute_raw(Statement::from_sql_and_values(
                policy.backend(),
                sql,
                values,
            ))
            .await?
            .rows_affected();
    }
    Ok(new)
}

/// Marks held serials decommissioned; returns how many were held (the others are
/// unknown to us and stay so).
pub async fn decommission<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gtin: &str,
    serials: &[String],
    source: &str,
    now: i64,
) -> Result<u64, DbErr> {
    let mut updated = 0;
    for chunk in serials.chunks(500) {
        updated += verification_serial::Entity::update_many()
            .col_expr(
                verification_serial::Column::Status,
                Expr::value(SerialStatus::Decommissioned.as_str()),
            )
            .col_expr(verification_serial::Column::Source, Expr::value(source))
            .col_expr(verification_serial::Column::UpdatedAtMs, Expr::value(now))
            .filter(verification_serial::Column::OrganisationId.eq(org))
            .filter(verification_serial::Column::Gtin.eq(gtin))
            .filter(verification_serial::Column::Serial.is_in(chunk.iter().map(String::as_str)))
            .exec(conn)
            .await?
            .rows_affected;
    }
    let keys: Vec<(String, String)> = serials
        .iter()
        .map(|s| (gtin.to_owned(), s.clone()))
        .collect();
    crate::reference::touched(conn, org, Touched::Serials(&keys)).await?;
    Ok(updated)
}

/// A held serial as managers see it, with the facts of its lot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SerialView {
    /// GTIN-14.
    pub gtin: String,
    /// Serial.
    pub serial: String,
    /// Lot it was commissioned in.
    pub lot: String,
    /// Expiry as printed, `YYMMDD` (day `00` = end of month).
    pub expiry: String,
    /// The same as an ISO date.
    pub expiry_date: Option<String>,
    /// `active`, `decommissioned`, `suspect` or `illegitimate`.
    pub status: SerialStatus,
    /// Where the row came from: `csv:<file>`, `epcis:<eventID>`, `api:<user>`, `cli`.
    pub source: String,
    /// Last change, RFC 3339.
    pub updated_at: String,
    /// The lot is recalled.
    pub lot_recalled: bool,
    /// The lot's expiry as extended by FDA, `YYMMDD`.
    pub lot_expiry_extended_to: Option<String>,
}

/// A lot and what is held of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotView {
    /// GTIN-14.
    pub gtin: String,
    /// Lot.
    pub lot: String,
    /// Recalled by the manufacturer.
    pub recalled: bool,
    /// Expiry extended by FDA to this date, `YYMMDD`.
    pub expiry_extended_to: Option<String>,
    /// Serials held of the lot, by status.
    pub serials: LotCounts,
    /// Last change to the lot's facts, RFC 3339.
    pub updated_at: String,
}

/// Serials of a lot by status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LotCounts {
    /// All held serials of the lot.
    pub total: u64,
    /// Active.
    pub active: u64,
    /// Decommissioned.
    pub decommissioned: u64,
    /// Suspect.
    pub suspect: u64,
    /// Illegitimate.
    pub illegitimate: u64,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// One held serial of `org`.
pub async fn serial<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gtin: &Gtin,
    serial: &str,
) -> Result<SerialView, SerialsError> {
    let row = verification_serial::Entity::find_by_id((
        org.to_owned(),
        gtin.as_str().to_owned(),
        serial.to_owned(),
    ))
    .one(conn)
    .await?
    .ok_or_else(|| SerialsError::NotFound(format!("serial {serial} of GTIN {gtin}")))?;
    let lot =
        verification_lot::Entity::find_by_id((org.to_owned(), row.gtin.clone(), row.lot.clone()))
            .one(conn)
            .await?;
    Ok(SerialView {
        expiry_date: expiry_date(&row.expiry).map(|d| d.to_iso8601()),
        status: row.status.parse().unwrap_or(SerialStatus::Active),
        updated_at: rfc3339(row.updated_at_ms),
        lot_recalled: lot.as_ref().is_some_and(|l| l.recalled),
        lot_expiry_extended_to: lot.and_then(|l| l.expiry_extended_to),
        gtin: row.gtin,
        serial: row.serial,
        lot: row.lot,
        expiry: row.expiry,
        source: row.source,
    })
}

/// Sets one held serial's status.
pub async fn set_status<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    org: &str,
    gtin: &Gtin,
    serial_no: &str,
    status: SerialStatus,
    source: &str,
) -> Result<SerialView, SerialsError> {
    let txn = conn.begin().await?;
    let res = verification_serial::Entity::update_many()
        .col_expr(
            verification_serial::Column::Status,
            Expr::value(status.as_str()),
        )
        .col_expr(verification_serial::Column::Source, Expr::value(source))
        .col_expr(
            verification_serial::Column::UpdatedAtMs,
            Expr::value(now_ms()),
        )
        .filter(verification_serial::Column::OrganisationId.eq(org))
        .filter(verification_serial::Column::Gtin.eq(gtin.as_str()))
        .filter(verification_serial::Column::Serial.eq(serial_no))
        .exec(&txn)
        .await?;
    if res.rows_affected == 0 {
        return Err(SerialsError::NotFound(format!(
            "serial {serial_no} of GTIN {gtin}"
        )));
    }
    let key = [(gtin.as_str().to_owned(), serial_no.to_owned())];
    crate::reference::touched(&txn, org, Touched::Serials(&key)).await?;
    txn.commit().await?;
    serial(conn, org, gtin, serial_no).await
}

/// A lot of `org`: its facts and counts of held serials.
pub async fn lot<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gtin: &Gtin,
    lot: &str,
) -> Result<LotView, SerialsError> {
    let row = verification_lot::Entity::find_by_id((
        org.to_owned(),
        gtin.as_str().to_owned(),
        lot.to_owned(),
    ))
    .one(conn)
    .await?
    .ok_or_else(|| SerialsError::NotFound(format!("lot {lot} of GTIN {gtin}")))?;
    let by_status: Vec<(String, i64)> = verification_serial::Entity::find()
        .select_only()
        .column(verification_serial::Column::Status)
        .column_as(verification_serial::Column::Serial.count(), "n")
        .filter(verification_serial::Column::OrganisationId.eq(org))
        .filter(verification_serial::Column::Gtin.eq(gtin.as_str()))
        .filter(verification_serial::Column::Lot.eq(lot))
        .group_by(verification_serial::Column::Status)
        .into_tuple()
        .all(conn)
        .await?;
    let mut counts = LotCounts::default();
    for (status, n) in by_status {
        let n = u64::try_from(n).unwrap_or(0);
        counts.total += n;
        match status.parse() {
            Ok(SerialStatus::Active) => counts.active += n,
            Ok(SerialStatus::Decommissioned) => counts.decommissioned += n,
            Ok(SerialStatus::Suspect) => counts.suspect += n,
            Ok(SerialStatus::Illegitimate) => counts.illegitimate += n,
            Err(_) => {}
        }
    }
    Ok(LotView {
        gtin: row.gtin,
        lot: row.lot,
        recalled: row.recalled,
        expiry_extended_to: row.expiry_extended_to,
        serials: counts,
        updated_at: rfc3339(row.updated_at_ms),
    })
}

/// The lot row, created when serials of the lot are held but the row is missing (rows
/// written by other means than swt's imports). `NotFound` when nothing of it is held.
async fn lot_row<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gtin: &Gtin,
    lot: &str,
) -> Result<verification_lot::Model, SerialsError> {
    let key = (org.to_owned(), gtin.as_str().to_owned(), lot.to_owned());
    if let Some(row) = verification_lot::Entity::find_by_id(key.clone())
        .one(conn)
        .await?
    {
        return Ok(row);
    }
    let held = verification_serial::Entity::find()
        .filter(verification_serial::Column::OrganisationId.eq(org))
        .filter(verification_serial::Column::Gtin.eq(gtin.as_str()))
        .filter(verification_serial::Column::Lot.eq(lot))
        .count(conn)
        .await?;
    if held == 0 {
        return Err(SerialsError::NotFound(format!("lot {lot} of GTIN {gtin}")));
    }
    ensure_lots(conn, org, &[(key.1.clone(), key.2.clone())], now_ms()).await?;
    verification_lot::Entity::find_by_id(key)
        .one(conn)
        .await?
        .ok_or_else(|| SerialsError::NotFound(format!("lot {lot} of GTIN {gtin}")))
}

/// Marks a lot recalled (or, with `recalled = false`, withdraws a recall entered by
/// mistake).
pub async fn set_recalled<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    org: &str,
    gtin: &Gtin,
    lot_no: &str,
    recalled: bool,
) -> Result<LotView, SerialsError> {
    let txn = conn.begin().await?;
    let row = lot_row(&txn, org, gtin, lot_no).await?;
    let key = [(row.gtin.clone(), row.lot.clone())];
    verification_lot::Entity::update(verification_lot::ActiveModel {
        organisation_id: Set(row.organisation_id),
        gtin: Set(row.gtin),
        lot: Set(row.lot),
        recalled: Set(recalled),
        updated_at_ms: Set(now_ms()),
        ..Default::default()
    })
    .exec(&txn)
    .await?;
    crate::reference::touched(&txn, org, Touched::Lots(&key)).await?;
    txn.commit().await?;
    lot(conn, org, gtin, lot_no).await
}

/// Records an FDA expiry extension for a whole lot (`YYMMDD`; `None` removes it). The
/// new date must be later than every expiry printed on the lot's held packs: an
/// "extension" to an earlier date is a typing error.
pub async fn set_expiry_extension<C: ConnectionTrait + TransactionTrait>(
    conn: &C,
    org: &str,
    gtin: &Gtin,
    lot_no: &str,
    extended_to: Option<&str>,
) -> Result<LotView, SerialsError> {
    let row = lot_row(conn, org, gtin, lot_no).await?;
    if let Some(ext) = extended_to {
        let new = expiry_date(ext)
            .ok_or_else(|| SerialsError::Invalid(format!("expiry {ext:?} is not a date")))?;
        let printed: Vec<String> = verification_serial::Entity::find()
            .select_only()
            .column(verification_serial::Column::Expiry)
            .distinct()
            .filter(verification_serial::Column::OrganisationId.eq(org))
            .filter(verification_serial::Column::Gtin.eq(gtin.as_str()))
            .filter(verification_serial::Column::Lot.eq(lot_no))
            .into_tuple()
            .all(conn)
            .await?;
        if let Some(latest) = printed.iter().filter_map(|e| expiry_date(e)).max()
            && new <= latest
        {
            return Err(SerialsError::Invalid(format!(
                "the extension {} is not later than the lot's printed expiry {}",
                new.to_iso8601(),
                latest.to_iso8601()
            )));
        }
    }
    verification_lot::Entity::update(verification_lot::ActiveModel {
        organisation_id: Set(row.organisation_id),
        gtin: Set(row.gtin),
        lot: Set(row.lot),
        expiry_extended_to: Set(extended_to.map(str::to_owned)),
        updated_at_ms: Set(now_ms()),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    lot(conn, org, gtin, lot_no).await
}
