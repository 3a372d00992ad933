//! Access tokens: JWTs signed by a testkit key, shaped like Entra ID v1 access tokens.
//!
//! The [`TokenIssuer`] plays Entra's token signing: the Entra fake mints tokens with it and the
//! Key Vault fake verifies them (signature, `aud`, `tid`/`iss`, `oid`, `exp`/`nbf` on the
//! testkit clock). Tests may mint tokens directly to reach Key Vault without Entra.
//!
//! ```
//! use std::time::Duration;
//! use testkit::{clock::Clock, cloud::Cloud, token::{Principal, TokenIssuer}};
//!
//! let clock = Clock::manual();
//! let issuer = TokenIssuer::new(clock.clone())?;
//! let app = Principal::new("controller");
//! let token = issuer.mint_for(&app, &Cloud::PUBLIC, Cloud::PUBLIC.vault_audience, Duration::from_secs(3600));
//! let claims = issuer.verify(token.as_str())?;
//! assert_eq!(claims.oid, app.object_id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::certs::RsaFixtureKey;
use crate::clock::Clock;
use crate::cloud::Cloud;
use crate::jws::{self, Rs256Key};

/// The tenant testkit principals live in unless told otherwise.
pub const DEFAULT_TENANT_ID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A security principal (service principal or managed identity) as Entra knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// A name for tests and logs (never sent on the wire).
    pub name: String,
    /// Home tenant.
    #[serde(default = "default_tenant")]
    pub tenant_id: String,
    /// Object id (`oid`): what Key Vault access policies and role assignments name.
    pub object_id: String,
    /// Application (client) id (`appid`).
    pub app_id: String,
}

fn default_tenant() -> String {
    DEFAULT_TENANT_ID.to_owned()
}

impl Principal {
    /// A principal in the default tenant with ids derived from `name`, so that fixtures and
    /// tests agree on them without bookkeeping.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            object_id: derived_guid("oid", name),
            app_id: derived_guid("appid", name),
        }
    }

    /// The same principal in another tenant.
    #[must_use]
    pub fn in_tenant(mut self, tenant_id: &str) -> Self {
        self.tenant_id = tenant_id.to_owned();
        self
    }
}

/// A GUID-shaped id derived from `kind` and `name` (stable across runs).
pub fn derived_guid(kind: &str, name: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, format!("{kind}:{name}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    crate::ids::guid(b)
}

/// The claims of a testkit access token (a subset of Entra's v1 access token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Audience: the resource (`https://vault.azure.net`).
    pub aud: String,
    /// Issuer: `https://sts.windows.net/<tid>/` (per cloud).
    pub iss: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Not before (Unix seconds).
    pub nbf: u64,
    /// Expiry (Unix seconds).
    pub exp: u64,
    /// Application (client) id.
    pub appid: String,
    /// Object id of the principal.
    pub oid: String,
    /// Subject (the object id for app tokens).
    pub sub: String,
    /// Tenant id.
    pub tid: String,
    /// Token version, `1.0`.
    pub ver: String,
    /// `app` for application tokens.
    #[serde(default)]
    pub idtyp: String,
}

/// An encoded access token. `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// The compact JWS text, for an `Authorization: Bearer` header.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessToken(..)")
    }
}

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not three base64url parts, or not JSON.
    #[error("the token is malformed")]
    Malformed,
    /// The header names an algorithm other than RS256, or an unknown key.
    #[error("the token is signed with an unsupported algorithm or an unknown key")]
    UnsupportedKey,
    /// The signature does not verify.
    #[error("the token signature is invalid")]
    BadSignature,
}

/// Signs and verifies testkit access tokens with the checked-in RSA token-signing key.
pub struct TokenIssuer {
    key: Rs256Key,
    kid: String,
    clock: Clock,
}

impl fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Error building a [`TokenIssuer`].
#[derive(Debug, thiserror::Error)]
#[error("the checked-in token-signing key was rejected: {0}")]
pub struct IssuerKeyError(String);

impl TokenIssuer {
    /// An issuer reading time from `clock`.
    ///
    /// # Errors
    ///
    /// If the checked-in key cannot be parsed (a broken checkout).
    pub fn new(clock: Clock) -> Result<Self, IssuerKeyError> {
        let key = Rs256Key::from_fixture(RsaFixtureKey::TokenSigning).map_err(IssuerKeyError)?;
        let kid = key.key_id(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
        Ok(Self { key, kid, clock })
    }

    /// The clock tokens are stamped with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The key id written in the `kid` and `x5t` headers.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Claims for `principal` calling `audience` in `cloud`, valid from now for `lifetime`.
    pub fn claims_for(
        &self,
        principal: &Principal,
        cloud: &Cloud,
        audience: &str,
        lifetime: Duration,
    ) -> Claims {
        let now = self.clock.unix_seconds();
        Claims {
            aud: audience.to_owned(),
            iss: cloud.token_issuer(&principal.tenant_id),
            iat: now,
            nbf: now.saturating_sub(300),
            exp: now + lifetime.as_secs(),
            appid: principal.app_id.clone(),
            oid: principal.object_id.clone(),
            sub: principal.object_id.clone(),
            tid: principal.tenant_id.clone(),
            ver: "1.0".into(),
            idtyp: "app".into(),
        }
    }

    /// Mints a token for `principal` (see [`TokenIssuer::claims_for`]).
    pub fn mint_for(
        &self,
        principal: &Principal,
        cloud: &Cloud,
        audience: &str,
        lifetime: Duration,
    ) -> AccessToken {
        self.mint(&self.claims_for(principal, cloud, audience, lifetime))
    }

    /// The token Entra would issue `principal` for a Key Vault `scope`
    /// (`https://vault.azure.net/.default` or a sovereign cloud's): the audience is the scope
    /// without `/.default`, the issuer the cloud whose vault audience it is (the public cloud
    /// for any other), valid from now for `lifetime`. Returns the token and its `exp` (Unix
    /// seconds). What test stand-ins for a credential hand to the Azure SDK.
    pub fn mint_for_vault_scope(
        &self,
        principal: &Principal,
        scope: &str,
        lifetime: Duration,
    ) -> (AccessToken, u64) {
        let audience = scope.trim_end_matches("/.default");
        let cloud = Cloud::ALL
            .into_iter()
            .find(|c| c.vault_audience == audience)
            .unwrap_or(Cloud::PUBLIC);
        let claims = self.claims_for(principal, &cloud, audience, lifetime);
        (self.mint(&claims), claims.exp)
    }

    /// Signs `claims` as an RS256 JWT.
    pub fn mint(&self, claims: &Claims) -> AccessToken {
        let header =
            serde_json::json!({ "typ": "JWT", "alg": "RS256", "x5t": self.kid, "kid": self.kid });
        AccessToken(self.key.sign(&header, claims))
    }

    /// Verifies the signature of `token` and returns its claims. Audience, issuer and lifetime
    /// are the relying party's to check (see the Key Vault fake).
    ///
    /// # Errors
    ///
    /// [`TokenError`] when the token is malformed, names another key or algorithm, or its
    /// signature does not verify.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let parts = jws::Parts::split(token).ok_or(TokenError::Malformed)?;
        let header: serde_json::Value = decode_json(parts.header)?;
        if header["alg"] != "RS256" || header["kid"] != self.kid.as_str() {
            return Err(TokenError::UnsupportedKey);
        }
        let sig = jws::decode(parts.signature).ok_or(TokenError::Malformed)?;
        if !self.key.verifies(parts.signing_input, &sig) {
            return Err(TokenError::BadSignature);
        }
        decode_json(parts.payload)
    }

    /// The issuer's public key as a JWK (`kty`, `n`, `e`, `kid`, `use`), as Entra publishes
    /// its keys.
    pub fn jwk(&self) -> serde_json::Value {
        let components = self.key.public_components();
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": jws::encode(&components.n),
            "e": jws::encode(&components.e),
        })
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Result<T, TokenError> {
    jws::decode_json(part).ok_or(TokenError::Malformed)
}

/// Reads the claims of a JWT without verifying it (for tests that inspect tokens).
///
/// # Errors
///
/// [`TokenError::Malformed`] when it is not a JWT with JSON claims.
pub fn peek_claims(token: &str) -> Result<Claims, TokenError> {
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed)?;
    decode_json(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_scopes_pick_the_audience_and_the_cloud_of_their_vaults() {
        let issuer = TokenIssuer::new(Clock::manual_at_unix(1_700_000_000)).expect("issuer");
        let p = Principal::new("a");
        let life = Duration::from_secs(60);
        let (t, exp) = issuer.mint_for_vault_scope(&p, "https://vault.azure.cn/.default", life);
        let claims = issuer.verify(t.as_str()).expect("valid");
        assert_eq!(exp, 1_700_000_060);
        assert_eq!(claims.aud, "https://vault.azure.cn");
        assert_eq!(claims.iss, Cloud::CHINA.token_issuer(&p.tenant_id));
        let (t, _) = issuer.mint_for_vault_scope(&p, "https://example.org/.default", life);
        let claims = issuer.verify(t.as_str()).expect("valid");
        assert_eq!(claims.aud, "https://example.org");
        assert_eq!(claims.iss, Cloud::PUBLIC.token_issuer(&p.tenant_id));
    }

    #[test]
    fn minted_tokens_verify_and_tampering_is_detected() {
        let issuer = TokenIssuer::new(Clock::manual_at_unix(1_700_000_000)).expect("issuer");
        let p = Principal::new("a");
        let t = issuer.mint_for(
            &p,
            &Cloud::PUBLIC,
            "https://vault.azure.net",
            Duration::from_secs(60),
        );
        let claims = issuer.verify(t.as_str()).expect("valid");
        assert_eq!(claims.exp, 1_700_000_060);
        assert_eq!(
            claims.iss,
            format!("https://sts.windows.net/{DEFAULT_TENANT_ID}/")
        );
        assert_eq!(peek_claims(t.as_str()).expect("peek"), claims);

        let mut forged = claims.clone();
        forged.oid = Principal::new("b").object_id;
        let parts: Vec<&str> = t.as_str().split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            jws::encode(serde_json::to_vec(&forged).expect("json")),
            parts[2]
        );
        assert_eq!(issuer.verify(&tampered), Err(TokenError::BadSignature));
        assert_eq!(issuer.verify("a.b"), Err(TokenError::Malformed));
        assert!(!format!("{t:?}").contains(parts[2]));
    }

    #[test]
    fn derived_ids_are_stable_guids() {
        let a = Principal::new("controller");
        assert_eq!(a, Principal::new("controller"));
        assert_ne!(a.object_id, a.app_id);
        assert_eq!(a.object_id.len(), 36);
        assert_eq!(a.object_id.matches('-').count(), 4);
    }
}
