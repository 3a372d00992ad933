//! The shared read plane: one per process, in front of every [`KeyVault`].
//!
//! ```text
//!  get(obj) ──▶ cache (identity, vault, kind, name, version) ── fresh ──▶ value
//!                 │ stale or absent
//!                 ▼
//!          single-flight: one leader per key, everyone else awaits its result
//!                 │ leader
//!                 ▼
//!          per-vault token bucket (first reads before refreshes)
//!                 ▼
//!          inner KeyVault (Azure SDK) ── 429: wait Retry-After; 5xx/408/timeout: jittered backoff
//! ```
//!
//! * The cache key includes the identity: two identities with different rights never share
//!   a value (deviation from a key of vault/kind/name/version alone).
//! * Errors are shared with the callers waiting on the same read but are not cached.
//! * The cache is bounded in time: a value is dropped once it is older than
//!   [`ReadConfig::ttl`], and its key (no value) is forgotten [`ReadConfig::forget_after`]
//!   later. Expiry is checked on access, and every lookup sweeps the whole cache when the last
//!   sweep is older than [`ReadConfig::sweep_interval`] (amortised: no background task).
//!   [`ReadPlane::sweep`] runs one on demand.
//! * Change detection is by version id: [`VaultObject::version`] of the result.
//! * A refresh is a read of a key that has been cached before; a first read is any other.
//!   When the budget is exhausted, queued first reads are admitted before queued refreshes.
//! * With [`OverBudget::Defer`] a refresh never waits for the budget: when no token is free
//!   (or first reads are waiting) it fails at once with [`Error::OverBudget`] naming when to
//!   come back. Deferred refreshes are given evenly spaced slots at the budget's rate, so a
//!   caller that polls more objects than the budget allows stretches its interval instead of
//!   piling up, and first reads always find the budget free of refreshes. A controller uses
//!   this so that refreshes never hold its worker slots while objects wait for a first sync.
//!
//! # Cancellation
//!
//! Dropping a leader's future releases the key: one of the waiters becomes the new leader.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::metrics::ClientMetrics;
use crate::object::{IdentityRef, ObjectKind, ObjectMeta, ObjectRef, VaultObject, VaultUrl};
use crate::vault::{KeyVault, KeyVaultProvider};

/// Key Vault's documented limit per vault: 4,000 transactions per 10 seconds.
pub const KEY_VAULT_LIMIT: u32 = 4_000;
/// Default budget: half of the limit.
pub const DEFAULT_BUDGET_REQUESTS: u32 = KEY_VAULT_LIMIT / 2;
/// The limit's window.
pub const DEFAULT_BUDGET_WINDOW: Duration = Duration::from_secs(10);
/// Default time a cached value is served without asking Key Vault.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// Default attempts per read (first try included).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// Default first backoff on 5xx/408/timeouts.
pub const DEFAULT_BASE_BACKOFF: Duration = Duration::from_millis(200);
/// Default backoff cap.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Default cap on an honoured `Retry-After`.
pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Default time a key is remembered after its value expired.
pub const DEFAULT_FORGET_AFTER: Duration = Duration::from_secs(300);
/// Default least time between two sweeps of the whole cache.
pub const DEFAULT_SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// A per-vault request budget: `requests` per `window`, refilled continuously, with a burst
/// of `requests`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetConfig {
    /// Requests per window.
    pub requests: u32,
    /// The window.
    pub window: Duration,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            requests: DEFAULT_BUDGET_REQUESTS,
            window: DEFAULT_BUDGET_WINDOW,
        }
    }
}

/// Read-plane configuration.
#[derive(Clone, Debug)]
pub struct ReadConfig {
    /// How long a value is served from the cache.
    pub ttl: Duration,
    /// Budget per vault.
    pub budget: BudgetConfig,
    /// Attempts per read, first included (at least 1).
    pub max_attempts: u32,
    /// First backoff for retryable errors without `Retry-After`.
    pub base_backoff: Duration,
    /// Backoff cap.
    pub max_backoff: Duration,
    /// Cap on `Retry-After`.
    pub max_retry_after: Duration,
    /// How long a key is remembered (without its value) after the value expired, so that its
    /// next read still counts as a refresh at the budget; then the key is forgotten.
    pub forget_after: Duration,
    /// Least time between two sweeps of the whole cache (run by the next lookup).
    pub sweep_interval: Duration,
    /// What a refresh does when the budget has no token for it (default
    /// [`OverBudget::Wait`]).
    pub refresh_over_budget: OverBudget,
}

/// What a refresh does when the per-vault budget is spent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OverBudget {
    /// Wait in the refresh queue, behind first reads (default).
    #[default]
    Wait,
    /// Fail at once with [`Error::OverBudget`] and a time to come back; see the module docs.
    Defer,
}

impl Default for ReadConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            budget: BudgetConfig::default(),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            base_backoff: DEFAULT_BASE_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
            forget_after: DEFAULT_FORGET_AFTER,
            sweep_interval: DEFAULT_SWEEP_INTERVAL,
            refresh_over_budget: OverBudget::Wait,
        }
    }
}

/// Priority at the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// A read of an object not cached before.
    First,
    /// A refresh of a cached object (or a listing).
    Refresh,
}

/// `now + d`, saturating far in the future.
fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Share of a budget that refreshes leave to first reads while first reads are being made
/// (see [`Budget::try_refresh`]).
pub const FIRST_READ_RESERVE: f64 = 0.1;

/// A token bucket with two queues.
#[derive(Debug)]
pub struct Budget {
    capacity: f64,
    per_second: f64,
    /// How long after a first read its reserve holds (a tenth of the window).
    first_read_window: Duration,
    state: Mutex<BudgetState>,
    queued: watch::Sender<(usize, usize)>,
    metrics: Option<ClientMetrics>,
}

#[derive(Debug)]
struct BudgetState {
    tokens: f64,
    last: Instant,
    first: VecDeque<oneshot::Sender<()>>,
    refresh: VecDeque<oneshot::Sender<()>>,
    /// The last slot handed to a deferred refresh (see [`Budget::try_refresh`]).
    deferred_until: Instant,
    /// When a first read last asked for a token.
    last_first: Option<Instant>,
}

impl BudgetState {
    fn refill(&mut self, capacity: f64, per_second: f64) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity);
        self.last = now;
    }

    /// Grants tokens to queued waiters, first reads before refreshes.
    fn dispatch(&mut self) {
        while self.tokens >= 1.0 {
            let Some(tx) = self.first.pop_front().or_else(|| self.refresh.pop_front()) else {
                break;
            };
            if tx.send(()).is_ok() {
                self.tokens -= 1.0;
            }
        }
    }
}

impl Budget {
    /// A full bucket for `cfg`.
    pub fn new(cfg: BudgetConfig, metrics: Option<ClientMetrics>) -> Self {
        let capacity = f64::from(cfg.requests.max(1));
        let per_second = capacity / cfg.window.as_secs_f64().max(0.001);
        Self {
            capacity,
            per_second,
            first_read_window: cfg.window / 10,
            state: Mutex::new(BudgetState {
                tokens: capacity,
                last: Instant::now(),
                first: VecDeque::new(),
                refresh: VecDeque::new(),
                deferred_until: Instant::now(),
                last_first: None,
            }),
            queued: watch::channel((0, 0)).0,
            metrics,
        }
    }

    /// Waiters queued as (first reads, refreshes).
    pub fn queued(&self) -> (usize, usize) {
        *self.queued.borrow()
    }

    /// Waits until at least `first` first reads and `refresh` refreshes are queued.
    pub async fn wait_queued(&self, first: usize, refresh: usize) {
        let mut rx = self.queued.subscribe();
        let _ = rx.wait_for(|(f, r)| *f >= first && *r >= refresh).await;
    }

    fn publish(&self, s: &BudgetState) {
        let now = (s.first.len(), s.refresh.len());
        self.queued.send_if_modified(|q| {
            let changed = *q != now;
            *q = now;
            changed
        });
    }

    /// Takes one token, waiting as long as needed; first reads overtake refreshes.
    pub async fn acquire(&self, priority: Priority) {
        let mut rx = {
            let mut s = lock(&self.state);
            s.refill(self.capacity, self.per_second);
            if priority == Priority::First {
                s.last_first = Some(Instant::now());
            }
            let may_pass =
                s.first.is_empty() && (priority == Priority::First || s.refresh.is_empty());
            if may_pass && s.tokens >= 1.0 {
                s.tokens -= 1.0;
                drop(s);
                self.admitted(false);
                return;
            }
            let (tx, rx) = oneshot::channel();
            match priority {
                Priority::First => s.first.push_back(tx),
                Priority::Refresh => s.refresh.push_back(tx),
            }
            self.publish(&s);
            rx
        };
        if let Some(m) = &self.metrics {
            m.budget_queue(1);
        }
        loop {
            let wait = {
                let mut s = lock(&self.state);
                s.refill(self.capacity, self.per_second);
                s.dispatch();
                self.publish(&s);
                Duration::from_secs_f64(((1.0 - s.tokens).max(0.0) / self.per_second).max(0.000_1))
            };
            tokio::select! {
                biased;
                _ = &mut rx => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.admitted(true);
    }

    /// Takes a token for a refresh if one is free and no first read is waiting; otherwise
    /// returns how long to wait before trying again, without queueing.
    ///
    /// While first reads are being made (one asked for a token within the last tenth of the
    /// window), refreshes also leave [`FIRST_READ_RESERVE`] of the bucket to them: first reads
    /// of a caller that is busy between reads (e.g. writing what it read) never find the
    /// bucket drained by refreshes.
    ///
    /// Each refusal gets the next free slot at the budget's rate, after the tokens owed to
    /// waiting first reads and earlier refusals, so refusals spread out instead of coming back
    /// together. The wait is capped at `max_wait`.
    ///
    /// # Errors
    ///
    /// The time to come back.
    pub fn try_refresh(&self, max_wait: Duration) -> std::result::Result<(), Duration> {
        let mut s = lock(&self.state);
        s.refill(self.capacity, self.per_second);
        let now = Instant::now();
        let reserve = match s.last_first {
            Some(t) if now.duration_since(t) < self.first_read_window => {
                (self.capacity * FIRST_READ_RESERVE).floor()
            }
            _ => 0.0,
        };
        if s.first.is_empty() && s.refresh.is_empty() && s.tokens >= 1.0 + reserve {
            s.tokens -= 1.0;
            drop(s);
            self.admitted(false);
            return Ok(());
        }
        let step = Duration::from_secs_f64(1.0 / self.per_second);
        // Tokens already owed: the first reads waiting, the reserve and the bucket's deficit.
        let owed = (s.first.len() + s.refresh.len()) as f64 + (1.0 + reserve - s.tokens).max(0.0);
        let earliest = now + Duration::from_secs_f64(owed / self.per_second);
        let slot = (s.deferred_until + step).max(earliest);
        let wait = slot.saturating_duration_since(now).min(max_wait);
        s.deferred_until = now + wait;
        drop(s);
        if let Some(m) = &self.metrics {
            m.budget_deferred();
        }
        Err(wait)
    }

    fn admitted(&self, was_queued: bool) {
        if let Some(m) = &self.metrics {
            m.budget_admitted();
            if was_queued {
                m.budget_queue(-1);
            }
        }
    }
}

type CacheKey = (IdentityRef, ObjectRef);
type Shared = Result<VaultObject, Arc<Error>>;

#[derive(Debug, Default)]
struct Entry {
    /// The value, while younger than the TTL.
    cached: Option<Arc<VaultObject>>,
    /// When the last successful read finished; `None` for a key never read successfully.
    fetched: Option<Instant>,
    in_flight: Option<watch::Receiver<Option<Shared>>>,
}

impl Entry {
    /// Drops an expired value; whether the entry is still worth keeping.
    fn expire(&mut self, now: Instant, cfg: &ReadConfig) -> bool {
        let age = self.fetched.map(|at| now.saturating_duration_since(at));
        if age.is_none_or(|age| age >= cfg.ttl) {
            self.cached = None;
        }
        self.in_flight.is_some()
            || age.is_some_and(|age| age < cfg.ttl.saturating_add(cfg.forget_after))
    }
}

#[derive(Debug)]
struct Entries {
    map: HashMap<CacheKey, Entry>,
    next_sweep: Instant,
}

/// What the cache holds, from [`ReadPlane::cache_size`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheSize {
    /// Keys known (with a value, being read, or remembered for refresh priority).
    pub keys: usize,
    /// Keys holding a value.
    pub values: usize,
}

#[derive(Debug)]
struct PlaneState {
    cfg: ReadConfig,
    entries: Mutex<Entries>,
    budgets: Mutex<HashMap<VaultUrl, Arc<Budget>>>,
    metrics: Option<ClientMetrics>,
    waiting: watch::Sender<usize>,
}

/// The process-wide read plane: a [`KeyVaultProvider`] wrapping another one.
#[derive(Clone, Debug)]
pub struct ReadPlane {
    inner: Arc<dyn KeyVaultProvider>,
    state: Arc<PlaneState>,
}

impl ReadPlane {
    /// A read plane in front of `inner`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a zero budget or zero attempts.
    pub fn new(
        inner: Arc<dyn KeyVaultProvider>,
        cfg: ReadConfig,
        metrics: Option<ClientMetrics>,
    ) -> Result<Self> {
        if cfg.budget.requests == 0 || cfg.budget.window.is_zero() {
            return Err(Error::InvalidConfig {
                field: "budget",
                reason: "requests and window must be positive".into(),
            });
        }
        if cfg.max_attempts == 0 {
            return Err(Error::InvalidConfig {
                field: "max_attempts",
                reason: "at least 1".into(),
            });
        }
        let cfg_sweep = cfg.sweep_interval;
        Ok(Self {
            inner,
            state: Arc::new(PlaneState {
                cfg,
                entries: Mutex::new(Entries {
                    map: HashMap::new(),
                    next_sweep: after(Instant::now(), cfg_sweep),
                }),
                budgets: Mutex::new(HashMap::new()),
                metrics,
                waiting: watch::channel(0).0,
            }),
        })
    }

    /// The budget of `vault` (created on first use).
    pub fn budget(&self, vault: &VaultUrl) -> Arc<Budget> {
        self.state.budget(vault)
    }

    /// Drops every expired value and forgets keys past [`ReadConfig::forget_after`] now,
    /// instead of at the next lookup after [`ReadConfig::sweep_interval`].
    pub fn sweep(&self) {
        let mut entries = lock(&self.state.entries);
        self.state.sweep(&mut entries, Instant::now());
    }

    /// How many keys and values the cache holds.
    pub fn cache_size(&self) -> CacheSize {
        let entries = lock(&self.state.entries);
        CacheSize {
            keys: entries.map.len(),
            values: entries.map.values().filter(|e| e.cached.is_some()).count(),
        }
    }

    /// Callers currently waiting for a Key Vault read (leaders and those sharing their read).
    pub fn waiting(&self) -> usize {
        *self.state.waiting.borrow()
    }

    /// Waits until at least `n` callers wait for Key Vault reads (a test hook for the
    /// single-flight proof: no sleeping, no polling).
    pub async fn wait_waiting(&self, n: usize) {
        let mut rx = self.state.waiting.subscribe();
        let _ = rx.wait_for(|w| *w >= n).await;
    }
}

impl KeyVaultProvider for ReadPlane {
    fn vault(&self, url: &VaultUrl, identity: &IdentityRef) -> Result<Arc<dyn KeyVault>> {
        Ok(Arc::new(CachedVault {
            inner: self.inner.vault(url, identity)?,
            identity: identity.clone(),
            state: self.state.clone(),
        }))
    }
}

/// One vault as one identity, behind the read plane.
#[derive(Debug)]
pub struct CachedVault {
    inner: Arc<dyn KeyVault>,
    identity: IdentityRef,
    state: Arc<PlaneState>,
}

struct WaitingGuard<'a>(&'a watch::Sender<usize>);

impl<'a> WaitingGuard<'a> {
    fn new(tx: &'a watch::Sender<usize>) -> Self {
        tx.send_modify(|n| *n += 1);
        Self(tx)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// Clears the in-flight marker of a key when the leader finishes or is dropped.
struct LeaderGuard<'a> {
    state: &'a PlaneState,
    key: &'a CacheKey,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut entries = lock(&self.state.entries);
        if let Some(e) = entries.map.get_mut(self.key) {
            e.in_flight = None;
            // A key never read successfully is not kept (errors are not cached).
            if e.fetched.is_none() {
                entries.map.remove(self.key);
            }
        }
    }
}

enum Role {
    Hit(VaultObject),
    Follow(watch::Receiver<Option<Shared>>),
    Lead(watch::Sender<Option<Shared>>, Priority),
}

impl PlaneState {
    fn budget(&self, vault: &VaultUrl) -> Arc<Budget> {
        lock(&self.budgets)
            .entry(vault.clone())
            .or_insert_with(|| Arc::new(Budget::new(self.cfg.budget, self.metrics.clone())))
            .clone()
    }

    fn lookup(&self, kind: ObjectKind, result: &'static str) {
        if let Some(m) = &self.metrics {
            m.lookup(kind.as_str(), result);
        }
    }

    /// Drops expired values and forgets old keys.
    fn sweep(&self, entries: &mut Entries, now: Instant) {
        let before = entries.map.len();
        entries.map.retain(|_, e| e.expire(now, &self.cfg));
        entries.next_sweep = after(now, self.cfg.sweep_interval);
        tracing::trace!(
            keys = entries.map.len(),
            forgotten = before - entries.map.len(),
            "cache swept"
        );
    }

    fn role(&self, key: &CacheKey) -> Role {
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        if now >= entries.next_sweep {
            self.sweep(&mut entries, now);
        }
        let entry = entries.map.entry(key.clone()).or_default();
        entry.expire(now, &self.cfg);
        if let Some(obj) = &entry.cached {
            return Role::Hit(VaultObject::clone(obj));
        }
        if let Some(rx) = &entry.in_flight {
            return Role::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        entry.in_flight = Some(rx);
        let priority = if entry.fetched.is_some() {
            Priority::Refresh
        } else {
            Priority::First
        };
        Role::Lead(tx, priority)
    }

    async fn get(&self, inner: &dyn KeyVault, key: &CacheKey) -> Result<VaultObject> {
        let kind = key.1.kind;
        loop {
            match self.role(key) {
                Role::Hit(obj) => {
                    self.lookup(kind, "hit");
                    return Ok(obj);
                }
                Role::Follow(mut rx) => {
                    self.lookup(kind, "shared");
                    let _waiting = WaitingGuard::new(&self.waiting);
                    let outcome = rx
                        .wait_for(Option::is_some)
                        .await
                        .ok()
                        .and_then(|v| v.clone());
                    match outcome {
                        Some(Ok(obj)) => return Ok(obj),
                        Some(Err(e)) => return Err(Error::Shared { source: e }),
                        // The leader was dropped: try again, maybe as the leader.
                        None => continue,
                    }
                }
                Role::Lead(tx, priority) => {
                    self.lookup(
                        kind,
                        if priority == Priority::First {
                            "miss"
                        } else {
                            "refresh"
                        },
                    );
                    let _waiting = WaitingGuard::new(&self.waiting);
                    let _leader = LeaderGuard { state: self, key };
                    let result = self.fetch(inner, &key.1, priority).await;
                    if let Ok(obj) = &result {
                        let mut entries = lock(&self.entries);
                        let entry = entries.map.entry(key.clone()).or_default();
                        entry.cached = Some(Arc::new(obj.clone()));
                        entry.fetched = Some(Instant::now());
                    }
                    return match result {
                        Ok(obj) => {
                            tx.send_replace(Some(Ok(obj.clone())));
                            Ok(obj)
                        }
                        Err(e) => {
                            let shared = Arc::new(e);
                            tx.send_replace(Some(Err(shared.clone())));
                            Err(Error::Shared { source: shared })
                        }
                    };
                }
            }
        }
    }

    async fn fetch(
        &self,
        inner: &dyn KeyVault,
        obj: &ObjectRef,
        priority: Priority,
    ) -> Result<VaultObject> {
        let budget = self.budget(&obj.vault);
        let mut attempt = 1;
        loop {
            match (priority, self.cfg.refresh_over_budget) {
                (Priority::Refresh, OverBudget::Defer) => {
                    if let Err(retry_in) = budget.try_refresh(self.cfg.max_retry_after) {
                        return Err(Error::OverBudget {
                            vault: obj.vault.to_string(),
                            retry_in,
                        });
                    }
                }
                _ => budget.acquire(priority).await,
            }
            let result = inner.get(obj).await;
            if let Some(m) = &self.metrics {
                m.request(
                    obj.kind.as_str(),
                    result.as_ref().map_or_else(Error::kind, |_| "ok"),
                );
            }
            match result {
                Ok(v) => return Ok(v),
                Err(e) if !e.is_retryable() || attempt >= self.cfg.max_attempts => return Err(e),
                Err(e) => {
                    let delay = match e.retry_after() {
                        Some(d) => d.min(self.cfg.max_retry_after),
                        None => self.backoff(attempt),
                    };
                    tracing::warn!(
                        vault = %obj.vault,
                        object = %obj.name,
                        attempt,
                        delay_ms = delay.as_millis() as u64,
                        error = &e as &dyn std::error::Error,
                        "key vault read failed, retrying"
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random.
    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .cfg
            .base_backoff
            .saturating_mul(1u32 << (attempt - 1).min(16))
            .min(self.cfg.max_backoff);
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        let fraction = (random % 1_000) as f64 / 1_000.0;
        exp.mul_f64(0.5 + fraction / 2.0)
    }
}

#[async_trait::async_trait]
impl KeyVault for CachedVault {
    async fn get(&self, obj: &ObjectRef) -> Result<VaultObject> {
        let key = (self.identity.clone(), obj.clone());
        self.state.get(self.inner.as_ref(), &key).await
    }

    async fn list(&self, vault: &VaultUrl, kind: ObjectKind) -> Result<Vec<ObjectMeta>> {
        // Listing costs at least one request per 25 objects: it waits behind first reads.
        self.state.budget(vault).acquire(Priority::Refresh).await;
        let result = self.inner.list(vault, kind).await;
        if let Some(m) = &self.state.metrics {
            m.request(
                kind.as_str(),
                result.as_ref().map_or_else(Error::kind, |_| "ok"),
            );
        }
        result
    }
}

#[cfg(test)]
mod tests;
