//! Location identifiers in the GS1 Digital Link form swt emits in EPCIS. The keys of
//! traced objects are [`swt_domain::unit::UnitKey`]. All GS1 rules come from
//! `swt_domain::gs1`.

use swt_domain::gs1::Gs1Data;
use swt_domain::unit::UnitKeyError;

use super::DL_STEM;

/// The Digital Link of a site GLN with an optional sub-location (AI 254). A location that
/// AI 254 cannot carry gives the plain site GLN (the bin is still kept in swt's state).
pub fn sgln_digital_link(gln: &str, location: Option<&str>) -> Result<String, UnitKeyError> {
    if let Some(loc) = location
        && let Ok(d) = Gs1Data::from_ais(&[("414", gln), ("254", loc)])
        && let Ok(uri) = d.to_digital_link(DL_STEM)
    {
        return Ok(uri);
    }
    Gs1Data::from_ais(&[("414", gln)])
        .and_then(|d| d.to_digital_link(DL_STEM))
        .map_err(|e| UnitKeyError::Gs1(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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
