//! The `AzureKeyVaultSecret` API (`azurekeyvaultsecrets.spv.no`, short name `akvs`) in every
//! version akv2k8s serves, and the `CustomResourceDefinition` built from them.
//!
//! ```text
//!  v1alpha1 ─┐   v1 ─┐   v2alpha1 ─┐   v2beta1 (storage) ─┐
//!            └───────┴─────────────┴──────────────────────┴─> merge_crds ─> crd() ─> crd_yaml()
//!                                                                             └─> crds/azurekeyvaultsecrets.spv.no.yaml
//! ```
//!
//! Each version module holds a `kube::CustomResource` type with the schema upstream serves for
//! that version (fields, enums, required lists and printer columns of akv2k8s 1.8). Types shared by
//! several versions live in [`object`], [`output`] and [`status`] and are re-exported by every
//! version that uses them, so `v2beta1::AzureKeyVaultObject` and `v1::AzureKeyVaultObject` are
//! one type.
//!
//! Conversion is `None`, as upstream: the API server stores every object at `v2beta1` and serves
//! it at any version by rewriting `apiVersion` and pruning to that version's schema. So a
//! `v1alpha1` `output.transforms` list is dropped on write (upstream behaves the same), and an
//! object written at `v1` reads back at `v2beta1` with the same fields. The controller reads and
//! writes `v2beta1` only.
//!
//! Status is upstream's (`secretHash`, `secretName`, `configMapHash`, `configMapName`,
//! `lastAzureUpdate`) extended, in every version, with `conditions` (a `Ready` condition, see
//! [`ReadyReason`]), `observedGeneration` and `objectVersion` (the Key Vault version written to
//! the outputs). The extension is in every version because `kubectl` reads the preferred
//! version, which on a real API server is `v1` (GA beats beta), and pruning would otherwise hide
//! the conditions from `kubectl get akvs -o yaml` and `kubectl wait --for=condition=Ready`.
//!
//! [`crd()`] post-processes the derived schemas to upstream's shape: no `nullable` and no `null`
//! enum members (kube and schemars mark every `Option` so), no `default` (schemars emits serde
//! defaults) and no `title`; upstream's schema has none of them. Use [`crd()`], not a version
//! type's own `crd()`, to install the API.

pub mod object;
pub mod output;
pub mod status;
pub mod v1;
pub mod v1alpha1;
pub mod v2alpha1;
pub mod v2beta1;

#[cfg(test)]
mod tests;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt as _;

use crate::error::{Error, Result};

pub use object::{AzureIdentity, AzureKeyVaultObject, ContentType, ObjectType};
pub use output::{AzureKeyVaultOutputConfigMap, AzureKeyVaultOutputSecret, ChainOrder};
pub use status::{Condition, ConditionStatus, READY, ReadyReason};

/// API group.
pub const GROUP: &str = "spv.no";
/// Kind.
pub const KIND: &str = "AzureKeyVaultSecret";
/// List kind.
pub const LIST_KIND: &str = "AzureKeyVaultSecretList";
/// Plural resource name.
pub const PLURAL: &str = "azurekeyvaultsecrets";
/// Short name (`kubectl get akvs`).
pub const SHORT_NAME: &str = "akvs";
/// Name of the `CustomResourceDefinition`.
pub const CRD_NAME: &str = "azurekeyvaultsecrets.spv.no";
/// The version objects are stored in, and the only one the controller uses.
pub const STORAGE_VERSION: &str = "v2beta1";
/// Every served version, oldest first.
pub const VERSIONS: [&str; 4] = ["v1alpha1", "v1", "v2alpha1", "v2beta1"];
/// Where the generated CRD is checked in, relative to the workspace root.
pub const CRD_PATH: &str = "crds/azurekeyvaultsecrets.spv.no.yaml";
/// The command that regenerates [`CRD_PATH`] from the types.
pub const REGENERATE: &str =
    "cargo run -p k8s-sync --example crdgen > crds/azurekeyvaultsecrets.spv.no.yaml";

/// The multi-version `AzureKeyVaultSecret` CRD: `v1alpha1`, `v1`, `v2alpha1` served and
/// `v2beta1` served and stored, no conversion webhook, as upstream serves it.
///
/// # Errors
///
/// [`Error::MergeCrdVersions`] when the version types disagree on group, kind or scope (a bug in
/// this crate; the unit tests build the CRD, so it cannot ship).
pub fn crd() -> Result<CustomResourceDefinition> {
    let mut crd = kube::core::crd::merge_crds(
        vec![
            v1alpha1::AzureKeyVaultSecret::crd(),
            v1::AzureKeyVaultSecret::crd(),
            v2alpha1::AzureKeyVaultSecret::crd(),
            v2beta1::AzureKeyVaultSecret::crd(),
        ],
        STORAGE_VERSION,
    )
    .map_err(|source| Error::MergeCrdVersions { source })?;
    crd.spec.names.list_kind = Some(LIST_KIND.into());
    // controller-gen's order, so a diff against upstream's file lines up.
    crd.spec.versions.sort_by(|a, b| a.name.cmp(&b.name));
    for version in &mut crd.spec.versions {
        if let Some(schema) = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
        {
            upstream_shape(schema);
        }
    }
    Ok(crd)
}

/// [`crd()`] as YAML, exactly as checked in at [`CRD_PATH`].
///
/// # Errors
///
/// As [`crd()`], and [`Error::SerializeCrd`] when the YAML serialiser fails.
pub fn crd_yaml() -> Result<String> {
    let crd = crd()?;
    let yaml = serde_saphyr::to_string(&crd).map_err(|source| Error::SerializeCrd { source })?;
    Ok(format!(
        "# Generated from the k8s-sync API types; do not edit.\n# Regenerate: {REGENERATE}\n---\n{yaml}"
    ))
}

/// Creates `crd` (e.g. [`crd()`], or the checked-in file parsed) and waits until the API
/// server reports it `Established`, at most `timeout`: what a test, the CLI's sandbox or an
/// embedding operator does before starting the controller on a fresh cluster.
///
/// # Errors
///
/// [`Error::InstallCrd`] when the create is refused (e.g. it exists: delete it first, or use
/// `kubectl apply`), [`Error::CrdNotEstablished`] when it is not established in time.
pub async fn install(
    client: &kube::Client,
    crd: &CustomResourceDefinition,
    timeout: std::time::Duration,
) -> Result<()> {
    use kube::api::{Api, PostParams};
    use kube::runtime::wait::{await_condition, conditions};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap_or_default();
    crds.create(&PostParams::default(), crd)
        .await
        .map_err(|source| Error::InstallCrd {
            name: name.clone(),
            source,
        })?;
    // Boxed: the watch behind it is large, and callers hold this future across awaits.
    let established = Box::pin(await_condition(
        crds,
        &name,
        conditions::is_crd_established(),
    ));
    match tokio::time::timeout(timeout, established).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) | Err(_) => Err(Error::CrdNotEstablished { name, timeout }),
    }
}

/// Removes what the derive adds and upstream's schema lacks: `nullable` and `null` enum members
/// (kube and schemars mark every `Option` so), `default` (schemars emits serde defaults; upstream
/// declares none) and `title`.
fn upstream_shape(schema: &mut JSONSchemaProps) {
    schema.nullable = None;
    schema.default = None;
    schema.title = None;
    if let Some(values) = schema.enum_.as_mut() {
        values.retain(|v| !v.0.is_null());
    }
    for s in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        upstream_shape(s);
    }
    match schema.items.as_mut() {
        Some(JSONSchemaPropsOrArray::Schema(s)) => upstream_shape(s),
        Some(JSONSchemaPropsOrArray::Schemas(list)) => list.iter_mut().for_each(upstream_shape),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(s)) = schema.additional_properties.as_mut() {
        upstream_shape(s);
    }
    for list in [&mut schema.all_of, &mut schema.any_of, &mut schema.one_of] {
        list.iter_mut().flatten().for_each(upstream_shape);
    }
    if let Some(s) = schema.not.as_mut() {
        upstream_shape(s);
    }
}

/// Schema of a `metav1.Time` field: an RFC 3339 string.
fn date_time(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "format": "date-time"})
}
