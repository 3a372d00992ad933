//! The Key Vault read plane of akv2k8s-rs.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins
//! ```
//!
//! `akv-client` never depends on `kube`. It takes credentials as
//! `Arc<dyn azure_core::credentials::TokenCredential>` (built by `akv-auth`'s `Credentials`),
//! its HTTP transport from `akv-auth`'s `HttpOptions` (resolve override, extra roots,
//! immediate TLS errors), and holds:
//!
//! * [`KeyVault`] / [`KeyVaultProvider`]: the port the controller and the launcher use, and
//!   [`azure::AzureKeyVaults`], its implementation on the official Azure SDK clients;
//! * the object model ([`object`]), certificates ([`cert`]), keys ([`key`]), secret values,
//!   multi-key-value secrets and transforms ([`secret`]);
//! * [`format::format`], the one function that turns an object into Secret, ConfigMap or env
//!   values;
//! * [`cache::ReadPlane`]: the process-wide cache with single-flight, per-vault budgets and
//!   retries, and its [`metrics::ClientMetrics`].
//!
//! # Example
//!
//! ```
//! use akv_client::cert::ChainOrder;
//! use akv_client::format::{FormatOptions, Material, ObjectSpec, ObjectType, Target, format};
//! use akv_client::object::SecretObject;
//!
//! let spec = ObjectSpec::new("db", ObjectType::Secret);
//! let material = Material::Secret(SecretObject {
//!     name: "db".into(),
//!     version: "v1".into(),
//!     content_type: None,
//!     value: "admin:pa:ss".into(),
//!     expires: None,
//! });
//! let target = Target::Secret { secret_type: "kubernetes.io/basic-auth", data_key: None };
//! let values = format(&spec, &target, &material, &FormatOptions::default())?;
//! assert_eq!(values.get("password").and_then(|v| v.as_str()), Some("pa:ss"));
//! # let _ = ChainOrder::Default;
//! # Ok::<(), akv_client::Error>(())
//! ```
#![warn(missing_docs)]

pub mod azure;
pub mod cache;
pub mod cert;
pub mod error;
pub mod format;
pub mod key;
pub mod metrics;
pub mod object;
pub mod secret;
pub mod vault;

pub use error::{Error, Result};
pub use object::{IdentityRef, ObjectKind, ObjectMeta, ObjectRef, VaultObject, VaultUrl};
pub use vault::{KeyVault, KeyVaultProvider};
