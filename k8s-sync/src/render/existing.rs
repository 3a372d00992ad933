//! [`Existing`]: an output object as the controller remembers it — compact, value-free.
//!
//! The controller keeps one per managed Secret/ConfigMap for as long as it runs, so the
//! representation is chosen for memory: values are SHA-256 digests (never the bytes), maps are
//! sorted vectors (a `BTreeMap` node costs ~0.5 KiB even for one entry), and of managedFields
//! only what ownership decisions read is kept — per server-side-apply manager, the data,
//! label and annotation keys it owns ([`Applied`]).

use std::collections::BTreeSet;

use akv_client::format::secret_type;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    ManagedFieldsEntry, ObjectMeta, OwnerReference,
};

use super::{MANAGED_LABEL, MANAGED_VALUE};

/// SHA-256 of a value.
pub type Digest = [u8; 32];

/// The SHA-256 digest of `bytes`.
pub fn digest(bytes: &[u8]) -> Digest {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// A small map as a sorted vector: lookups by binary search, no per-node overhead.
#[derive(Clone, PartialEq, Eq)]
pub struct SmallMap<V>(Vec<(String, V)>);

impl<V> Default for SmallMap<V> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<V> SmallMap<V> {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.0
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| &self.0[i].1)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`.
    pub fn insert(&mut self, key: String, value: V) {
        match self.0.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
            Ok(i) => self.0[i].1 = value,
            Err(i) => self.0.insert(i, (key, value)),
        }
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// Entries, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &V)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<V> FromIterator<(String, V)> for SmallMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut v: Vec<(String, V)> = iter.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        // Later entries win, as in a map.
        v.reverse();
        v.dedup_by(|a, b| a.0 == b.0);
        v.reverse();
        v.shrink_to_fit();
        Self(v)
    }
}

impl<V, const N: usize> From<[(String, V); N]> for SmallMap<V> {
    fn from(a: [(String, V); N]) -> Self {
        a.into_iter().collect()
    }
}

/// What one server-side-apply manager owns in an output: keys under `data`/`binaryData`,
/// `metadata.labels` and `metadata.annotations` (sorted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The field manager.
    pub manager: String,
    /// Keys of `data` and `binaryData`.
    pub data: Vec<String>,
    /// Label keys.
    pub labels: Vec<String>,
    /// Annotation keys.
    pub annotations: Vec<String>,
}

impl Applied {
    /// The apply entry of a managedFields list (operation `Apply` on the main resource);
    /// `None` for updates and subresources.
    pub fn from_entry(m: &ManagedFieldsEntry) -> Option<Self> {
        if m.operation.as_deref() != Some("Apply")
            || !m.subresource.as_deref().unwrap_or("").is_empty()
        {
            return None;
        }
        let fields = m.fields_v1.as_ref().map(|f| &f.0);
        let keys = |path: &[&str]| -> Vec<String> {
            let mut node = match fields {
                Some(f) => f,
                None => return Vec::new(),
            };
            for p in path {
                node = &node[format!("f:{p}")];
            }
            let mut out: Vec<String> = node
                .as_object()
                .map(|o| {
                    o.keys()
                        .filter_map(|k| k.strip_prefix("f:").map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            out.sort();
            out.shrink_to_fit();
            out
        };
        let mut data = keys(&["data"]);
        data.extend(keys(&["binaryData"]));
        data.sort();
        data.dedup();
        data.shrink_to_fit();
        Some(Self {
            manager: m.manager.clone().unwrap_or_default(),
            data,
            labels: keys(&["metadata", "labels"]),
            annotations: keys(&["metadata", "annotations"]),
        })
    }

    fn field(&self, field: &str) -> &[String] {
        match field {
            "data" | "binaryData" => &self.data,
            "labels" => &self.labels,
            "annotations" => &self.annotations,
            _ => &[],
        }
    }
}

/// One ownerReference, reduced to what ownership decisions read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owner {
    /// The owner's uid.
    pub uid: String,
    /// Whether the owner is an `AzureKeyVaultSecret`.
    pub akvs: bool,
}

impl From<&OwnerReference> for Owner {
    fn from(o: &OwnerReference) -> Self {
        Self {
            uid: o.uid.clone(),
            akvs: o.kind == crate::crd::KIND,
        }
    }
}

/// An existing output object, reduced to what the controller compares.
#[derive(Clone, Default, PartialEq)]
pub struct Existing {
    /// uid.
    pub uid: Option<String>,
    /// resourceVersion.
    pub resource_version: Option<String>,
    /// Secret type (`None` for ConfigMaps; `Opaque` when a Secret has none).
    pub secret_type: Option<String>,
    /// Digests of the data (ConfigMap `data` and `binaryData` merged).
    pub data: SmallMap<Digest>,
    /// Labels.
    pub labels: SmallMap<String>,
    /// Annotations.
    pub annotations: SmallMap<String>,
    /// ownerReferences.
    pub owners: Vec<Owner>,
    /// What each server-side-apply manager owns (from managedFields).
    pub applied: Vec<Applied>,
}

impl std::fmt::Debug for Existing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Existing")
            .field("uid", &self.uid)
            .field("secret_type", &self.secret_type)
            .field("keys", &self.data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

fn small(m: Option<&std::collections::BTreeMap<String, String>>) -> SmallMap<String> {
    m.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl Existing {
    fn from_meta(meta: &ObjectMeta) -> Self {
        let owners = meta
            .owner_references
            .iter()
            .flatten()
            .map(Owner::from)
            .collect();
        Self {
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            labels: small(meta.labels.as_ref()),
            annotations: small(meta.annotations.as_ref()),
            owners,
            applied: meta
                .managed_fields
                .iter()
                .flatten()
                .filter_map(Applied::from_entry)
                .collect(),
            ..Default::default()
        }
    }

    /// From a Secret.
    pub fn from_secret(s: &Secret) -> Self {
        let mut e = Self::from_meta(&s.metadata);
        e.secret_type = Some(
            s.type_
                .clone()
                .unwrap_or_else(|| secret_type::OPAQUE.to_owned()),
        );
        e.data = s
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), digest(&v.0)))
            .collect();
        e
    }

    /// From a ConfigMap.
    pub fn from_config_map(c: &ConfigMap) -> Self {
        let mut e = Self::from_meta(&c.metadata);
        e.data = c
            .data
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), digest(v.as_bytes())))
            .chain(
                c.binary_data
                    .iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), digest(&v.0))),
            )
            .collect();
        e
    }

    /// Whether key `key` holds exactly `value`.
    pub fn holds(&self, key: &str, value: &[u8]) -> bool {
        self.data.get(key) == Some(&digest(value))
    }

    /// Whether the controller may write this object for the AKVS with `uid`: it carries the
    /// managed label, or an ownerReference to that AKVS (an output upstream akv2k8s wrote).
    pub fn is_ours(&self, uid: &str) -> bool {
        self.labels.get(MANAGED_LABEL).map(String::as_str) == Some(MANAGED_VALUE)
            || self.owned_by(uid)
    }

    /// Whether an ownerReference names the AKVS with `uid`.
    pub fn owned_by(&self, uid: &str) -> bool {
        self.owners.iter().any(|o| o.uid == uid)
    }

    /// uids of the other AKVS that own this object.
    pub fn other_owners(&self, uid: &str) -> Vec<String> {
        self.owners
            .iter()
            .filter(|o| o.akvs && o.uid != uid)
            .map(|o| o.uid.clone())
            .collect()
    }

    /// The keys under `field` (`data`/`binaryData` — both mean data keys —, `labels` or
    /// `annotations`) owned by `manager`'s apply entry.
    pub fn owned(&self, manager: &str, field: &str) -> BTreeSet<String> {
        self.applied
            .iter()
            .filter(|a| a.manager == manager)
            .flat_map(|a| a.field(field).iter().cloned())
            .collect()
    }

    /// Keys of `keys` that an apply entry of another AKVS (manager `<prefix>/…` other than
    /// `manager`) owns under `data` or `binaryData`.
    pub fn conflicting_keys(&self, prefix: &str, manager: &str, keys: &[&str]) -> Vec<String> {
        let theirs: BTreeSet<&str> = self
            .applied
            .iter()
            .filter(|a| {
                a.manager != manager
                    && a.manager
                        .strip_prefix(prefix)
                        .is_some_and(|r| r.starts_with('/'))
            })
            .flat_map(|a| a.data.iter().map(String::as_str))
            .collect();
        keys.iter()
            .filter(|k| theirs.contains(**k))
            .map(|k| (*k).to_owned())
            .collect()
    }
}
