//! The Key Vault fake: HTTPS on `127.0.0.1`, many vaults by `Host`, the real REST shapes.
//!
//! Clients keep the production URLs (`https://myvault.vault.azure.net/`) and redirect only name
//! resolution to the fake ([`KeyVaultFake::resolve_overrides`]), trusting the testkit CA
//! ([`KeyVaultFake::ca_pem`]). The fake serves every Azure cloud's vault suffix with one
//! certificate.
//!
//! What it serves (Key Vault REST API 7.x / `2025-07-01`, see `http` for the order of checks):
//!
//! | request | answer |
//! |---|---|
//! | any request without `Authorization` | `401` + `WWW-Authenticate: Bearer authorization="https://<authority>/<tenant>", resource="<audience>"` |
//! | token for another audience / tenant, expired, forged | `401` `AKV10022` / `AKV10032` / `[TokenExpired]` / `AKV10016` |
//! | no `api-version` | `400 BadParameter` |
//! | `GET /secrets/{name}[/{version}]` | secret bundle; `404 SecretNotFound`; `403 Forbidden/SecretDisabled` |
//! | `GET /secrets`, `/secrets/{name}/versions` | pages of ≤ `maxresults` (max 25) items, absolute `nextLink` with `$skiptoken` |
//! | `PUT /secrets/{name}` | new version (seeding, needs `set`) |
//! | `GET /certificates/{name}[/{version}]`, `/certificates/{name}/policy`, lists | certificate bundle with `cer`, `x5t`, `kid`, `sid`, `policy` |
//! | `GET /keys/{name}[/{version}]`, lists | key bundle with an RSA or EC JWK (public part only) |
//! | a caller without permission | `403 Forbidden` with inner `AccessDenied` (access policies) or `ForbiddenByRbac` (RBAC) |
//!
//! Expired and not-yet-valid secrets are returned, as Key Vault does (`exp`/`nbf` are advisory
//! for reads). Deliberately not served: deletion and recovery, backup/restore, certificate
//! creation through issuers, key operations (sign, wrap, …), managed HSM, private endpoints.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use testkit::token::Principal;
//! use testkit::vault::{KeyVaultFake, Permissions, SecretSpec, VaultSpec};
//!
//! testkit::install_crypto_provider();
//! let kv = KeyVaultFake::start(Default::default()).await?;
//! let app = Principal::new("controller");
//! kv.create_vault(VaultSpec::new("accvault").grant(&app, Permissions::read_all()))?;
//! let version = kv.set_secret("accvault", "db-pass", SecretSpec::new("s3cr3t"))?;
//! assert_eq!(version.len(), 32);
//! assert_eq!(kv.vault_url("accvault")?, "https://accvault.vault.azure.net/");
//! # Ok(()) }
//! ```

mod access;
mod http;
mod seed;
mod spec;
mod store;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use access::{Grant, Operation, Permissions, ROLES};
pub use http::MAX_RESULTS;
pub use spec::{CertificateFormat, CertificateSpec, KeySpec, SecretSpec, VaultSpec};
pub use store::{AuthorizationModel, ObjectKind, valid_object_name};

use crate::certs::{CertError, TestCa};
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::faults::{Faults, RequestLog, lock};
use crate::server::{Endpoint, issuer_or_new, resolve_env};
use crate::token::{AccessToken, IssuerKeyError, Principal, TokenIssuer};

/// Errors of the Key Vault fake's setup and seeding API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FakeError {
    /// No vault with this name or host was created.
    #[error("no vault named {0:?} exists in the fake")]
    UnknownVault(String),
    /// A vault with this host exists already.
    #[error("a vault at {0} exists already")]
    DuplicateVault(String),
    /// Not a valid Key Vault name.
    #[error("{0:?} is not a valid Key Vault object or vault name")]
    InvalidName(String),
    /// The object does not exist.
    #[error("no {kind:?} named {name:?} (version {version:?})")]
    UnknownObject {
        /// Kind of object.
        kind: ObjectKind,
        /// Name.
        name: String,
        /// Version asked for.
        version: Option<String>,
    },
    /// A certificate or key could not be made or read.
    #[error("certificate material: {0}")]
    Certificate(String),
    /// The certificate factory failed.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// The token issuer's key is broken.
    #[error(transparent)]
    Issuer(#[from] IssuerKeyError),
    /// TLS setup failed.
    #[error("TLS setup failed")]
    Tls(#[source] rustls::Error),
    /// Binding the listener failed.
    #[error("binding the listener failed")]
    Bind(#[source] std::io::Error),
}

/// How to start a [`KeyVaultFake`].
#[derive(Clone, Debug, Default)]
pub struct KeyVaultOptions {
    /// Clock for token lifetimes, timestamps and latency (default: system clock).
    pub clock: Option<Clock>,
    /// Token issuer shared with the Entra fake (default: a new one on `clock`).
    pub issuer: Option<Arc<TokenIssuer>>,
    /// CA for the serving certificate, shared with the other fakes (default: a new one).
    pub ca: Option<Arc<TestCa>>,
}

/// A running Key Vault fake. Dropping it stops the server.
#[derive(Debug)]
pub struct KeyVaultFake {
    service: Arc<http::KeyVaultService>,
    endpoint: Endpoint,
}

impl std::fmt::Debug for http::KeyVaultService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVaultService").finish_non_exhaustive()
    }
}

/// The names the serving certificate covers: every cloud's vault wildcard.
fn serving_names() -> Vec<String> {
    Cloud::ALL
        .iter()
        .map(|c| format!("*.{}", c.vault_suffix))
        .collect()
}

impl KeyVaultFake {
    /// Starts the fake on an ephemeral loopback port.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound or the TLS identity cannot be made.
    pub async fn start(opts: KeyVaultOptions) -> Result<Self, FakeError> {
        let clock = opts.clock.unwrap_or_default();
        let issuer = issuer_or_new(opts.issuer, &clock)?;
        let service = Arc::new(http::KeyVaultService {
            vaults: Mutex::new(BTreeMap::new()),
            issuer,
        });
        let names = serving_names();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let endpoint = Endpoint::tls(service.clone(), clock, opts.ca, &names)
            .await
            .map_err(|e| e.into_error(FakeError::Cert, FakeError::Tls, FakeError::Bind))?;
        Ok(Self { service, endpoint })
    }

    /// The loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// The CA that signed the serving certificate.
    pub fn ca(&self) -> &Arc<TestCa> {
        self.endpoint.ca()
    }

    /// The CA certificate as PEM (for `SSL_CERT_FILE` or `tls_certs_only`).
    pub fn ca_pem(&self) -> String {
        self.endpoint.ca_pem()
    }

    /// The token issuer whose tokens the fake accepts.
    pub fn issuer(&self) -> &Arc<TokenIssuer> {
        &self.service.issuer
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        self.endpoint.clock()
    }

    /// Fault injection.
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// Every request answered.
    pub fn log(&self) -> &RequestLog {
        self.endpoint.log()
    }

    /// `(host, addr)` for every vault: what a client's resolve override must map.
    pub fn resolve_overrides(&self) -> Vec<(String, SocketAddr)> {
        let hosts: Vec<String> = lock(&self.service.vaults).keys().cloned().collect();
        self.endpoint.resolve_overrides(hosts)
    }

    /// The resolve override as `AKV2K8S_RESOLVE` takes it: `host=addr:port` pairs joined by `,`.
    pub fn resolve_env(&self) -> String {
        resolve_env(&self.resolve_overrides())
    }

    /// Creates a vault.
    ///
    /// # Errors
    ///
    /// When the name is invalid or the vault exists.
    pub fn create_vault(&self, spec: VaultSpec) -> Result<String, FakeError> {
        let vault = spec.into_vault()?;
        let host = vault.host();
        let url = vault.cloud.vault_url(&vault.name);
        let mut vaults = lock(&self.service.vaults);
        if vaults.contains_key(&host) {
            return Err(FakeError::DuplicateVault(host));
        }
        vaults.insert(host, vault);
        Ok(url)
    }

    /// The URL of a vault (`https://name.vault.azure.net/`).
    ///
    /// # Errors
    ///
    /// When no such vault exists.
    pub fn vault_url(&self, vault: &str) -> Result<String, FakeError> {
        self.with_vault(vault, |v| v.cloud.vault_url(&v.name))
    }

    /// Whether a vault exists, by name (any cloud) or by host, as the seeding API looks vaults up.
    pub fn has_vault(&self, name_or_host: &str) -> bool {
        self.with_vault(name_or_host, |_| ()).is_ok()
    }

    fn with_vault<T>(
        &self,
        vault: &str,
        f: impl FnOnce(&mut store::Vault) -> T,
    ) -> Result<T, FakeError> {
        let mut vaults = lock(&self.service.vaults);
        let found = if vault.contains('.') {
            vaults.get_mut(&vault.to_ascii_lowercase())
        } else {
            vaults
                .values_mut()
                .find(|v| v.name.eq_ignore_ascii_case(vault))
        };
        found
            .map(f)
            .ok_or_else(|| FakeError::UnknownVault(vault.to_owned()))
    }

    /// Adds a secret version and returns its version id.
    ///
    /// # Errors
    ///
    /// Unknown vault or invalid name.
    pub fn set_secret(
        &self,
        vault: &str,
        name: &str,
        spec: SecretSpec,
    ) -> Result<String, FakeError> {
        let now = self.clock().unix_seconds();
        self.with_vault(vault, |v| seed::set_secret(v, name, spec, now))?
    }

    /// Imports a certificate version (certificate + managed key + managed secret, one version
    /// id for the three) and returns the version id.
    ///
    /// # Errors
    ///
    /// Unknown vault, invalid name, or material that cannot be read.
    pub fn import_certificate(
        &self,
        vault: &str,
        name: &str,
        spec: CertificateSpec,
    ) -> Result<String, FakeError> {
        let now = self.clock().unix_seconds();
        let prepared = seed::prepare_certificate(spec)?;
        self.with_vault(vault, |v| seed::import_certificate(v, name, prepared, now))?
    }

    /// Creates a key version and returns its version id.
    ///
    /// # Errors
    ///
    /// Unknown vault, invalid name, or key generation failure.
    pub fn create_key(&self, vault: &str, name: &str, spec: KeySpec) -> Result<String, FakeError> {
        let now = self.clock().unix_seconds();
        let jwk = seed::prepare_key(&spec)?;
        self.with_vault(vault, |v| seed::create_key(v, name, spec, jwk, now))?
    }

    /// Enables or disables an object version (`None`: the latest).
    ///
    /// # Errors
    ///
    /// Unknown vault or object.
    pub fn set_enabled(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
        version: Option<&str>,
        enabled: bool,
    ) -> Result<(), FakeError> {
        let now = self.clock().unix_seconds();
        self.with_vault(vault, |v| {
            seed::set_enabled(v, kind, name, version, enabled, now)
        })?
    }

    /// Grants `principal` `permissions` on the whole vault.
    ///
    /// # Errors
    ///
    /// Unknown vault.
    pub fn grant(
        &self,
        vault: &str,
        principal: &Principal,
        permissions: Permissions,
    ) -> Result<(), FakeError> {
        self.with_vault(vault, |v| {
            v.grants.push(Grant {
                object_id: principal.object_id.clone(),
                permissions,
                scope: None,
            });
        })
    }

    /// Grants `principal` `permissions` on one object only (an RBAC role assignment at object
    /// scope).
    ///
    /// # Errors
    ///
    /// Unknown vault.
    pub fn grant_object(
        &self,
        vault: &str,
        principal: &Principal,
        permissions: Permissions,
        kind: ObjectKind,
        name: &str,
    ) -> Result<(), FakeError> {
        self.with_vault(vault, |v| {
            v.grants.push(Grant {
                object_id: principal.object_id.clone(),
                permissions,
                scope: Some((kind, name.to_owned())),
            });
        })
    }

    /// Removes every grant of `principal` in `vault`.
    ///
    /// # Errors
    ///
    /// Unknown vault.
    pub fn revoke(&self, vault: &str, principal: &Principal) -> Result<(), FakeError> {
        self.with_vault(vault, |v| {
            v.grants
                .retain(|g| !g.object_id.eq_ignore_ascii_case(&principal.object_id))
        })
    }

    /// A valid token for `principal` to call `vault` (right audience for its cloud, one hour),
    /// as Entra would issue it.
    ///
    /// # Errors
    ///
    /// Unknown vault.
    pub fn token_for(&self, vault: &str, principal: &Principal) -> Result<AccessToken, FakeError> {
        let cloud = self.with_vault(vault, |v| v.cloud)?;
        Ok(self.issuer().mint_for(
            principal,
            &cloud,
            cloud.vault_audience,
            Duration::from_secs(3600),
        ))
    }

    /// The version ids of an object, oldest first.
    ///
    /// # Errors
    ///
    /// Unknown vault or object.
    pub fn versions(
        &self,
        vault: &str,
        kind: ObjectKind,
        name: &str,
    ) -> Result<Vec<String>, FakeError> {
        self.with_vault(vault, |v| seed::versions(v, kind, name))?
    }

    /// Stops the server (also done on drop).
    pub fn shutdown(&self) {
        self.endpoint.shutdown();
    }
}
