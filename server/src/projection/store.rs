//! Database side of projecting one scan: the marker, locks, events, state, exceptions,
//! all in one transaction.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect,
    TransactionTrait, TryInsertResult,
};
use swt_core::model::Scan;

use super::map::{self, Context, ExceptionKind, NewException, Plan, status};
use super::{ProjectionError, outcome, write_txn_options};
use crate::db::entity::{
    epcis_event, epcis_event_epc, projected_scan, trace_exception, trace_exception_scan,
    trace_object,
};
use crate::epcis::{EpcisEvent, EventType, ObjectKey};

/// What one scan's transaction wrote.
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
    fault: Option<usize>,
) -> Result<Vec<Option<Done>>, ProjectionError> {
    let txn = db.begin_with_options(write_txn_options()).await?;
    let now = now_ms();
    let mut out = Vec::with_capacity(scans.len());
    for (scan, voided) in scans {
        out.push(project_scan(&txn, ctx, scan, *voided, now).await?);
    }
    if let Some(n) = fault {
        // Dropping the transaction rolls it back, as a crash before COMMIT would.
        drop(txn);
        return Err(ProjectionError::Injected(n));
    }
    txn.commit().await?;
    Ok(out)
}

/// Projects one scan inside the chunk's transaction. `None` if another run owns or
/// finished it.
async fn project_scan(
    txn: &DatabaseTransaction,
    ctx: &Context,
    scan: &Scan,
    voided: bool,
    now: i64,
) -> Result<Option<Done>, ProjectionError> {
    // The marker first: it is the claim on this scan (see the module docs).
    let marker = projected_scan::ActiveModel {
        organisation_id: Set(ctx.org.clone()),
        scan_id: Set(scan.id.to_string()),
        document_id: Set(ctx.doc_id.clone()),
        outcome: Set(outcome::PROJECTED.to_owned()),
        exceptions: Set(String::new()),
        void_seen: Set(voided),
        projected_at_ms: Set(now),
    };
    let claimed = projected_scan::Entity::insert(marker)
        .on_conflict_do_nothing_on([
            projected_scan::Column::OrganisationId,
            projected_scan::Column::ScanId,
        ])
        .exec_without_returning(txn)
        .await?;
    if !matches!(claimed, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(None);
    }
    let mut done = Done {
        events: 0,
        exceptions: 0,
    };
    let finish = |code: &'static str, codes: String| {
        projected_scan::Entity::update_many()
            .col_expr(projected_scan::Column::Outcome, Expr::value(code))
            .col_expr(projected_scan::Column::Exceptions, Expr::value(codes))
            .filter(projected_scan::Column::OrganisationId.eq(ctx.org.clone()))
            .filter(projected_scan::Column::ScanId.eq(scan.id.to_string()))
    };
    if voided {
        finish(outcome::VOIDED, String::new()).exec(txn).await?;
        return Ok(Some(done));
    }
    let (key, parent) = match map::subject(scan) {
        Ok(x) => x,
        Err(code) => {
            finish(outcome::REJECTED, code.to_owned()).exec(txn).await?;
            return Ok(Some(done));
        }
    };
    // Lock in key order so two transactions never wait on each other crosswise.
    let mut keys = vec![key.clone()];
    if let Some(p) = &parent
        && *p != key
    {
        keys.push(p.clone());
    }
    keys.sort();
    let mut current = None;
    let mut parent_state = None;
    let mut created = Vec::new();
    for k in &keys {
        let (s, new) = lock_object(txn, &ctx.org, k, now).await?;
        if new {
            created.push(k.key());
        }
        if *k == key {
            current = Some(s);
        } else {
            parent_state = Some(s);
        }
    }
    let Some(current) = current else {
        return Err(ProjectionError::Db(DbErr::Custom(
            "subject state not loaded".to_owned(),
        )));
    };
    let plan = map::plan(
        ctx,
        scan,
        &key,
        parent.as_ref(),
        &current,
        parent_state.as_ref(),
        now,
    );
    if let Some(code) = plan.rejection {
        // Nothing of a rejected scan is kept, not even the object rows created above
        // (nothing else was written since, so deleting them undoes exactly that).
        if !created.is_empty() {
            trace_object::Entity::delete_many()
                .filter(trace_object::Column::OrganisationId.eq(ctx.org.clone()))
                .filter(trace_object::Column::EpcKey.is_in(created))
                .exec(txn)
                .await?;
        }
        finish(outcome::REJECTED, code.to_owned()).exec(txn).await?;
        return Ok(Some(done));
    }
    done.events = write_events(txn, ctx, scan, &plan, now).await?;
    apply_state(txn, ctx, &plan, &current, now).await?;
    // Exception codes are not copied into the marker: reports read open exceptions by
    // scan, so resolving one clears it from the scanners' results too.
    for e in &plan.exceptions {
        if open_exception(txn, ctx, scan.id.as_str(), e, now).await? {
            done.exceptions += 1;
        }
    }
    // The marker was inserted as `projected` with no codes: nothing left to update.
    Ok(Some(done))
}

/// Makes sure the object's state row exists, then locks and reads it. Also says whether
/// this transaction created the row.
async fn lock_object(
    txn: &DatabaseTransaction,
    org: &str,
    key: &ObjectKey,
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
    if txn.get_database_backend() == DbBackend::Postgres {
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

async fn write_events(
    txn: &DatabaseTransaction,
    ctx: &Context,
    scan: &Scan,
    plan: &Plan,
    now: i64,
) -> Result<usize, ProjectionError> {
    let scan_id = scan.id.to_string();
    let origin = Origin {
        time_ms: i64::try_from(scan.device_time_ms).unwrap_or(i64::MAX),
        location: scan.location.as_deref(),
        scan_id: &scan_id,
        user: &scan.user,
        device: &scan.device,
    };
    write_event_rows(txn, ctx, &origin, &plan.events, now).await
}

/// Stores events with their identifier rows (for history queries).
pub(crate) async fn write_event_rows(
    txn: &DatabaseTransaction,
    ctx: &Context,
    origin: &Origin<'_>,
    events: &[EpcisEvent],
    now: i64,
) -> Result<usize, ProjectionError> {
    let t = origin.time_ms;
    for event in events {
        let event = event.clone().with_hash_id()?;
        let event_id = event.event_id.clone().unwrap_or_default();
        let body = serde_json::to_string(&event)?;
        let row = epcis_event::ActiveModel {
            pk: sea_orm::ActiveValue::NotSet,
            organisation_id: Set(ctx.org.clone()),
            event_id: Set(event_id),
            event_type: Set(event.event_type.as_str().to_owned()),
            action: Set(event.action.as_str().to_owned()),
            biz_step: Set(event.biz_step.map(|b| b.as_str().to_owned())),
            disposition: Set(event.disposition.map(|d| d.as_str().to_owned())),
            event_time_ms: Set(t),
            event_time_zone_offset: Set(event.event_time_zone_offset.clone()),
            record_time_ms: Set(now),
            site_id: Set(Some(ctx.site_id.clone())),
            location: Set(origin.location.map(str::to_owned)),
            read_point: Set(event.read_point.as_ref().map(|p| p.id.clone())),
            biz_location: Set(event.biz_location.as_ref().map(|p| p.id.clone())),
            document_id: Set(Some(ctx.doc_id.clone())),
            scan_id: Set(Some(origin.scan_id.to_owned())),
            user_id: Set(Some(origin.user.to_owned())),
            device_id: Set(Some(origin.device.to_owned())),
            body: Set(body),
        };
        let pk = epcis_event::Entity::insert(row)
            .exec(txn)
            .await?
            .last_insert_id;
        let mut epcs: Vec<(&str, String)> = Vec::new();
        let key_of = |uri: &str| ObjectKey::parse(uri).map(|k| k.key()).ok();
        match event.event_type {
            EventType::ObjectEvent => {
                for e in &event.epc_list {
                    epcs.extend(key_of(e).map(|k| ("epc", k)));
                }
            }
            EventType::AggregationEvent => {
                if let Some(p) = &event.parent_id {
                    epcs.extend(key_of(p).map(|k| ("parent", k)));
                }
                for c in &event.child_epcs {
                    epcs.extend(key_of(c).map(|k| ("child", k)));
                }
            }
        }
        let rows = epcs
            .into_iter()
            .map(|(role, key)| epcis_event_epc::ActiveModel {
                event_pk: Set(pk),
                role: Set(role.to_owned()),
                epc_key: Set(key),
                organisation_id: Set(ctx.org.clone()),
                event_time_ms: Set(t),
            });
        epcis_event_epc::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(events.len())
}

async fn apply_state(
    txn: &DatabaseTransaction,
    ctx: &Context,
    plan: &Plan,
    current: &trace_object::Model,
    now: i64,
) -> Result<(), DbErr> {
    if let Some(next) = &plan.subject
        && next != current
    {
        next.clone()
            .into_active_model()
            .reset_all()
            .update(txn)
            .await?;
    }
    if let Some(p) = &plan.parent {
        p.clone()
            .into_active_model()
            .reset_all()
            .update(txn)
            .await?;
    }
    if let (Some(prop), Some(next)) = (&plan.propagate, &plan.subject) {
        propagate(txn, ctx, &next.epc_key, prop, now).await?;
    }
    for (child, parent) in &plan.inferred {
        infer_child(txn, ctx, child, parent, plan, now).await?;
    }
    Ok(())
}

/// Applies a status/location change to everything inside a container, level by level
/// (each level is one indexed query on `(organisation_id, parent_key)`).
async fn propagate(
    txn: &DatabaseTransaction,
    ctx: &Context,
    root: &str,
    prop: &map::Propagate,
    now: i64,
) -> Result<(), DbErr> {
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
                .filter(trace_object::Column::Status.ne(status::DESTROYED))
                .exec(txn)
                .await?;
            next_level.extend(children);
        }
        level = next_level;
    }
    Ok(())
}

/// A child the expected (supplier) data puts inside a received container.
async fn infer_child(
    txn: &DatabaseTransaction,
    ctx: &Context,
    child: &str,
    parent: &str,
    plan: &Plan,
    now: i64,
) -> Result<(), DbErr> {
    let Ok(key) = ObjectKey::parse(child) else {
        return Ok(());
    };
    let (existing, _) = lock_object(txn, &ctx.org, &key, now).await?;
    let Some(subject) = &plan.subject else {
        return Ok(());
    };
    if existing.status != status::UNKNOWN
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
        return Ok(());
    }
    let mut next = existing.clone();
    next.parent_key = Some(parent.to_owned());
    next.status = subject.status.clone();
    next.site_id = subject.site_id.clone();
    next.location = subject.location.clone();
    next.updated_at_ms = now;
    if next.last_event_time_ms < subject.last_event_time_ms {
        next.last_event_time_ms = subject.last_event_time_ms;
    }
    if next != existing {
        next.into_active_model().reset_all().update(txn).await?;
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
    };
    let res = trace_exception::Entity::insert(row)
        .on_conflict_do_nothing_on([
            trace_exception::Column::OrganisationId,
            trace_exception::Column::DedupKey,
        ])
        .exec_without_returning(txn)
        .await?;
    let opened = matches!(res, TryInsertResult::Inserted(n) if n > 0);
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
