//! Access tokens: short-lived EdDSA JWTs carrying who is calling, for which
//! organisation and site, in which role, and from which device.

use chrono::Utc;
use jsonwebtoken::{Algorithm, Header, Validation};
use sea_orm::DatabaseConnection;
use serde::{Deserialize, Serialize};

use super::Role;
use super::keys::KeyRing;

/// Who issues and who accepts our tokens.
pub const ISSUER: &str = "swt-server";
/// The audience of our tokens.
pub const AUDIENCE: &str = "swt";
/// Access token lifetime.
pub const ACCESS_TTL_SECS: i64 = 15 * 60;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub sub: String,
    /// The user's organisation.
    pub org: String,
    /// The user's site, if bound to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The user's role.
    pub role: Role,
    /// The device the user signed in on, for scanner sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The device's Automerge actor id (hex), so sync can check changes without a lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The session (refresh-token family): signing out ends the token with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// Token id.
    pub jti: String,
}

/// Why a token was not accepted (all answered 401).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, bad signature, wrong issuer/audience, or expired.
    #[error("invalid or expired access token")]
    Invalid,
    /// The token names a key we do not have.
    #[error("access token signed with an unknown key")]
    UnknownKey,
    /// No signing key is available (cannot happen after start-up).
    #[error("no signing key")]
    NoKey,
}

/// What an access token is issued for.
pub struct Subject<'a> {
    /// User id.
    pub user_id: &'a str,
    /// Organisation id.
    pub org_id: &'a str,
    /// Site id.
    pub site_id: Option<&'a str>,
    /// Role.
    pub role: Role,
    /// Device id and actor, for scanner sessions.
    pub device: Option<(&'a str, &'a str)>,
    /// The session (refresh-token family); none for tokens minted outside a sign-in
    /// (benchmarks, tests).
    pub session: Option<&'a str>,
}

/// Issues an access token for `subject`.
pub async fn issue(
    keys: &KeyRing,
    db: &DatabaseConnection,
    subject: &Subject<'_>,
) -> Result<String, TokenError> {
    let (kid, key) = keys.signing(db).await.map_err(|_| TokenError::NoKey)?;
    let now = Utc::now().timestamp();
    let claims = Claims {
        sub: subject.user_id.to_owned(),
        org: subject.org_id.to_owned(),
        site: subject.site_id.map(str::to_owned),
        role: subject.role,
        device: subject.device.map(|(d, _)| d.to_owned()),
        actor: subject.device.map(|(_, a)| a.to_owned()),
        sid: subject.session.map(str::to_owned),
        iss: ISSUER.to_owned(),
        aud: AUDIENCE.to_owned(),
        iat: now,
        exp: now + ACCESS_TTL_SECS,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    jsonwebtoken::encode(&header, &claims, &key).map_err(|_| TokenError::NoKey)
}

/// Verifies a token: signature by a known key, EdDSA only, issuer, audience, expiry.
pub async fn verify(
    keys: &KeyRing,
    db: &DatabaseConnection,
    token: &str,
) -> Result<Claims, TokenError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
    let kid = header.kid.ok_or(TokenError::Invalid)?;
    let key = keys
        .verifying(db, &kid)
        .await
        .ok_or(TokenError::UnknownKey)?;
    // The algorithm is pinned here, never taken from the token's header.
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    validation.leeway = 30;
    jsonwebtoken::decode::<Claims>(token, &key, &validation)
        .map(|data| data.claims)
        .map_err(|_| TokenError::Invalid)
}
