//! What to seed: the builders for vaults, secrets, certificates and keys.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use super::FakeError;
use super::access::{Grant, Permissions};
use super::store::{AuthorizationModel, Vault};
use crate::certs::{CertChain, PemPart, PfxEncryption};
use crate::cloud::Cloud;
use crate::token::{DEFAULT_TENANT_ID, Principal};

/// A vault to create.
#[derive(Clone, Debug)]
pub struct VaultSpec {
    name: String,
    cloud: Cloud,
    tenant_id: String,
    location: String,
    authorization: AuthorizationModel,
    grants: Vec<Grant>,
}

impl VaultSpec {
    /// A public-cloud vault in the default tenant, access-policy model, no grants.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            cloud: Cloud::PUBLIC,
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            location: "westeurope".into(),
            authorization: AuthorizationModel::AccessPolicies,
            grants: Vec::new(),
        }
    }

    /// In another cloud.
    #[must_use]
    pub fn cloud(mut self, cloud: Cloud) -> Self {
        self.cloud = cloud;
        self
    }

    /// In another tenant.
    #[must_use]
    pub fn tenant(mut self, tenant_id: &str) -> Self {
        self.tenant_id = tenant_id.to_owned();
        self
    }

    /// Region reported in `x-ms-keyvault-region` and in 403 messages.
    #[must_use]
    pub fn location(mut self, location: &str) -> Self {
        self.location = location.to_owned();
        self
    }

    /// Authorization model.
    #[must_use]
    pub fn authorization(mut self, model: AuthorizationModel) -> Self {
        self.authorization = model;
        self
    }

    /// A vault-wide grant (an access policy, or an RBAC assignment at vault scope).
    #[must_use]
    pub fn grant(mut self, principal: &Principal, permissions: Permissions) -> Self {
        self.grants.push(Grant {
            object_id: principal.object_id.clone(),
            permissions,
            scope: None,
        });
        self
    }

    /// Any grant.
    #[must_use]
    pub fn with_grant(mut self, grant: Grant) -> Self {
        self.grants.push(grant);
        self
    }

    pub(super) fn into_vault(self) -> Result<Vault, FakeError> {
        // Vault names: 3-24 characters, letters, digits and dashes, starting with a letter.
        let ok = (3..=24).contains(&self.name.len())
            && self.name.starts_with(|c: char| c.is_ascii_alphabetic())
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok {
            return Err(FakeError::InvalidName(self.name));
        }
        Ok(Vault {
            name: self.name,
            cloud: self.cloud,
            tenant_id: self.tenant_id,
            location: self.location,
            authorization: self.authorization,
            grants: self.grants,
            secrets: BTreeMap::new(),
            certificates: BTreeMap::new(),
            keys: BTreeMap::new(),
        })
    }
}

/// A secret version to add.
#[derive(Clone)]
pub struct SecretSpec {
    pub(super) value: String,
    pub(super) version: Option<String>,
    pub(super) content_type: Option<String>,
    pub(super) enabled: bool,
    pub(super) not_before: Option<u64>,
    pub(super) expires: Option<u64>,
    pub(super) tags: BTreeMap<String, String>,
}

impl std::fmt::Debug for SecretSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretSpec")
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

impl SecretSpec {
    /// An enabled secret with this value.
    pub fn new(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            version: None,
            content_type: None,
            enabled: true,
            not_before: None,
            expires: None,
            tags: BTreeMap::new(),
        }
    }

    /// Pins the version id (32 hex digits) instead of a random one, e.g. to compare responses
    /// with documented examples.
    #[must_use]
    pub fn version(mut self, id: &str) -> Self {
        self.version = Some(id.to_ascii_lowercase());
        self
    }

    /// `contentType`.
    #[must_use]
    pub fn content_type(mut self, ct: &str) -> Self {
        self.content_type = Some(ct.to_owned());
        self
    }

    /// `enabled` (a disabled secret answers 403 `SecretDisabled`).
    #[must_use]
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// `nbf`.
    #[must_use]
    pub fn not_before(mut self, t: SystemTime) -> Self {
        self.not_before = Some(unix(t));
        self
    }

    /// `exp`.
    #[must_use]
    pub fn expires(mut self, t: SystemTime) -> Self {
        self.expires = Some(unix(t));
        self
    }

    /// A tag.
    #[must_use]
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.to_owned(), v.to_owned());
        self
    }
}

/// How an imported certificate is stored in its backing secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertificateFormat {
    /// `application/x-pkcs12`: base64 of a PFX with an empty password.
    Pfx(PfxEncryption),
    /// `application/x-pem-file`: key and certificates in this order.
    Pem(Vec<PemPart>),
}

#[derive(Clone)]
pub(super) enum Material {
    Chain(Box<CertChain>, CertificateFormat),
    Pfx(Vec<u8>),
    Pem(String),
}

/// A certificate version to import.
#[derive(Clone)]
pub struct CertificateSpec {
    pub(super) material: Material,
    pub(super) exportable: bool,
    pub(super) tags: BTreeMap<String, String>,
}

impl std::fmt::Debug for CertificateSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateSpec")
            .field("exportable", &self.exportable)
            .finish_non_exhaustive()
    }
}

impl CertificateSpec {
    /// A chain from the certificate factory, stored as `format`, exportable.
    pub fn from_chain(chain: &CertChain, format: CertificateFormat) -> Self {
        Self {
            material: Material::Chain(Box::new(chain.clone()), format),
            exportable: true,
            tags: BTreeMap::new(),
        }
    }

    /// A PFX file (empty password) stored byte for byte, e.g. [`crate::certs::openssl::LEGACY_PFX`].
    pub fn from_pfx(pfx: &[u8]) -> Self {
        Self {
            material: Material::Pfx(pfx.to_vec()),
            exportable: true,
            tags: BTreeMap::new(),
        }
    }

    /// A PEM bundle (private key and certificates in any order) stored as given.
    pub fn from_pem(pem: &str) -> Self {
        Self {
            material: Material::Pem(pem.to_owned()),
            exportable: true,
            tags: BTreeMap::new(),
        }
    }

    /// Whether the private key is exportable (`policy.key_props.exportable`). A
    /// non-exportable certificate's backing secret holds the certificates only.
    #[must_use]
    pub fn exportable(mut self, exportable: bool) -> Self {
        self.exportable = exportable;
        self
    }

    /// A tag.
    #[must_use]
    pub fn tag(mut self, k: &str, v: &str) -> Self {
        self.tags.insert(k.to_owned(), v.to_owned());
        self
    }
}

/// A key to create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeySpec {
    /// RSA 2048 (a checked-in key).
    Rsa,
    /// EC on P-256.
    EcP256,
    /// EC on P-384.
    EcP384,
}
