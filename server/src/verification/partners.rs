//! Who may ask us to verify (trading partners, each with an API key of its own) and how
//! each manufacturer wants recalled, expired and suspect packs answered (policy by GTIN
//! prefix). The key itself is shown once, at creation; only its SHA-256 is stored.

use sea_orm::DbErr;

use base64::Engine;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::OnConflict,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use swt_domain::gs1::Gln;
use utoipa::ToSchema;

use super::decide::PolicyAction;
use crate::db::entity::{verification_partner, verification_policy};

/// Why a partner or policy change was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum PartnerError {
    /// Bad input; the message names the field.
    #[error("{0}")]
    Invalid(String),
    /// No such partner or policy in the organisation.
    #[error("{0} not found")]
    NotFound(String),
    /// The change clashes with what exists.
    #[error("{0}")]
    Conflict(String),
    /// The system random source failed (no key could be made).
    #[error("the system random source: {0}")]
    Random(String),
    /// Database failure.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// What every partner key starts with, so a leaked one is recognisable in a log or a
/// secret scanner.
pub const KEY_PREFIX: &str = "swtp_";

/// A trading partner as admins see it (never its key or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PartnerView {
    /// Partner id.
    pub id: String,
    /// The partner's party GLN (its `reqGLN`).
    pub gln: String,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    /// When it was added, RFC 3339.
    pub created_at: String,
}

impl From<verification_partner::Model> for PartnerView {
    fn from(m: verification_partner::Model) -> Self {
        Self {
            id: m.id,
            gln: m.gln,
            name: m.name,
            status: m.status,
            created_at: chrono::DateTime::from_timestamp_millis(m.created_at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }
    }
}

/// A partner just added, with its key (shown this once).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct NewPartner {
    /// The partner.
    #[serde(flatten)]
    pub partner: PartnerView,
    /// Its API key: give it to the partner now, it cannot be shown again.
    pub key: String,
}

/// The stored form of a key: SHA-256, hex.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh key: `swtp_` + 32 random bytes, base64url without padding.
pub fn generate_key() -> Result<String, PartnerError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| PartnerError::Random(e.to_string()))?;
    Ok(format!(
        "{KEY_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// A GLN as given, checked (13 digits, check digit).
pub fn parse_gln(text: &str) -> Result<Gln, PartnerError> {
    Gln::parse(text.trim()).map_err(|e| PartnerError::Invalid(format!("GLN {text:?}: {e}")))
}

/// Adds a trading partner with a new random key.
pub async fn add_partner<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gln: &Gln,
    name: &str,
) -> Result<NewPartner, PartnerError> {
    let key = generate_key()?;
    add_partner_with_key(conn, org, gln, name, &key).await
}

/// Adds a trading partner with the given key (the demo's fixed one; tests).
pub async fn add_partner_with_key<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gln: &Gln,
    name: &str,
    key: &str,
) -> Result<NewPartner, PartnerError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(PartnerError::Invalid(
            "a partner's name is 1 to 200 characters".into(),
        ));
    }
    let existing = verification_partner::Entity::find()
        .filter(verification_partner::Column::OrganisationId.eq(org))
        .filter(verification_partner::Column::Gln.eq(gln.as_str()))
        .one(conn)
        .await?;
    if let Some(p) = existing {
        return Err(PartnerError::Conflict(format!(
            "a partner with GLN {gln} exists already ({})",
            p.name
        )));
    }
    let model = verification_partner::Model {
        id: uuid::Uuid::now_v7().to_string(),
        organisation_id: org.to_owned(),
        gln: gln.as_str().to_owned(),
        name: name.to_owned(),
        key_hash: key_hash(key),
        status: "active".to_owned(),
        created_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    verification_partner::Entity::insert(verification_partner::ActiveModel {
        id: Set(model.id.clone()),
        organisation_id: Set(model.organisation_id.clone()),
        gln: Set(model.gln.clone()),
        name: Set(model.name.clone()),
        key_hash: Set(model.key_hash.clone()),
        status: Set(model.status.clone()),
        created_at_ms: Set(model.created_at_ms),
    })
    .exec(conn)
    .await?;
    Ok(NewPartner {
        partner: model.into(),
        key: key.to_owned(),
    })
}

/// The organisation's partners, by GLN.
pub async fn list_partners<C: ConnectionTrait>(
    conn: &C,
    org: &str,
) -> Result<Vec<PartnerView>, PartnerError> {
    Ok(verification_partner::Entity::find()
        .filter(verification_partner::Column::OrganisationId.eq(org))
        .order_by_asc(verification_partner::Column::Gln)
        .all(conn)
        .await?
        .into_iter()
        .map(PartnerView::from)
        .collect())
}

/// Suspends (`active = false`) or re-activates a partner. A suspended partner stays
/// known (its requests are answered 403, not 401) but is not permitted.
pub async fn set_partner_active<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    gln: &Gln,
    active: bool,
) -> Result<PartnerView, PartnerError> {
    let found = verification_partner::Entity::find()
        .filter(verification_partner::Column::OrganisationId.eq(org))
        .filter(verification_partner::Column::Gln.eq(gln.as_str()))
        .one(conn)
        .await?
        .ok_or_else(|| PartnerError::NotFound(format!("partner with GLN {gln}")))?;
    let status = if active { "active" } else { "suspended" };
    verification_partner::Entity::update(verification_partner::ActiveModel {
        id: Set(found.id.clone()),
        status: Set(status.to_owned()),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    Ok(PartnerView::from(verification_partner::Model {
        status: status.to_owned(),
        ..found
    }))
}

/// A manufacturer's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyView {
    /// Leading digits of the GTINs it covers (the longest matching prefix wins).
    pub gtin_prefix: String,
    /// The manufacturer's name.
    pub manufacturer: String,
    /// How a recalled pack is answered.
    pub on_recalled: PolicyAction,
    /// How an expired pack is answered.
    pub on_expired: PolicyAction,
    /// How a suspect pack is answered.
    pub on_suspect: PolicyAction,
    /// Whether mismatches name the element; otherwise `No_reason_provided`.
    pub disclose_mismatch: bool,
    /// Last change, RFC 3339.
    pub updated_at: String,
}

impl From<verification_policy::Model> for PolicyView {
    fn from(m: verification_policy::Model) -> Self {
        let action = |s: &str| s.parse().unwrap_or(PolicyAction::Verified);
        Self {
            on_recalled: action(&m.on_recalled),
            on_expired: action(&m.on_expired),
            on_suspect: action(&m.on_suspect),
            disclose_mismatch: m.disclose_mismatch,
            gtin_prefix: m.gtin_prefix,
            manufacturer: m.manufacturer,
            updated_at: chrono::DateTime::from_timestamp_millis(m.updated_at_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .unwrap_or_default(),
        }
    }
}

/// A policy to set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyInput {
    /// 1 to 14 digits: leading digits of the GTIN-14s covered.
    pub gtin_prefix: String,
    /// The manufacturer's name.
    pub manufacturer: String,
    /// Default `verified`.
    #[serde(default = "verified")]
    pub on_recalled: PolicyAction,
    /// Default `verified`.
    #[serde(default = "verified")]
    pub on_expired: PolicyAction,
    /// Default `verified`.
    #[serde(default = "verified")]
    pub on_suspect: PolicyAction,
    /// Name the element that did not match (default), or answer every mismatch with
    /// `No_reason_provided`.
    #[serde(default = "yes")]
    pub disclose_mismatch: bool,
}

fn yes() -> bool {
    true
}

fn verified() -> PolicyAction {
    PolicyAction::Verified
}

fn check_prefix(prefix: &str) -> Result<&str, PartnerError> {
    let p = prefix.trim();
    if p.is_empty() || p.len() > 14 || !p.bytes().all(|c| c.is_ascii_digit()) {
        return Err(PartnerError::Invalid(format!(
            "GTIN prefix {prefix:?}: 1 to 14 digits"
        )));
    }
    Ok(p)
}

/// Sets (creates or replaces) the policy for a GTIN prefix.
pub async fn set_policy<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    input: &PolicyInput,
) -> Result<PolicyView, PartnerError> {
    let prefix = check_prefix(&input.gtin_prefix)?;
    let manufacturer = input.manufacturer.trim();
    if manufacturer.is_empty() || manufacturer.len() > 200 {
        return Err(PartnerError::Invalid(
            "a manufacturer's name is 1 to 200 characters".into(),
        ));
    }
    let model = verification_policy::Model {
        organisation_id: org.to_owned(),
        gtin_prefix: prefix.to_owned(),
        manufacturer: manufacturer.to_owned(),
        on_recalled: input.on_recalled.as_str().to_owned(),
        on_expired: input.on_expired.as_str().to_owned(),
        on_suspect: input.on_suspect.as_str().to_owned(),
        disclose_mismatch: input.disclose_mismatch,
        updated_at_ms: chrono::Utc::now().timestamp_millis(),
    };
    verification_policy::Entity::insert(verification_policy::ActiveModel {
        organisation_id: Set(model.organisation_id.clone()),
        gtin_prefix: Set(model.gtin_prefix.clone()),
        manufacturer: Set(model.manufacturer.clone()),
        on_recalled: Set(model.on_recalled.clone()),
        on_expired: Set(model.on_expired.clone()),
        on_suspect: Set(model.on_suspect.clone()),
        disclose_mismatch: Set(model.disclose_mismatch),
        updated_at_ms: Set(model.updated_at_ms),
    })
    .on_conflict(
        OnConflict::columns([
            verification_policy::Column::OrganisationId,
            verification_policy::Column::GtinPrefix,
        ])
        .update_columns([
            verification_policy::Column::Manufacturer,
            verification_policy::Column::OnRecalled,
            verification_policy::Column::OnExpired,
            verification_policy::Column::OnSuspect,
            verification_policy::Column::DiscloseMismatch,
            verification_policy::Column::UpdatedAtMs,
        ])
        .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(model.into())
}

/// The organisation's policies, by prefix.
pub async fn list_policies<C: ConnectionTrait>(
    conn: &C,
    org: &str,
) -> Result<Vec<PolicyView>, PartnerError> {
    Ok(verification_policy::Entity::find()
        .filter(verification_policy::Column::OrganisationId.eq(org))
        .order_by_asc(verification_policy::Column::GtinPrefix)
        .all(conn)
        .await?
        .into_iter()
        .map(PolicyView::from)
        .collect())
}

/// Removes the policy of a prefix (its GTINs fall back to a shorter prefix's policy, or
/// to answering `verified` with the facts).
pub async fn remove_policy<C: ConnectionTrait>(
    conn: &C,
    org: &str,
    prefix: &str,
) -> Result<(), PartnerError> {
    let prefix = check_prefix(prefix)?;
    let res = verification_policy::Entity::delete_many()
        .filter(verification_policy::Column::OrganisationId.eq(org))
        .filter(verification_policy::Column::GtinPrefix.eq(prefix))
        .exec(conn)
        .await?;
    if res.rows_affected == 0 {
        return Err(PartnerError::NotFound(format!(
            "policy for prefix {prefix}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape() {
        let k = generate_key().expect("random");
        assert!(k.starts_with(KEY_PREFIX));
        let body = &k[KEY_PREFIX.len()..];
        assert_eq!(body.len(), 43, "32 bytes base64url without padding");
        assert!(
            body.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
        assert_ne!(k, generate_key().expect("random"));
        assert_eq!(key_hash("abc").len(), 64);
        assert_eq!(
            key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn prefixes_are_digits() {
        assert!(check_prefix("0361500").is_ok());
        for bad in ["", "03615x", "012345678901234"] {
            assert!(check_prefix(bad).is_err(), "{bad}");
        }
    }
}
