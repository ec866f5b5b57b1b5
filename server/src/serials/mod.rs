//! Manufacturer data that the LMS responder answers from: serials with the lot and expiry
//! they were commissioned with, lot facts (recall, FDA expiry extension), and who may ask
//! (trading partners) and how to answer (per-manufacturer policy). Loaded from CSV files
//! and EPCIS commissioning/decommissioning events; changed by managers and admins.
//!
//! Not here: answering or sending LMS requests and the returns workflow (`verification`).
//! Every function takes the organisation it works for: nothing crosses organisations.

pub mod epcis_import;
pub mod import_csv;
pub mod routes;
pub mod store;

use sea_orm::DbErr;
use serde::{Deserialize, Serialize};
use swt_domain::gs1::{self, Date, Gs1Data, Gtin};

/// Why an operation on manufacturer data failed.
#[derive(Debug, thiserror::Error)]
pub enum SerialsError {
    /// The input is not acceptable (identifier, date, status, document shape); nothing
    /// was changed.
    #[error("{0}")]
    Invalid(String),
    /// The thing does not exist in this organisation.
    #[error("{0} not found")]
    NotFound(String),
    /// It exists already (a partner's GLN).
    #[error("{0}")]
    Conflict(String),
    /// Reading the input failed.
    #[error("reading {what}: {source}")]
    Io {
        /// What was being read.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// A serial's manufacturer status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SerialStatus {
    /// Commissioned and not known to be anything else.
    Active,
    /// Taken out of the supply chain by the manufacturer (destroyed, sampled, …).
    Decommissioned,
    /// Under investigation.
    Suspect,
    /// Found to be counterfeit, diverted, stolen or otherwise illegitimate.
    Illegitimate,
}

impl SerialStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Decommissioned => "decommissioned",
            Self::Suspect => "suspect",
            Self::Illegitimate => "illegitimate",
        }
    }
}

impl std::str::FromStr for SerialStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "active" => Ok(Self::Active),
            "decommissioned" => Ok(Self::Decommissioned),
            "suspect" => Ok(Self::Suspect),
            "illegitimate" => Ok(Self::Illegitimate),
            other => Err(format!(
                "unknown status {other:?}: expected active, decommissioned, suspect or illegitimate"
            )),
        }
    }
}

/// A GTIN as given (8, 12, 13 or 14 digits, valid check digit), as GTIN-14.
pub fn parse_gtin(text: &str) -> Result<Gtin, String> {
    Gtin::parse(text.trim()).map_err(|e| format!("GTIN {:?}: {e}", text.trim()))
}

/// Checks a serial (AI 21) and lot (AI 10) of `gtin` by the GS1 rules: 1 to 20
/// characters of GS1 character set 82.
pub fn check_serial_and_lot(gtin: &Gtin, serial: &str, lot: &str) -> Result<(), String> {
    Gs1Data::from_ais(&[("01", gtin.as_str()), ("10", lot), ("21", serial)])
        .map(|_| ())
        .map_err(|e| name_ai(&e))
}

/// Checks a serial (AI 21) of `gtin`.
pub fn check_serial(gtin: &Gtin, serial: &str) -> Result<(), String> {
    Gs1Data::from_ais(&[("01", gtin.as_str()), ("21", serial)])
        .map(|_| ())
        .map_err(|e| name_ai(&e))
}

/// Checks a lot (AI 10) of `gtin`.
pub fn check_lot(gtin: &Gtin, lot: &str) -> Result<(), String> {
    Gs1Data::from_ais(&[("01", gtin.as_str()), ("10", lot)])
        .map(|_| ())
        .map_err(|e| name_ai(&e))
}

/// Puts a word on the AI number in GS1 messages ("AI (21): …" → "serial (AI 21): …"),
/// since people importing files think in column names.
fn name_ai(e: &gs1::Gs1Error) -> String {
    let word = match e.ai() {
        Some("21") => "serial",
        Some("10") => "lot",
        Some("01") => "GTIN",
        Some("17") => "expiry",
        _ => return e.to_string(),
    };
    format!("{word}: {e}")
}

/// An expiry as the pack prints it (GS1 AI 17 `YYMMDD`, day `00` = end of month), from
/// `YYMMDD` or an ISO date `YYYY-MM-DD` (EPCIS `itemExpirationDate`, spreadsheets).
///
/// An ISO year outside the GS1 two-digit window around this year is refused: its
/// `YYMMDD` would read back as another century.
pub fn parse_expiry(text: &str) -> Result<String, String> {
    parse_expiry_at(text, gs1::current_year())
}

pub(crate) fn parse_expiry_at(text: &str, current_year: u16) -> Result<String, String> {
    let t = text.trim();
    let bad = || format!("expiry {t:?}: expected YYMMDD or YYYY-MM-DD");
    let b = t.as_bytes();
    if b.len() == 6 && b.iter().all(u8::is_ascii_digit) {
        return match Date::from_yymmdd(t, current_year) {
            Some(_) => Ok(t.to_owned()),
            None => Err(format!("expiry {t:?} is not a date (YYMMDD)")),
        };
    }
    let mut parts = t.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    if !(digits(y, 4) && digits(m, 2) && digits(d, 2)) {
        return Err(bad());
    }
    let (year, month, day) = match (y.parse::<u16>(), m.parse::<u8>(), d.parse::<u8>()) {
        (Ok(y), Ok(m), Ok(d)) => (y, m, d),
        _ => return Err(bad()),
    };
    if Date::new(year, month, day).is_none() {
        return Err(format!("expiry {t:?} is not a date"));
    }
    let yy = u8::try_from(year % 100).unwrap_or(0);
    if gs1::resolve_century(yy, current_year) != year {
        return Err(format!(
            "expiry {t:?} is outside the GS1 two-digit-year window around {current_year}"
        ));
    }
    Ok(format!("{yy:02}{month:02}{day:02}"))
}

/// The calendar date of a stored `YYMMDD` expiry (day `00` = last day of the month).
pub fn expiry_date(yymmdd: &str) -> Option<Date> {
    Date::from_yymmdd(yymmdd, gs1::current_year())
}

/// Milliseconds since the Unix epoch, for `updated_at_ms` columns.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_forms() {
        assert_eq!(parse_expiry_at("270131", 2026).as_deref(), Ok("270131"));
        assert_eq!(parse_expiry_at("270200", 2026).as_deref(), Ok("270200"));
        assert_eq!(parse_expiry_at("2027-01-31", 2026).as_deref(), Ok("270131"));
        assert_eq!(
            parse_expiry_at(" 2028-02-29 ", 2026).as_deref(),
            Ok("280229")
        );
        for bad in [
            "2027-02-30",
            "271331",
            "27013",
            "2027-1-31",
            "31/01/2027",
            "",
            "2090-01-01",
        ] {
            assert!(parse_expiry_at(bad, 2026).is_err(), "{bad}");
        }
    }

    #[test]
    fn serial_and_lot_rules_come_from_gs1() {
        let g = parse_gtin("0312345678906").expect("GTIN-13");
        assert_eq!(g.as_str(), "00312345678906");
        assert!(check_serial_and_lot(&g, "SN-0001/a", "LOT42").is_ok());
        let long = "A".repeat(21);
        assert!(
            check_serial_and_lot(&g, &long, "L1").is_err_and(|e| e.starts_with("serial")),
            "21 characters"
        );
        assert!(check_serial_and_lot(&g, "S1", "L 1").is_err_and(|e| e.starts_with("lot")));
        assert!(check_serial(&g, "").is_err());
        assert!(parse_gtin("00312345678907").is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in [
            SerialStatus::Active,
            SerialStatus::Decommissioned,
            SerialStatus::Suspect,
            SerialStatus::Illegitimate,
        ] {
            assert_eq!(s.as_str().parse::<SerialStatus>(), Ok(s));
        }
    }
}
