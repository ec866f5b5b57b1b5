//! The projection's side of returns: a projected returns scan queues its pack for
//! verification, and a decision is applied to stock exactly once (an `inspecting` or
//! `holding` event, the pack's stock status, and an exception for the manager when it is
//! not sellable).

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use swt_domain::model::Scan;

use super::store::new_record;
use super::{Binding, ReturnState};
use crate::db::entity::{projected_scan, return_verification, site, trace_object};
use crate::epcis::{
    Action, BizStep, Disposition, EpcisEvent, EventType, PersistentDisposition, UnitKey,
    format_time_ms,
};
use crate::projection::map::{self, ExceptionKind, NewException, UnitStatus};
use crate::projection::store::{self, Origin};
use crate::projection::{ProjectionError, ProjectionOutcome, write_txn_options};
use crate::verification::lms::AdditionalInfo;

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
        .filter(|(_, m)| m.outcome == ProjectionOutcome::Projected)
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
            rebind(
                db,
                ctx,
                r,
                s,
                scanned,
                m.outcome == ProjectionOutcome::Projected,
                now,
            )
            .await?;
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
            ReturnState::Pending,
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
            ReturnState::Quarantined,
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
        .as_ref()
        .zip(s.ids.serial.as_deref())
        .and_then(|(g, ser)| UnitKey::sgtin(g.as_str(), ser).ok());
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

/// Applies a decided verification once the returns scan itself is projected: writes the
/// event, the pack's state, the exception, and flags the document so the projector writes
/// the outcome back. Returns `Ok(true)` when this call applied it; `Ok(false)` when there
/// is nothing (yet) to do or another process did it.
pub async fn apply_decision(
    db: &DatabaseConnection,
    rv: &return_verification::Model,
) -> Result<bool, ProjectionError> {
    // Unbound: the synced scan has not been checked against this verdict yet.
    if rv.state == ReturnState::Pending || rv.applied_at_ms.is_some() || rv.bound_at_ms.is_none() {
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
    if marker.outcome == ProjectionOutcome::Projected {
        write_consequences(&txn, rv, now).await?;
        crate::projection::worker::request(&txn, &rv.organisation_id, &rv.document_id).await?;
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
    let key = match UnitKey::sgtin(&rv.gtin, &rv.serial) {
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
        // A decision names no business document.
        party_gln: None,
        kind: swt_domain::doc::TaskKind::Returns,
        zone: crate::epcis::SiteZone::stored(&site.time_zone),
        refs: BTreeMap::new(),
        expected_children: BTreeMap::new(),
    };
    let c = consequence(rv);
    // Where the pack is (the returns scan's location, or where a later scan put it):
    // a decision is made where the pack is held, not at the site as a whole (primer
    // §5.8). A held pack stays there (bizLocation); a verified one rejoins the site's
    // stock, to be put away.
    let object = trace_object::Entity::find_by_id((rv.organisation_id.clone(), key.key()))
        .one(txn)
        .await?;
    let location = object
        .as_ref()
        .filter(|o| o.site_id.as_deref() == Some(site.id.as_str()))
        .and_then(|o| o.location.clone());
    let read_point = ctx.place(location.as_deref());
    let biz_location = match c.step {
        BizStep::Inspecting => ctx.place(None),
        _ => read_point.clone(),
    };
    let event = EpcisEvent {
        event_type: EventType::ObjectEvent,
        event_id: None,
        event_time: format_time_ms(now),
        event_time_zone_offset: ctx.zone.offset_at(now),
        record_time: None,
        epc_list: vec![epc],
        parent_id: None,
        child_epcs: Vec::new(),
        action: Action::Observe,
        biz_step: Some(c.step),
        disposition: Some(c.disposition),
        persistent_disposition: c.persistent,
        read_point,
        biz_location,
        biz_transaction_list: Vec::new(),
        ilmd: None,
        swt_scan_id: Some(rv.scan_id.clone()),
    };
    let origin = Origin {
        time_ms: now,
        location: location.as_deref(),
        scan_id: &rv.scan_id,
        user: rv.user_id.as_deref().unwrap_or(""),
        device: rv.device_id.as_deref().unwrap_or(""),
    };
    store::write_event_rows(txn, &ctx, &origin, &[event], now).await?;
    trace_object::Entity::update_many()
        .col_expr(trace_object::Column::Status, Expr::value(c.status))
        .col_expr(trace_object::Column::LastEventTimeMs, Expr::value(now))
        .col_expr(trace_object::Column::UpdatedAtMs, Expr::value(now))
        .filter(trace_object::Column::OrganisationId.eq(rv.organisation_id.as_str()))
        .filter(trace_object::Column::EpcKey.eq(key.key()))
        .exec(txn)
        .await?;
    let mut outcomes = vec![crate::outbox::Outcome {
        kind: crate::outbox::OutcomeKind::ReturnVerified,
        stream: rv.document_id.clone(),
        data: serde_json::json!({
            "task_id": rv.document_id, "scan_id": rv.scan_id, "site_id": site.id,
            "gtin": rv.gtin, "serial": rv.serial, "lot": rv.lot, "expiry": rv.expiry,
            "decision": rv.state, "verified": rv.verified,
            "verification_failure_reason": rv.failure_reason,
            "additional_info": rv.additional_info, "responder": rv.responder,
            "status": c.status.as_str(), "disposition": c.disposition,
        }),
    }];
    if c.status == UnitStatus::Quarantined
        && let Some(mut object) = object.filter(|o| o.status != UnitStatus::Quarantined)
    {
        object.status = UnitStatus::Quarantined;
        outcomes.push(store::quarantine_outcome(
            &ctx,
            &object,
            &rv.scan_id,
            "return_not_verified",
        ));
    }
    crate::outbox::record(txn, &rv.organisation_id, outcomes, now).await?;
    // A held pack is blocked on every scanner from the next sync on.
    let held = [(rv.gtin.clone(), rv.serial.clone())];
    crate::reference::touched(
        txn,
        &rv.organisation_id,
        crate::reference::Touched::Held(&held),
    )
    .await?;
    if let Some(kind) = c.exception {
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

/// What a decision makes of the pack: the event's step and dispositions, its stock
/// status, and the exception for the manager.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Consequence {
    step: BizStep,
    disposition: Disposition,
    persistent: Option<PersistentDisposition>,
    status: UnitStatus,
    exception: Option<ExceptionKind>,
}

/// Primer §5.8–5.10: verified → `inspecting` + `sellable_not_accessible`; otherwise
/// `holding` with the disposition that says why. The responder's `additionalInfo` names
/// the reason whatever the manufacturer's policy made of `verified`: a pack of a recalled
/// lot is `recalled` (and keeps `recalled` as a persistent disposition, as a recall hold
/// does) also when the policy answered `verified: false`. A scan that was not what its
/// first verdict was for is never made sellable by the fresh one: held, its mismatch
/// exception is open.
fn consequence(rv: &return_verification::Model) -> Consequence {
    let held = |disposition, exception| Consequence {
        step: BizStep::Holding,
        disposition,
        persistent: (disposition == Disposition::Recalled).then(|| PersistentDisposition {
            set: vec![Disposition::Recalled],
            unset: Vec::new(),
        }),
        status: UnitStatus::Quarantined,
        exception,
    };
    let info = rv
        .additional_info
        .as_deref()
        .and_then(AdditionalInfo::parse_lenient);
    match rv.state {
        ReturnState::Sellable if rv.mismatch.is_some() => held(Disposition::NonSellableOther, None),
        ReturnState::Sellable => Consequence {
            step: BizStep::Inspecting,
            disposition: Disposition::SellableNotAccessible,
            persistent: None,
            status: UnitStatus::InStock,
            exception: None,
        },
        state => {
            let exception = Some(if state == ReturnState::Review {
                ExceptionKind::ReturnNeedsReview
            } else {
                ExceptionKind::ReturnNotVerified
            });
            let disposition = match info {
                Some(AdditionalInfo::Recalled) => Disposition::Recalled,
                Some(AdditionalInfo::Expired) => Disposition::Expired,
                _ if state == ReturnState::Review => Disposition::NonSellableOther,
                // Not verified for any other reason: provenance not validated.
                _ => Disposition::NoPedigreeMatch,
            };
            held(disposition, exception)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decided(
        state: ReturnState,
        verified: bool,
        info: Option<&str>,
    ) -> return_verification::Model {
        return_verification::Model {
            organisation_id: "org".into(),
            scan_id: "s.1".into(),
            document_id: "doc".into(),
            site_id: Some("site".into()),
            user_id: None,
            device_id: None,
            gtin: "00312345678906".into(),
            serial: "SN1".into(),
            lot: Some("LOTR".into()),
            expiry: Some("300131".into()),
            state,
            verified: Some(verified),
            failure_reason: None,
            additional_info: info.map(str::to_owned),
            responder: None,
            exchange_pk: None,
            attempts: 1,
            last_error: None,
            next_attempt_ms: 0,
            scanned_at_ms: 0,
            decided_at_ms: Some(1),
            applied_at_ms: None,
            bound_at_ms: Some(1),
            mismatch: None,
        }
    }

    /// (bizStep, disposition, persistent set) of a decision.
    fn event_of(rv: &return_verification::Model) -> (BizStep, Disposition, Vec<Disposition>) {
        let c = consequence(rv);
        (
            c.step,
            c.disposition,
            c.persistent.map(|p| p.set).unwrap_or_default(),
        )
    }

    #[test]
    fn a_recalled_lot_is_held_as_recalled_under_every_policy() {
        use BizStep::Holding;
        use Disposition::Recalled;
        // Default policy: `verified: true` + Recalled → review.
        let dflt = decided(ReturnState::Review, true, Some("Recalled"));
        // Strict policy: `verified: false`, Manufacturer_policy + Recalled → quarantined.
        let strict = decided(ReturnState::Quarantined, false, Some("recalled"));
        for rv in [&dflt, &strict] {
            // Primer §5.10: holding, recalled, and `recalled` set persistently.
            assert_eq!(event_of(rv), (Holding, Recalled, vec![Recalled]), "{rv:?}");
            assert_eq!(consequence(rv).status, UnitStatus::Quarantined);
        }
        assert_eq!(
            consequence(&dflt).exception,
            Some(ExceptionKind::ReturnNeedsReview)
        );
        assert_eq!(
            consequence(&strict).exception,
            Some(ExceptionKind::ReturnNotVerified)
        );
    }

    #[test]
    fn other_decisions_follow_the_primers_returns_rows() {
        use BizStep::*;
        use Disposition::*;
        for (rv, want) in [
            (
                decided(ReturnState::Sellable, true, None),
                (Inspecting, SellableNotAccessible),
            ),
            (
                decided(ReturnState::Quarantined, false, None),
                (Holding, NoPedigreeMatch),
            ),
            (
                decided(ReturnState::Quarantined, false, Some("Illegitimate")),
                (Holding, NoPedigreeMatch),
            ),
            (
                decided(ReturnState::Review, true, Some("Expired")),
                (Holding, Expired),
            ),
            (
                decided(ReturnState::Quarantined, false, Some("Expired")),
                (Holding, Expired),
            ),
            (
                decided(ReturnState::Review, true, Some("Suspect")),
                (Holding, NonSellableOther),
            ),
            (
                return_verification::Model {
                    mismatch: Some("{}".into()),
                    ..decided(ReturnState::Sellable, true, None)
                },
                (Holding, NonSellableOther),
            ),
        ] {
            // Only a recall sets a persistent disposition.
            assert_eq!(event_of(&rv), (want.0, want.1, Vec::new()), "{rv:?}");
        }
    }
}
