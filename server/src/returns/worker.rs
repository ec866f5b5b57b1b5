//! The returns worker: verifies due pending records (retrying while responders are
//! unreachable) and applies decided ones whose scans are projected.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::Notify;

use super::ReturnState;
use super::apply::apply_decision;
use super::service::{ReturnsError, attempt};
use crate::config::VerificationConfig;
use crate::db::entity::return_verification;
use crate::verification::Verification;

/// How often the worker looks for due work when nothing wakes it.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Runs until `stop`: verifies due pending records, applies decided ones whose scans are
/// projected, and wakes the projector to write the outcomes back into documents.
pub async fn run(
    db: DatabaseConnection,
    v: Arc<Verification>,
    cfg: VerificationConfig,
    projector_wake: Arc<Notify>,
    stop: Arc<Notify>,
) {
    loop {
        match sweep(&db, &v, &cfg).await {
            Ok(applied) if applied > 0 => projector_wake.notify_one(),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "returns verification sweep failed; will retry"),
        }
        tokio::select! {
            () = tokio::time::sleep(SWEEP_EVERY) => {}
            () = stop.notified() => return,
        }
    }
}

/// One pass of the worker; returns how many decisions it applied.
pub async fn sweep(
    db: &DatabaseConnection,
    v: &Verification,
    cfg: &VerificationConfig,
) -> Result<usize, ReturnsError> {
    let now = Utc::now().timestamp_millis();
    let due = return_verification::Entity::find()
        .filter(return_verification::Column::State.eq(ReturnState::Pending))
        .filter(return_verification::Column::NextAttemptMs.lte(now))
        .order_by_asc(return_verification::Column::NextAttemptMs)
        .limit(32)
        .all(db)
        .await?;
    for rv in due {
        // Lease the record: another process sweeping now skips it.
        let lease = now.saturating_add(30_000);
        let took = return_verification::Entity::update_many()
            .col_expr(
                return_verification::Column::NextAttemptMs,
                Expr::value(lease),
            )
            .filter(return_verification::Column::OrganisationId.eq(rv.organisation_id.as_str()))
            .filter(return_verification::Column::ScanId.eq(rv.scan_id.as_str()))
            .filter(return_verification::Column::NextAttemptMs.eq(rv.next_attempt_ms))
            .filter(return_verification::Column::State.eq(ReturnState::Pending))
            .exec(db)
            .await?
            .rows_affected;
        if took == 1 {
            let after = attempt(db, v, cfg, &rv).await?;
            tracing::info!(scan = %after.scan_id, state = %after.state, error = ?after.last_error, "returned pack verification");
        }
    }
    let decided = return_verification::Entity::find()
        .filter(return_verification::Column::State.ne(ReturnState::Pending))
        .filter(return_verification::Column::AppliedAtMs.is_null())
        // Unbound records wait for their scan's projection; left in, they could fill the
        // page forever.
        .filter(return_verification::Column::BoundAtMs.is_not_null())
        .limit(64)
        .all(db)
        .await?;
    let mut applied = 0;
    for rv in decided {
        match apply_decision(db, &rv).await {
            Ok(true) => applied += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(scan = %rv.scan_id, error = %e, "applying a returns decision failed; will retry")
            }
        }
    }
    Ok(applied)
}
