//! The LMS requester: asks another responder about a GTIN whose data we do not hold,
//! routed by GTIN prefix, with a timeout per attempt, bounded retries with backoff, a
//! circuit breaker per responder, and a short cache of positive answers (negative
//! answers are never cached: a pack that failed must be asked about afresh).
//! Every attempt, answered or not, is written to the audit log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
    /// Keep-alive connections to the peers; `Err` (the TLS set-up failed) makes every
    /// attempt fail, in the audit log and to the caller, rather than the server's start.
    client: Result<reqwest::Client, String>,
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
        let client = peer_client(Duration::from_millis(cfg.peer_timeout_ms)).map_err(|e| {
            tracing::error!(error = %e, "no HTTP client for LMS peers: every request to one fails");
            format!("no HTTP client for LMS peers: {e}")
        });
        Requester {
            cfg: cfg.clone(),
            routes,
            client,
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

    /// One HTTP attempt: the timeout covers it whole, from connecting to the last byte.
    async fn call(
        &self,
        url: &str,
        key: Option<&str>,
        corr: &str,
    ) -> (Option<u16>, Option<String>, Attempt) {
        let client = match &self.client {
            Ok(c) => c,
            Err(e) => return (None, None, Attempt::Retry(e.clone())),
        };
        let mut rq = client
            .get(url)
            .header("Accept", "application/json")
            .header(lms::VERSION_HEADER, lms::GS1US_VERSION);
        if let Some(k) = key {
            rq = rq.bearer_auth(k);
        }
        let r = match rq.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                read_limited(resp, MAX_ANSWER)
                    .await
                    .map(|body| (status, body))
            }
            Err(e) => Err(error_chain(&e)),
        };
        match r {
            Err(e) => (None, None, Attempt::Retry(e)),
            Ok((status, body)) => {
                let text = String::from_utf8_lossy(&body).into_owned();
                let outcome = match status {
                    200 => match PeerAnswer::parse(&body, corr) {
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

/// The client for LMS peers (and webhook receivers, `crate::outbox::webhooks`): HTTP/1.1
/// with keep-alive, `timeout` for each request from
/// connecting to its last byte, every status handed back (the caller judges them), and
/// TLS 1.2/1.3 on ring trusting the Mozilla root certificates bundled with the build, so
/// a peer's certificate is checked the same way on every host, whatever its trust store.
pub(crate) fn peer_client(timeout: Duration) -> Result<reqwest::Client, String> {
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS set-up: {e}"))?
    .with_root_certificates(rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
    .with_no_client_auth();
    reqwest::Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| error_chain(&e))
}

/// The longest answer read from a peer: an LMS answer is a few hundred bytes.
const MAX_ANSWER: usize = 64 * 1024;

/// The body of `resp`, refused once longer than `limit` bytes.
async fn read_limited(mut resp: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| error_chain(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(format!("answer longer than {limit} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An error with its causes, on one line: reqwest names the request, its sources say
/// what happened (timed out, connection refused, certificate…).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn https_peers_are_asked_over_tls() {
        // A peer that answers in plain HTTP on an https URL: the client must attempt the
        // TLS handshake there and fail it, not refuse the scheme or read the answer.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    .await;
            }
        });
        let client = peer_client(Duration::from_secs(5)).unwrap();
        let err = client
            .get(format!("https://{addr}/verify"))
            .send()
            .await
            .expect_err("plain HTTP is no TLS handshake");
        let why = error_chain(&err);
        assert!(err.is_connect(), "{why}");
        assert!(!why.contains("scheme"), "{why}");
    }
}
