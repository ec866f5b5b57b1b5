//! Whether an access token's user, device and session are still allowed, checked on
//! every request. Access tokens live 15 minutes; without this a disabled scanner, a
//! disabled user or a signed-out session would keep working until its token expired.
//!
//! Each process caches the answer per (user, device, session) for `revocation_cache_ms`
//! (3 s by default) and otherwise asks the database, which every process shares: a
//! change made through any process (or `swt device disable` on the command line) is
//! seen everywhere within that time, at the cost of three primary-key look-ups per
//! caller every few seconds. The process that makes the change forgets its cache at
//! once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter};

use super::token::Claims;
use crate::db::entity::{app_user, device, refresh_token};

/// Entries above which expired ones are dropped (and all, if that is not enough).
const MAX_ENTRIES: usize = 10_000;

/// Why a valid token is no longer honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Revoked {
    /// The user was disabled.
    #[error("your user account is disabled")]
    UserDisabled,
    /// The device the token is bound to was disabled.
    #[error("this device is disabled; ask an administrator")]
    DeviceDisabled,
    /// The session was signed out or revoked (e.g. refresh token reuse).
    #[error("the session has ended; sign in again")]
    SessionEnded,
}

type Key = (String, Option<String>, Option<String>);
/// When a status was checked, and what it was.
type Checked = (Instant, Result<(), Revoked>);

/// The per-process cache of status checks.
pub struct StatusCache {
    ttl: Duration,
    entries: Mutex<HashMap<Key, Checked>>,
}

impl StatusCache {
    /// A cache keeping answers for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Ok when the token's user, device and session are all still allowed.
    pub async fn check(
        &self,
        db: &DatabaseConnection,
        claims: &Claims,
    ) -> Result<Result<(), Revoked>, DbErr> {
        let key = (
            claims.sub.clone(),
            claims.device.clone(),
            claims.sid.clone(),
        );
        let now = Instant::now();
        if let Ok(entries) = self.entries.lock()
            && let Some((at, answer)) = entries.get(&key)
            && now.duration_since(*at) < self.ttl
        {
            return Ok(*answer);
        }
        let answer = status(db, claims).await?;
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                let ttl = self.ttl;
                entries.retain(|_, (at, _)| now.duration_since(*at) < ttl);
                if entries.len() >= MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(key, (now, answer));
        }
        Ok(answer)
    }

    /// Forgets every answer (this process just disabled or signed out something).
    pub fn forget(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

/// Users and devices are disabled, never deleted (scans and events name them), so only a
/// row marked disabled refuses; a token naming no row was minted by a key holder
/// (benchmarks, tests), not by a sign-in.
async fn status(db: &DatabaseConnection, claims: &Claims) -> Result<Result<(), Revoked>, DbErr> {
    let user = app_user::Entity::find_by_id(claims.sub.as_str())
        .one(db)
        .await?;
    if user.is_some_and(|u| u.disabled) {
        return Ok(Err(Revoked::UserDisabled));
    }
    if let Some(id) = &claims.device {
        let d = device::Entity::find_by_id(id.as_str()).one(db).await?;
        if d.is_some_and(|d| d.disabled) {
            return Ok(Err(Revoked::DeviceDisabled));
        }
    }
    if let Some(sid) = &claims.sid {
        // Revoking a session marks every refresh token of its family.
        let revoked = refresh_token::Entity::find()
            .filter(refresh_token::Column::FamilyId.eq(sid.as_str()))
            .filter(refresh_token::Column::RevokedAt.is_not_null())
            .count(db)
            .await?;
        if revoked > 0 {
            return Ok(Err(Revoked::SessionEnded));
        }
    }
    Ok(Ok(()))
}
