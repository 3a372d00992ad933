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

super::v2beta1::v2_resource!("v2alpha1");
