//! The object model: vault URLs, object references, and the objects Key Vault returns.

use std::fmt;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::key::JsonWebKey;
use crate::secret::SecretValue;

/// Key Vault DNS suffix of the public cloud.
pub const PUBLIC_CLOUD_DNS_SUFFIX: &str = "vault.azure.net";

/// A vault's base URL, normalised to `https://host/` (lower-case host, trailing slash).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VaultUrl(String);

impl VaultUrl {
    /// `https://<name>.<dns_suffix>/`; an empty suffix means the public cloud's
    /// (`vault.azure.net`), as upstream.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for an empty or malformed vault name.
    pub fn from_name(name: &str, dns_suffix: &str) -> Result<Self> {
        validate_name(name)?;
        let suffix = dns_suffix.trim_matches('.');
        let suffix = if suffix.is_empty() {
            PUBLIC_CLOUD_DNS_SUFFIX
        } else {
            suffix
        };
        Self::parse(&format!("https://{name}.{suffix}/"))
    }

    /// From an endpoint template such as `https://{vault}.vault.example.net/`, where `{vault}`
    /// is replaced by the vault name.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the template lacks `{vault}` or the result is no URL.
    pub fn from_template(template: &str, name: &str) -> Result<Self> {
        validate_name(name)?;
        if !template.contains("{vault}") {
            return Err(Error::InvalidConfig {
                field: "vault endpoint template",
                reason: "must contain {vault}".into(),
            });
        }
        Self::parse(&template.replace("{vault}", name))
    }

    /// Parses a vault URL (`https://myvault.vault.azure.net`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for anything but an absolute `https` URL with a host.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidConfig {
            field: "vault url",
            reason: reason.to_owned(),
        };
        let parsed = azure_core::http::Url::parse(url).map_err(|_| invalid("not a URL"))?;
        if parsed.scheme() != "https" {
            return Err(invalid("Key Vault requires https"));
        }
        let host = parsed.host_str().ok_or_else(|| invalid("no host"))?;
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        Ok(Self(format!(
            "https://{}{port}/",
            host.to_ascii_lowercase()
        )))
    }

    /// The URL, with a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The host (`myvault.vault.azure.net`).
    pub fn host(&self) -> &str {
        self.0.trim_start_matches("https://").trim_end_matches('/')
    }
}

impl fmt::Display for VaultUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 24
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidConfig {
            field: "vault name",
            reason: format!("'{name}' is not a Key Vault name (1-24 letters, digits and dashes)"),
        })
    }
}

/// Which identity reads a vault: the key of the credential a [`crate::KeyVaultProvider`]
/// uses. Opaque to this crate (e.g. `default`, or `<namespace>/<AzureKeyVaultIdentity>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityRef(pub String);

impl IdentityRef {
    /// The controller's or launcher's own identity.
    pub fn default_identity() -> Self {
        Self("default".into())
    }
}

/// Key Vault's object kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ObjectKind {
    /// `/secrets`.
    Secret,
    /// `/certificates`.
    Certificate,
    /// `/keys`.
    Key,
}

impl ObjectKind {
    /// `secret`, `certificate` or `key` (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secret",
            ObjectKind::Certificate => "certificate",
            ObjectKind::Key => "key",
        }
    }
}

/// One object (latest version when `version` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// The vault.
    pub vault: VaultUrl,
    /// The kind.
    pub kind: ObjectKind,
    /// The object name.
    pub name: String,
    /// A version id, or `None` for the latest.
    pub version: Option<String>,
}

impl ObjectRef {
    /// A reference to the latest version.
    pub fn latest(vault: &VaultUrl, kind: ObjectKind, name: &str) -> Self {
        Self {
            vault: vault.clone(),
            kind,
            name: name.to_owned(),
            version: None,
        }
    }

    /// The same reference pinned to `version` (`None` or empty = latest).
    #[must_use]
    pub fn at(mut self, version: Option<&str>) -> Self {
        self.version = version.filter(|v| !v.is_empty()).map(str::to_owned);
        self
    }
}

/// Object metadata without values, for change detection by version id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Kind.
    pub kind: ObjectKind,
    /// Name.
    pub name: String,
    /// Current version id, when Key Vault reports it.
    pub version: Option<String>,
    /// Whether the object is enabled.
    pub enabled: Option<bool>,
    /// Last update time.
    pub updated: Option<SystemTime>,
    /// Content type (secrets).
    pub content_type: Option<String>,
}

/// A secret as read from Key Vault.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretObject {
    /// Name.
    pub name: String,
    /// Version id.
    pub version: String,
    /// Content type (`application/x-pkcs12` for certificate-backed secrets…).
    pub content_type: Option<String>,
    /// The value.
    pub value: SecretValue,
    /// Expiry (advisory: Key Vault returns expired secrets).
    pub expires: Option<SystemTime>,
}

impl fmt::Debug for SecretObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretObject")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

/// A certificate as read from Key Vault (public part and policy; the private key lives in
/// the backing secret of the same name and version).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateObject {
    /// Name.
    pub name: String,
    /// Version id.
    pub version: String,
    /// DER of the leaf certificate.
    pub cer: Vec<u8>,
    /// `policy.key_props.exportable`.
    pub exportable: Option<bool>,
    /// `policy.secret_props.contentType` of the backing secret.
    pub secret_content_type: Option<String>,
}

/// A key as read from Key Vault (public JWK only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyObject {
    /// Name.
    pub name: String,
    /// Version id.
    pub version: String,
    /// The public key.
    pub jwk: JsonWebKey,
}

/// Any object read from Key Vault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultObject {
    /// A secret.
    Secret(SecretObject),
    /// A certificate.
    Certificate(CertificateObject),
    /// A key.
    Key(KeyObject),
}

impl VaultObject {
    /// The version id.
    pub fn version(&self) -> &str {
        match self {
            VaultObject::Secret(s) => &s.version,
            VaultObject::Certificate(c) => &c.version,
            VaultObject::Key(k) => &k.version,
        }
    }

    /// The kind.
    pub fn kind(&self) -> ObjectKind {
        match self {
            VaultObject::Secret(_) => ObjectKind::Secret,
            VaultObject::Certificate(_) => ObjectKind::Certificate,
            VaultObject::Key(_) => ObjectKind::Key,
        }
    }
}

/// The last path segment of a Key Vault object id (`https://v/secrets/name/<version>`).
pub(crate) fn version_from_id(id: Option<&str>) -> String {
    id.and_then(|id| id.trim_end_matches('/').rsplit('/').next())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_urls_from_name_template_and_url_agree() {
        let a = VaultUrl::from_name("MyVault", "").expect("name");
        assert_eq!(a.as_str(), "https://myvault.vault.azure.net/");
        let b = VaultUrl::from_name("myvault", "vault.azure.cn").expect("china");
        assert_eq!(b.host(), "myvault.vault.azure.cn");
        let c = VaultUrl::from_template("https://{vault}.vault.azure.net", "myvault")
            .expect("template");
        assert_eq!(a, c);
        assert!(VaultUrl::parse("http://myvault.vault.azure.net").is_err());
        assert!(VaultUrl::from_name("", "").is_err());
        assert!(VaultUrl::from_name("bad/name", "").is_err());
        assert!(VaultUrl::from_template("https://vault.example", "x").is_err());
    }

    #[test]
    fn version_is_the_last_id_segment() {
        assert_eq!(
            version_from_id(Some("https://v.vault.azure.net/secrets/a/abc123")),
            "abc123"
        );
        assert_eq!(version_from_id(None), "");
    }

    #[test]
    fn secret_object_debug_omits_the_value() {
        let s = SecretObject {
            name: "db".into(),
            version: "v1".into(),
            content_type: None,
            value: SecretValue::from("hunter2"),
            expires: None,
        };
        let dbg = format!("{s:?} {:?}", VaultObject::Secret(s.clone()));
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(dbg.contains("db"));
    }
}
