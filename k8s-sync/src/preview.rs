//! What an `AzureKeyVaultSecret` produces, without a cluster: the Key Vault read and the
//! formatting every reconcile does ([`read_outputs`]), and the Secret/ConfigMap manifests the
//! controller would apply for it ([`preview`]).
//!
//! The controller and `akv2k8s render` share this code, so a preview is what the controller
//! writes (less the fields the API server adds).
//!
//! Manifests come in at any served version: [`akvs_from_manifest`] converts them to the
//! storage version as the API server does (conversion `None`: fields the written version does
//! not know are pruned, `apiVersion` is rewritten, fields `v2beta1` does not know are pruned
//! again on read). [`mask_values`] replaces the values of a preview by their lengths, for
//! output a person reads.

use akv_client::format::{FormatOptions, Material, Values, fetch, format};
use akv_client::{IdentityRef, KeyVaultProvider, VaultUrl};
use kube::ResourceExt as _;
use serde_json::Value;
use tracing::debug;

use crate::crd::v2beta1::AzureKeyVaultSecret;
use crate::crd::{GROUP, KIND, ReadyReason, STORAGE_VERSION, v1, v1alpha1, v2alpha1, v2beta1};
use crate::error::Error;
use crate::render::{self, Desired, Output};

/// One output, read from Key Vault and formatted.
#[derive(Clone, Debug)]
pub struct RenderedOutput {
    /// The output (kind, name, Secret type, key).
    pub output: Output,
    /// The formatted values (keys only in `Debug`).
    pub values: Values,
    /// The Key Vault version id the values come from.
    pub version: String,
}

/// Why [`read_outputs`] failed: the `Ready` reason it maps to and the error.
#[derive(Debug)]
pub struct ReadFailure {
    /// `InvalidSpec` (nothing to retry until the spec changes) or `ErrAzureVault`.
    pub reason: ReadyReason,
    /// The error, naming the AKVS, vault and object.
    pub error: Error,
}

/// Where and how [`read_outputs`] reads and formats.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Key Vault DNS suffix; empty is the public cloud's `vault.azure.net`.
    pub vault_dns_suffix: String,
    /// Output formatting (default: upstream's).
    pub format: FormatOptions,
}

/// Reads the AKVS's Key Vault object and formats every output it asks for (nothing is
/// returned unless all succeed). An invalid spec is refused before Key Vault is asked.
///
/// # Errors
///
/// [`ReadFailure`] with `InvalidSpec` for specs that cannot be rendered (unknown content
/// type, transform, output that does not fit the object, non-exportable key) and
/// `ErrAzureVault` for Key Vault errors.
pub async fn read_outputs(
    akvs: &AzureKeyVaultSecret,
    key_vault: &dyn KeyVaultProvider,
    opts: &ReadOptions,
) -> Result<Vec<RenderedOutput>, ReadFailure> {
    let ns = akvs.namespace().unwrap_or_default();
    let name = akvs.name_any();
    let invalid = |source| ReadFailure {
        reason: ReadyReason::InvalidSpec,
        error: Error::Render {
            namespace: ns.clone(),
            name: name.clone(),
            source: Box::new(source),
        },
    };
    let outputs = render::outputs(&akvs.spec);
    let spec = render::object_spec(&akvs.spec).map_err(invalid)?;
    for output in &outputs {
        output
            .check(akvs.spec.vault.object.type_)
            .map_err(invalid)?;
    }
    let vault_name = &akvs.spec.vault.name;
    let open = |source| ReadFailure {
        reason: ReadyReason::InvalidSpec,
        error: Error::OpenVault {
            namespace: ns.clone(),
            name: name.clone(),
            vault: vault_name.clone(),
            source: Box::new(source),
        },
    };
    let url = VaultUrl::from_name(vault_name, &opts.vault_dns_suffix).map_err(open)?;
    let kv = key_vault
        .vault(&url, &IdentityRef::default_identity())
        .map_err(open)?;
    let version = akvs.spec.vault.object.pinned_version();
    let mut out = Vec::new();
    for output in outputs {
        let target = output.target();
        let material = fetch(kv.as_ref(), &url, &spec, version, &target)
            .await
            .map_err(|source| ReadFailure {
                reason: match source {
                    akv_client::Error::NotExportable { .. } => ReadyReason::InvalidSpec,
                    _ => ReadyReason::ErrAzureVault,
                },
                error: Error::FetchObject {
                    namespace: ns.clone(),
                    name: name.clone(),
                    vault: vault_name.clone(),
                    object: spec.name.clone(),
                    source: Box::new(source),
                },
            })?;
        let values = format(&spec, &target, &material, &opts.format).map_err(invalid)?;
        let version = match &material {
            Material::Secret(s) => s.version.clone(),
            Material::Certificate { certificate, .. } => certificate.version.clone(),
            Material::Key(k) => k.version.clone(),
        };
        debug!(vault = %url, object = %spec.name, version = %version, keys = ?values, "rendered");
        out.push(RenderedOutput {
            output,
            values,
            version,
        });
    }
    Ok(out)
}

/// The manifests (`v1` Secret / ConfigMap, as JSON values) the controller would apply for
/// `akvs` into an empty namespace: exactly the fields it owns. The ownerReference is included
/// only when the AKVS has a uid (it came from a cluster). Several AKVS writing into one object
/// give one manifest each; [`merge`] combines them as the API server would.
///
/// # Errors
///
/// As [`read_outputs`].
pub async fn preview(
    akvs: &AzureKeyVaultSecret,
    key_vault: &dyn KeyVaultProvider,
    opts: &ReadOptions,
) -> Result<Vec<Value>, ReadFailure> {
    let rendered = read_outputs(akvs, key_vault, opts).await?;
    let manager = render::field_manager("preview", akvs);
    let (labels, annotations) = render::propagated(akvs, None, &manager);
    let owner = render::owner_reference(akvs);
    Ok(rendered
        .into_iter()
        .map(|r| {
            let desired = Desired {
                output: r.output,
                namespace: akvs.namespace().unwrap_or_default(),
                values: r.values,
                labels: labels.clone(),
                annotations: annotations.clone(),
                owner: owner.clone().unwrap_or_default(),
            };
            let mut body = render::apply_body(&desired);
            if owner.is_none()
                && let Some(meta) = body.get_mut("metadata").and_then(Value::as_object_mut)
            {
                meta.remove("ownerReferences");
            }
            body
        })
        .collect())
}

/// Merges manifests naming the same object (kind, namespace, name) in order: maps (`data`,
/// `binaryData`, labels, annotations) are united, lists (ownerReferences) concatenated, and
/// other fields taken from the first. The result keeps the order of first appearance.
pub fn merge(manifests: Vec<Value>) -> Vec<Value> {
    let id = |v: &Value| {
        (
            v["kind"].as_str().unwrap_or_default().to_owned(),
            v["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            v["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let mut out: Vec<Value> = Vec::new();
    for m in manifests {
        match out.iter_mut().find(|o| id(o) == id(&m)) {
            Some(existing) => merge_into(existing, m),
            None => out.push(m),
        }
    }
    out
}

fn merge_into(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(existing) => merge_into(existing, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for v in b {
                if !a.contains(&v) {
                    a.push(v);
                }
            }
        }
        // Scalars: the first writer's value stands.
        _ => {}
    }
}

/// Why a manifest document is not an `AzureKeyVaultSecret` the controller can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Another kind (a Namespace, a Deployment…): not an error for callers that skip those.
    #[error("not an AzureKeyVaultSecret (apiVersion {api_version:?}, kind {kind:?})")]
    NotAkvs {
        /// `apiVersion` of the document (empty when missing).
        api_version: String,
        /// `kind` of the document (empty when missing).
        kind: String,
    },
    /// `spv.no` at a version the CRD does not serve.
    #[error(
        "apiVersion: {api_version:?} is not served: use spv.no/v2beta1 (or v2alpha1, v1, v1alpha1)"
    )]
    UnservedVersion {
        /// The `apiVersion` found.
        api_version: String,
    },
    /// A field does not fit the schema of the document's version.
    #[error("{path}: {message}")]
    Field {
        /// Path of the field, e.g. `spec.vault.object.type` (`.` for the document itself).
        path: String,
        /// What is wrong, e.g. "unknown variant `sekret`, expected one of …".
        message: String,
    },
}

/// Reads one manifest document (YAML or JSON, as a value) as the API server would serve it at
/// the storage version: checked against the schema of its own `apiVersion`, pruned to it,
/// then served as `v2beta1` (conversion `None`, see [`crate::crd`]). So a `v1alpha1`
/// `output.transforms` list is dropped, as on a cluster.
///
/// # Errors
///
/// [`ManifestError::NotAkvs`] for other kinds, [`ManifestError::UnservedVersion`], and
/// [`ManifestError::Field`] naming the field that does not fit (wrong type, unknown enum value,
/// missing required field).
pub fn akvs_from_manifest(doc: Value) -> Result<AzureKeyVaultSecret, ManifestError> {
    let api_version = doc["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = doc["kind"].as_str().unwrap_or_default().to_owned();
    let Some((GROUP, version)) = api_version.split_once('/') else {
        return Err(ManifestError::NotAkvs { api_version, kind });
    };
    if kind != KIND {
        return Err(ManifestError::NotAkvs { api_version, kind });
    }
    let pruned = match version {
        "v1alpha1" => at_version::<v1alpha1::AzureKeyVaultSecret>(doc)?,
        "v1" => at_version::<v1::AzureKeyVaultSecret>(doc)?,
        "v2alpha1" => at_version::<v2alpha1::AzureKeyVaultSecret>(doc)?,
        "v2beta1" => at_version::<v2beta1::AzureKeyVaultSecret>(doc)?,
        _ => return Err(ManifestError::UnservedVersion { api_version }),
    };
    let mut stored = pruned;
    stored["apiVersion"] = Value::String(format!("{GROUP}/{STORAGE_VERSION}"));
    at_version::<AzureKeyVaultSecret>(stored).and_then(|v| {
        serde_json::from_value(v).map_err(|e| ManifestError::Field {
            path: ".".into(),
            message: e.to_string(),
        })
    })
}

/// `doc` read as `T` (errors name the field), and written back: the fields `T` knows.
fn at_version<T>(doc: Value) -> Result<Value, ManifestError>
where
    T: serde::de::DeserializeOwned + serde::Serialize,
{
    let typed: T = serde_path_to_error::deserialize(doc).map_err(|e| ManifestError::Field {
        path: e.path().to_string(),
        message: e.into_inner().to_string(),
    })?;
    serde_json::to_value(typed).map_err(|e| ManifestError::Field {
        path: ".".into(),
        message: e.to_string(),
    })
}

/// The fields of a Secret or ConfigMap that the controller writes, from an object read back
/// from the API server (or a preview), so the two compare equal when the controller wrote what
/// the preview shows: `apiVersion`, `kind`, `type`, `data`, `binaryData` and the metadata
/// `name`, `namespace`, `labels`, `annotations` and `ownerReferences` (sorted by name). Dropped:
/// what the API server populates (`uid`, `resourceVersion`, `creationTimestamp`,
/// `managedFields`, `generation`, …) and empty maps.
pub fn comparable(object: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for field in ["apiVersion", "kind", "type", "data", "binaryData"] {
        if let Some(v) = object.get(field).filter(|v| !is_empty(v)) {
            out.insert(field.into(), v.clone());
        }
    }
    let mut meta = serde_json::Map::new();
    for field in [
        "name",
        "namespace",
        "labels",
        "annotations",
        "ownerReferences",
    ] {
        if let Some(v) = object["metadata"].get(field).filter(|v| !is_empty(v)) {
            meta.insert(field.into(), v.clone());
        }
    }
    if let Some(Value::Array(refs)) = meta.get_mut("ownerReferences") {
        refs.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    out.insert("metadata".into(), Value::Object(meta));
    Value::Object(out)
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Replaces every value of a preview's `data` / `binaryData` by `<masked: N bytes>` (N is the
/// decoded length for a Secret), so a preview can be shown without its values; neither the
/// value nor a hash of it remains. The result is deliberately not a valid Secret (the masks
/// are not base64), so it cannot be applied by mistake.
pub fn mask_values(manifest: &mut Value) {
    use base64::Engine as _;
    let secret = manifest["kind"] == "Secret";
    for field in ["data", "binaryData"] {
        let Some(map) = manifest.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for value in map.values_mut() {
            let text = value.as_str().unwrap_or_default();
            let len = if secret || field == "binaryData" {
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_or(text.len(), |b| b.len())
            } else {
                text.len()
            };
            *value = Value::String(format!("<masked: {len} bytes>"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn akvs_doc(api_version: &str, object_type: &str) -> Value {
        json!({
            "apiVersion": api_version, "kind": "AzureKeyVaultSecret",
            "metadata": {"name": "a", "namespace": "n"},
            "spec": {
                "vault": {"name": "kv", "object": {"name": "o", "type": object_type}},
                "output": {"secret": {"name": "s", "dataKey": "k"}, "transforms": ["base64decode"]}
            }
        })
    }

    #[test]
    fn every_served_version_reads_as_the_storage_version() {
        for version in ["v1alpha1", "v1", "v2alpha1", "v2beta1"] {
            let akvs = akvs_from_manifest(akvs_doc(&format!("spv.no/{version}"), "secret"))
                .unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(akvs.spec.vault.object.name, "o", "{version}");
            assert_eq!(
                akvs.spec.secret_output().map(|s| s.data_key.as_deref()),
                Some(Some("k")),
                "{version}"
            );
            // `transforms` (v1alpha1's list) is not part of v2beta1: pruned, as on a cluster.
            assert!(akvs.spec.transforms().is_empty(), "{version}");
        }
    }

    #[test]
    fn field_errors_name_the_path() {
        let err = akvs_from_manifest(akvs_doc("spv.no/v2beta1", "sekret")).expect_err("bad type");
        let text = err.to_string();
        assert!(
            text.starts_with("spec.vault.object.type: unknown variant `sekret`"),
            "{text}"
        );
        let mut doc = akvs_doc("spv.no/v1", "secret");
        doc["spec"]["vault"]
            .as_object_mut()
            .expect("vault")
            .remove("name");
        let text = akvs_from_manifest(doc)
            .expect_err("no vault name")
            .to_string();
        assert!(
            text.contains("spec.vault") && text.contains("name"),
            "{text}"
        );
    }

    #[test]
    fn other_kinds_and_versions_are_told_apart() {
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}});
        assert!(matches!(
            akvs_from_manifest(ns),
            Err(ManifestError::NotAkvs { .. })
        ));
        let err = akvs_from_manifest(akvs_doc("spv.no/v3", "secret")).expect_err("v3");
        assert!(
            matches!(err, ManifestError::UnservedVersion { .. }),
            "{err}"
        );
    }

    #[test]
    fn comparable_drops_what_the_server_adds_and_orders_owners() {
        let live = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s", "namespace": "n", "uid": "u", "resourceVersion": "7",
                "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{}],
                "labels": {"a": "1"}, "annotations": {},
                "ownerReferences": [{"name": "y"}, {"name": "x"}]},
            "data": {"k": "dg=="}});
        let preview = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "s", "namespace": "n", "labels": {"a": "1"},
                "ownerReferences": [{"name": "x"}, {"name": "y"}]},
            "data": {"k": "dg=="}});
        assert_eq!(comparable(&live), comparable(&preview));
        assert_eq!(comparable(&preview), preview);
    }

    #[test]
    fn masking_leaves_lengths_only() {
        let mut s = json!({"kind": "Secret", "data": {"password": "aHVudGVyMg=="}});
        mask_values(&mut s);
        assert_eq!(s["data"]["password"], "<masked: 7 bytes>");
        let mut c = json!({"kind": "ConfigMap", "data": {"url": "https://x"},
            "binaryData": {"b": "AAE="}});
        mask_values(&mut c);
        assert_eq!(c["data"]["url"], "<masked: 9 bytes>");
        assert_eq!(c["binaryData"]["b"], "<masked: 2 bytes>");
    }

    #[test]
    fn merge_unites_keys_of_one_object_and_keeps_others_apart() {
        let a = json!({"kind": "Secret", "metadata": {"namespace": "n", "name": "s",
            "labels": {"a": "1"}, "ownerReferences": [{"name": "x"}]}, "type": "Opaque",
            "data": {"k1": "djE="}});
        let b = json!({"kind": "Secret", "metadata": {"namespace": "n", "name": "s",
            "labels": {"b": "2"}, "ownerReferences": [{"name": "y"}]}, "type": "Opaque",
            "data": {"k2": "djI="}});
        let c = json!({"kind": "ConfigMap", "metadata": {"namespace": "n", "name": "s"},
            "data": {"k3": "v3"}});
        let merged = merge(vec![a, c.clone(), b]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0]["data"], json!({"k1": "djE=", "k2": "djI="}));
        assert_eq!(merged[0]["metadata"]["labels"], json!({"a": "1", "b": "2"}));
        assert_eq!(
            merged[0]["metadata"]["ownerReferences"],
            json!([{"name": "x"}, {"name": "y"}])
        );
        assert_eq!(merged[1], c);
    }
}
