//! `spv.no/v1`: served, not stored. Compared with `v2beta1`: no ConfigMap output, no
//! `vault.azureIdentity`, no ConfigMap status fields, and `status.secretHash` and
//! `status.secretName` are required. Has `output.transform` and `output.secret.chainOrder`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::object::{AzureKeyVaultObject, ContentType, ObjectType};
pub use super::output::{AzureKeyVaultOutputSecret, ChainOrder};
pub use super::status::{Condition, ConditionStatus, READY, ReadyReason};

/// AzureKeyVaultSecretSpec is the spec for a AzureKeyVaultSecret resource
// clippy reads the repeated `type_ = …` inside `printcolumn(…)` as duplicated attributes.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "spv.no",
    version = "v1",
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

/// AzureKeyVault contains information needed to get the Azure Key Vault secret from Azure Key Vault
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AzureKeyVault {
    /// Name of the Azure Key Vault
    pub name: String,
    /// AzureKeyVaultObject has information about the Azure Key Vault object to get from Azure Key Vault
    pub object: AzureKeyVaultObject,
}

/// AzureKeyVaultOutput defines output sources, currently only support Secret
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AzureKeyVaultOutput {
    /// AzureKeyVaultOutputSecret has information needed to output a secret from Azure Key Vault to Kubernetes as a Secret resource
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<AzureKeyVaultOutputSecret>,
    /// Transforms applied to the value in order: trim, base64encode, base64decode
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform: Vec<String>,
}

/// AzureKeyVaultSecretStatus is the status for a AzureKeyVaultSecret resource
///
/// Upstream's `v1` status (`secretHash` and `secretName` required) plus `observedGeneration`,
/// `objectVersion` and `conditions`. The Rust fields are optional so that a status the
/// controller wrote at `v2beta1` without them still reads at `v1`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    description = "AzureKeyVaultSecretStatus is the status for a AzureKeyVaultSecret resource",
    transform = require_secret_fields
)]
pub struct AzureKeyVaultSecretStatus {
    /// Hash of what was written to the Secret output (from Key Vault version ids)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Name of the Secret output this resource is synched with
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// When the outputs last changed to a new Key Vault value
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::date_time")]
    pub last_azure_update: Option<Time>,
    /// The metadata.generation of the spec this status describes
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
    /// The Key Vault version id of the object the outputs hold
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version: Option<String>,
    /// Observations of the object's state; the controller maintains Ready
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "super::status::condition_list")]
    pub conditions: Vec<Condition>,
}

impl AzureKeyVaultSecretStatus {
    /// The `Ready` condition, if set.
    pub fn ready(&self) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == READY)
    }
}

/// Upstream's `v1`/`v1alpha1` status schema requires `secretHash` and `secretName`.
fn require_secret_fields(schema: &mut schemars::Schema) {
    schema.insert(
        "required".into(),
        serde_json::json!(["secretHash", "secretName"]),
    );
}
