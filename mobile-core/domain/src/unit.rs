//! Unit keys: how swt names one serialized pack (`sgtin:<GTIN-14>:<serial>`) or one
//! logistic unit (`sscc:<SSCC>`) in task documents (`expected.units`, container
//! contents), in the scan rules' counts and in the server's traced objects. One format,
//! written and read here only; every GS1 rule comes from [`crate::gs1`].

use crate::gs1::{self, Gs1Data, ParseOptions};

/// The stem of canonical GS1 Digital Link URIs.
pub const DIGITAL_LINK_STEM: &str = "https://id.gs1.org";

/// The key of a pack, without checking it (the caller holds parsed GS1 data).
pub fn sgtin_key(gtin: &str, serial: &str) -> String {
    format!("sgtin:{gtin}:{serial}")
}

/// The key of a logistic unit, without checking it.
pub fn sscc_key(sscc: &str) -> String {
    format!("sscc:{sscc}")
}

/// GTIN and serial of a pack's key (`None` for a container's or a malformed key).
pub fn split_sgtin(key: &str) -> Option<(&str, &str)> {
    key.strip_prefix("sgtin:")?.split_once(':')
}

/// Why a text is not an identifier of a traced object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitKeyError {
    /// Not any form we know.
    #[error("not a serialized pack or container identifier: {0}")]
    Unrecognised(String),
    /// A GS1 rule is broken (check digit, length, character set).
    #[error("invalid GS1 identifier: {0}")]
    Gs1(String),
}

/// A serialized pack (GTIN + serial) or a logistic unit (SSCC).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitKey {
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

impl UnitKey {
    /// A pack from a GTIN and serial, checked by the GS1 engine.
    pub fn sgtin(gtin: &str, serial: &str) -> Result<Self, UnitKeyError> {
        Gs1Data::from_ais(&[("01", gtin), ("21", serial)])
            .map_err(|e| UnitKeyError::Gs1(e.to_string()))?;
        Ok(Self::Sgtin {
            gtin: gtin.to_owned(),
            serial: serial.to_owned(),
        })
    }

    /// A logistic unit from an SSCC, checked by the GS1 engine.
    pub fn sscc(sscc: &str) -> Result<Self, UnitKeyError> {
        Gs1Data::from_ais(&[("00", sscc)]).map_err(|e| UnitKeyError::Gs1(e.to_string()))?;
        Ok(Self::Sscc(sscc.to_owned()))
    }

    /// Parses the stored key form only (`sgtin:<GTIN-14>:<serial>`, `sscc:<SSCC>`), as task
    /// documents and their creators must write it.
    pub fn parse_key(text: &str) -> Result<Self, UnitKeyError> {
        if let Some(rest) = text.strip_prefix("sscc:") {
            return Self::sscc(rest);
        }
        if let Some((gtin, serial)) = split_sgtin(text) {
            return Self::sgtin(gtin, serial);
        }
        Err(UnitKeyError::Unrecognised(format!(
            "{text}: expected sscc:<18 digits> or sgtin:<GTIN-14>:<serial>"
        )))
    }

    /// Parses the stored key form, a bare 18-digit SSCC, an EPC URN, a GS1 Digital Link
    /// URI, or GS1 element / bracketed data (what a scanner or a manager might paste).
    pub fn parse(text: &str) -> Result<Self, UnitKeyError> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix("sscc:") {
            return Self::sscc(rest);
        }
        if let Some(rest) = t.strip_prefix("sgtin:") {
            let (gtin, serial) = rest
                .split_once(':')
                .ok_or_else(|| UnitKeyError::Unrecognised(t.to_owned()))?;
            return Self::sgtin(gtin, serial);
        }
        if t.len() == 18 && t.bytes().all(|b| b.is_ascii_digit()) {
            return Self::sscc(t);
        }
        let data = if t.starts_with("urn:epc:") {
            gs1::parse_epc_urn(t)
                .map(|(d, _)| d)
                .map_err(|e| UnitKeyError::Gs1(e.to_string()))?
        } else {
            gs1::parse_str(t, &ParseOptions::default())
                .map_err(|e| UnitKeyError::Gs1(e.to_string()))?
        };
        Self::from_gs1(&data).ok_or_else(|| UnitKeyError::Unrecognised(t.to_owned()))
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
            Self::Sgtin { gtin, serial } => sgtin_key(gtin, serial),
            Self::Sscc(s) => sscc_key(s),
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
    pub fn to_digital_link(&self) -> Result<String, UnitKeyError> {
        let data = match self {
            Self::Sgtin { gtin, serial } => Gs1Data::from_ais(&[("01", gtin), ("21", serial)]),
            Self::Sscc(s) => Gs1Data::from_ais(&[("00", s)]),
        }
        .map_err(|e| UnitKeyError::Gs1(e.to_string()))?;
        data.to_digital_link(DIGITAL_LINK_STEM)
            .map_err(|e| UnitKeyError::Gs1(e.to_string()))
    }
}

impl std::fmt::Display for UnitKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_forms_name_one_pack() {
        let key = UnitKey::sgtin("04012345111118", "SN0001A").unwrap();
        for form in [
            "sgtin:04012345111118:SN0001A",
            "urn:epc:id:sgtin:4012345.011111.SN0001A",
            "https://id.gs1.org/01/04012345111118/21/SN0001A",
            "(01)04012345111118(21)SN0001A",
        ] {
            assert_eq!(UnitKey::parse(form).unwrap(), key, "{form}");
        }
        assert_eq!(
            key.to_digital_link().unwrap(),
            "https://id.gs1.org/01/04012345111118/21/SN0001A"
        );
        let sscc = UnitKey::parse("urn:epc:id:sscc:4012345.0000000123").unwrap();
        assert_eq!(sscc.key(), "sscc:040123450000001235");
        assert!(
            UnitKey::parse("sscc:040123450000001234").is_err(),
            "check digit"
        );
        assert!(UnitKey::parse("(01)04012345111118").is_err(), "no serial");
    }

    #[test]
    fn the_stored_form_is_checked_like_any_other() {
        assert!(
            UnitKey::parse("sgtin:04012345111118:").is_err(),
            "empty serial"
        );
        assert!(
            UnitKey::parse("sgtin:04012345111118:A23456789012345678901").is_err(),
            "21 characters"
        );
        assert!(
            UnitKey::parse("sgtin:04012345111119:A").is_err(),
            "check digit"
        );
        assert!(UnitKey::parse("sgtin:04012345111118").is_err(), "no serial");
        assert!(
            UnitKey::parse_key("(01)04012345111118(21)A").is_err(),
            "not the stored form"
        );
        assert_eq!(
            UnitKey::parse_key("sgtin:04012345111118:A").unwrap().key(),
            "sgtin:04012345111118:A"
        );
        assert_eq!(
            split_sgtin("sgtin:04012345111118:A:B"),
            Some(("04012345111118", "A:B"))
        );
        assert_eq!(split_sgtin("sscc:040123450000001235"), None);
    }
}
