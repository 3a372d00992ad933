//! Managed identity through IMDS, aware of aad-pod-identity's NMI.
//!
//! `GET {endpoint}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=…[&client_id=…]`
//! with `Metadata: true`. The endpoint is configurable (default `http://169.254.169.254`;
//! `AZURE_POD_IDENTITY_AUTHORITY_HOST` as the Go SDK reads it).
//!
//! When aad-pod-identity is installed, NMI intercepts this address and answers 404 (403 in
//! NMI ≤ 1.6, 429/5xx under load) while MIC assigns the identity: 10–20 s on VMs, 40–60 s on
//! VMSS. Those answers and connection failures are retried with capped exponential backoff and
//! jitter (honouring `Retry-After`) until a budget (default [`DEFAULT_RETRY_BUDGET`]) measured
//! with `tokio::time` is spent; the final error names the fix (`addAzurePodIdentityException=true`,
//! or workload identity). A 400 (identity not assigned, bad resource) fails at once.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::time::OffsetDateTime;
use tokio::time::Instant;

use crate::cache::TokenCache;
use crate::credential::CredentialOptions;
use crate::env::{AZURE_POD_IDENTITY_AUTHORITY_HOST, Env};
use crate::error::{Error, Result, chain_text};
use crate::http::HttpOptions;
use crate::token_endpoint::{Answer, ErrorBody, Failure, TokenBody, exchange, in_seconds};

/// Provider name used in errors.
pub const PROVIDER: &str = "managed identity credential";
/// The IMDS address.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// IMDS token path.
pub const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
/// IMDS API version (as akv2k8s/adal uses).
pub const API_VERSION: &str = "2018-02-01";
/// Default time to keep retrying while NMI assigns an identity (VMSS takes up to 60 s).
pub const DEFAULT_RETRY_BUDGET: Duration = Duration::from_secs(120);
/// Default first backoff delay.
pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Default cap of one backoff delay.
pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Which identity to ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserAssignedId {
    /// By client id (`client_id=`), as akv2k8s's `userAssignedIdentityID` / `AZURE_CLIENT_ID`.
    ClientId(String),
    /// By object id (`object_id=`).
    ObjectId(String),
    /// By ARM resource id (`msi_res_id=`).
    ResourceId(String),
}

/// IMDS endpoint and retry budget.
#[derive(Clone, Debug)]
pub struct ImdsOptions {
    /// Endpoint (scheme + host[:port]); `None` = `AZURE_POD_IDENTITY_AUTHORITY_HOST` or
    /// [`DEFAULT_IMDS_ENDPOINT`].
    pub endpoint: Option<String>,
    /// Total time to keep retrying transient answers.
    pub retry_budget: Duration,
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Cap of one backoff delay.
    pub max_backoff: Duration,
}

impl Default for ImdsOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            retry_budget: DEFAULT_RETRY_BUDGET,
            initial_backoff: DEFAULT_INITIAL_BACKOFF,
            max_backoff: DEFAULT_MAX_BACKOFF,
        }
    }
}

/// Inputs of [`ManagedIdentityCredential::new`].
#[derive(Clone, Debug, Default)]
pub struct ManagedIdentityOptions {
    /// `None`: system-assigned (or the only identity).
    pub user_assigned: Option<UserAssignedId>,
    /// Endpoint and retries.
    pub imds: ImdsOptions,
    /// Environment (for `AZURE_POD_IDENTITY_AUTHORITY_HOST`).
    pub env: Env,
    /// HTTP and cache (the cloud is not used: IMDS knows it).
    pub common: CredentialOptions,
}

/// Managed identity via IMDS / NMI.
pub struct ManagedIdentityCredential {
    http: reqwest::Client,
    http_options: HttpOptions,
    endpoint: String,
    user_assigned: Option<UserAssignedId>,
    imds: ImdsOptions,
    cache: TokenCache,
}

impl ManagedIdentityCredential {
    /// Builds the credential (no request is sent).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a malformed endpoint or an HTTP client that cannot be built.
    pub fn new(opts: ManagedIdentityOptions) -> Result<Arc<Self>> {
        let endpoint = opts
            .imds
            .endpoint
            .clone()
            .or_else(|| opts.env.get(AZURE_POD_IDENTITY_AUTHORITY_HOST))
            .unwrap_or_else(|| DEFAULT_IMDS_ENDPOINT.to_owned());
        // Accept the full token URL as well as scheme + host.
        let endpoint = endpoint
            .trim_end_matches('/')
            .trim_end_matches(TOKEN_PATH)
            .to_owned();
        if reqwest::Url::parse(&endpoint).is_err() {
            return Err(Error::InvalidConfig {
                field: "ImdsOptions::endpoint",
                reason: format!("`{endpoint}` is not a URL (expected e.g. http://169.254.169.254)"),
            });
        }
        if let Some(
            UserAssignedId::ClientId(id)
            | UserAssignedId::ObjectId(id)
            | UserAssignedId::ResourceId(id),
        ) = &opts.user_assigned
            && id.trim().is_empty()
        {
            return Err(Error::InvalidConfig {
                field: "user-assigned identity",
                reason: "empty id: leave it unset for the system-assigned identity".into(),
            });
        }
        Ok(Arc::new(Self {
            http: opts.common.http.reqwest_client(None)?,
            http_options: opts.common.http.clone(),
            endpoint,
            user_assigned: opts.user_assigned,
            imds: opts.imds,
            cache: TokenCache::new(opts.common.refresh_before),
        }))
    }

    /// The identity asked for.
    pub fn user_assigned(&self) -> Option<&UserAssignedId> {
        self.user_assigned.as_ref()
    }

    fn url(&self, resource: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("api-version", API_VERSION)
            .append_pair("resource", resource);
        match &self.user_assigned {
            Some(UserAssignedId::ClientId(id)) => q.append_pair("client_id", id),
            Some(UserAssignedId::ObjectId(id)) => q.append_pair("object_id", id),
            Some(UserAssignedId::ResourceId(id)) => q.append_pair("msi_res_id", id),
            None => &mut q,
        };
        format!("{}{TOKEN_PATH}?{}", self.endpoint, q.finish())
    }

    async fn fetch(&self, scopes: &[&str]) -> Result<AccessToken> {
        let [scope] = scopes else {
            return Err(Error::InvalidConfig {
                field: "scopes",
                reason: format!("IMDS takes exactly one scope, got {}", scopes.len()),
            });
        };
        let resource = scope.trim_end_matches("/.default");
        let url = self.url(resource);
        let start = Instant::now();
        let mut attempts = 0u32;
        let mut delay = self.imds.initial_backoff;
        loop {
            attempts += 1;
            let outcome = self.attempt(&url).await;
            let (last, retry_after) = match outcome {
                Attempt::Token(t) => return Ok(t),
                Attempt::Fatal(e) => return Err(e),
                Attempt::Transient {
                    summary,
                    retry_after,
                } => (summary, retry_after),
            };
            let elapsed = start.elapsed();
            let wait = retry_after
                .unwrap_or(jitter(delay))
                .max(Duration::from_millis(1));
            if elapsed + wait > self.imds.retry_budget {
                return Err(Error::ManagedIdentityUnavailable {
                    endpoint: self.endpoint.clone(),
                    attempts,
                    elapsed,
                    last,
                });
            }
            tracing::warn!(
                attempt = attempts,
                last = %last,
                wait_ms = wait.as_millis() as u64,
                "managed identity token not available yet; retrying (aad-pod-identity may be assigning the identity)"
            );
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(self.imds.max_backoff);
        }
    }

    async fn attempt(&self, url: &str) -> Attempt {
        let request = self.http.get(url).header("Metadata", "true");
        let Answer {
            status,
            retry_after,
            text,
        } = match exchange(request).await {
            Ok(a) => a,
            Err(Failure::Send(e)) => {
                return match self
                    .http_options
                    .classify("IMDS token request", &self.endpoint, e)
                {
                    e @ Error::Tls { .. } => Attempt::Fatal(e),
                    e => Attempt::Transient {
                        summary: chain_text(&e),
                        retry_after: None,
                    },
                };
            }
            Err(Failure::Read(e)) => {
                return Attempt::Transient {
                    summary: format!("reading the answer failed: {e}"),
                    retry_after: None,
                };
            }
        };
        if status == 200 {
            return match parse_imds_token(&text) {
                Some(t) => Attempt::Token(t),
                None => Attempt::Fatal(Error::Response {
                    operation: "IMDS token request",
                    host: self.endpoint.clone(),
                    reason: "the success body is not an IMDS token response".into(),
                }),
            };
        }
        let detail = error_detail(&text);
        match status {
            404 | 403 | 408 | 410 | 429 | 500..=599 => Attempt::Transient {
                summary: format!("HTTP {status}: {detail}"),
                retry_after,
            },
            _ => Attempt::Fatal(Error::ManagedIdentityRefused {
                endpoint: self.endpoint.clone(),
                status,
                detail,
            }),
        }
    }
}

enum Attempt {
    Token(AccessToken),
    Transient {
        summary: String,
        retry_after: Option<Duration>,
    },
    Fatal(Error),
}

/// ±25 % jitter.
fn jitter(d: Duration) -> Duration {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; 2];
    let r = ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map(|()| u16::from_le_bytes(b))
        .unwrap_or(u16::MAX / 2);
    let factor = 0.75 + 0.5 * f64::from(r) / f64::from(u16::MAX);
    d.mul_f64(factor)
}

/// IMDS / NMI error text: `error_description` of a JSON body, or the first line of plain text,
/// at most 300 characters (error answers never carry tokens).
fn error_detail(text: &str) -> String {
    let raw = match ErrorBody::parse(text) {
        Some(e) if !e.error_description.is_empty() => e.error_description,
        Some(e) => e.error,
        None => text.lines().next().unwrap_or_default().to_owned(),
    };
    raw.chars().take(300).collect()
}

/// An IMDS success body: `expires_in` wins over `expires_on`; one of them is required.
fn parse_imds_token(text: &str) -> Option<AccessToken> {
    let body = TokenBody::parse(text)?;
    let expires = match (body.expires_in(), body.expires_on()) {
        (Some(secs), _) => in_seconds(secs),
        (None, Some(on)) => OffsetDateTime::from_unix_timestamp(on).ok()?,
        (None, None) => return None,
    };
    Some(body.into_token(expires))
}

impl std::fmt::Debug for ManagedIdentityCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedIdentityCredential")
            .field("endpoint", &self.endpoint)
            .field("user_assigned", &self.user_assigned)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ManagedIdentityCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.cache.get_or_try(scopes, || self.fetch(scopes)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imds_bodies_with_string_numbers_parse() {
        let t = parse_imds_token(
            r#"{"access_token":"x","expires_in":"86399","expires_on":"1700000000","token_type":"Bearer"}"#,
        )
        .expect("token");
        assert!(t.expires_on > OffsetDateTime::now_utc());
        assert!(parse_imds_token(r#"{"access_token":"x"}"#).is_none());
    }

    #[test]
    fn jitter_stays_within_a_quarter() {
        for _ in 0..100 {
            let j = jitter(Duration::from_secs(4));
            assert!(
                j >= Duration::from_secs(3) && j <= Duration::from_secs(5),
                "{j:?}"
            );
        }
    }

    #[test]
    fn error_detail_takes_the_description_or_first_line() {
        assert_eq!(
            error_detail(r#"{"error":"invalid_request","error_description":"Identity not found"}"#),
            "Identity not found"
        );
        assert_eq!(
            error_detail("getting assigned identities\n"),
            "getting assigned identities"
        );
    }
}
