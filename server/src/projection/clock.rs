//! Which time a scan's events carry. A scanner's clock is the best witness of when a
//! scan happened, but it is set by whoever holds the device: a clock far in the future
//! (or `u64::MAX`) would make every later scan of the same pack look "late" and freeze
//! its state for everyone. So device time is trusted only inside a window around the
//! server's time; outside it, the event carries the server's time at projection and the
//! scan is flagged (`device_clock_skew`), the device time kept as evidence.

/// How far ahead of the server's clock a device clock is still believed: scanners sync
/// their clocks over the network, and a few minutes of drift is ordinary.
pub const MAX_AHEAD_MS: u64 = 10 * 60 * 1000;

/// Nothing was scanned by swt before 2020-01-01 (UTC): an earlier device time is a
/// clock that was never set (a dead RTC battery gives 1970).
pub const EARLIEST_MS: u64 = 1_577_836_800_000;

/// The time to use instead of `device_ms` when it is outside the trusted window around
/// `server_ms`, or `None` when the device time is believed.
pub fn trusted_time(device_ms: u64, server_ms: u64) -> Option<u64> {
    let believed = device_ms >= EARLIEST_MS && device_ms <= server_ms.saturating_add(MAX_AHEAD_MS);
    (!believed).then_some(server_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_time_is_believed_only_inside_the_window() {
        let now = 1_796_000_000_000;
        assert_eq!(trusted_time(now, now), None);
        assert_eq!(
            trusted_time(now - 86_400_000 * 30, now),
            None,
            "offline for a month"
        );
        assert_eq!(trusted_time(now + MAX_AHEAD_MS, now), None);
        assert_eq!(trusted_time(now + MAX_AHEAD_MS + 1, now), Some(now));
        assert_eq!(trusted_time(u64::MAX, now), Some(now));
        assert_eq!(trusted_time(0, now), Some(now));
        assert_eq!(trusted_time(EARLIEST_MS - 1, now), Some(now));
    }
}
