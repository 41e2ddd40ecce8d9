//! Time as unix seconds, behind a trait so tests can move it (link expiry, outbox backoff).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync + 'static {
    /// Seconds since the unix epoch.
    fn now(&self) -> i64;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map(seconds).unwrap_or(0)
    }
}

/// A clock that stands still until told to move; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: i64) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }
    /// Starts at the real current time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// A duration in whole seconds, as the rest of formgate counts time (`i64` unix seconds).
/// Saturates: no configured duration comes near 292 billion years.
pub fn seconds(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

/// `Thu, 26 Nov 2026 08:00:00 GMT`: unambiguous for visitors in any time zone.
pub fn human_time(unix: i64) -> String {
    // httpdate panics past the year 9999 (a mistyped lifetime could get there).
    const LAST_SECOND_OF_9999: i64 = 253_402_300_799;
    httpdate::fmt_http_date(
        UNIX_EPOCH + Duration::from_secs(u64::try_from(unix.clamp(0, LAST_SECOND_OF_9999)).unwrap_or(0)),
    )
}

/// A moment's calendar date and time of day, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

/// `unix` on the proleptic Gregorian calendar (Howard Hinnant's civil_from_days).
pub fn civil(unix: i64) -> Civil {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    Civil {
        year: yoe + era * 400 + i64::from(month <= 2),
        month,
        day,
        hour: secs / 3600,
        minute: secs % 3600 / 60,
        second: secs % 60,
    }
}

/// `2026-11-26T08:00:00Z` (RFC 3339, UTC): for machines (webhook events).
pub fn rfc3339(unix: i64) -> String {
    let Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
    } = civil(unix);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use super::{human_time, rfc3339};

    #[test]
    fn rfc3339_is_utc_to_the_second() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn human_time_is_an_http_date_and_never_panics() {
        assert_eq!(human_time(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 GMT");
        assert_eq!(human_time(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(human_time(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
