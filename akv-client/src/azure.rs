//! [`KeyVault`] on the official Azure SDK clients.
//!
//! One [`AzureKeyVaults`] per process hands out one [`AzureVault`] per (vault, identity); each
//! holds one SDK client per object kind, built on first use and reused, because every new
//! client pays a challenge round trip (azure-wire-facts.md). Retries default to none: the
//! read plane ([`crate::cache`]) retries under its per-vault budget, honouring `Retry-After`,
//! so a TLS or DNS failure is reported at once instead of after the SDK's 80 s of retries.
//!
//! **Where akv-auth plugs in:** [`AzureOptions::credentials`] takes the
//! `Arc<dyn TokenCredential>` per identity that `akv-auth` builds, and
//! [`AzureOptions::http`] the reqwest client from its HTTP builder (today built by
//! [`crate::http::HttpOptions::build`]).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_security_keyvault_certificates::models::CertificateClientGetCertificateOptions;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::KeyClientGetKeyOptions;
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::models::SecretClientGetSecretOptions;
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt as _;

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
    /// Credential per identity (from `akv-auth`).
    pub credentials: HashMap<IdentityRef, Arc<dyn TokenCredential>>,
    /// HTTP client used as the SDK transport (resolve override and extra roots applied).
    pub http: reqwest::Client,
    /// SDK retry options (default none: [`crate::cache::ReadPlane`] retries).
    pub retry: RetryOptions,
}

impl AzureOptions {
    /// Options with one identity, [`IdentityRef::default_identity`].
    pub fn single(credential: Arc<dyn TokenCredential>, http: reqwest::Client) -> Self {
        Self {
            credentials: HashMap::from([(IdentityRef::default_identity(), credential)]),
            http,
            retry: RetryOptions::none(),
        }
    }
}

impl fmt::Debug for AzureOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureOptions")
            .field("identities", &self.credentials.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// The [`KeyVaultProvider`] on the Azure SDK.
#[derive(Debug)]
pub struct AzureKeyVaults {
    opts: AzureOptions,
    vaults: Mutex<HashMap<(VaultUrl, IdentityRef), Arc<AzureVault>>>,
}

impl AzureKeyVaults {
    /// A provider.
    pub fn new(opts: AzureOptions) -> Arc<Self> {
        Arc::new(Self {
            opts,
            vaults: Mutex::new(HashMap::new()),
        })
    }
}

impl KeyVaultProvider for AzureKeyVaults {
    fn vault(&self, url: &VaultUrl, identity: &IdentityRef) -> Result<Arc<dyn KeyVault>> {
        let credential = self
            .opts
            .credentials
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
                    http: self.opts.http.clone(),
                    retry: self.opts.retry.clone(),
                    secrets: OnceLock::new(),
                    certificates: OnceLock::new(),
                    keys: OnceLock::new(),
                })
            })
            .clone();
        Ok(vault)
    }
}

/// One vault as one identity: three lazily built SDK clients.
pub struct AzureVault {
    url: VaultUrl,
    credential: Arc<dyn TokenCredential>,
    http: reqwest::Client,
    retry: RetryOptions,
    secrets: OnceLock<SecretClient>,
    certificates: OnceLock<CertificateClient>,
    keys: OnceLock<KeyClient>,
}

impl fmt::Debug for AzureVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureVault")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn client_or_init<'a, T>(
    cell: &'a OnceLock<T>,
    url: &VaultUrl,
    kind: &'static str,
    make: impl FnOnce() -> azure_core::Result<T>,
) -> Result<&'a T> {
    if let Some(c) = cell.get() {
        return Ok(c);
    }
    let made = make().map_err(|e| Error::BuildClient {
        vault: url.to_string(),
        kind,
        source: Box::new(e),
    })?;
    // A racing thread may have stored one first; either is fine.
    Ok(cell.get_or_init(|| made))
}

impl AzureVault {
    fn client_options(&self) -> ClientOptions {
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.http.clone()))),
            retry: self.retry.clone(),
            ..Default::default()
        }
    }

    fn secrets(&self) -> Result<&SecretClient> {
        client_or_init(&self.secrets, &self.url, "secret", || {
            let options = SecretClientOptions {
                client_options: self.client_options(),
                ..Default::default()
            };
            SecretClient::new(self.url.as_str(), self.credential.clone(), Some(options))
        })
    }

    fn certificates(&self) -> Result<&CertificateClient> {
        client_or_init(&self.certificates, &self.url, "certificate", || {
            let options = CertificateClientOptions {
                client_options: self.client_options(),
                ..Default::default()
            };
            CertificateClient::new(self.url.as_str(), self.credential.clone(), Some(options))
        })
    }

    fn keys(&self) -> Result<&KeyClient> {
        client_or_init(&self.keys, &self.url, "key", || {
            let options = KeyClientOptions {
                client_options: self.client_options(),
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
                let opts = SecretClientGetSecretOptions {
                    secret_version: obj.version.clone(),
                    ..Default::default()
                };
                let secret = self
                    .secrets()?
                    .get_secret(&obj.name, Some(opts))
                    .await
                    .and_then(|r| r.into_model())
                    .map_err(|e| self.get_error(obj, e))?;
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
                let opts = CertificateClientGetCertificateOptions {
                    certificate_version: obj.version.clone(),
                    ..Default::default()
                };
                let cert = self
                    .certificates()?
                    .get_certificate(&obj.name, Some(opts))
                    .await
                    .and_then(|r| r.into_model())
                    .map_err(|e| self.get_error(obj, e))?;
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
                let opts = KeyClientGetKeyOptions {
                    key_version: obj.version.clone(),
                    ..Default::default()
                };
                let key = self
                    .keys()?
                    .get_key(&obj.name, Some(opts))
                    .await
                    .and_then(|r| r.into_model())
                    .map_err(|e| self.get_error(obj, e))?;
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
        match kind {
            ObjectKind::Secret => {
                let items: Vec<_> = self
                    .secrets()?
                    .list_secret_properties(None)
                    .map_err(|e| self.list_error(kind, e))?
                    .try_collect()
                    .await
                    .map_err(|e| self.list_error(kind, e))?;
                Ok(items
                    .into_iter()
                    .map(|p| ObjectMeta {
                        kind,
                        name: name_of(p.id.as_deref()),
                        version: None,
                        enabled: p.attributes.as_ref().and_then(|a| a.enabled),
                        updated: to_system_time(p.attributes.and_then(|a| a.updated)),
                        content_type: p.content_type,
                    })
                    .collect())
            }
            ObjectKind::Certificate => {
                let items: Vec<_> = self
                    .certificates()?
                    .list_certificate_properties(None)
                    .map_err(|e| self.list_error(kind, e))?
                    .try_collect()
                    .await
                    .map_err(|e| self.list_error(kind, e))?;
                Ok(items
                    .into_iter()
                    .map(|p| ObjectMeta {
                        kind,
                        name: name_of(p.id.as_deref()),
                        version: None,
                        enabled: p.attributes.as_ref().and_then(|a| a.enabled),
                        updated: to_system_time(p.attributes.and_then(|a| a.updated)),
                        content_type: None,
                    })
                    .collect())
            }
            ObjectKind::Key => {
                let items: Vec<_> = self
                    .keys()?
                    .list_key_properties(None)
                    .map_err(|e| self.list_error(kind, e))?
                    .try_collect()
                    .await
                    .map_err(|e| self.list_error(kind, e))?;
                Ok(items
                    .into_iter()
                    .map(|p| ObjectMeta {
                        kind,
                        name: name_of(p.kid.as_deref()),
                        version: None,
                        enabled: p.attributes.as_ref().and_then(|a| a.enabled),
                        updated: to_system_time(p.attributes.and_then(|a| a.updated)),
                        content_type: None,
                    })
                    .collect())
            }
        }
    }
}
