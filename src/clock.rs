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

#[cfg(test)]
mod tests {
    use super::human_time;

    #[test]
    fn human_time_is_an_http_date_and_never_panics() {
        assert_eq!(human_time(1_795_000_000), "Wed, 18 Nov 2026 11:06:40 GMT");
        assert_eq!(human_time(-5), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(human_time(i64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }
}
