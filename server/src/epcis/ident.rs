//! Identifiers of traced objects: the short key swt stores (`sgtin:<GTIN>:<serial>`,
//! `sscc:<SSCC>`, the same form as the task document's `expected.units`) and the GS1
//! Digital Link form it emits in EPCIS. All GS1 rules come from `swt_domain::gs1`.

use swt_domain::gs1::{self, Gs1Data, ParseOptions};

use super::DL_STEM;

/// Why a text is not an identifier of a traced object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ObjectKeyError {
    /// Not any form we know.
    #[error("not a serialized pack or container identifier: {0}")]
    Unrecognised(String),
    /// A GS1 rule is broken (check digit, length, character set).
    #[error("invalid GS1 identifier: {0}")]
    Gs1(String),
}

/// A serialized pack (GTIN + serial) or a logistic unit (SSCC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKey {
    /// GTIN-14 and serial (AI 01 + 21).
    Sgtin {
        /// GTIN-14.
        gtin: String,
        /// Serial.
        serial: String,
    },
    /// SSCC (AI 00), 18 digits.
    Sscc(String),
}

impl ObjectKey {
    /// A pack from a GTIN and serial, checked by the GS1 engine.
    pub fn sgtin(gtin: &str, serial: &str) -> Result<Self, ObjectKeyError> {
        Gs1Data::from_ais(&[("01", gtin), ("21", serial)])
            .map_err(|e| ObjectKeyError::Gs1(e.to_string()))?;
        Ok(Self::Sgtin {
            gtin: gtin.to_owned(),
            serial: serial.to_owned(),
        })
    }

    /// A logistic unit from an SSCC, checked by the GS1 engine.
    pub fn sscc(sscc: &str) -> Result<Self, ObjectKeyError> {
        Gs1Data::from_ais(&[("00", sscc)]).map_err(|e| ObjectKeyError::Gs1(e.to_string()))?;
        Ok(Self::Sscc(sscc.to_owned()))
    }

    /// Parses the stored key form, a bare 18-digit SSCC, an EPC URN, a GS1 Digital Link
    /// URI, or GS1 element / bracketed data (what a scanner or a manager might paste).
    pub fn parse(text: &str) -> Result<Self, ObjectKeyError> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("sscc:") {
            return Self::sscc(rest);
        }
        if let Some(rest) = t.strip_prefix("sgtin:") {
            let (gtin, serial) = rest
                .split_once(':')
                .ok_or_else(|| ObjectKeyError::Unrecognised(t.to_owned()))?;
            return Self::sgtin(gtin, serial);
        }
        if t.len() == 18 && t.bytes().all(|b| b.is_ascii_digit()) {
            return Self::sscc(t);
        }
        let data = if t.starts_with("urn:epc:") {
            gs1::parse_epc_urn(t)
                .map(|(d, _)| d)
                .map_err(|e| ObjectKeyError::Gs1(e.to_string()))?
        } else {
            gs1::parse_str(t, &ParseOptions::default())
                .map_err(|e| ObjectKeyError::Gs1(e.to_string()))?
        };
        Self::from_gs1(&data).ok_or_else(|| ObjectKeyError::Unrecognised(t.to_owned()))
    }

    /// The object named by parsed GS1 data (SSCC wins; a GTIN needs a serial).
    pub fn from_gs1(data: &Gs1Data) -> Option<Self> {
        if let Some(s) = data.get("00") {
            return Some(Self::Sscc(s.to_owned()));
        }
        match (data.get("01"), data.get("21")) {
            (Some(g), Some(s)) => Some(Self::Sgtin {
                gtin: g.to_owned(),
                serial: s.to_owned(),
            }),
            _ => None,
        }
    }

    /// The stored key.
    pub fn key(&self) -> String {
        match self {
            Self::Sgtin { gtin, serial } => format!("sgtin:{gtin}:{serial}"),
            Self::Sscc(s) => format!("sscc:{s}"),
        }
    }

    /// `sgtin` or `sscc`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sgtin { .. } => "sgtin",
            Self::Sscc(_) => "sscc",
        }
    }

    /// Whether this is a logistic unit (can hold other objects).
    pub fn is_container(&self) -> bool {
        matches!(self, Self::Sscc(_))
    }

    /// The canonical GS1 Digital Link URI (legal in EPCIS 2.0 and needs no GS1 Company
    /// Prefix length, which scans do not tell us).
    pub fn to_digital_link(&self) -> Result<String, ObjectKeyError> {
        let data = match self {
            Self::Sgtin { gtin, serial } => Gs1Data::from_ais(&[("01", gtin), ("21", serial)]),
            Self::Sscc(s) => Gs1Data::from_ais(&[("00", s)]),
        }
        .map_err(|e| ObjectKeyError::Gs1(e.to_string()))?;
        data.to_digital_link(DL_STEM)
            .map_err(|e| ObjectKeyError::Gs1(e.to_string()))
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// The Digital Link of a site GLN with an optional sub-location (AI 254). A location that
/// AI 254 cannot carry gives the plain site GLN (the bin is still kept in swt's state).
pub fn sgln_digital_link(gln: &str, location: Option<&str>) -> Result<String, ObjectKeyError> {
    if let Some(loc) = location
        && let Ok(d) = Gs1Data::from_ais(&[("414", gln), ("254", loc)])
        && let Ok(uri) = d.to_digital_link(DL_STEM)
    {
        return Ok(uri);
    }
    Gs1Data::from_ais(&[("414", gln)])
        .and_then(|d| d.to_digital_link(DL_STEM))
        .map_err(|e| ObjectKeyError::Gs1(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_forms_name_one_pack() {
        let key = ObjectKey::sgtin("04012345111118", "SN0001A").unwrap();
        for form in [
            "sgtin:04012345111118:SN0001A",
            "urn:epc:id:sgtin:4012345.011111.SN0001A",
            "https://id.gs1.org/01/04012345111118/21/SN0001A",
            "(01)04012345111118(21)SN0001A",
        ] {
            assert_eq!(ObjectKey::parse(form).unwrap(), key, "{form}");
        }
        assert_eq!(
            key.to_digital_link().unwrap(),
            "https://id.gs1.org/01/04012345111118/21/SN0001A"
        );
        let sscc = ObjectKey::parse("urn:epc:id:sscc:4012345.0000000123").unwrap();
        assert_eq!(sscc.key(), "sscc:040123450000001235");
        assert!(
            ObjectKey::parse("sscc:040123450000001234").is_err(),
            "check digit"
        );
        assert!(ObjectKey::parse("(01)04012345111118").is_err(), "no serial");
    }

    #[test]
    fn sgln_with_and_without_extension() {
        assert_eq!(
            sgln_digital_link("4098765000010", Some("DOCK-01")).unwrap(),
            "https://id.gs1.org/414/4098765000010/254/DOCK-01"
        );
        assert_eq!(
            sgln_digital_link("4098765000010", None).unwrap(),
            "https://id.gs1.org/414/4098765000010"
        );
    }
}
