//! Saleable returns in the projection: a projected returns scan queues its pack for
//! product-identifier verification; once a verification decision exists, it is applied
//! exactly once (an `inspecting` or `holding` event, the pack's stock status, and an
//! exception for the manager when it is not sellable); and each scan's verification
//! state is written back into its task document with the other results.
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
use swt_core::model::{Action as ScanAction, Scan};

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

/// The code written into a scan's `results.verification` for a state: what the scanner
/// shows (`pending`, `verified`, `review`, `not_verified`).
pub fn result_code(state_code: &str) -> &'static str {
    match state_code {
        state::SELLABLE => "verified",
        state::REVIEW => "review",
        state::QUARANTINED => "not_verified",
        _ => "pending",
    }
}

/// Queues every projected returns scan of a serialized pack for verification (once: the
/// record's key is the scan id, so a re-run or a record made by the online path stays).
pub(crate) async fn enqueue(
    db: &DatabaseConnection,
    org: &str,
    doc_id: &str,
    site_id: &str,
    scans: &[Scan],
    markers: &BTreeMap<String, projected_scan::Model>,
) -> Result<(), DbErr> {
    let now = Utc::now().timestamp_millis();
    let rows: Vec<return_verification::ActiveModel> = scans
        .iter()
        .filter(|s| s.action == ScanAction::Return)
        .filter(|s| {
            markers
                .get(s.id.as_str())
                .is_some_and(|m| m.outcome == outcome::PROJECTED)
        })
        .filter_map(|s| {
            let gtin = s.ids.gtin.clone()?;
            let serial = s.ids.serial.clone()?;
            Some(return_verification::ActiveModel {
                organisation_id: Set(org.to_owned()),
                scan_id: Set(s.id.to_string()),
                document_id: Set(doc_id.to_owned()),
                site_id: Set(Some(site_id.to_owned())),
                user_id: Set(Some(s.user.clone())),
                device_id: Set(Some(s.device.clone())),
                gtin: Set(gtin),
                serial: Set(serial),
                lot: Set(s.ids.lot.clone()),
                expiry: Set(s.ids.expiry.clone()),
                state: Set(state::PENDING.to_owned()),
                verified: Set(None),
                failure_reason: Set(None),
                additional_info: Set(None),
                responder: Set(None),
                exchange_pk: Set(None),
                attempts: Set(0),
                last_error: Set(None),
                next_attempt_ms: Set(now),
                scanned_at_ms: Set(i64::try_from(s.device_time_ms).unwrap_or(i64::MAX)),
                decided_at_ms: Set(None),
                applied_at_ms: Set(None),
            })
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
        .map(|r| (r.scan_id, result_code(&r.state)))
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
    if rv.state == state::PENDING || rv.applied_at_ms.is_some() {
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
    // the disposition that says why.
    let (step, disp, new_status, exception) = match rv.state.as_str() {
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
