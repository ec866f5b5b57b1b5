//! Saleable returns in the projection: a projected returns scan queues its pack for
//! product-identifier verification; once a verification decision exists, it is applied
//! exactly once (an `inspecting` or `holding` event, the pack's stock status, and an
//! exception for the manager when it is not sellable); and each scan's verification
//! state is written back into its task document with the other results.
//!
//! A verdict holds only for the scan it verified: same task, device, user and product
//! identifier ([`Binding`]). A record made before its scan synced (the online path) is
//! applied only once the projection has seen the synced scan and found the same binding;
//! otherwise the verdict is set aside, the scan is verified afresh and held, and
//! `return_identifiers_mismatch` is opened.
//!
//! The verification itself (our own data or another responder over LMS) is not here:
//! see `crate::verification::returns`.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
};
use swt_domain::model::{Action as ScanAction, Scan};

use super::map::{self, ExceptionKind, NewException, status};
use super::store::{self, Origin};
use super::{ProjectionError, outcome, write_txn_options};
use crate::db::entity::{projected_scan, return_verification, site, task_document, trace_object};
use crate::epcis::{
    Action, BizStep, Disposition, EpcisEvent, EventType, ObjectKey, format_time_ms,
};

/// `return_verification.state` values.
pub mod state {
    /// Not decided yet (never asked, or the responder could not be reached).
    pub const PENDING: &str = "pending";
    /// Verified with nothing to add: back to sellable stock.
    pub const SELLABLE: &str = "sellable";
    /// Verified with additional information: held for review.
    pub const REVIEW: &str = "review";
    /// Not verified: quarantined.
    pub const QUARANTINED: &str = "quarantined";
}

/// The code written into a scan's `results.verification` for a record: what the scanner
/// shows (`pending`, `verified`, `review`, `not_verified`, or `identifiers_mismatch` when
/// the synced scan was not the one verified, whatever the fresh verification says).
pub fn result_code(r: &return_verification::Model) -> &'static str {
    if r.mismatch.is_some() {
        return MISMATCH_RESULT;
    }
    match r.state.as_str() {
        state::SELLABLE => "verified",
        state::REVIEW => "review",
        state::QUARANTINED => "not_verified",
        _ => "pending",
    }
}

/// `results.verification` of a scan whose stored verdict was for something else.
pub const MISMATCH_RESULT: &str = "identifiers_mismatch";

/// What a verification holds for: one scan's task, device, user and exact product
/// identifier. A verdict is applied only to the synced scan with the same binding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Binding {
    /// Task document.
    pub document_id: String,
    /// Device that scanned (and asked).
    pub device_id: Option<String>,
    /// User that scanned (and asked).
    pub user_id: Option<String>,
    /// GTIN-14.
    pub gtin: String,
    /// Serial.
    pub serial: String,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry, YYMMDD.
    pub expiry: Option<String>,
}

/// How a verification request's binding differs from the record under its scan id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingConflict {
    /// Another device or user made the record.
    #[error("this scan id was verified for another device or user")]
    OtherCaller,
    /// The record is for a scan of another task.
    #[error("this scan id belongs to another task")]
    OtherTask,
    /// Same caller and task, other product identifier: a scan's identifiers never change.
    #[error("this scan id was verified with other identifiers (GTIN, serial, lot, expiry)")]
    OtherIdentifiers,
}

impl Binding {
    /// The binding a record holds.
    pub fn of_record(r: &return_verification::Model) -> Binding {
        Binding {
            document_id: r.document_id.clone(),
            device_id: r.device_id.clone(),
            user_id: r.user_id.clone(),
            gtin: r.gtin.clone(),
            serial: r.serial.clone(),
            lot: r.lot.clone(),
            expiry: r.expiry.clone(),
        }
    }

    /// The binding of a synced scan; `None` unless it is a return of a serialized pack.
    pub fn of_scan(doc_id: &str, s: &Scan) -> Option<Binding> {
        if s.action != ScanAction::Return {
            return None;
        }
        Some(Binding {
            document_id: doc_id.to_owned(),
            device_id: Some(s.device.clone()),
            user_id: Some(s.user.clone()),
            gtin: normal_gtin(s.ids.gtin.as_deref()?),
            serial: s.ids.serial.clone()?,
            lot: s.ids.lot.clone(),
            expiry: s.ids.expiry.clone(),
        })
    }

    /// Why `asked` may not use the record bound to `self`, if it may not.
    pub fn conflict(&self, asked: &Binding) -> Option<BindingConflict> {
        if self.device_id != asked.device_id || self.user_id != asked.user_id {
            Some(BindingConflict::OtherCaller)
        } else if self.document_id != asked.document_id {
            Some(BindingConflict::OtherTask)
        } else if self != asked {
            Some(BindingConflict::OtherIdentifiers)
        } else {
            None
        }
    }
}

/// GTIN-14 form, as the online path stores it (`Gtin::parse`), so bindings compare equal.
fn normal_gtin(g: &str) -> String {
    swt_domain::gs1::Gtin::parse(g).map_or_else(|_| g.to_owned(), |g| g.as_str().to_owned())
}

/// A new pending record for a binding (`bound`: already checked against the synced scan).
pub fn new_record(
    org: &str,
    scan_id: &str,
    site_id: &str,
    b: Binding,
    scanned_at_ms: i64,
    next_attempt_ms: i64,
    bound_at_ms: Option<i64>,
) -> return_verification::ActiveModel {
    return_verification::ActiveModel {
        organisation_id: Set(org.to_owned()),
        scan_id: Set(scan_id.to_owned()),
        document_id: Set(b.document_id),
        site_id: Set(Some(site_id.to_owned())),
        user_id: Set(b.user_id),
        device_id: Set(b.device_id),
        gtin: Set(b.gtin),
        serial: Set(b.serial),
        lot: Set(b.lot),
        expiry: Set(b.expiry),
        state: Set(state::PENDING.to_owned()),
        verified: Set(None),
        failure_reason: Set(None),
        additional_info: Set(None),
        responder: Set(None),
        exchange_pk: Set(None),
        attempts: Set(0),
        last_error: Set(None),
        next_attempt_ms: Set(next_attempt_ms),
        scanned_at_ms: Set(scanned_at_ms),
        decided_at_ms: Set(None),
        applied_at_ms: Set(None),
        bound_at_ms: Set(bound_at_ms),
        mismatch: Set(None),
    }
}

/// For every scan of the document that went through the projection: queues a projected
/// returns scan of a serialized pack for verification (once: the record's key is the scan
/// id), and binds a record made before the scan synced (online path) to it — or, when the
/// scan is not what was verified, sets that verdict aside, verifies the scan afresh and
/// opens `return_identifiers_mismatch`.
pub(crate) async fn enqueue(
    db: &DatabaseConnection,
    ctx: &map::Context,
    scans: &[Scan],
    markers: &BTreeMap<String, projected_scan::Model>,
) -> Result<(), ProjectionError> {
    let now = Utc::now().timestamp_millis();
    let synced: Vec<(&Scan, &projected_scan::Model)> = scans
        .iter()
        .filter_map(|s| markers.get(s.id.as_str()).map(|m| (s, m)))
        .collect();
    let rows: Vec<return_verification::ActiveModel> = synced
        .iter()
        .filter(|(_, m)| m.outcome == outcome::PROJECTED)
        .filter_map(|(s, _)| {
            let b = Binding::of_scan(&ctx.doc_id, s)?;
            Some(new_record(
                &ctx.org,
                s.id.as_str(),
                &ctx.site_id,
                b,
                scanned_at(s),
                now,
                Some(now),
            ))
        })
        .collect();
    for chunk in rows.chunks(200) {
        return_verification::Entity::insert_many(chunk.to_vec())
            .on_conflict_do_nothing_on([
                return_verification::Column::OrganisationId,
                return_verification::Column::ScanId,
            ])
            .exec_without_returning(db)
            .await?;
    }
    // Inserted first, read after: a record the online path made meanwhile is seen here.
    let mut unbound = BTreeMap::new();
    for chunk in synced.chunks(500) {
        let ids: Vec<&str> = chunk.iter().map(|(s, _)| s.id.as_str()).collect();
        for r in return_verification::Entity::find()
            .filter(return_verification::Column::OrganisationId.eq(ctx.org.as_str()))
            .filter(return_verification::Column::ScanId.is_in(ids))
            .filter(return_verification::Column::BoundAtMs.is_null())
            .all(db)
            .await?
        {
            unbound.insert(r.scan_id.clone(), r);
        }
    }
    for (s, m) in synced {
        let Some(r) = unbound.get(s.id.as_str()) else {
            continue;
        };
        let scanned = Binding::of_scan(&ctx.doc_id, s);
        if scanned.as_ref() == Some(&Binding::of_record(r)) {
            return_verification::Entity::update_many()
                .col_expr(return_verification::Column::BoundAtMs, Expr::value(now))
                .filter(return_verification::Column::OrganisationId.eq(ctx.org.as_str()))
                .filter(return_verification::Column::ScanId.eq(r.scan_id.as_str()))
                .filter(return_verification::Column::BoundAtMs.is_null())
                .exec(db)
                .await?;
        } else {
            rebind(db, ctx, r, s, scanned, m.outcome == outcome::PROJECTED, now).await?;
        }
    }
    Ok(())
}

fn scanned_at(s: &Scan) -> i64 {
    i64::try_from(s.device_time_ms).unwrap_or(i64::MAX)
}

/// The synced scan is not what `r` verified: keeps the old verdict in `mismatch`, binds the
/// record to the scan and, for a projected return of a pack, verifies it afresh (the
/// decision is then held, never sellable: see [`write_consequences`]); anything else is
/// closed with nothing to apply. Opens `return_identifiers_mismatch` on the scanned pack.
async fn rebind(
    db: &DatabaseConnection,
    ctx: &map::Context,
    r: &return_verification::Model,
    s: &Scan,
    scanned: Option<Binding>,
    projected: bool,
    now: i64,
) -> Result<(), ProjectionError> {
    let set_aside = serde_json::json!({
        "detected_at_ms": now,
        "verified": {
            "binding": Binding::of_record(r), "state": r.state, "verified": r.verified,
            "verificationFailureReason": r.failure_reason,
            "additionalInfo": r.additional_info, "responder": r.responder,
            "exchange": r.exchange_pk, "applied_at_ms": r.applied_at_ms,
        },
        "scanned": scanned,
    });
    let fresh = scanned.clone().filter(|_| projected);
    // Without a pack to verify the record keeps the old identifiers, is quarantined and
    // marked applied: nothing is ever written for it.
    let (b, st, applied, error) = match fresh {
        Some(b) => (
            b,
            state::PENDING,
            None,
            "the synced scan differs from the one verified: verifying it afresh",
        ),
        None => (
            Binding {
                document_id: ctx.doc_id.clone(),
                device_id: Some(s.device.clone()),
                user_id: Some(s.user.clone()),
                ..Binding::of_record(r)
            },
            state::QUARANTINED,
            Some(now),
            "the synced scan is not a projected return of a serialized pack",
        ),
    };
    let txn = db.begin_with_options(write_txn_options()).await?;
    let changed = return_verification::Entity::update_many()
        .col_expr(
            return_verification::Column::DocumentId,
            Expr::value(b.document_id),
        )
        .col_expr(
            return_verification::Column::SiteId,
            Expr::value(ctx.site_id.as_str()),
        )
        .col_expr(
            return_verification::Column::DeviceId,
            Expr::value(b.device_id),
        )
        .col_expr(return_verification::Column::UserId, Expr::value(b.user_id))
        .col_expr(return_verification::Column::Gtin, Expr::value(b.gtin))
        .col_expr(return_verification::Column::Serial, Expr::value(b.serial))
        .col_expr(return_verification::Column::Lot, Expr::value(b.lot))
        .col_expr(return_verification::Column::Expiry, Expr::value(b.expiry))
        .col_expr(return_verification::Column::State, Expr::value(st))
        .col_expr(
            return_verification::Column::Verified,
            Expr::value(None::<bool>),
        )
        .col_expr(
            return_verification::Column::FailureReason,
            Expr::value(None::<String>),
        )
        .col_expr(
            return_verification::Column::AdditionalInfo,
            Expr::value(None::<String>),
        )
        .col_expr(
            return_verification::Column::Responder,
            Expr::value(None::<String>),
        )
        .col_expr(
            return_verification::Column::ExchangePk,
            Expr::value(None::<i64>),
        )
        .col_expr(return_verification::Column::Attempts, Expr::value(0))
        .col_expr(return_verification::Column::LastError, Expr::value(error))
        .col_expr(return_verification::Column::NextAttemptMs, Expr::value(now))
        .col_expr(
            return_verification::Column::ScannedAtMs,
            Expr::value(scanned_at(s)),
        )
        .col_expr(
            return_verification::Column::DecidedAtMs,
            Expr::value(applied),
        )
        .col_expr(
            return_verification::Column::AppliedAtMs,
            Expr::value(applied),
        )
        .col_expr(return_verification::Column::BoundAtMs, Expr::value(now))
        .col_expr(
            return_verification::Column::Mismatch,
            Expr::value(set_aside.to_string()),
        )
        .filter(return_verification::Column::OrganisationId.eq(ctx.org.as_str()))
        .filter(return_verification::Column::ScanId.eq(r.scan_id.as_str()))
        .filter(return_verification::Column::BoundAtMs.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if changed != 1 {
        // Another projection run bound it first.
        txn.rollback().await?;
        return Ok(());
    }
    let pack = s
        .ids
        .gtin
        .as_deref()
        .zip(s.ids.serial.as_deref())
        .and_then(|(g, ser)| ObjectKey::sgtin(g, ser).ok());
    if let Some(key) = pack {
        let e = NewException {
            kind: ExceptionKind::ReturnIdentifiersMismatch,
            epc_key: key.key(),
            other_scans: Vec::new(),
            detail: set_aside,
        };
        store::open_exception(&txn, ctx, &r.scan_id, &e, now).await?;
    }
    txn.commit().await?;
    tracing::warn!(scan = %r.scan_id, "returns scan differs from its stored verification; verdict set aside");
    Ok(())
}

/// The verification result code of every returns scan of a document that has a record.
pub(crate) async fn result_codes(
    db: &DatabaseConnection,
    org: &str,
    doc_id: &str,
) -> Result<BTreeMap<String, &'static str>, DbErr> {
    Ok(return_verification::Entity::find()
        .filter(return_verification::Column::OrganisationId.eq(org))
        .filter(return_verification::Column::DocumentId.eq(doc_id))
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            let code = result_code(&r);
            (r.scan_id, code)
        })
        .collect())
}

/// Applies a decided verification once the returns scan itself is projected: writes the
/// event, the pack's state, the exception, and flags the document so the projector writes
/// the outcome back. Returns `Ok(true)` when this call applied it; `Ok(false)` when there
/// is nothing (yet) to do or another process did it.
pub async fn apply_decision(
    db: &DatabaseConnection,
    rv: &return_verification::Model,
) -> Result<bool, ProjectionError> {
    // Unbound: the synced scan has not been checked against this verdict yet.
    if rv.state == state::PENDING || rv.applied_at_ms.is_some() || rv.bound_at_ms.is_none() {
        return Ok(false);
    }
    let marker =
        projected_scan::Entity::find_by_id((rv.organisation_id.clone(), rv.scan_id.clone()))
            .one(db)
            .await?;
    let now = Utc::now().timestamp_millis();
    let Some(marker) = marker else {
        // Verified online before the scan synced: applied after its projection.
        return Ok(false);
    };
    let txn = db.begin_with_options(write_txn_options()).await?;
    let claimed = return_verification::Entity::update_many()
        .col_expr(return_verification::Column::AppliedAtMs, Expr::value(now))
        .filter(return_verification::Column::OrganisationId.eq(rv.organisation_id.as_str()))
        .filter(return_verification::Column::ScanId.eq(rv.scan_id.as_str()))
        .filter(return_verification::Column::AppliedAtMs.is_null())
        .filter(return_verification::Column::BoundAtMs.is_not_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if claimed != 1 {
        txn.rollback().await?;
        return Ok(false);
    }
    // A voided or unprojectable scan moved no goods: the decision is kept, nothing applied.
    if marker.outcome == outcome::PROJECTED {
        write_consequences(&txn, rv, now).await?;
        task_document::Entity::update_many()
            .col_expr(task_document::Column::NeedsProjection, Expr::value(true))
            .filter(task_document::Column::Id.eq(rv.document_id.as_str()))
            .filter(task_document::Column::OrganisationId.eq(rv.organisation_id.as_str()))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(true)
}

async fn write_consequences(
    txn: &sea_orm::DatabaseTransaction,
    rv: &return_verification::Model,
    now: i64,
) -> Result<(), ProjectionError> {
    let Some(site_id) = rv.site_id.as_deref() else {
        return Ok(());
    };
    let Some(site) = site::Entity::find_by_id(site_id).one(txn).await? else {
        return Ok(());
    };
    let key = match ObjectKey::sgtin(&rv.gtin, &rv.serial) {
        Ok(k) => k,
        Err(_) => return Ok(()),
    };
    let Ok(epc) = key.to_digital_link() else {
        return Ok(());
    };
    let ctx = map::Context {
        org: rv.organisation_id.clone(),
        doc_id: rv.document_id.clone(),
        site_id: site.id.clone(),
        gln: site.gln.clone(),
        refs: BTreeMap::new(),
        expected_children: BTreeMap::new(),
    };
    // Primer §5.8: verified → inspecting + sellable_not_accessible; otherwise holding with
    // the disposition that says why. A scan that was not what its first verdict was for
    // is never made sellable by the fresh one: held, its mismatch exception is open.
    let (step, disp, new_status, exception) = match rv.state.as_str() {
        state::SELLABLE if rv.mismatch.is_some() => (
            BizStep::Holding,
            Disposition::NonSellableOther,
            status::QUARANTINED,
            None,
        ),
        state::SELLABLE => (
            BizStep::Inspecting,
            Disposition::SellableNotAccessible,
            status::IN_STOCK,
            None,
        ),
        state::REVIEW => {
            let info = rv
                .additional_info
                .as_deref()
                .unwrap_or("")
                .to_ascii_lowercase();
            let disp = match info.as_str() {
                "recalled" => Disposition::Recalled,
                "expired" => Disposition::Expired,
                _ => Disposition::NonSellableOther,
            };
            (
                BizStep::Holding,
                disp,
                status::QUARANTINED,
                Some(ExceptionKind::ReturnNeedsReview),
            )
        }
        _ => (
            BizStep::Holding,
            Disposition::NoPedigreeMatch,
            status::QUARANTINED,
            Some(ExceptionKind::ReturnNotVerified),
        ),
    };
    let event = EpcisEvent {
        event_type: EventType::ObjectEvent,
        event_id: None,
        event_time: format_time_ms(now),
        event_time_zone_offset: "+00:00".to_owned(),
        record_time: None,
        epc_list: vec![epc],
        parent_id: None,
        child_epcs: Vec::new(),
        action: Action::Observe,
        biz_step: Some(step),
        disposition: Some(disp),
        persistent_disposition: None,
        read_point: ctx.place(None),
        biz_location: ctx.place(None),
        biz_transaction_list: Vec::new(),
        swt_scan_id: Some(rv.scan_id.clone()),
    };
    let origin = Origin {
        time_ms: now,
        location: None,
        scan_id: &rv.scan_id,
        user: rv.user_id.as_deref().unwrap_or(""),
        device: rv.device_id.as_deref().unwrap_or(""),
    };
    store::write_event_rows(txn, &ctx, &origin, &[event], now).await?;
    trace_object::Entity::update_many()
        .col_expr(trace_object::Column::Status, Expr::value(new_status))
        .col_expr(trace_object::Column::LastEventTimeMs, Expr::value(now))
        .col_expr(trace_object::Column::UpdatedAtMs, Expr::value(now))
        .filter(trace_object::Column::OrganisationId.eq(rv.organisation_id.as_str()))
        .filter(trace_object::Column::EpcKey.eq(key.key()))
        .exec(txn)
        .await?;
    // A held pack is blocked on every scanner from the next sync on.
    let held = [(rv.gtin.clone(), rv.serial.clone())];
    crate::reference::touched(
        txn,
        &rv.organisation_id,
        crate::reference::Touched::Held(&held),
    )
    .await?;
    if let Some(kind) = exception {
        let e = NewException {
            kind,
            epc_key: key.key(),
            other_scans: Vec::new(),
            detail: serde_json::json!({
                "gtin": rv.gtin, "serial": rv.serial, "lot": rv.lot, "expiry": rv.expiry,
                "verified": rv.verified, "verificationFailureReason": rv.failure_reason,
                "additionalInfo": rv.additional_info, "responder": rv.responder,
                "exchange": rv.exchange_pk, "error": rv.last_error,
            }),
        };
        store::open_exception(txn, &ctx, &rv.scan_id, &e, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Binding, BindingConflict};

    fn b() -> Binding {
        Binding {
            document_id: "t1".into(),
            device_id: Some("d1".into()),
            user_id: Some("u1".into()),
            gtin: "00312345678906".into(),
            serial: "A".into(),
            lot: Some("L".into()),
            expiry: Some("300131".into()),
        }
    }

    #[test]
    fn a_binding_conflicts_first_on_who_then_task_then_identifiers() {
        assert_eq!(b().conflict(&b()), None);
        let other_device = Binding {
            device_id: Some("d2".into()),
            serial: "B".into(),
            ..b()
        };
        assert_eq!(
            b().conflict(&other_device),
            Some(BindingConflict::OtherCaller)
        );
        let other_user = Binding {
            user_id: None,
            ..b()
        };
        assert_eq!(
            b().conflict(&other_user),
            Some(BindingConflict::OtherCaller)
        );
        let other_task = Binding {
            document_id: "t2".into(),
            ..b()
        };
        assert_eq!(b().conflict(&other_task), Some(BindingConflict::OtherTask));
        for changed in [
            Binding {
                serial: "B".into(),
                ..b()
            },
            Binding { lot: None, ..b() },
            Binding {
                expiry: Some("300130".into()),
                ..b()
            },
            Binding {
                gtin: "00312345678913".into(),
                ..b()
            },
        ] {
            assert_eq!(
                b().conflict(&changed),
                Some(BindingConflict::OtherIdentifiers)
            );
        }
    }
}
