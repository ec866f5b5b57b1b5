//! Database side of projecting a chunk of scans: markers, locks, events, state,
//! exceptions, all in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Statement, TransactionTrait, TryInsertResult, Value,
};
use swt_domain::doc::Issue;
use swt_domain::model::{Scan, ScanId};
use swt_domain::rules::{Judgement, Reason, Verdict};

use super::map::{self, Context, ExceptionKind, NewException, Plan, Rejection, UnitStatus};
use super::{ProjectionError, ProjectionOutcome, write_txn_options};
use crate::db::Policy;
use crate::db::entity::{
    epcis_event_epc, projected_scan, trace_exception, trace_exception_scan, trace_object,
    verification_serial,
};
use crate::epcis::{EpcisEvent, EventType, UnitKey};

/// What one scan's projection wrote.
#[derive(Default)]
pub(crate) struct Done {
    pub events: usize,
    pub exceptions: usize,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Projects a chunk of scans (each with whether it is voided) in one transaction. Per
/// scan: what it wrote, or `None` if another run owns or finished it.
/// `fault`: fail before commit (crash simulation), carrying the count for the error.
pub(crate) async fn project_chunk(
    db: &DatabaseConnection,
    ctx: &Context,
    scans: &[(&Scan, bool)],
    skewed: &BTreeMap<ScanId, u64>,
    judged: &BTreeMap<ScanId, Judgement>,
    fault: Option<usize>,
) -> Result<Vec<Option<Done>>, ProjectionError> {
    let _turn = crate::db::Policy::of(db)
        .write_turn(crate::db::Writer::Background)
        .await;
    let txn = db.begin_with_options(write_txn_options()).await?;
    let out = project_in(&txn, ctx, scans, skewed, judged, now_ms()).await?;
    if let Some(n) = fault {
        // Dropping the transaction rolls it back, as a crash before COMMIT would.
        drop(txn);
        return Err(ProjectionError::Injected(n));
    }
    txn.commit().await?;
    Ok(out)
}

/// What a scan is before the database is asked anything.
enum Prepared {
    Voided,
    /// Not projectable: why (the scanner's refusal, or what the mapping could not read).
    Rejected(Issue),
    /// The subject and the parent container the scan names.
    Subject(UnitKey, Option<UnitKey>),
}

/// The chunk's work, in statements per chunk rather than per scan: markers claimed in one
/// insert, the objects the chunk names created or locked in one pass, each scan planned
/// in order against that state in memory, then events and changed state written in bulk.
/// Container moves and inferred contents reach beyond the chunk's objects: for those the
/// state is written out first and read back after, so the database stays the truth.
async fn project_in(
    txn: &DatabaseTransaction,
    ctx: &Context,
    scans: &[(&Scan, bool)],
    skewed: &BTreeMap<ScanId, u64>,
    judged: &BTreeMap<ScanId, Judgement>,
    now: i64,
) -> Result<Vec<Option<Done>>, ProjectionError> {
    let prepared: Vec<Prepared> = scans
        .iter()
        .map(|(scan, voided)| {
            if *voided {
                return Prepared::Voided;
            }
            // The picker was told no: nothing moved, nothing to project. The marker
            // keeps the scanner's reason.
            if judged
                .get(&scan.id)
                .is_some_and(|j| j.device == Verdict::Reject)
                && let Some(reason) = Reason::from_feedback(scan.feedback)
            {
                return Prepared::Rejected(Issue::Refused(reason));
            }
            match map::subject(scan) {
                Ok((key, parent)) => Prepared::Subject(key, parent),
                Err(code) => Prepared::Rejected(code.into()),
            }
        })
        .collect();
    // The markers are the claim (see the module docs); a voided or unprojectable scan's
    // marker carries its final outcome at once.
    let markers = scans.iter().zip(&prepared).map(|((scan, voided), p)| {
        let (code, codes) = match p {
            Prepared::Voided => (ProjectionOutcome::Voided, ""),
            Prepared::Rejected(why) => (ProjectionOutcome::Rejected, why.as_str()),
            Prepared::Subject(..) => (ProjectionOutcome::Projected, ""),
        };
        Marker {
            scan_id: scan.id.to_string(),
            outcome: code,
            exceptions: codes,
            void_seen: *voided,
        }
    });
    let claimed = claim(txn, ctx, markers.collect(), now).await?;

    let mut objects = Objects::default();
    let keys: BTreeMap<String, &UnitKey> = scans
        .iter()
        .zip(&prepared)
        .filter(|((scan, _), _)| claimed.contains(scan.id.as_str()))
        .filter_map(|(_, p)| match p {
            Prepared::Subject(k, parent) => Some(std::iter::once(k).chain(parent.as_ref())),
            _ => None,
        })
        .flatten()
        .map(|k| (k.key(), k))
        .collect();
    objects.load(txn, &ctx.org, &keys, now).await?;
    let manufactured = manufactured(txn, &ctx.org, keys.values().copied()).await?;

    let mut out = Vec::with_capacity(scans.len());
    let mut held: Vec<(String, String)> = Vec::new();
    let mut events = EventBatch::default();
    let mut rejected: Vec<(String, Rejection)> = Vec::new();
    let mut activity: BTreeMap<i64, i64> = BTreeMap::new();
    let mut quarantined: Vec<crate::outbox::Outcome> = Vec::new();
    for ((scan, _), p) in scans.iter().zip(&prepared) {
        if !claimed.contains(scan.id.as_str()) {
            out.push(None);
            continue;
        }
        let Prepared::Subject(key, parent) = p else {
            out.push(Some(Done::default()));
            continue;
        };
        let current = objects.get(txn, &ctx.org, key, now).await?;
        let parent_state = match parent {
            Some(pk) if pk != key => Some(objects.get(txn, &ctx.org, pk, now).await?),
            _ => None,
        };
        let mut plan = map::plan(
            ctx,
            scan,
            key,
            parent.as_ref(),
            &current,
            parent_state.as_ref(),
            manufactured.get(&key.key()),
            now,
        );
        if let Some(j) = judged.get(&scan.id).filter(|j| j.overturned()) {
            plan.exceptions.push(NewException {
                kind: ExceptionKind::VerdictOverturned,
                epc_key: key.key(),
                other_scans: Vec::new(),
                detail: serde_json::json!({
                    "reason": j.outcome.reason.code(),
                    "message": j.outcome.message,
                    "device_verdict": j.device.as_str(),
                    "device_reason": Reason::from_feedback(scan.feedback).map_or("warning", Reason::code),
                }),
            });
        }
        if let Some(code) = plan.rejection {
            // Nothing of a rejected scan is kept: objects only it created are removed at
            // the end, and its marker says why.
            rejected.push((scan.id.to_string(), code));
            out.push(Some(Done::default()));
            continue;
        }
        objects.used(key.key());
        *activity.entry(hour_of(scan.device_time_ms)).or_default() += 1;
        if let Some(pk) = parent {
            objects.used(pk.key());
        }
        let scan_id = scan.id.to_string();
        let origin = Origin {
            time_ms: i64::try_from(scan.device_time_ms).unwrap_or(i64::MAX),
            location: scan.location.as_deref(),
            scan_id: &scan_id,
            user: &scan.user,
            device: &scan.device,
        };
        events.push(ctx, &origin, &plan.events, now)?;
        let mut done = Done {
            events: plan.events.len(),
            exceptions: 0,
        };
        if let Some(next) = &plan.subject
            && *next != current
        {
            if next.status.is_held() != current.status.is_held()
                && let UnitKey::Sgtin { gtin, serial } = key
            {
                held.push((gtin.clone(), serial.clone()));
            }
            if next.status == UnitStatus::Quarantined && current.status != UnitStatus::Quarantined {
                quarantined.push(quarantine_outcome(
                    ctx,
                    next,
                    scan.id.as_str(),
                    "quarantine_scan",
                ));
            }
            objects.set(next.clone());
        }
        if let Some(p) = &plan.parent {
            objects.set(p.clone());
        }
        // Only a container's move reaches beyond the chunk's objects: a loose pack has
        // nothing inside it to carry along.
        let moves_contents = plan.propagate.is_some() && objects.may_hold(&key.key());
        if moves_contents || !plan.inferred.is_empty() {
            objects.flush(txn, &ctx.org).await?;
            let mut touched = Vec::new();
            if moves_contents && let (Some(prop), Some(next)) = (&plan.propagate, &plan.subject) {
                touched = propagate(txn, ctx, &next.epc_key, prop, now).await?;
                // Holding or releasing a container holds or releases what is inside.
                if prop.status.is_some_and(UnitStatus::is_held) || current.status.is_held() {
                    held.extend(
                        touched
                            .iter()
                            .filter_map(|k| match UnitKey::parse(k).ok()? {
                                UnitKey::Sgtin { gtin, serial } => Some((gtin, serial)),
                                UnitKey::Sscc(_) => None,
                            }),
                    );
                }
            }
            let mut holders = BTreeSet::new();
            for (child, parent) in &plan.inferred {
                objects.used(child.clone());
                if infer_child(txn, ctx, child, parent, &plan, now).await? {
                    holders.insert(parent.clone());
                }
                touched.push(child.clone());
            }
            touched.extend(holders.iter().cloned());
            mark_holders(txn, &ctx.org, holders.into_iter().collect()).await?;
            objects.reload(txn, &ctx.org, touched).await?;
        }
        // Exception codes are not copied into the marker: reports read open exceptions
        // by scan, so resolving one clears it from the scanners' results too.
        for e in &plan.exceptions {
            if open_exception(txn, ctx, scan.id.as_str(), e, now).await? {
                done.exceptions += 1;
            }
        }
        if let Some(device_ms) = skewed.get(&scan.id) {
            let e = NewException {
                kind: ExceptionKind::DeviceClockSkew,
                epc_key: key.key(),
                other_scans: Vec::new(),
                detail: serde_json::json!({
                    "device": scan.device,
                    "device_time_ms": device_ms,
                    "event_time_ms": scan.device_time_ms,
                }),
            };
            if open_exception(txn, ctx, scan.id.as_str(), &e, now).await? {
                done.exceptions += 1;
            }
        }
        out.push(Some(done));
    }
    events.flush(txn, &ctx.org).await?;
    objects.flush(txn, &ctx.org).await?;
    objects.drop_unused_created(txn, &ctx.org).await?;
    count_activity(txn, ctx, &activity).await?;
    crate::outbox::record(txn, &ctx.org, quarantined, now).await?;
    if !held.is_empty() {
        crate::reference::touched(txn, &ctx.org, crate::reference::Touched::Held(&held)).await?;
    }
    for (scan_id, code) in rejected {
        projected_scan::Entity::update_many()
            .col_expr(
                projected_scan::Column::Outcome,
                Expr::value(ProjectionOutcome::Rejected),
            )
            .col_expr(
                projected_scan::Column::Exceptions,
                Expr::value(code.as_str()),
            )
            .filter(projected_scan::Column::OrganisationId.eq(ctx.org.clone()))
            .filter(projected_scan::Column::ScanId.eq(scan_id))
            .exec(txn)
            .await?;
    }
    Ok(out)
}

/// `pack.quarantined` for a pack or container put in quarantine by `scan_id`, for `cause`
/// (`quarantine_scan`, `return_not_verified`). What is inside a container follows it,
/// as its trace shows.
pub(crate) fn quarantine_outcome(
    ctx: &Context,
    object: &trace_object::Model,
    scan_id: &str,
    cause: &str,
) -> crate::outbox::Outcome {
    crate::outbox::Outcome {
        kind: crate::outbox::OutcomeKind::PackQuarantined,
        stream: ctx.doc_id.clone(),
        data: serde_json::json!({
            "object": object.epc_key,
            "gtin": object.gtin,
            "serial": object.serial,
            "sscc": object.sscc,
            "lot": object.lot,
            "expiry": object.expiry,
            "site_id": ctx.site_id,
            "location": object.location,
            "task_id": ctx.doc_id,
            "scan_id": scan_id,
            "cause": cause,
        }),
    }
}

const HOUR_MS: i64 = 3_600_000;

/// The start of the hour (UTC) a device time falls in.
fn hour_of(ms: u64) -> i64 {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

/// Adds the chunk's projected scans to `scan_activity`, by hour: one statement, usually
/// one row (a chunk is a few seconds of one document), in the chunk's transaction so the
/// counts are exact like the events.
async fn count_activity(
    txn: &DatabaseTransaction,
    ctx: &Context,
    hours: &BTreeMap<i64, i64>,
) -> Result<(), DbErr> {
    if hours.is_empty() {
        return Ok(());
    }
    let policy = Policy::of(txn);
    let mut values = Vec::with_capacity(hours.len() * 5);
    for (hour, n) in hours {
        values.extend([
            Value::from(ctx.org.as_str()),
            Value::from(ctx.site_id.as_str()),
            Value::from(ctx.kind.as_str()),
            Value::from(*hour),
            Value::from(*n),
        ]);
    }
    let sql = insert_sql(
        policy,
        "scan_activity",
        "organisation_id, site_id, kind, hour_ms, scans",
        hours.len(),
        5,
        "ON CONFLICT (organisation_id, hour_ms, site_id, kind) \
         DO UPDATE SET scans = scan_activity.scans + excluded.scans",
    );
    let backend = policy.backend();
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    Ok(())
}

/// The manufacturer's imported data (lot, expiry) for the serialized objects of a chunk,
/// by object key: one statement per [`ROWS_PER_STATEMENT`] objects.
async fn manufactured<'a>(
    txn: &DatabaseTransaction,
    org: &str,
    keys: impl Iterator<Item = &'a UnitKey>,
) -> Result<HashMap<String, verification_serial::Model>, DbErr> {
    let wanted: HashSet<(&str, &str)> = keys
        .filter_map(|k| match k {
            UnitKey::Sgtin { gtin, serial } => Some((gtin.as_str(), serial.as_str())),
            UnitKey::Sscc(_) => None,
        })
        .collect();
    let list: Vec<(&str, &str)> = wanted.iter().copied().collect();
    let mut out = HashMap::new();
    for chunk in list.chunks(ROWS_PER_STATEMENT) {
        let gtins: BTreeSet<&str> = chunk.iter().map(|(g, _)| *g).collect();
        let serials: BTreeSet<&str> = chunk.iter().map(|(_, s)| *s).collect();
        let rows = verification_serial::Entity::find()
            .filter(verification_serial::Column::OrganisationId.eq(org))
            .filter(verification_serial::Column::Gtin.is_in(gtins))
            .filter(verification_serial::Column::Serial.is_in(serials))
            .all(txn)
            .await?;
        for r in rows {
            // The two IN lists also match pairs nobody asked for.
            if wanted.contains(&(r.gtin.as_str(), r.serial.as_str()))
                && let Ok(k) = UnitKey::sgtin(&r.gtin, &r.serial)
            {
                out.insert(k.key(), r);
            }
        }
    }
    Ok(out)
}

/// Rows per multi-row statement: far below both back-ends' bound-parameter limits
/// (PostgreSQL 65,535; SQLite 32,766) at up to 19 columns a row.
const ROWS_PER_STATEMENT: usize = 500;

/// A marker to claim: the `projected_scan` row of a scan.
struct Marker<'a> {
    scan_id: String,
    outcome: ProjectionOutcome,
    exceptions: &'a str,
    void_seen: bool,
}

/// Inserts the markers; returns the scan ids this transaction claimed.
///
/// PostgreSQL: the rows `ON CONFLICT DO NOTHING … RETURNING` gives back. SQLite: the
/// transaction holds the only write lock, so the claimed ones are those without a marker
/// just before the insert; asking that costs no row in the usual case, where `RETURNING`
/// cost one row handed over from the driver's thread per scan.
async fn claim(
    txn: &DatabaseTransaction,
    ctx: &Context,
    markers: Vec<Marker<'_>>,
    now: i64,
) -> Result<HashSet<String>, DbErr> {
    let policy = Policy::of(txn);
    let backend = policy.backend();
    let mut claimed = HashSet::with_capacity(markers.len());
    for batch in markers.chunks(ROWS_PER_STATEMENT) {
        let mut values = Vec::with_capacity(batch.len() * 7);
        for m in batch {
            values.extend([
                Value::from(ctx.org.as_str()),
                Value::from(m.scan_id.as_str()),
                Value::from(ctx.doc_id.as_str()),
                Value::from(m.outcome),
                Value::from(m.exceptions),
                Value::from(m.void_seen),
                Value::from(now),
            ]);
        }
        let columns = "organisation_id, scan_id, document_id, outcome, exceptions, void_seen, projected_at_ms";
        let conflict = "ON CONFLICT (organisation_id, scan_id) DO NOTHING";
        if !policy.single_writer() {
            let sql = insert_sql(
                policy,
                "projected_scan",
                columns,
                batch.len(),
                7,
                &format!("{conflict} RETURNING scan_id"),
            );
            for row in txn
                .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?
            {
                claimed.insert(row.try_get::<String>("", "scan_id")?);
            }
            continue;
        }
        let taken: HashSet<String> = projected_scan::Entity::find()
            .select_only()
            .column(projected_scan::Column::ScanId)
            .filter(projected_scan::Column::OrganisationId.eq(ctx.org.as_str()))
            .filter(projected_scan::Column::ScanId.is_in(batch.iter().map(|m| m.scan_id.as_str())))
            .into_tuple::<String>()
            .all(txn)
            .await?
            .into_iter()
            .collect();
        let sql = insert_sql(policy, "projected_scan", columns, batch.len(), 7, conflict);
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        claimed.extend(
            batch
                .iter()
                .filter(|m| !taken.contains(&m.scan_id))
                .map(|m| m.scan_id.clone()),
        );
    }
    Ok(claimed)
}

/// The columns of a `trace_object` row as [`Objects::flush`] writes it.
const OBJECT_COLUMNS: &str = "organisation_id, epc_key, kind, gtin, serial, sscc, lot, expiry, \
     site_id, location, status, parent_key, order_ref, last_event_time_ms, last_scan_id, \
     updated_at_ms, holds";
const OBJECT_COLUMN_COUNT: usize = 17;
/// A row written again replaces the state, except `holds`: that flag only ever goes from
/// false to true, by [`mark_holders`].
const OBJECT_UPSERT: &str = "ON CONFLICT (organisation_id, epc_key) DO UPDATE SET \
     kind = excluded.kind, gtin = excluded.gtin, serial = excluded.serial, \
     sscc = excluded.sscc, lot = excluded.lot, expiry = excluded.expiry, \
     site_id = excluded.site_id, location = excluded.location, status = excluded.status, \
     parent_key = excluded.parent_key, order_ref = excluded.order_ref, \
     last_event_time_ms = excluded.last_event_time_ms, last_scan_id = excluded.last_scan_id, \
     updated_at_ms = excluded.updated_at_ms";

/// The state rows a chunk works on: created or locked up front, changed in memory,
/// written back in bulk.
#[derive(Default)]
struct Objects {
    rows: HashMap<String, trace_object::Model>,
    /// Changed since loaded or last written.
    dirty: BTreeSet<String>,
    /// Rows this chunk created.
    created: BTreeSet<String>,
    /// Rows a projected (not rejected) scan touched.
    used: HashSet<String>,
    /// Containers something was put in since the last write: they become holders.
    new_parents: BTreeSet<String>,
}

impl Objects {
    /// Creates the missing rows and locks the others, in key order so two chunks never
    /// wait on each other crosswise. On SQLite the missing rows are created in memory
    /// only, and written at the first flush.
    async fn load(
        &mut self,
        txn: &DatabaseTransaction,
        org: &str,
        keys: &BTreeMap<String, &UnitKey>,
        now: i64,
    ) -> Result<(), DbErr> {
        if crate::db::Policy::of(txn).single_writer() {
            // One writer holds the lock until commit: a missing row cannot appear, so
            // it is created in memory and written once, at the flush, in its final
            // state, instead of inserted here and then updated (with its index entries).
            self.read(txn, org, keys.keys().cloned().collect(), false)
                .await?;
            for (k, key) in keys {
                if !self.rows.contains_key(k) {
                    self.rows.insert(k.clone(), map::new_object(org, key, now));
                    self.created.insert(k.clone());
                    self.dirty.insert(k.clone());
                }
            }
            return Ok(());
        }
        let all: Vec<&UnitKey> = keys.values().copied().collect();
        for batch in all.chunks(ROWS_PER_STATEMENT) {
            let fresh: Vec<trace_object::Model> =
                batch.iter().map(|k| map::new_object(org, k, now)).collect();
            let mut q = trace_object::Entity::insert_many(
                fresh
                    .iter()
                    .cloned()
                    .map(IntoActiveModel::into_active_model),
            )
            .on_conflict(
                OnConflict::columns([
                    trace_object::Column::OrganisationId,
                    trace_object::Column::EpcKey,
                ])
                .do_nothing()
                .to_owned(),
            )
            .into_query();
            q.returning_col(trace_object::Column::EpcKey);
            let mut inserted = HashSet::new();
            for row in txn.query_all(&q).await? {
                inserted.insert(row.try_get::<String>("", "epc_key")?);
            }
            // A row this transaction inserted is exactly `fresh` and stays ours until
            // commit (locked on PostgreSQL, behind the write lock on SQLite).
            for row in fresh {
                if inserted.contains(&row.epc_key) {
                    self.created.insert(row.epc_key.clone());
                    self.rows.insert(row.epc_key.clone(), row);
                }
            }
        }
        let existing: Vec<String> = keys
            .keys()
            .filter(|k| !self.created.contains(*k))
            .cloned()
            .collect();
        self.read(txn, org, existing, true).await
    }

    /// Reads (and, if asked, on PostgreSQL locks) rows into the map.
    async fn read(
        &mut self,
        txn: &DatabaseTransaction,
        org: &str,
        keys: Vec<String>,
        lock: bool,
    ) -> Result<(), DbErr> {
        for batch in keys.chunks(ROWS_PER_STATEMENT) {
            let mut q = trace_object::Entity::find()
                .filter(trace_object::Column::OrganisationId.eq(org))
                .filter(trace_object::Column::EpcKey.is_in(batch.to_vec()))
                .order_by_asc(trace_object::Column::EpcKey);
            // Row locks exist only on PostgreSQL; SQLite's IMMEDIATE transaction already
            // serialises every writer.
            if lock && crate::db::Policy::of(txn).locks_rows() {
                q = q.lock_exclusive();
            }
            for row in q.all(txn).await? {
                self.rows.insert(row.epc_key.clone(), row);
            }
        }
        Ok(())
    }

    /// The current state of `key` (from the database if this chunk has not seen it).
    async fn get(
        &mut self,
        txn: &DatabaseTransaction,
        org: &str,
        key: &UnitKey,
        now: i64,
    ) -> Result<trace_object::Model, DbErr> {
        let k = key.key();
        if let Some(row) = self.rows.get(&k) {
            return Ok(row.clone());
        }
        let (row, new) = lock_object(txn, org, key, now).await?;
        if new {
            self.created.insert(k.clone());
        }
        self.rows.insert(k, row.clone());
        Ok(row)
    }

    fn set(&mut self, row: trace_object::Model) {
        if let Some(p) = &row.parent_key
            && self
                .rows
                .get(&row.epc_key)
                .and_then(|r| r.parent_key.as_ref())
                != Some(p)
        {
            self.new_parents.insert(p.clone());
        }
        self.dirty.insert(row.epc_key.clone());
        self.rows.insert(row.epc_key.clone(), row);
    }

    fn used(&mut self, key: String) {
        self.used.insert(key);
    }

    /// Writes the changed rows (all of organisation `org`, as is the whole chunk).
    async fn flush(&mut self, txn: &DatabaseTransaction, org: &str) -> Result<(), DbErr> {
        let policy = Policy::of(txn);
        let dirty: Vec<String> = std::mem::take(&mut self.dirty).into_iter().collect();
        for batch in dirty.chunks(ROWS_PER_STATEMENT) {
            let mut values = Vec::with_capacity(batch.len() * OBJECT_COLUMN_COUNT);
            let mut rows = 0;
            for r in batch.iter().filter_map(|k| self.rows.get(k)) {
                rows += 1;
                values.extend([
                    Value::from(r.organisation_id.as_str()),
                    Value::from(r.epc_key.as_str()),
                    Value::from(r.kind.as_str()),
                    Value::from(r.gtin.as_deref()),
                    Value::from(r.serial.as_deref()),
                    Value::from(r.sscc.as_deref()),
                    Value::from(r.lot.as_deref()),
                    Value::from(r.expiry.as_deref()),
                    Value::from(r.site_id.as_deref()),
                    Value::from(r.location.as_deref()),
                    Value::from(r.status),
                    Value::from(r.parent_key.as_deref()),
                    Value::from(r.order_ref.as_deref()),
                    Value::from(r.last_event_time_ms),
                    Value::from(r.last_scan_id.as_deref()),
                    Value::from(r.updated_at_ms),
                    Value::from(r.holds),
                ]);
            }
            if rows == 0 {
                continue;
            }
            let sql = insert_sql(
                policy,
                "trace_object",
                OBJECT_COLUMNS,
                rows,
                OBJECT_COLUMN_COUNT,
                OBJECT_UPSERT,
            );
            txn.execute_raw(Statement::from_sql_and_values(
                policy.backend(),
                sql,
                values,
            ))
            .await?;
        }
        // Containers given a child become holders (those the map knows as one already
        // are skipped); the map's copies are brought up to date.
        let parents: Vec<String> = std::mem::take(&mut self.new_parents)
            .into_iter()
            .filter(|p| !self.rows.get(p).is_some_and(|r| r.holds))
            .collect();
        mark_holders(txn, org, parents.clone()).await?;
        for p in parents {
            if let Some(r) = self.rows.get_mut(&p) {
                r.holds = true;
            }
        }
        Ok(())
    }

    /// Whether anything may be inside `key`: it is flagged a holder, or this chunk gave
    /// it a child not written yet.
    fn may_hold(&self, key: &str) -> bool {
        self.new_parents.contains(key) || self.rows.get(key).is_some_and(|r| r.holds)
    }

    /// Reads again the chunk's rows among `keys`, which writes around the map changed.
    async fn reload(
        &mut self,
        txn: &DatabaseTransaction,
        org: &str,
        keys: Vec<String>,
    ) -> Result<(), DbErr> {
        let mine: BTreeSet<String> = keys
            .into_iter()
            .filter(|k| self.rows.contains_key(k))
            .collect();
        self.read(txn, org, mine.into_iter().collect(), false).await
    }

    /// Deletes rows this chunk created that no projected scan used (only rejected scans
    /// named them).
    async fn drop_unused_created(
        &mut self,
        txn: &DatabaseTransaction,
        org: &str,
    ) -> Result<(), DbErr> {
        let unused: Vec<String> = self
            .created
            .iter()
            .filter(|k| !self.used.contains(*k))
            .cloned()
            .collect();
        for batch in unused.chunks(ROWS_PER_STATEMENT) {
            trace_object::Entity::delete_many()
                .filter(trace_object::Column::OrganisationId.eq(org))
                .filter(trace_object::Column::EpcKey.is_in(batch.to_vec()))
                .exec(txn)
                .await?;
        }
        Ok(())
    }
}

/// Makes sure the object's state row exists, then locks and reads it. Also says whether
/// this transaction created the row.
async fn lock_object(
    txn: &DatabaseTransaction,
    org: &str,
    key: &UnitKey,
    now: i64,
) -> Result<(trace_object::Model, bool), DbErr> {
    let fresh = map::new_object(org, key, now);
    let inserted = trace_object::Entity::insert(fresh.clone().into_active_model())
        .on_conflict_do_nothing_on([
            trace_object::Column::OrganisationId,
            trace_object::Column::EpcKey,
        ])
        .exec_without_returning(txn)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        // A row this transaction inserted is exactly `fresh` and stays ours until commit
        // (locked on PostgreSQL, behind the write lock on SQLite): no need to read it back.
        return Ok((fresh, true));
    }
    let mut q = trace_object::Entity::find()
        .filter(trace_object::Column::OrganisationId.eq(org))
        .filter(trace_object::Column::EpcKey.eq(key.key()));
    // Row locks exist only on PostgreSQL; SQLite's IMMEDIATE transaction already
    // serialises every writer.
    if crate::db::Policy::of(txn).locks_rows() {
        q = q.lock_exclusive();
    }
    Ok((q.one(txn).await?.unwrap_or(fresh), false))
}

/// Who and what an event row is attributed to.
pub(crate) struct Origin<'a> {
    /// Event time, UTC milliseconds.
    pub time_ms: i64,
    pub location: Option<&'a str>,
    pub scan_id: &'a str,
    pub user: &'a str,
    pub device: &'a str,
}

/// Stores events with their identifier rows (for history queries).
pub(crate) async fn write_event_rows(
    txn: &DatabaseTransaction,
    ctx: &Context,
    origin: &Origin<'_>,
    events: &[EpcisEvent],
    now: i64,
) -> Result<usize, ProjectionError> {
    let mut batch = EventBatch::default();
    batch.push(ctx, origin, events, now)?;
    batch.flush(txn, &ctx.org).await?;
    Ok(events.len())
}

/// An event row waiting to be written ([`EVENT_COLUMNS`], in order), with the identifiers
/// it names (roles `epc`, `parent`, `child`) for the history index.
struct PendingEvent {
    row: Vec<Value>,
    scan_id: String,
    event_id: String,
    time_ms: i64,
    epcs: Vec<(&'static str, String)>,
}

/// The columns of an `epcis_event` row as [`EventBatch`] writes it (`pk` is the
/// database's).
const EVENT_COLUMNS: &str = "organisation_id, event_id, event_type, action, biz_step, \
     disposition, event_time_ms, event_time_zone_offset, record_time_ms, site_id, location, \
     read_point, biz_location, document_id, scan_id, user_id, device_id, body";
const EVENT_COLUMN_COUNT: usize = 18;

/// `INSERT INTO table (columns) VALUES (…),(…) tail` for `rows` rows of `cols` values.
/// The projection's bulk writes are written by hand rather than built from active models:
/// building them with sea-query cloned every value twice and took more CPU than SQLite
/// took to execute them.
fn insert_sql(
    policy: Policy,
    table: &str,
    columns: &str,
    rows: usize,
    cols: usize,
    tail: &str,
) -> String {
    format!(
        "INSERT INTO {table} ({columns}) VALUES {} {tail}",
        policy.placeholders(rows, cols)
    )
}

/// Events waiting to be written in bulk.
#[derive(Default)]
struct EventBatch {
    events: Vec<PendingEvent>,
}

impl EventBatch {
    fn push(
        &mut self,
        ctx: &Context,
        origin: &Origin<'_>,
        events: &[EpcisEvent],
        now: i64,
    ) -> Result<(), ProjectionError> {
        let t = origin.time_ms;
        for event in events {
            let event = event.clone().with_hash_id()?;
            let event_id = event.event_id.clone().unwrap_or_default();
            let body = serde_json::to_string(&event)?;
            let key_of = |uri: &str| UnitKey::parse(uri).map(|k| k.key()).ok();
            let mut epcs: Vec<(&'static str, String)> = Vec::new();
            match event.event_type {
                EventType::ObjectEvent => {
                    for e in &event.epc_list {
                        epcs.extend(key_of(e).map(|k| (epcis_event_epc::ROLE_EPC, k)));
                    }
                }
                EventType::AggregationEvent => {
                    if let Some(p) = &event.parent_id {
                        epcs.extend(key_of(p).map(|k| (epcis_event_epc::ROLE_PARENT, k)));
                    }
                    for c in &event.child_epcs {
                        epcs.extend(key_of(c).map(|k| (epcis_event_epc::ROLE_CHILD, k)));
                    }
                }
            }
            let row = vec![
                Value::from(ctx.org.as_str()),
                Value::from(event_id.as_str()),
                Value::from(event.event_type.as_str()),
                Value::from(event.action.as_str()),
                Value::from(event.biz_step.map(|b| b.as_str())),
                Value::from(event.disposition.map(|d| d.as_str())),
                Value::from(t),
                Value::from(event.event_time_zone_offset.as_str()),
                Value::from(now),
                Value::from(ctx.site_id.as_str()),
                Value::from(origin.location),
                Value::from(event.read_point.as_ref().map(|p| p.id.as_str())),
                Value::from(event.biz_location.as_ref().map(|p| p.id.as_str())),
                Value::from(ctx.doc_id.as_str()),
                Value::from(origin.scan_id),
                Value::from(origin.user),
                Value::from(origin.device),
                Value::from(body),
            ];
            self.events.push(PendingEvent {
                row,
                scan_id: origin.scan_id.to_owned(),
                event_id,
                time_ms: t,
                epcs,
            });
        }
        Ok(())
    }

    /// Writes the events, then their identifier rows. Each event's key is matched to it by
    /// (scan, event id): a multi-row `RETURNING` promises no order.
    async fn flush(&mut self, txn: &DatabaseTransaction, org: &str) -> Result<(), ProjectionError> {
        let policy = Policy::of(txn);
        let mut epc_values: Vec<Value> = Vec::new();
        let mut epc_rows = 0usize;
        let mut events = std::mem::take(&mut self.events).into_iter().peekable();
        while events.peek().is_some() {
            let batch: Vec<PendingEvent> = events.by_ref().take(ROWS_PER_STATEMENT).collect();
            // Slots by event id, then scan: one event id can be another scan's too.
            let mut slots: HashMap<&str, Vec<usize>> = HashMap::with_capacity(batch.len());
            for (i, e) in batch.iter().enumerate() {
                slots.entry(e.event_id.as_str()).or_default().push(i);
            }
            let mut values = Vec::with_capacity(batch.len() * EVENT_COLUMN_COUNT);
            for e in &batch {
                values.extend(e.row.iter().cloned());
            }
            let keys = insert_events(txn, policy, batch.len(), values).await?;
            let mut pks: Vec<Option<i64>> = vec![None; batch.len()];
            for (pk, scan_id, event_id) in keys {
                let scan_id = scan_id.unwrap_or_default();
                let slot = slots
                    .get_mut(event_id.as_str())
                    .and_then(|list| {
                        let at = list.iter().rposition(|&i| batch[i].scan_id == scan_id)?;
                        Some(list.swap_remove(at))
                    })
                    .ok_or_else(|| {
                        DbErr::Custom(format!(
                            "inserted event {:?} is not in the batch",
                            (&scan_id, &event_id)
                        ))
                    })?;
                pks[slot] = Some(pk);
            }
            for (e, pk) in batch.iter().zip(pks) {
                let pk = pk.ok_or_else(|| DbErr::Custom("an event was not inserted".into()))?;
                for (role, key) in &e.epcs {
                    epc_values.extend([
                        Value::from(pk),
                        Value::from(*role),
                        Value::from(key.as_str()),
                        Value::from(org),
                        Value::from(e.time_ms),
                    ]);
                    epc_rows += 1;
                }
            }
        }
        let mut epc_values = epc_values.into_iter();
        while epc_rows > 0 {
            let rows = epc_rows.min(ROWS_PER_STATEMENT);
            epc_rows -= rows;
            let sql = insert_sql(
                policy,
                "epcis_event_epc",
                "event_pk, role, epc_key, organisation_id, event_time_ms",
                rows,
                5,
                "",
            );
            let values: Vec<Value> = epc_values.by_ref().take(rows * 5).collect();
            txn.execute_raw(Statement::from_sql_and_values(
                policy.backend(),
                sql,
                values,
            ))
            .await?;
        }
        Ok(())
    }
}

/// Inserts `rows` events (`values`: [`EVENT_COLUMNS`] per row) and says each one's key:
/// (pk, scan id, event id), in no particular order.
///
/// PostgreSQL: `RETURNING`. SQLite: the driver hands each result row from its database
/// thread to the caller with a wake-up, so `RETURNING` cost one hand-over per event; there
/// the transaction holds the only write lock, so the new rows are exactly those above the
/// largest key before the insert, read back as one JSON row.
async fn insert_events(
    txn: &DatabaseTransaction,
    policy: Policy,
    rows: usize,
    values: Vec<Value>,
) -> Result<Vec<(i64, Option<String>, String)>, ProjectionError> {
    let backend = policy.backend();
    let returning = if policy.single_writer() {
        ""
    } else {
        "RETURNING pk, scan_id, event_id"
    };
    let sql = insert_sql(
        policy,
        "epcis_event",
        EVENT_COLUMNS,
        rows,
        EVENT_COLUMN_COUNT,
        returning,
    );
    if !policy.single_writer() {
        let mut out = Vec::with_capacity(rows);
        for row in txn
            .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?
        {
            out.push((
                row.try_get::<i64>("", "pk")?,
                row.try_get::<Option<String>>("", "scan_id")?,
                row.try_get::<String>("", "event_id")?,
            ));
        }
        return Ok(out);
    }
    let before: i64 = txn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT COALESCE(MAX(pk), 0) AS pk FROM epcis_event",
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "pk"))
        .transpose()?
        .unwrap_or(0);
    txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let keys: Option<String> = txn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT json_group_array(json_array(pk, scan_id, event_id)) AS k \
             FROM epcis_event WHERE pk > ?",
            [Value::from(before)],
        ))
        .await?
        .map(|r| r.try_get::<String>("", "k"))
        .transpose()?;
    Ok(serde_json::from_str(keys.as_deref().unwrap_or("[]"))?)
}

/// Applies a status/location change to everything inside a container, level by level
/// (each level is one indexed query on `(organisation_id, parent_key)`). Returns the
/// objects found inside.
async fn propagate(
    txn: &DatabaseTransaction,
    ctx: &Context,
    root: &str,
    prop: &map::Propagate,
    now: i64,
) -> Result<Vec<String>, DbErr> {
    let mut inside = Vec::new();
    let mut level = vec![root.to_owned()];
    // Depth bound: pallet → case → inner pack → unit is 4; bad data cannot loop.
    for _ in 0..8 {
        if level.is_empty() {
            break;
        }
        let mut next_level = Vec::new();
        for chunk in level.chunks(500) {
            let children: Vec<String> = trace_object::Entity::find()
                .select_only()
                .column(trace_object::Column::EpcKey)
                .filter(trace_object::Column::OrganisationId.eq(ctx.org.clone()))
                .filter(trace_object::Column::ParentKey.is_in(chunk.to_vec()))
                .into_tuple()
                .all(txn)
                .await?;
            if children.is_empty() {
                continue;
            }
            let mut upd = trace_object::Entity::update_many()
                .col_expr(trace_object::Column::UpdatedAtMs, Expr::value(now))
                .col_expr(
                    trace_object::Column::SiteId,
                    Expr::value(Some(ctx.site_id.clone())),
                );
            if let Some(s) = prop.status {
                upd = upd.col_expr(trace_object::Column::Status, Expr::value(s));
            }
            if let Some(l) = &prop.location {
                upd = upd.col_expr(trace_object::Column::Location, Expr::value(l.clone()));
            }
            upd.filter(trace_object::Column::OrganisationId.eq(ctx.org.clone()))
                .filter(trace_object::Column::EpcKey.is_in(children.clone()))
                .filter(trace_object::Column::Status.ne(UnitStatus::Destroyed))
                .exec(txn)
                .await?;
            next_level.extend(children);
        }
        inside.extend_from_slice(&next_level);
        level = next_level;
    }
    Ok(inside)
}

/// A child the expected (supplier) data puts inside a received container. Says whether
/// the child is now inside it.
async fn infer_child(
    txn: &DatabaseTransaction,
    ctx: &Context,
    child: &str,
    parent: &str,
    plan: &Plan,
    now: i64,
) -> Result<bool, DbErr> {
    let Ok(key) = UnitKey::parse(child) else {
        return Ok(false);
    };
    let (existing, _) = lock_object(txn, &ctx.org, &key, now).await?;
    let Some(subject) = &plan.subject else {
        return Ok(false);
    };
    if existing.status != UnitStatus::Unknown
        && existing.parent_key.as_deref().is_some_and(|p| p != parent)
    {
        // We know the child elsewhere: the supplier's hierarchy disagrees with ours.
        open_exception(
            txn,
            ctx,
            subject.last_scan_id.as_deref().unwrap_or_default(),
            &NewException {
                kind: ExceptionKind::AggregationMismatch,
                epc_key: child.to_owned(),
                other_scans: existing.last_scan_id.clone().into_iter().collect(),
                detail: serde_json::json!({"expected_parent": parent, "known_parent": existing.parent_key}),
            },
            now,
        )
        .await?;
        return Ok(false);
    }
    let mut next = existing.clone();
    next.parent_key = Some(parent.to_owned());
    next.status = subject.status;
    next.site_id = subject.site_id.clone();
    next.location = subject.location.clone();
    next.updated_at_ms = now;
    if next.last_event_time_ms < subject.last_event_time_ms {
        next.last_event_time_ms = subject.last_event_time_ms;
    }
    if next != existing {
        next.into_active_model().reset_all().update(txn).await?;
    }
    Ok(true)
}

/// Sets `holds` on these objects: something was just given one of them as its parent.
/// The flag only ever goes from false to true, so it is never written back stale; the
/// trace API descends only into holders (see the migration that added the column).
async fn mark_holders(
    txn: &DatabaseTransaction,
    org: &str,
    keys: Vec<String>,
) -> Result<(), DbErr> {
    for batch in keys.chunks(ROWS_PER_STATEMENT) {
        trace_object::Entity::update_many()
            .col_expr(trace_object::Column::Holds, Expr::value(true))
            .filter(trace_object::Column::OrganisationId.eq(org))
            .filter(trace_object::Column::EpcKey.is_in(batch.to_vec()))
            .filter(trace_object::Column::Holds.eq(false))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Opens an exception unless the same finding is already recorded (dedup key).
/// Returns whether a new one was opened.
pub(crate) async fn open_exception(
    txn: &DatabaseTransaction,
    ctx: &Context,
    scan_id: &str,
    e: &NewException,
    now: i64,
) -> Result<bool, DbErr> {
    let dedup = format!("{}:{}:{}", e.kind.as_str(), e.epc_key, scan_id);
    // Deterministic id from the dedup key, so a retried transaction makes the same row.
    let id = format!(
        "exc-{}",
        &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            format!("{}|{dedup}", ctx.org).as_bytes()
        ))[..32]
    );
    let row = trace_exception::ActiveModel {
        id: Set(id.clone()),
        organisation_id: Set(ctx.org.clone()),
        site_id: Set(Some(ctx.site_id.clone())),
        kind: Set(e.kind.as_str().to_owned()),
        state: Set("open".to_owned()),
        epc_key: Set(Some(e.epc_key.clone())),
        dedup_key: Set(dedup),
        detail: Set(e.detail.to_string()),
        created_at_ms: Set(now),
        resolved_at_ms: Set(None),
        resolved_by: Set(None),
        resolution: Set(None),
        assigned_to: Set(None),
    };
    let res = trace_exception::Entity::insert(row)
        .on_conflict_do_nothing_on([
            trace_exception::Column::OrganisationId,
            trace_exception::Column::DedupKey,
        ])
        .exec_without_returning(txn)
        .await?;
    let opened = matches!(res, TryInsertResult::Inserted(n) if n > 0);
    if opened {
        crate::outbox::record(
            txn,
            &ctx.org,
            vec![crate::outbox::Outcome {
                kind: crate::outbox::OutcomeKind::ExceptionOpened,
                stream: ctx.doc_id.clone(),
                data: serde_json::json!({
                    "exception_id": id,
                    "kind": e.kind.as_str(),
                    "object": e.epc_key,
                    "site_id": ctx.site_id,
                    "task_id": ctx.doc_id,
                    "scan_id": scan_id,
                    "detail": e.detail,
                }),
            }],
            now,
        )
        .await?;
    }
    let mut scans: Vec<String> = vec![scan_id.to_owned()];
    for s in &e.other_scans {
        if !scans.contains(s) {
            scans.push(s.clone());
        }
    }
    scans.retain(|s| !s.is_empty());
    let links = scans
        .into_iter()
        .map(|s| trace_exception_scan::ActiveModel {
            exception_id: Set(id.clone()),
            scan_id: Set(s),
            organisation_id: Set(ctx.org.clone()),
        });
    trace_exception_scan::Entity::insert_many(links)
        .on_conflict_do_nothing_on([
            trace_exception_scan::Column::ExceptionId,
            trace_exception_scan::Column::ScanId,
        ])
        .exec_without_returning(txn)
        .await?;
    Ok(opened)
}

/// A scan whose id another document already projected: one `duplicate_scan_id`
/// exception in a transaction of its own (the scan itself writes nothing).
pub(crate) async fn open_exception_alone(
    db: &DatabaseConnection,
    ctx: &Context,
    scan: &Scan,
    key: &str,
    other_document: &str,
) -> Result<bool, ProjectionError> {
    let txn = db.begin_with_options(write_txn_options()).await?;
    let e = NewException {
        kind: ExceptionKind::DuplicateScanId,
        epc_key: key.to_owned(),
        other_scans: Vec::new(),
        detail: serde_json::json!({
            "document": ctx.doc_id,
            "projected_from": other_document,
            "device": scan.device,
            "action": scan.action.as_str(),
        }),
    };
    let opened = open_exception(&txn, ctx, scan.id.as_str(), &e, now_ms()).await?;
    txn.commit().await?;
    Ok(opened)
}

/// A void that arrived after the scan was projected: one exception, once.
pub(crate) async fn late_void(
    db: &DatabaseConnection,
    ctx: &Context,
    scan: &Scan,
) -> Result<bool, ProjectionError> {
    let txn = db.begin_with_options(write_txn_options()).await?;
    let updated = projected_scan::Entity::update_many()
        .col_expr(projected_scan::Column::VoidSeen, Expr::value(true))
        .filter(projected_scan::Column::OrganisationId.eq(ctx.org.clone()))
        .filter(projected_scan::Column::ScanId.eq(scan.id.to_string()))
        .filter(projected_scan::Column::VoidSeen.eq(false))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 0 {
        txn.rollback().await?;
        return Ok(false);
    }
    let key = map::subject(scan).map(|(k, _)| k.key()).unwrap_or_default();
    let opened = open_exception(
        &txn,
        ctx,
        scan.id.as_str(),
        &NewException {
            kind: ExceptionKind::VoidedAfterProjection,
            epc_key: key,
            other_scans: Vec::new(),
            detail: serde_json::json!({"action": scan.action.as_str(), "document": ctx.doc_id}),
        },
        now_ms(),
    )
    .await?;
    txn.commit().await?;
    Ok(opened)
}
