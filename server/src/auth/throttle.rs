//! Sign-in throttling and the password-hashing capacity.
//!
//! Three counters limit guessing, each in a fixed window that starts with its first
//! attempt (`[auth]` settings, defaults in brackets):
//! - a user name from one client address [5]: the limit a person mistyping meets;
//! - a user name from all addresses [50]: only a guesser spread over many addresses
//!   reaches it, and it locks the name for the rest of the window at most;
//! - a client address for any names [100]: stops one address sweeping many names.
//!
//! A stranger can therefore lock a name out only from its own address (the real user at
//! another address is unaffected), or for everyone only from a spread of addresses and
//! only until the window ends. Each counter is raised *before* the password is checked,
//! by one atomic upsert that returns the new count, so of N concurrent attempts exactly
//! the limit are checked, on SQLite and PostgreSQL and across server processes. A
//! successful sign-in gives its attempt back (and clears the name-and-address counter).
//!
//! Hashing runs on the blocking pool, at most `hash_workers` at once with `hash_queue`
//! more waiting; a sign-in beyond that is answered 503 at once instead of queueing
//! without bound behind Argon2 while the async workers serve everything else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::AuthConfig;
use crate::db::entity::login_throttle::{self, Column as C};
use crate::http::ApiError;
use crate::state::AppState;

/// How often expired counter rows are purged (by whichever sign-in comes first after it).
const PURGE_EVERY_SECS: i64 = 10;

/// The client's address as the throttle sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The address as one throttling unit: an IPv6 client owns at least a /64, so it
    /// counts as its /64.
    fn unit(self) -> String {
        match self.0 {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = a.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
        }
    }
}

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    /// The TCP peer; `X-Forwarded-For` only when the peer is a configured trusted proxy
    /// (its last entry: the address that proxy saw). Never fails: without connection
    /// info (a router driven in-process) the address is unspecified.
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        if !state.config.auth.trusted_proxies.contains(&peer) {
            return Ok(Self(peer));
        }
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .next_back()
            .and_then(|last| last.trim().parse::<IpAddr>().ok());
        Ok(Self(forwarded.unwrap_or(peer)))
    }
}

/// Why a sign-in may not go ahead now.
#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// A counter is over its limit.
    #[error("too many sign-in attempts; try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the window ends.
        retry_after_secs: i64,
    },
    /// Every hash worker is busy and the queue is full.
    #[error("sign-in is busy; try again in a moment")]
    Busy,
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// The throttle and hashing capacity of one server process.
pub struct Throttle {
    config: AuthConfig,
    /// Sign-ins hashing or waiting to hash.
    admitted: Arc<Semaphore>,
    /// Sign-ins hashing.
    workers: Arc<Semaphore>,
    next_purge: AtomicI64,
}

/// The counters one sign-in raised; given back on success or when it never got hashed.
#[derive(Debug)]
pub struct Reservation {
    name_and_address: String,
    name: String,
    address: String,
}

/// A place in the hashing queue; hashing waits for a worker with [`Ticket::run`].
pub struct Ticket {
    _admitted: OwnedSemaphorePermit,
    workers: Arc<Semaphore>,
}

impl Ticket {
    /// Runs `f` on the blocking pool once a worker is free.
    pub async fn run<T: Send + 'static>(
        self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ThrottleError> {
        let _worker = self
            .workers
            .acquire_owned()
            .await
            .map_err(|_| ThrottleError::Busy)?;
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| ThrottleError::Busy)
    }
}

fn key(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        // Length-prefixed, so ("ab", "c") and ("a", "bc") never share a key.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Throttle {
    /// A throttle with the given settings.
    pub fn new(config: &AuthConfig) -> Self {
        let workers = if config.hash_workers == 0 {
            std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
        } else {
            config.hash_workers
        };
        Self {
            config: config.clone(),
            admitted: Arc::new(Semaphore::new(workers + config.hash_queue)),
            workers: Arc::new(Semaphore::new(workers)),
            next_purge: AtomicI64::new(0),
        }
    }

    /// Counts an attempt for `username` from `addr` in every scope; refuses when any
    /// scope is over its limit (the attempt stays counted there: hammering a lock does
    /// not shorten it, and cannot lengthen it either, since the window is fixed).
    pub async fn reserve(
        &self,
        db: &DatabaseConnection,
        username: &str,
        addr: ClientAddr,
    ) -> Result<Reservation, ThrottleError> {
        let now = Utc::now().timestamp();
        self.maybe_purge(db, now);
        let unit = addr.unit();
        let r = Reservation {
            name_and_address: key("name+address", &[username, &unit]),
            name: key("name", &[username]),
            address: key("address", &[&unit]),
        };
        let c = &self.config;
        // The address first: a sweep over many names stops there without touching a row
        // per name.
        for (scope, limit) in [
            (&r.address, c.max_attempts_per_address),
            (&r.name_and_address, c.max_attempts_per_name_and_address),
            (&r.name, c.max_attempts_per_name),
        ] {
            let (count, start) = self.count(db, scope, now).await?;
            if count > i64::from(limit) {
                let window = i64::try_from(c.window_secs).unwrap_or(i64::MAX);
                return Err(ThrottleError::Throttled {
                    retry_after_secs: std::cmp::max(start.saturating_add(window) - now, 1),
                });
            }
        }
        Ok(r)
    }

    /// A place in the hashing queue, or `Busy` at once when it is full.
    pub fn admit(&self) -> Result<Ticket, ThrottleError> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| ThrottleError::Busy)?;
        Ok(Ticket {
            _admitted: admitted,
            workers: Arc::clone(&self.workers),
        })
    }

    /// Gives the attempt back: it was not a failed password (it succeeded, or was never
    /// checked). On success the name-and-address counter starts over.
    pub async fn release(
        &self,
        db: &DatabaseConnection,
        r: &Reservation,
        succeeded: bool,
    ) -> Result<(), DbErr> {
        if succeeded {
            login_throttle::Entity::delete_by_id(r.name_and_address.as_str())
                .exec(db)
                .await?;
        } else {
            decrement(db, &r.name_and_address).await?;
        }
        decrement(db, &r.name).await?;
        decrement(db, &r.address).await
    }

    /// One atomic upsert: a new row at 1, a row whose window has passed restarts at 1,
    /// otherwise +1. Returns the count and the window's start.
    async fn count(
        &self,
        db: &DatabaseConnection,
        scope: &str,
        now: i64,
    ) -> Result<(i64, i64), DbErr> {
        let window = i64::try_from(self.config.window_secs).unwrap_or(i64::MAX);
        let expired =
            || Expr::col((login_throttle::Entity, C::WindowStart)).lte(now.saturating_sub(window));
        let stmt = Query::insert()
            .into_table(login_throttle::Entity)
            .columns([C::ScopeKey, C::Attempts, C::WindowStart])
            .values([scope.into(), 1i32.into(), now.into()])
            .map_err(|e| DbErr::Custom(e.to_string()))?
            .on_conflict(
                OnConflict::column(C::ScopeKey)
                    .value(
                        C::Attempts,
                        Expr::case(expired(), 1i32)
                            .finally(Expr::col((login_throttle::Entity, C::Attempts)).add(1i32)),
                    )
                    .value(
                        C::WindowStart,
                        Expr::case(expired(), now)
                            .finally(Expr::col((login_throttle::Entity, C::WindowStart))),
                    )
                    .to_owned(),
            )
            .returning(Query::returning().columns([C::Attempts, C::WindowStart]))
            .to_owned();
        let row = db
            .query_one(&stmt)
            .await?
            .ok_or_else(|| DbErr::Custom("login_throttle upsert returned no row".into()))?;
        let attempts: i32 = row.try_get("", "attempts")?;
        let start: i64 = row.try_get("", "window_start")?;
        Ok((i64::from(attempts), start))
    }

    /// Starts a purge in the background when one is due (one process-wide at a time).
    fn maybe_purge(&self, db: &DatabaseConnection, now: i64) {
        let due = self.next_purge.load(Ordering::Relaxed);
        if now < due
            || self
                .next_purge
                .compare_exchange(
                    due,
                    now + PURGE_EVERY_SECS,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let db = db.clone();
        let window = i64::try_from(self.config.window_secs).unwrap_or(i64::MAX);
        let cap = self.config.max_throttle_rows;
        tokio::spawn(async move {
            if let Err(e) = purge(&db, now.saturating_sub(window), cap).await {
                tracing::warn!(error = %e, "purging sign-in counters");
            }
        });
    }
}

async fn decrement(db: &DatabaseConnection, scope: &str) -> Result<(), DbErr> {
    login_throttle::Entity::update_many()
        .col_expr(C::Attempts, Expr::col(C::Attempts).sub(1i32))
        .filter(C::ScopeKey.eq(scope))
        .filter(C::Attempts.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes the counters whose window ended before `expired_before`; if more than `cap`
/// remain, the oldest windows go first. Returns how many rows were deleted.
pub async fn purge(db: &DatabaseConnection, expired_before: i64, cap: u64) -> Result<u64, DbErr> {
    let mut deleted = login_throttle::Entity::delete_many()
        .filter(C::WindowStart.lte(expired_before))
        .exec(db)
        .await?
        .rows_affected;
    let left = login_throttle::Entity::find().count(db).await?;
    if left > cap {
        let oldest: Vec<String> = login_throttle::Entity::find()
            .select_only()
            .column(C::ScopeKey)
            .order_by_asc(C::WindowStart)
            .limit(left - cap)
            .into_tuple()
            .all(db)
            .await?;
        for chunk in oldest.chunks(500) {
            deleted += login_throttle::Entity::delete_many()
                .filter(C::ScopeKey.is_in(chunk.iter().map(String::as_str)))
                .exec(db)
                .await?
                .rows_affected;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().expect("ip"));
        let b = ClientAddr("2001:db8:1:2:bbbb::9".parse().expect("ip"));
        assert_eq!(a.unit(), b.unit());
        let mapped = ClientAddr("::ffff:192.0.2.7".parse().expect("ip"));
        assert_eq!(mapped.unit(), "192.0.2.7");
    }

    #[test]
    fn keys_do_not_collide_across_boundaries() {
        assert_ne!(key("k", &["ab", "c"]), key("k", &["a", "bc"]));
        assert_ne!(key("name", &["x"]), key("address", &["x"]));
    }
}
