//! What an `AzureKeyVaultSecret` produces, without a cluster: the Key Vault read and the
//! formatting every reconcile does ([`read_outputs`]), and the Secret/ConfigMap manifests the
//! controller would apply for it ([`preview`]).
//!
//! The controller and `akv2k8s render` share this code, so a preview is what the controller
//! writes (less the fields the API server adds).

use akv_client::format::{FormatOptions, Material, Values, fetch, format};
use akv_client::{IdentityRef, KeyVaultProvider, VaultUrl};
use kube::ResourceExt as _;
use serde_json::Value;
use tracing::debug;

use crate::crd::ReadyReason;
use crate::crd::v2beta1::AzureKeyVaultSecret;
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
            v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
