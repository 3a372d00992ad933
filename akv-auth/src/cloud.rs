//! Azure clouds: authority host, Key Vault DNS suffix and audience, ARM and ACR endpoints.
//!
//! Names are go-autorest's (case-insensitive): `AzurePublicCloud` (alias `AzureCloud`),
//! `AzureUSGovernmentCloud` (alias `AzureUSGovernment`), `AzureChinaCloud`, `AzureGermanCloud`.
//! Every field is public, so Azure Stack or a test can override any endpoint.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};

use crate::env::{AZURE_ENVIRONMENT, Env};
use crate::error::{Error, Result};

/// One Azure cloud's endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudEnvironment {
    /// go-autorest name (`AzurePublicCloud`).
    pub name: String,
    /// Entra ID authority host, `https://…` without trailing slash.
    pub authority_host: String,
    /// Key Vault DNS suffix (`vault.azure.net`): vault `v` is `https://v.<suffix>/`.
    pub key_vault_dns_suffix: String,
    /// Key Vault resource / token audience (`https://vault.azure.net`).
    pub key_vault_resource: String,
    /// Azure Resource Manager endpoint.
    pub resource_manager_endpoint: String,
    /// Service management endpoint (the ARM token resource akv2k8s uses for the ACR exchange).
    pub service_management_endpoint: String,
    /// ACR login server DNS suffix (`azurecr.io`).
    pub container_registry_dns_suffix: String,
}

fn cloud(name: &str, authority: &str, kv: &str, rm: &str, sm: &str, acr: &str) -> CloudEnvironment {
    CloudEnvironment {
        name: name.into(),
        authority_host: format!("https://{authority}"),
        key_vault_dns_suffix: kv.into(),
        key_vault_resource: format!("https://{kv}"),
        resource_manager_endpoint: rm.into(),
        service_management_endpoint: sm.into(),
        container_registry_dns_suffix: acr.into(),
    }
}

impl CloudEnvironment {
    /// Azure public cloud.
    pub fn public() -> Self {
        cloud(
            "AzurePublicCloud",
            "login.microsoftonline.com",
            "vault.azure.net",
            "https://management.azure.com/",
            "https://management.core.windows.net/",
            "azurecr.io",
        )
    }

    /// Azure US Government.
    pub fn us_government() -> Self {
        cloud(
            "AzureUSGovernmentCloud",
            "login.microsoftonline.us",
            "vault.usgovcloudapi.net",
            "https://management.usgovcloudapi.net/",
            "https://management.core.usgovcloudapi.net/",
            "azurecr.us",
        )
    }

    /// Azure China (21Vianet).
    pub fn china() -> Self {
        cloud(
            "AzureChinaCloud",
            "login.chinacloudapi.cn",
            "vault.azure.cn",
            "https://management.chinacloudapi.cn/",
            "https://management.core.chinacloudapi.cn/",
            "azurecr.cn",
        )
    }

    /// Azure Germany (retired by Microsoft; accepted for compatibility).
    pub fn germany() -> Self {
        cloud(
            "AzureGermanCloud",
            "login.microsoftonline.de",
            "vault.microsoftazure.de",
            "https://management.microsoftazure.de/",
            "https://management.core.cloudapi.de/",
            "azurecr.de",
        )
    }

    /// Looks a cloud up by go-autorest name, case-insensitively; empty means public.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownCloud`] for any other name.
    pub fn by_name(name: &str) -> Result<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "" | "AZUREPUBLICCLOUD" | "AZURECLOUD" => Ok(Self::public()),
            "AZUREUSGOVERNMENTCLOUD" | "AZUREUSGOVERNMENT" => Ok(Self::us_government()),
            "AZURECHINACLOUD" => Ok(Self::china()),
            "AZUREGERMANCLOUD" => Ok(Self::germany()),
            _ => Err(Error::UnknownCloud { name: name.into() }),
        }
    }

    /// The cloud named by `AZURE_ENVIRONMENT` (public when unset).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownCloud`] for an unknown name.
    pub fn from_env(env: &Env) -> Result<Self> {
        Self::by_name(&env.get(AZURE_ENVIRONMENT).unwrap_or_default())
    }

    /// The scope to ask for Key Vault tokens (`https://vault.azure.net/.default`).
    pub fn key_vault_scope(&self) -> String {
        format!("{}/.default", self.key_vault_resource.trim_end_matches('/'))
    }

    /// The vault URL of vault `name` (`https://name.vault.azure.net/`).
    pub fn vault_url(&self, name: &str) -> String {
        format!("https://{name}.{}/", self.key_vault_dns_suffix)
    }

    /// The v2 token endpoint of `tenant`.
    pub fn token_endpoint(&self, tenant: &str) -> String {
        format!(
            "{}/{tenant}/oauth2/v2.0/token",
            self.authority_host.trim_end_matches('/')
        )
    }

    /// This cloud for azure_core's `ClientOptions::cloud` (authority host only).
    pub fn sdk_cloud(&self) -> Arc<CloudConfiguration> {
        let mut custom = CustomConfiguration::default();
        custom.authority_host = self.authority_host.trim_end_matches('/').to_owned();
        Arc::new(CloudConfiguration::from(custom))
    }
}

impl Default for CloudEnvironment {
    fn default() -> Self {
        Self::public()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names_and_aliases_resolve_case_insensitively() {
        let cases = [
            ("", "vault.azure.net"),
            ("AzurePublicCloud", "vault.azure.net"),
            ("AZURECLOUD", "vault.azure.net"),
            ("azurechinacloud", "vault.azure.cn"),
            ("AzureUSGovernmentCloud", "vault.usgovcloudapi.net"),
            ("AzureUSGovernment", "vault.usgovcloudapi.net"),
            ("AZUREGERMANCLOUD", "vault.microsoftazure.de"),
        ];
        for (name, suffix) in cases {
            assert_eq!(
                CloudEnvironment::by_name(name)
                    .expect(name)
                    .key_vault_dns_suffix,
                suffix
            );
        }
        let err = CloudEnvironment::by_name("Mars").expect_err("unknown");
        assert_eq!(err.kind(), "unknown_cloud");
    }

    #[test]
    fn derived_values_follow_the_cloud() {
        let china = CloudEnvironment::china();
        assert_eq!(china.key_vault_scope(), "https://vault.azure.cn/.default");
        assert_eq!(china.vault_url("v"), "https://v.vault.azure.cn/");
        assert_eq!(
            china.token_endpoint("t"),
            "https://login.chinacloudapi.cn/t/oauth2/v2.0/token"
        );
        let env = Env::from([(AZURE_ENVIRONMENT, "AzureChinaCloud")]);
        assert_eq!(CloudEnvironment::from_env(&env).expect("cloud"), china);
    }
}
