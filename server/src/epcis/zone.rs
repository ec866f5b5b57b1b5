//! A site's time zone and the `eventTimeZoneOffset` it gives an event: the offset in force
//! at the site on the event's date (Memphis is −06:00 in January, −05:00 in July).

use std::str::FromStr;

use chrono::{Offset, TimeZone};

/// A time zone name that is not in the IANA database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?} (an IANA name such as America/Chicago)")]
pub struct UnknownZone(pub String);

/// An IANA time zone (`America/Chicago`, `Europe/Berlin`, `UTC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteZone(chrono_tz::Tz);

impl SiteZone {
    /// UTC: the zone of sites created before zones were recorded.
    pub const UTC: Self = Self(chrono_tz::UTC);

    /// The zone of an IANA name.
    pub fn parse(name: &str) -> Result<Self, UnknownZone> {
        chrono_tz::Tz::from_str(name.trim())
            .map(Self)
            .map_err(|_| UnknownZone(name.to_owned()))
    }

    /// The zone of a name read back from the database. Names are written only through
    /// [`SiteZone::parse`]; a row edited by hand to something else keeps the UTC its
    /// events always had rather than stopping the projection.
    pub fn stored(name: &str) -> Self {
        Self::parse(name).unwrap_or(Self::UTC)
    }

    /// The IANA name.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// `eventTimeZoneOffset` (`-05:00`) at the instant `ms` (Unix milliseconds).
    pub fn offset_at(self, ms: i64) -> String {
        let seconds = match chrono::DateTime::from_timestamp_millis(ms) {
            Some(t) => self
                .0
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
            None => 0,
        };
        let sign = if seconds < 0 { '-' } else { '+' };
        let minutes = seconds.unsigned_abs() / 60;
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-15T12:00:00Z and 2026-07-15T12:00:00Z.
    const WINTER: i64 = 1_768_478_400_000;
    const SUMMER: i64 = 1_784_116_800_000;

    #[test]
    fn offsets_follow_the_zone_and_its_daylight_saving_time() {
        let memphis = SiteZone::parse("America/Chicago").unwrap();
        assert_eq!(memphis.offset_at(WINTER), "-06:00");
        assert_eq!(memphis.offset_at(SUMMER), "-05:00");
        let berlin = SiteZone::parse("Europe/Berlin").unwrap();
        assert_eq!(berlin.offset_at(WINTER), "+01:00");
        assert_eq!(berlin.offset_at(SUMMER), "+02:00");
        assert_eq!(
            SiteZone::parse("Asia/Kolkata").unwrap().offset_at(WINTER),
            "+05:30"
        );
        assert_eq!(SiteZone::UTC.offset_at(SUMMER), "+00:00");
        // US daylight saving time 2026 starts 2026-03-08 08:00Z (02:00 CST).
        let before = 1_772_956_800_000 - 1;
        assert_eq!(memphis.offset_at(before), "-06:00");
        assert_eq!(memphis.offset_at(before + 1), "-05:00");
    }

    #[test]
    fn names_outside_the_iana_database_are_refused() {
        assert_eq!(
            SiteZone::parse("America/Chicago").unwrap().name(),
            "America/Chicago"
        );
        for bad in ["", "Memphis", "CST6", "+05:00"] {
            assert!(SiteZone::parse(bad).is_err(), "{bad}");
        }
    }
}
