//! The certificate factory: CA chains, PEM bundles and PFX files as Key Vault stores them.
//!
//! * [`CertChain`]: root → intermediate → leaf, RSA-2048 or ECDSA (P-256, P-384), issued at run
//!   time with rcgen. rcgen on ring cannot *generate* RSA keys, so RSA chains sign with the
//!   checked-in openssl keys under `testkit/fixtures/rsa/` (made by
//!   `testkit/fixtures/make-fixtures.sh`); ECDSA keys are fresh for every chain.
//! * [`CertChain::pem_bundle`] writes key and certificates in any order (Key Vault and users
//!   write them in every order), [`CertChain::pfx`] writes PKCS#12 with modern (PBES2/AES-256,
//!   HMAC-SHA-256) or legacy (3DES or RC2-40, SHA-1 MAC) encryption.
//! * [`openssl`] holds PFX and PEM files written by openssl itself, so readers are also tested
//!   against a producer that is not ours.
//! * [`TestCa`] issues the TLS serving certificates of the fakes for the real Azure host names.
//!
//! ```
//! use testkit::certs::{CertChain, KeyKind, PemPart, PfxEncryption};
//!
//! let chain = CertChain::builder(KeyKind::EcdsaP256).common_name("app.example.com").build()?;
//! let pem = chain.pem_bundle(&[PemPart::Root, PemPart::Leaf, PemPart::Key]);
//! assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 2);
//! let pfx = chain.pfx(PfxEncryption::Legacy3Des)?;
//! assert!(!pfx.is_empty());
//! # Ok::<(), testkit::certs::CertError>(())
//! ```

mod ca;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p12_keystore::{
    Certificate as P12Cert, EncryptionAlgorithm, KeyStore, KeyStoreEntry, MacAlgorithm,
    PrivateKey as P12Key, PrivateKeyChain,
};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use rustls_pki_types::PrivatePkcs8KeyDer;

pub use ca::{ServerIdentity, TestCa};

/// An error of the certificate factory.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// rcgen refused the parameters or the key.
    #[error("could not issue the certificate {subject:?}")]
    Issue {
        /// Common name of the certificate being issued.
        subject: String,
        /// The rcgen error.
        #[source]
        source: rcgen::Error,
    },
    /// p12-keystore could not write the PKCS#12 file.
    #[error("could not write the PKCS#12 file")]
    Pkcs12(#[source] p12_keystore::error::Error),
    /// The operating system's random generator failed.
    #[error("the system random generator failed")]
    Random,
    /// Writing a PEM file failed.
    #[error("could not write {path}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

type Result<T, E = CertError> = std::result::Result<T, E>;

/// Key algorithm of a chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA 2048 with SHA-256 signatures (checked-in openssl keys).
    Rsa2048,
    /// ECDSA on P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
}

impl KeyKind {
    /// Key Vault's `kty` for this key (`RSA` or `EC`).
    pub fn kty(self) -> &'static str {
        match self {
            KeyKind::Rsa2048 => "RSA",
            KeyKind::EcdsaP256 | KeyKind::EcdsaP384 => "EC",
        }
    }

    /// Key Vault's `crv` for EC keys.
    pub fn curve(self) -> Option<&'static str> {
        match self {
            KeyKind::Rsa2048 => None,
            KeyKind::EcdsaP256 => Some("P-256"),
            KeyKind::EcdsaP384 => Some("P-384"),
        }
    }

    /// Key size in bits as Key Vault's policy reports it.
    pub fn key_size(self) -> u32 {
        match self {
            KeyKind::Rsa2048 => 2048,
            KeyKind::EcdsaP256 => 256,
            KeyKind::EcdsaP384 => 384,
        }
    }
}

/// Which checked-in RSA key a role in an RSA chain uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RsaFixtureKey {
    /// `fixtures/rsa/root.pem`
    Root,
    /// `fixtures/rsa/intermediate.pem`
    Intermediate,
    /// `fixtures/rsa/leaf.pem`
    Leaf,
    /// `fixtures/rsa/client.pem` (client certificates, e.g. Entra client assertions)
    Client,
    /// `fixtures/rsa/token-signing.pem` (the testkit token issuer)
    TokenSigning,
}

impl RsaFixtureKey {
    /// The PKCS#8 PEM text of the key.
    pub fn pem(self) -> &'static str {
        match self {
            RsaFixtureKey::Root => include_str!("../fixtures/rsa/root.pem"),
            RsaFixtureKey::Intermediate => include_str!("../fixtures/rsa/intermediate.pem"),
            RsaFixtureKey::Leaf => include_str!("../fixtures/rsa/leaf.pem"),
            RsaFixtureKey::Client => include_str!("../fixtures/rsa/client.pem"),
            RsaFixtureKey::TokenSigning => include_str!("../fixtures/rsa/token-signing.pem"),
        }
    }
}

/// Files written by openssl 3 (`testkit/fixtures/make-fixtures.sh`): an RSA chain
/// root → intermediate → leaf (`CN=app.example.com`, valid for 100 years) and its PFX files,
/// both with the empty password Key Vault uses.
pub mod openssl {
    /// `openssl pkcs12 -export -legacy`: RC2-40 certificates, 3DES key, SHA-1 MAC.
    pub const LEGACY_PFX: &[u8] = include_bytes!("../fixtures/openssl/legacy.pfx");
    /// `openssl pkcs12 -export`: PBES2/PBKDF2/AES-256-CBC, HMAC-SHA-256 MAC.
    pub const MODERN_PFX: &[u8] = include_bytes!("../fixtures/openssl/modern.pfx");
    /// Leaf, intermediate, root as PEM, in that order.
    pub const CHAIN_PEM: &str = include_str!("../fixtures/openssl/chain.pem");
    /// The leaf certificate.
    pub const LEAF_PEM: &str = include_str!("../fixtures/openssl/leaf.crt");
    /// The intermediate CA certificate.
    pub const INTERMEDIATE_PEM: &str = include_str!("../fixtures/openssl/intermediate.crt");
    /// The root CA certificate.
    pub const ROOT_PEM: &str = include_str!("../fixtures/openssl/root.crt");
    /// The leaf's private key (PKCS#8).
    pub const LEAF_KEY_PEM: &str = include_str!("../fixtures/rsa/leaf.pem");
}

/// A private key as PKCS#8 DER. `Debug` never prints the key.
#[derive(Clone)]
pub struct PrivateKey {
    kind: KeyKind,
    pkcs8: Vec<u8>,
}

impl PrivateKey {
    /// A key of `kind`: a fresh ECDSA key, or for RSA the checked-in key `rsa`.
    pub fn new(kind: KeyKind, rsa: RsaFixtureKey) -> Result<Self> {
        let pair = key_pair(kind, rsa)?;
        Ok(Self {
            kind,
            pkcs8: pair.serialize_der(),
        })
    }

    /// The key algorithm.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// PKCS#8 DER bytes.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn pkcs8_pem(&self) -> String {
        pem_text(&pem::Pem::new("PRIVATE KEY", self.pkcs8.clone()))
    }

    /// The key as rcgen's signing key.
    fn key_pair(&self) -> Result<KeyPair> {
        let der = PrivatePkcs8KeyDer::from(self.pkcs8.clone());
        let alg = signature_algorithm(self.kind);
        KeyPair::from_pkcs8_der_and_sign_algo(&der, alg).map_err(|source| CertError::Issue {
            subject: "(key)".into(),
            source,
        })
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One issued certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    common_name: String,
    der: Vec<u8>,
}

impl Cert {
    /// Wraps DER bytes (e.g. from a PFX or Key Vault's `cer`); the common name is read from the
    /// subject when the DER parses.
    pub fn from_der(der: &[u8]) -> Self {
        use x509_parser::prelude::FromDer as _;
        let common_name = x509_parser::certificate::X509Certificate::from_der(der)
            .ok()
            .and_then(|(_, c)| {
                c.subject()
                    .iter_common_name()
                    .next()
                    .and_then(|cn| cn.as_str().ok().map(str::to_owned))
            })
            .unwrap_or_default();
        Self {
            common_name,
            der: der.to_vec(),
        }
    }

    /// The subject common name.
    pub fn common_name(&self) -> &str {
        &self.common_name
    }

    /// DER bytes (what Key Vault returns as `cer`).
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// PEM text.
    pub fn pem(&self) -> String {
        pem_text(&pem::Pem::new("CERTIFICATE", self.der.clone()))
    }

    /// Key Vault's `x5t`: base64url (no padding) of the SHA-1 thumbprint of the DER.
    pub fn x5t(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.sha1_thumbprint())
    }

    /// SHA-1 thumbprint of the DER.
    pub fn sha1_thumbprint(&self) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, &self.der)
            .as_ref()
            .to_vec()
    }

    /// SHA-256 thumbprint of the DER (`x5t#S256`).
    pub fn sha256_thumbprint(&self) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, &self.der)
            .as_ref()
            .to_vec()
    }
}

/// A part of a PEM bundle, for [`CertChain::pem_bundle`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PemPart {
    /// The leaf's private key (PKCS#8).
    Key,
    /// The leaf certificate.
    Leaf,
    /// The intermediate CA.
    Intermediate,
    /// The root CA.
    Root,
}

impl PemPart {
    /// Key Vault's order for a PEM-backed certificate: key, then the chain leaf first.
    pub const KEY_VAULT_ORDER: [PemPart; 4] = [
        PemPart::Key,
        PemPart::Leaf,
        PemPart::Intermediate,
        PemPart::Root,
    ];
}

/// PKCS#12 encryption profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PfxEncryption {
    /// PBES2 / PBKDF2-HMAC-SHA-256 / AES-256-CBC, HMAC-SHA-256 MAC (what Key Vault and
    /// OpenSSL 3 write today).
    Modern,
    /// PBE-SHA1-3DES for keys and certificates, HMAC-SHA-1 MAC (Windows and older Key Vault
    /// imports).
    Legacy3Des,
    /// PBE-SHA1-RC2-40 for keys and certificates, HMAC-SHA-1 MAC (the oldest files).
    LegacyRc2,
}

/// A certificate chain root → intermediate → leaf with the leaf's private key.
#[derive(Clone, Debug)]
pub struct CertChain {
    root: Cert,
    intermediate: Cert,
    leaf: Cert,
    leaf_key: PrivateKey,
}

/// Builder for [`CertChain`].
#[derive(Clone, Debug)]
pub struct ChainBuilder {
    kind: KeyKind,
    common_name: String,
    dns_names: Vec<String>,
    not_before: SystemTime,
    not_after: SystemTime,
    leaf_rsa: RsaFixtureKey,
}

impl ChainBuilder {
    /// Leaf subject common name (default `leaf.testkit.local`).
    #[must_use]
    pub fn common_name(mut self, cn: &str) -> Self {
        self.common_name = cn.to_owned();
        self
    }

    /// Leaf DNS subject alternative names (default: the common name).
    #[must_use]
    pub fn dns_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.dns_names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Leaf validity (default: from one hour ago to 365 days from now).
    #[must_use]
    pub fn validity(mut self, not_before: SystemTime, not_after: SystemTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }

    /// For an RSA chain, the checked-in key of the leaf (default [`RsaFixtureKey::Leaf`]);
    /// [`RsaFixtureKey::Client`] makes client certificates (Entra client assertions). ECDSA
    /// chains ignore it.
    #[must_use]
    pub fn rsa_leaf_key(mut self, key: RsaFixtureKey) -> Self {
        self.leaf_rsa = key;
        self
    }

    /// Issues the chain.
    ///
    /// # Errors
    ///
    /// When rcgen refuses the parameters (e.g. an invalid DNS name).
    pub fn build(self) -> Result<CertChain> {
        let now = SystemTime::now();
        let ca_from = now - Duration::from_secs(24 * 3600);
        let ca_to = now + Duration::from_secs(20 * 365 * 24 * 3600);

        let root_key = key_pair(self.kind, RsaFixtureKey::Root)?;
        let root_name = format!("testkit {} root CA", self.kind.kty());
        let root_params = ca_params(&root_name, ca_from, ca_to)?;
        let root = issue(&root_name, root_params.self_signed(&root_key))?;
        let root_issuer = Issuer::new(root_params, root_key);

        let int_key = key_pair(self.kind, RsaFixtureKey::Intermediate)?;
        let int_name = format!("testkit {} intermediate CA", self.kind.kty());
        let int_params = ca_params(&int_name, ca_from, ca_to)?;
        let intermediate = issue(&int_name, int_params.signed_by(&int_key, &root_issuer))?;
        let int_issuer = Issuer::new(int_params, int_key);

        let leaf_key = PrivateKey::new(self.kind, self.leaf_rsa)?;
        let dns = if self.dns_names.is_empty() {
            vec![self.common_name.clone()]
        } else {
            self.dns_names.clone()
        };
        let mut params = CertificateParams::new(dns).map_err(|source| CertError::Issue {
            subject: self.common_name.clone(),
            source,
        })?;
        params.distinguished_name = dn(&self.common_name);
        params.serial_number = Some(random_serial()?);
        params.not_before = self.not_before.into();
        params.not_after = self.not_after.into();
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let leaf = issue(
            &self.common_name,
            params.signed_by(&leaf_key.key_pair()?, &int_issuer),
        )?;

        Ok(CertChain {
            root,
            intermediate,
            leaf,
            leaf_key,
        })
    }
}

impl CertChain {
    /// Starts a chain with keys of `kind`.
    pub fn builder(kind: KeyKind) -> ChainBuilder {
        let now = SystemTime::now();
        ChainBuilder {
            kind,
            common_name: "leaf.testkit.local".into(),
            dns_names: Vec::new(),
            not_before: now - Duration::from_secs(3600),
            not_after: now + Duration::from_secs(365 * 24 * 3600),
            leaf_rsa: RsaFixtureKey::Leaf,
        }
    }

    /// The root CA certificate.
    pub fn root(&self) -> &Cert {
        &self.root
    }

    /// The intermediate CA certificate.
    pub fn intermediate(&self) -> &Cert {
        &self.intermediate
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &Cert {
        &self.leaf
    }

    /// The leaf's private key.
    pub fn leaf_key(&self) -> &PrivateKey {
        &self.leaf_key
    }

    /// Leaf, intermediate, root.
    pub fn certs_leaf_first(&self) -> [&Cert; 3] {
        [&self.leaf, &self.intermediate, &self.root]
    }

    /// A PEM bundle with `parts` in the given order (a part may be left out or repeated).
    pub fn pem_bundle(&self, parts: &[PemPart]) -> String {
        parts
            .iter()
            .map(|p| match p {
                PemPart::Key => self.leaf_key.pkcs8_pem(),
                PemPart::Leaf => self.leaf.pem(),
                PemPart::Intermediate => self.intermediate.pem(),
                PemPart::Root => self.root.pem(),
            })
            .collect()
    }

    /// The PKCS#12 file Key Vault stores for this certificate: key and full chain, empty
    /// password.
    ///
    /// # Errors
    ///
    /// When p12-keystore fails to encode.
    pub fn pfx(&self, encryption: PfxEncryption) -> Result<Vec<u8>> {
        self.pfx_with_password(encryption, "")
    }

    /// Like [`CertChain::pfx`] with a password.
    ///
    /// # Errors
    ///
    /// When p12-keystore fails to encode.
    pub fn pfx_with_password(&self, encryption: PfxEncryption, password: &str) -> Result<Vec<u8>> {
        let key = P12Key::from_der(self.leaf_key.pkcs8_der()).map_err(CertError::Pkcs12)?;
        let certs = self
            .certs_leaf_first()
            .iter()
            .map(|c| P12Cert::from_der(c.der()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(CertError::Pkcs12)?;
        let chain = PrivateKeyChain::new(self.leaf.sha1_thumbprint(), key, certs);
        let mut store = KeyStore::new();
        store.add_entry(
            &self.leaf.common_name,
            KeyStoreEntry::PrivateKeyChain(chain),
        );
        write_pfx(&store, encryption, password)
    }

    /// A PKCS#12 file holding only the certificates (what a non-exportable certificate's
    /// backing secret holds).
    ///
    /// # Errors
    ///
    /// When p12-keystore fails to encode.
    pub fn pfx_certificates_only(&self, encryption: PfxEncryption) -> Result<Vec<u8>> {
        let mut store = KeyStore::new();
        for (i, c) in self.certs_leaf_first().iter().enumerate() {
            let cert = P12Cert::from_der(c.der()).map_err(CertError::Pkcs12)?;
            store.add_entry(
                &format!("{i}-{}", c.common_name),
                KeyStoreEntry::Certificate(cert),
            );
        }
        write_pfx(&store, encryption, "")
    }
}

fn write_pfx(store: &KeyStore, encryption: PfxEncryption, password: &str) -> Result<Vec<u8>> {
    let (enc, mac) = match encryption {
        PfxEncryption::Modern => (
            EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
            MacAlgorithm::HmacSha256,
        ),
        PfxEncryption::Legacy3Des => (
            EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
            MacAlgorithm::HmacSha1,
        ),
        // p12-keystore names RC2-40 "Rc4" (its OID is pbeWithSHAAnd40BitRC2-CBC).
        PfxEncryption::LegacyRc2 => (
            EncryptionAlgorithm::PbeWithShaAnd40BitRc4Cbc,
            MacAlgorithm::HmacSha1,
        ),
    };
    store
        .writer(password)
        .encryption_algorithm(enc)
        .mac_algorithm(mac)
        .encryption_iterations(2048)
        .mac_iterations(2048)
        .write()
        .map_err(CertError::Pkcs12)
}

/// PEM text with LF line endings, as openssl, Kubernetes and Key Vault write it (the pem
/// crate's default is CRLF).
pub(crate) fn pem_text(p: &pem::Pem) -> String {
    pem::encode_config(
        p,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

fn signature_algorithm(kind: KeyKind) -> &'static rcgen::SignatureAlgorithm {
    match kind {
        KeyKind::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
        KeyKind::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyKind::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    }
}

fn key_pair(kind: KeyKind, rsa: RsaFixtureKey) -> Result<KeyPair> {
    let made = match kind {
        KeyKind::Rsa2048 => KeyPair::from_pem_and_sign_algo(rsa.pem(), &rcgen::PKCS_RSA_SHA256),
        other => KeyPair::generate_for(signature_algorithm(other)),
    };
    made.map_err(|source| CertError::Issue {
        subject: "(key)".into(),
        source,
    })
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn random_serial() -> Result<SerialNumber> {
    let mut bytes = crate::ids::try_random_bytes::<16>().ok_or(CertError::Random)?;
    bytes[0] &= 0x7f; // positive INTEGER
    Ok(SerialNumber::from_slice(&bytes))
}

fn ca_params(cn: &str, from: SystemTime, to: SystemTime) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn(cn);
    params.serial_number = Some(random_serial()?);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = from.into();
    params.not_after = to.into();
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

fn issue(
    subject: &str,
    made: std::result::Result<rcgen::Certificate, rcgen::Error>,
) -> Result<Cert> {
    let cert = made.map_err(|source| CertError::Issue {
        subject: subject.into(),
        source,
    })?;
    Ok(Cert {
        common_name: subject.to_owned(),
        der: cert.der().to_vec(),
    })
}
