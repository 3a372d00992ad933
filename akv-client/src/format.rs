//! The one formatting function shared by the controller and the launcher: a Key Vault object
//! (and, for certificates, its backing secret) becomes the data of a Kubernetes Secret, of a
//! ConfigMap, or the value of an env placeholder.
//!
//! ```text
//! ObjectSpec + Target ──needs()──▶ what to fetch ──fetch()──▶ Material ──format()──▶ Values
//! ```
//!
//! Behaviour reference §2.7 and §4.4, with these documented deviations:
//! * `kubernetes.io/basic-auth` splits on the **first** `:` (upstream required exactly two
//!   parts, so passwords containing `:` failed).
//! * `kubernetes.io/dockerconfigjson` must be a JSON object (upstream copied any text, which
//!   the kubelet then fails to read); entries under `auths` with `username` and `password` but
//!   no `auth` get `auth = base64(username:password)`, as upstream's docs promise.
//! * `kubernetes.io/tls` from a `secret` also accepts PEM text, and can add `ca.crt`
//!   ([`FormatOptions::ca_crt`]).
//! * certificate → ConfigMap writes the public PEM (upstream crashed).
//! * `key` objects are PEM SubjectPublicKeyInfo (upstream: raw modulus bytes), see
//!   [`crate::key`].
//! * Outputs that write under `dataKey` require one (upstream wrote key `""` for certificate
//!   `Opaque` and key objects, which the API server rejects).
//! * Chains are ordered by links, leaf first (see [`crate::cert`]).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::cert::{CertificateBundle, ChainOrder, KeyFormat};
use crate::error::{Error, Result};
use crate::object::{
    CertificateObject, KeyObject, ObjectKind, ObjectRef, SecretObject, VaultObject, VaultUrl,
};
use crate::secret::{SecretValue, Transform, apply_transforms, parse_multi_key};
use crate::vault::KeyVault;

/// Kubernetes Secret types with special formatting.
pub mod secret_type {
    /// `Opaque`.
    pub const OPAQUE: &str = "Opaque";
    /// `kubernetes.io/tls`.
    pub const TLS: &str = "kubernetes.io/tls";
    /// `kubernetes.io/basic-auth`.
    pub const BASIC_AUTH: &str = "kubernetes.io/basic-auth";
    /// `kubernetes.io/dockerconfigjson`.
    pub const DOCKER_CONFIG_JSON: &str = "kubernetes.io/dockerconfigjson";
    /// `kubernetes.io/dockercfg`.
    pub const DOCKER_CFG: &str = "kubernetes.io/dockercfg";
    /// `kubernetes.io/ssh-auth`.
    pub const SSH_AUTH: &str = "kubernetes.io/ssh-auth";
}

/// `type` of an AKVS object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectType {
    /// `secret`.
    Secret,
    /// `certificate`.
    Certificate,
    /// `key`.
    Key,
    /// `multi-key-value-secret`.
    MultiKeyValueSecret,
}

impl ObjectType {
    /// Parses the CRD value.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownObjectType`].
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "secret" => Ok(ObjectType::Secret),
            "certificate" => Ok(ObjectType::Certificate),
            "key" => Ok(ObjectType::Key),
            "multi-key-value-secret" => Ok(ObjectType::MultiKeyValueSecret),
            other => Err(Error::UnknownObjectType {
                name: other.to_owned(),
            }),
        }
    }

    /// The CRD value.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Secret => "secret",
            ObjectType::Certificate => "certificate",
            ObjectType::Key => "key",
            ObjectType::MultiKeyValueSecret => "multi-key-value-secret",
        }
    }

    /// The Key Vault kind holding it.
    pub fn kind(self) -> ObjectKind {
        match self {
            ObjectType::Secret | ObjectType::MultiKeyValueSecret => ObjectKind::Secret,
            ObjectType::Certificate => ObjectKind::Certificate,
            ObjectType::Key => ObjectKind::Key,
        }
    }
}

/// The `spec.vault.object` part of an AKVS (plus `output.transform` and `chainOrder`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectSpec {
    /// Object name in Key Vault.
    pub name: String,
    /// Object type.
    pub object_type: ObjectType,
    /// `contentType` (multi-key-value secrets).
    pub content_type: Option<String>,
    /// Transforms, applied to `secret` objects only (as upstream), in order.
    pub transforms: Vec<Transform>,
    /// `output.secret.chainOrder`.
    pub chain_order: ChainOrder,
}

impl ObjectSpec {
    /// A spec with no content type, transforms or chain order.
    pub fn new(name: &str, object_type: ObjectType) -> Self {
        Self {
            name: name.to_owned(),
            object_type,
            content_type: None,
            transforms: Vec::new(),
            chain_order: ChainOrder::Default,
        }
    }

    /// With a content type.
    #[must_use]
    pub fn content_type(mut self, ct: &str) -> Self {
        self.content_type = Some(ct.to_owned());
        self
    }

    /// With transforms.
    #[must_use]
    pub fn transforms(mut self, t: Vec<Transform>) -> Self {
        self.transforms = t;
        self
    }
}

/// Where the values go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    /// A Kubernetes Secret of `secret_type` (the raw CRD value; empty = not given).
    Secret {
        /// `output.secret.type`.
        secret_type: &'a str,
        /// `output.secret.dataKey`.
        data_key: Option<&'a str>,
    },
    /// A ConfigMap.
    ConfigMap {
        /// `output.configMap.dataKey`.
        data_key: Option<&'a str>,
    },
    /// An env placeholder `akv:<akvs>?<query>`; `query` is empty without `?`.
    Env {
        /// The query.
        query: &'a str,
    },
}

/// Formatting choices that are ours, not upstream's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FormatOptions {
    /// Private key encoding (default: PKCS#1 / SEC1 as upstream).
    pub private_key: KeyFormat,
    /// Add `ca.crt` (the top of the chain) to `kubernetes.io/tls` outputs when the chain has
    /// more than the leaf. Default off, as upstream.
    pub ca_crt: bool,
}

/// What was read from Key Vault for one AKVS object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Material {
    /// A secret (also `multi-key-value-secret`).
    Secret(SecretObject),
    /// A certificate, and its backing secret when the output needs the private key or the
    /// stored bundle.
    Certificate {
        /// The certificate.
        certificate: CertificateObject,
        /// Its backing secret (same name and version).
        backing: Option<SecretObject>,
    },
    /// A key.
    Key(KeyObject),
}

/// The produced data: key → value. `Debug` lists the keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Values(pub BTreeMap<String, SecretValue>);

impl Values {
    fn one(key: &str, value: SecretValue) -> Self {
        Self(BTreeMap::from([(key.to_owned(), value)]))
    }

    /// The keys, sorted.
    pub fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }

    /// One value.
    pub fn get(&self, key: &str) -> Option<&SecretValue> {
        self.0.get(key)
    }

    /// The single value of an env placeholder.
    pub fn into_single(self) -> Option<SecretValue> {
        self.0.into_values().next()
    }
}

impl fmt::Debug for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Whether formatting `spec` for `target` needs the certificate's backing secret (private key
/// or stored bundle). Always false for objects other than certificates.
pub fn needs_backing_secret(spec: &ObjectSpec, target: &Target<'_>) -> bool {
    spec.object_type == ObjectType::Certificate
        && match target {
            Target::Secret { secret_type, .. } => {
                *secret_type == secret_type::TLS || *secret_type == secret_type::OPAQUE
            }
            Target::ConfigMap { .. } => false,
            Target::Env { query } => *query == "tls.key",
        }
}

/// Whether the backing secret is needed for its private key (not just the stored bytes).
fn needs_private_key(spec: &ObjectSpec, target: &Target<'_>) -> bool {
    needs_backing_secret(spec, target)
        && matches!(
            target,
            Target::Secret {
                secret_type: secret_type::TLS,
                ..
            } | Target::Env { .. }
        )
}

/// Reads what `format` needs from `kv`: the object at `version` (latest when `None`), and for
/// certificates whose output needs it, the backing secret of the same version.
///
/// # Errors
///
/// Key Vault errors; [`Error::NotExportable`] when the private key is needed and the
/// certificate's policy says it is not exportable.
pub async fn fetch(
    kv: &dyn KeyVault,
    vault: &VaultUrl,
    spec: &ObjectSpec,
    version: Option<&str>,
    target: &Target<'_>,
) -> Result<Material> {
    let obj = ObjectRef::latest(vault, spec.object_type.kind(), &spec.name).at(version);
    match kv.get(&obj).await? {
        VaultObject::Secret(s) => Ok(Material::Secret(s)),
        VaultObject::Key(k) => Ok(Material::Key(k)),
        VaultObject::Certificate(certificate) => {
            let backing = if needs_backing_secret(spec, target) {
                if needs_private_key(spec, target) && certificate.exportable == Some(false) {
                    return Err(Error::NotExportable {
                        object: spec.name.clone(),
                    });
                }
                let secret_ref = ObjectRef::latest(vault, ObjectKind::Secret, &spec.name)
                    .at(Some(&certificate.version));
                match kv.get(&secret_ref).await? {
                    VaultObject::Secret(s) => Some(s),
                    other => {
                        return Err(Error::WrongMaterial {
                            object: spec.name.clone(),
                            expected: "secret",
                            got: other.kind().as_str(),
                        });
                    }
                }
            } else {
                None
            };
            Ok(Material::Certificate {
                certificate,
                backing,
            })
        }
    }
}

/// Turns `material` into the values of `target`.
///
/// # Errors
///
/// Every formatting error of the behaviour reference (no dataKey, basic-auth, invalid query,
/// missing key…), parse errors of PFX/PEM/JSON/YAML, and [`Error::WrongMaterial`] when
/// `material` does not match `spec.object_type`.
pub fn format(
    spec: &ObjectSpec,
    target: &Target<'_>,
    material: &Material,
    opts: &FormatOptions,
) -> Result<Values> {
    let wrong = |got: &'static str| Error::WrongMaterial {
        object: spec.name.clone(),
        expected: spec.object_type.kind().as_str(),
        got,
    };
    match (spec.object_type, material) {
        (ObjectType::Secret, Material::Secret(s)) => format_secret(spec, target, s, opts),
        (ObjectType::MultiKeyValueSecret, Material::Secret(s)) => format_multi_key(spec, target, s),
        (
            ObjectType::Certificate,
            Material::Certificate {
                certificate,
                backing,
            },
        ) => format_certificate(spec, target, certificate, backing.as_ref(), opts),
        (ObjectType::Key, Material::Key(k)) => format_key(spec, target, k),
        (_, Material::Secret(_)) => Err(wrong("secret")),
        (_, Material::Certificate { .. }) => Err(wrong("certificate")),
        (_, Material::Key(_)) => Err(wrong("key")),
    }
}

fn data_key<'a>(key: Option<&'a str>, target: &'static str) -> Result<&'a str> {
    key.filter(|k| !k.is_empty())
        .ok_or(Error::NoDataKey { target })
}

fn split_basic_auth(value: &SecretValue) -> Result<(SecretValue, SecretValue)> {
    let bytes = value.as_bytes();
    let at = bytes
        .iter()
        .position(|b| *b == b':')
        .ok_or(Error::BasicAuth)?;
    Ok((
        SecretValue::new(bytes[..at].to_vec()),
        SecretValue::new(bytes[at + 1..].to_vec()),
    ))
}

fn format_secret(
    spec: &ObjectSpec,
    target: &Target<'_>,
    s: &SecretObject,
    opts: &FormatOptions,
) -> Result<Values> {
    let value = apply_transforms(&spec.name, &spec.transforms, &s.value)?;
    match *target {
        Target::Secret {
            secret_type,
            data_key: key,
        } => match secret_type {
            secret_type::BASIC_AUTH => {
                let (user, pass) = split_basic_auth(&value)?;
                Ok(Values(BTreeMap::from([
                    ("username".to_owned(), user),
                    ("password".to_owned(), pass),
                ])))
            }
            secret_type::DOCKER_CONFIG_JSON => Ok(Values::one(
                ".dockerconfigjson",
                docker_config_json(&spec.name, &value)?,
            )),
            secret_type::DOCKER_CFG => Ok(Values::one(".dockercfg", value)),
            secret_type::SSH_AUTH => Ok(Values::one("ssh-privatekey", value)),
            secret_type::TLS => {
                let bundle = bundle_from_secret_value(&spec.name, &value)?;
                tls_values(&bundle, opts)
            }
            _ => Ok(Values::one(data_key(key, "secret")?, value)),
        },
        Target::ConfigMap { data_key: key } => Ok(Values::one(data_key(key, "configmap")?, value)),
        Target::Env { query } => match query {
            "" => Ok(Values::one("", value)),
            "username" => Ok(Values::one(query, split_basic_auth(&value)?.0)),
            "password" => Ok(Values::one(query, split_basic_auth(&value)?.1)),
            other => Err(Error::InvalidQuery {
                object_type: "secret",
                query: other.to_owned(),
            }),
        },
    }
}

/// A `type: secret` value for `kubernetes.io/tls`: standard base64 of a PFX (upstream), or
/// PEM text (ours).
fn bundle_from_secret_value(object: &str, value: &SecretValue) -> Result<CertificateBundle> {
    if value
        .as_bytes()
        .trim_ascii_start()
        .starts_with(b"-----BEGIN")
    {
        return CertificateBundle::from_pem(value.as_bytes());
    }
    let pfx = zeroize::Zeroizing::new(STANDARD.decode(value.as_bytes().trim_ascii()).map_err(
        |source| Error::Base64 {
            object: object.to_owned(),
            source,
        },
    )?);
    CertificateBundle::from_pfx(&pfx)
}

fn tls_values(bundle: &CertificateBundle, opts: &FormatOptions) -> Result<Values> {
    let key = bundle.private_pem(opts.private_key)?;
    let mut out = BTreeMap::from([
        (
            "tls.crt".to_owned(),
            SecretValue::from(bundle.public_pem()?),
        ),
        ("tls.key".to_owned(), SecretValue::from(key)),
    ]);
    if opts.ca_crt
        && let Some(ca) = bundle.ca_pem()
    {
        out.insert("ca.crt".to_owned(), SecretValue::from(ca));
    }
    Ok(Values(out))
}

/// Validates a `.dockerconfigjson` and adds `auth` to `auths` entries that have `username`
/// and `password` but no `auth`. Returns the input unchanged when nothing is added.
fn docker_config_json(object: &str, value: &SecretValue) -> Result<SecretValue> {
    let err = |reason: &str| Error::DockerConfig {
        object: object.to_owned(),
        reason: reason.to_owned(),
    };
    let mut doc: serde_json::Value =
        serde_json::from_slice(value.as_bytes()).map_err(|_| err("not JSON"))?;
    let auths = doc
        .as_object_mut()
        .ok_or_else(|| err("not a JSON object"))?
        .get_mut("auths")
        .ok_or_else(|| err("no 'auths' object"))?
        .as_object_mut()
        .ok_or_else(|| err("'auths' is not an object"))?;
    let mut changed = false;
    for entry in auths.values_mut() {
        let Some(entry) = entry.as_object_mut() else {
            return Err(err("an 'auths' entry is not an object"));
        };
        if entry.contains_key("auth") {
            continue;
        }
        if let (Some(user), Some(pass)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            let auth = zeroize::Zeroizing::new(format!("{user}:{pass}"));
            entry.insert(
                "auth".into(),
                serde_json::Value::String(STANDARD.encode(auth.as_bytes())),
            );
            changed = true;
        }
    }
    if !changed {
        return Ok(value.clone());
    }
    serde_json::to_vec(&doc)
        .map(SecretValue::new)
        .map_err(|_| err("cannot serialise"))
}

fn format_multi_key(spec: &ObjectSpec, target: &Target<'_>, s: &SecretObject) -> Result<Values> {
    let ct = spec.content_type.as_deref();
    let map = parse_multi_key(&spec.name, ct, &s.value)?;
    match *target {
        Target::Secret { .. } | Target::ConfigMap { .. } => Ok(Values(map)),
        Target::Env { query } => match map.get(query) {
            Some(v) => Ok(Values::one(query, v.clone())),
            None => Err(Error::MultiKeyMissing {
                key: query.to_owned(),
                object: spec.name.clone(),
                content_type: ct.unwrap_or_default().to_owned(),
            }),
        },
    }
}

fn backing_bundle(spec: &ObjectSpec, backing: Option<&SecretObject>) -> Result<CertificateBundle> {
    let secret = backing.ok_or_else(|| Error::MissingField {
        kind: "certificate",
        object: spec.name.clone(),
        field: "backing secret",
    })?;
    match secret.content_type.as_deref().unwrap_or_default() {
        "application/x-pem-file" => CertificateBundle::from_pem(secret.value.as_bytes()),
        "application/x-pkcs12" => bundle_from_secret_value(&spec.name, &secret.value),
        other => Err(Error::UnknownCertificateContentType {
            content_type: other.to_owned(),
        }),
    }
}

fn format_certificate(
    spec: &ObjectSpec,
    target: &Target<'_>,
    cert: &CertificateObject,
    backing: Option<&SecretObject>,
    opts: &FormatOptions,
) -> Result<Values> {
    let public = || -> Result<SecretValue> {
        let bundle = CertificateBundle::from_der(&cert.cer)?;
        Ok(SecretValue::from(bundle.public_pem()?))
    };
    let check_exportable = || {
        if cert.exportable == Some(false) {
            Err(Error::NotExportable {
                object: spec.name.clone(),
            })
        } else {
            Ok(())
        }
    };
    match *target {
        Target::Secret {
            secret_type,
            data_key: key,
        } => match secret_type {
            secret_type::TLS => {
                check_exportable()?;
                tls_values(&backing_bundle(spec, backing)?, opts)
            }
            secret_type::OPAQUE => {
                let key = data_key(key, "secret")?;
                let bundle = backing_bundle(spec, backing)?;
                Ok(Values::one(key, SecretValue::new(bundle.raw().to_vec())))
            }
            _ => Ok(Values::one(data_key(key, "secret")?, public()?)),
        },
        Target::ConfigMap { data_key: key } => {
            Ok(Values::one(data_key(key, "configmap")?, public()?))
        }
        Target::Env { query } => match query {
            "tls.key" => {
                check_exportable()?;
                let bundle = backing_bundle(spec, backing)?;
                Ok(Values::one(
                    query,
                    SecretValue::from(bundle.private_pem(opts.private_key)?),
                ))
            }
            "raw" => Ok(Values::one(query, SecretValue::new(cert.cer.clone()))),
            _ => Ok(Values::one(query, public()?)),
        },
    }
}

fn format_key(spec: &ObjectSpec, target: &Target<'_>, k: &KeyObject) -> Result<Values> {
    let pem = SecretValue::from(k.jwk.to_pem(&spec.name)?);
    match *target {
        Target::Secret { data_key: key, .. } => Ok(Values::one(data_key(key, "secret")?, pem)),
        Target::ConfigMap { data_key: key } => Ok(Values::one(data_key(key, "configmap")?, pem)),
        Target::Env { query } => Ok(Values::one(query, pem)),
    }
}

#[cfg(test)]
mod tests;
