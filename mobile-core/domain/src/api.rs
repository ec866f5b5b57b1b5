//! JSON types of the device-facing REST API, compiled once for the scanner's client and
//! the server's routes (the binary sync batch is in [`crate::wire`]). Readers ignore
//! fields they do not know, so either side may add one without breaking the other.

use serde::{Deserialize, Serialize};

use crate::model::{ReferenceData, ReferenceDelta};

/// The body of every error answer: a stable code, the refusal reason where one applies
/// (sync refusals), and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable machine-readable code (`unauthorized`, `wrong_site`, …).
    pub code: String,
    /// The refusal reason code, where the error is a refusal with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What went wrong, for a person.
    pub message: String,
}

/// The user a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// User id: scans carry it.
    pub id: String,
    /// Sign-in name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Role: `picker`, `receiver`, `returns_clerk`, `manager` or `admin`.
    pub role: String,
    /// Organisation id.
    pub organisation_id: String,
    /// Site id, if the user is bound to one.
    pub site_id: Option<String>,
}

/// A registered scanner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Its site.
    pub site_id: String,
    /// Its Automerge actor id (hex): the device must write with exactly this actor.
    pub actor_id: String,
    /// Its name.
    pub name: String,
    /// Disabled devices cannot sign in, and tokens bound to them are refused.
    #[serde(default)]
    pub disabled: bool,
    /// Scans and voids recorded on the device that the server had not acknowledged when
    /// it last reported (after a full sync run); none before its first report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsent: Option<u64>,
    /// When it last reported that (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unsent_reported_at: Option<String>,
}

/// `PUT /devices/self/unsent`: what a scanner still holds undelivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UnsentReport {
    /// Scans and voids recorded on the device that the server has not acknowledged.
    pub writes: u64,
}

/// `POST /auth/login` and `/auth/refresh`: the tokens and who they are for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedIn {
    /// Bearer token for API calls (short-lived).
    pub access_token: String,
    /// Always `Bearer`.
    #[serde(default = "bearer")]
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// One-time refresh token (long-lived, rotated on use).
    pub refresh_token: String,
    /// The user.
    pub user: UserInfo,
    /// The device, for scanner sessions.
    pub device: Option<DeviceInfo>,
}

fn bearer() -> String {
    "Bearer".to_owned()
}

/// A task as lists show it (`GET /tasks`, and the answer to creating one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskSummary {
    /// Task (= document) id.
    pub id: String,
    /// Kind of work (`receiving`, `picking`, …).
    pub kind: String,
    /// Site id.
    pub site_id: String,
    /// `open`, `closed`, `cancelled` or `continued`.
    pub status: String,
    /// Title.
    pub title: String,
    /// Scans merged so far.
    #[serde(default)]
    pub scan_count: i64,
    /// Document version (increases with every merge).
    #[serde(default)]
    pub version: i64,
    /// Merged scans are waiting for the projection (events, stock, results).
    #[serde(default)]
    pub projection_pending: bool,
    /// Created, RFC 3339.
    #[serde(default)]
    pub created_at: String,
    /// Last changed, RFC 3339.
    #[serde(default)]
    pub updated_at: String,
}

/// `POST /returns/verify`: a returned pack to verify while the clerk waits. The server
/// keys the check by scan id, so the later sync of the same scan finds the decision made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyReturn {
    /// The returns task document.
    pub document_id: String,
    /// The recorded scan's id.
    pub scan_id: String,
    /// GTIN-14.
    pub gtin: String,
    /// Serial.
    pub serial: String,
    /// Lot.
    pub lot: Option<String>,
    /// Expiry, YYMMDD.
    pub expiry: Option<String>,
}

/// `GET /api/v1/reference/{site}?since=<version>`: what a scanner needs to bring its copy
/// of the site's reference data up to date, in the smallest form the server can give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ReferenceUpdate {
    /// The copy at `version` is current.
    Current {
        /// Site id.
        site: String,
        /// The current version.
        version: u64,
    },
    /// The changes since the version the scanner has.
    Delta(ReferenceDelta),
    /// A full copy: the scanner had none, or a version the server cannot build a delta
    /// from (another database, or older than the changes it keeps).
    Full(ReferenceData),
}

impl ReferenceUpdate {
    /// The version the scanner holds once the update is applied.
    pub fn version(&self) -> u64 {
        match self {
            Self::Current { version, .. } => *version,
            Self::Delta(d) => d.to_version,
            Self::Full(d) => d.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_round_trip_with_their_kind_tag() {
        let mut full = ReferenceData {
            site: "s1".into(),
            version: 7,
            ..Default::default()
        };
        full.block("09506000134352", "S1");
        full.recall("09506000134352", "L1");
        for u in [
            ReferenceUpdate::Current {
                site: "s1".into(),
                version: 3,
            },
            ReferenceUpdate::Delta(ReferenceDelta {
                site: "s1".into(),
                from_version: 3,
                to_version: 4,
                ..Default::default()
            }),
            ReferenceUpdate::Full(full),
        ] {
            let json = serde_json::to_string(&u).unwrap();
            assert!(json.starts_with(r#"{"kind":"#), "{json}");
            assert_eq!(serde_json::from_str::<ReferenceUpdate>(&json).unwrap(), u);
        }
        // Blocked serials and recalled lots travel grouped by GTIN.
        let json = serde_json::to_value(ReferenceUpdate::Full({
            let mut d = ReferenceData::default();
            d.block("09506000134352", "S1");
            d.block("09506000134352", "S2");
            d
        }))
        .unwrap();
        assert_eq!(
            json["blocked_serials"]["09506000134352"],
            serde_json::json!(["S1", "S2"])
        );
    }

    #[test]
    fn unknown_kind_is_an_error() {
        assert!(serde_json::from_str::<ReferenceUpdate>(r#"{"kind":"other"}"#).is_err());
    }
}
