//! Fixture files (YAML) for vaults, objects and principals.
//!
//! A fixture describes, in one YAML document, the principals a test (or the demo) uses and the
//! vaults it needs: their cloud, tenant, authorization model, grants, secrets (one or several
//! versions), certificates (made by the [certificate factory](crate::certs) or taken from the
//! checked-in openssl files) and keys. [`Fixture::apply`] seeds a running
//! [`KeyVaultFake`] through its public seeding API and returns the resolved principals, so a
//! test can ask for their tokens. The format is documented field by field in
//! `docs/testkit-fixtures.md`; `examples/vault-fixture.yaml` is the demo's fixture.
//!
//! Loading is strict: an unknown field, principal, role, cloud or scope is an error that names
//! the vault, the object and the field, and says what to write instead. Every check runs
//! before the fake is touched ([`Fixture::validate`]), so an invalid fixture seeds nothing.
//! Secret values never appear in `Debug` output or error messages (YAML errors are rendered
//! without source snippets for that reason).
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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::certs::{CertChain, CertError, KeyKind, PemPart, PfxEncryption, openssl};
use crate::cloud::Cloud;
use crate::token::Principal;
use crate::vault::{
    AuthorizationModel, CertificateFormat, CertificateSpec, FakeError, KeySpec, KeyVaultFake,
    ObjectKind, Operation, Permissions, SecretSpec, VaultSpec, valid_object_name,
};

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why a fixture could not be loaded or applied. Messages name the vault, the object and the
/// field, and never contain secret values.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FixtureError {
    /// The fixture file could not be read.
    #[error("could not read the fixture file {path}: check that the path exists and is readable")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not have the fixture's shape (unknown or misspelt field,
    /// wrong type, unknown enum value).
    #[error(
        "{origin} is not a valid fixture: correct the YAML at the line and column of the cause \
         (field names are camelCase, see docs/testkit-fixtures.md)"
    )]
    Parse {
        /// The file name, or `fixture text` for [`Fixture::from_yaml`].
        origin: String,
        /// What the YAML parser found.
        #[source]
        source: YamlError,
    },
    /// Two principals have the same name.
    #[error("principal {principal:?} is declared twice: give each principal a unique name")]
    DuplicatePrincipal {
        /// The name.
        principal: String,
    },
    /// A grant names a principal that `principals:` does not declare.
    #[error(
        "vault {vault:?}: `{field}` names principal {principal:?}, which is not declared: \
         add `- name: {principal}` under `principals:`"
    )]
    UnknownPrincipal {
        /// The vault.
        vault: String,
        /// `accessPolicies` or `roleAssignments`.
        field: &'static str,
        /// The undeclared name.
        principal: String,
    },
    /// Two vaults have the same name.
    #[error("vault {vault:?} is declared twice: merge the two entries or rename one")]
    DuplicateVault {
        /// The vault.
        vault: String,
    },
    /// `cloud` is not one of the clouds the fake serves.
    #[error(
        "vault {vault:?}: unknown cloud {cloud:?}: use AzurePublicCloud, AzureChinaCloud, \
         AzureUSGovernmentCloud or AzureGermanCloud"
    )]
    UnknownCloud {
        /// The vault.
        vault: String,
        /// The name given.
        cloud: String,
    },
    /// An RBAC vault lists access policies, which Key Vault would ignore.
    #[error(
        "vault {vault:?} has `authorization: rbac` but lists `accessPolicies`: move the grants to \
         `roleAssignments`, or set `authorization: accessPolicies`"
    )]
    AccessPoliciesInRbacVault {
        /// The vault.
        vault: String,
    },
    /// An access-policy vault lists role assignments, which Key Vault would ignore.
    #[error(
        "vault {vault:?} lists `roleAssignments` but uses access policies: set `authorization: rbac`, \
         or grant through `accessPolicies`"
    )]
    RoleAssignmentsWithoutRbac {
        /// The vault.
        vault: String,
    },
    /// `role` is not a built-in Key Vault data-plane role.
    #[error(
        "vault {vault:?}: `roleAssignments` names unknown role {role:?}: use the exact display name of \
         a built-in Key Vault role, e.g. \"Key Vault Secrets User\" or \"Key Vault Reader\""
    )]
    UnknownRole {
        /// The vault.
        vault: String,
        /// The name given.
        role: String,
    },
    /// A role assignment's `scope` is malformed or names no object of the fixture.
    #[error("vault {vault:?}: role assignment scope {scope:?} {reason}")]
    InvalidScope {
        /// The vault.
        vault: String,
        /// The scope given.
        scope: String,
        /// What is wrong and what to write instead.
        reason: &'static str,
    },
    /// Two objects of one vault share a name (a certificate also owns the secret and the key
    /// of its name).
    #[error(
        "vault {vault:?}: {kind} {object:?} is declared twice (a certificate also takes the secret \
         and key names): list several versions under one entry, or rename one",
        kind = .kind.noun()
    )]
    DuplicateObject {
        /// The vault.
        vault: String,
        /// The kind of the second entry.
        kind: ObjectKind,
        /// The name.
        object: String,
    },
    /// Not a valid Key Vault object name.
    #[error(
        "vault {vault:?}: {object:?} is not a valid {kind} name: use 1-127 letters, digits and dashes",
        kind = .kind.noun()
    )]
    InvalidObjectName {
        /// The vault.
        vault: String,
        /// The kind of object.
        kind: ObjectKind,
        /// The name given.
        object: String,
    },
    /// A secret has both `value` and `versions`.
    #[error("vault {vault:?}: secret {secret:?} has both `value` and `versions`: give exactly one")]
    SecretValueAndVersions {
        /// The vault.
        vault: String,
        /// The secret.
        secret: String,
    },
    /// A secret has neither `value` nor a non-empty `versions`.
    #[error(
        "vault {vault:?}: secret {secret:?} has no value: give `value`, or `versions` with at least one entry"
    )]
    SecretWithoutValue {
        /// The vault.
        vault: String,
        /// The secret.
        secret: String,
    },
    /// A timestamp is not in the accepted RFC 3339 form.
    #[error(
        "vault {vault:?}: `{field}` of {object:?} is {value:?}, {reason}: write an RFC 3339 UTC time \
         such as 2030-01-31T12:00:00Z"
    )]
    InvalidTimestamp {
        /// The vault.
        vault: String,
        /// The object.
        object: String,
        /// `notBefore` or `expires`.
        field: &'static str,
        /// The text given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `expires` is not after `notBefore`.
    #[error(
        "vault {vault:?}: {object:?} expires before it becomes valid: make `expires` later than `notBefore`"
    )]
    ExpiresBeforeNotBefore {
        /// The vault.
        vault: String,
        /// The object.
        object: String,
    },
    /// A certificate entry combines fields that do not go together.
    #[error("vault {vault:?}: certificate {certificate:?} {reason}")]
    InvalidCertificate {
        /// The vault.
        vault: String,
        /// The certificate.
        certificate: String,
        /// What is wrong and what to write instead.
        reason: &'static str,
    },
    /// The fake refused to create the vault.
    #[error(
        "could not create vault {vault:?}: vault names have 3-24 letters, digits and dashes, and a \
         fixture creates its vaults, so apply it to a fake that does not have them yet"
    )]
    CreateVault {
        /// The vault.
        vault: String,
        /// The fake's error.
        #[source]
        source: FakeError,
    },
    /// The fake refused a secret version.
    #[error("could not add secret {secret:?} to vault {vault:?}")]
    SetSecret {
        /// The vault.
        vault: String,
        /// The secret.
        secret: String,
        /// The fake's error.
        #[source]
        source: FakeError,
    },
    /// The certificate factory could not issue a chain (e.g. an invalid DNS name).
    #[error(
        "could not generate certificate {certificate:?} for vault {vault:?}: check `commonName` and `dnsNames`"
    )]
    GenerateCertificate {
        /// The vault.
        vault: String,
        /// The certificate.
        certificate: String,
        /// The factory's error.
        #[source]
        source: CertError,
    },
    /// The fake refused a certificate.
    #[error("could not import certificate {certificate:?} into vault {vault:?}")]
    ImportCertificate {
        /// The vault.
        vault: String,
        /// The certificate.
        certificate: String,
        /// The fake's error.
        #[source]
        source: FakeError,
    },
    /// The fake refused a key.
    #[error("could not create key {key:?} in vault {vault:?}")]
    CreateKey {
        /// The vault.
        vault: String,
        /// The key.
        key: String,
        /// The fake's error.
        #[source]
        source: FakeError,
    },
    /// The fake refused an object-scoped grant.
    #[error("could not grant principal {principal:?} access in vault {vault:?}")]
    Grant {
        /// The vault.
        vault: String,
        /// The principal.
        principal: String,
        /// The fake's error.
        #[source]
        source: FakeError,
    },
}

/// A YAML syntax or shape error with its line and column. It renders without source snippets,
/// which could show secret values.
pub struct YamlError(Box<serde_saphyr::Error>);

impl YamlError {
    /// `(line, column)` of the error, 1-based, when the parser knows it.
    pub fn location(&self) -> Option<(u64, u64)> {
        self.0.location().map(|l| (l.line(), l.column()))
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
        self.0.without_snippet().render_to(f, plain)
    }
}

impl fmt::Debug for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("YamlError")
            .field(&format_args!("{self}"))
            .finish()
    }
}

impl std::error::Error for YamlError {}

// ---------------------------------------------------------------------------------------------
// The format
// ---------------------------------------------------------------------------------------------

/// A parsed fixture: principals and vaults. See the [module docs](self).
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
}

/// One entry of `principals:`. Ids not given are derived from `name` as
/// [`Principal::new`] derives them, so tests can rebuild the principal without the fixture.
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
    /// `cloud`: an akv2k8s cloud name for [`Cloud::by_name`] (default: `AzurePublicCloud`).
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

/// What [`Fixture::apply`] made: the resolved principals and the vault URLs.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    principals: BTreeMap<String, Principal>,
    vault_urls: BTreeMap<String, String>,
}

impl Applied {
    /// The principal declared as `name`, with its ids.
    pub fn principal(&self, name: &str) -> Option<&Principal> {
        self.principals.get(name)
    }

    /// Every declared principal, by name.
    pub fn principals(&self) -> impl Iterator<Item = &Principal> {
        self.principals.values()
    }

    /// The URL of vault `name` (`https://name.vault.azure.net/`).
    pub fn vault_url(&self, name: &str) -> Option<&str> {
        self.vault_urls.get(name).map(String::as_str)
    }
}

// ---------------------------------------------------------------------------------------------
// Loading and applying
// ---------------------------------------------------------------------------------------------

impl Fixture {
    /// Parses and [validates](Fixture::validate) a fixture.
    ///
    /// # Errors
    ///
    /// [`FixtureError::Parse`] when the YAML is malformed or has an unknown field, and any
    /// error of [`Fixture::validate`].
    pub fn from_yaml(yaml: &str) -> Result<Self, FixtureError> {
        Self::parse(yaml, "fixture text")
    }

    /// Reads, parses and validates a fixture file.
    ///
    /// # Errors
    ///
    /// [`FixtureError::ReadFile`], and the errors of [`Fixture::from_yaml`].
    pub fn from_file(path: &Path) -> Result<Self, FixtureError> {
        let yaml = std::fs::read_to_string(path).map_err(|source| FixtureError::ReadFile {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&yaml, &path.display().to_string())
    }

    fn parse(yaml: &str, origin: &str) -> Result<Self, FixtureError> {
        let fixture: Fixture = serde_saphyr::from_str(yaml).map_err(|e| FixtureError::Parse {
            origin: origin.to_owned(),
            source: YamlError(Box::new(e)),
        })?;
        fixture.validate()?;
        Ok(fixture)
    }

    /// Checks everything that can be checked without a fake: principals, clouds, roles,
    /// scopes, names, secret values and timestamps, certificate fields.
    ///
    /// # Errors
    ///
    /// The first problem found, naming the vault, object and field.
    pub fn validate(&self) -> Result<(), FixtureError> {
        self.plan().map(drop)
    }

    /// Creates the fixture's vaults in `kv` and seeds their grants and objects, in file order.
    /// Nothing is changed when the fixture is invalid.
    ///
    /// # Errors
    ///
    /// The errors of [`Fixture::validate`]; [`FixtureError::CreateVault`] when the fake
    /// already has a vault of that name or the name is invalid; the fake's or the certificate
    /// factory's errors, naming the object (the vaults and objects seeded before it stay).
    pub fn apply(&self, kv: &KeyVaultFake) -> Result<Applied, FixtureError> {
        let plan = self.plan()?;
        let mut vault_urls = BTreeMap::new();
        for vault in plan.vaults {
            let url = kv
                .create_vault(vault.spec)
                .map_err(|source| FixtureError::CreateVault {
                    vault: vault.name.to_owned(),
                    source,
                })?;
            vault_urls.insert(vault.name.to_owned(), url);
            vault.objects.seed(kv, vault.name, &vault.host)?;
            for g in vault.scoped_grants {
                kv.grant_object(&vault.host, &g.principal, g.permissions, g.kind, g.object)
                    .map_err(|source| FixtureError::Grant {
                        vault: vault.name.to_owned(),
                        principal: g.principal.name.clone(),
                        source,
                    })?;
            }
        }
        Ok(Applied {
            principals: plan.principals,
            vault_urls,
        })
    }

    /// Resolves the fixture into seeding calls, checking everything on the way.
    fn plan(&self) -> Result<Plan<'_>, FixtureError> {
        let mut principals = BTreeMap::new();
        for p in &self.principals {
            let mut principal = Principal::new(&p.name);
            if let Some(t) = &p.tenant_id {
                principal = principal.in_tenant(t);
            }
            if let Some(oid) = &p.object_id {
                principal.object_id.clone_from(oid);
            }
            if let Some(appid) = &p.app_id {
                principal.app_id.clone_from(appid);
            }
            if principals.insert(p.name.clone(), principal).is_some() {
                return Err(FixtureError::DuplicatePrincipal {
                    principal: p.name.clone(),
                });
            }
        }
        let mut seen = BTreeSet::new();
        let mut vaults = Vec::with_capacity(self.vaults.len());
        for v in &self.vaults {
            if !seen.insert(v.name.to_ascii_lowercase()) {
                return Err(FixtureError::DuplicateVault {
                    vault: v.name.clone(),
                });
            }
            vaults.push(plan_vault(v, &principals)?);
        }
        Ok(Plan { principals, vaults })
    }
}

/// A resolved fixture.
struct Plan<'a> {
    principals: BTreeMap<String, Principal>,
    vaults: Vec<VaultPlan<'a>>,
}

/// A resolved vault: the spec with its vault-wide grants, its objects and object-scoped grants.
struct VaultPlan<'a> {
    name: &'a str,
    /// Seeding calls address the vault by host, which is unique across clouds.
    host: String,
    spec: VaultSpec,
    objects: ObjectsPlan<'a>,
    scoped_grants: Vec<ScopedGrant<'a>>,
}

struct ScopedGrant<'a> {
    principal: Principal,
    permissions: Permissions,
    kind: ObjectKind,
    object: &'a str,
}

#[derive(Default)]
struct ObjectsPlan<'a> {
    secrets: Vec<(&'a str, Vec<SecretSpec>)>,
    certificates: Vec<CertificatePlan<'a>>,
    keys: Vec<(&'a str, KeySpec)>,
}

struct CertificatePlan<'a> {
    name: &'a str,
    source: CertificateSource<'a>,
    exportable: bool,
    tags: &'a BTreeMap<String, String>,
}

enum CertificateSource<'a> {
    Generate {
        chain: &'a GeneratedChain,
        validity: (Option<u64>, Option<u64>),
        format: CertificateFormat,
    },
    Openssl(OpensslFile),
}

impl<'a> ObjectsPlan<'a> {
    fn seed(self, kv: &KeyVaultFake, vault: &str, host: &str) -> Result<(), FixtureError> {
        for (name, versions) in self.secrets {
            for spec in versions {
                kv.set_secret(host, name, spec)
                    .map_err(|source| FixtureError::SetSecret {
                        vault: vault.to_owned(),
                        secret: name.to_owned(),
                        source,
                    })?;
            }
        }
        for c in self.certificates {
            let spec = match c.source {
                CertificateSource::Generate {
                    chain,
                    validity,
                    format,
                } => {
                    let generated = generate_chain(kv, chain, validity).map_err(|source| {
                        FixtureError::GenerateCertificate {
                            vault: vault.to_owned(),
                            certificate: c.name.to_owned(),
                            source,
                        }
                    })?;
                    CertificateSpec::from_chain(&generated, format)
                }
                CertificateSource::Openssl(OpensslFile::LegacyPfx) => {
                    CertificateSpec::from_pfx(openssl::LEGACY_PFX)
                }
                CertificateSource::Openssl(OpensslFile::ModernPfx) => {
                    CertificateSpec::from_pfx(openssl::MODERN_PFX)
                }
                CertificateSource::Openssl(OpensslFile::ChainPem) => {
                    CertificateSpec::from_pem(openssl::CHAIN_PEM)
                }
            };
            let spec = c
                .tags
                .iter()
                .fold(spec.exportable(c.exportable), |s, (k, v)| s.tag(k, v));
            kv.import_certificate(host, c.name, spec)
                .map_err(|source| FixtureError::ImportCertificate {
                    vault: vault.to_owned(),
                    certificate: c.name.to_owned(),
                    source,
                })?;
        }
        for (name, spec) in self.keys {
            kv.create_key(host, name, spec)
                .map_err(|source| FixtureError::CreateKey {
                    vault: vault.to_owned(),
                    key: name.to_owned(),
                    source,
                })?;
        }
        Ok(())
    }
}

fn generate_chain(
    kv: &KeyVaultFake,
    chain: &GeneratedChain,
    validity: (Option<u64>, Option<u64>),
) -> Result<CertChain, CertError> {
    let mut builder =
        CertChain::builder(chain.key.key_kind()).dns_names(chain.dns_names.iter().cloned());
    if let Some(cn) = &chain.common_name {
        builder = builder.common_name(cn);
    }
    if validity != (None, None) {
        // The certificate factory's defaults, measured on the fake's clock.
        let now = kv.clock().unix_seconds();
        let not_before = validity.0.unwrap_or(now.saturating_sub(3600));
        let expires = validity.1.unwrap_or(now + 365 * 24 * 3600);
        builder = builder.validity(at(not_before), at(expires));
    }
    builder.build()
}

fn at(unix_seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds)
}

fn plan_vault<'a>(
    v: &'a VaultEntry,
    principals: &BTreeMap<String, Principal>,
) -> Result<VaultPlan<'a>, FixtureError> {
    let vault = || v.name.clone();
    let cloud = match &v.cloud {
        None => Cloud::PUBLIC,
        Some(name) => Cloud::by_name(name).ok_or_else(|| FixtureError::UnknownCloud {
            vault: vault(),
            cloud: name.clone(),
        })?,
    };
    let mut spec = VaultSpec::new(&v.name).cloud(cloud);
    if let Some(t) = &v.tenant_id {
        spec = spec.tenant(t);
    }
    if let Some(l) = &v.location {
        spec = spec.location(l);
    }
    let lookup = |field: &'static str, name: &str| {
        principals
            .get(name)
            .ok_or_else(|| FixtureError::UnknownPrincipal {
                vault: vault(),
                field,
                principal: name.to_owned(),
            })
    };

    let objects = plan_objects(v)?;
    let mut scoped_grants = Vec::new();
    match v.authorization {
        Authorization::AccessPolicies => {
            if !v.role_assignments.is_empty() {
                return Err(FixtureError::RoleAssignmentsWithoutRbac { vault: vault() });
            }
            for ap in &v.access_policies {
                spec = spec.grant(
                    lookup("accessPolicies", &ap.principal)?,
                    (&ap.permissions).into(),
                );
            }
        }
        Authorization::Rbac => {
            if !v.access_policies.is_empty() {
                return Err(FixtureError::AccessPoliciesInRbacVault { vault: vault() });
            }
            spec = spec.authorization(AuthorizationModel::Rbac);
            for ra in &v.role_assignments {
                let principal = lookup("roleAssignments", &ra.principal)?;
                let permissions =
                    Permissions::for_role(&ra.role).ok_or_else(|| FixtureError::UnknownRole {
                        vault: vault(),
                        role: ra.role.clone(),
                    })?;
                match &ra.scope {
                    None => spec = spec.grant(principal, permissions),
                    Some(scope) => {
                        let (kind, object) = parse_scope(scope, &objects).map_err(|reason| {
                            FixtureError::InvalidScope {
                                vault: vault(),
                                scope: scope.clone(),
                                reason,
                            }
                        })?;
                        scoped_grants.push(ScopedGrant {
                            principal: principal.clone(),
                            permissions,
                            kind,
                            object,
                        });
                    }
                }
            }
        }
    }
    Ok(VaultPlan {
        name: &v.name,
        host: cloud.vault_host(&v.name),
        spec,
        objects,
        scoped_grants,
    })
}

/// `secrets/<name>` etc. naming an object of the fixture's vault. A certificate's secret and
/// key count, as in Key Vault.
fn parse_scope<'a>(
    scope: &'a str,
    objects: &ObjectsPlan<'_>,
) -> Result<(ObjectKind, &'a str), &'static str> {
    const SHAPE: &str = "is not an object scope: write secrets/<name>, certificates/<name> or keys/<name>, \
                         or leave `scope` out for the whole vault";
    let (collection, name) = scope.split_once('/').ok_or(SHAPE)?;
    let kind = match collection {
        "secrets" => ObjectKind::Secret,
        "certificates" => ObjectKind::Certificate,
        "keys" => ObjectKind::Key,
        _ => return Err(SHAPE),
    };
    if !valid_object_name(name) {
        return Err(SHAPE);
    }
    let is = |n: &str| n.eq_ignore_ascii_case(name);
    let cert = objects.certificates.iter().any(|c| is(c.name));
    let exists = match kind {
        ObjectKind::Secret => cert || objects.secrets.iter().any(|(n, _)| is(n)),
        ObjectKind::Certificate => cert,
        ObjectKind::Key => cert || objects.keys.iter().any(|(n, _)| is(n)),
    };
    if exists {
        Ok((kind, name))
    } else {
        Err("names no object of this vault: declare the object in the same vault, or fix the name")
    }
}

fn plan_objects(v: &VaultEntry) -> Result<ObjectsPlan<'_>, FixtureError> {
    // Lower-cased names taken per collection; a certificate takes all three.
    let mut taken: BTreeSet<(ObjectKind, String)> = BTreeSet::new();
    let mut claim = |kind: ObjectKind, name: &str, also: &[ObjectKind]| {
        if !valid_object_name(name) {
            return Err(FixtureError::InvalidObjectName {
                vault: v.name.clone(),
                kind,
                object: name.to_owned(),
            });
        }
        let lower = name.to_ascii_lowercase();
        for k in std::iter::once(kind).chain(also.iter().copied()) {
            if !taken.insert((k, lower.clone())) {
                return Err(FixtureError::DuplicateObject {
                    vault: v.name.clone(),
                    kind,
                    object: name.to_owned(),
                });
            }
        }
        Ok(())
    };
    for c in &v.certificates {
        claim(
            ObjectKind::Certificate,
            &c.name,
            &[ObjectKind::Secret, ObjectKind::Key],
        )?;
    }
    for s in &v.secrets {
        claim(ObjectKind::Secret, &s.name, &[])?;
    }
    for k in &v.keys {
        claim(ObjectKind::Key, &k.name, &[])?;
    }

    let mut plan = ObjectsPlan::default();
    for s in &v.secrets {
        plan.secrets.push((&s.name, secret_versions(&v.name, s)?));
    }
    for c in &v.certificates {
        plan.certificates.push(certificate_plan(&v.name, c)?);
    }
    plan.keys = v
        .keys
        .iter()
        .map(|k| (k.name.as_str(), k.kty.key_spec()))
        .collect();
    Ok(plan)
}

fn secret_versions(vault: &str, s: &SecretEntry) -> Result<Vec<SecretSpec>, FixtureError> {
    let ids = || (vault.to_owned(), s.name.clone());
    // One version is the entry itself; several inherit the entry's attributes.
    let versions: Vec<(&SecretValue, Option<&SecretVersionEntry>)> = match (&s.value, &s.versions) {
        (Some(_), Some(_)) => {
            let (vault, secret) = ids();
            return Err(FixtureError::SecretValueAndVersions { vault, secret });
        }
        (Some(value), None) => vec![(value, None)],
        (None, Some(list)) if !list.is_empty() => {
            list.iter().map(|e| (&e.value, Some(e))).collect()
        }
        (None, _) => {
            let (vault, secret) = ids();
            return Err(FixtureError::SecretWithoutValue { vault, secret });
        }
    };
    versions
        .into_iter()
        .map(|(value, own)| {
            let content_type = own
                .and_then(|o| o.content_type.as_ref())
                .or(s.content_type.as_ref());
            let enabled = own.and_then(|o| o.enabled).or(s.enabled).unwrap_or(true);
            let not_before = own
                .and_then(|o| o.not_before.as_deref())
                .or(s.not_before.as_deref());
            let expires = own
                .and_then(|o| o.expires.as_deref())
                .or(s.expires.as_deref());
            let (not_before, expires) = parse_validity(vault, &s.name, not_before, expires)?;
            let mut spec = SecretSpec::new(value.expose()).enabled(enabled);
            if let Some(ct) = content_type {
                spec = spec.content_type(ct);
            }
            if let Some(t) = not_before {
                spec = spec.not_before(at(t));
            }
            if let Some(t) = expires {
                spec = spec.expires(at(t));
            }
            let own_tags = own.map(|o| &o.tags).into_iter().flatten();
            let tags: BTreeMap<&String, &String> = s.tags.iter().chain(own_tags).collect();
            Ok(tags.into_iter().fold(spec, |spec, (k, v)| spec.tag(k, v)))
        })
        .collect()
}

/// Parses `notBefore` and `expires` and checks their order.
fn parse_validity(
    vault: &str,
    object: &str,
    not_before: Option<&str>,
    expires: Option<&str>,
) -> Result<(Option<u64>, Option<u64>), FixtureError> {
    let parse = |field: &'static str, text: Option<&str>| {
        text.map(|t| {
            parse_rfc3339(t).map_err(|reason| FixtureError::InvalidTimestamp {
                vault: vault.to_owned(),
                object: object.to_owned(),
                field,
                value: t.to_owned(),
                reason,
            })
        })
        .transpose()
    };
    let nbf = parse("notBefore", not_before)?;
    let exp = parse("expires", expires)?;
    if let (Some(n), Some(e)) = (nbf, exp)
        && e <= n
    {
        return Err(FixtureError::ExpiresBeforeNotBefore {
            vault: vault.to_owned(),
            object: object.to_owned(),
        });
    }
    Ok((nbf, exp))
}

fn certificate_plan<'a>(
    vault: &str,
    c: &'a CertificateEntry,
) -> Result<CertificatePlan<'a>, FixtureError> {
    let invalid = |reason| FixtureError::InvalidCertificate {
        vault: vault.to_owned(),
        certificate: c.name.clone(),
        reason,
    };
    let source = match (&c.generate, c.openssl) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "has both `generate` and `openssl`: give exactly one",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "has neither `generate` nor `openssl`: give exactly one",
            ));
        }
        (None, Some(file)) => {
            if c.format.is_some() || c.pem_order.is_some() {
                return Err(invalid(
                    "sets `format` or `pemOrder` with `openssl`: an openssl file is stored as it is, so remove them",
                ));
            }
            CertificateSource::Openssl(file)
        }
        (Some(chain), None) => {
            let format = match (c.format.unwrap_or_default(), &c.pem_order) {
                (StoredFormat::Pem, None) => {
                    CertificateFormat::Pem(PemPart::KEY_VAULT_ORDER.to_vec())
                }
                (StoredFormat::Pem, Some(order)) if order.is_empty() => {
                    return Err(invalid(
                        "has an empty `pemOrder`: list some of key, leaf, intermediate, root",
                    ));
                }
                (StoredFormat::Pem, Some(order)) => {
                    CertificateFormat::Pem(order.iter().map(|&b| b.into()).collect())
                }
                (_, Some(_)) => {
                    return Err(invalid(
                        "sets `pemOrder` without `format: pem`: add it or remove `pemOrder`",
                    ));
                }
                (StoredFormat::Pfx, None) => CertificateFormat::Pfx(PfxEncryption::Modern),
                (StoredFormat::PfxLegacy3Des, None) => {
                    CertificateFormat::Pfx(PfxEncryption::Legacy3Des)
                }
                (StoredFormat::PfxLegacyRc2, None) => {
                    CertificateFormat::Pfx(PfxEncryption::LegacyRc2)
                }
            };
            let validity = parse_validity(
                vault,
                &c.name,
                chain.not_before.as_deref(),
                chain.expires.as_deref(),
            )?;
            CertificateSource::Generate {
                chain,
                validity,
                format,
            }
        }
    };
    Ok(CertificatePlan {
        name: &c.name,
        source,
        exportable: c.exportable.unwrap_or(true),
        tags: &c.tags,
    })
}

/// Unix seconds of an RFC 3339 date-time `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (fractions
/// are dropped, as Key Vault keeps seconds).
fn parse_rfc3339(s: &str) -> Result<u64, &'static str> {
    const SHAPE: &str = "not of the form YYYY-MM-DDTHH:MM:SSZ";
    let digits = |from: usize, len: usize| -> Result<i64, &'static str> {
        let part = s.get(from..from + len).ok_or(SHAPE)?;
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SHAPE);
        }
        part.parse().map_err(|_| SHAPE)
    };
    let sep = |at: usize, allowed: &[u8]| match s.as_bytes().get(at) {
        Some(b) if allowed.contains(b) => Ok(()),
        _ => Err(SHAPE),
    };
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt")?;
    sep(13, b":")?;
    sep(16, b":")?;
    let mut rest = s.get(19..).ok_or(SHAPE)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        rest = frac.get(n..).filter(|_| n > 0).ok_or(SHAPE)?;
    }
    let zone = s.len() - rest.len();
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (digits(zone + 1, 2)?, digits(zone + 4, 2)?);
            if h > 23 || m > 59 {
                return Err("an offset out of range");
            }
            if *sign == b'+' {
                h * 3600 + m * 60
            } else {
                -(h * 3600 + m * 60)
            }
        }
        _ => return Err(SHAPE),
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return Err("a month out of range"),
    };
    if !(1..=month_days).contains(&day) {
        return Err("a day out of range for its month");
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err("a time of day out of range (leap seconds are not accepted)");
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).map_err(|_| "before 1970")
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../examples/vault-fixture.yaml");
    const API: &str = "api-version=2025-07-01";

    async fn fake() -> KeyVaultFake {
        crate::install_crypto_provider();
        KeyVaultFake::start(Default::default())
            .await
            .expect("start the Key Vault fake")
    }

    fn http(kv: &KeyVaultFake) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(kv.ca_pem().as_bytes()).expect("CA PEM");
        let mut b = reqwest::Client::builder().tls_certs_only([ca]);
        for (host, addr) in kv.resolve_overrides() {
            b = b.resolve(&host, addr);
        }
        b.build().expect("reqwest client")
    }

    /// `GET https://<vault>.vault.azure.net/<path>` as `principal`: status and JSON body.
    async fn get(
        kv: &KeyVaultFake,
        vault: &str,
        principal: &Principal,
        path: &str,
    ) -> (u16, serde_json::Value) {
        let token = kv.token_for(vault, principal).expect("token");
        let url = format!("https://{vault}.vault.azure.net/{path}?{API}");
        let resp = http(kv)
            .get(url)
            .bearer_auth(token.as_str())
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.expect("JSON body"))
    }

    /// The error and its causes, as `anyhow`'s `{:#}` prints them.
    fn chain(e: &FixtureError) -> String {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    }

    fn parse_err(yaml: &str) -> FixtureError {
        Fixture::from_yaml(yaml).expect_err("the fixture is invalid")
    }

    #[tokio::test]
    async fn example_fixture_seeds_the_demo_vault() {
        let kv = fake().await;
        let fixture = Fixture::from_yaml(EXAMPLE).expect("example parses");
        let applied = fixture.apply(&kv).expect("example applies");

        let vault = "akv2k8s-demo";
        assert_eq!(
            kv.vault_url(vault).expect("vault exists"),
            "https://akv2k8s-demo.vault.azure.net/"
        );
        assert_eq!(
            applied.vault_url(vault),
            Some("https://akv2k8s-demo.vault.azure.net/")
        );
        for (kind, name, versions) in [
            (ObjectKind::Secret, "db-password", 2),
            (ObjectKind::Secret, "app-settings", 1),
            (ObjectKind::Secret, "registry-basic-auth", 1),
            (ObjectKind::Certificate, "web-tls", 1),
            (ObjectKind::Secret, "web-tls", 1),
            (ObjectKind::Certificate, "api-tls-ec", 1),
            (ObjectKind::Key, "signing-key", 1),
        ] {
            let ids = kv
                .versions(vault, kind, name)
                .unwrap_or_else(|e| panic!("{kind:?} {name}: {e}"));
            assert_eq!(ids.len(), versions, "{kind:?} {name}");
        }
        let controller = applied
            .principal("controller")
            .expect("controller is declared");
        assert_eq!(controller, &Principal::new("controller"));
        assert!(applied.principal("nobody").is_none());
    }

    #[tokio::test]
    async fn example_fixture_lets_the_controller_read_every_object() {
        let kv = fake().await;
        let applied = Fixture::from_yaml(EXAMPLE)
            .expect("parses")
            .apply(&kv)
            .expect("applies");
        let controller = applied.principal("controller").expect("declared");
        let vault = "akv2k8s-demo";

        let (status, secret) = get(&kv, vault, controller, "secrets/registry-basic-auth").await;
        assert_eq!(status, 200);
        assert_eq!(secret["value"], "demo-user:demo-p4ss");
        let (_, settings) = get(&kv, vault, controller, "secrets/app-settings").await;
        let json: serde_json::Value =
            serde_json::from_str(settings["value"].as_str().expect("string value"))
                .expect("value is JSON");
        assert!(
            json.as_object().is_some_and(|o| o.len() > 1),
            "multi-key JSON: {json}"
        );
        let (_, pfx) = get(&kv, vault, controller, "secrets/web-tls").await;
        assert_eq!(pfx["contentType"], "application/x-pkcs12");
        let (_, pem) = get(&kv, vault, controller, "secrets/api-tls-ec").await;
        assert_eq!(pem["contentType"], "application/x-pem-file");
        assert!(
            pem["value"]
                .as_str()
                .is_some_and(|v| v.starts_with("-----BEGIN PRIVATE KEY-----"))
        );
        let (status, key) = get(&kv, vault, controller, "keys/signing-key").await;
        assert_eq!((status, key["key"]["kty"].as_str()), (200, Some("RSA")));
    }

    #[tokio::test]
    async fn object_scoped_role_assignment_grants_that_object_only() {
        let kv = fake().await;
        let fixture = Fixture::from_yaml(
            r#"
principals:
  - name: app
vaults:
  - name: rbacvault
    authorization: rbac
    roleAssignments:
      - principal: app
        role: Key Vault Secrets User
        scope: secrets/db-pass
    secrets:
      - name: db-pass
        value: one
      - name: other
        value: two
"#,
        )
        .expect("parses");
        let applied = fixture.apply(&kv).expect("applies");
        let app = applied.principal("app").expect("declared");

        let (status, body) = get(&kv, "rbacvault", app, "secrets/db-pass").await;
        assert_eq!((status, body["value"].as_str()), (200, Some("one")));
        let (status, body) = get(&kv, "rbacvault", app, "secrets/other").await;
        assert_eq!(status, 403);
        assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");
    }

    #[tokio::test]
    async fn secret_versions_are_seeded_oldest_first_with_inherited_attributes() {
        let kv = fake().await;
        let fixture = Fixture::from_yaml(
            r#"
principals: [{name: app}]
vaults:
  - name: v-versions
    accessPolicies: [{principal: app, permissions: {secrets: [get]}}]
    secrets:
      - name: rotated
        contentType: text/plain
        tags: {team: a}
        versions:
          - value: first
            expires: 2031-01-01T00:00:00Z
          - value: second
            notBefore: "2030-06-01T02:00:00+02:00"
            tags: {rotation: "2"}
"#,
        )
        .expect("parses");
        let applied = fixture.apply(&kv).expect("applies");
        let app = applied.principal("app").expect("declared");
        assert_eq!(
            kv.versions("v-versions", ObjectKind::Secret, "rotated")
                .expect("exists")
                .len(),
            2
        );
        let (_, latest) = get(&kv, "v-versions", app, "secrets/rotated").await;
        assert_eq!(latest["value"], "second");
        assert_eq!(latest["contentType"], "text/plain");
        assert_eq!(latest["attributes"]["nbf"], 1_906_502_400);
        assert_eq!(
            latest["tags"],
            serde_json::json!({"team": "a", "rotation": "2"})
        );
    }

    #[tokio::test]
    async fn openssl_certificates_and_tenants_are_applied() {
        let kv = fake().await;
        let fixture = Fixture::from_yaml(
            r#"
principals:
  - {name: gov-app, tenantId: 11111111-2222-3333-4444-555555555555, objectId: my-oid}
vaults:
  - name: govvault
    cloud: AzureUSGovernmentCloud
    tenantId: 11111111-2222-3333-4444-555555555555
    accessPolicies: [{principal: gov-app, permissions: {certificates: [get]}}]
    certificates:
      - {name: legacy, openssl: legacy-pfx, exportable: false}
      - {name: chain, openssl: chain-pem, tags: {source: openssl}}
"#,
        )
        .expect("parses");
        let applied = fixture.apply(&kv).expect("applies");
        assert_eq!(
            applied.vault_url("govvault"),
            Some("https://govvault.vault.usgovcloudapi.net/")
        );
        let app = applied.principal("gov-app").expect("declared");
        assert_eq!(app.object_id, "my-oid");
        assert_eq!(app.app_id, Principal::new("gov-app").app_id);
        for name in ["legacy", "chain"] {
            assert_eq!(
                kv.versions("govvault", ObjectKind::Certificate, name)
                    .expect("exists")
                    .len(),
                1
            );
        }
    }

    #[tokio::test]
    async fn applying_to_a_fake_that_has_the_vault_fails_naming_it() {
        let kv = fake().await;
        let fixture = Fixture::from_yaml("vaults: [{name: twice}]").expect("parses");
        fixture.apply(&kv).expect("first apply");
        let err = fixture.apply(&kv).expect_err("the vault exists");
        assert!(
            matches!(&err, FixtureError::CreateVault { vault, .. } if vault == "twice"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_field_is_an_error_naming_it() {
        let err =
            parse_err("vaults:\n  - name: v1\n    secrets:\n      - name: s\n        valeu: x\n");
        let FixtureError::Parse { source, .. } = &err else {
            panic!("not a parse error: {err:?}")
        };
        assert_eq!(source.location().map(|(line, _)| line), Some(5));
        let text = chain(&err);
        assert!(text.contains("valeu"), "{text}");
        assert!(
            text.contains("fixture text is not a valid fixture"),
            "{text}"
        );
    }

    #[test]
    fn unknown_principal_is_an_error() {
        let err = parse_err(
            "principals: [{name: app}]\nvaults:\n  - name: v1\n    accessPolicies:\n      - principal: ap\n        permissions: {secrets: [get]}\n",
        );
        assert!(
            matches!(&err, FixtureError::UnknownPrincipal { vault, principal, field: "accessPolicies" } if vault == "v1" && principal == "ap"),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .contains("add `- name: ap` under `principals:`"),
            "{err}"
        );
    }

    #[test]
    fn invalid_fixtures_are_refused_before_touching_a_fake() {
        let cases: &[(&str, &str)] = &[
            ("principals: [{name: a}, {name: a}]", "declared twice"),
            (
                "vaults: [{name: v1}, {name: V1}]",
                "vault \"V1\" is declared twice",
            ),
            (
                "vaults: [{name: v1, cloud: Mars}]",
                "unknown cloud \"Mars\"",
            ),
            (
                "principals: [{name: a}]\nvaults: [{name: v1, authorization: rbac, roleAssignments: [{principal: a, role: Owner}]}]",
                "unknown role \"Owner\"",
            ),
            (
                "principals: [{name: a}]\nvaults: [{name: v1, roleAssignments: [{principal: a, role: Key Vault Reader}]}]",
                "set `authorization: rbac`",
            ),
            (
                "principals: [{name: a}]\nvaults: [{name: v1, authorization: rbac, accessPolicies: [{principal: a, permissions: {}}]}]",
                "move the grants to `roleAssignments`",
            ),
            (
                "principals: [{name: a}]\nvaults: [{name: v1, authorization: rbac, roleAssignments: [{principal: a, role: Key Vault Reader, scope: vault}]}]",
                "is not an object scope",
            ),
            (
                "principals: [{name: a}]\nvaults: [{name: v1, authorization: rbac, roleAssignments: [{principal: a, role: Key Vault Reader, scope: secrets/missing}]}]",
                "names no object of this vault",
            ),
            (
                "principals: [{name: a}]\nvaults: [{name: v1, authorization: rbac, roleAssignments: [{principal: a, role: Key Vault Reader, scope: blobs/x}]}]",
                "is not an object scope",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: s, value: x, versions: [{value: y}]}]}]",
                "both `value` and `versions`",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: s}]}]",
                "secret \"s\" has no value",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: s, versions: []}]}]",
                "secret \"s\" has no value",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: s, value: x}, {name: S, value: y}]}]",
                "declared twice",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: c, value: x}], certificates: [{name: c, openssl: chain-pem}]}]",
                "secret \"c\" is declared twice",
            ),
            (
                "vaults: [{name: v1, keys: [{name: under_score, kty: RSA}]}]",
                "not a valid key name",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: s, value: x, expires: tomorrow}]}]",
                "`expires` of \"s\" is \"tomorrow\"",
            ),
            (
                "vaults: [{name: v1, secrets: [{name: s, value: x, notBefore: 2030-01-02T00:00:00Z, expires: 2030-01-01T00:00:00Z}]}]",
                "expires before it becomes valid",
            ),
            (
                "vaults: [{name: v1, certificates: [{name: c}]}]",
                "neither `generate` nor `openssl`",
            ),
            (
                "vaults: [{name: v1, certificates: [{name: c, openssl: legacy-pfx, generate: {key: rsa}}]}]",
                "both `generate` and `openssl`",
            ),
            (
                "vaults: [{name: v1, certificates: [{name: c, openssl: legacy-pfx, format: pem}]}]",
                "an openssl file is stored as it is",
            ),
            (
                "vaults: [{name: v1, certificates: [{name: c, generate: {key: rsa}, pemOrder: [leaf]}]}]",
                "without `format: pem`",
            ),
            (
                "vaults: [{name: v1, certificates: [{name: c, generate: {key: rsa}, format: pem, pemOrder: []}]}]",
                "empty `pemOrder`",
            ),
        ];
        for (yaml, expected) in cases {
            let err = parse_err(yaml);
            assert!(err.to_string().contains(expected), "{yaml}\n=> {err}");
        }
    }

    #[test]
    fn unknown_enum_values_are_parse_errors_naming_the_choices() {
        for (yaml, expected) in [
            ("vaults: [{name: v1, authorization: iam}]", "rbac"),
            (
                "vaults: [{name: v1, keys: [{name: k, kty: DSA}]}]",
                "EC-P256",
            ),
            (
                "vaults: [{name: v1, certificates: [{name: c, openssl: old-pfx}]}]",
                "legacy-pfx",
            ),
            (
                "vaults: [{name: v1, accessPolicies: [{principal: a, permissions: {secrets: [delete]}}]}]",
                "list",
            ),
            (
                "vaults: [{name: v1, accessPolicies: [{principal: a, permissions: {secret: [get]}}]}]",
                "secret",
            ),
        ] {
            let err = parse_err(yaml);
            assert!(matches!(err, FixtureError::Parse { .. }), "{yaml}: {err:?}");
            assert!(chain(&err).contains(expected), "{yaml}\n=> {}", chain(&err));
        }
    }

    #[test]
    fn debug_output_and_errors_omit_secret_values() {
        let yaml = "vaults:\n  - name: v1\n    secrets:\n      - name: s\n        value: hunter2-single\n      - name: t\n        versions:\n          - value: hunter2-versioned\n";
        let fixture = Fixture::from_yaml(yaml).expect("parses");
        let debug = format!(
            "{fixture:?} {:?} {:?}",
            fixture.vaults[0].secrets, fixture.vaults[0].secrets[1].versions
        );
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("SecretEntry"), "{debug}");
        assert_eq!(
            fixture.vaults[0].secrets[0]
                .value
                .as_ref()
                .map(SecretValue::expose),
            Some("hunter2-single")
        );

        // A YAML error right after a secret value: no snippet of the source.
        let err = parse_err(
            "vaults:\n  - name: v1\n    secrets:\n      - name: s\n        value: hunter2-near\n        tpyo: 1\n",
        );
        let shown = format!("{} {err:?}", chain(&err));
        assert!(
            shown.contains("tpyo") && !shown.contains("hunter2"),
            "{shown}"
        );
    }

    #[test]
    fn file_errors_name_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.yaml");
        let err = Fixture::from_file(&missing).expect_err("no such file");
        assert!(err.to_string().contains("missing.yaml"), "{err}");

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "vault: []\n").expect("write");
        let err = Fixture::from_file(&bad).expect_err("unknown field");
        assert!(
            err.to_string().contains("bad.yaml is not a valid fixture"),
            "{err}"
        );
    }

    #[test]
    fn rfc3339_times_parse_to_unix_seconds() {
        for (text, expected) in [
            ("1970-01-01T00:00:00Z", Ok(0)),
            ("2030-01-31T12:00:00Z", Ok(1_896_091_200)),
            ("2030-01-31t12:00:00z", Ok(1_896_091_200)),
            ("2030-01-31T12:00:00.999Z", Ok(1_896_091_200)),
            ("2030-01-31T13:30:00+01:30", Ok(1_896_091_200)),
            ("2030-01-31T10:00:00-02:00", Ok(1_896_091_200)),
            ("2024-02-29T00:00:00Z", Ok(1_709_164_800)),
            ("2000-03-01T00:00:00Z", Ok(951_868_800)),
            (
                "2023-02-29T00:00:00Z",
                Err("a day out of range for its month"),
            ),
            ("2030-13-01T00:00:00Z", Err("a month out of range")),
            (
                "2030-01-01T24:00:00Z",
                Err("a time of day out of range (leap seconds are not accepted)"),
            ),
            ("1969-12-31T23:59:59Z", Err("before 1970")),
            ("2030-01-01", Err("not of the form YYYY-MM-DDTHH:MM:SSZ")),
            (
                "2030-01-01T00:00:00",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "2030-01-01T00:00:00.Z",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "2030-01-01T00:00:00+0100",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "+030-01-01T00:00:00Z",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            (
                "2030-01-01T00:00:00Zé",
                Err("not of the form YYYY-MM-DDTHH:MM:SSZ"),
            ),
            ("1700000000", Err("not of the form YYYY-MM-DDTHH:MM:SSZ")),
        ] {
            assert_eq!(parse_rfc3339(text), expected, "{text}");
        }
    }
}
