//! Signing in, refreshing and revoking sessions; managing users and devices.
//! No HTTP here: routes and commands call these.

use base64::Engine;
use chrono::{Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    ExprTrait, PaginatorTrait, QueryFilter, QueryOrder, TransactionTrait, sea_query::Expr,
};
use sha2::{Digest, Sha256};

use super::keys::KeyRing;
use super::throttle::{ClientAddr, Throttle, ThrottleError};
use super::token::{self, ACCESS_TTL_SECS, Subject};
use super::{Role, password};
use crate::db::entity::{app_user, device, organisation, refresh_token, site};

/// Refresh token lifetime: a scanner offline over a long weekend still syncs afterwards.
pub const REFRESH_TTL: Duration = Duration::days(30);

/// Why an auth operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Wrong user name or password (deliberately not saying which).
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// Too many attempts recently: failed ones, and ones still being checked (so a burst
    /// of correct sign-ins for one user from one address can meet it too).
    #[error("too many sign-in attempts; try again in {retry_after_secs} s")]
    Throttled {
        /// Seconds until the next attempt is accepted.
        retry_after_secs: i64,
    },
    /// Every password-hash worker is busy and the queue is full.
    #[error("sign-in is busy; try again in a moment")]
    Busy,
    /// The user works at another site than the device.
    #[error("device {0} belongs to a site you do not work at")]
    WrongSite(String),
    /// The refresh token is unknown, expired or revoked.
    #[error("refresh token is invalid, expired or revoked; sign in again")]
    InvalidRefresh,
    /// A refresh token was used twice: the whole session is revoked.
    #[error("refresh token was already used; the session has been revoked, sign in again")]
    RefreshReused,
    /// The device is unknown, disabled, or not of the user's organisation.
    #[error("device {0} is not registered to your organisation or is disabled")]
    BadDevice(String),
    /// Invalid input to an admin operation.
    #[error("{0}")]
    Invalid(String),
    /// Not found (admin operations).
    #[error("{0} not found")]
    NotFound(String),
    /// Tokens could not be issued.
    #[error(transparent)]
    Token(#[from] token::TokenError),
    /// Password hashing failed.
    #[error(transparent)]
    Hash(#[from] password::HashError),
    /// Database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

impl From<ThrottleError> for AuthError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Throttled { retry_after_secs } => Self::Throttled { retry_after_secs },
            ThrottleError::Busy => Self::Busy,
            ThrottleError::Db(e) => Self::Db(e),
        }
    }
}

pub use swt_domain::api::{DeviceInfo, SignedIn, UserInfo};

fn user_info(u: &app_user::Model) -> Result<UserInfo, AuthError> {
    Ok(UserInfo {
        id: u.id.clone(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        // Checked, so a client never sees a role the server would not accept.
        role: u
            .role
            .parse::<Role>()
            .map_err(AuthError::Invalid)?
            .as_str()
            .to_owned(),
        organisation_id: u.organisation_id.clone(),
        site_id: u.site_id.clone(),
    })
}

/// A device row as clients see it.
pub fn device_info(d: &device::Model) -> DeviceInfo {
    DeviceInfo {
        id: d.id.clone(),
        site_id: d.site_id.clone(),
        actor_id: d.actor_id.clone(),
        name: d.name.clone(),
        disabled: d.disabled,
        unsent: d.unsent_writes.and_then(|n| u64::try_from(n).ok()),
        unsent_reported_at: d.unsent_reported_at.map(|t| t.to_rfc3339()),
    }
}

/// SHA-256 of a secret, hex: how refresh tokens are stored and looked up.
pub(crate) fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh secret: 32 random bytes, base64url without padding (refresh tokens,
/// integration keys).
pub(crate) fn new_secret() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Invalid(format!("no randomness: {e}")))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// Longest user name that can exist (see [`add_user`]); longer ones are refused unhashed.
const MAX_USERNAME: usize = 128;
/// Longest password hashed: Argon2 takes any length, a megabyte of it is just load.
const MAX_PASSWORD: usize = 1024;

/// Signs in with a user name and password, optionally on a registered device. The
/// attempt is counted first (see [`super::throttle`]), the password checked on the blocking
/// pool.
pub async fn login(
    db: &DatabaseConnection,
    keys: &KeyRing,
    throttle: &Throttle,
    addr: ClientAddr,
    username: &str,
    password_given: &str,
    device_id: Option<&str>,
) -> Result<SignedIn, AuthError> {
    if username.len() > MAX_USERNAME || password_given.len() > MAX_PASSWORD {
        return Err(AuthError::InvalidCredentials);
    }
    let reservation = throttle.reserve(db, username, addr).await?;
    let ticket = match throttle.admit() {
        Ok(t) => t,
        Err(e) => {
            // Never checked: the attempt must not count against anyone.
            throttle.release(db, &reservation, false).await?;
            return Err(e.into());
        }
    };
    let user = app_user::Entity::find()
        .filter(app_user::Column::Username.eq(username))
        .one(db)
        .await?;
    // Unknown names are checked against a dummy hash: the same time as a known one.
    let stored = user.as_ref().map_or_else(
        || password::dummy_hash().to_owned(),
        |u| u.password_hash.clone(),
    );
    let given = password_given.to_owned();
    let password_ok = ticket
        .run(move || password::verify(&given, &stored))
        .await?;
    let user = match user {
        Some(u) if password_ok && !u.disabled => u,
        // The counters keep the attempt: it was a failure.
        _ => return Err(AuthError::InvalidCredentials),
    };
    throttle.release(db, &reservation, true).await?;

    let device = match device_id {
        Some(id) => {
            let d = usable_device(db, id, &user.organisation_id).await?;
            // A user bound to a site signs in only on that site's scanners; managers and
            // admins (no site) on any of the organisation's.
            if user.site_id.as_deref().is_some_and(|s| s != d.site_id) {
                return Err(AuthError::WrongSite(id.to_owned()));
            }
            Some(d)
        }
        None => None,
    };
    let family = uuid::Uuid::now_v7().to_string();
    open_session(db, keys, &user, device.as_ref(), &family).await
}

async fn usable_device(
    db: &DatabaseConnection,
    id: &str,
    org_id: &str,
) -> Result<device::Model, AuthError> {
    match device::Entity::find_by_id(id).one(db).await? {
        Some(d) if d.organisation_id == org_id && !d.disabled => Ok(d),
        _ => Err(AuthError::BadDevice(id.to_owned())),
    }
}

async fn open_session(
    db: &DatabaseConnection,
    keys: &KeyRing,
    user: &app_user::Model,
    device: Option<&device::Model>,
    family: &str,
) -> Result<SignedIn, AuthError> {
    let info = user_info(user)?;
    // A scanner session works at the device's site.
    let site = device
        .map(|d| d.site_id.as_str())
        .or(user.site_id.as_deref());
    let access_token = token::issue(
        keys,
        db,
        &Subject {
            user_id: &user.id,
            org_id: &user.organisation_id,
            site_id: site,
            role: info.role.parse().map_err(AuthError::Invalid)?,
            device: device.map(|d| (d.id.as_str(), d.actor_id.as_str())),
            session: Some(family),
        },
    )
    .await?;
    let refresh = new_secret()?;
    let now = Utc::now();
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(user.id.clone()),
        device_id: Set(device.map(|d| d.id.clone())),
        token_hash: Set(hash_token(&refresh)),
        family_id: Set(family.to_owned()),
        expires_at: Set(now + REFRESH_TTL),
        used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    })
    .exec(db)
    .await?;
    Ok(SignedIn {
        access_token,
        token_type: "Bearer".to_owned(),
        expires_in: ACCESS_TTL_SECS,
        refresh_token: refresh,
        user: info,
        device: device.map(device_info),
    })
}

async fn revoke_family(db: &DatabaseConnection, family: &str) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(refresh_token::Column::FamilyId.eq(family))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Exchanges a refresh token for a new session; the old token is spent (rotation).
pub async fn refresh(
    db: &DatabaseConnection,
    keys: &KeyRing,
    refresh_given: &str,
) -> Result<SignedIn, AuthError> {
    let now = Utc::now();
    let row = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash_token(refresh_given)))
        .one(db)
        .await?
        .ok_or(AuthError::InvalidRefresh)?;
    if row.revoked_at.is_some() || row.expires_at <= now {
        return Err(AuthError::InvalidRefresh);
    }
    if row.used_at.is_some() {
        revoke_family(db, &row.family_id).await?;
        return Err(AuthError::RefreshReused);
    }
    // Spend it atomically: of two concurrent uses, exactly one wins.
    let spent = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
        .filter(refresh_token::Column::Id.eq(row.id.as_str()))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    if spent.rows_affected != 1 {
        revoke_family(db, &row.family_id).await?;
        return Err(AuthError::RefreshReused);
    }
    let user = app_user::Entity::find_by_id(row.user_id.as_str())
        .one(db)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(AuthError::InvalidRefresh)?;
    let device = match row.device_id.as_deref() {
        Some(id) => Some(
            usable_device(db, id, &user.organisation_id)
                .await
                .map_err(|_| AuthError::InvalidRefresh)?,
        ),
        None => None,
    };
    open_session(db, keys, &user, device.as_ref(), &row.family_id).await
}

/// Revokes the session a refresh token belongs to (sign out).
pub async fn logout(db: &DatabaseConnection, refresh_given: &str) -> Result<(), AuthError> {
    if let Some(row) = refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(hash_token(refresh_given)))
        .one(db)
        .await?
    {
        revoke_family(db, &row.family_id).await?;
    }
    Ok(())
}

/// The organisation to act on from the command line: the given one, or the only one.
pub async fn resolve_org(
    db: &DatabaseConnection,
    given: Option<&str>,
) -> Result<String, AuthError> {
    if let Some(id) = given {
        return organisation::Entity::find_by_id(id)
            .one(db)
            .await?
            .map(|o| o.id)
            .ok_or_else(|| AuthError::NotFound(format!("organisation {id}")));
    }
    let orgs = organisation::Entity::find().all(db).await?;
    match orgs.as_slice() {
        [one] => Ok(one.id.clone()),
        [] => Err(AuthError::Invalid(
            "no organisation exists yet (create one with `swt org add`, or run `swt demo`)".into(),
        )),
        _ => Err(AuthError::Invalid(
            "several organisations exist: name one with --org".into(),
        )),
    }
}

/// Sets the time zone of a site of `org_id` (by id or GLN). Events already recorded keep
/// the offset they were written with: an EPCIS event is never rewritten.
pub async fn set_site_time_zone(
    db: &DatabaseConnection,
    org_id: &str,
    id_or_gln: &str,
    time_zone: &str,
) -> Result<site::Model, AuthError> {
    let zone =
        crate::epcis::SiteZone::parse(time_zone).map_err(|e| AuthError::Invalid(e.to_string()))?;
    let found = resolve_site(db, org_id, id_or_gln).await?;
    let mut model: site::ActiveModel = found.into();
    model.time_zone = Set(zone.name().to_owned());
    Ok(model.update(db).await?)
}

/// A site of `org_id`, by id or GLN.
pub async fn resolve_site(
    db: &DatabaseConnection,
    org_id: &str,
    id_or_gln: &str,
) -> Result<site::Model, AuthError> {
    site::Entity::find()
        .filter(site::Column::OrganisationId.eq(org_id))
        .filter(
            site::Column::Id
                .eq(id_or_gln)
                .or(site::Column::Gln.eq(id_or_gln)),
        )
        .one(db)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("site {id_or_gln}")))
}

/// Adds a user.
pub async fn add_user(
    db: &DatabaseConnection,
    org_id: &str,
    site_id: Option<&str>,
    username: &str,
    display_name: &str,
    role: Role,
    password_given: &str,
) -> Result<UserInfo, AuthError> {
    if username.trim().is_empty() || username.len() > 128 {
        return Err(AuthError::Invalid(
            "user name must be 1 to 128 characters".into(),
        ));
    }
    if role == Role::Integration {
        // An ERP signs in with a key of its own, never a password (see `integration`).
        return Err(AuthError::Invalid(
            "integration is not a person's role: make an integration account instead".into(),
        ));
    }
    if password_given.chars().count() < 12 {
        return Err(AuthError::Invalid(
            "password must have at least 12 characters".into(),
        ));
    }
    let taken = app_user::Entity::find()
        .filter(app_user::Column::Username.eq(username))
        .count(db)
        .await?;
    if taken > 0 {
        return Err(AuthError::Invalid(format!("user name {username} is taken")));
    }
    let model = app_user::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        organisation_id: Set(org_id.to_owned()),
        site_id: Set(site_id.map(str::to_owned)),
        username: Set(username.to_owned()),
        display_name: Set(display_name.to_owned()),
        role: Set(role.as_str().to_owned()),
        password_hash: Set(password::hash(password_given)?),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    };
    let inserted = app_user::Entity::insert(model)
        .exec_with_returning(db)
        .await?;
    user_info(&inserted)
}

/// The users of an organisation, with whether each is disabled.
pub async fn list_users(
    db: &DatabaseConnection,
    org_id: &str,
) -> Result<Vec<(UserInfo, bool)>, AuthError> {
    app_user::Entity::find()
        .filter(app_user::Column::OrganisationId.eq(org_id))
        .order_by_asc(app_user::Column::Username)
        .all(db)
        .await?
        .iter()
        .map(|u| Ok((user_info(u)?, u.disabled)))
        .collect()
}

/// Disables a user (by user name) and revokes every session they hold.
pub async fn disable_user(db: &DatabaseConnection, username: &str) -> Result<(), AuthError> {
    let user = app_user::Entity::find()
        .filter(app_user::Column::Username.eq(username))
        .one(db)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("user {username}")))?;
    set_user_disabled(db, &user.organisation_id, &user.id, true).await?;
    Ok(())
}

/// Disables or enables a user of `org_id`, by id. Disabling revokes every session the
/// user holds (their access tokens stop at the next status check, see `revocation`);
/// enabling lets them sign in again, with no session brought back.
pub async fn set_user_disabled(
    db: &DatabaseConnection,
    org_id: &str,
    user_id: &str,
    disabled: bool,
) -> Result<UserInfo, AuthError> {
    let user = app_user::Entity::find()
        .filter(app_user::Column::OrganisationId.eq(org_id))
        .filter(app_user::Column::Id.eq(user_id))
        .one(db)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("user {user_id}")))?;
    let txn = db.begin().await?;
    app_user::Entity::update_many()
        .col_expr(app_user::Column::Disabled, Expr::value(disabled))
        .filter(app_user::Column::Id.eq(user.id.as_str()))
        .exec(&txn)
        .await?;
    if disabled {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::UserId.eq(user.id.as_str()))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    user_info(&user)
}

/// Registers a scanner at a site and gives it its own Automerge actor id.
pub async fn register_device(
    db: &DatabaseConnection,
    org_id: &str,
    site_id: &str,
    name: &str,
) -> Result<DeviceInfo, AuthError> {
    let id = uuid::Uuid::now_v7();
    // 16 random bytes: an actor id never reused by another install.
    let actor = hex::encode(uuid::Uuid::new_v4().as_bytes());
    let model = device::ActiveModel {
        id: Set(id.to_string()),
        organisation_id: Set(org_id.to_owned()),
        site_id: Set(site_id.to_owned()),
        name: Set(name.to_owned()),
        actor_id: Set(actor),
        disabled: Set(false),
        registered_at: Set(Utc::now()),
        unsent_writes: Set(None),
        unsent_reported_at: Set(None),
    };
    let inserted = device::Entity::insert(model)
        .exec_with_returning(db)
        .await?;
    Ok(device_info(&inserted))
}

/// The devices of `org_id`, oldest registration first.
pub async fn list_devices(db: &DatabaseConnection, org_id: &str) -> Result<Vec<DeviceInfo>, DbErr> {
    Ok(device::Entity::find()
        .filter(device::Column::OrganisationId.eq(org_id))
        .order_by_asc(device::Column::RegisteredAt)
        .all(db)
        .await?
        .iter()
        .map(device_info)
        .collect())
}

/// The most a scanner may say it holds undelivered: far above any shift's work, so a
/// larger figure is a broken client, refused rather than shown.
pub const MAX_UNSENT_WRITES: u64 = 10_000_000;

/// Records what a scanner says it still holds undelivered (see `UnsentReport`).
pub async fn report_unsent(
    db: &DatabaseConnection,
    org_id: &str,
    device_id: &str,
    writes: u64,
) -> Result<(), AuthError> {
    let n = i64::try_from(writes)
        .ok()
        .filter(|_| writes <= MAX_UNSENT_WRITES)
        .ok_or_else(|| {
            AuthError::Invalid(format!(
                "writes must be at most {MAX_UNSENT_WRITES}, not {writes}"
            ))
        })?;
    let done = device::Entity::update_many()
        .col_expr(device::Column::UnsentWrites, Expr::value(Some(n)))
        .col_expr(
            device::Column::UnsentReportedAt,
            Expr::value(Some(Utc::now())),
        )
        .filter(device::Column::OrganisationId.eq(org_id))
        .filter(device::Column::Id.eq(device_id))
        .exec(db)
        .await?;
    if done.rows_affected == 0 {
        return Err(AuthError::NotFound(format!("device {device_id}")));
    }
    Ok(())
}

/// Disables (or re-enables) a device of `org_id`. Disabling also revokes its refresh
/// tokens: after re-enabling, its user signs in again. A device of another organisation
/// is not found, like one that does not exist.
pub async fn set_device_disabled(
    db: &DatabaseConnection,
    org_id: &str,
    id: &str,
    disabled: bool,
) -> Result<DeviceInfo, AuthError> {
    let changed = device::Entity::update_many()
        .col_expr(device::Column::Disabled, Expr::value(disabled))
        .filter(device::Column::Id.eq(id))
        .filter(device::Column::OrganisationId.eq(org_id))
        .exec(db)
        .await?;
    if changed.rows_affected == 0 {
        return Err(AuthError::NotFound(format!("device {id}")));
    }
    if disabled {
        refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(refresh_token::Column::DeviceId.eq(id))
            .filter(refresh_token::Column::RevokedAt.is_null())
            .exec(db)
            .await?;
    }
    let row = device::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("device {id}")))?;
    Ok(device_info(&row))
}

fn parse_gln(text: &str) -> Result<String, AuthError> {
    swt_domain::gs1::Gln::parse(text.trim())
        .map(|g| g.as_str().to_owned())
        .map_err(|e| AuthError::Invalid(format!("GLN {text:?}: {e}")))
}

fn check_name(name: &str) -> Result<String, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AuthError::Invalid(
            "name must be 1 to 200 characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Creates an organisation, with its party GLN if it has one (check digit verified).
pub async fn add_org(
    db: &DatabaseConnection,
    name: &str,
    gln: Option<&str>,
) -> Result<organisation::Model, AuthError> {
    let model = organisation::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        name: Set(check_name(name)?),
        gln: Set(gln.map(parse_gln).transpose()?),
        created_at: Set(Utc::now()),
    };
    Ok(organisation::Entity::insert(model)
        .exec_with_returning(db)
        .await?)
}

/// Adds a site to `org_id`. Its GLN (check digit verified) names one physical location
/// worldwide, so no other site may have it.
pub async fn add_site(
    db: &DatabaseConnection,
    org_id: &str,
    name: &str,
    gln: &str,
    address: Option<&str>,
    time_zone: &str,
) -> Result<site::Model, AuthError> {
    let gln = parse_gln(gln)?;
    let zone =
        crate::epcis::SiteZone::parse(time_zone).map_err(|e| AuthError::Invalid(e.to_string()))?;
    let name = check_name(name)?;
    let taken = site::Entity::find()
        .filter(site::Column::Gln.eq(gln.as_str()))
        .count(db)
        .await?;
    if taken > 0 {
        return Err(AuthError::Invalid(format!("GLN {gln} is already a site's")));
    }
    let model = site::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        organisation_id: Set(org_id.to_owned()),
        name: Set(name),
        gln: Set(gln),
        address: Set(address.map(str::to_owned)),
        time_zone: Set(zone.name().to_owned()),
        created_at: Set(Utc::now()),
    };
    Ok(site::Entity::insert(model).exec_with_returning(db).await?)
}
