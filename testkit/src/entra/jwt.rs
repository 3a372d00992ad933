//! JWTs the token endpoint reads: client assertions signed with a certificate's key, and
//! Kubernetes service-account tokens from an external issuer (workload identity).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use x509_parser::prelude::{FromDer as _, X509Certificate};

use crate::certs::{Cert, RsaFixtureKey};
use crate::clock::Clock;
use crate::jws::{self, Rs256Key};

/// A parsed, not yet verified, compact JWS.
pub(crate) struct Jwt {
    pub header: Value,
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    /// Splits and decodes `token`; `None` when it is not a JWS with JSON header and claims.
    pub fn parse(token: &str) -> Option<Self> {
        let parts = jws::Parts::split(token.trim())?;
        Some(Self {
            header: jws::decode_json(parts.header)?,
            claims: jws::decode_json(parts.payload)?,
            signature: jws::decode(parts.signature)?,
            signing_input: parts.signing_input.to_owned(),
        })
    }

    /// The `alg` header.
    pub fn alg(&self) -> &str {
        self.header["alg"].as_str().unwrap_or_default()
    }

    /// A string claim.
    pub fn claim(&self, name: &str) -> Option<&str> {
        self.claims[name].as_str()
    }

    /// A numeric claim (seconds).
    pub fn seconds(&self, name: &str) -> Option<u64> {
        self.claims[name].as_u64()
    }

    /// Whether the `aud` claim (string or array) contains `expected`.
    pub fn has_audience(&self, expected: &str) -> bool {
        match &self.claims["aud"] {
            Value::String(s) => s == expected,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(expected)),
            _ => false,
        }
    }

    /// The `aud` claim as text (for messages).
    pub fn audience_text(&self) -> String {
        match &self.claims["aud"] {
            Value::String(s) => s.clone(),
            Value::Array(a) => a
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(","),
            _ => String::new(),
        }
    }

    /// Verifies an RS256 signature with an RSA public key (PKCS#1 `RSAPublicKey` DER).
    pub fn verify_rs256(&self, rsa_public_key: &[u8]) -> bool {
        jws::verify_rs256(rsa_public_key, &self.signing_input, &self.signature)
    }

    /// The certificate thumbprint the header names: `x5t#S256` (SHA-256) or `x5t` (SHA-1),
    /// each accepted in base64url or standard base64.
    pub fn thumbprint(&self) -> Option<Thumbprint> {
        if let Some(t) = self.header["x5t#S256"].as_str().and_then(decode_any_base64) {
            return Some(Thumbprint::Sha256(t));
        }
        self.header["x5t"]
            .as_str()
            .and_then(decode_any_base64)
            .map(Thumbprint::Sha1)
    }
}

/// A certificate thumbprint from a JWT header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Thumbprint {
    Sha1(Vec<u8>),
    Sha256(Vec<u8>),
}

impl Thumbprint {
    /// Whether it names `cert`.
    pub fn names(&self, cert: &Cert) -> bool {
        match self {
            Thumbprint::Sha1(t) => *t == cert.sha1_thumbprint(),
            Thumbprint::Sha256(t) => *t == cert.sha256_thumbprint(),
        }
    }

    /// Upper-case hex, as Entra prints thumbprints in its messages.
    pub fn hex(&self) -> String {
        let (Thumbprint::Sha1(b) | Thumbprint::Sha256(b)) = self;
        b.iter().map(|x| format!("{x:02X}")).collect()
    }
}

fn decode_any_base64(s: &str) -> Option<Vec<u8>> {
    [URL_SAFE_NO_PAD, URL_SAFE, STANDARD, STANDARD_NO_PAD]
        .iter()
        .find_map(|e| e.decode(s).ok())
}

/// The RSA public key (PKCS#1 DER) and validity (Unix seconds) of a certificate; `None` for
/// non-RSA keys or unparsable DER.
pub(crate) fn rsa_key_and_validity(cert: &Cert) -> Option<(Vec<u8>, u64, u64)> {
    let (_, parsed) = X509Certificate::from_der(cert.der()).ok()?;
    let spki = parsed.public_key();
    // rsaEncryption
    if spki.algorithm.algorithm.to_id_string() != "1.2.840.113549.1.1.1" {
        return None;
    }
    let validity = parsed.validity();
    Some((
        spki.subject_public_key.data.to_vec(),
        u64::try_from(validity.not_before.timestamp()).unwrap_or_default(),
        u64::try_from(validity.not_after.timestamp()).unwrap_or_default(),
    ))
}

/// A Kubernetes service-account token (projected into a pod for workload identity). `Debug`
/// does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct FederatedToken(String);

impl FederatedToken {
    /// The compact JWS text, as written to `AZURE_FEDERATED_TOKEN_FILE`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for FederatedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FederatedToken(..)")
    }
}

/// The checked-in service-account signing key could not be read (a broken checkout).
#[derive(Debug, thiserror::Error)]
#[error("the checked-in service-account signing key was rejected: {0}")]
pub struct SigningKeyError(String);

/// A Kubernetes service-account token issuer (a cluster's OIDC issuer), with its own RSA
/// signing key (`fixtures/rsa/intermediate.pem`, not the access-token key).
pub struct ServiceAccountIssuer {
    url: String,
    key: Rs256Key,
    kid: String,
    clock: Clock,
}

impl fmt::Debug for ServiceAccountIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountIssuer")
            .field("url", &self.url)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountIssuer {
    /// An issuer at `url` (the `iss` of its tokens) reading time from `clock`.
    ///
    /// # Errors
    ///
    /// If the checked-in key cannot be parsed (a broken checkout).
    pub fn new(url: &str, clock: Clock) -> Result<Self, SigningKeyError> {
        let key = Rs256Key::from_fixture(RsaFixtureKey::Intermediate).map_err(SigningKeyError)?;
        let kid = key.key_id(&ring::digest::SHA256);
        Ok(Self {
            url: url.to_owned(),
            key,
            kid,
            clock,
        })
    }

    /// The issuer URL (`iss`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The key id in the `kid` header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// A token for service account `namespace/name` with audience `audience` (normally
    /// [`super::TOKEN_EXCHANGE_AUDIENCE`]), valid from now for `lifetime`, shaped like a
    /// kubelet-projected token.
    pub fn mint(
        &self,
        namespace: &str,
        service_account: &str,
        audience: &str,
        lifetime: Duration,
    ) -> FederatedToken {
        let now = self.clock.unix_seconds();
        self.mint_claims(&json!({
            "aud": [audience],
            "exp": now + lifetime.as_secs(),
            "iat": now,
            "nbf": now,
            "iss": self.url,
            "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {
                    "name": service_account,
                    "uid": crate::token::derived_guid("sa", &format!("{namespace}/{service_account}")),
                },
            },
        }))
    }

    /// Signs arbitrary `claims` with this issuer's key (RS256), for tests that need a token
    /// the kubelet would not write (another `iss`, a missing claim).
    pub fn mint_claims(&self, claims: &Value) -> FederatedToken {
        FederatedToken(
            self.key
                .sign(&json!({ "alg": "RS256", "kid": self.kid }), claims),
        )
    }

    /// Whether `jwt` carries this issuer's `kid` and signature.
    pub(crate) fn signed(&self, jwt: &Jwt) -> bool {
        jwt.header["kid"].as_str() == Some(self.kid.as_str())
            && jwt.verify_rs256(self.key.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account_tokens_verify_and_do_not_print() {
        let issuer =
            ServiceAccountIssuer::new("https://oidc.example/", Clock::manual_at_unix(1_000))
                .expect("issuer");
        let t = issuer.mint(
            "ns",
            "sa",
            "api://AzureADTokenExchange",
            Duration::from_secs(60),
        );
        let jwt = Jwt::parse(t.as_str()).expect("parse");
        assert!(issuer.signed(&jwt));
        assert_eq!(jwt.claim("sub"), Some("system:serviceaccount:ns:sa"));
        assert!(jwt.has_audience("api://AzureADTokenExchange"));
        assert_eq!(jwt.seconds("exp"), Some(1_060));
        assert_eq!(format!("{t:?}"), "FederatedToken(..)");
    }

    #[test]
    fn thumbprints_are_read_in_either_base64_alphabet() {
        let der = b"not really a certificate";
        let cert = Cert::from_der(der);
        let sha1 = cert.sha1_thumbprint();
        for x5t in [URL_SAFE_NO_PAD.encode(&sha1), STANDARD.encode(&sha1)] {
            let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "RS256", "x5t": x5t }).to_string());
            let jwt = Jwt::parse(&format!("{header}.e30.c2ln")).expect("parse");
            assert!(jwt.thumbprint().expect("thumbprint").names(&cert));
        }
    }
}
