//! Compact JWS (RFC 7515) signed with RS256: the encoding, signing and verifying that the
//! access-token issuer ([`crate::token`]) and the Entra fake's JWT readers and service-account
//! issuer share. What a token must claim is each caller's business.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{self, KeyPair as _, RsaKeyPair};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::certs::RsaFixtureKey;

/// The three base64url parts of a compact JWS, not decoded yet.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Parts<'a> {
    pub header: &'a str,
    pub payload: &'a str,
    pub signature: &'a str,
    /// `header.payload`: what the signature covers.
    pub signing_input: &'a str,
}

impl<'a> Parts<'a> {
    /// Splits `token` into exactly three `.`-separated parts.
    pub fn split(token: &'a str) -> Option<Self> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        Some(Self {
            header,
            payload,
            signature,
            signing_input: &token[..header.len() + 1 + payload.len()],
        })
    }
}

/// Base64url without padding, as JWS writes every part.
pub(crate) fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes one base64url part.
pub(crate) fn decode(part: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(part).ok()
}

/// Decodes one base64url part holding JSON.
pub(crate) fn decode_json<T: DeserializeOwned>(part: &str) -> Option<T> {
    serde_json::from_slice(&decode(part)?).ok()
}

/// Whether `signature` over `signing_input` is a valid RS256 signature by the RSA public key
/// `public_key` (PKCS#1 `RSAPublicKey` DER).
pub(crate) fn verify_rs256(public_key: &[u8], signing_input: &str, signature: &[u8]) -> bool {
    signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public_key)
        .verify(signing_input.as_bytes(), signature)
        .is_ok()
}

/// A checked-in RSA key that signs RS256 JWS.
pub(crate) struct Rs256Key {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl Rs256Key {
    /// Reads a checked-in key.
    ///
    /// # Errors
    ///
    /// Why the PEM or PKCS#8 document was rejected (a broken checkout).
    pub fn from_fixture(fixture: RsaFixtureKey) -> Result<Self, String> {
        let pem = pem::parse(fixture.pem()).map_err(|e| e.to_string())?;
        let key = RsaKeyPair::from_pkcs8(pem.contents()).map_err(|e| e.to_string())?;
        Ok(Self {
            key,
            rng: SystemRandom::new(),
        })
    }

    /// The public key as PKCS#1 `RSAPublicKey` DER.
    pub fn public_key(&self) -> &[u8] {
        self.key.public_key().as_ref()
    }

    /// The modulus and exponent, for a JWK.
    pub fn public_components(&self) -> signature::RsaPublicKeyComponents<Vec<u8>> {
        self.key.public().into()
    }

    /// A key id: base64url of `digest` over the public key.
    pub fn key_id(&self, digest: &'static ring::digest::Algorithm) -> String {
        encode(ring::digest::digest(digest, self.public_key()))
    }

    /// The compact JWS of `header` and `claims`, signed RS256 (the header should say so).
    pub fn sign(&self, header: &serde_json::Value, claims: &impl Serialize) -> String {
        let signing_input = format!(
            "{}.{}",
            encode(header.to_string()),
            encode(serde_json::to_vec(claims).unwrap_or_default())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &self.rng,
                signing_input.as_bytes(),
                &mut sig,
            )
            .expect("invariant: RSA signing with a parsed key and modulus-sized buffer");
        format!("{signing_input}.{}", encode(sig))
    }

    /// Whether `signature` over `signing_input` is this key's.
    pub fn verifies(&self, signing_input: &str, signature: &[u8]) -> bool {
        verify_rs256(self.public_key(), signing_input, signature)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn signed_tokens_split_decode_and_verify() {
        let key = Rs256Key::from_fixture(RsaFixtureKey::TokenSigning).expect("key");
        let token = key.sign(&json!({ "alg": "RS256" }), &json!({ "sub": "x" }));
        let parts = Parts::split(&token).expect("three parts");
        assert_eq!(
            decode_json::<serde_json::Value>(parts.payload),
            Some(json!({ "sub": "x" }))
        );
        let sig = decode(parts.signature).expect("base64url");
        assert!(key.verifies(parts.signing_input, &sig));
        assert!(!key.verifies(&format!("{}x", parts.signing_input), &sig));
        assert!(Parts::split("a.b").is_none());
        assert!(Parts::split("a.b.c.d").is_none());
    }
}
