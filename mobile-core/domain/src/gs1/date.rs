//! Dates of GS1 AIs (YYMMDD, GenSpecs §7.12): a small calendar date type, the century
//! window and day-00 (end of month) handling. No chrono: the core needs very little.

use serde::{Deserialize, Serialize};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// English name of month `m` (1–12), for messages.
pub(crate) fn month_name(m: u8) -> &'static str {
    MONTHS
        .get(usize::from(m).wrapping_sub(1))
        .copied()
        .unwrap_or("?")
}

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

/// Number of days in `month` (1–12) of `year`; 0 for an invalid month.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A calendar date (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Date {
    /// Full year, e.g. 2029.
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
}

impl Date {
    /// A date if it exists in the calendar.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        (day >= 1 && day <= days_in_month(year, month)).then_some(Date { year, month, day })
    }

    /// Resolves a GS1 `YYMMDD` value (6 ASCII digits) to a date, using the GenSpecs §7.12
    /// sliding century window around `current_year`. Day `00` means the last day of the
    /// month. `None` if the value is not a valid date.
    ///
    /// ```
    /// use swt_domain::gs1::Date;
    /// assert_eq!(Date::from_yymmdd("290200", 2026), Date::new(2029, 2, 28));
    /// assert_eq!(Date::from_yymmdd("991231", 2026), Date::new(1999, 12, 31));
    /// ```
    pub fn from_yymmdd(yymmdd: &str, current_year: u16) -> Option<Date> {
        let b = yymmdd.as_bytes();
        if b.len() != 6 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let two = |i: usize| -> u8 { (b[i] - b'0') * 10 + (b[i + 1] - b'0') };
        let (yy, mm, dd) = (two(0), two(2), two(4));
        let year = resolve_century(yy, current_year);
        let day = if dd == 0 { days_in_month(year, mm) } else { dd };
        Date::new(year, mm, day)
    }

    /// ISO 8601 form `YYYY-MM-DD` (what EPCIS and JSON APIs want).
    pub fn to_iso8601(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Full year of a two-digit `yy` by the GenSpecs §7.12 window: 49 years back, 50 forward.
pub fn resolve_century(yy: u8, current_year: u16) -> u16 {
    let c = i32::from(current_year % 100);
    let century = i32::from(current_year) - c;
    let d = i32::from(yy) - c;
    let full = if (51..=99).contains(&d) {
        century - 100 + i32::from(yy)
    } else if (-99..=-50).contains(&d) {
        century + 100 + i32::from(yy)
    } else {
        century + i32::from(yy)
    };
    u16::try_from(full).unwrap_or(0)
}

/// The current UTC year from the system clock (no time zone data needed for a year:
/// the window is 100 years wide, a day either side changes nothing that matters).
pub fn current_year() -> u16 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    civil_year_from_days(days)
}

/// Year of the civil date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_year_from_days(days: i64) -> u16 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    u16::try_from(y).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn century_window_in_2026() {
        assert_eq!(resolve_century(0, 2026), 2000);
        assert_eq!(resolve_century(76, 2026), 2076);
        assert_eq!(resolve_century(77, 2026), 1977);
        assert_eq!(resolve_century(99, 2026), 1999);
        assert_eq!(resolve_century(10, 2095), 2110);
    }

    #[test]
    fn day_zero_is_end_of_month() {
        assert_eq!(Date::from_yymmdd("240200", 2026), Date::new(2024, 2, 29));
        assert_eq!(Date::from_yymmdd("250200", 2026), Date::new(2025, 2, 28));
        assert_eq!(Date::from_yymmdd("290400", 2026), Date::new(2029, 4, 30));
        assert_eq!(Date::from_yymmdd("291300", 2026), None);
        assert_eq!(Date::from_yymmdd("29043", 2026), None);
    }

    #[test]
    fn civil_year() {
        assert_eq!(civil_year_from_days(0), 1970);
        assert_eq!(civil_year_from_days(20_454), 2026); // 2026-01-01
        assert_eq!(civil_year_from_days(20_453), 2025);
        assert!(current_year() >= 2025);
    }
}
