//! Seeding: vaults, secrets, certificates (as Key Vault imports them) and keys.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use rcgen::PublicKeyData as _;
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::FakeError;
use super::access::{Grant, Permissions};
use super::store::{
    Attributes, AuthorizationModel, CertVersion, KeyVersion, ObjectKind, Policy, PublicJwk,
    SecretVersion, Vault, find, push_version, valid_object_name,
};
use crate::certs::{CertChain, KeyKind, PemPart, PfxEncryption, PrivateKey, RsaFixtureKey};
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
    value: String,
    version: Option<String>,
    content_type: Option<String>,
    enabled: bool,
    not_before: Option<u64>,
    expires: Option<u64>,
    tags: BTreeMap<String, String>,
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
enum Material {
    Chain(Box<CertChain>, CertificateFormat),
    Pfx(Vec<u8>),
    Pem(String),
}

/// A certificate version to import.
#[derive(Clone)]
pub struct CertificateSpec {
    material: Material,
    exportable: bool,
    tags: BTreeMap<String, String>,
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

/// A certificate ready to store: everything computed outside the vault lock.
pub(super) struct PreparedCertificate {
    leaf_der: Vec<u8>,
    secret_value: String,
    content_type: &'static str,
    jwk: PublicJwk,
    kind: KeyKind,
    exportable: bool,
    tags: BTreeMap<String, String>,
}

fn cert_err(msg: impl Into<String>) -> FakeError {
    FakeError::Certificate(msg.into())
}

fn jwk_from_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<(PublicJwk, KeyKind), FakeError> {
    match spki
        .parsed()
        .map_err(|e| cert_err(format!("public key: {e}")))?
    {
        PublicKey::RSA(rsa) => {
            let n = rsa
                .modulus
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect();
            let e = rsa
                .exponent
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect();
            Ok((PublicJwk::Rsa { n, e }, KeyKind::Rsa2048))
        }
        PublicKey::EC(point) => {
            let data = point.data();
            let (crv, kind) = match data.len() {
                65 => ("P-256", KeyKind::EcdsaP256),
                97 => ("P-384", KeyKind::EcdsaP384),
                n => return Err(cert_err(format!("unsupported EC point of {n} bytes"))),
            };
            let half = (data.len() - 1) / 2;
            Ok((
                PublicJwk::Ec {
                    crv,
                    x: data[1..=half].to_vec(),
                    y: data[half + 1..].to_vec(),
                },
                kind,
            ))
        }
        _ => Err(cert_err("unsupported public key algorithm")),
    }
}

fn leaf_of(certs: &[Vec<u8>]) -> Result<Vec<u8>, FakeError> {
    // The leaf is the certificate that issued none of the others.
    let parsed: Vec<X509Certificate<'_>> = certs
        .iter()
        .map(|d| {
            X509Certificate::from_der(d)
                .map(|(_, c)| c)
                .map_err(|e| cert_err(format!("certificate: {e}")))
        })
        .collect::<Result<_, _>>()?;
    let issues_another = |i: usize| {
        parsed
            .iter()
            .enumerate()
            .any(|(j, other)| j != i && other.issuer() == parsed[i].subject())
    };
    let self_signed = |i: usize| parsed[i].subject() == parsed[i].issuer();
    let idx = (0..parsed.len())
        .find(|&i| !issues_another(i) && (parsed.len() == 1 || !self_signed(i)))
        .ok_or_else(|| cert_err("no leaf certificate found"))?;
    Ok(certs[idx].clone())
}

pub(super) fn prepare_certificate(spec: CertificateSpec) -> Result<PreparedCertificate, FakeError> {
    let CertificateSpec {
        material,
        exportable,
        tags,
    } = spec;
    let (leaf_der, secret_value, content_type) = match material {
        Material::Chain(chain, format) => {
            let leaf = chain.leaf().der().to_vec();
            match format {
                CertificateFormat::Pfx(enc) => {
                    let pfx = if exportable {
                        chain.pfx(enc)?
                    } else {
                        chain.pfx_certificates_only(enc)?
                    };
                    (leaf, STANDARD.encode(pfx), "application/x-pkcs12")
                }
                CertificateFormat::Pem(order) => {
                    let parts: Vec<PemPart> = order
                        .into_iter()
                        .filter(|p| exportable || *p != PemPart::Key)
                        .collect();
                    (leaf, chain.pem_bundle(&parts), "application/x-pem-file")
                }
            }
        }
        Material::Pfx(bytes) => {
            let store = KeyStore::from_pkcs12(&bytes, "", Pkcs12ImportPolicy::Relaxed)
                .map_err(|e| cert_err(format!("PFX: {e}")))?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| cert_err("PFX has no private key"))?;
            let leaf = chain
                .certs()
                .first()
                .ok_or_else(|| cert_err("PFX has no certificate"))?
                .as_der()
                .to_vec();
            let value = if exportable {
                STANDARD.encode(&bytes)
            } else {
                let mut certs_only = KeyStore::new();
                for (i, c) in chain.certs().iter().enumerate() {
                    certs_only.add_entry(
                        &i.to_string(),
                        p12_keystore::KeyStoreEntry::Certificate(c.clone()),
                    );
                }
                let pfx = certs_only
                    .writer("")
                    .write()
                    .map_err(|e| cert_err(format!("PFX: {e}")))?;
                STANDARD.encode(pfx)
            };
            (leaf, value, "application/x-pkcs12")
        }
        Material::Pem(text) => {
            let blocks = pem::parse_many(&text).map_err(|e| cert_err(format!("PEM: {e}")))?;
            let certs: Vec<Vec<u8>> = blocks
                .iter()
                .filter(|b| b.tag() == "CERTIFICATE")
                .map(|b| b.contents().to_vec())
                .collect();
            if certs.is_empty() {
                return Err(cert_err("PEM bundle has no certificate"));
            }
            let leaf = leaf_of(&certs)?;
            let value = if exportable {
                text
            } else {
                blocks
                    .iter()
                    .filter(|b| b.tag() == "CERTIFICATE")
                    .map(pem::encode)
                    .collect::<String>()
            };
            (leaf, value, "application/x-pem-file")
        }
    };
    let (_, cert) =
        X509Certificate::from_der(&leaf_der).map_err(|e| cert_err(format!("leaf: {e}")))?;
    let (jwk, kind) = jwk_from_spki(cert.public_key())?;
    Ok(PreparedCertificate {
        leaf_der,
        secret_value,
        content_type,
        jwk,
        kind,
        exportable,
        tags,
    })
}

pub(super) fn import_certificate(
    vault: &mut Vault,
    name: &str,
    p: PreparedCertificate,
    now: u64,
) -> Result<String, FakeError> {
    if !valid_object_name(name) {
        return Err(FakeError::InvalidName(name.to_owned()));
    }
    let (_, cert) =
        X509Certificate::from_der(&p.leaf_der).map_err(|e| cert_err(format!("leaf: {e}")))?;
    let nbf = u64::try_from(cert.validity().not_before.timestamp()).unwrap_or_default();
    let exp = u64::try_from(cert.validity().not_after.timestamp()).unwrap_or_default();
    let subject = cert.subject().to_string();
    let dns_names: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|g| match g {
                    x509_parser::extensions::GeneralName::DNSName(d) => Some((*d).to_owned()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let validity_months =
        u32::try_from(exp.saturating_sub(nbf) / (30 * 24 * 3600)).unwrap_or(u32::MAX);
    let version = super::new_version();
    let mut attributes = Attributes::new(now);
    attributes.not_before = Some(nbf);
    attributes.expires = Some(exp);
    let x5t = crate::certs::Cert::from_der(&p.leaf_der).x5t();
    let key_ops: Vec<String> = match p.kind {
        KeyKind::Rsa2048 => [
            "sign",
            "verify",
            "encrypt",
            "decrypt",
            "wrapKey",
            "unwrapKey",
        ]
        .map(String::from)
        .into(),
        _ => ["sign", "verify"].map(String::from).into(),
    };
    push_version(
        &mut vault.secrets,
        name,
        SecretVersion {
            version: version.clone(),
            value: p.secret_value,
            content_type: Some(p.content_type.to_owned()),
            attributes: attributes.clone(),
            tags: p.tags.clone(),
            managed: true,
        },
    );
    push_version(
        &mut vault.keys,
        name,
        KeyVersion {
            version: version.clone(),
            jwk: p.jwk,
            key_ops,
            attributes: attributes.clone(),
            tags: p.tags.clone(),
            managed: true,
        },
    );
    push_version(
        &mut vault.certificates,
        name,
        CertVersion {
            version: version.clone(),
            cer: p.leaf_der,
            x5t,
            policy: Policy {
                exportable: p.exportable,
                kty: p.kind.kty(),
                key_size: p.kind.key_size(),
                curve: p.kind.curve(),
                content_type: p.content_type,
                subject,
                dns_names,
                validity_months,
                issuer_name: "Unknown".into(),
            },
            attributes,
            tags: p.tags,
        },
    );
    Ok(version)
}

pub(super) fn set_secret(
    vault: &mut Vault,
    name: &str,
    spec: SecretSpec,
    now: u64,
) -> Result<String, FakeError> {
    if !valid_object_name(name) {
        return Err(FakeError::InvalidName(name.to_owned()));
    }
    let version = match spec.version {
        Some(v) if v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()) => v,
        Some(v) => return Err(FakeError::InvalidName(v)),
        None => super::new_version(),
    };
    let mut attributes = Attributes::new(now);
    attributes.enabled = spec.enabled;
    attributes.not_before = spec.not_before;
    attributes.expires = spec.expires;
    push_version(
        &mut vault.secrets,
        name,
        SecretVersion {
            version: version.clone(),
            value: spec.value,
            content_type: spec.content_type,
            attributes,
            tags: spec.tags,
            managed: false,
        },
    );
    Ok(version)
}

pub(super) fn prepare_key(spec: &KeySpec) -> Result<PublicJwk, FakeError> {
    let kind = match spec {
        KeySpec::Rsa => KeyKind::Rsa2048,
        KeySpec::EcP256 => KeyKind::EcdsaP256,
        KeySpec::EcP384 => KeyKind::EcdsaP384,
    };
    let key = PrivateKey::new(kind, RsaFixtureKey::Client)?;
    let der = rustls_pki_types::PrivatePkcs8KeyDer::from(key.pkcs8_der().to_vec());
    let alg = match kind {
        KeyKind::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyKind::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&der, alg)
        .map_err(|e| cert_err(format!("key: {e}")))?;
    let spki_der = pair.subject_public_key_info();
    let (_, spki) =
        SubjectPublicKeyInfo::from_der(&spki_der).map_err(|e| cert_err(format!("key: {e}")))?;
    Ok(jwk_from_spki(&spki)?.0)
}

pub(super) fn create_key(
    vault: &mut Vault,
    name: &str,
    spec: KeySpec,
    jwk: PublicJwk,
    now: u64,
) -> Result<String, FakeError> {
    if !valid_object_name(name) {
        return Err(FakeError::InvalidName(name.to_owned()));
    }
    let version = super::new_version();
    let key_ops: Vec<String> = match spec {
        KeySpec::Rsa => [
            "encrypt",
            "decrypt",
            "sign",
            "verify",
            "wrapKey",
            "unwrapKey",
        ]
        .map(String::from)
        .into(),
        KeySpec::EcP256 | KeySpec::EcP384 => ["sign", "verify"].map(String::from).into(),
    };
    push_version(
        &mut vault.keys,
        name,
        KeyVersion {
            version: version.clone(),
            jwk,
            key_ops,
            attributes: Attributes::new(now),
            tags: BTreeMap::new(),
            managed: false,
        },
    );
    Ok(version)
}

fn unknown(kind: ObjectKind, name: &str, version: Option<&str>) -> FakeError {
    FakeError::UnknownObject {
        kind,
        name: name.to_owned(),
        version: version.map(str::to_owned),
    }
}

pub(super) fn set_enabled(
    vault: &mut Vault,
    kind: ObjectKind,
    name: &str,
    version: Option<&str>,
    enabled: bool,
    now: u64,
) -> Result<(), FakeError> {
    fn pick<'a>(
        attrs: Vec<(&'a str, &'a mut Attributes)>,
        version: Option<&str>,
    ) -> Option<&'a mut Attributes> {
        match version {
            None => attrs.into_iter().last().map(|(_, a)| a),
            Some(v) => attrs
                .into_iter()
                .find(|(id, _)| id.eq_ignore_ascii_case(v))
                .map(|(_, a)| a),
        }
    }
    let key = name.to_ascii_lowercase();
    let attrs = match kind {
        ObjectKind::Secret => vault.secrets.get_mut(&key).map(|o| {
            o.versions
                .iter_mut()
                .map(|v| (v.version.as_str(), &mut v.attributes))
                .collect()
        }),
        ObjectKind::Certificate => vault.certificates.get_mut(&key).map(|o| {
            o.versions
                .iter_mut()
                .map(|v| (v.version.as_str(), &mut v.attributes))
                .collect()
        }),
        ObjectKind::Key => vault.keys.get_mut(&key).map(|o| {
            o.versions
                .iter_mut()
                .map(|v| (v.version.as_str(), &mut v.attributes))
                .collect()
        }),
    };
    let a = attrs
        .and_then(|a| pick(a, version))
        .ok_or_else(|| unknown(kind, name, version))?;
    a.enabled = enabled;
    a.updated = now;
    Ok(())
}

pub(super) fn versions(
    vault: &Vault,
    kind: ObjectKind,
    name: &str,
) -> Result<Vec<String>, FakeError> {
    let ids = match kind {
        ObjectKind::Secret => find(&vault.secrets, name)
            .map(|o| o.versions.iter().map(|v| v.version.clone()).collect()),
        ObjectKind::Certificate => find(&vault.certificates, name)
            .map(|o| o.versions.iter().map(|v| v.version.clone()).collect()),
        ObjectKind::Key => {
            find(&vault.keys, name).map(|o| o.versions.iter().map(|v| v.version.clone()).collect())
        }
    };
    ids.ok_or_else(|| unknown(kind, name, None))
}
