//! One verification of a returned pack: from our own manufacturer data when we hold its
//! GTIN, else by asking the responder routed for it; and the online check a scanner asks
//! for right after the scan.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use swt_domain::api::VerifyReturn;

use super::{Binding, BindingConflict, ReturnState, store};
use crate::auth::Principal;
use crate::config::VerificationConfig;
use crate::db::entity::{organisation, return_verification};
use crate::verification::Verification;
use crate::verification::audit::{self, Exchange};
use crate::verification::lms::{Context, ProductId, ReturnDecision, VerifyRequest};
use crate::verification::requester::Asked;
use crate::verification::responder::{answer_locally, today};

/// Why a returns verification could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ReturnsError {
    /// Database failure.
    #[error("returns verification: {0}")]
    Db(#[from] DbErr),
}

/// What an attempt changed in the record.
struct Outcome {
    state: ReturnState,
    verified: Option<bool>,
    failure_reason: Option<String>,
    additional_info: Option<String>,
    responder: Option<String>,
    exchange_pk: Option<i64>,
    error: Option<String>,
}

impl Outcome {
    fn pending(error: String, responder: Option<String>, exchange_pk: Option<i64>) -> Outcome {
        Outcome {
            state: ReturnState::Pending,
            verified: None,
            failure_reason: None,
            additional_info: None,
            responder,
            exchange_pk,
            error: Some(error),
        }
    }

    fn quarantined(error: String) -> Outcome {
        Outcome {
            state: ReturnState::Quarantined,
            error: Some(error),
            ..Outcome::pending(String::new(), None, None)
        }
    }

    fn answered(
        verified: bool,
        reason: Option<String>,
        info: Option<String>,
        responder: String,
        pk: i64,
    ) -> Outcome {
        Outcome {
            state: ReturnDecision::of(verified, info.as_deref()).into(),
            verified: Some(verified),
            failure_reason: reason,
            additional_info: info,
            responder: Some(responder),
            exchange_pk: Some(pk),
            error: None,
        }
    }
}

/// Verifies one pending record and stores the outcome (unless another process decided it
/// meanwhile). Returns the record as it now stands.
pub async fn attempt(
    db: &DatabaseConnection,
    v: &Verification,
    cfg: &VerificationConfig,
    rv: &return_verification::Model,
) -> Result<return_verification::Model, ReturnsError> {
    if rv.state != ReturnState::Pending {
        return Ok(rv.clone());
    }
    let outcome = decide(db, v, rv).await?;
    let now = Utc::now().timestamp_millis();
    let decided = outcome.state != ReturnState::Pending;
    let retry_ms = i64::try_from(cfg.retry_pending_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    return_verification::Entity::update_many()
        .col_expr(
            return_verification::Column::State,
            Expr::value(outcome.state),
        )
        .col_expr(
            return_verification::Column::Verified,
            Expr::value(outcome.verified),
        )
        .col_expr(
            return_verification::Column::FailureReason,
            Expr::value(outcome.failure_reason),
        )
        .col_expr(
            return_verification::Column::AdditionalInfo,
            Expr::value(outcome.additional_info),
        )
        .col_expr(
            return_verification::Column::Responder,
            Expr::value(outcome.responder),
        )
        .col_expr(
            return_verification::Column::ExchangePk,
            Expr::value(outcome.exchange_pk),
        )
        .col_expr(
            return_verification::Column::LastError,
            Expr::value(outcome.error),
        )
        .col_expr(
            return_verification::Column::Attempts,
            Expr::value(rv.attempts.saturating_add(1)),
        )
        .col_expr(
            return_verification::Column::NextAttemptMs,
            Expr::value(now.saturating_add(retry_ms)),
        )
        .col_expr(
            return_verification::Column::DecidedAtMs,
            Expr::value(decided.then_some(now)),
        )
        .filter(return_verification::Column::OrganisationId.eq(rv.organisation_id.as_str()))
        .filter(return_verification::Column::ScanId.eq(rv.scan_id.as_str()))
        .filter(return_verification::Column::State.eq(ReturnState::Pending))
        // Only the binding it verified: a record set aside and bound to another scan
        // meanwhile must not receive this verdict.
        .filter(if rv.mismatch.is_some() {
            return_verification::Column::Mismatch.is_not_null()
        } else {
            return_verification::Column::Mismatch.is_null()
        })
        .exec(db)
        .await?;
    Ok(
        return_verification::Entity::find_by_id((rv.organisation_id.clone(), rv.scan_id.clone()))
            .one(db)
            .await?
            .unwrap_or_else(|| rv.clone()),
    )
}

async fn decide(
    db: &DatabaseConnection,
    v: &Verification,
    rv: &return_verification::Model,
) -> Result<Outcome, ReturnsError> {
    let (Some(lot), Some(expiry)) = (rv.lot.as_deref(), rv.expiry.as_deref()) else {
        // DSCSA verification needs all four elements; a pack without them cannot be
        // verified and so cannot be resold.
        return Ok(Outcome::quarantined(
            "the scan has no lot or expiry: the product identifier cannot be verified".into(),
        ));
    };
    let id = match ProductId::new(&rv.gtin, lot, &rv.serial, expiry) {
        Ok(id) => id,
        Err(e) => {
            return Ok(Outcome::quarantined(format!(
                "invalid product identifier: {e}"
            )));
        }
    };
    let started = std::time::Instant::now();
    if let Some(verdict) =
        answer_locally(db, &v.responder, &rv.organisation_id, &id, today()).await?
    {
        let reason = verdict.failure_reason.map(|r| r.as_str().to_owned());
        let info = verdict.additional_info.map(|i| i.as_str().to_owned());
        let pk = audit::insert_returning_pk(
            db,
            Exchange {
                organisation_id: Some(rv.organisation_id.clone()),
                direction: "local",
                context: Some(Context::SaleableReturn.as_str().to_owned()),
                gtin: Some(rv.gtin.clone()),
                lot: Some(lot.to_owned()),
                serial: Some(rv.serial.clone()),
                expiry: Some(expiry.to_owned()),
                request: "held manufacturer data".to_owned(),
                response_body: serde_json::to_string(&verdict).ok(),
                verified: Some(verdict.verified),
                failure_reason: reason.clone(),
                additional_info: info.clone(),
                scan_id: Some(rv.scan_id.clone()),
                started_at_ms: Utc::now().timestamp_millis(),
                duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
                ..Exchange::default()
            },
        )
        .await?;
        return Ok(Outcome::answered(
            verdict.verified,
            reason,
            info,
            "local".into(),
            pk,
        ));
    }
    let org = organisation::Entity::find_by_id(rv.organisation_id.as_str())
        .one(db)
        .await?;
    let Some(gln) = org
        .and_then(|o| o.gln)
        .and_then(|g| swt_domain::gs1::Gln::parse(&g).ok())
    else {
        return Ok(Outcome::pending(
            "the organisation has no valid GLN to ask as (reqGLN)".into(),
            None,
            None,
        ));
    };
    let req = VerifyRequest {
        id,
        context: Context::SaleableReturn,
        req_gln: gln,
        corr_uuid: uuid::Uuid::new_v4().to_string(),
        ctrl_possess_att: Some(true),
        email: None,
        telephone: None,
    };
    Ok(
        match v
            .requester
            .ask(db, &req, &rv.organisation_id, Some(&rv.scan_id))
            .await?
        {
            Asked::Answer {
                answer,
                peer,
                exchange_pk,
                ..
            } => Outcome::answered(
                answer.verified,
                answer.failure_reason,
                answer.additional_info,
                peer,
                exchange_pk,
            ),
            Asked::NoRoute => Outcome::pending(
                format!("no responder is configured for GTIN {}", rv.gtin),
                None,
                None,
            ),
            // The manufacturer's responder does not know the GTIN: not verifiable.
            Asked::Refused {
                peer,
                status: 404,
                exchange_pk,
            } => Outcome {
                responder: Some(peer),
                exchange_pk: Some(exchange_pk),
                ..Outcome::quarantined("the responder does not know this GTIN (404)".into())
            },
            // 400/401/403: our request or credentials are at fault; a person must fix the
            // configuration, then the retry succeeds.
            Asked::Refused {
                peer,
                status,
                exchange_pk,
            } => Outcome::pending(
                format!("the responder refused the request (HTTP {status})"),
                Some(peer),
                Some(exchange_pk),
            ),
            Asked::Unavailable {
                peer,
                error,
                exchange_pk,
            } => Outcome::pending(error, Some(peer), exchange_pk),
        },
    )
}

/// Why an online verification was refused; nothing was recorded unless it says so.
#[derive(Debug, thiserror::Error)]
pub enum VerifyNowError {
    /// A malformed field.
    #[error("{0}")]
    Invalid(String),
    /// Not signed in from a scanner: the verdict could never match a synced scan.
    #[error("returns are verified from the scanner that records the scan (a device sign-in)")]
    DeviceRequired,
    /// The scan id lies outside the calling device's id space: sync takes only scans keyed
    /// `<the writing actor's hex>.…`, so the caller could never sync it, and verifying it
    /// would reserve an id another scanner will use.
    #[error("scan id {0} is not in this device's id space (its actor, then '.')")]
    NotYours(String),
    /// No such task in the caller's organisation.
    #[error("no such task")]
    NoSuchTask,
    /// The task is not a returns task.
    #[error("task {id} is a {kind} task, not returns")]
    NotReturns {
        /// Task id.
        id: String,
        /// Its kind.
        kind: String,
    },
    /// The scan id's record has another binding; nothing was changed.
    #[error("scan {scan_id}: {conflict}")]
    Taken {
        /// The scan id.
        scan_id: String,
        /// How the bindings differ.
        conflict: BindingConflict,
    },
    /// Database failure.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// The verification itself failed.
    #[error(transparent)]
    Returns(#[from] ReturnsError),
}

/// The online path: verifies a returns scan's pack now, binding the verdict to the
/// calling scanner, its user and the identifiers given; the scan's later sync applies it
/// only if it is the same scan (see docs/returns-verification.md).
pub async fn verify_now(
    db: &DatabaseConnection,
    v: &Verification,
    cfg: &VerificationConfig,
    p: &Principal,
    body: &VerifyReturn,
) -> Result<return_verification::Model, VerifyNowError> {
    if swt_domain::model::ScanId::parse(&body.scan_id).is_err() {
        return Err(VerifyNowError::Invalid(format!(
            "scan_id {:?} is not a scan id",
            body.scan_id
        )));
    }
    let Some(device_id) = p.device_id.clone() else {
        return Err(VerifyNowError::DeviceRequired);
    };
    let own = p.actor_id.as_deref().is_some_and(|actor| {
        body.scan_id
            .split_once('.')
            .is_some_and(|(prefix, _)| prefix.eq_ignore_ascii_case(actor))
    });
    if !own {
        return Err(VerifyNowError::NotYours(body.scan_id.clone()));
    }
    let gtin = swt_domain::gs1::Gtin::parse(&body.gtin)
        .map_err(|e| VerifyNowError::Invalid(format!("gtin: {e}")))?;
    let doc = match crate::tasks::find_visible(db, p, &body.document_id).await {
        Ok(doc) => doc,
        Err(crate::tasks::TaskError::Db(e)) => return Err(e.into()),
        Err(_) => return Err(VerifyNowError::NoSuchTask),
    };
    if doc.kind != "returns" {
        return Err(VerifyNowError::NotReturns {
            id: doc.id,
            kind: doc.kind,
        });
    }
    let asked = Binding {
        document_id: doc.id.clone(),
        device_id: Some(device_id),
        user_id: Some(p.user_id.clone()),
        gtin: gtin.as_str().to_owned(),
        serial: body.serial.clone(),
        lot: body.lot.clone(),
        expiry: body.expiry.clone(),
    };
    let now = Utc::now().timestamp_millis();
    // Leased to this request: the worker leaves it alone while the clerk waits. Unbound
    // until the projection checks it against the synced scan.
    let row = store::new_record(
        &p.org_id,
        &body.scan_id,
        &doc.site_id,
        asked.clone(),
        now,
        now.saturating_add(30_000),
        None,
    );
    let rv = store::insert_or_existing(db, &p.org_id, &body.scan_id, row).await?;
    if let Some(conflict) = Binding::of_record(&rv).conflict(&asked) {
        return Err(VerifyNowError::Taken {
            scan_id: body.scan_id.clone(),
            conflict,
        });
    }
    Ok(attempt(db, v, cfg, &rv).await?)
}
