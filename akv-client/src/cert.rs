//! Certificates: PFX (legacy and modern PKCS#12), PEM and DER import; chain ordering by
//! issuer/subject links; public, private and raw export.
//!
//! Behaviour reference §2.7.5, with two fixes:
//! * PFX files are read with p12-keystore, which understands both the legacy encryption
//!   (RC2-40/3DES, SHA-1 MAC) upstream supports and the modern PBES2/AES-256 that upstream
//!   cannot read.
//! * The chain is ordered by actual links — the leaf (the certificate that issued no other,
//!   preferring the one matching the private key), then its issuer, then that one's issuer —
//!   whatever order the PFX bags or PEM blocks hold them in. Upstream's `ensureserverfirst`
//!   moved the *last* certificate to the front, which is only right when the input is exactly
//!   reversed; ordering by links satisfies `ensureserverfirst` for every input, so
//!   [`ChainOrder`] no longer changes the output. Certificates that are not part of the
//!   leaf's chain follow in their stored order.
//!
//! Private keys are exported as upstream does (RSA → PKCS#1 `RSA PRIVATE KEY`, EC → SEC1
//! `EC PRIVATE KEY` with the named curve), or as PKCS#8 `PRIVATE KEY` on request. A SEC1 input
//! is exported byte for byte.

use std::fmt;

use zeroize::Zeroizing;

use der::Encode as _;
use der::asn1::{AnyRef, ObjectIdentifier, OctetStringRef};
use pkcs1::RsaPrivateKeyRef;
use pkcs8::{AlgorithmIdentifierRef, PrivateKeyInfoRef};
use sec1::{EcParameters, EcPrivateKey};

use crate::error::{Error, Result};

/// Object identifiers of the key algorithms and curves Key Vault uses.
pub(crate) mod oid {
    use der::asn1::ObjectIdentifier;

    /// rsaEncryption.
    pub const RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    /// id-ecPublicKey.
    pub const EC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    /// prime256v1 (P-256).
    pub const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    /// secp384r1 (P-384).
    pub const P384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
    /// secp521r1 (P-521).
    pub const P521: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");
    /// secp256k1 (P-256K).
    pub const P256K: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.10");
}

/// `chainOrder` of an AKVS output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChainOrder {
    /// No `chainOrder` given.
    #[default]
    Default,
    /// `ensureserverfirst`. Chains are always ordered leaf first by their links (see the
    /// module docs), so this is accepted for compatibility and changes nothing.
    EnsureServerFirst,
}

impl ChainOrder {
    /// Reads the CRD value; anything but `ensureserverfirst` (case-insensitive) is the
    /// default, as upstream compares for equality only.
    pub fn from_spec(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("ensureserverfirst") => ChainOrder::EnsureServerFirst,
            _ => ChainOrder::Default,
        }
    }
}

/// How to write a private key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyFormat {
    /// As upstream: RSA as PKCS#1 (`RSA PRIVATE KEY`), EC as SEC1 (`EC PRIVATE KEY`).
    #[default]
    Traditional,
    /// PKCS#8 (`PRIVATE KEY`) for either algorithm.
    Pkcs8,
}

/// Algorithm of a private key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// RSA.
    Rsa,
    /// ECDSA on a named curve.
    Ec(Curve),
}

/// Named elliptic curves Key Vault uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// P-256 (prime256v1).
    P256,
    /// P-384 (secp384r1).
    P384,
    /// P-521 (secp521r1).
    P521,
    /// P-256K (secp256k1).
    P256K,
}

impl Curve {
    pub(crate) fn oid(self) -> ObjectIdentifier {
        match self {
            Curve::P256 => oid::P256,
            Curve::P384 => oid::P384,
            Curve::P521 => oid::P521,
            Curve::P256K => oid::P256K,
        }
    }

    pub(crate) fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        [Curve::P256, Curve::P384, Curve::P521, Curve::P256K]
            .into_iter()
            .find(|c| c.oid() == oid)
    }

    /// Key Vault's curve name (`P-256`…).
    pub fn from_jwk(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Curve::P256),
            "P-384" => Some(Curve::P384),
            "P-521" => Some(Curve::P521),
            "P-256K" | "SECP256K1" => Some(Curve::P256K),
            _ => None,
        }
    }

    /// Size of one coordinate in bytes.
    pub(crate) fn field_len(self) -> usize {
        match self {
            Curve::P256 | Curve::P256K => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
        }
    }
}

/// A private key, held as PKCS#8 and in its traditional form. `Debug` prints the algorithm
/// only; the bytes are zeroized on drop.
#[derive(Clone)]
pub struct PrivateKey {
    algorithm: KeyAlgorithm,
    pkcs8: Zeroizing<Vec<u8>>,
    traditional: Zeroizing<Vec<u8>>,
    /// The public key as it appears in a certificate's SubjectPublicKeyInfo bit string
    /// (empty when a SEC1 key omits it).
    public: Vec<u8>,
}

const UNSUPPORTED_PKCS8: &str =
    "unknown private key type found while parsing pkcs#8 - only rsa and ecdsa supported";

fn key_error(reason: impl fmt::Display) -> Error {
    Error::PrivateKey {
        reason: reason.to_string(),
    }
}

impl PrivateKey {
    /// Reads a PKCS#8 `PrivateKeyInfo` (RSA or EC).
    ///
    /// # Errors
    ///
    /// [`Error::PrivateKey`] for malformed input or another algorithm.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info = PrivateKeyInfoRef::try_from(der).map_err(key_error)?;
        let key = info.private_key.as_bytes();
        let algorithm = info.algorithm.oid;
        if algorithm == oid::RSA {
            Self::from_pkcs1_der(key)
        } else if algorithm == oid::EC {
            let curve = info
                .algorithm
                .parameters_oid()
                .ok()
                .and_then(Curve::from_oid)
                .ok_or_else(|| key_error("unsupported or missing EC curve"))?;
            Self::from_sec1_parts(key, Some(curve))
        } else {
            Err(key_error(UNSUPPORTED_PKCS8))
        }
    }

    /// Reads a PKCS#1 `RSAPrivateKey`.
    ///
    /// # Errors
    ///
    /// [`Error::PrivateKey`] for malformed input.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        let rsa = RsaPrivateKeyRef::try_from(der)
            .map_err(|e| key_error(format_args!("not a PKCS#1 RSA private key: {e}")))?;
        let public = rsa.public_key().to_der().map_err(key_error)?;
        let pkcs8 = PrivateKeyInfoRef::new(
            AlgorithmIdentifierRef {
                oid: oid::RSA,
                parameters: Some(AnyRef::NULL),
            },
            OctetStringRef::new(der).map_err(key_error)?,
        )
        .to_der()
        .map_err(key_error)?;
        Ok(Self {
            algorithm: KeyAlgorithm::Rsa,
            pkcs8: Zeroizing::new(pkcs8),
            traditional: Zeroizing::new(der.to_vec()),
            public,
        })
    }

    /// Reads a SEC1 `ECPrivateKey`; it must name its curve.
    ///
    /// # Errors
    ///
    /// [`Error::PrivateKey`] for malformed input or an unknown curve.
    pub fn from_sec1_der(der: &[u8]) -> Result<Self> {
        Self::from_sec1_parts(der, None)
    }

    /// A SEC1 key, with `curve` from the PKCS#8 algorithm when the key does not name one.
    fn from_sec1_parts(der: &[u8], curve: Option<Curve>) -> Result<Self> {
        let ec = EcPrivateKey::try_from(der)
            .map_err(|e| key_error(format_args!("not a SEC1 EC private key: {e}")))?;
        let named = ec
            .parameters
            .map(|p| {
                p.named_curve()
                    .and_then(Curve::from_oid)
                    .ok_or_else(|| key_error("unsupported EC curve"))
            })
            .transpose()?;
        let curve = named
            .or(curve)
            .ok_or_else(|| key_error("SEC1 key names no curve"))?;
        // Traditional (SEC1) form names the curve, as Go's MarshalECPrivateKey writes it;
        // a SEC1 input that already does is kept byte for byte.
        let traditional = if named.is_some() {
            der.to_vec()
        } else {
            EcPrivateKey {
                parameters: Some(EcParameters::NamedCurve(curve.oid())),
                ..ec.clone()
            }
            .to_der()
            .map_err(key_error)?
        };
        // PKCS#8 carries the curve in the algorithm; the inner SEC1 leaves it out.
        let inner = Zeroizing::new(
            EcPrivateKey {
                parameters: None,
                ..ec.clone()
            }
            .to_der()
            .map_err(key_error)?,
        );
        let curve_oid = curve.oid();
        let pkcs8 = PrivateKeyInfoRef::new(
            AlgorithmIdentifierRef {
                oid: oid::EC,
                parameters: Some(AnyRef::from(&curve_oid)),
            },
            OctetStringRef::new(&inner).map_err(key_error)?,
        )
        .to_der()
        .map_err(key_error)?;
        Ok(Self {
            algorithm: KeyAlgorithm::Ec(curve),
            pkcs8: Zeroizing::new(pkcs8),
            traditional: Zeroizing::new(traditional),
            public: ec.public_key.unwrap_or_default().to_vec(),
        })
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// PKCS#1 (RSA) or SEC1 (EC) DER.
    pub fn traditional_der(&self) -> &[u8] {
        &self.traditional
    }

    /// The key as PEM in `format`.
    pub fn to_pem(&self, format: KeyFormat) -> Zeroizing<String> {
        let (label, der) = match (format, self.algorithm) {
            (KeyFormat::Pkcs8, _) => ("PRIVATE KEY", &self.pkcs8),
            (KeyFormat::Traditional, KeyAlgorithm::Rsa) => ("RSA PRIVATE KEY", &self.traditional),
            (KeyFormat::Traditional, KeyAlgorithm::Ec(_)) => ("EC PRIVATE KEY", &self.traditional),
        };
        Zeroizing::new(pem_block(label, der))
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// One X.509 certificate with the names needed to link a chain.
#[derive(Clone, PartialEq, Eq)]
pub struct Certificate {
    der: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    public_key: Vec<u8>,
    subject_text: String,
}

impl Certificate {
    /// Parses one DER certificate.
    ///
    /// # Errors
    ///
    /// [`Error::Certificate`] when it is not X.509.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let (rest, cert) =
            x509_parser::parse_x509_certificate(der).map_err(|e| Error::Certificate {
                reason: e.to_string(),
            })?;
        let len = der.len() - rest.len();
        Ok(Self {
            der: der[..len].to_vec(),
            subject: cert.subject().as_raw().to_vec(),
            issuer: cert.issuer().as_raw().to_vec(),
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            subject_text: cert.subject().to_string(),
        })
    }

    /// The DER encoding.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The subject as text (`CN=…`), for messages.
    pub fn subject(&self) -> &str {
        &self.subject_text
    }

    /// Whether subject and issuer are the same name.
    pub fn is_self_issued(&self) -> bool {
        self.subject == self.issuer
    }

    /// A `CERTIFICATE` PEM block.
    pub fn to_pem(&self) -> String {
        pem_block("CERTIFICATE", &self.der)
    }
}

impl fmt::Debug for Certificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject_text)
            .finish_non_exhaustive()
    }
}

/// Where a [`CertificateBundle`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BundleSource {
    /// PKCS#12 (`application/x-pkcs12`).
    Pfx,
    /// PEM text (`application/x-pem-file`).
    Pem,
    /// DER certificate(s), e.g. Key Vault's `cer`.
    Der,
}

/// A certificate chain (leaf first) with an optional private key and the original bytes.
#[derive(Clone)]
pub struct CertificateBundle {
    certs: Vec<Certificate>,
    key: Option<PrivateKey>,
    raw: Zeroizing<Vec<u8>>,
    source: BundleSource,
}

impl CertificateBundle {
    /// Reads a PFX with an empty password (Key Vault's), legacy or modern encryption.
    ///
    /// # Errors
    ///
    /// [`Error::Pfx`] when the file cannot be decrypted or parsed; key and certificate errors.
    pub fn from_pfx(pfx: &[u8]) -> Result<Self> {
        let archive =
            p12_keystore::Pkcs12Archive::from_pkcs12(pfx, "").map_err(|e| Error::Pfx {
                reason: e.to_string(),
            })?;
        let certs = archive
            .certs
            .iter()
            .map(|bag| Certificate::from_der(bag.cert.as_der()))
            .collect::<Result<Vec<_>>>()?;
        let key = archive
            .keys
            .last()
            .map(|bag| PrivateKey::from_pkcs8_der(bag.key.as_der()))
            .transpose()?;
        Ok(Self::assemble(certs, key, pfx.to_vec(), BundleSource::Pfx))
    }

    /// Reads a PEM bundle: every `CERTIFICATE` block, and private keys in PKCS#1, PKCS#8 or
    /// SEC1 (the last one wins, as upstream). `EC PARAMETERS` blocks are skipped.
    ///
    /// # Errors
    ///
    /// [`Error::Pem`] for unreadable PEM or a block that is no known key.
    pub fn from_pem(text: &[u8]) -> Result<Self> {
        let blocks = pem::parse_many(text).map_err(|e| Error::Pem {
            reason: e.to_string(),
        })?;
        let mut certs = Vec::new();
        let mut key = None;
        for block in &blocks {
            match block.tag() {
                "CERTIFICATE" => certs.push(Certificate::from_der(block.contents())?),
                "EC PARAMETERS" => {}
                "RSA PRIVATE KEY" => key = Some(PrivateKey::from_pkcs1_der(block.contents())?),
                "EC PRIVATE KEY" => key = Some(PrivateKey::from_sec1_der(block.contents())?),
                "PRIVATE KEY" => key = Some(PrivateKey::from_pkcs8_der(block.contents())?),
                other => {
                    let der = block.contents();
                    key = Some(
                        PrivateKey::from_pkcs1_der(der)
                            .or_else(|_| PrivateKey::from_pkcs8_der(der))
                            .or_else(|_| PrivateKey::from_sec1_der(der))
                            .map_err(|_| Error::Pem {
                                reason: format!("Failed to parse private key in a '{other}' block"),
                            })?,
                    );
                }
            }
        }
        if blocks.is_empty() {
            return Err(Error::Pem {
                reason: "no PEM block found".into(),
            });
        }
        Ok(Self::assemble(certs, key, text.to_vec(), BundleSource::Pem))
    }

    /// Reads one or more concatenated DER certificates (no key).
    ///
    /// # Errors
    ///
    /// [`Error::Certificate`] when a certificate cannot be parsed.
    pub fn from_der(mut der: &[u8]) -> Result<Self> {
        let raw = der.to_vec();
        let mut certs = Vec::new();
        while !der.is_empty() {
            let cert = Certificate::from_der(der)?;
            der = &der[cert.der.len()..];
            certs.push(cert);
        }
        Ok(Self::assemble(certs, None, raw, BundleSource::Der))
    }

    fn assemble(
        certs: Vec<Certificate>,
        key: Option<PrivateKey>,
        raw: Vec<u8>,
        source: BundleSource,
    ) -> Self {
        let certs = order_chain(certs, key.as_ref().map(|k| k.public.as_slice()));
        Self {
            certs,
            key,
            raw: Zeroizing::new(raw),
            source,
        }
    }

    /// The certificates, leaf first, each followed by its issuer.
    pub fn certificates(&self) -> &[Certificate] {
        &self.certs
    }

    /// The private key, if the bundle holds one.
    pub fn private_key(&self) -> Option<&PrivateKey> {
        self.key.as_ref()
    }

    /// Where the bundle came from.
    pub fn source(&self) -> BundleSource {
        self.source
    }

    /// The input bytes as given (PFX binary, PEM text or DER).
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Every certificate as PEM, leaf first.
    ///
    /// # Errors
    ///
    /// [`Error::NoCertificate`] when there is none.
    pub fn public_pem(&self) -> Result<String> {
        if self.certs.is_empty() {
            return Err(Error::NoCertificate);
        }
        Ok(self.certs.iter().map(Certificate::to_pem).collect())
    }

    /// The top of the chain (the last certificate in link order) as PEM, when the chain has
    /// more than the leaf: what `ca.crt` holds.
    pub fn ca_pem(&self) -> Option<String> {
        (self.certs.len() > 1)
            .then(|| self.certs.last().map(Certificate::to_pem))
            .flatten()
    }

    /// The private key as PEM.
    ///
    /// # Errors
    ///
    /// [`Error::NoPrivateKey`] when the bundle has none.
    pub fn private_pem(&self, format: KeyFormat) -> Result<Zeroizing<String>> {
        self.key
            .as_ref()
            .map(|k| k.to_pem(format))
            .ok_or(Error::NoPrivateKey)
    }
}

impl fmt::Debug for CertificateBundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateBundle")
            .field("source", &self.source)
            .field("certificates", &self.certs)
            .field("private_key", &self.key.as_ref().map(PrivateKey::algorithm))
            .finish_non_exhaustive()
    }
}

/// Orders `certs` leaf first by issuer/subject links. The leaf is a certificate that issued
/// none of the others, preferring one whose public key matches `key_public`, else the first
/// such in input order. Certificates outside the leaf's chain follow in input order.
pub(crate) fn order_chain(certs: Vec<Certificate>, key_public: Option<&[u8]>) -> Vec<Certificate> {
    if certs.len() < 2 {
        return certs;
    }
    let issued_another = |i: usize| {
        certs.iter().enumerate().any(|(j, c)| {
            j != i && !c.is_self_issued() && c.issuer == certs[i].subject && c.der != certs[i].der
        })
    };
    let matches_key =
        |c: &Certificate| key_public.is_some_and(|k| !k.is_empty() && c.public_key == k);
    let candidates: Vec<usize> = (0..certs.len()).filter(|&i| !issued_another(i)).collect();
    let leaf = candidates
        .iter()
        .copied()
        .find(|&i| matches_key(&certs[i]))
        .or_else(|| (0..certs.len()).find(|&i| matches_key(&certs[i])))
        .or_else(|| candidates.first().copied())
        .unwrap_or(0);
    let mut used = vec![false; certs.len()];
    let mut order = vec![leaf];
    used[leaf] = true;
    let mut current = leaf;
    while !certs[current].is_self_issued() {
        let next =
            (0..certs.len()).find(|&j| !used[j] && certs[j].subject == certs[current].issuer);
        match next {
            Some(j) => {
                used[j] = true;
                order.push(j);
                current = j;
            }
            None => break,
        }
    }
    order.extend((0..certs.len()).filter(|&j| !used[j]));
    let mut slots: Vec<Option<Certificate>> = certs.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// A PEM block with 64-column lines and `\n` line ends (as Go's `pem.Encode`).
pub(crate) fn pem_block(label: &str, der: &[u8]) -> String {
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    pem::encode_config(&pem::Pem::new(label, der.to_vec()), config)
}

#[cfg(test)]
mod tests;
