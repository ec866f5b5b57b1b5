//! The LMS responder: answers trading partners' verification requests from the
//! manufacturer data the organisation holds.
//!
//! Routes, under the configured base path (default `/verify`):
//! `GET {base}/gtin/{gtin}/lot/{lot}/ser/{serial}?exp=…` (and the numeric-AI form) and
//! `GET {base}/checkConnectivity?gtin=…&reqGLN=…`. A partner authenticates with
//! `Authorization: Bearer <key>`; no or an unknown key is 401, a suspended partner or one
//! asking under another GLN is 403, a malformed request 400, a GTIN we hold nothing for
//! 404. Only 200 carries the LMS body; errors carry `{"code","message"}` so the caller
//! learns what was wrong. Every request, answered or refused, is in the audit log before
//! its answer leaves.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::partners::key_hash;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect,
};
use swt_domain::gs1::Date;

use super::audit::Exchange;
use super::decide::{self, Held, Policy, PolicyAction, SerialStatus};
use super::lms::{self, ConnectivityResponse, ProductId, Verdict, VerifyResponse};
use crate::db::entity::{
    organisation, verification_lot, verification_partner, verification_policy, verification_serial,
};
use crate::http::ApiError;
use crate::state::AppState;

/// How long a partner's credentials and an organisation's policies are reused before
/// being read again: a suspension or policy change takes effect within this time.
pub const CACHE_FOR: Duration = Duration::from_secs(5);

/// An authenticated trading partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    /// Partner id.
    pub id: String,
    /// The organisation whose data it may ask about.
    pub organisation_id: String,
    /// The partner's GLN.
    pub gln: String,
    /// Suspended partners are known but not permitted.
    pub active: bool,
    /// The organisation's GLN (our `responderGLN`).
    pub responder_gln: Option<String>,
}

/// An organisation's policies by GTIN prefix, longest first.
type PolicyList = Vec<(String, Policy)>;

/// Caches of partners (by key hash) and policies (by organisation).
#[derive(Default)]
pub struct ResponderCache {
    partners: Mutex<HashMap<String, (Option<Partner>, Instant)>>,
    policies: Mutex<HashMap<String, (Arc<PolicyList>, Instant)>>,
    /// `org` NUL `gtin` of GTINs seen to hold serials. Only the positive answer is kept:
    /// a GTIN we hold nothing for is asked again each time, so newly imported data is
    /// answered at once; a GTIN whose serials are all deleted answers "no match" instead
    /// of 404 for at most [`CACHE_FOR`].
    gtins: Mutex<HashMap<String, Instant>>,
}

impl ResponderCache {
    /// The partner holding `key`, if any.
    pub async fn partner(
        &self,
        db: &DatabaseConnection,
        key: &str,
    ) -> Result<Option<Partner>, DbErr> {
        let hash = key_hash(key);
        if let Ok(m) = self.partners.lock()
            && let Some((p, at)) = m.get(&hash)
            && at.elapsed() < CACHE_FOR
        {
            return Ok(p.clone());
        }
        let found = verification_partner::Entity::find()
            .filter(verification_partner::Column::KeyHash.eq(hash.as_str()))
            .one(db)
            .await?;
        let partner = match found {
            None => None,
            Some(p) => {
                let org = organisation::Entity::find_by_id(p.organisation_id.as_str())
                    .one(db)
                    .await?;
                Some(Partner {
                    id: p.id,
                    organisation_id: p.organisation_id,
                    gln: p.gln,
                    active: p.status == "active",
                    responder_gln: org.and_then(|o| o.gln),
                })
            }
        };
        if let Ok(mut m) = self.partners.lock() {
            // Bounded: a flood of wrong keys must not grow the map without end.
            if m.len() > 10_000 {
                m.clear();
            }
            m.insert(hash, (partner.clone(), Instant::now()));
        }
        Ok(partner)
    }

    /// The policy for `gtin` in `org`: the longest matching prefix, else the default.
    pub async fn policy(
        &self,
        db: &DatabaseConnection,
        org: &str,
        gtin: &str,
    ) -> Result<Policy, DbErr> {
        let cached = self.policies.lock().ok().and_then(|m| {
            m.get(org)
                .filter(|(_, at)| at.elapsed() < CACHE_FOR)
                .map(|(v, _)| Arc::clone(v))
        });
        let list = match cached {
            Some(l) => l,
            None => {
                let rows = verification_policy::Entity::find()
                    .filter(verification_policy::Column::OrganisationId.eq(org))
                    .all(db)
                    .await?;
                let mut l: Vec<(String, Policy)> = rows
                    .into_iter()
                    .map(|r| {
                        let p = |s: &str| s.parse().unwrap_or(PolicyAction::Verified);
                        (
                            r.gtin_prefix,
                            Policy {
                                on_recalled: p(&r.on_recalled),
                                on_expired: p(&r.on_expired),
                                on_suspect: p(&r.on_suspect),
                                disclose_mismatch: r.disclose_mismatch,
                            },
                        )
                    })
                    .collect();
                l.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
                let l = Arc::new(l);
                if let Ok(mut m) = self.policies.lock() {
                    m.insert(org.to_owned(), (Arc::clone(&l), Instant::now()));
                }
                l
            }
        };
        Ok(list
            .iter()
            // A prefix is leading digits of the GTIN-14, or a company prefix written
            // after the indicator digit (how manufacturers quote it).
            .find(|(prefix, _)| {
                gtin.starts_with(prefix.as_str())
                    || gtin
                        .get(1..)
                        .is_some_and(|g| g.starts_with(prefix.as_str()))
            })
            .map(|(_, p)| *p)
            .unwrap_or_default())
    }

    /// Whether `org` holds any serial of `gtin` (asked only when the serial is unknown,
    /// to tell "no match" from "not our product").
    pub async fn gtin_held(
        &self,
        db: &DatabaseConnection,
        org: &str,
        gtin: &str,
    ) -> Result<bool, DbErr> {
        let key = format!("{org}\0{gtin}");
        if let Ok(m) = self.gtins.lock()
            && m.get(&key).is_some_and(|at| at.elapsed() < CACHE_FOR)
        {
            return Ok(true);
        }
        let any = verification_serial::Entity::find()
            .select_only()
            .column(verification_serial::Column::Serial)
            .filter(verification_serial::Column::OrganisationId.eq(org))
            .filter(verification_serial::Column::Gtin.eq(gtin))
            .limit(1)
            .into_tuple::<String>()
            .one(db)
            .await?;
        if any.is_some()
            && let Ok(mut m) = self.gtins.lock()
        {
            // Bounded like the partner map: requests name GTINs from outside.
            if m.len() > 100_000 {
                m.clear();
            }
            m.insert(key, Instant::now());
        }
        Ok(any.is_some())
    }
}

/// Answers from our own data: `None` when we hold nothing for the GTIN (the responder's
/// 404; the returns workflow then asks a peer).
pub async fn answer_locally(
    db: &DatabaseConnection,
    cache: &ResponderCache,
    org: &str,
    id: &ProductId,
    today: Date,
) -> Result<Option<Verdict>, DbErr> {
    let gtin = id.gtin.as_str();
    // Serial and its lot in one round trip: this is the one query every request makes.
    let (s, l) = (verification_serial::Entity, verification_lot::Entity);
    use verification_lot::Column as L;
    use verification_serial::Column as S;
    let stmt = Query::select()
        .columns([(s, S::Lot), (s, S::Expiry), (s, S::Status)])
        .columns([(l, L::Recalled), (l, L::ExpiryExtendedTo)])
        .from(s)
        .left_join(
            l,
            Expr::col((l, L::OrganisationId))
                .equals((s, S::OrganisationId))
                .and(Expr::col((l, L::Gtin)).equals((s, S::Gtin)))
                .and(Expr::col((l, L::Lot)).equals((s, S::Lot))),
        )
        .and_where(Expr::col((s, S::OrganisationId)).eq(org))
        .and_where(Expr::col((s, S::Gtin)).eq(gtin))
        .and_where(Expr::col((s, S::Serial)).eq(id.serial.as_str()))
        .to_owned();
    let held = match db.query_one(&stmt).await? {
        Some(row) => {
            let status: String = row.try_get("", "status")?;
            Some(Held {
                // An unknown stored status is treated as the gravest: never verify it.
                status: status.parse().unwrap_or(SerialStatus::Illegitimate),
                lot: row.try_get("", "lot")?,
                expiry: row.try_get("", "expiry")?,
                lot_recalled: row
                    .try_get::<Option<bool>>("", "recalled")?
                    .unwrap_or(false),
                expiry_extended_to: row.try_get("", "expiry_extended_to")?,
            })
        }
        None => {
            if !cache.gtin_held(db, org, gtin).await? {
                return Ok(None);
            }
            None
        }
    };
    let policy = cache.policy(db, org, gtin).await?;
    Ok(Some(decide::decide(id, held.as_ref(), &policy, today)))
}

/// Today's date in UTC (expiry is a calendar date; UTC is the responder's clock).
pub fn today() -> Date {
    let now = Utc::now().date_naive();
    use chrono::Datelike;
    Date::new(
        u16::try_from(now.year()).unwrap_or(2000),
        u8::try_from(now.month()).unwrap_or(1),
        u8::try_from(now.day()).unwrap_or(1),
    )
    .unwrap_or(Date {
        year: 2000,
        month: 1,
        day: 1,
    })
}

/// The responder's routes under `base`.
pub fn routes(base: &str) -> Router<AppState> {
    Router::new()
        .route(&format!("{base}/checkConnectivity"), get(connectivity))
        .route(&format!("{base}/{{*rest}}"), get(verify))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(key.trim())
}

/// Who is asking, or the refusal.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Partner, ApiError> {
    let unauth = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a trading partner key is required: Authorization: Bearer <key>",
        )
    };
    let key = bearer(headers).ok_or_else(unauth)?;
    state
        .verification
        .responder
        .partner(&state.db, key)
        .await?
        .ok_or_else(unauth)
}

fn permitted(p: &Partner, req_gln: &str) -> Result<String, ApiError> {
    if !p.active {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "partner_suspended",
            "this trading partner is suspended",
        ));
    }
    if p.gln != req_gln {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "req_gln_not_permitted",
            format!("this key belongs to GLN {}, not reqGLN {req_gln}", p.gln),
        ));
    }
    p.responder_gln
        .clone()
        .ok_or_else(|| ApiError::unavailable("the responding organisation has no GLN configured"))
}

fn request_line(uri: &Uri) -> String {
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned())
}

async fn verify(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let started_ms = Utc::now().timestamp_millis();
    let mut ex = Exchange {
        direction: "inbound",
        request: request_line(&uri),
        started_at_ms: started_ms,
        ..Exchange::default()
    };
    let result = answer(&state, &uri, &headers, &mut ex).await;
    if let Ok(r) = &result {
        ex.verified = Some(r.data.verified);
        ex.failure_reason = r.data.failure_reason.map(|f| f.as_str().to_owned());
        ex.additional_info = r.data.additional_info.map(|i| i.as_str().to_owned());
    }
    respond(&state, ex, started, result).await
}

/// Audits the exchange, then answers: no record, no answer — the audit trail must hold
/// every answer given.
async fn respond<T: serde::Serialize>(
    state: &AppState,
    mut ex: Exchange,
    started: Instant,
    result: Result<T, ApiError>,
) -> Response {
    let (status, body) = match result {
        Ok(r) => (StatusCode::OK, serde_json::to_vec(&r).unwrap_or_default()),
        Err(e) => (e.status(), e.body_bytes()),
    };
    ex.http_status = Some(status.as_u16());
    ex.response_body = Some(String::from_utf8_lossy(&body).into_owned());
    ex.duration_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
    if let Err(e) = state.verification.audit.record(ex).await {
        return ApiError::internal(e).into_response();
    }
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn answer(
    state: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    ex: &mut Exchange,
) -> Result<VerifyResponse, ApiError> {
    let partner = authenticate(state, headers).await?;
    ex.organisation_id = Some(partner.organisation_id.clone());
    let base = &state.config.verification.base_path;
    let rest = uri.path().strip_prefix(base.as_str()).unwrap_or(uri.path());
    let req = lms::parse_verify(rest, uri.query().unwrap_or(""))
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message))?;
    ex.corr_uuid = Some(req.corr_uuid.clone());
    ex.requestor_gln = Some(req.req_gln.as_str().to_owned());
    ex.context = Some(req.context.as_str().to_owned());
    ex.gtin = Some(req.id.gtin.as_str().to_owned());
    ex.lot = Some(req.id.lot.clone());
    ex.serial = Some(req.id.serial.clone());
    ex.expiry = Some(req.id.expiry.clone());
    let responder_gln = permitted(&partner, req.req_gln.as_str())?;
    ex.responder_gln = Some(responder_gln.clone());
    let verdict = answer_locally(
        &state.db,
        &state.verification.responder,
        &partner.organisation_id,
        &req.id,
        today(),
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_gtin",
            format!(
                "this responder holds no data for GTIN {}",
                req.id.gtin.as_str()
            ),
        )
    })?;
    Ok(VerifyResponse {
        verification_timestamp: lms::timestamp(Utc::now()),
        responder_gln,
        data: verdict,
        corr_uuid: req.corr_uuid,
    })
}

async fn connectivity(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let started = Instant::now();
    let mut ex = Exchange {
        direction: "inbound",
        request: request_line(&uri),
        started_at_ms: Utc::now().timestamp_millis(),
        ..Exchange::default()
    };
    let result: Result<ConnectivityResponse, ApiError> = async {
        let partner = authenticate(&state, &headers).await?;
        ex.organisation_id = Some(partner.organisation_id.clone());
        let req = lms::parse_connectivity(uri.query().unwrap_or(""))
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message))?;
        ex.requestor_gln = Some(req.req_gln.as_str().to_owned());
        ex.gtin = Some(req.gtin.as_str().to_owned());
        ex.context = req.context.map(|c| c.as_str().to_owned());
        let responder_gln = permitted(&partner, req.req_gln.as_str())?;
        ex.responder_gln = Some(responder_gln.clone());
        Ok(ConnectivityResponse { responder_gln })
    }
    .await;
    respond(&state, ex, started, result).await
}
