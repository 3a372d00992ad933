//! The CA behind the fakes' TLS: [`TestCa`] and the [`ServerIdentity`] it issues.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use super::{Cert, CertError, Result, ca_params, dn, issue, random_serial};

/// The CA that issues the fakes' TLS serving certificates (ECDSA P-256).
///
/// Point clients at [`TestCa::pem`] (or the file from [`TestCa::write_pem`], as
/// `SSL_CERT_FILE`) to trust the fakes.
pub struct TestCa {
    cert: Cert,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for TestCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestCa")
            .field("cert", &self.cert.common_name)
            .finish_non_exhaustive()
    }
}

/// A serving certificate chain and key for rustls.
pub struct ServerIdentity {
    /// Leaf first, then the CA.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's key.
    pub key: PrivateKeyDer<'static>,
}

impl fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("certs", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl TestCa {
    /// A fresh CA, valid from a day ago for twenty years.
    ///
    /// # Errors
    ///
    /// When key generation or signing fails.
    pub fn new() -> Result<Self> {
        let name = "testkit CA";
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
            CertError::Issue {
                subject: name.into(),
                source,
            }
        })?;
        let now = SystemTime::now();
        let params = ca_params(
            name,
            now - Duration::from_secs(24 * 3600),
            now + Duration::from_secs(20 * 365 * 24 * 3600),
        )?;
        let cert = issue(name, params.self_signed(&key))?;
        Ok(Self {
            cert,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate.
    pub fn cert(&self) -> &Cert {
        &self.cert
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes the CA certificate to `dir/testkit-ca.pem` and returns the path.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_pem(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join("testkit-ca.pem");
        std::fs::write(&path, self.pem()).map_err(|source| CertError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Issues a serving certificate for `names` (DNS names, wildcards allowed, or IP
    /// addresses).
    ///
    /// # Errors
    ///
    /// When a name is not a valid DNS name or IP address.
    pub fn issue_server(&self, names: &[&str]) -> Result<ServerIdentity> {
        let subject = names.first().copied().unwrap_or("testkit server");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| {
            CertError::Issue {
                subject: subject.into(),
                source,
            }
        })?;
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .map_err(|source| CertError::Issue {
                    subject: subject.into(),
                    source,
                })?;
        params.distinguished_name = dn(subject);
        params.serial_number = Some(random_serial()?);
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(3600)).into();
        params.not_after = (now + Duration::from_secs(10 * 365 * 24 * 3600)).into();
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let leaf = issue(subject, params.signed_by(&key, &self.issuer))?;
        Ok(ServerIdentity {
            chain: vec![
                CertificateDer::from(leaf.der().to_vec()),
                CertificateDer::from(self.cert.der().to_vec()),
            ],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        })
    }
}
