//! Fault injection, request counters and the request log: shared by every fake.
//!
//! A [`Fault`] matches requests (method, host, path, whether they carry a bearer token) and does
//! something to them a given number of times: answer with a status (the fake writes the body
//! its real counterpart would, e.g. Key Vault's `Throttled` for 429), add latency on the testkit
//! clock, or drop the connection without an answer. Every request ends up in the
//! [`RequestLog`] with its outcome, so tests assert on cost as well as on results.
//!
//! ```
//! use std::time::Duration;
//! use testkit::faults::{Fault, Faults};
//!
//! let faults = Faults::default();
//! faults.inject(Fault::throttle(Duration::from_secs(2)).on_path("/secrets/").authenticated_only().times(1));
//! assert_eq!(faults.pending(), 1);
//! ```

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

/// What a fault does to a matching request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status; the fake writes its service's error body for it.
    Status {
        /// HTTP status code.
        status: u16,
        /// `Retry-After` header value in seconds, if any.
        retry_after: Option<u64>,
    },
    /// Wait this long on the testkit clock before handling the request normally.
    Latency(Duration),
    /// Close the connection without answering.
    DropConnection,
}

/// A rule: which requests, what to do, how many times.
#[derive(Clone, Debug)]
pub struct Fault {
    method: Option<String>,
    host: Option<String>,
    path: Option<String>,
    segment: Option<String>,
    authenticated: Option<bool>,
    action: FaultAction,
    remaining: Option<u32>,
}

impl Fault {
    fn new(action: FaultAction) -> Self {
        Self {
            method: None,
            host: None,
            path: None,
            segment: None,
            authenticated: None,
            action,
            remaining: None,
        }
    }

    /// Answer with `status` (e.g. 500, 503).
    pub fn status(status: u16) -> Self {
        Self::new(FaultAction::Status {
            status,
            retry_after: None,
        })
    }

    /// Answer 429 with `Retry-After` (whole seconds, rounded up).
    pub fn throttle(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self::new(FaultAction::Status {
            status: 429,
            retry_after: Some(secs),
        })
    }

    /// Delay matching requests by `d` on the testkit clock.
    pub fn latency(d: Duration) -> Self {
        Self::new(FaultAction::Latency(d))
    }

    /// Close the connection of matching requests without a response.
    pub fn drop_connection() -> Self {
        Self::new(FaultAction::DropConnection)
    }

    /// Apply to the next `n` matching requests only (default: every one).
    #[must_use]
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Only requests with this method.
    #[must_use]
    pub fn on_method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests for this host (e.g. `myvault.vault.azure.net`).
    #[must_use]
    pub fn on_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_ascii_lowercase());
        self
    }

    /// Only requests whose path starts with `prefix`.
    #[must_use]
    pub fn on_path(mut self, prefix: &str) -> Self {
        self.path = Some(prefix.to_owned());
        self
    }

    /// Only requests with a path segment (between `/`s) equal to `segment`, wherever it is:
    /// `on_path_segment("secrets")` matches every request for the API server's secrets
    /// (`/api/v1/secrets`, `/api/v1/namespaces/ns/secrets/name`, watches of them) whatever the
    /// namespace, but not `/api/v1/namespaces/ns/configmaps` or a `secretsx` segment. It also
    /// matches an object *named* `secrets`; add [`Fault::on_path`] or [`Fault::on_method`] to
    /// narrow it. Case-sensitive, as Kubernetes paths are; combined with `on_path`, both must hold.
    #[must_use]
    pub fn on_path_segment(mut self, segment: &str) -> Self {
        self.segment = Some(segment.to_owned());
        self
    }

    /// Only requests that carry a bearer token (so a challenge round trip is not consumed).
    #[must_use]
    pub fn authenticated_only(mut self) -> Self {
        self.authenticated = Some(true);
        self
    }

    /// Only requests without a bearer token.
    #[must_use]
    pub fn unauthenticated_only(mut self) -> Self {
        self.authenticated = Some(false);
        self
    }

    fn matches(&self, req: &RequestKey<'_>) -> bool {
        self.method.as_deref().is_none_or(|m| m == req.method)
            && self.host.as_deref().is_none_or(|h| h == req.host)
            && self.path.as_deref().is_none_or(|p| req.path.starts_with(p))
            && self
                .segment
                .as_deref()
                .is_none_or(|seg| req.path.split('/').any(|s| s == seg))
            && self.authenticated.is_none_or(|a| a == req.authenticated)
            && self.remaining != Some(0)
    }
}

/// What a fault matcher sees of a request.
#[derive(Clone, Copy, Debug)]
pub struct RequestKey<'a> {
    /// Upper-case method.
    pub method: &'a str,
    /// Lower-case host without port.
    pub host: &'a str,
    /// Path without query.
    pub path: &'a str,
    /// Whether an `Authorization: Bearer` header is present.
    pub authenticated: bool,
}

/// The faults of one fake. Rules are tried in insertion order.
#[derive(Debug)]
pub struct Faults {
    rules: Mutex<Vec<Fault>>,
    delayed: watch::Sender<usize>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            rules: Mutex::new(Vec::new()),
            delayed: watch::channel(0).0,
        }
    }
}

/// The faults that apply to one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Total injected latency.
    pub latency: Duration,
    /// The status or drop to apply instead of the service's answer.
    pub outcome: Option<FaultAction>,
}

impl Faults {
    /// Adds a rule.
    pub fn inject(&self, fault: Fault) {
        lock(&self.rules).push(fault);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// Rules that can still fire.
    pub fn pending(&self) -> usize {
        lock(&self.rules)
            .iter()
            .filter(|f| f.remaining != Some(0))
            .count()
    }

    /// How many requests have started waiting out injected latency so far.
    pub fn delayed(&self) -> usize {
        *self.delayed.borrow()
    }

    /// Waits until at least `n` requests have started waiting out injected latency, so a test
    /// on a manual clock knows when to advance it.
    pub async fn wait_delayed(&self, n: usize) {
        let mut rx = self.delayed.subscribe();
        let _ = rx.wait_for(|d| *d >= n).await;
    }

    /// Records that a request started waiting out injected latency (called by the server).
    pub(crate) fn note_delayed(&self) {
        self.delayed.send_modify(|d| *d += 1);
    }

    /// Consumes the rules that apply to `req`: every matching latency adds up; the first
    /// matching status or drop wins.
    pub fn take(&self, req: &RequestKey<'_>) -> Applied {
        let mut applied = Applied::default();
        for rule in lock(&self.rules).iter_mut() {
            if !rule.matches(req) {
                continue;
            }
            match &rule.action {
                FaultAction::Latency(d) => applied.latency += *d,
                other if applied.outcome.is_none() => applied.outcome = Some(other.clone()),
                _ => continue,
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
        }
        applied
    }
}

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Carried a valid token and reached the service (a billable Key Vault transaction, even
    /// when the answer is 403 or 404).
    Authorized,
    /// No token: answered with the authentication challenge (401 + `WWW-Authenticate`).
    Challenge,
    /// A token was presented and refused (wrong audience, tenant, signature, expired).
    TokenRejected,
    /// Served without authentication (endpoints that need none, e.g. an Entra token request).
    Anonymous,
    /// Refused before authentication (e.g. 400 for a missing `api-version`).
    BadRequest,
    /// Answered by an injected status fault.
    Faulted,
    /// The connection was dropped by an injected fault.
    Dropped,
}

/// One request as the fake saw it. Never holds tokens, bodies or secret values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// Order of arrival, from 0.
    pub seq: u64,
    /// Testkit clock time of arrival.
    pub at: SystemTime,
    /// Upper-case method.
    pub method: String,
    /// Lower-case host without port.
    pub host: String,
    /// Path without query.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Status sent (0 when the connection was dropped).
    pub status: u16,
    /// How it ended.
    pub outcome: Outcome,
    /// Object id of the authenticated caller, if any.
    pub principal: Option<String>,
    /// `user-agent` header.
    pub user_agent: Option<String>,
}

/// Counts over a [`RequestLog`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every request.
    pub total: usize,
    /// [`Outcome::Authorized`]: the calls that cost (Key Vault transactions).
    pub authorized: usize,
    /// [`Outcome::Challenge`].
    pub challenges: usize,
    /// [`Outcome::TokenRejected`].
    pub rejected_tokens: usize,
    /// [`Outcome::Faulted`] and [`Outcome::Dropped`].
    pub faulted: usize,
}

/// Every request a fake answered, in order.
#[derive(Debug)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
    len: watch::Sender<usize>,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self {
            records: Mutex::new(Vec::new()),
            len: watch::channel(0).0,
        }
    }
}

impl RequestLog {
    /// Appends a record (the fake sets `seq`).
    pub fn push(&self, mut record: RequestRecord) {
        let mut records = lock(&self.records);
        record.seq = records.len() as u64;
        records.push(record);
        let n = records.len();
        drop(records);
        self.len.send_replace(n);
    }

    /// A copy of every record.
    pub fn records(&self) -> Vec<RequestRecord> {
        lock(&self.records).clone()
    }

    /// Records matching `pred`.
    pub fn filter(&self, pred: impl Fn(&RequestRecord) -> bool) -> Vec<RequestRecord> {
        lock(&self.records)
            .iter()
            .filter(|r| pred(r))
            .cloned()
            .collect()
    }

    /// Counts by outcome.
    pub fn counts(&self) -> Counts {
        let records = lock(&self.records);
        let of = |o: Outcome| records.iter().filter(|r| r.outcome == o).count();
        Counts {
            total: records.len(),
            authorized: of(Outcome::Authorized),
            challenges: of(Outcome::Challenge),
            rejected_tokens: of(Outcome::TokenRejected),
            faulted: of(Outcome::Faulted) + of(Outcome::Dropped),
        }
    }

    /// Forgets every record (counts restart from zero).
    pub fn clear(&self) {
        lock(&self.records).clear();
        self.len.send_replace(0);
    }

    /// Waits until at least `n` requests have been logged (no polling, no sleeping).
    pub async fn wait_for(&self, n: usize) {
        let mut rx = self.len.subscribe();
        let _ = rx.wait_for(|len| *len >= n).await;
    }
}

/// Locks a mutex, recovering the data if a panicking test thread poisoned it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(path: &str, authenticated: bool) -> RequestKey<'_> {
        RequestKey {
            method: "GET",
            host: "v.vault.azure.net",
            path,
            authenticated,
        }
    }

    #[test]
    fn counted_faults_fire_exactly_n_times_and_latencies_add_up() {
        let faults = Faults::default();
        faults.inject(Fault::latency(Duration::from_millis(20)));
        faults.inject(Fault::latency(Duration::from_millis(30)).times(1));
        faults.inject(
            Fault::status(503)
                .on_path("/secrets/")
                .authenticated_only()
                .times(2),
        );

        // A challenge request does not consume the authenticated-only fault.
        let a = faults.take(&key("/secrets/x/", false));
        assert_eq!(
            a,
            Applied {
                latency: Duration::from_millis(50),
                outcome: None
            }
        );

        let b = faults.take(&key("/secrets/x/", true));
        assert_eq!(b.latency, Duration::from_millis(20));
        assert_eq!(
            b.outcome,
            Some(FaultAction::Status {
                status: 503,
                retry_after: None
            })
        );
        assert!(faults.take(&key("/keys/x/", true)).outcome.is_none());
        assert!(faults.take(&key("/secrets/x/", true)).outcome.is_some());
        assert!(
            faults.take(&key("/secrets/x/", true)).outcome.is_none(),
            "fired a third time"
        );
        assert_eq!(faults.pending(), 1, "only the unlimited latency remains");
    }

    #[test]
    fn path_segment_faults_match_a_whole_segment_anywhere_in_the_path() {
        let faults = Faults::default();
        faults.inject(Fault::status(500).on_path_segment("secrets"));
        let fires = |path: &str| faults.take(&key(path, true)).outcome.is_some();
        for path in [
            "/api/v1/secrets",
            "/api/v1/namespaces/default/secrets",
            "/api/v1/namespaces/kube-system/secrets/db",
            "/apis/spike.example.com/v1/namespaces/ns/secrets/",
        ] {
            assert!(fires(path), "{path}");
        }
        for path in [
            "/api/v1/namespaces/default/configmaps/db",
            "/api/v1/namespaces/secretsx/configmaps",
            "/api/v1/namespaces/default/Secrets",
            "/secretsecrets",
            "/",
            "",
        ] {
            assert!(!fires(path), "{path}");
        }

        // With a prefix, both must hold.
        let faults = Faults::default();
        faults.inject(
            Fault::status(503)
                .on_path("/api/v1/namespaces/a/")
                .on_path_segment("secrets"),
        );
        let fires = |path: &str| faults.take(&key(path, true)).outcome.is_some();
        assert!(fires("/api/v1/namespaces/a/secrets/x"));
        assert!(!fires("/api/v1/namespaces/b/secrets/x"));
        assert!(!fires("/api/v1/namespaces/a/configmaps/x"));
    }

    #[test]
    fn throttle_rounds_retry_after_up() {
        let f = Fault::throttle(Duration::from_millis(1500));
        assert_eq!(
            f.action,
            FaultAction::Status {
                status: 429,
                retry_after: Some(2)
            }
        );
    }
}
