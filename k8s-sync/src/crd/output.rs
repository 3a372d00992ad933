//! Output targets shared by several versions: the Secret output with `chainOrder` (`v1` and
//! later) and the ConfigMap output (`v2alpha1` and later).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::object::string_enum;

/// AzureKeyVaultOutputSecret has information needed to output a secret from Azure Key Vault to Kubernetes as a Secret resource
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultOutputSecret {
    /// Name for Kubernetes secret
    pub name: String,
    /// Type of Secret in Kubernetes; empty or absent means Opaque
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    /// The key to use in Kubernetes secret when setting the value from Azure Key Vault object data
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_key: Option<String>,
    /// By setting chainOrder to ensureserverfirst the server certificate will be moved first in the chain
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_order: Option<ChainOrder>,
}

/// AzureKeyVaultOutputConfigMap has information needed to output a secret from Azure Key Vault to Kubernetes as a ConfigMap resource
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultOutputConfigMap {
    /// Name for Kubernetes ConfigMap
    pub name: String,
    /// The key to use in Kubernetes ConfigMap when setting the value from Azure Key Vault object data
    pub data_key: String,
}

string_enum! {
    /// Certificate chain order of a Secret output.
    ChainOrder, "By setting chainOrder to ensureserverfirst the server certificate will be moved first in the chain" {
        /// Put the server (leaf) certificate first.
        EnsureServerFirst = "ensureserverfirst",
    }
}
