//! JSON types of the device-facing REST API, compiled once for the scanner's client and
//! the server's routes (the binary sync batch is in [`crate::wire`]).

use serde::{Deserialize, Serialize};

use crate::model::{ReferenceData, ReferenceDelta};

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
