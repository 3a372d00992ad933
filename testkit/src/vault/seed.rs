//! Seeding: vaults, secrets, certificates (as Key Vault imports them) and keys.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use rcgen::PublicKeyData as _;
use x509_parser::prelude::{FromDer as _, X509Certificate};
use x509_parser::public_key::PublicKey;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::FakeError;
use super::spec::{CertificateFormat, CertificateSpec, KeySpec, Material, SecretSpec};
use super::store::{
    Attributes, CertVersion, KeyVersion, ObjectKind, Policy, PublicJwk, SecretVersion, Vault, find,
    push_version, valid_object_name,
};
use crate::certs::{KeyKind, PemPart, PrivateKey, RsaFixtureKey};

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
                    .map(crate::certs::pem_text)
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
    let version = crate::ids::random_hex_id();
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
        None => crate::ids::random_hex_id(),
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
    let version = crate::ids::random_hex_id();
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
