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
        Self::manual_at(from_unix_seconds(secs))
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
        unix_seconds(self.now())
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
    let (y, mo, d, h, mi, s) = civil_from_unix(unix_seconds(t));
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Whole seconds from the Unix epoch to `t` (0 before 1970).
pub(crate) fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The instant `secs` seconds after the Unix epoch.
pub(crate) fn from_unix_seconds(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Civil date and time (UTC) of Unix seconds: (year, month, day, hour, minute, second).
pub(crate) fn civil_from_unix(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Both fit: days < 2^64 / 86 400 < 2^63, rem < 86 400.
    let (y, mo, d) = civil_from_days(days as i64);
    let rem = rem as u32;
    (y, mo, d, rem / 3600, rem % 3600 / 60, rem % 60)
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

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of `civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds of an RFC 3339 date-time `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (fractions
/// are dropped, as Key Vault and Kubernetes keep seconds).
///
/// # Errors
///
/// A fixed description of what is wrong (shape, a field out of range, before 1970).
pub(crate) fn parse_rfc3339(s: &str) -> Result<u64, &'static str> {
    const SHAPE: &str = "not of the form YYYY-MM-DDTHH:MM:SSZ";
    let digits = |from: usize, len: usize| -> Result<i64, &'static str> {
        let part = s.get(from..from + len).ok_or(SHAPE)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SHAPE);
        }
        part.parse().map_err(|_| SHAPE)
    };
    let sep = |at: usize, allowed: &[u8]| match s.as_bytes().get(at) {
        Some(b) if allowed.contains(b) => Ok(()),
        _ => Err(SHAPE),
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt")?;
    sep(13, b":")?;
    sep(16, b":")?;
    let mut rest = s.get(19..).ok_or(SHAPE)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(n..).filter(|_| n > 0).ok_or(SHAPE)?;
    }
    let zone = s.len() - rest.len();
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(zone + 1, 2)?, digits(zone + 4, 2)?);
            if h > 23 || m > 59 {
                return Err("an offset out of range");
            }
            if *sign == b'+' {
                h * 3600 + m * 60
            } else {
                -(h * 3600 + m * 60)
            }
        }
        _ => return Err(SHAPE),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("a month out of range"),
    };
    if !(1..=month_days).contains(&day) {
        return Err("a day out of range for its month");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("a time of day out of range (leap seconds are not accepted)");
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).map_err(|_| "before 1970")
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
    fn formatting_and_parsing_round_trip() {
        for secs in [0, 951_782_400, 1_493_938_410, 1_709_164_800, 4_102_444_799] {
            let t = from_unix_seconds(secs);
            assert_eq!(parse_rfc3339(&rfc3339(t)), Ok(secs), "{}", rfc3339(t));
            assert_eq!(unix_seconds(t), secs);
        }
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

    #[test]
    fn rfc3339_times_parse_to_unix_seconds() {
        for (text, expected) in [
            ("1970-01-01T00:00:00Z", Ok(0)),
            ("2030-01-31T12:00:00Z", Ok(1_896_091_200)),
            ("2030-01-31t12:00:00z", Ok(1_896_091_200)),
            ("2030-01-31T12:00:00.999Z", Ok(1_896_091_200)),
            ("2030-01-31T13:30:00+01:30", Ok(1_896_091_200)),
            ("2030-01-31T10:00:00-02:00", Ok(1_896_091_200)),
            ("2024-02-29T00:00:00Z", Ok(1_709_164_800)),
            ("2000-03-01T00:00:00Z", Ok(951_868_800)),
            (
                "2023-02-29T00:00:00Z",
                Err("a day out of range for its month"),
            ),
            ("2030-13-01T00:00:00Z", Err("a month out of range")),
            (
                "2030-01-01T24:00:00Z",
                Err("a time of day out of range (leap seconds are not accepted)"),
            ),
            ("1969-12-31T23:59:59Z", Err("before 1970")),
            ("2030-01-01", Err("not of the form YYYY-MM-DDTHH:MM:SSZ")),
            (
                "2030-01-01T00:00:00",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "2030-01-01T00:00:00.Z",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "2030-01-01T00:00:00+0100",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "+030-01-01T00:00:00Z",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "2030-01-01T00:00:00Zé",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            ("1700000000", Err("not of the form YYYY-MM-DDTHH:MM:SSZ")),
        ] {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
    }
}
