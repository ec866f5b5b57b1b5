//! Writing identifiers the way a partner reads them. swt stores Digital Link (it needs no
//! company prefix length); DSCSA partners need EPC URNs (SGTIN, SSCC, LGTIN, SGLN, PGLN).
//! Either form hashes the same (the event hash normalises identifiers), so rendering
//! never changes an `eventID`.

use swt_domain::gs1;

use super::EpcisEvent;
use super::gcp::GcpLengths;

/// The request header that chooses identifier syntax (EPCIS 2.0 §12.4).
pub const EPC_FORMAT_HEADER: &str = "GS1-EPC-Format";

/// How identifiers are written in an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpcFormat {
    /// GS1 Digital Link on `https://id.gs1.org` (EPCIS 2.0's default).
    DigitalLink,
    /// EPC URNs (`urn:epc:id:sgtin:…`), as DSCSA partners and EPCIS 1.2 need.
    Urn,
}

/// Why an export could not be written as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A `GS1-EPC-Format` value the standard does not define.
    #[error(
        "GS1-EPC-Format {0:?} is none of No_Preference, Always_GS1_Digital_Link, Always_EPC_URN, Never_Translates"
    )]
    BadFormat(String),
    /// The company prefix length of a key is unknown, so no URN can be written (never
    /// guessed: a wrong split names another company's product).
    #[error(
        "no GS1 Company Prefix length is known for {0}: add it to [epcis] gcp_lengths, or ask for Digital Link"
    )]
    GcpUnknown(String),
    /// The identifier is no GS1 key this renderer knows.
    #[error("cannot write {0} as an EPC URN")]
    Unsupported(String),
}

impl EpcFormat {
    /// The format a `GS1-EPC-Format` header asks for (absent: Digital Link, the
    /// standard's default; `Never_Translates`: as stored, which is Digital Link).
    pub fn from_header(value: Option<&str>) -> Result<Self, RenderError> {
        match value.map(str::trim) {
            None | Some("No_Preference" | "Always_GS1_Digital_Link" | "Never_Translates") => {
                Ok(Self::DigitalLink)
            }
            Some("Always_EPC_URN") => Ok(Self::Urn),
            Some(other) => Err(RenderError::BadFormat(other.to_owned())),
        }
    }
}

/// The EPC URN of a Digital Link (an identifier already a URN is kept).
pub fn epc_urn(uri: &str, gcp: &GcpLengths) -> Result<String, RenderError> {
    if uri.starts_with("urn:") {
        return Ok(uri.to_owned());
    }
    let unsupported = || RenderError::Unsupported(uri.to_owned());
    let data = gs1::parse_str(uri, &gs1::ParseOptions::default()).map_err(|_| unsupported())?;
    let len = |digits: &str| {
        gcp.of(digits)
            .ok_or_else(|| RenderError::GcpUnknown(uri.to_owned()))
    };
    let from_tail = |key: &str| len(key.get(1..).unwrap_or_default());
    let urn = |r: Result<String, gs1::Gs1Error>| r.map_err(|_| unsupported());
    if let Some(sscc) = data.get("00") {
        return urn(data.to_sscc_urn(from_tail(sscc)?));
    }
    if let Some(gtin) = data.get("01") {
        return match (data.get("21"), data.get("10")) {
            (Some(_), _) => urn(data.to_sgtin_urn(from_tail(gtin)?)),
            (None, Some(_)) => urn(data.to_lgtin_urn(from_tail(gtin)?)),
            (None, None) => Err(unsupported()),
        };
    }
    if let Some(gln) = data.get("414") {
        return urn(data.to_sgln_urn(len(gln)?));
    }
    if let Some(gln) = data.get("417") {
        return urn(data.to_pgln_urn(len(gln)?));
    }
    Err(unsupported())
}

/// Rewrites every identifier of `event` in `format`.
pub fn render(
    event: &mut EpcisEvent,
    format: EpcFormat,
    gcp: &GcpLengths,
) -> Result<(), RenderError> {
    if format == EpcFormat::DigitalLink {
        return Ok(());
    }
    let one = |s: &mut String| -> Result<(), RenderError> {
        *s = epc_urn(s, gcp)?;
        Ok(())
    };
    event.epc_list.iter_mut().try_for_each(one)?;
    event.child_epcs.iter_mut().try_for_each(one)?;
    if let Some(p) = event.parent_id.as_mut() {
        one(p)?;
    }
    for place in [event.read_point.as_mut(), event.biz_location.as_mut()]
        .into_iter()
        .flatten()
    {
        one(&mut place.id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn gcp() -> GcpLengths {
        // Our site's prefix is not in the GS1 table snapshot: an override.
        GcpLengths::new(BTreeMap::from([("4098765".to_owned(), 7)]))
    }

    #[test]
    fn digital_links_become_the_primers_urns() {
        let g = gcp();
        for (dl, urn) in [
            (
                "https://id.gs1.org/01/04012345111118/21/SN0001A",
                "urn:epc:id:sgtin:4012345.011111.SN0001A",
            ),
            (
                "https://id.gs1.org/01/04012345111118/10/L2024A",
                "urn:epc:class:lgtin:4012345.011111.L2024A",
            ),
            (
                "https://id.gs1.org/00/040987650000000010",
                "urn:epc:id:sscc:4098765.0000000001",
            ),
            (
                "https://id.gs1.org/414/4098765000010/254/DOCK-01",
                "urn:epc:id:sgln:4098765.00001.DOCK-01",
            ),
            (
                "https://id.gs1.org/414/4098765000010",
                "urn:epc:id:sgln:4098765.00001.0",
            ),
            (
                "https://id.gs1.org/417/4098765000003",
                "urn:epc:id:pgln:4098765.00000",
            ),
            // GS1 US: an NDC-based GTIN has a 6-digit company prefix here.
            (
                "https://id.gs1.org/01/00300010123455/21/11",
                "urn:epc:id:sgtin:030001.0012345.11",
            ),
            // Serials escaped as TDS says.
            (
                "https://id.gs1.org/01/04012345111118/21/A%2FB",
                "urn:epc:id:sgtin:4012345.011111.A%2FB",
            ),
        ] {
            assert_eq!(epc_urn(dl, &g).as_deref(), Ok(urn), "{dl}");
        }
        assert_eq!(
            epc_urn("urn:epc:id:sscc:4098765.0000000001", &g).as_deref(),
            Ok("urn:epc:id:sscc:4098765.0000000001")
        );
    }

    #[test]
    fn an_unknown_prefix_length_is_an_error_not_a_guess() {
        let dl = "https://id.gs1.org/414/4098765000010";
        assert_eq!(
            epc_urn(dl, &GcpLengths::default()),
            Err(RenderError::GcpUnknown(dl.to_owned()))
        );
        assert!(matches!(
            epc_urn("https://example.com/x", &gcp()),
            Err(RenderError::Unsupported(_))
        ));
    }

    #[test]
    fn the_header_chooses_the_format() {
        assert_eq!(EpcFormat::from_header(None), Ok(EpcFormat::DigitalLink));
        assert_eq!(
            EpcFormat::from_header(Some("Always_EPC_URN")),
            Ok(EpcFormat::Urn)
        );
        for v in [
            "No_Preference",
            "Always_GS1_Digital_Link",
            "Never_Translates",
        ] {
            assert_eq!(EpcFormat::from_header(Some(v)), Ok(EpcFormat::DigitalLink));
        }
        assert!(EpcFormat::from_header(Some("urn")).is_err());
    }
}
