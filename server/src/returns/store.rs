//! The `return_verification` rows: one record per returns scan, with its retry state.

use std::collections::BTreeMap;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use swt_domain::doc::VerificationOutcome;

use super::{Binding, ReturnState, result_code};
use crate::db::entity::{return_verification, verification_exchange};

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
        state: Set(ReturnState::Pending.to_owned()),
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

/// The verification result code of every returns scan of a document that has a record.
pub(crate) async fn result_codes(
    db: &impl ConnectionTrait,
    org: &str,
    doc_id: &str,
) -> Result<BTreeMap<String, VerificationOutcome>, DbErr> {
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

/// Inserts a record unless one exists under its scan id; returns the stored record
/// (the new one, or the one found).
pub async fn insert_or_existing(
    db: &impl ConnectionTrait,
    org: &str,
    scan_id: &str,
    row: return_verification::ActiveModel,
) -> Result<return_verification::Model, DbErr> {
    return_verification::Entity::insert(row)
        .on_conflict_do_nothing_on([
            return_verification::Column::OrganisationId,
            return_verification::Column::ScanId,
        ])
        .exec_without_returning(db)
        .await?;
    return_verification::Entity::find_by_id((org.to_owned(), scan_id.to_owned()))
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("verification record vanished".into()))
}

/// A page of an organisation's records, newest scan first: `limit` records scanned before
/// `before_ms`, in `state` if given.
pub async fn page(
    db: &impl ConnectionTrait,
    org: &str,
    state: Option<ReturnState>,
    before_ms: Option<i64>,
    limit: u64,
) -> Result<Vec<return_verification::Model>, DbErr> {
    let mut f = return_verification::Entity::find()
        .filter(return_verification::Column::OrganisationId.eq(org));
    if let Some(s) = state {
        f = f.filter(return_verification::Column::State.eq(s));
    }
    if let Some(b) = before_ms {
        f = f.filter(return_verification::Column::ScannedAtMs.lt(b));
    }
    f.order_by_desc(return_verification::Column::ScannedAtMs)
        .limit(limit)
        .all(db)
        .await
}

/// A record and every LMS exchange behind it, oldest first.
pub async fn with_exchanges(
    db: &impl ConnectionTrait,
    org: &str,
    scan_id: &str,
) -> Result<
    Option<(
        return_verification::Model,
        Vec<verification_exchange::Model>,
    )>,
    DbErr,
> {
    let Some(rv) = return_verification::Entity::find_by_id((org.to_owned(), scan_id.to_owned()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let exchanges = verification_exchange::Entity::find()
        .filter(verification_exchange::Column::OrganisationId.eq(org))
        .filter(verification_exchange::Column::ScanId.eq(scan_id))
        .order_by_asc(verification_exchange::Column::Pk)
        .all(db)
        .await?;
    Ok(Some((rv, exchanges)))
}
