//! Faithful fakes of the services akv2k8s-rs talks to, on loopback, for tests and the demo.
//!
//! # Place in the crate graph
//!
//! `testkit` depends on **no** workspace crate: it speaks wire protocols only, so every library
//! can take it as a dev-dependency without cycles or duplicate types. The `akv2k8s` CLI is its
//! only run-time user (`demo`, `sandbox`).
//!
//! # What is here
//!
//! * [`vault`]: the Azure Key Vault data plane over HTTPS, many vaults by `Host`, challenge
//!   authentication, token checks (audience, tenant, principal, expiry), access policies and
//!   RBAC down to one object, real error bodies, paging.
//! * [`entra`]: the Entra ID token endpoint over HTTPS for every cloud's authority host: client
//!   secrets, certificate assertions, workload identity federation, ROPC, Entra's error bodies.
//! * [`imds`]: the IMDS managed identity endpoint over plain HTTP, and aad-pod-identity's NMI
//!   (assignment window, unbound pods) in front of it.
//! * [`certs`]: the certificate factory (RSA and ECDSA chains, PEM bundles in any order, PFX
//!   legacy and modern, openssl-made fixtures) and the CA behind the fakes' TLS.
//! * [`token`]: Entra-shaped JWT access tokens signed by a testkit key.
//! * [`faults`]: fault injection, request counters and request logs shared by every fake.
//! * [`clock`]: the controllable clock every time-dependent behaviour reads.
//! * [`fixtures`]: the YAML fixture format for vaults, objects and principals.
//! * [`server`]: the HTTP(S) plumbing the fakes share.
//!
//! Clients reach the fakes with production URLs: only name resolution is redirected
//! (see [`vault::KeyVaultFake::resolve_overrides`]) and the testkit CA is trusted.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use testkit::token::Principal;
//! use testkit::vault::{KeyVaultFake, Permissions, SecretSpec, VaultSpec};
//!
//! testkit::install_crypto_provider();
//! let kv = KeyVaultFake::start(Default::default()).await?;
//! let app = Principal::new("app");
//! kv.create_vault(VaultSpec::new("demo-vault").grant(&app, Permissions::read_all()))?;
//! kv.set_secret("demo-vault", "greeting", SecretSpec::new("hello"))?;
//!
//! let (host, addr) = kv.resolve_overrides().remove(0);
//! let http = reqwest::Client::builder()
//!     .resolve(&host, addr)
//!     .tls_certs_only([reqwest::Certificate::from_pem(kv.ca_pem().as_bytes())?])
//!     .build()?;
//! let url = "https://demo-vault.vault.azure.net/secrets/greeting/?api-version=2025-07-01";
//! let challenge = http.get(url).send().await?;
//! assert_eq!(challenge.status(), 401);
//! let token = kv.token_for("demo-vault", &app)?;
//! let secret: serde_json::Value = http.get(url).bearer_auth(token.as_str()).send().await?.json().await?;
//! assert_eq!(secret["value"], "hello");
//! assert_eq!(kv.log().counts().authorized, 1);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod apiserver;
pub mod certs;
pub mod clock;
pub mod cloud;
pub mod entra;
pub mod faults;
pub mod fixtures;
pub mod imds;
pub mod server;
pub mod token;
pub mod vault;

mod ids;
mod jws;

/// Installs rustls' ring provider as the process default, once. reqwest built without a
/// provider (as in this workspace) panics without it; every test and `main` calls this first.
pub fn install_crypto_provider() {
    // Err means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
