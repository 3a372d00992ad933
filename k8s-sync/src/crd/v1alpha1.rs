//! `spv.no/v1alpha1`: served, not stored. Compared with `v1`: the transform list is spelled
//! `output.transforms`, and the Secret output has no `chainOrder`.
//!
//! `transforms` is not part of the storage (`v2beta1`) schema and conversion is `None`, so the
//! API server prunes it on write and it never reaches the controller, exactly as upstream.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::object::{AzureKeyVaultObject, ContentType, ObjectType};
pub use super::v1::{
    AzureKeyVault, AzureKeyVaultSecretStatus, Condition, ConditionStatus, READY, ReadyReason,
};

/// AzureKeyVaultSecretSpec is the spec for a AzureKeyVaultSecret resource
// clippy reads the repeated `type_ = …` inside `printcolumn(…)` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "spv.no",
    version = "v1alpha1",
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
        name = "Output Object",
        type_ = "string",
        json_path = ".status.secretName",
        description = "Which Kubernetes Secret this resource is synched with, if any"
    ),
    printcolumn(
        name = "Synched",
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
    /// AzureKeyVaultOutput defines output sources, currently only support Secret
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<AzureKeyVaultOutput>,
}

/// AzureKeyVaultOutput defines output sources, currently only support Secret
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AzureKeyVaultOutput {
    /// AzureKeyVaultOutputSecret has information needed to output a secret from Azure Key Vault to Kubernetes as a Secret resource
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<AzureKeyVaultOutputSecret>,
    /// Transforms applied to the value in order (pruned by the API server: not in the storage schema)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<String>,
}

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
}
