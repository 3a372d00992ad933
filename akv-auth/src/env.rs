//! The environment seam: every environment variable this workspace reads goes through [`Env`].
//!
//! Production code uses [`Env::Process`]; tests build an [`Env::Map`] instead of mutating the
//! process environment (`std::env::set_var` is racy and `unsafe` in edition 2024).
//!
//! ```
//! use akv_auth::Env;
//! let env = Env::from([("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "")]);
//! assert_eq!(env.get("AZURE_TENANT_ID").as_deref(), Some("t"));
//! assert_eq!(env.get("AZURE_CLIENT_ID"), None, "empty counts as unset");
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// `AZURE_TENANT_ID`: tenant of the service principal / workload identity.
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
/// `AZURE_CLIENT_ID`: client (application) id; user-assigned identity for managed identity.
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
/// `AZURE_CLIENT_SECRET`: client secret of the service principal.
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
/// `AZURE_CERTIFICATE_PATH`: PFX or PEM client certificate with its RSA key.
pub const AZURE_CERTIFICATE_PATH: &str = "AZURE_CERTIFICATE_PATH";
/// `AZURE_CERTIFICATE_PASSWORD`: password of the PFX in `AZURE_CERTIFICATE_PATH`.
pub const AZURE_CERTIFICATE_PASSWORD: &str = "AZURE_CERTIFICATE_PASSWORD";
/// `AZURE_USERNAME`: user principal name for the username/password (ROPC) flow.
pub const AZURE_USERNAME: &str = "AZURE_USERNAME";
/// `AZURE_PASSWORD`: password for the username/password (ROPC) flow.
pub const AZURE_PASSWORD: &str = "AZURE_PASSWORD";
/// `AZURE_ENVIRONMENT`: cloud name (`AzurePublicCloud`, `AzureChinaCloud`, …).
pub const AZURE_ENVIRONMENT: &str = "AZURE_ENVIRONMENT";
/// `AZURE_FEDERATED_TOKEN_FILE`: projected service-account token (workload identity).
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
/// `AZURE_AUTHORITY_HOST`: Entra ID authority host (set by the workload identity webhook).
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
/// `AZURE_POD_IDENTITY_AUTHORITY_HOST`: IMDS endpoint override (as the Go SDK reads it).
pub const AZURE_POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
/// `AUTH_TYPE`: `azureCloudConfig` (default), `environment` or `environment-azidentity`.
pub const AUTH_TYPE: &str = "AUTH_TYPE";
/// `AKV2K8S_RESOLVE`: curl-like resolve override, `host=addr:port[,host=addr:port…]`.
pub const AKV2K8S_RESOLVE: &str = "AKV2K8S_RESOLVE";

/// Where environment variables come from.
#[derive(Clone, Default)]
pub enum Env {
    /// The process environment.
    #[default]
    Process,
    /// A fixed map (tests, embedding operators).
    Map(Arc<BTreeMap<String, String>>),
}

impl Env {
    /// The value of `name`; `None` when unset, empty or not valid UTF-8 (as go-autorest treats
    /// empty values).
    pub fn get(&self, name: &str) -> Option<String> {
        let value = match self {
            Env::Process => std::env::var(name).ok(),
            Env::Map(map) => map.get(name).cloned(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// Whether `name` is set to a non-empty value.
    pub fn is_set(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Env {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Env::Map(Arc::new(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        ))
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for Env {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// Prints variable names only: values may be secrets.
impl fmt::Debug for Env {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Env::Process => f.write_str("Env::Process"),
            Env::Map(map) => f.debug_tuple("Env::Map").field(&map.keys()).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_env_reads_values_and_treats_empty_as_unset() {
        let env = Env::from([("A", "1"), ("B", "")]);
        assert_eq!(env.get("A").as_deref(), Some("1"));
        assert!(!env.is_set("B"));
        assert!(!env.is_set("C"));
    }

    #[test]
    fn debug_prints_names_but_never_values() {
        let env = Env::from([(AZURE_CLIENT_SECRET, "hunter2")]);
        let text = format!("{env:?}");
        assert!(text.contains(AZURE_CLIENT_SECRET), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
