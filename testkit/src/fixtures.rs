//! Fixture files (YAML) for vaults, objects, principals and identities.
//!
//! A fixture describes, in one YAML document, the principals a test (or the demo) uses, the
//! vaults it needs (their cloud, tenant, authorization model, grants, secrets with one or
//! several versions, certificates made by the [certificate factory](crate::certs) or taken
//! from the checked-in openssl files, and keys) and the identity side: Entra tenants, app
//! registrations with client secrets, client certificates and workload-identity federations,
//! ROPC users, managed identities and aad-pod-identity pods.
//!
//! * [`Fixture::apply`] seeds a running [`KeyVaultFake`](crate::vault::KeyVaultFake) with the
//!   vaults only (the identity sections are checked and otherwise ignored).
//! * [`Fixture::apply_all`] seeds every fake given in [`Fakes`]: the vaults into the Key Vault
//!   fake, `tenants`/`clients`/`users` into the [`EntraFake`](crate::entra::EntraFake),
//!   `identities`/`pods` into the [`ImdsFake`](crate::imds::ImdsFake).
//!
//! Both return the resolved principals ([`Applied`]), so a test can ask for their tokens, and
//! `apply_all` also the generated client certificates. The format is documented field by field
//! in `docs/testkit-fixtures.md`; `examples/vault-fixture.yaml` is the demo's fixture.
//!
//! Loading is strict: an unknown field, principal, role, cloud or scope is an error that names
//! the vault or entry, the object and the field, and says what to write instead. Every check
//! runs before a fake is touched ([`Fixture::validate`]), so an invalid fixture seeds nothing.
//! Secret values and passwords never appear in `Debug` output or error messages (YAML errors
//! are rendered without source snippets for that reason).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use testkit::fixtures::Fixture;
//! use testkit::vault::{KeyVaultFake, ObjectKind};
//!
//! let fixture = Fixture::from_yaml(
//!     r#"
//! principals:
//!   - name: controller
//! vaults:
//!   - name: accvault
//!     accessPolicies:
//!       - principal: controller
//!         permissions: {secrets: [get, list]}
//!     secrets:
//!       - name: db-pass
//!         versions:
//!           - value: old-password
//!           - value: s3cr3t
//! "#,
//! )?;
//!
//! testkit::install_crypto_provider();
//! let kv = KeyVaultFake::start(Default::default()).await?;
//! let applied = fixture.apply(&kv)?;
//! assert_eq!(kv.versions("accvault", ObjectKind::Secret, "db-pass")?.len(), 2);
//! assert_eq!(applied.vault_url("accvault"), Some("https://accvault.vault.azure.net/"));
//! let controller = applied.principal("controller").ok_or("controller is declared")?;
//! let _token = kv.token_for("accvault", controller)?;
//! # Ok(()) }
//! ```
//!
//! The identity side goes to the Entra and IMDS fakes with [`Fixture::apply_all`]:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use testkit::entra::EntraFake;
//! use testkit::fixtures::{Fakes, Fixture};
//! use testkit::imds::ImdsFake;
//!
//! let fixture = Fixture::from_yaml(
//!     r#"
//! principals: [{name: controller}, {name: vm-identity}]
//! clients:
//!   - principal: controller
//!     secrets: [s3cr3t]
//!     certificates: [{name: current, commonName: controller.example.com}]
//!     federations:
//!       - {issuer: testkit, namespace: akv2k8s, serviceAccount: akv2k8s-controller}
//! identities:
//!   - {principal: vm-identity, kind: userAssigned}
//! "#,
//! )?;
//!
//! testkit::install_crypto_provider();
//! let entra = EntraFake::start(Default::default()).await?;
//! let imds = ImdsFake::start(Default::default()).await?;
//! let applied = fixture.apply_all(&Fakes::new().entra(&entra).imds(&imds))?;
//! let cert = applied.client_certificate("controller", "current").ok_or("generated")?;
//! assert!(cert.pem().starts_with("-----BEGIN PRIVATE KEY-----"));
//! # Ok(()) }
//! ```

mod apply;
mod error;
mod identity;
mod plan;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::certs::{KeyKind, PemPart};
use crate::vault::{KeySpec, Operation, Permissions};

pub use apply::{Applied, ClientCertificate, Fakes};
pub use error::{FixtureError, YamlError};
pub use identity::{
    ClientCertificateEntry, ClientEntry, FederationEntry, IdentityEntry, ManagedIdentityKind,
    PodEntry, TESTKIT_ISSUER, TenantEntry, UserEntry,
};

/// A parsed fixture: principals, vaults and the identity side. See the [module docs](self).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Fixture {
    /// `principals:`, the identities grants may name.
    #[serde(default)]
    pub principals: Vec<PrincipalEntry>,
    /// `vaults:`, created in this order.
    #[serde(default)]
    pub vaults: Vec<VaultEntry>,
    /// `tenants:`, empty Entra tenants.
    #[serde(default)]
    pub tenants: Vec<TenantEntry>,
    /// `clients:`, app registrations of principals with their credentials (Entra fake).
    #[serde(default)]
    pub clients: Vec<ClientEntry>,
    /// `users:`, users for the ROPC grant (Entra fake).
    #[serde(default)]
    pub users: Vec<UserEntry>,
    /// `identities:`, managed identities of the VM (IMDS fake in VM mode).
    #[serde(default)]
    pub identities: Vec<IdentityEntry>,
    /// `pods:`, pods with their bound identities (IMDS fake in NMI mode).
    #[serde(default)]
    pub pods: Vec<PodEntry>,
}

/// One entry of `principals:`. Ids not given are derived from `name` as
/// [`Principal::new`](crate::token::Principal::new) derives them, so tests can rebuild the principal without the fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PrincipalEntry {
    /// `name`: what grants refer to, and [`Applied::principal`] takes.
    pub name: String,
    /// `tenantId` (default: [`crate::token::DEFAULT_TENANT_ID`]).
    pub tenant_id: Option<String>,
    /// `objectId` (`oid`), what grants are bound to (default: derived from `name`).
    pub object_id: Option<String>,
    /// `appId` (`appid`, the client id) (default: derived from `name`).
    pub app_id: Option<String>,
}

/// How a vault authorizes data-plane calls (`authorization:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Authorization {
    /// `accessPolicies` (the default): grants come from `accessPolicies:`.
    #[default]
    AccessPolicies,
    /// `rbac`: grants come from `roleAssignments:`.
    Rbac,
}

/// One entry of `vaults:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct VaultEntry {
    /// `name`: 3-24 letters, digits and dashes; the host is `<name>.<cloud's vault suffix>`.
    pub name: String,
    /// `cloud`: an akv2k8s cloud name for [`Cloud::by_name`](crate::cloud::Cloud::by_name) (default: `AzurePublicCloud`).
    pub cloud: Option<String>,
    /// `tenantId`: the vault's tenant (default: the testkit tenant).
    pub tenant_id: Option<String>,
    /// `location`: the region the fake reports (default: `westeurope`).
    pub location: Option<String>,
    /// `authorization` (default: `accessPolicies`).
    #[serde(default)]
    pub authorization: Authorization,
    /// `accessPolicies:` vault-wide grants (access-policy vaults only).
    #[serde(default)]
    pub access_policies: Vec<AccessPolicyEntry>,
    /// `roleAssignments:` RBAC role assignments (RBAC vaults only).
    #[serde(default)]
    pub role_assignments: Vec<RoleAssignmentEntry>,
    /// `secrets:`.
    #[serde(default)]
    pub secrets: Vec<SecretEntry>,
    /// `certificates:`.
    #[serde(default)]
    pub certificates: Vec<CertificateEntry>,
    /// `keys:`.
    #[serde(default)]
    pub keys: Vec<KeyEntry>,
}

/// One entry of `accessPolicies:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccessPolicyEntry {
    /// `principal`: a name from `principals:`.
    pub principal: String,
    /// `permissions`.
    pub permissions: PermissionSet,
}

/// `permissions:` of an access policy: operations per object kind (`get`, `list`, `set`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PermissionSet {
    /// `secrets: [get, list, set]`.
    #[serde(default)]
    pub secrets: BTreeSet<Operation>,
    /// `certificates: [get, list]`.
    #[serde(default)]
    pub certificates: BTreeSet<Operation>,
    /// `keys: [get, list]`.
    #[serde(default)]
    pub keys: BTreeSet<Operation>,
}

impl From<&PermissionSet> for Permissions {
    fn from(p: &PermissionSet) -> Self {
        Permissions {
            secrets: p.secrets.clone(),
            certificates: p.certificates.clone(),
            keys: p.keys.clone(),
        }
    }
}

/// One entry of `roleAssignments:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct RoleAssignmentEntry {
    /// `principal`: a name from `principals:`.
    pub principal: String,
    /// `role`: a built-in role's display name, as [`Permissions::for_role`] takes it.
    pub role: String,
    /// `scope`: `secrets/<name>`, `certificates/<name>` or `keys/<name>` of an object of this
    /// vault (default: the whole vault).
    pub scope: Option<String>,
}

/// A secret value from a fixture. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    /// The value, e.g. to compare with what a synced Kubernetes secret holds.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(..)")
    }
}

/// One entry of `secrets:`: one version (`value`) or several (`versions`). The other fields
/// are the attributes of the single version, or the defaults of every entry of `versions`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SecretEntry {
    /// `name`: 1-127 letters, digits and dashes.
    pub name: String,
    /// `value`: the value of a single version.
    pub value: Option<SecretValue>,
    /// `versions`: several versions, oldest first (the last is the current one).
    pub versions: Option<Vec<SecretVersionEntry>>,
    /// `contentType`.
    pub content_type: Option<String>,
    /// `enabled` (default: `true`).
    pub enabled: Option<bool>,
    /// `notBefore`: RFC 3339 time, e.g. `2030-01-31T12:00:00Z`.
    pub not_before: Option<String>,
    /// `expires`: RFC 3339 time.
    pub expires: Option<String>,
    /// `tags`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for SecretEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretEntry")
            .field("name", &self.name)
            .field(
                "versions",
                &self
                    .versions
                    .as_ref()
                    .map_or(usize::from(self.value.is_some()), Vec::len),
            )
            .field("content_type", &self.content_type)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// One entry of a secret's `versions:`. Fields left out take the secret entry's.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct SecretVersionEntry {
    /// `value`.
    pub value: SecretValue,
    /// `contentType`.
    pub content_type: Option<String>,
    /// `enabled`.
    pub enabled: Option<bool>,
    /// `notBefore`: RFC 3339 time.
    pub not_before: Option<String>,
    /// `expires`: RFC 3339 time.
    pub expires: Option<String>,
    /// `tags`, merged over the secret entry's.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl fmt::Debug for SecretVersionEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretVersionEntry")
            .field("content_type", &self.content_type)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// Key algorithm: `RSA` (2048 bits), `EC-P256` or `EC-P384`. The lower-case spellings `rsa`,
/// `ec-p256` and `ec-p384` are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum KeyType {
    /// RSA 2048.
    #[serde(rename = "RSA", alias = "rsa")]
    Rsa,
    /// ECDSA on P-256.
    #[serde(rename = "EC-P256", alias = "ec-p256")]
    EcP256,
    /// ECDSA on P-384.
    #[serde(rename = "EC-P384", alias = "ec-p384")]
    EcP384,
}

impl KeyType {
    fn key_kind(self) -> KeyKind {
        match self {
            KeyType::Rsa => KeyKind::Rsa2048,
            KeyType::EcP256 => KeyKind::EcdsaP256,
            KeyType::EcP384 => KeyKind::EcdsaP384,
        }
    }

    fn key_spec(self) -> KeySpec {
        match self {
            KeyType::Rsa => KeySpec::Rsa,
            KeyType::EcP256 => KeySpec::EcP256,
            KeyType::EcP384 => KeySpec::EcP384,
        }
    }
}

/// How a certificate is stored in its backing secret (`format:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum StoredFormat {
    /// `pfx`: PKCS#12 with modern encryption (AES-256, as Key Vault writes today).
    #[default]
    #[serde(rename = "pfx")]
    Pfx,
    /// `pfx-legacy-3des`: PKCS#12 with PBE-SHA1-3DES.
    #[serde(rename = "pfx-legacy-3des")]
    PfxLegacy3Des,
    /// `pfx-legacy-rc2`: PKCS#12 with PBE-SHA1-RC2-40.
    #[serde(rename = "pfx-legacy-rc2")]
    PfxLegacyRc2,
    /// `pem`: a PEM bundle in `pemOrder`.
    #[serde(rename = "pem")]
    Pem,
}

/// A block of a PEM bundle, for `pemOrder:`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PemBlock {
    /// `key`: the leaf's private key (PKCS#8).
    Key,
    /// `leaf`: the leaf certificate.
    Leaf,
    /// `intermediate`: the intermediate CA.
    Intermediate,
    /// `root`: the root CA.
    Root,
}

impl From<PemBlock> for PemPart {
    fn from(b: PemBlock) -> Self {
        match b {
            PemBlock::Key => PemPart::Key,
            PemBlock::Leaf => PemPart::Leaf,
            PemBlock::Intermediate => PemPart::Intermediate,
            PemBlock::Root => PemPart::Root,
        }
    }
}

/// A checked-in openssl-made file ([`crate::certs::openssl`]), stored byte for byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpensslFile {
    /// `legacy-pfx`: PKCS#12 with 3DES/RC2 (OpenSSL `-legacy`).
    LegacyPfx,
    /// `modern-pfx`: PKCS#12 with AES-256 (OpenSSL 3 default).
    ModernPfx,
    /// `chain-pem`: key, leaf, intermediate and root as PEM.
    ChainPem,
}

/// `generate:` a chain root → intermediate → leaf from the certificate factory.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct GeneratedChain {
    /// `key`: `rsa`, `ec-p256` or `ec-p384` (all three certificates use it).
    pub key: KeyType,
    /// `commonName` of the leaf (default: `leaf.testkit.local`).
    pub common_name: Option<String>,
    /// `dnsNames`: the leaf's DNS subject alternative names (default: the common name).
    #[serde(default)]
    pub dns_names: Vec<String>,
    /// `notBefore` of the leaf, RFC 3339 (default: one hour ago).
    pub not_before: Option<String>,
    /// `expires` (notAfter) of the leaf, RFC 3339 (default: in 365 days).
    pub expires: Option<String>,
}

/// One entry of `certificates:`: either `generate` or `openssl`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct CertificateEntry {
    /// `name`: 1-127 letters, digits and dashes; also the name of its secret and key.
    pub name: String,
    /// `generate`: a fresh chain from the certificate factory.
    pub generate: Option<GeneratedChain>,
    /// `openssl`: a checked-in openssl-made file.
    pub openssl: Option<OpensslFile>,
    /// `format` of a generated chain (default: `pfx`).
    pub format: Option<StoredFormat>,
    /// `pemOrder` of a generated chain stored as `pem` (default: key, leaf, intermediate, root).
    pub pem_order: Option<Vec<PemBlock>>,
    /// `exportable` (default: `true`): whether the backing secret holds the private key.
    pub exportable: Option<bool>,
    /// `tags`.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// One entry of `keys:`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct KeyEntry {
    /// `name`: 1-127 letters, digits and dashes.
    pub name: String,
    /// `kty`: `RSA`, `EC-P256` or `EC-P384`.
    pub kty: KeyType,
}
