//! `spv.no/v2beta1`: the storage version, and the only one the controller reads and writes.
//!
//! Same schema as `v2alpha1`: Secret and ConfigMap outputs, `output.transform`,
//! `output.secret.chainOrder`, `vault.azureIdentity`, and status with ConfigMap fields.
//!
//! ```
//! use k8s_sync::crd::v2beta1::{AzureKeyVaultSecret, ObjectType};
//!
//! let akvs: AzureKeyVaultSecret = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "spv.no/v2beta1", "kind": "AzureKeyVaultSecret",
//!     "metadata": {"name": "db", "namespace": "shop"},
//!     "spec": {
//!         "vault": {"name": "kv", "object": {"name": "db-pass", "type": "secret"}},
//!         "output": {"secret": {"name": "db", "dataKey": "password"}}
//!     }
//! }))?;
//! assert_eq!(akvs.spec.vault.object.type_, ObjectType::Secret);
//! assert_eq!(akvs.spec.secret_output().map(|s| s.name.as_str()), Some("db"));
//! # Ok::<(), serde_json::Error>(())
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use super::object::{AzureIdentity, AzureKeyVaultObject, ContentType, ObjectType};
pub use super::output::{AzureKeyVaultOutputConfigMap, AzureKeyVaultOutputSecret, ChainOrder};
pub use super::status::{Condition, ConditionStatus, READY, ReadyReason};

/// The v2 spec and resource for one served version: `v2alpha1` and `v2beta1` share their schema,
/// and kube's derive needs one struct per version, so both are written by this macro.
macro_rules! v2_resource {
    ($version:literal) => {
        /// AzureKeyVaultSecretSpec is the spec for a AzureKeyVaultSecret resource
        // clippy reads the repeated `type_ = …` inside `printcolumn(…)` as duplicated attributes.
        #[allow(clippy::duplicated_attributes)]
        #[derive(CustomResource, Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
        #[kube(
            group = "spv.no",
            version = $version,
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
    };
}
pub(super) use v2_resource;

v2_resource!("v2beta1");

impl AzureKeyVaultSecretSpec {
    /// The Secret output, when one with a non-empty name is requested.
    pub fn secret_output(&self) -> Option<&AzureKeyVaultOutputSecret> {
        self.output
            .as_ref()
            .and_then(|o| o.secret.as_ref())
            .filter(|s| !s.name.is_empty())
    }

    /// The ConfigMap output, when one with a non-empty name is requested.
    pub fn config_map_output(&self) -> Option<&AzureKeyVaultOutputConfigMap> {
        self.output
            .as_ref()
            .and_then(|o| o.config_map.as_ref())
            .filter(|c| !c.name.is_empty())
    }

    /// Transforms applied to the value, in order (`output.transform`).
    pub fn transforms(&self) -> &[String] {
        self.output.as_ref().map_or(&[], |o| o.transform.as_slice())
    }
}

/// AzureKeyVault contains information needed to get the Azure Key Vault secret from Azure Key Vault
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVault {
    /// Name of the Azure Key Vault
    pub name: String,
    /// AzureKeyVaultObject has information about the Azure Key Vault object to get from Azure Key Vault
    pub object: AzureKeyVaultObject,
    /// AzureIdentity has information about the azure identity used for Azure Key Vault authentication
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_identity: Option<AzureIdentity>,
}

/// AzureKeyVaultOutput defines output sources, supports Secret and ConfigMap
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AzureKeyVaultOutput {
    /// AzureKeyVaultOutputSecret has information needed to output a secret from Azure Key Vault to Kubernetes as a Secret resource
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<AzureKeyVaultOutputSecret>,
    /// AzureKeyVaultOutputConfigMap has information needed to output a secret from Azure Key Vault to Kubernetes as a ConfigMap resource
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<AzureKeyVaultOutputConfigMap>,
    /// Transforms applied to the value in order: trim, base64encode, base64decode
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transform: Vec<String>,
}

/// AzureKeyVaultSecretStatus is the status for a AzureKeyVaultSecret resource
///
/// Upstream's fields plus `observedGeneration`, `objectVersion` and `conditions`. Hashes are
/// computed from Key Vault version ids, never from values.
///
/// `v1` and `v1alpha1` declare `secretHash` and `secretName` required. API servers without CRD
/// validation ratcheting (before Kubernetes 1.30) reject updates made through those versions
/// while the stored status lacks them, so a writer that wants to keep `v1` clients working sets
/// both, possibly to `""`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    description = "AzureKeyVaultSecretStatus is the status for a AzureKeyVaultSecret resource"
)]
pub struct AzureKeyVaultSecretStatus {
    /// Hash of what was written to the Secret output (from Key Vault version ids)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Name of the Secret output this resource is synched with
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// Hash of what was written to the ConfigMap output (from Key Vault version ids)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_hash: Option<String>,
    /// Name of the ConfigMap output this resource is synched with
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,
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
