//! `spv.no/v2alpha1`: served, not stored. Its schema is `v2beta1`'s, so every type but the spec
//! (which carries the version in its `CustomResource` derive) is `v2beta1`'s.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::v2beta1::{
    AzureIdentity, AzureKeyVault, AzureKeyVaultObject, AzureKeyVaultOutput,
    AzureKeyVaultOutputConfigMap, AzureKeyVaultOutputSecret, AzureKeyVaultSecretStatus, ChainOrder,
    Condition, ConditionStatus, ContentType, ObjectType, READY, ReadyReason,
};

/// AzureKeyVaultSecretSpec is the spec for a AzureKeyVaultSecret resource
// clippy reads the repeated `type_ = …` inside `printcolumn(…)` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "spv.no",
    version = "v2alpha1",
    kind = "AzureKeyVaultSecret",
    namespaced,
    status = "AzureKeyVaultSecretStatus",
    shortname = "akvs",
    category = "all",
    derive = "PartialEq",
    doc = "AzureKeyVaultSecret is a specification for a AzureKeyVaultSecret resource",
    printcolumn(
        name = "Vault",
        type_ = "string",
        json_path = ".spec.vault.name",
        description = "Which Azure Key Vault this resource is associated with"
    ),
    printcolumn(
        name = "Vault Object",
        type_ = "string",
        json_path = ".spec.vault.object.name",
        description = "Which Azure Key Vault object this resource is associated with"
    ),
    printcolumn(
        name = "Secret Name",
        type_ = "string",
        json_path = ".status.secretName",
        description = "Which Kubernetes Secret this resource is synched with, if any"
    ),
    printcolumn(
        name = "ConfigMap Name",
        type_ = "string",
        json_path = ".status.configMapName",
        description = "Which Kubernetes ConfigMap this resource is synched with, if any"
    ),
    printcolumn(
        name = "Last Synched",
        type_ = "date",
        json_path = ".status.lastAzureUpdate",
        description = "When this resource was last synched with Azure Key Vault"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since this resource was created"
    )
)]
pub struct AzureKeyVaultSecretSpec {
    /// AzureKeyVault contains information needed to get the Azure Key Vault secret from Azure Key Vault
    pub vault: AzureKeyVault,
    /// AzureKeyVaultOutput defines output sources, supports Secret and ConfigMap
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<AzureKeyVaultOutput>,
}
