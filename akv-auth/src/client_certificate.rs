//! Service principal with a client certificate, without openssl: our own client assertion
//! (RS256 JWT with `x5t` and `x5t#S256`, signed with ring) fed to azure_identity's
//! `ClientAssertionCredential`. Keys come from a PFX (p12-keystore: legacy and modern
//! encryption) or PEM (certificate + PKCS#8 or PKCS#1 RSA key). Entra ID requires RSA: EC keys
//! are refused with a clear error.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use azure_core::credentials::{AccessToken, Secret, TokenCredential, TokenRequestOptions};
use azure_core::http::ClientMethodOptions;
use azure_identity::{ClientAssertion, ClientAssertionCredentialOptions};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use crate::credential::CredentialOptions;
use crate::error::{Error, Result, into_azure};
use crate::sdk_credential::{SdkCredential, require_service_principal};

/// Provider name used in errors.
pub const PROVIDER: &str = "client certificate credential";

/// Lifetime of one client assertion.
pub const ASSERTION_LIFETIME_SECS: u64 = 600;

/// Where the certificate comes from.
#[derive(Clone)]
pub enum CertificateSource {
    /// A PFX or PEM file.
    Path(PathBuf),
    /// PFX or PEM bytes.
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for CertificateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CertificateSource::Path(p) => f.debug_tuple("Path").field(p).finish(),
            CertificateSource::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

impl CertificateSource {
    fn name(&self) -> String {
        match self {
            CertificateSource::Path(p) => p.display().to_string(),
            CertificateSource::Bytes(_) => "(inline)".to_owned(),
        }
    }
}

/// Inputs of [`ClientCertificateCredential::new`].
#[derive(Clone, Debug)]
pub struct ClientCertificateOptions {
    /// Tenant id.
    pub tenant_id: String,
    /// Client (application) id.
    pub client_id: String,
    /// PFX or PEM.
    pub certificate: CertificateSource,
    /// PFX password (`AZURE_CERTIFICATE_PASSWORD` / `aadClientCertPassword`); `None` = empty.
    pub password: Option<Secret>,
    /// Cloud, HTTP, cache.
    pub common: CredentialOptions,
}

/// An RSA signing key and its certificate's thumbprints.
pub struct SigningCertificate {
    key: RsaKeyPair,
    x5t: String,
    x5t_s256: String,
}

impl std::fmt::Debug for SigningCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningCertificate")
            .field("x5t", &self.x5t)
            .finish_non_exhaustive()
    }
}

const EC_OID_DER: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

impl SigningCertificate {
    /// Loads a PFX or PEM (detected by content).
    ///
    /// # Errors
    ///
    /// [`Error::Certificate`]: unreadable, wrong password, no key, EC key, key and certificate
    /// that do not match.
    pub fn load(source: &CertificateSource, password: Option<&Secret>) -> Result<Self> {
        let name = source.name();
        let bytes = match source {
            CertificateSource::Path(p) => std::fs::read(p).map_err(|e| Error::ReadFile {
                what: "client certificate",
                path: p.clone(),
                source: e,
            })?,
            CertificateSource::Bytes(b) => b.clone(),
        };
        let bad = |reason: &str| Error::Certificate {
            source_name: name.clone(),
            reason: reason.to_owned(),
        };
        let (key_der, pkcs1, certs) = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let blocks = pem::parse_many(&bytes).map_err(|_| bad("not valid PEM"))?;
            let mut key = None;
            let mut certs = Vec::new();
            for b in blocks {
                match b.tag() {
                    "CERTIFICATE" => certs.push(b.into_contents()),
                    "PRIVATE KEY" => key = Some((b.into_contents(), false)),
                    "RSA PRIVATE KEY" => key = Some((b.into_contents(), true)),
                    "EC PRIVATE KEY" => {
                        return Err(bad(
                            "the key is an EC key: Entra ID client assertions need an RSA key (RS256)",
                        ));
                    }
                    "ENCRYPTED PRIVATE KEY" => {
                        return Err(bad(
                            "encrypted PEM keys are not supported: use a PFX with a password, or an unencrypted PEM key",
                        ));
                    }
                    _ => {}
                }
            }
            let (k, pkcs1) = key.ok_or_else(|| bad("the PEM holds no private key"))?;
            (k, pkcs1, certs)
        } else {
            let pw = password.map(|p| p.secret().to_owned()).unwrap_or_default();
            let store = p12_keystore::KeyStore::from_pkcs12(
                &bytes,
                &pw,
                p12_keystore::Pkcs12ImportPolicy::Relaxed,
            )
            .map_err(|_| {
                bad("not a readable PFX: check the file and the password (AZURE_CERTIFICATE_PASSWORD / aadClientCertPassword)")
            })?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| bad("the PFX holds no private key"))?;
            let certs = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
            (chain.key().as_der().to_vec(), false, certs)
        };
        let key = if pkcs1 {
            RsaKeyPair::from_der(&key_der)
        } else {
            RsaKeyPair::from_pkcs8(&key_der)
        }
        .map_err(|_| {
            if key_der.windows(EC_OID_DER.len()).any(|w| w == EC_OID_DER) {
                bad("the key is an EC key: Entra ID client assertions need an RSA key (RS256)")
            } else {
                bad("the private key is not a usable RSA key (2048 bits or more)")
            }
        })?;
        let public = key.public().as_ref().to_vec();
        let leaf = certs
            .iter()
            .find(|der| cert_public_key(der).is_some_and(|k| k == public))
            .ok_or_else(|| bad("no certificate matches the private key"))?;
        let sha1 = ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, leaf);
        let sha256 = ring::digest::digest(&ring::digest::SHA256, leaf);
        Ok(Self {
            key,
            x5t: URL_SAFE_NO_PAD.encode(sha1),
            x5t_s256: URL_SAFE_NO_PAD.encode(sha256),
        })
    }

    /// The certificate's SHA-1 thumbprint, base64url (`x5t`).
    pub fn x5t(&self) -> &str {
        &self.x5t
    }

    /// Signs a client assertion for `client_id` at `audience` (the token endpoint), valid
    /// from now for [`ASSERTION_LIFETIME_SECS`].
    ///
    /// # Errors
    ///
    /// [`Error::Certificate`] if signing fails.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String> {
        let rng = SystemRandom::new();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| self.sign_error())?;
        let header = serde_json::json!({
            "alg": "RS256", "typ": "JWT", "x5t": self.x5t, "x5t#S256": self.x5t_s256,
        });
        let claims = serde_json::json!({
            "aud": audience, "iss": client_id, "sub": client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "nbf": now, "iat": now, "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
            .map_err(|_| self.sign_error())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }

    fn sign_error(&self) -> Error {
        Error::Certificate {
            source_name: self.x5t.clone(),
            reason: "signing the client assertion failed".into(),
        }
    }
}

/// The PKCS#1 RSAPublicKey DER inside a certificate's SubjectPublicKeyInfo.
fn cert_public_key(der: &[u8]) -> Option<Vec<u8>> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.public_key().subject_public_key.data.to_vec())
}

#[derive(Debug)]
struct Assertion {
    cert: Arc<SigningCertificate>,
    client_id: String,
    audience: String,
}

#[async_trait::async_trait]
impl ClientAssertion for Assertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.cert
            .assertion(&self.client_id, &self.audience)
            .map_err(into_azure)
    }
}

/// A service principal authenticating with a certificate.
pub struct ClientCertificateCredential {
    sdk: SdkCredential,
    client_id: String,
}

impl ClientCertificateCredential {
    /// Loads the certificate and builds the credential.
    ///
    /// # Errors
    ///
    /// [`Error::Certificate`] / [`Error::ReadFile`] for the certificate,
    /// [`Error::InvalidConfig`] for empty ids.
    pub fn new(opts: ClientCertificateOptions) -> Result<Arc<Self>> {
        require_service_principal(&opts.tenant_id, &opts.client_id)?;
        let cert = Arc::new(SigningCertificate::load(
            &opts.certificate,
            opts.password.as_ref(),
        )?);
        let assertion = Assertion {
            cert,
            client_id: opts.client_id.clone(),
            audience: opts.common.cloud.token_endpoint(&opts.tenant_id),
        };
        let sdk = SdkCredential::build(
            PROVIDER,
            &opts.common,
            &opts.common.cloud,
            |client_options| {
                azure_identity::ClientAssertionCredential::new(
                    opts.tenant_id,
                    opts.client_id.clone(),
                    assertion,
                    Some(ClientAssertionCredentialOptions { client_options }),
                )
            },
        )?;
        Ok(Arc::new(Self {
            sdk,
            client_id: opts.client_id,
        }))
    }
}

impl std::fmt::Debug for ClientCertificateCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCertificateCredential")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl TokenCredential for ClientCertificateCredential {
    async fn get_token(
        &self,
        scopes: &[&str],
        options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        self.sdk.get_token(scopes, options).await
    }
}
