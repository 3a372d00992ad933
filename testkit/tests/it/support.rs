//! Shared setup: a Key Vault fake with one vault, clients wired to it through the resolve
//! override and the testkit CA, and a credential that plays Entra ID.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions, Transport};
use azure_core::time::Duration as AzDuration;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use testkit::clock::Clock;
use testkit::cloud::Cloud;
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{KeyVaultFake, KeyVaultOptions, Permissions, VaultSpec};

pub const VAULT: &str = "accvault";
pub const API_VERSION: &str = "2025-07-01";
pub const ACCVAULT_URL: &str = "https://accvault.vault.azure.net/";

/// A started fake with vault `accvault` readable (get/list on everything, set on secrets) by
/// principal `app`.
pub struct World {
    pub kv: KeyVaultFake,
    pub app: Principal,
}

impl World {
    pub async fn start() -> World {
        Self::start_with_clock(Clock::system()).await
    }

    pub async fn start_with_clock(clock: Clock) -> World {
        testkit::install_crypto_provider();
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock),
            ..Default::default()
        })
        .await
        .expect("start the Key Vault fake");
        let app = Principal::new("app");
        kv.create_vault(VaultSpec::new(VAULT).grant(&app, Permissions::all()))
            .expect("create vault");
        World { kv, app }
    }

    /// A reqwest client that reaches every vault of the fake by its real name.
    pub fn http(&self) -> reqwest::Client {
        http_client(&self.kv)
    }

    /// Azure SDK client options using [`World::http`] as transport.
    pub fn client_options(&self, retry: RetryOptions) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http()))),
            retry,
            ..Default::default()
        }
    }

    /// A credential for `app` (see [`EntraStandIn`]).
    pub fn credential(&self) -> Arc<EntraStandIn> {
        EntraStandIn::new(self.kv.issuer().clone(), self.app.clone())
    }

    /// A `SecretClient` for `vault_url` authenticating with `cred`.
    pub fn secrets_as(
        &self,
        vault_url: &str,
        cred: Arc<dyn TokenCredential>,
        retry: RetryOptions,
    ) -> SecretClient {
        let options = SecretClientOptions {
            client_options: self.client_options(retry),
            ..Default::default()
        };
        SecretClient::new(vault_url, cred, Some(options)).expect("secret client")
    }

    /// A `SecretClient` for `accvault` as `app`.
    pub fn secrets(&self, retry: RetryOptions) -> SecretClient {
        self.secrets_as(ACCVAULT_URL, self.credential(), retry)
    }

    /// A `CertificateClient` for `accvault` as `app`, without retries.
    pub fn certificates(&self) -> CertificateClient {
        let options = CertificateClientOptions {
            client_options: self.client_options(no_retry()),
            ..Default::default()
        };
        CertificateClient::new(ACCVAULT_URL, self.credential(), Some(options))
            .expect("certificate client")
    }

    /// A `KeyClient` for `accvault` as `app`, without retries.
    pub fn keys(&self) -> KeyClient {
        let options = KeyClientOptions {
            client_options: self.client_options(no_retry()),
            ..Default::default()
        };
        KeyClient::new(ACCVAULT_URL, self.credential(), Some(options)).expect("key client")
    }

    pub fn url(&self, path_and_query: &str) -> String {
        format!("https://{VAULT}.vault.azure.net{path_and_query}")
    }
}

pub fn http_client(kv: &KeyVaultFake) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(kv.ca_pem().as_bytes()).expect("CA PEM")]);
    for (host, addr) in kv.resolve_overrides() {
        b = b.resolve(&host, addr);
    }
    b.build().expect("reqwest client")
}

/// No retries: errors surface at once.
pub fn no_retry() -> RetryOptions {
    RetryOptions::none()
}

/// A few fast retries (the SDK still honours `Retry-After` on 429 and 503).
pub fn quick_retries() -> RetryOptions {
    RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: AzDuration::milliseconds(5),
        max_retries: 3,
        max_total_elapsed: AzDuration::seconds(30),
        max_delay: AzDuration::milliseconds(50),
    })
}

/// Plays Entra ID for the SDK: maps the requested scope to an audience and mints a token for
/// its principal, as Entra would. `audience_override` makes it misbehave (a token for another
/// cloud).
#[derive(Debug)]
pub struct EntraStandIn {
    issuer: Arc<TokenIssuer>,
    principal: Principal,
    pub audience_override: Option<String>,
    pub lifetime: Duration,
    calls: AtomicUsize,
    pub scopes: std::sync::Mutex<Vec<String>>,
}

impl EntraStandIn {
    pub fn new(issuer: Arc<TokenIssuer>, principal: Principal) -> Arc<Self> {
        Arc::new(Self {
            issuer,
            principal,
            audience_override: None,
            lifetime: Duration::from_secs(3600),
            calls: AtomicUsize::new(0),
            scopes: Default::default(),
        })
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenCredential for EntraStandIn {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let scope = scopes.first().copied().unwrap_or_default();
        self.scopes.lock().expect("scopes").push(scope.to_owned());
        let audience = self
            .audience_override
            .clone()
            .unwrap_or_else(|| scope.trim_end_matches("/.default").to_owned());
        let cloud = Cloud::ALL
            .into_iter()
            .find(|c| c.vault_audience == audience)
            .unwrap_or(Cloud::PUBLIC);
        let claims = self
            .issuer
            .claims_for(&self.principal, &cloud, &audience, self.lifetime);
        let expires = azure_core::time::OffsetDateTime::from_unix_timestamp(claims.exp as i64)
            .expect("expiry in range");
        Ok(AccessToken::new(
            self.issuer.mint(&claims).as_str().to_owned(),
            expires,
        ))
    }
}

/// Asserts that `actual` has every field of `example` with the same JSON type, recursively
/// (arrays: each element of `actual` against the example's first element). Used to hold the
/// fake's answers to Microsoft's documented REST examples.
pub fn assert_conforms(example: &serde_json::Value, actual: &serde_json::Value, path: &str) {
    use serde_json::Value::*;
    match (example, actual) {
        (Object(e), Object(a)) => {
            for (k, ev) in e {
                let av = a
                    .get(k)
                    .unwrap_or_else(|| panic!("{path}.{k} is missing in {actual}"));
                assert_conforms(ev, av, &format!("{path}.{k}"));
            }
        }
        (Array(e), Array(a)) => {
            if let Some(first) = e.first() {
                assert!(!a.is_empty(), "{path} is empty");
                for (i, av) in a.iter().enumerate() {
                    assert_conforms(first, av, &format!("{path}[{i}]"));
                }
            }
        }
        (String(_), String(_)) | (Bool(_), Bool(_)) | (Number(_), Number(_)) | (Null, Null) => {}
        // A documented `nextLink: null` may be a string when more pages exist.
        (Null, String(_)) => {}
        _ => panic!("{path}: expected the type of {example}, got {actual}"),
    }
}
