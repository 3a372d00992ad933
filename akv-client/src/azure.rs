//! [`KeyVault`] on the official Azure SDK clients.
//!
//! One [`AzureKeyVaults`] per process hands out one [`AzureVault`] per (vault, identity); each
//! holds one SDK client per object kind, built on first use and reused, because every new
//! client pays a challenge round trip (azure-wire-facts.md).
//!
//! ```text
//!  get/list ──▶ SDK client of the kind (built once) ──▶ first request? ── yes ──▶ runs alone;
//!                                                        │                      concurrent first
//!                                                        no                     requests wait
//!                                                        ▼
//!                                           requests run concurrently (challenge cached)
//! ```
//!
//! * **Credentials** come from `akv-auth` (`Credentials` build one
//!   `Arc<dyn TokenCredential>` per identity) through [`AzureOptions::credentials`].
//! * **HTTP** is `akv-auth`'s one builder, [`akv_auth::HttpOptions`]: the resolve override
//!   (`AKV2K8S_RESOLVE`), extra trusted roots, timeouts, and TLS verification failures reported
//!   at once ([`Error::kind`] `"tls"`) instead of being retried.
//! * **Retries** in the SDK default to none ([`AzureOptions::new`]): the read plane
//!   ([`crate::cache`]) retries under its per-vault budget, honouring `Retry-After`.
//! * **Challenge priming:** the first request through a fresh SDK client goes alone and
//!   concurrent first requests wait for it, so the client pays Key Vault's 401 challenge once
//!   instead of once per concurrent caller. A first request that gets no answer from Key Vault
//!   (connection or TLS failure) does not prime: the next caller tries alone again.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use akv_auth::{HttpOptions, RetryConfig};
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::KeyClientGetKeyOptions;
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt as _;
use tokio::sync::OnceCell;

use crate::error::{Error, Result};
use crate::key::JsonWebKey;
use crate::object::{
    CertificateObject, IdentityRef, KeyObject, ObjectKind, ObjectMeta, ObjectRef, SecretObject,
    VaultObject, VaultUrl, version_from_id,
};
use crate::secret::SecretValue;
use crate::vault::{KeyVault, KeyVaultProvider};

/// How to reach Key Vault.
#[derive(Clone)]
pub struct AzureOptions {
    /// Credential per identity (from `akv-auth`'s `Credentials`).
    pub credentials: HashMap<IdentityRef, Arc<dyn TokenCredential>>,
    /// The SDK transport, built by `akv-auth`: resolve override, extra roots, timeouts,
    /// immediate TLS errors, and the SDK's own retries (`http.retry`).
    pub http: HttpOptions,
}

impl AzureOptions {
    /// Options for these identities. The SDK's retries are switched off
    /// (`http.retry = RetryConfig::none()`), because [`crate::cache::ReadPlane`] retries
    /// under the vault's budget; assign `http.retry` afterwards to have both.
    pub fn new(
        credentials: HashMap<IdentityRef, Arc<dyn TokenCredential>>,
        http: HttpOptions,
    ) -> Self {
        Self {
            credentials,
            http: HttpOptions {
                retry: RetryConfig::none(),
                ..http
            },
        }
    }

    /// Options with one identity, [`IdentityRef::default_identity`] (see [`AzureOptions::new`]).
    pub fn single(credential: Arc<dyn TokenCredential>, http: HttpOptions) -> Self {
        Self::new(
            HashMap::from([(IdentityRef::default_identity(), credential)]),
            http,
        )
    }
}

impl fmt::Debug for AzureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureOptions")
            .field("identities", &self.credentials.keys().collect::<Vec<_>>())
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// The [`KeyVaultProvider`] on the Azure SDK.
#[derive(Debug)]
pub struct AzureKeyVaults {
    credentials: HashMap<IdentityRef, Arc<dyn TokenCredential>>,
    client_options: ClientOptions,
    vaults: Mutex<HashMap<(VaultUrl, IdentityRef), Arc<AzureVault>>>,
}

impl AzureKeyVaults {
    /// A provider. Builds the one HTTP client every vault and kind shares.
    ///
    /// # Errors
    ///
    /// [`Error::BuildTransport`] when `akv-auth` cannot build the HTTP client (an extra root
    /// that is not PEM, …).
    pub fn new(opts: AzureOptions) -> Result<Arc<Self>> {
        let AzureOptions { credentials, http } = opts;
        let client_options = http
            .client_options()
            .map_err(|source| Error::BuildTransport { source })?;
        Ok(Arc::new(Self {
            credentials,
            client_options,
            vaults: Mutex::new(HashMap::new()),
        }))
    }
}

impl KeyVaultProvider for AzureKeyVaults {
    fn vault(&self, url: &VaultUrl, identity: &IdentityRef) -> Result<Arc<dyn KeyVault>> {
        let credential =
            self.credentials
                .get(identity)
                .cloned()
                .ok_or_else(|| Error::InvalidConfig {
                    field: "identity",
                    reason: format!("no credential configured for identity '{}'", identity.0),
                })?;
        let mut vaults = self
            .vaults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let vault = vaults
            .entry((url.clone(), identity.clone()))
            .or_insert_with(|| {
                Arc::new(AzureVault {
                    url: url.clone(),
                    credential,
                    client_options: self.client_options.clone(),
                    secrets: SdkClient::default(),
                    certificates: SdkClient::default(),
                    keys: SdkClient::default(),
                })
            })
            .clone();
        Ok(vault)
    }
}

/// One SDK client, built on first use, and the gate its first request passes alone.
struct SdkClient<T> {
    client: OnceLock<T>,
    primed: OnceCell<()>,
}

impl<T> Default for SdkClient<T> {
    fn default() -> Self {
        Self {
            client: OnceLock::new(),
            primed: OnceCell::new(),
        }
    }
}

impl<T> SdkClient<T> {
    fn get_or_init(
        &self,
        url: &VaultUrl,
        kind: &'static str,
        make: impl FnOnce() -> azure_core::Result<T>,
    ) -> Result<&T> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let made = make().map_err(|e| Error::BuildClient {
            vault: url.to_string(),
            kind,
            source: Box::new(e),
        })?;
        // A racing thread may have stored one first; either is fine.
        Ok(self.client.get_or_init(|| made))
    }

    /// Runs `call`; while the client has not had an answer from Key Vault yet, one call at a
    /// time runs and the others wait, so only the first pays the challenge round trip.
    ///
    /// Cancellation: dropping the call that runs alone lets the next waiter run alone.
    async fn primed<R, F>(&self, mut call: impl FnMut() -> F) -> Result<R>
    where
        F: Future<Output = Result<R>>,
    {
        if self.primed.initialized() {
            return call().await;
        }
        let mut first = None;
        let (slot, run) = (&mut first, &mut call);
        // Err(()) leaves the gate closed: the next waiter runs alone.
        let _ = self
            .primed
            .get_or_try_init(move || async move {
                let result = run().await;
                let answered = match &result {
                    Ok(_) => true,
                    Err(e) => e.status().is_some(),
                };
                *slot = Some(result);
                if answered { Ok(()) } else { Err(()) }
            })
            .await;
        match first {
            Some(result) => result,
            None => call().await,
        }
    }
}

/// One vault as one identity: three lazily built SDK clients.
pub struct AzureVault {
    url: VaultUrl,
    credential: Arc<dyn TokenCredential>,
    client_options: ClientOptions,
    secrets: SdkClient<SecretClient>,
    certificates: SdkClient<CertificateClient>,
    keys: SdkClient<KeyClient>,
}

impl fmt::Debug for AzureVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureVault")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl AzureVault {
    fn secrets(&self) -> Result<&SecretClient> {
        self.secrets.get_or_init(&self.url, "secret", || {
            let options = SecretClientOptions {
                client_options: self.client_options.clone(),
                ..Default::default()
            };
            SecretClient::new(self.url.as_str(), self.credential.clone(), Some(options))
        })
    }

    fn certificates(&self) -> Result<&CertificateClient> {
        self.certificates.get_or_init(&self.url, "certificate", || {
            let options = CertificateClientOptions {
                client_options: self.client_options.clone(),
                ..Default::default()
            };
            CertificateClient::new(self.url.as_str(), self.credential.clone(), Some(options))
        })
    }

    fn keys(&self) -> Result<&KeyClient> {
        self.keys.get_or_init(&self.url, "key", || {
            let options = KeyClientOptions {
                client_options: self.client_options.clone(),
                ..Default::default()
            };
            KeyClient::new(self.url.as_str(), self.credential.clone(), Some(options))
        })
    }

    fn get_error(&self, obj: &ObjectRef, source: azure_core::Error) -> Error {
        let (status, code, retry_after) = http_details(&source);
        Error::GetObject {
            vault: self.url.to_string(),
            kind: obj.kind.as_str(),
            object: obj.name.clone(),
            status,
            code,
            retry_after,
            source: Box::new(source),
        }
    }

    /// Every item of a paged listing, behind the client's first-request gate.
    async fn list_all<C, T, S>(
        &self,
        sdk: &SdkClient<C>,
        kind: ObjectKind,
        pager: impl Fn() -> azure_core::Result<S>,
    ) -> Result<Vec<T>>
    where
        S: futures::TryStream<Ok = T, Error = azure_core::Error>,
    {
        sdk.primed(|| async {
            pager()
                .map_err(|e| self.list_error(kind, e))?
                .try_collect()
                .await
                .map_err(|e| self.list_error(kind, e))
        })
        .await
    }

    fn list_error(&self, kind: ObjectKind, source: azure_core::Error) -> Error {
        let (status, _, _) = http_details(&source);
        Error::ListObjects {
            vault: self.url.to_string(),
            kind: kind.as_str(),
            status,
            source: Box::new(source),
        }
    }
}

/// Status, error code and `Retry-After` of an SDK error.
fn http_details(
    e: &azure_core::Error,
) -> (Option<u16>, Option<String>, Option<std::time::Duration>) {
    match e.kind() {
        azure_core::error::ErrorKind::HttpResponse {
            status,
            error_code,
            raw_response,
        } => {
            let retry_after = raw_response.as_ref().and_then(|r| retry_after(r.headers()));
            (Some(u16::from(*status)), error_code.clone(), retry_after)
        }
        _ => (None, None, None),
    }
}

/// `x-ms-retry-after-ms`, `retry-after-ms` (milliseconds) or `Retry-After` (seconds).
fn retry_after(headers: &azure_core::http::headers::Headers) -> Option<std::time::Duration> {
    use azure_core::http::headers::HeaderName;
    for (name, millis) in [
        ("x-ms-retry-after-ms", true),
        ("retry-after-ms", true),
        ("retry-after", false),
    ] {
        let value = headers.get_optional_str(&HeaderName::from_static(name));
        if let Some(n) = value.and_then(|v| v.trim().parse::<u64>().ok()) {
            return Some(if millis {
                std::time::Duration::from_millis(n)
            } else {
                std::time::Duration::from_secs(n)
            });
        }
    }
    None
}

fn to_system_time(t: Option<azure_core::time::OffsetDateTime>) -> Option<std::time::SystemTime> {
    t.map(std::time::SystemTime::from)
}

#[async_trait::async_trait]
impl KeyVault for AzureVault {
    async fn get(&self, obj: &ObjectRef) -> Result<VaultObject> {
        let missing = |field: &'static str| Error::MissingField {
            kind: obj.kind.as_str(),
            object: obj.name.clone(),
            field,
        };
        match obj.kind {
            ObjectKind::Secret => {
                let client = self.secrets()?;
                let secret = self
                    .secrets
                    .primed(|| async {
                        let opts = SecretClientGetSecretOptions {
                            secret_version: obj.version.clone(),
                            ..Default::default()
                        };
                        client
                            .get_secret(&obj.name, Some(opts))
                            .await
                            .and_then(|r| r.into_model())
                            .map_err(|e| self.get_error(obj, e))
                    })
                    .await?;
                let value = secret.value.ok_or_else(|| missing("value"))?;
                Ok(VaultObject::Secret(SecretObject {
                    name: obj.name.clone(),
                    version: version_from_id(secret.id.as_deref()),
                    content_type: secret.content_type,
                    value: SecretValue::from(value),
                    expires: to_system_time(secret.attributes.and_then(|a| a.expires)),
                }))
            }
            ObjectKind::Certificate => {
                let client = self.certificates()?;
                let cert = self
                    .certificates
                    .primed(|| async {
                        let opts = CertificateClientGetCertificateOptions {
                            certificate_version: obj.version.clone(),
                            ..Default::default()
                        };
                        client
                            .get_certificate(&obj.name, Some(opts))
                            .await
                            .and_then(|r| r.into_model())
                            .map_err(|e| self.get_error(obj, e))
                    })
                    .await?;
                let policy = cert.policy;
                Ok(VaultObject::Certificate(CertificateObject {
                    name: obj.name.clone(),
                    version: version_from_id(cert.id.as_deref()),
                    cer: cert.cer.ok_or_else(|| missing("cer"))?,
                    exportable: policy
                        .as_ref()
                        .and_then(|p| p.key_properties.as_ref())
                        .and_then(|k| k.exportable),
                    secret_content_type: policy
                        .and_then(|p| p.secret_properties)
                        .and_then(|s| s.content_type),
                }))
            }
            ObjectKind::Key => {
                let client = self.keys()?;
                let key = self
                    .keys
                    .primed(|| async {
                        let opts = KeyClientGetKeyOptions {
                            key_version: obj.version.clone(),
                            ..Default::default()
                        };
                        client
                            .get_key(&obj.name, Some(opts))
                            .await
                            .and_then(|r| r.into_model())
                            .map_err(|e| self.get_error(obj, e))
                    })
                    .await?;
                let jwk = key.key.ok_or_else(|| missing("key"))?;
                Ok(VaultObject::Key(KeyObject {
                    name: obj.name.clone(),
                    version: version_from_id(jwk.kid.as_deref()),
                    jwk: JsonWebKey {
                        kty: jwk.kty.map(|k| k.to_string()).unwrap_or_default(),
                        n: jwk.n,
                        e: jwk.e,
                        crv: jwk.crv.map(|c| c.to_string()),
                        x: jwk.x,
                        y: jwk.y,
                    },
                }))
            }
        }
    }

    async fn list(&self, vault: &VaultUrl, kind: ObjectKind) -> Result<Vec<ObjectMeta>> {
        if vault != &self.url {
            return Err(Error::InvalidConfig {
                field: "vault",
                reason: format!("this reader serves {}, not {vault}", self.url),
            });
        }
        let name_of = |id: Option<&str>| {
            id.and_then(|id| id.trim_end_matches('/').rsplit('/').next())
                .unwrap_or_default()
                .to_owned()
        };
        let meta = |id: Option<&str>, enabled, updated, content_type| ObjectMeta {
            kind,
            name: name_of(id),
            version: None,
            enabled,
            updated: to_system_time(updated),
            content_type,
        };
        Ok(match kind {
            ObjectKind::Secret => {
                let client = self.secrets()?;
                self.list_all(&self.secrets, kind, || client.list_secret_properties(None))
                    .await?
                    .into_iter()
                    .map(|p| {
                        let a = p.attributes.unwrap_or_default();
                        meta(p.id.as_deref(), a.enabled, a.updated, p.content_type)
                    })
                    .collect()
            }
            ObjectKind::Certificate => {
                let client = self.certificates()?;
                self.list_all(&self.certificates, kind, || {
                    client.list_certificate_properties(None)
                })
                .await?
                .into_iter()
                .map(|p| {
                    let a = p.attributes.unwrap_or_default();
                    meta(p.id.as_deref(), a.enabled, a.updated, None)
                })
                .collect()
            }
            ObjectKind::Key => {
                let client = self.keys()?;
                self.list_all(&self.keys, kind, || client.list_key_properties(None))
                    .await?
                    .into_iter()
                    .map(|p| {
                        let a = p.attributes.unwrap_or_default();
                        meta(p.kid.as_deref(), a.enabled, a.updated, None)
                    })
                    .collect()
            }
        })
    }
}
