//! Per-scope token cache with refresh before expiry.
//!
//! Expiry is converted once, when a token arrives, from its wall-clock `expires_on` into a
//! [`tokio::time::Instant`], so paused-time tests drive refresh with `tokio::time::advance`.
//! A token is refreshed once it is within `refresh_before` of expiry (or past half its
//! lifetime, for short-lived tokens). Concurrent callers for one scope share one fetch. When a
//! refresh fails while the cached token is still valid, the cached token is returned.
//!
//! ```text
//!  arrival ───────────── refresh_at ─────── expires_at
//!     cached, no request  │ next caller fetches │ expired: must fetch
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use tokio::time::Instant;

use crate::error::into_azure;

/// Default refresh window: tokens are renewed five minutes before they expire.
pub const DEFAULT_REFRESH_BEFORE: Duration = Duration::from_secs(300);

#[derive(Clone)]
struct Entry {
    token: AccessToken,
    refresh_at: Instant,
    expires_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

/// Tokens per scope set.
pub struct TokenCache {
    refresh_before: Duration,
    slots: Mutex<HashMap<String, Slot>>,
}

impl TokenCache {
    /// A cache renewing tokens `refresh_before` ahead of expiry.
    pub fn new(refresh_before: Duration) -> Self {
        Self {
            refresh_before,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, key: &str) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.entry(key.to_owned()).or_default().clone()
    }

    /// The cached token for `scopes`, or the result of `fetch` when there is none or it is
    /// within its refresh window.
    ///
    /// # Errors
    ///
    /// `fetch`'s error, unless a still-valid cached token can be returned instead.
    pub async fn get_or_fetch<F, Fut>(
        &self,
        scopes: &[&str],
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = azure_core::Result<AccessToken>>,
    {
        let slot = self.slot(&scopes.join(" "));
        let mut entry = slot.lock().await;
        let now = Instant::now();
        if let Some(e) = entry.as_ref()
            && now < e.refresh_at
        {
            return Ok(e.token.clone());
        }
        match fetch().await {
            Ok(token) => {
                let now = Instant::now();
                let lifetime = remaining(&token);
                let window = self.refresh_before.min(lifetime / 2);
                *entry = Some(Entry {
                    token: token.clone(),
                    refresh_at: now + (lifetime - window),
                    expires_at: now + lifetime,
                });
                Ok(token)
            }
            Err(err) => match entry.as_ref() {
                Some(e) if Instant::now() < e.expires_at => {
                    tracing::warn!(
                        error = &err as &dyn std::error::Error,
                        "token refresh failed; using the cached token until it expires"
                    );
                    Ok(e.token.clone())
                }
                _ => Err(err),
            },
        }
    }

    /// [`TokenCache::get_or_fetch`] for this crate's own fetchers: their [`crate::Error`]
    /// becomes the `azure_core::Error` a `TokenCredential` returns.
    pub(crate) async fn get_or_try<F, Fut>(
        &self,
        scopes: &[&str],
        fetch: F,
    ) -> azure_core::Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = crate::Result<AccessToken>>,
    {
        self.get_or_fetch(scopes, || async { fetch().await.map_err(into_azure) })
            .await
    }

    /// Forgets every token.
    pub fn clear(&self) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new(DEFAULT_REFRESH_BEFORE)
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("refresh_before", &self.refresh_before)
            .finish_non_exhaustive()
    }
}

/// Wall-clock time left on `token`, read once on arrival.
fn remaining(token: &AccessToken) -> Duration {
    let secs = (token.expires_on - OffsetDateTime::now_utc()).whole_milliseconds();
    Duration::from_millis(u64::try_from(secs.max(0)).unwrap_or(u64::MAX))
}

/// Any credential with a [`TokenCache`] in front (for credentials this crate did not build).
#[derive(Debug)]
pub struct CachedCredential {
    inner: Arc<dyn TokenCredential>,
    cache: TokenCache,
}

impl CachedCredential {
    /// Caches `inner`'s tokens, renewing them `refresh_before` ahead of expiry.
    pub fn new(inner: Arc<dyn TokenCredential>, refresh_before: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner,
            cache: TokenCache::new(refresh_before),
        })
    }
}

#[async_trait::async_trait]
impl TokenCredential for CachedCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache
            .get_or_fetch(scopes, || self.inner.get_token(scopes, options))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug)]
    struct Counting {
        calls: AtomicUsize,
        lifetime: Duration,
        fail_after: usize,
    }

    #[async_trait::async_trait]
    impl TokenCredential for Counting {
        async fn get_token(
            &self,
            scopes: &[&str],
            _: Option<TokenRequestOptions<'_>>,
        ) -> azure_core::Result<AccessToken> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if n > self.fail_after {
                return Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Credential,
                    "down",
                ));
            }
            Ok(AccessToken::new(
                format!("t{n}-{}", scopes.join(",")),
                OffsetDateTime::now_utc()
                    + azure_core::time::Duration::seconds(self.lifetime.as_secs() as i64),
            ))
        }
    }

    fn counting(lifetime: u64, fail_after: usize) -> Arc<Counting> {
        Arc::new(Counting {
            calls: AtomicUsize::new(0),
            lifetime: Duration::from_secs(lifetime),
            fail_after,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_cached_per_scope_and_refreshed_inside_the_window() {
        let inner = counting(3600, usize::MAX);
        let cred = CachedCredential::new(inner.clone(), DEFAULT_REFRESH_BEFORE);
        let a = cred.get_token(&["a"], None).await.expect("a");
        cred.get_token(&["a"], None).await.expect("a again");
        cred.get_token(&["b"], None).await.expect("b");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2, "one fetch per scope");
        tokio::time::advance(Duration::from_secs(3600 - 301)).await;
        let again = cred.get_token(&["a"], None).await.expect("a");
        assert_eq!(again.token.secret(), a.token.secret(), "outside the window");
        tokio::time::advance(Duration::from_secs(2)).await;
        let fresh = cred.get_token(&["a"], None).await.expect("a refreshed");
        assert_ne!(fresh.token.secret(), a.token.secret());
        assert_eq!(inner.calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn short_lived_tokens_refresh_after_half_their_lifetime() {
        let inner = counting(240, usize::MAX);
        let cred = CachedCredential::new(inner.clone(), DEFAULT_REFRESH_BEFORE);
        cred.get_token(&["a"], None).await.expect("a");
        tokio::time::advance(Duration::from_secs(119)).await;
        cred.get_token(&["a"], None).await.expect("a");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        cred.get_token(&["a"], None).await.expect("a");
        assert_eq!(inner.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_refresh_returns_the_still_valid_token_and_fails_after_expiry() {
        let inner = counting(600, 1);
        let cred = CachedCredential::new(inner.clone(), DEFAULT_REFRESH_BEFORE);
        let first = cred.get_token(&["a"], None).await.expect("a");
        tokio::time::advance(Duration::from_secs(400)).await;
        let stale = cred.get_token(&["a"], None).await.expect("cached");
        assert_eq!(stale.token.secret(), first.token.secret());
        tokio::time::advance(Duration::from_secs(201)).await;
        cred.get_token(&["a"], None).await.expect_err("expired");
    }
}
