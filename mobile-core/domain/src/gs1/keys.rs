//! GS1 key newtypes: `Gtin` (always GTIN-14), `Sscc`, `Gln`. Constructing one validates
//! length, digits and check digit, so holding one means it is well-formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::check_digit::mod10_check_digit;
use super::error::{Detail, ErrorKind, Gs1Error};

fn digits_with_check<const N: usize>(
    s: &str,
    ai: &'static str,
    what: &'static str,
) -> Result<[u8; N], Gs1Error> {
    let b = s.as_bytes();
    if let Some(i) = b.iter().position(|c| !c.is_ascii_digit()) {
        return Err(Gs1Error::at_detail(
            ErrorKind::BadCharsetNumeric,
            ai,
            Some(i),
            Detail::KeyDigitsOnly(what),
        ));
    }
    let arr: [u8; N] = b.try_into().map_err(|_| {
        let kind = if b.len() < N {
            ErrorKind::TooShort
        } else {
            ErrorKind::TooLong
        };
        Gs1Error::at_detail(
            kind,
            ai,
            None,
            Detail::KeyLength {
                what,
                want: N as u8,
                got: b.len() as u32,
            },
        )
    })?;
    let (body, cd) = arr.split_at(N - 1);
    let want = mod10_check_digit(body);
    if cd.first() != Some(&want) {
        return Err(Gs1Error::at_detail(
            ErrorKind::BadCheckDigit,
            ai,
            Some(N - 1),
            Detail::KeyCheck { what, want },
        ));
    }
    Ok(arr)
}

fn as_str(b: &[u8]) -> &str {
    // Only ever built from ASCII digits.
    std::str::from_utf8(b).unwrap_or("")
}

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl FromStr for $t {
            type Err = Gs1Error;
            fn from_str(s: &str) -> Result<Self, Gs1Error> {
                Self::parse(s)
            }
        }
    };
}

/// A Global Trade Item Number, always held as GTIN-14.
///
/// ```
/// use swt_domain::gs1::Gtin;
/// let g: Gtin = "0312345678906".parse().unwrap(); // GTIN-13, padded
/// assert_eq!(g.as_str(), "00312345678906");
/// assert_eq!(g.ndc10().as_deref(), Some("1234567890"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gtin([u8; 14]);

impl Gtin {
    /// Parses a GTIN-8, -12, -13 or -14 (digits only) and normalises it to 14 digits.
    pub fn parse(s: &str) -> Result<Gtin, Gs1Error> {
        match s.len() {
            8 | 12 | 13 | 14 => {
                let mut padded = [b'0'; 14];
                let off = 14 - s.len();
                if let Some(dst) = padded.get_mut(off..) {
                    dst.copy_from_slice(s.as_bytes());
                }
                // Validate on the padded form: leading zeros do not change the check digit.
                digits_with_check::<14>(as_str(&padded), "01", "GTIN")
                    .map(Gtin)
                    .map_err(|e| {
                        if s.bytes().all(|c| c.is_ascii_digit()) {
                            e
                        } else {
                            Gs1Error::at(
                                ErrorKind::BadCharsetNumeric,
                                "01",
                                None,
                                "a GTIN has digits only",
                            )
                        }
                    })
            }
            n => Err(Gs1Error::at_detail(
                if n < 14 {
                    ErrorKind::TooShort
                } else {
                    ErrorKind::TooLong
                },
                "01",
                None,
                Detail::GtinLength(n as u32),
            )),
        }
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        as_str(&self.0)
    }

    /// The indicator digit (0 = base unit, 1–8 = packaging levels, 9 = variable measure).
    pub fn indicator(&self) -> u8 {
        self.0[0] - b'0'
    }

    /// The US NDC (10 digits, no hyphens) inside a GTIN of the GS1 US number-system-3
    /// range (`x03` + NDC10 + check digit), or `None` for any other GTIN.
    ///
    /// The hyphenated forms (4-4-2, 5-3-2 or 5-4-1) and the 11-digit 5-4-2 billing form
    /// cannot be derived from the digits alone: which one applies depends on the
    /// labeler code's length, which only the FDA NDC directory knows. So this returns the
    /// 10 digits and leaves segmentation to a lookup.
    pub fn ndc10(&self) -> Option<String> {
        let d = self.as_str();
        (d.get(1..3) == Some("03")).then(|| d.get(3..13).unwrap_or_default().to_owned())
    }
}

string_serde!(Gtin);

/// A Serial Shipping Container Code (18 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sscc([u8; 18]);

impl Sscc {
    /// Parses 18 digits with a valid check digit.
    pub fn parse(s: &str) -> Result<Sscc, Gs1Error> {
        digits_with_check::<18>(s, "00", "SSCC").map(Sscc)
    }

    /// The 18 digits.
    pub fn as_str(&self) -> &str {
        as_str(&self.0)
    }

    /// The extension digit (first digit).
    pub fn extension_digit(&self) -> u8 {
        self.0[0] - b'0'
    }
}

string_serde!(Sscc);

/// A Global Location Number (13 digits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gln([u8; 13]);

impl Gln {
    /// Parses 13 digits with a valid check digit.
    pub fn parse(s: &str) -> Result<Gln, Gs1Error> {
        digits_with_check::<13>(s, "414", "GLN").map(Gln)
    }

    /// The 13 digits.
    pub fn as_str(&self) -> &str {
        as_str(&self.0)
    }
}

string_serde!(Gln);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtin_forms() {
        assert_eq!(
            Gtin::parse("02345673").map(|g| g.to_string()),
            Ok("00000002345673".into())
        );
        assert_eq!(
            Gtin::parse("416000336108").map(|g| g.to_string()),
            Ok("00416000336108".into())
        );
        assert_eq!(Gtin::parse("09506000134352").map(|g| g.indicator()), Ok(0));
        assert_eq!(
            Gtin::parse("09506000134353").map_err(|e| e.code()),
            Err("bad_check_digit")
        );
        assert_eq!(
            Gtin::parse("0950600013435A").map_err(|e| e.code()),
            Err("bad_charset_numeric")
        );
        assert_eq!(Gtin::parse("123").map_err(|e| e.code()), Err("too_short"));
        assert_eq!(
            Gtin::parse("0950600013435é").map_err(|e| e.code()),
            Err("too_long")
        );
        assert_eq!(Gtin::parse("09506000134352").map(|g| g.ndc10()), Ok(None));
    }

    #[test]
    fn sscc_gln_serde() {
        let s = Sscc::parse("106141411234567897").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"106141411234567897\"");
        let back: Sscc = serde_json::from_str("\"106141411234567897\"").unwrap();
        assert_eq!(back, s);
        assert!(serde_json::from_str::<Gln>("\"9520123456789\"").is_err());
        assert_eq!(
            Gln::parse("9520123456788").map(|g| g.to_string()),
            Ok("9520123456788".into())
        );
    }
}
