//! The testkit clock: every time-dependent behaviour of every fake reads it.
//!
//! Token expiry, NMI assignment windows, `created`/`updated` timestamps and injected latency
//! all go through a [`Clock`]. A test that wants determinism builds the fakes with
//! [`Clock::manual`] and moves time with [`Clock::advance`]; nothing in testkit then waits on
//! wall-clock time. [`Clock::system`] follows the real clock, for demos and for tests that ask
//! for real latency.
//!
//! ```
//! use std::time::Duration;
//! use testkit::clock::Clock;
//!
//! let clock = Clock::manual_at_unix(1_700_000_000);
//! clock.advance(Duration::from_secs(90));
//! assert_eq!(clock.unix_seconds(), 1_700_000_090);
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

/// A clock shared by the fakes of one test. Cheap to clone; clones share the same time.
#[derive(Clone)]
pub struct Clock {
    inner: Arc<Inner>,
}

enum Inner {
    System,
    Manual(watch::Sender<SystemTime>),
}

impl Clock {
    /// A clock that follows the system clock. Latency injected on it is real waiting.
    pub fn system() -> Self {
        Self {
            inner: Arc::new(Inner::System),
        }
    }

    /// A manual clock starting at the current system time; it moves only through
    /// [`Clock::advance`].
    pub fn manual() -> Self {
        Self::manual_at(SystemTime::now())
    }

    /// A manual clock starting at `start`.
    pub fn manual_at(start: SystemTime) -> Self {
        let (tx, _) = watch::channel(start);
        Self {
            inner: Arc::new(Inner::Manual(tx)),
        }
    }

    /// A manual clock starting at `secs` seconds after the Unix epoch.
    pub fn manual_at_unix(secs: u64) -> Self {
        Self::manual_at(UNIX_EPOCH + Duration::from_secs(secs))
    }

    /// Whether this clock only moves when a test advances it.
    pub fn is_manual(&self) -> bool {
        matches!(*self.inner, Inner::Manual(_))
    }

    /// The current time.
    pub fn now(&self) -> SystemTime {
        match &*self.inner {
            Inner::System => SystemTime::now(),
            Inner::Manual(tx) => *tx.borrow(),
        }
    }

    /// The current time as whole seconds since the Unix epoch (Key Vault's and JWT's unit).
    pub fn unix_seconds(&self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    /// Moves a manual clock forward and wakes every fake waiting on it.
    ///
    /// # Panics
    ///
    /// On a system clock, which cannot be moved: that is a mistake in the test.
    pub fn advance(&self, by: Duration) {
        match &*self.inner {
            Inner::System => panic!("testkit: Clock::advance called on a system clock"),
            Inner::Manual(tx) => tx.send_modify(|now| *now += by),
        }
    }

    /// Waits until `d` has passed on this clock: real waiting on a system clock, and on a
    /// manual clock until a test has advanced it far enough.
    pub async fn sleep(&self, d: Duration) {
        match &*self.inner {
            Inner::System => tokio::time::sleep(d).await,
            Inner::Manual(tx) => {
                let deadline = *tx.borrow() + d;
                let mut rx = tx.subscribe();
                // The sender lives as long as `self`, so `wait_for` only ends when the
                // deadline is reached.
                let _ = rx.wait_for(|now| *now >= deadline).await;
            }
        }
    }
}

/// Formats `t` as RFC 3339 in UTC with whole seconds (`2026-12-03T14:10:23Z`), as Kubernetes
/// writes timestamps.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Default for Clock {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.inner {
            Inner::System => f.write_str("Clock::System"),
            Inner::Manual(tx) => f.debug_tuple("Clock::Manual").field(&*tx.borrow()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn manual_sleep_ends_only_when_the_clock_is_advanced_far_enough() {
        let clock = Clock::manual_at_unix(1_000);
        let mut sleep = std::pin::pin!(clock.sleep(Duration::from_secs(10)));
        assert!(futures::poll!(&mut sleep).is_pending());
        clock.advance(Duration::from_secs(9));
        assert!(
            futures::poll!(&mut sleep).is_pending(),
            "woke before the deadline"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            futures::poll!(&mut sleep).is_ready(),
            "still asleep after the deadline"
        );
        assert_eq!(clock.unix_seconds(), 1_010);
    }

    #[test]
    fn rfc3339_formats_utc_seconds() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_493_938_410)),
            "2017-05-04T22:53:30Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn clones_share_time() {
        let a = Clock::manual_at_unix(5);
        let b = a.clone();
        a.advance(Duration::from_secs(3));
        assert_eq!(b.unix_seconds(), 8);
        assert!(b.is_manual());
        assert!(!Clock::system().is_manual());
    }
}
