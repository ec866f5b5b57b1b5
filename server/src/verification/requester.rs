//! The LMS requester: asks another responder about a GTIN whose data we do not hold,
//! routed by GTIN prefix, with a timeout per attempt, bounded retries with backoff, a
//! circuit breaker per responder, and a short cache of positive answers (negative
//! answers are never cached: a pack that failed must be asked about afresh).
//! Every attempt, answered or not, is written to the audit log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::DatabaseConnection;

use super::audit::{self, Exchange};
use super::lms::{self, PeerAnswer, ReturnDecision, VerifyRequest};
use crate::config::{VerificationConfig, VerificationRoute};

/// What asking a peer came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    /// The responder answered (or a cached positive answer was reused).
    Answer {
        /// The answer.
        answer: PeerAnswer,
        /// The responder's base URL.
        peer: String,
        /// The audit record of the exchange that produced it.
        exchange_pk: i64,
        /// Reused from the cache.
        cached: bool,
    },
    /// No route for this GTIN.
    NoRoute,
    /// The responder answered with a final refusal (400, 401, 403, 404…): no retry helps.
    Refused {
        /// The responder.
        peer: String,
        /// Its status.
        status: u16,
        /// The audit record.
        exchange_pk: i64,
    },
    /// No usable answer after the retries, or the circuit is open: try again later.
    Unavailable {
        /// The responder.
        peer: String,
        /// What went wrong, in words.
        error: String,
        /// The audit record of the last attempt.
        exchange_pk: Option<i64>,
    },
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    gtin: String,
    lot: String,
    serial: String,
    expiry: String,
}

/// The requester; one per process.
pub struct Requester {
    cfg: VerificationConfig,
    routes: Vec<VerificationRoute>,
    agent: ureq::Agent,
    breakers: Mutex<HashMap<String, Breaker>>,
    cache: Mutex<HashMap<CacheKey, (PeerAnswer, String, i64, Instant)>>,
}

enum Attempt {
    Answer(PeerAnswer),
    Final(u16),
    Retry(String),
}

impl Requester {
    /// A requester with the configured routes and limits.
    pub fn new(cfg: &VerificationConfig) -> Requester {
        let mut routes = cfg.routes.clone();
        routes.sort_by_key(|r| std::cmp::Reverse(r.gtin_prefix.len()));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(cfg.peer_timeout_ms)))
            .http_status_as_error(false)
            .build()
            .into();
        Requester {
            cfg: cfg.clone(),
            routes,
            agent,
            breakers: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The route for a GTIN: the longest matching prefix.
    pub fn route(&self, gtin: &str) -> Option<&VerificationRoute> {
        self.routes
            .iter()
            .find(|r| gtin.starts_with(r.gtin_prefix.as_str()))
    }

    /// Asks the responder for `req`'s GTIN. `org` and `scan_id` go into the audit record.
    pub async fn ask(
        &self,
        db: &DatabaseConnection,
        req: &VerifyRequest,
        org: &str,
        scan_id: Option<&str>,
    ) -> Result<Asked, sea_orm::DbErr> {
        let Some(route) = self.route(req.id.gtin.as_str()).cloned() else {
            return Ok(Asked::NoRoute);
        };
        let key = CacheKey {
            gtin: req.id.gtin.as_str().to_owned(),
            lot: req.id.lot.clone(),
            serial: req.id.serial.clone(),
            expiry: req.id.expiry.clone(),
        };
        if let Some((answer, peer, pk)) = self.cached(&key) {
            return Ok(Asked::Answer {
                answer,
                peer,
                exchange_pk: pk,
                cached: true,
            });
        }
        let path = lms::request_path(req);
        let url = format!("{}{}", route.url.trim_end_matches('/'), path);
        let mut last_pk = None;
        let mut last_error = String::new();
        for attempt in 0..=self.cfg.peer_retries {
            if attempt > 0 {
                // 100 ms, 200 ms, 400 ms…: gives a restarting peer a moment, bounded.
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(5))).await;
            }
            if !self.may_call(&route.url) {
                let error = format!("circuit open for {} after repeated failures", route.url);
                let pk = self
                    .log(
                        db,
                        req,
                        org,
                        scan_id,
                        &route.url,
                        &path,
                        None,
                        None,
                        Some(&error),
                        0,
                    )
                    .await?;
                return Ok(Asked::Unavailable {
                    peer: route.url.clone(),
                    error,
                    exchange_pk: Some(pk),
                });
            }
            let started = Instant::now();
            let (status, body, outcome) = self
                .call(&url, route.api_key.as_deref(), &req.corr_uuid)
                .await;
            let us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
            let err = match &outcome {
                Attempt::Retry(e) => Some(e.as_str()),
                _ => None,
            };
            let pk = self
                .log(
                    db,
                    req,
                    org,
                    scan_id,
                    &route.url,
                    &path,
                    status,
                    body.as_deref(),
                    err,
                    us,
                )
                .await?;
            last_pk = Some(pk);
            match outcome {
                Attempt::Answer(answer) => {
                    self.succeeded(&route.url);
                    if self.cfg.cache_ttl_secs > 0
                        && ReturnDecision::of(answer.verified, answer.additional_info.as_deref())
                            == ReturnDecision::Sellable
                    {
                        self.remember(key, &answer, &route.url, pk);
                    }
                    return Ok(Asked::Answer {
                        answer,
                        peer: route.url.clone(),
                        exchange_pk: pk,
                        cached: false,
                    });
                }
                Attempt::Final(status) => {
                    // The peer is up and talking: not a failure of the circuit.
                    self.succeeded(&route.url);
                    return Ok(Asked::Refused {
                        peer: route.url.clone(),
                        status,
                        exchange_pk: pk,
                    });
                }
                Attempt::Retry(e) => {
                    self.failed(&route.url);
                    last_error = e;
                }
            }
        }
        Ok(Asked::Unavailable {
            peer: route.url,
            error: last_error,
            exchange_pk: last_pk,
        })
    }

    /// One HTTP attempt, on a blocking thread (the HTTP client is synchronous).
    async fn call(
        &self,
        url: &str,
        key: Option<&str>,
        corr: &str,
    ) -> (Option<u16>, Option<String>, Attempt) {
        let agent = self.agent.clone();
        let (url, key, corr) = (url.to_owned(), key.map(str::to_owned), corr.to_owned());
        let r = tokio::task::spawn_blocking(move || {
            let mut rq = agent
                .get(&url)
                .header("Accept", "application/json")
                .header(lms::VERSION_HEADER, lms::GS1US_VERSION);
            if let Some(k) = &key {
                rq = rq.header("Authorization", &format!("Bearer {k}"));
            }
            let resp = rq.call().map_err(|e| e.to_string())?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .with_config()
                .limit(64 * 1024)
                .read_to_vec()
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((status, body))
        })
        .await;
        match r {
            Err(e) => (
                None,
                None,
                Attempt::Retry(format!("requester task failed: {e}")),
            ),
            Ok(Err(e)) => (None, None, Attempt::Retry(e)),
            Ok(Ok((status, body))) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let outcome = match status {
                    200 => match PeerAnswer::parse(&body, &corr) {
                        Ok(a) => Attempt::Answer(a),
                        // A garbled answer may be a proxy's error page: worth a retry.
                        Err(e) => Attempt::Retry(e.to_string()),
                    },
                    408 | 429 | 500..=599 => {
                        Attempt::Retry(format!("responder answered HTTP {status}"))
                    }
                    other => Attempt::Final(other),
                };
                (Some(status), Some(text), outcome)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        db: &DatabaseConnection,
        req: &VerifyRequest,
        org: &str,
        scan_id: Option<&str>,
        peer: &str,
        path: &str,
        status: Option<u16>,
        body: Option<&str>,
        error: Option<&str>,
        duration_us: i64,
    ) -> Result<i64, sea_orm::DbErr> {
        let answer = body
            .filter(|_| status == Some(200))
            .and_then(|b| PeerAnswer::parse(b.as_bytes(), &req.corr_uuid).ok());
        audit::insert_returning_pk(
            db,
            Exchange {
                organisation_id: Some(org.to_owned()),
                direction: "outbound",
                corr_uuid: Some(req.corr_uuid.clone()),
                requestor_gln: Some(req.req_gln.as_str().to_owned()),
                responder_gln: answer.as_ref().and_then(|a| a.responder_gln.clone()),
                peer_url: Some(peer.to_owned()),
                context: Some(req.context.as_str().to_owned()),
                gtin: Some(req.id.gtin.as_str().to_owned()),
                lot: Some(req.id.lot.clone()),
                serial: Some(req.id.serial.clone()),
                expiry: Some(req.id.expiry.clone()),
                request: path.to_owned(),
                http_status: status,
                response_body: body.map(str::to_owned),
                verified: answer.as_ref().map(|a| a.verified),
                failure_reason: answer.as_ref().and_then(|a| a.failure_reason.clone()),
                additional_info: answer.as_ref().and_then(|a| a.additional_info.clone()),
                error: error.map(str::to_owned),
                scan_id: scan_id.map(str::to_owned),
                started_at_ms: Utc::now().timestamp_millis() - duration_us / 1000,
                duration_us,
            },
        )
        .await
    }

    fn may_call(&self, peer: &str) -> bool {
        let Ok(mut m) = self.breakers.lock() else {
            return true;
        };
        let b = m.entry(peer.to_owned()).or_default();
        match b.open_until {
            None => true,
            Some(t) if Instant::now() < t => false,
            // Half-open: one trial at a time decides whether the circuit closes.
            Some(_) if b.trial_in_flight => false,
            Some(_) => {
                b.trial_in_flight = true;
                true
            }
        }
    }

    fn succeeded(&self, peer: &str) {
        if let Ok(mut m) = self.breakers.lock() {
            m.insert(peer.to_owned(), Breaker::default());
        }
    }

    fn failed(&self, peer: &str) {
        if let Ok(mut m) = self.breakers.lock() {
            let b = m.entry(peer.to_owned()).or_default();
            b.failures += 1;
            if b.trial_in_flight || b.failures >= self.cfg.breaker_failures.max(1) {
                b.open_until =
                    Some(Instant::now() + Duration::from_secs(self.cfg.breaker_cooldown_secs));
                b.trial_in_flight = false;
            }
        }
    }

    /// Whether the circuit to `peer` is open now (for status pages and tests).
    pub fn circuit_open(&self, peer: &str) -> bool {
        self.breakers.lock().is_ok_and(|m| {
            m.get(peer)
                .and_then(|b| b.open_until)
                .is_some_and(|t| Instant::now() < t)
        })
    }

    fn cached(&self, key: &CacheKey) -> Option<(PeerAnswer, String, i64)> {
        let ttl = Duration::from_secs(self.cfg.cache_ttl_secs);
        let m = self.cache.lock().ok()?;
        let (a, peer, pk, at) = m.get(key)?;
        (at.elapsed() < ttl).then(|| (a.clone(), peer.clone(), *pk))
    }

    fn remember(&self, key: CacheKey, a: &PeerAnswer, peer: &str, pk: i64) {
        let ttl = Duration::from_secs(self.cfg.cache_ttl_secs);
        if let Ok(mut m) = self.cache.lock() {
            if m.len() >= self.cfg.cache_max_entries {
                m.retain(|_, (_, _, _, at)| at.elapsed() < ttl);
                if m.len() >= self.cfg.cache_max_entries {
                    // Still full of live entries: start afresh rather than grow.
                    m.clear();
                }
            }
            m.insert(key, (a.clone(), peer.to_owned(), pk, Instant::now()));
        }
    }
}
