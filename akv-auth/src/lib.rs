//! Azure credential providers for akv2k8s-rs.
//!
//! Every provider akv2k8s users rely on, behind azure_core's
//! [`TokenCredential`](azure_core::credentials::TokenCredential), each caching tokens per scope
//! and refreshing them before expiry ([`cache`]), with typed errors ([`Error`]) that say what to
//! fix and never contain a secret:
//!
//! | mode (`AUTH_TYPE`) | providers, in precedence order |
//! |---|---|
//! | `azureCloudConfig` (default) | [`CloudConfig`]: managed identity → client secret → client certificate |
//! | `environment` | [`EnvironmentCredential`]: client secret → client certificate → username/password → managed identity |
//! | `environment-azidentity` | [`DefaultChain`]: environment → workload identity → managed identity |
//!
//! plus the in-pod launcher's [`AuthServiceClient`] / [`AuthServiceCredential`]. Select a mode
//! with [`AuthMode::from_env`] and build it with [`Credentials::new`]. Clouds are
//! [`CloudEnvironment`]s (every endpoint overridable); HTTP clients come from [`HttpOptions`]
//! (resolve override `AKV2K8S_RESOLVE`, extra roots, bounded retries, immediate TLS errors);
//! environment variables are read through [`Env`].
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `akv-auth` depends on no other workspace crate and never on `kube`.
//!
//! # Example
//!
//! A client secret credential reaching the testkit Entra ID fake by its production host name
//! (`login.microsoftonline.com`) through the resolve override:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> anyhow::Result<()> {
//! use akv_auth::{ClientSecretCredential, ClientSecretOptions, CredentialOptions, HttpOptions};
//! use azure_core::credentials::{Secret, TokenCredential};
//! use testkit::entra::{ClientSpec, EntraFake, EntraOptions};
//! use testkit::token::Principal;
//!
//! testkit::install_crypto_provider();
//! let entra = EntraFake::start(EntraOptions::default()).await?;
//! let app = Principal::new("controller");
//! entra.add_client(ClientSpec::new(&app).secret("s3cr3t"));
//!
//! let http = HttpOptions::default()
//!     .trust_only(entra.ca_pem())
//!     .resolve(entra.resolve_overrides());
//! let cred = ClientSecretCredential::new(ClientSecretOptions {
//!     tenant_id: app.tenant_id.clone(),
//!     client_id: app.app_id.clone(),
//!     secret: Secret::new("s3cr3t"),
//!     common: CredentialOptions { http, ..Default::default() },
//! })?;
//! let token = cred.get_token(&["https://vault.azure.net/.default"], None).await?;
//! assert!(!token.token.secret().is_empty());
//! // Cached: a second call does not reach Entra.
//! cred.get_token(&["https://vault.azure.net/.default"], None).await?;
//! assert_eq!(entra.log().counts().total, 1);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod auth_service;
pub mod cache;
pub mod chain;
pub mod client_certificate;
pub mod client_secret;
pub mod cloud;
pub mod cloud_config;
pub mod credential;
pub mod env;
pub mod environment;
pub mod error;
pub mod http;
pub mod managed_identity;
mod sdk_credential;
mod token_endpoint;
pub mod username_password;
pub mod workload_identity;

pub use auth_service::{
    AuthServiceClient, AuthServiceConfig, AuthServiceCredential, AuthServiceRequest,
    AuthServiceToken, ClientCertState,
};
pub use cache::{CachedCredential, TokenCache};
pub use chain::{DefaultChain, DefaultChainOptions};
pub use client_certificate::{
    CertificateSource, ClientCertificateCredential, ClientCertificateOptions, SigningCertificate,
};
pub use client_secret::{ClientSecretCredential, ClientSecretOptions};
pub use cloud::CloudEnvironment;
pub use cloud_config::{CloudConfig, CloudConfigSelection};
pub use credential::{AuthMode, AuthOptions, CredentialOptions, Credentials};
pub use env::Env;
pub use environment::{EnvironmentCredential, EnvironmentOptions, EnvironmentSelection};
pub use error::{Error, Result, aadsts_code};
pub use http::{HttpOptions, RetryConfig};
pub use managed_identity::{
    ImdsOptions, ManagedIdentityCredential, ManagedIdentityOptions, UserAssignedId,
};
pub use username_password::{UsernamePasswordCredential, UsernamePasswordOptions};
pub use workload_identity::{WorkloadIdentityCredential, WorkloadIdentityOptions};
