//! What one vault holds: versioned secrets, certificates and keys, and how Key Vault renders
//! them as JSON bundles.
//!
//! A certificate is three objects with one name and one version, as in Key Vault: the
//! certificate (`cer`, `x5t`, `policy`), a managed key (`kid`) and a managed secret (`sid`)
//! whose value is the PFX (base64) or PEM the certificate was imported as.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use super::access::Grant;
use crate::cloud::Cloud;

/// The three kinds of Key Vault objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKind {
    /// `/secrets`
    Secret,
    /// `/certificates`
    Certificate,
    /// `/keys`
    Key,
}

impl ObjectKind {
    /// The collection segment in URLs (`secrets`).
    pub fn collection(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secrets",
            ObjectKind::Certificate => "certificates",
            ObjectKind::Key => "keys",
        }
    }

    /// The noun in Key Vault's messages (`secret`).
    pub fn noun(self) -> &'static str {
        match self {
            ObjectKind::Secret => "secret",
            ObjectKind::Certificate => "certificate",
            ObjectKind::Key => "key",
        }
    }
}

/// Attributes common to every object version (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// `enabled`.
    pub enabled: bool,
    /// `nbf`.
    pub not_before: Option<u64>,
    /// `exp`.
    pub expires: Option<u64>,
    /// `created`.
    pub created: u64,
    /// `updated`.
    pub updated: u64,
}

impl Attributes {
    pub(crate) fn new(now: u64) -> Self {
        Self {
            enabled: true,
            not_before: None,
            expires: None,
            created: now,
            updated: now,
        }
    }

    fn to_json(&self) -> Value {
        let mut a = json!({
            "enabled": self.enabled,
            "created": self.created,
            "updated": self.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": 90,
        });
        if let Some(nbf) = self.not_before {
            a["nbf"] = json!(nbf);
        }
        if let Some(exp) = self.expires {
            a["exp"] = json!(exp);
        }
        a
    }
}

/// One secret version.
#[derive(Clone)]
pub(crate) struct SecretVersion {
    pub version: String,
    pub value: String,
    pub content_type: Option<String>,
    pub attributes: Attributes,
    pub tags: BTreeMap<String, String>,
    /// Set for the secret backing a certificate.
    pub managed: bool,
}

/// A JSON Web Key's public part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicJwk {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
}

/// One key version.
#[derive(Clone)]
pub(crate) struct KeyVersion {
    pub version: String,
    pub jwk: PublicJwk,
    pub key_ops: Vec<String>,
    pub attributes: Attributes,
    pub tags: BTreeMap<String, String>,
    pub managed: bool,
}

/// The policy parts Key Vault reports for a certificate.
#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub exportable: bool,
    pub kty: &'static str,
    pub key_size: u32,
    pub curve: Option<&'static str>,
    pub content_type: &'static str,
    pub subject: String,
    pub dns_names: Vec<String>,
    pub validity_months: u32,
    pub issuer_name: String,
}

/// One certificate version.
#[derive(Clone)]
pub(crate) struct CertVersion {
    pub version: String,
    pub cer: Vec<u8>,
    pub x5t: String,
    pub policy: Policy,
    pub attributes: Attributes,
    pub tags: BTreeMap<String, String>,
}

/// All versions of one object, oldest first, under the name it was created with.
#[derive(Clone)]
pub(crate) struct Versions<T> {
    pub name: String,
    pub versions: Vec<T>,
}

/// Objects keyed by lower-cased name (Key Vault names are case-insensitive).
pub(crate) type Objects<T> = BTreeMap<String, Versions<T>>;

/// How a vault authorizes data-plane calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AuthorizationModel {
    /// Vault access policies (`AccessDenied` on refusal).
    #[default]
    AccessPolicies,
    /// Azure RBAC with vault- or object-scoped role assignments (`ForbiddenByRbac`).
    Rbac,
}

/// One vault.
pub(crate) struct Vault {
    pub name: String,
    pub cloud: Cloud,
    pub tenant_id: String,
    pub location: String,
    pub authorization: AuthorizationModel,
    pub grants: Vec<Grant>,
    pub secrets: Objects<SecretVersion>,
    pub certificates: Objects<CertVersion>,
    pub keys: Objects<KeyVersion>,
}

impl Vault {
    pub fn host(&self) -> String {
        self.cloud.vault_host(&self.name)
    }

    /// `https://host/<collection>/<name>[/<version>]`
    pub fn object_id(&self, kind: ObjectKind, name: &str, version: Option<&str>) -> String {
        let base = format!("https://{}/{}/{}", self.host(), kind.collection(), name);
        match version {
            Some(v) => format!("{base}/{v}"),
            None => base,
        }
    }

    /// The full secret bundle: the list item with its version, the value and, for a
    /// certificate's secret, the `kid` of its key.
    pub fn secret_bundle(&self, name: &str, v: &SecretVersion) -> Value {
        let mut b = self.secret_item(name, v, true);
        b["value"] = json!(v.value);
        if v.managed {
            b["kid"] = json!(self.object_id(ObjectKind::Key, name, Some(&v.version)));
        }
        b
    }

    /// A list item: metadata, never the value.
    pub fn secret_item(&self, name: &str, v: &SecretVersion, with_version: bool) -> Value {
        let version = with_version.then_some(v.version.as_str());
        let mut b = json!({
            "id": self.object_id(ObjectKind::Secret, name, version),
            "attributes": v.attributes.to_json(),
            "tags": v.tags,
        });
        if let Some(ct) = &v.content_type {
            b["contentType"] = json!(ct);
        }
        if v.managed {
            b["managed"] = json!(true);
        }
        b
    }

    pub fn key_bundle(&self, name: &str, v: &KeyVersion) -> Value {
        let mut key = json!({
            "kid": self.object_id(ObjectKind::Key, name, Some(&v.version)),
            "key_ops": v.key_ops,
        });
        match &v.jwk {
            PublicJwk::Rsa { n, e } => {
                key["kty"] = json!("RSA");
                key["n"] = json!(URL_SAFE_NO_PAD.encode(n));
                key["e"] = json!(URL_SAFE_NO_PAD.encode(e));
            }
            PublicJwk::Ec { crv, x, y } => {
                key["kty"] = json!("EC");
                key["crv"] = json!(crv);
                key["x"] = json!(URL_SAFE_NO_PAD.encode(x));
                key["y"] = json!(URL_SAFE_NO_PAD.encode(y));
            }
        }
        let mut b = json!({ "key": key, "attributes": v.attributes.to_json(), "tags": v.tags });
        if v.managed {
            b["managed"] = json!(true);
        }
        b
    }

    pub fn key_item(&self, name: &str, v: &KeyVersion, with_version: bool) -> Value {
        let mut b = json!({
            "kid": self.object_id(ObjectKind::Key, name, with_version.then_some(v.version.as_str())),
            "attributes": v.attributes.to_json(),
            "tags": v.tags,
        });
        if v.managed {
            b["managed"] = json!(true);
        }
        b
    }

    pub fn policy_json(&self, name: &str, v: &CertVersion) -> Value {
        let p = &v.policy;
        let mut key_props = json!({
            "exportable": p.exportable,
            "kty": p.kty,
            "key_size": p.key_size,
            "reuse_key": false,
        });
        if let Some(crv) = p.curve {
            key_props["crv"] = json!(crv);
        }
        json!({
            "id": format!("{}/policy", self.object_id(ObjectKind::Certificate, name, None)),
            "key_props": key_props,
            "secret_props": { "contentType": p.content_type },
            "x509_props": {
                "subject": p.subject,
                "sans": { "dns_names": p.dns_names },
                "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
                "key_usage": ["digitalSignature", "keyEncipherment"],
                "validity_months": p.validity_months,
                "basic_constraints": { "ca": false },
            },
            "lifetime_actions": [{
                "trigger": { "lifetime_percentage": 80 },
                "action": { "action_type": "EmailContacts" },
            }],
            "issuer": { "name": p.issuer_name },
            "attributes": {
                "enabled": true,
                "created": v.attributes.created,
                "updated": v.attributes.updated,
            },
        })
    }

    pub fn certificate_bundle(&self, name: &str, v: &CertVersion) -> Value {
        json!({
            "id": self.object_id(ObjectKind::Certificate, name, Some(&v.version)),
            "kid": self.object_id(ObjectKind::Key, name, Some(&v.version)),
            "sid": self.object_id(ObjectKind::Secret, name, Some(&v.version)),
            "x5t": v.x5t,
            "cer": STANDARD.encode(&v.cer),
            "attributes": v.attributes.to_json(),
            "policy": self.policy_json(name, v),
            "tags": v.tags,
        })
    }

    pub fn certificate_item(&self, name: &str, v: &CertVersion, with_version: bool) -> Value {
        json!({
            "id": self.object_id(ObjectKind::Certificate, name, with_version.then_some(v.version.as_str())),
            "x5t": v.x5t,
            "attributes": v.attributes.to_json(),
            "tags": v.tags,
        })
    }
}

/// Finds an object's versions by case-insensitive name.
pub(crate) fn find<'a, T>(objects: &'a Objects<T>, name: &str) -> Option<&'a Versions<T>> {
    objects.get(&name.to_ascii_lowercase())
}

/// Appends a version, creating the object if needed; keeps the first-used spelling of the name.
pub(crate) fn push_version<T>(objects: &mut Objects<T>, name: &str, version: T) {
    objects
        .entry(name.to_ascii_lowercase())
        .or_insert_with(|| Versions {
            name: name.to_owned(),
            versions: Vec::new(),
        })
        .versions
        .push(version);
}

/// Whether `name` is a valid Key Vault object name (`^[0-9a-zA-Z-]{1,127}$`).
pub fn valid_object_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}
