//! Azure clouds as the fakes see them: Key Vault DNS suffix, token audience, authority host and
//! token issuer for the public cloud and the sovereign clouds.

/// One Azure cloud.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cloud {
    /// akv2k8s / azure.json name (`AzurePublicCloud`, …).
    pub name: &'static str,
    /// Key Vault DNS suffix (`vault.azure.net`); a vault `v` is `v.<suffix>`.
    pub vault_suffix: &'static str,
    /// The audience Key Vault expects in tokens and names in its challenge (`resource=`).
    pub vault_audience: &'static str,
    /// Entra ID authority host (`login.microsoftonline.com`).
    pub authority_host: &'static str,
    /// Host of the `iss` claim of v1 access tokens (`sts.windows.net`).
    pub issuer_host: &'static str,
}

impl Cloud {
    /// Azure public cloud.
    pub const PUBLIC: Cloud = Cloud {
        name: "AzurePublicCloud",
        vault_suffix: "vault.azure.net",
        vault_audience: "https://vault.azure.net",
        authority_host: "login.microsoftonline.com",
        issuer_host: "sts.windows.net",
    };
    /// Azure China (21Vianet).
    pub const CHINA: Cloud = Cloud {
        name: "AzureChinaCloud",
        vault_suffix: "vault.azure.cn",
        vault_audience: "https://vault.azure.cn",
        authority_host: "login.chinacloudapi.cn",
        issuer_host: "sts.chinacloudapi.cn",
    };
    /// Azure US Government.
    pub const US_GOVERNMENT: Cloud = Cloud {
        name: "AzureUSGovernmentCloud",
        vault_suffix: "vault.usgovcloudapi.net",
        vault_audience: "https://vault.usgovcloudapi.net",
        authority_host: "login.microsoftonline.us",
        issuer_host: "sts.windows.net",
    };
    /// Azure Germany (retired by Microsoft, still accepted by akv2k8s configuration).
    pub const GERMANY: Cloud = Cloud {
        name: "AzureGermanCloud",
        vault_suffix: "vault.microsoftazure.de",
        vault_audience: "https://vault.microsoftazure.de",
        authority_host: "login.microsoftonline.de",
        issuer_host: "sts.microsoftonline.de",
    };

    /// Every cloud the fakes serve.
    pub const ALL: [Cloud; 4] = [
        Cloud::PUBLIC,
        Cloud::CHINA,
        Cloud::US_GOVERNMENT,
        Cloud::GERMANY,
    ];

    /// Looks a cloud up by its akv2k8s name, case-insensitively.
    pub fn by_name(name: &str) -> Option<Cloud> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The host of vault `name` in this cloud.
    pub fn vault_host(&self, name: &str) -> String {
        format!("{}.{}", name.to_ascii_lowercase(), self.vault_suffix)
    }

    /// The vault URL as the SDK is given it (`https://name.vault.azure.net/`).
    pub fn vault_url(&self, name: &str) -> String {
        format!("https://{}/", self.vault_host(name))
    }

    /// The `iss` claim of a v1 access token issued in tenant `tenant_id`.
    pub fn token_issuer(&self, tenant_id: &str) -> String {
        format!("https://{}/{}/", self.issuer_host, tenant_id)
    }

    /// The scope a client asks Entra for to call Key Vault (`https://vault.azure.net/.default`).
    pub fn vault_scope(&self) -> String {
        format!("{}/.default", self.vault_audience)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hosts() {
        assert_eq!(Cloud::by_name("azurechinacloud"), Some(Cloud::CHINA));
        assert_eq!(Cloud::by_name("nope"), None);
        assert_eq!(
            Cloud::PUBLIC.vault_host("MyVault"),
            "myvault.vault.azure.net"
        );
        assert_eq!(Cloud::CHINA.vault_url("v"), "https://v.vault.azure.cn/");
        assert_eq!(
            Cloud::PUBLIC.vault_scope(),
            "https://vault.azure.net/.default"
        );
        assert_eq!(
            Cloud::PUBLIC.token_issuer("t"),
            "https://sts.windows.net/t/"
        );
    }
}
