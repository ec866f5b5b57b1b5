//! EPC URNs of the EPC Tag Data Standard (SGTIN, LGTIN, SSCC, SGLN, PGLN) for EPCIS. A URN
//! needs the GS1 Company Prefix length, which the digits do not tell (see the EPCIS
//! primer): callers pass it in.

use super::check_digit::mod10_check_digit;
use super::data::{Gs1Data, InputForm};
use super::error::{Detail, ErrorKind, Gs1Error};

fn conv(what: &'static str) -> Gs1Error {
    Gs1Error::plain(ErrorKind::Conversion, None, what)
}

fn check_gcp_len(gcp_len: usize) -> Result<(), Gs1Error> {
    if (6..=12).contains(&gcp_len) {
        Ok(())
    } else {
        Err(Gs1Error::detail(
            ErrorKind::Conversion,
            None,
            Detail::GcpLength(gcp_len as u32),
        ))
    }
}

/// Escapes a serial/lot/extension for a URN (TDS: `"` `%` `&` `/` `<` `>` `?`).
fn escape(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '"' => s.push_str("%22"),
            '%' => s.push_str("%25"),
            '&' => s.push_str("%26"),
            '/' => s.push_str("%2F"),
            '<' => s.push_str("%3C"),
            '>' => s.push_str("%3E"),
            '?' => s.push_str("%3F"),
            c => s.push(c),
        }
    }
    s
}

fn unescape(v: &str) -> Result<String, Gs1Error> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match hex {
                Some(x) => {
                    out.push(x);
                    i += 3;
                    continue;
                }
                None => return Err(conv("bad %-escape in EPC URN")),
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| conv("EPC URN component is not UTF-8"))
}

impl Gs1Data {
    fn need(&self, ai: &'static str) -> Result<&str, Gs1Error> {
        self.get(ai)
            .ok_or_else(|| Gs1Error::detail(ErrorKind::Conversion, None, Detail::NeedsAi(ai)))
    }

    /// `urn:epc:id:sgtin:<GCP>.<indicator+item ref>.<serial>` from (01) and (21).
    pub fn to_sgtin_urn(&self, gcp_len: usize) -> Result<String, Gs1Error> {
        Ok(format!(
            "urn:epc:id:sgtin:{}.{}",
            gtin_parts(self.need("01")?, gcp_len)?,
            escape(self.need("21")?)
        ))
    }

    /// `urn:epc:class:lgtin:<GCP>.<indicator+item ref>.<lot>` from (01) and (10).
    pub fn to_lgtin_urn(&self, gcp_len: usize) -> Result<String, Gs1Error> {
        Ok(format!(
            "urn:epc:class:lgtin:{}.{}",
            gtin_parts(self.need("01")?, gcp_len)?,
            escape(self.need("10")?)
        ))
    }

    /// `urn:epc:id:sscc:<GCP>.<extension+serial ref>` from (00).
    pub fn to_sscc_urn(&self, gcp_len: usize) -> Result<String, Gs1Error> {
        check_gcp_len(gcp_len)?;
        let d = self.need("00")?;
        let (ext, gcp, serial) = (
            d.get(..1).unwrap_or_default(),
            d.get(1..1 + gcp_len).unwrap_or_default(),
            d.get(1 + gcp_len..17).unwrap_or_default(),
        );
        Ok(format!("urn:epc:id:sscc:{gcp}.{ext}{serial}"))
    }

    /// `urn:epc:id:sgln:<GCP>.<location ref>.<extension>` from (414) and optional (254);
    /// extension `0` stands for "no extension" (so a (254) of `0` cannot be told apart).
    pub fn to_sgln_urn(&self, gcp_len: usize) -> Result<String, Gs1Error> {
        check_gcp_len(gcp_len)?;
        let d = self.need("414")?;
        let ext = self.get("254").map_or_else(|| "0".to_owned(), escape);
        Ok(format!(
            "urn:epc:id:sgln:{}.{}.{ext}",
            d.get(..gcp_len).unwrap_or_default(),
            d.get(gcp_len..12).unwrap_or_default()
        ))
    }

    /// `urn:epc:id:pgln:<GCP>.<party ref>` from (417) (TDS: the check digit dropped).
    pub fn to_pgln_urn(&self, gcp_len: usize) -> Result<String, Gs1Error> {
        check_gcp_len(gcp_len)?;
        let d = self.need("417")?;
        Ok(format!(
            "urn:epc:id:pgln:{}.{}",
            d.get(..gcp_len).unwrap_or_default(),
            d.get(gcp_len..12).unwrap_or_default()
        ))
    }
}

fn gtin_parts(gtin: &str, gcp_len: usize) -> Result<String, Gs1Error> {
    check_gcp_len(gcp_len)?;
    let (ind, gcp, item) = (
        gtin.get(..1).unwrap_or_default(),
        gtin.get(1..1 + gcp_len).unwrap_or_default(),
        gtin.get(1 + gcp_len..13).unwrap_or_default(),
    );
    Ok(format!("{gcp}.{ind}{item}"))
}

fn with_check_digit(body: &str) -> String {
    let mut s = body.to_owned();
    s.push(char::from(mod10_check_digit(body.as_bytes())));
    s
}

/// Parses an SGTIN, LGTIN, SSCC or SGLN EPC URN into validated GS1 data (form
/// [`InputForm::EpcUrn`]) and the GS1 Company Prefix length it encodes.
///
/// ```
/// use swt_domain::gs1::parse_epc_urn;
/// let (d, gcp_len) = parse_epc_urn("urn:epc:id:sgtin:4012345.011111.SN0001A").unwrap();
/// assert_eq!(d.get("01"), Some("04012345111118"));
/// assert_eq!(gcp_len, 7);
/// assert_eq!(d.to_sgtin_urn(gcp_len).unwrap(), "urn:epc:id:sgtin:4012345.011111.SN0001A");
/// ```
pub fn parse_epc_urn(urn: &str) -> Result<(Gs1Data, usize), Gs1Error> {
    let bad = || conv("not an SGTIN, LGTIN, SSCC or SGLN EPC URN");
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    let (kind, body) = [
        ("sgtin", "urn:epc:id:sgtin:"),
        ("lgtin", "urn:epc:class:lgtin:"),
        ("sscc", "urn:epc:id:sscc:"),
        ("sgln", "urn:epc:id:sgln:"),
    ]
    .iter()
    .find_map(|(k, p)| urn.strip_prefix(p).map(|b| (*k, b)))
    .ok_or_else(bad)?;
    let mut parts = body.splitn(3, '.');
    let gcp = parts.next().ok_or_else(bad)?;
    let second = parts.next().ok_or_else(bad)?;
    let third = parts.next();
    if !digits(gcp) || !(second.is_empty() || digits(second)) {
        return Err(bad());
    }
    let gcp_len = gcp.len();
    check_gcp_len(gcp_len)?;
    let from = |pairs: &[(&str, &str)]| Gs1Data::from_ais_as(pairs, InputForm::EpcUrn);
    let data = match kind {
        "sgtin" | "lgtin" => {
            let (ind, item) = second.split_at_checked(1).ok_or_else(bad)?;
            if gcp_len + item.len() != 12 {
                return Err(bad());
            }
            let gtin = with_check_digit(&format!("{ind}{gcp}{item}"));
            let v = unescape(third.ok_or_else(bad)?)?;
            let ai = if kind == "sgtin" { "21" } else { "10" };
            from(&[("01", &gtin), (ai, &v)])?
        }
        "sscc" => {
            if third.is_some() || gcp_len + second.len() != 17 {
                return Err(bad());
            }
            let (ext, serial) = second.split_at_checked(1).ok_or_else(bad)?;
            from(&[("00", &with_check_digit(&format!("{ext}{gcp}{serial}")))])?
        }
        _ => {
            if gcp_len + second.len() != 12 {
                return Err(bad());
            }
            let gln = with_check_digit(&format!("{gcp}{second}"));
            let ext = unescape(third.ok_or_else(bad)?)?;
            if ext == "0" {
                from(&[("414", &gln)])?
            } else {
                from(&[("414", &gln), ("254", &ext)])?
            }
        }
    };
    Ok((data, gcp_len))
}
