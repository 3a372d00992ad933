//! Pure rendering: an `AzureKeyVaultSecret` (v2beta1) and the formatted Key Vault [`Values`]
//! become the server-side apply configuration of its Secret or ConfigMap output, and the
//! checks that decide whether anything needs writing at all.
//!
//! ```text
//! AKVS spec ──object_spec()/outputs()──▶ what to fetch and format (akv-client)
//!                                              │ Values
//!                                              ▼
//! Output + Values + Existing ──propagated()──▶ Desired ──apply_body()──▶ SSA body
//!                                                 │
//!                        Existing (index / GET) ──┴──▶ classify(): Foreign | Conflict |
//!                                                      TypeChanged | UpToDate | Apply
//! ```
//!
//! # Ownership model
//!
//! Every AKVS writes its outputs with server-side apply under its own field manager
//! ([`field_manager`]), so several AKVS can share one Opaque Secret or ConfigMap, each owning
//! only its keys, its ownerReference and the propagated labels/annotations it set. Every output
//! carries the label [`MANAGED_LABEL`]; the controller watches only objects with it. An
//! existing object without the label and without an ownerReference to the AKVS is *foreign*
//! and is never written. Nothing here logs or formats values: comparisons happen in memory.

use std::collections::BTreeMap;

use akv_client::cert::ChainOrder as ClientChainOrder;
use akv_client::format::{ObjectSpec, ObjectType as ClientObjectType, Target, Values, secret_type};
use akv_client::secret::Transform;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource as _, ResourceExt as _};
use serde_json::Value;

use crate::crd::v2beta1::{AzureKeyVaultSecret, AzureKeyVaultSecretSpec};
use crate::crd::{ObjectType, STORAGE_VERSION};

/// Label set on every Secret and ConfigMap the controller writes; the controller watches only
/// objects carrying it, so its memory grows with its outputs, not with the cluster.
pub const MANAGED_LABEL: &str = "spv.no/akv2k8s-managed";
/// Value of [`MANAGED_LABEL`].
pub const MANAGED_VALUE: &str = "true";
/// Finalizer on AKVS with outputs: deleting the AKVS first removes the keys it owns (without
/// asking Key Vault), and the output object when no other AKVS owns it.
pub const FINALIZER: &str = "spv.no/akv2k8s-outputs";
/// AKVS annotations that are not copied to outputs.
pub const SKIPPED_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];
/// Longest field manager name the API server accepts.
pub const MAX_FIELD_MANAGER_LEN: usize = 128;

/// Which kind of object an output is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OutputKind {
    /// A `v1` Secret.
    Secret,
    /// A `v1` ConfigMap.
    ConfigMap,
}

impl OutputKind {
    /// `Secret` or `ConfigMap`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "Secret",
            Self::ConfigMap => "ConfigMap",
        }
    }
}

impl std::fmt::Display for OutputKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One output an AKVS asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Output {
    /// Secret or ConfigMap.
    pub kind: OutputKind,
    /// Object name.
    pub name: String,
    /// Kubernetes Secret type to write (`Opaque` when the spec gives none); `None` for
    /// ConfigMaps.
    pub secret_type: Option<String>,
    /// The raw `output.secret.type` (empty when absent), which the formatter distinguishes
    /// from an explicit `Opaque` for certificates.
    pub raw_type: String,
    /// `dataKey`.
    pub data_key: Option<String>,
}

impl Output {
    /// The formatting target of this output.
    pub fn target(&self) -> Target<'_> {
        match self.kind {
            OutputKind::Secret => Target::Secret {
                secret_type: &self.raw_type,
                data_key: self.data_key.as_deref(),
            },
            OutputKind::ConfigMap => Target::ConfigMap {
                data_key: self.data_key.as_deref(),
            },
        }
    }

    /// Checks what can be checked before Key Vault is read, so an invalid spec costs no
    /// Key Vault transaction: a `dataKey` is needed unless the Secret type fixes the keys
    /// (`kubernetes.io/tls`; for secrets also basic-auth, docker config and SSH) or the
    /// object is a multi-key secret, whose keys come from its value. The formatter checks
    /// the same again.
    ///
    /// # Errors
    ///
    /// [`akv_client::Error::NoDataKey`], as the formatter reports it.
    pub fn check(&self, object_type: ObjectType) -> akv_client::Result<()> {
        let fixed_keys = match (object_type, self.kind) {
            (ObjectType::MultiKeyValueSecret, _) => true,
            (_, OutputKind::ConfigMap) | (ObjectType::Key, _) => false,
            (ObjectType::Certificate, OutputKind::Secret) => self.raw_type == secret_type::TLS,
            (ObjectType::Secret, OutputKind::Secret) => [
                secret_type::TLS,
                secret_type::BASIC_AUTH,
                secret_type::DOCKER_CONFIG_JSON,
                secret_type::DOCKER_CFG,
                secret_type::SSH_AUTH,
            ]
            .contains(&self.raw_type.as_str()),
        };
        if fixed_keys || self.data_key.as_deref().is_some_and(|k| !k.is_empty()) {
            return Ok(());
        }
        Err(akv_client::Error::NoDataKey {
            target: match self.kind {
                OutputKind::Secret => "secret",
                OutputKind::ConfigMap => "configmap",
            },
        })
    }
}

/// The outputs of `spec`: the Secret (if named) first, then the ConfigMap (if named).
pub fn outputs(spec: &AzureKeyVaultSecretSpec) -> Vec<Output> {
    let mut out = Vec::new();
    if let Some(s) = spec.secret_output() {
        let raw = s.type_.clone().unwrap_or_default();
        out.push(Output {
            kind: OutputKind::Secret,
            name: s.name.clone(),
            secret_type: Some(if raw.is_empty() {
                secret_type::OPAQUE.to_owned()
            } else {
                raw.clone()
            }),
            raw_type: raw,
            data_key: s.data_key.clone(),
        });
    }
    if let Some(c) = spec.config_map_output() {
        out.push(Output {
            kind: OutputKind::ConfigMap,
            name: c.name.clone(),
            secret_type: None,
            raw_type: String::new(),
            data_key: Some(c.data_key.clone()),
        });
    }
    out
}

/// The akv-client object spec of `spec.vault.object` with `output.transform` and `chainOrder`.
///
/// # Errors
///
/// [`akv_client::Error::UnknownTransform`] for a transform name akv-client does not know.
pub fn object_spec(spec: &AzureKeyVaultSecretSpec) -> akv_client::Result<ObjectSpec> {
    let object = &spec.vault.object;
    let object_type = match object.type_ {
        ObjectType::Secret => ClientObjectType::Secret,
        ObjectType::Certificate => ClientObjectType::Certificate,
        ObjectType::Key => ClientObjectType::Key,
        ObjectType::MultiKeyValueSecret => ClientObjectType::MultiKeyValueSecret,
    };
    let mut out = ObjectSpec::new(&object.name, object_type)
        .transforms(Transform::parse_all(spec.transforms())?);
    if let Some(ct) = object.content_type {
        out = out.content_type(ct.as_str());
    }
    out.chain_order = ClientChainOrder::from_spec(
        spec.secret_output()
            .and_then(|s| s.chain_order)
            .map(|c| c.as_str()),
    );
    Ok(out)
}

/// The field manager of one AKVS: `<prefix>/<name>` (outputs live in the AKVS's namespace), or
/// `<prefix>/<uid>` when that would exceed [`MAX_FIELD_MANAGER_LEN`].
pub fn field_manager(prefix: &str, akvs: &AzureKeyVaultSecret) -> String {
    let by_name = format!("{prefix}/{}", akvs.name_any());
    if by_name.len() <= MAX_FIELD_MANAGER_LEN {
        by_name
    } else {
        format!("{prefix}/{}", akvs.uid().unwrap_or_default())
    }
}

/// The ownerReference an output carries for `akvs` (not the controller reference, as
/// upstream, so several AKVS can own one object). `None` before the AKVS has a uid.
pub fn owner_reference(akvs: &AzureKeyVaultSecret) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: format!("{}/{STORAGE_VERSION}", crate::crd::GROUP),
        kind: crate::crd::KIND.into(),
        name: akvs.name_any(),
        uid: akvs.meta().uid.clone()?,
        block_owner_deletion: Some(true),
        controller: Some(false),
    })
}

/// What one AKVS wants one output object to hold.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The output.
    pub output: Output,
    /// Namespace (the AKVS's).
    pub namespace: String,
    /// The formatted values (keys only in `Debug`).
    pub values: Values,
    /// Labels to apply (managed label included).
    pub labels: BTreeMap<String, String>,
    /// Annotations to apply.
    pub annotations: BTreeMap<String, String>,
    /// The AKVS's ownerReference.
    pub owner: OwnerReference,
}

/// The AKVS labels and annotations to propagate to an output, without clobbering: a key the
/// existing object holds with another value is copied only when `manager` already owns it
/// (other AKVS, `kubectl` and other tools keep theirs). [`MANAGED_LABEL`] is always set.
pub fn propagated(
    akvs: &AzureKeyVaultSecret,
    existing: Option<&Existing>,
    manager: &str,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let keep = |field: &str, current: Option<&SmallMap<String>>, k: &str, v: &str| -> bool {
        let (Some(e), Some(cur)) = (existing, current) else {
            return true;
        };
        match cur.get(k) {
            None => true,
            Some(c) if c == v => true,
            Some(_) => e.owned(manager, field).contains(k),
        }
    };
    let mut labels: BTreeMap<String, String> = akvs
        .labels()
        .iter()
        .filter(|(k, v)| keep("labels", existing.map(|e| &e.labels), k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(MANAGED_LABEL.into(), MANAGED_VALUE.into());
    let annotations = akvs
        .annotations()
        .iter()
        .filter(|(k, _)| !SKIPPED_ANNOTATIONS.contains(&k.as_str()))
        .filter(|(k, v)| keep("annotations", existing.map(|e| &e.annotations), k, v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    (labels, annotations)
}

/// What to do with one output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The object exists and belongs to someone else: leave it, report `ErrResourceExists`.
    Foreign,
    /// Keys this AKVS would write are owned by other AKVS.
    KeyConflict(Vec<String>),
    /// The Secret's type differs (immutable). `shared` when other AKVS own it too, in which
    /// case it is left alone; otherwise it is deleted and created again.
    TypeChanged {
        /// The existing type.
        from: String,
        /// Other AKVS own the Secret.
        shared: bool,
    },
    /// Nothing to write.
    UpToDate,
    /// Apply the desired state.
    Apply,
}

/// Decides what to do with `desired` given the `existing` object, as the AKVS `uid` writing
/// as `manager` (other AKVS managers start with `prefix/`).
pub fn classify(
    desired: &Desired,
    existing: Option<&Existing>,
    uid: &str,
    prefix: &str,
    manager: &str,
) -> Plan {
    let Some(e) = existing else {
        return Plan::Apply;
    };
    if !e.is_ours(uid) {
        return Plan::Foreign;
    }
    if let (Some(want), Some(have)) = (&desired.output.secret_type, &e.secret_type)
        && want != have
    {
        return Plan::TypeChanged {
            from: have.clone(),
            shared: !e.other_owners(uid).is_empty(),
        };
    }
    let keys = desired.values.keys();
    let conflicts = e.conflicting_keys(prefix, manager, &keys);
    if !conflicts.is_empty() {
        return Plan::KeyConflict(conflicts);
    }
    if up_to_date(desired, e, uid, manager) {
        Plan::UpToDate
    } else {
        Plan::Apply
    }
}

/// Whether `e` already holds everything `desired` applies and nothing `manager` applied
/// before and no longer wants (stale keys, labels, annotations).
pub fn up_to_date(desired: &Desired, e: &Existing, uid: &str, manager: &str) -> bool {
    let data_equal = desired
        .values
        .0
        .iter()
        .all(|(k, v)| e.holds(k, v.as_bytes()));
    let owned_keys = e.owned(manager, "data");
    let no_stale_keys = owned_keys.iter().all(|k| desired.values.0.contains_key(k));
    let map_ok = |want: &BTreeMap<String, String>, have: &SmallMap<String>, f: &str| {
        want.iter().all(|(k, v)| have.get(k) == Some(v))
            && e.owned(manager, f).iter().all(|k| want.contains_key(k))
    };
    data_equal
        && no_stale_keys
        && e.owned_by(uid)
        && map_ok(&desired.labels, &e.labels, "labels")
        && map_ok(&desired.annotations, &e.annotations, "annotations")
}

fn meta(desired: &Desired) -> ObjectMeta {
    ObjectMeta {
        name: Some(desired.output.name.clone()),
        namespace: Some(desired.namespace.clone()),
        labels: Some(desired.labels.clone()),
        annotations: (!desired.annotations.is_empty()).then(|| desired.annotations.clone()),
        owner_references: Some(vec![desired.owner.clone()]),
        ..Default::default()
    }
}

/// The server-side apply configuration of `desired`: exactly the fields this AKVS owns.
pub fn apply_body(desired: &Desired) -> Value {
    let value = match desired.output.kind {
        OutputKind::Secret => serde_json::to_value(Secret {
            metadata: meta(desired),
            type_: desired.output.secret_type.clone(),
            data: Some(
                desired
                    .values
                    .0
                    .iter()
                    .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                    .collect(),
            ),
            ..Default::default()
        }),
        OutputKind::ConfigMap => {
            let (text, binary): (Vec<_>, Vec<_>) = desired
                .values
                .0
                .iter()
                .partition(|(_, v)| v.as_str().is_some());
            serde_json::to_value(ConfigMap {
                metadata: meta(desired),
                data: (!text.is_empty()).then(|| {
                    text.into_iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                }),
                binary_data: (!binary.is_empty()).then(|| {
                    binary
                        .into_iter()
                        .map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec())))
                        .collect()
                }),
                ..Default::default()
            })
        }
    };
    let mut value = value.unwrap_or(Value::Null);
    let (api_version, kind) = ("v1", desired.output.kind.as_str());
    if let Some(o) = value.as_object_mut() {
        o.insert("apiVersion".into(), api_version.into());
        o.insert("kind".into(), kind.into());
    }
    value
}

/// The apply configuration that gives up everything `manager` owns in an object that other
/// AKVS still own: only identity (and the immutable Secret `type`, kept as is).
pub fn release_body(kind: OutputKind, namespace: &str, name: &str, e: &Existing) -> Value {
    let mut v = serde_json::json!({
        "apiVersion": "v1",
        "kind": kind.as_str(),
        "metadata": {"name": name, "namespace": namespace},
    });
    if let (OutputKind::Secret, Some(t)) = (kind, &e.secret_type) {
        v["type"] = Value::String(t.clone());
    }
    v
}

/// A stable, value-free hash of what was written: FNV-1a over the Key Vault object identity,
/// its version id and the output's name, type and keys (upstream hashed the values).
pub fn version_hash(
    akvs: &AzureKeyVaultSecretSpec,
    version: &str,
    output: &Output,
    keys: &[&str],
) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |s: &str| {
        for b in s.bytes().chain(std::iter::once(0)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(&akvs.vault.name);
    feed(akvs.vault.object.type_.as_str());
    feed(&akvs.vault.object.name);
    feed(version);
    feed(output.kind.as_str());
    feed(&output.name);
    feed(output.secret_type.as_deref().unwrap_or_default());
    for k in keys {
        feed(k);
    }
    format!("{h:016x}")
}

mod existing;

pub use existing::{Applied, Digest, Existing, Owner, SmallMap};

#[cfg(test)]
mod tests;
