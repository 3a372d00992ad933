//! Mode selection (`AUTH_TYPE`) and the options every provider shares.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;

use crate::cache::DEFAULT_REFRESH_BEFORE;
use crate::chain::{DefaultChain, DefaultChainOptions};
use crate::cloud::CloudEnvironment;
use crate::cloud_config::{CloudConfig, DEFAULT_CLOUD_CONFIG_PATH};
use crate::env::{AUTH_TYPE, AZURE_POD_IDENTITY_AUTHORITY_HOST, Env};
use crate::environment::{EnvironmentCredential, EnvironmentOptions};
use crate::error::{Error, Result};
use crate::http::HttpOptions;
use crate::managed_identity::ImdsOptions;

/// Options shared by every provider.
#[derive(Clone, Debug)]
pub struct CredentialOptions {
    /// The cloud (authority host for token requests).
    pub cloud: CloudEnvironment,
    /// HTTP client options.
    pub http: HttpOptions,
    /// Tokens are renewed this long before they expire.
    pub refresh_before: Duration,
}

impl Default for CredentialOptions {
    fn default() -> Self {
        Self {
            cloud: CloudEnvironment::public(),
            http: HttpOptions::default(),
            refresh_before: DEFAULT_REFRESH_BEFORE,
        }
    }
}

/// How the Key Vault credential is obtained, as akv2k8s's `AUTH_TYPE` / chart `keyVaultAuth`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// `azureCloudConfig` (default): the cloud config file (`azure.json`).
    #[default]
    AzureCloudConfig,
    /// `environment`: `AZURE_*` variables, go-autorest precedence.
    Environment,
    /// `environment-azidentity`: environment → workload identity → managed identity.
    EnvironmentAzidentity,
}

impl AuthMode {
    /// The upstream spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::AzureCloudConfig => "azureCloudConfig",
            AuthMode::Environment => "environment",
            AuthMode::EnvironmentAzidentity => "environment-azidentity",
        }
    }

    /// `AUTH_TYPE` from `env`; unset means `azureCloudConfig`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownAuthType`] for any other value (upstream's webhook default `cloudConfig`
    /// included).
    pub fn from_env(env: &Env) -> Result<Self> {
        env.get(AUTH_TYPE)
            .map_or(Ok(Self::default()), |v| v.parse())
    }
}

impl FromStr for AuthMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "azureCloudConfig" => Ok(AuthMode::AzureCloudConfig),
            "environment" => Ok(AuthMode::Environment),
            "environment-azidentity" => Ok(AuthMode::EnvironmentAzidentity),
            other => Err(Error::UnknownAuthType {
                value: other.to_owned(),
            }),
        }
    }
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Inputs of [`Credentials::new`].
#[derive(Clone, Debug)]
pub struct AuthOptions {
    /// Environment variables.
    pub env: Env,
    /// Cloud config path (`--cloudconfig`).
    pub cloud_config_path: PathBuf,
    /// Explicit cloud: beats `AZURE_ENVIRONMENT` and azure.json's `cloud`.
    pub cloud: Option<CloudEnvironment>,
    /// HTTP options; `None` means [`HttpOptions::from_env`].
    pub http: Option<HttpOptions>,
    /// IMDS options (endpoint, NMI retry budget); the user-assigned id comes from the mode.
    pub imds: ImdsOptions,
    /// Refresh window of every token cache.
    pub refresh_before: Duration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            env: Env::Process,
            cloud_config_path: PathBuf::from(DEFAULT_CLOUD_CONFIG_PATH),
            cloud: None,
            http: None,
            imds: ImdsOptions::default(),
            refresh_before: DEFAULT_REFRESH_BEFORE,
        }
    }
}

/// A Key Vault credential and the cloud it belongs to.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The mode it was built for.
    pub mode: AuthMode,
    /// The credential (caching, refreshing).
    pub credential: Arc<dyn TokenCredential>,
    /// The cloud: Key Vault DNS suffix and scope.
    pub cloud: CloudEnvironment,
    /// Which provider was chosen (`client secret`, `managed identity`, …), for the startup log.
    pub provider: &'static str,
}

impl Credentials {
    /// Builds the credential for `mode` as akv2k8s does.
    ///
    /// # Errors
    ///
    /// Configuration errors (unknown cloud, unreadable cloud config, missing tenant id, bad
    /// certificate, malformed `AKV2K8S_RESOLVE`…): these are startup errors.
    pub fn new(mode: AuthMode, mut opts: AuthOptions) -> Result<Self> {
        if opts.imds.endpoint.is_none() {
            opts.imds.endpoint = opts.env.get(AZURE_POD_IDENTITY_AUTHORITY_HOST);
        }
        let http = match &opts.http {
            Some(h) => h.clone(),
            None => HttpOptions::from_env(&opts.env)?,
        };
        let AuthOptions {
            env,
            cloud_config_path,
            cloud: explicit_cloud,
            http: _,
            imds,
            refresh_before,
        } = opts;
        // An explicit cloud beats the one the mode reads (azure.json `cloud`, AZURE_ENVIRONMENT).
        let file = match mode {
            AuthMode::AzureCloudConfig => Some(CloudConfig::load(&cloud_config_path)?),
            AuthMode::Environment | AuthMode::EnvironmentAzidentity => None,
        };
        let cloud = match (explicit_cloud, &file) {
            (Some(c), _) => c,
            (None, Some(file)) => CloudEnvironment::by_name(&file.cloud)?,
            (None, None) => CloudEnvironment::from_env(&env)?,
        };
        let common = CredentialOptions {
            cloud: cloud.clone(),
            http,
            refresh_before,
        };
        // `file` is `Some` exactly in azureCloudConfig mode.
        let (credential, provider): (Arc<dyn TokenCredential>, &'static str) = match file {
            Some(file) => file.credential(common, imds)?,
            None if mode == AuthMode::Environment => {
                let env_cred =
                    EnvironmentCredential::new(EnvironmentOptions { env, common, imds })?;
                let provider = env_cred.provider();
                (env_cred, provider)
            }
            None => (
                DefaultChain::new(DefaultChainOptions { env, common, imds })?,
                "default chain",
            ),
        };
        Ok(Self {
            mode,
            credential,
            cloud,
            provider,
        })
    }

    /// [`AuthMode::from_env`] then [`Credentials::new`].
    ///
    /// # Errors
    ///
    /// As both.
    pub fn from_env(opts: AuthOptions) -> Result<Self> {
        Self::new(AuthMode::from_env(&opts.env)?, opts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_type_accepts_upstream_values_only() {
        for (v, m) in [
            ("azureCloudConfig", AuthMode::AzureCloudConfig),
            ("environment", AuthMode::Environment),
            ("environment-azidentity", AuthMode::EnvironmentAzidentity),
        ] {
            assert_eq!(v.parse::<AuthMode>().expect(v), m);
            assert_eq!(m.to_string(), v);
        }
        assert_eq!(
            AuthMode::from_env(&Env::from([("X", "y")])).expect("default"),
            AuthMode::AzureCloudConfig
        );
        let err = AuthMode::from_env(&Env::from([(AUTH_TYPE, "cloudConfig")]))
            .expect_err("upstream's broken webhook default");
        assert!(
            err.to_string().contains("`cloudConfig` is not supported"),
            "{err}"
        );
        assert_eq!(err.kind(), "unknown_auth_type");
    }
}
