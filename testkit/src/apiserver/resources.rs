//! The resource types the fake serves: the built-in ones and those registered by CRDs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// One printer column (`additionalPrinterColumns`, or a built-in type's columns).
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Header.
    pub name: String,
    /// `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// Format, e.g. `name`.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 for the default view, higher for `-o wide`.
    pub priority: i64,
    /// JSONPath relative to the object (`.spec.x`), or a built-in computation (`@…`).
    pub json_path: String,
}

impl Column {
    fn new(name: &str, type_: &str, path: &str) -> Self {
        Self {
            name: name.into(),
            type_: type_.into(),
            format: if name == "Name" {
                "name".into()
            } else {
                String::new()
            },
            description: String::new(),
            priority: 0,
            json_path: path.into(),
        }
    }
}

/// One served version of a resource.
#[derive(Clone, Debug)]
pub struct Version {
    /// `v1`, `v2beta1`, …
    pub name: String,
    /// OpenAPI v3 schema of the object (custom resources), used for validation and pruning.
    pub schema: Option<Value>,
    /// Printer columns after `Name`.
    pub columns: Vec<Column>,
}

/// A resource type (group + plural), with its served versions.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// API group, `""` for core.
    pub group: String,
    /// Plural name (`secrets`).
    pub plural: String,
    /// Singular name (`secret`).
    pub singular: String,
    /// Kind (`Secret`).
    pub kind: String,
    /// List kind (`SecretList`).
    pub list_kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names (`akvs`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Whether a `status` subresource is served (status writes only via it).
    pub status_subresource: bool,
    /// Whether `metadata.generation` is maintained (bumped on spec changes).
    pub tracks_generation: bool,
    /// Served versions, the storage version first.
    pub versions: Vec<Version>,
    /// Version objects are stored in.
    pub storage_version: String,
    /// Defined by a CRD (custom resource) rather than built in.
    pub custom: bool,
}

impl ResourceType {
    /// `group/version` or `version` for core.
    pub fn group_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{}", self.group, version)
        }
    }

    /// The served version `name`.
    pub fn version(&self, name: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.name == name)
    }

    /// `secrets` or `azurekeyvaultsecrets.spv.no` (as in messages).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The kind as messages name it (`Secret`, `AzureKeyVaultSecret.spv.no`).
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Verbs listed in discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    columns: Vec<Column>,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        plural: plural.into(),
        singular: kind.to_ascii_lowercase(),
        kind: kind.into(),
        list_kind: format!("{kind}List"),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if matches!(plural, "pods") {
            vec!["all".into()]
        } else {
            vec![]
        },
        status_subresource: matches!(plural, "pods" | "namespaces"),
        tracks_generation: false,
        versions: vec![Version {
            name: version.into(),
            schema: None,
            columns,
        }],
        storage_version: version.into(),
        custom: false,
    }
}

/// The built-in types.
pub fn builtins() -> Vec<ResourceType> {
    let age = || Column::new("Age", "date", ".metadata.creationTimestamp");
    vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            vec![Column::new("Status", "string", ".status.phase"), age()],
        ),
        builtin(
            "",
            "v1",
            "secrets",
            "Secret",
            true,
            &[],
            vec![
                Column::new("Type", "string", ".type"),
                Column::new("Data", "integer", "@count:data"),
                age(),
            ],
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            vec![
                Column::new("Data", "integer", "@count:data+binaryData"),
                age(),
            ],
        ),
        builtin(
            "",
            "v1",
            "pods",
            "Pod",
            true,
            &["po"],
            vec![
                Column::new("Ready", "string", "@pod-ready"),
                Column::new("Status", "string", ".status.phase"),
                Column::new("Restarts", "integer", "@pod-restarts"),
                age(),
            ],
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            vec![Column::new("Secrets", "integer", "@count:secrets"), age()],
        ),
        builtin(
            "",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            vec![
                Column::new("Type", "string", ".type"),
                Column::new("Reason", "string", ".reason"),
                Column::new("Message", "string", ".message"),
                age(),
            ],
        ),
        builtin(
            "events.k8s.io",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            vec![
                Column::new("Type", "string", ".type"),
                Column::new("Reason", "string", ".reason"),
                Column::new("Note", "string", ".note"),
                age(),
            ],
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            vec![
                Column::new("Holder", "string", ".spec.holderIdentity"),
                age(),
            ],
        ),
        {
            let mut crd = builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                &["crd", "crds"],
                vec![Column::new(
                    "Created At",
                    "date",
                    ".metadata.creationTimestamp",
                )],
            );
            crd.status_subresource = true;
            crd.tracks_generation = true;
            crd.categories = vec!["api-extensions".into()];
            crd
        },
    ]
}

/// Why a CRD cannot be served.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field}: {reason}")]
pub struct CrdError {
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

fn crd_err(field: &str, reason: &str) -> CrdError {
    CrdError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The resource type a CRD (`apiextensions.k8s.io/v1`) defines.
///
/// # Errors
///
/// When required fields are missing or inconsistent (the real server answers 422).
pub fn from_crd(crd: &Value) -> Result<ResourceType, CrdError> {
    let spec = &crd["spec"];
    let s = |v: &Value| v.as_str().map(str::to_owned);
    let group = s(&spec["group"]).ok_or_else(|| crd_err("spec.group", "Required value"))?;
    let names = &spec["names"];
    let plural =
        s(&names["plural"]).ok_or_else(|| crd_err("spec.names.plural", "Required value"))?;
    let kind = s(&names["kind"]).ok_or_else(|| crd_err("spec.names.kind", "Required value"))?;
    let expected_name = format!("{plural}.{group}");
    if crd["metadata"]["name"].as_str() != Some(expected_name.as_str()) {
        return Err(crd_err(
            "metadata.name",
            &format!("must be spec.names.plural+\".\"+spec.group: {expected_name:?}"),
        ));
    }
    let scope = s(&spec["scope"]).ok_or_else(|| crd_err("spec.scope", "Required value"))?;
    let namespaced = match scope.as_str() {
        "Namespaced" => true,
        "Cluster" => false,
        _ => {
            return Err(crd_err(
                "spec.scope",
                "Unsupported value: must be \"Cluster\" or \"Namespaced\"",
            ));
        }
    };
    let mut versions = Vec::new();
    let mut storage = None;
    let mut status = false;
    for (i, v) in spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = s(&v["name"])
            .ok_or_else(|| crd_err(&format!("spec.versions[{i}].name"), "Required value"))?;
        if v["storage"].as_bool() == Some(true) {
            if storage.is_some() {
                return Err(crd_err(
                    "spec.versions",
                    "must have exactly one version marked as storage version",
                ));
            }
            storage = Some(name.clone());
        }
        if !v["subresources"]["status"].is_null() {
            status = true;
        }
        if v["served"].as_bool() != Some(true) {
            continue;
        }
        let columns = v["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| Column {
                name: c["name"].as_str().unwrap_or_default().into(),
                type_: c["type"].as_str().unwrap_or("string").into(),
                format: c["format"].as_str().unwrap_or_default().into(),
                description: c["description"].as_str().unwrap_or_default().into(),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
            })
            .collect::<Vec<_>>();
        let columns = if v["additionalPrinterColumns"].is_null() {
            vec![Column::new("Age", "date", ".metadata.creationTimestamp")]
        } else {
            columns
        };
        versions.push(Version {
            name,
            schema: v["schema"]["openAPIV3Schema"]
                .as_object()
                .map(|_| v["schema"]["openAPIV3Schema"].clone()),
            columns,
        });
    }
    let storage_version = storage.ok_or_else(|| {
        crd_err(
            "spec.versions",
            "must have exactly one version marked as storage version",
        )
    })?;
    if versions.is_empty() {
        return Err(crd_err(
            "spec.versions",
            "must have at least one served version",
        ));
    }
    // Storage version first.
    versions.sort_by_key(|v| v.name != storage_version);
    let strings = |v: &Value| {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect()
    };
    Ok(ResourceType {
        group,
        singular: s(&names["singular"]).unwrap_or_else(|| kind.to_ascii_lowercase()),
        list_kind: s(&names["listKind"]).unwrap_or_else(|| format!("{kind}List")),
        kind,
        plural,
        namespaced,
        short_names: strings(&names["shortNames"]),
        categories: strings(&names["categories"]),
        status_subresource: status,
        tracks_generation: true,
        versions,
        storage_version,
        custom: true,
    })
}

/// Kubernetes' version priority: `v2` > `v1` > `v2beta1` > `v1beta2` > `v1alpha1` > other
/// names. Larger is preferred.
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let level_minor = |prefix: &str, level: u8| {
        tail.strip_prefix(prefix)
            .and_then(|m| m.parse::<u64>().ok())
            .map(|m| (level, major, m))
    };
    if tail.is_empty() {
        (3, major, 0)
    } else {
        level_minor("beta", 2)
            .or_else(|| level_minor("alpha", 1))
            .unwrap_or((0, 0, 0))
    }
}

/// All served types by (group, plural).
#[derive(Clone, Debug, Default)]
pub struct Registry {
    types: BTreeMap<(String, String), ResourceType>,
}

impl Registry {
    /// The built-in types.
    pub fn with_builtins() -> Self {
        let mut r = Self::default();
        for t in builtins() {
            r.insert(t);
        }
        r
    }

    /// Adds or replaces a type.
    pub fn insert(&mut self, t: ResourceType) {
        self.types.insert((t.group.clone(), t.plural.clone()), t);
    }

    /// Removes a type.
    pub fn remove(&mut self, group: &str, plural: &str) -> Option<ResourceType> {
        self.types.remove(&(group.to_owned(), plural.to_owned()))
    }

    /// The type `group`/`plural`.
    pub fn get(&self, group: &str, plural: &str) -> Option<&ResourceType> {
        self.types.get(&(group.to_owned(), plural.to_owned()))
    }

    /// The type serving `group`/`version`/`plural`.
    pub fn served(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.get(group, plural)
            .filter(|t| t.version(version).is_some())
    }

    /// Every type.
    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// `/apis` group list: every group with its versions (core excluded), highest priority
    /// first; the preferred version is the highest-priority one (GA over beta over alpha, then
    /// higher numbers), as the real server orders CRD versions.
    pub fn groups(&self) -> Value {
        let mut groups: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for t in self.all().filter(|t| !t.group.is_empty()) {
            let e = groups.entry(&t.group).or_default();
            for v in &t.versions {
                if !e.contains(&v.name) {
                    e.push(v.name.clone());
                }
            }
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(g, mut vs)| {
                vs.sort_by(|a, b| version_priority(b).cmp(&version_priority(a)).then_with(|| a.cmp(b)));
                let pv = vs.first().cloned().unwrap_or_default();
                json!({
                    "name": g,
                    "versions": vs.iter().map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v})).collect::<Vec<_>>(),
                    "preferredVersion": {"groupVersion": format!("{g}/{pv}"), "version": pv},
                })
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// A group/version's resource list, or `None` when nothing is served there.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mut resources = Vec::new();
        for t in self
            .all()
            .filter(|t| t.group == group && t.version(version).is_some())
        {
            resources.push(json!({
                "name": t.plural,
                "singularName": t.singular,
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": t.verbs(),
                "shortNames": t.short_names,
                "categories": t.categories,
            }));
            if t.status_subresource {
                resources.push(json!({
                    "name": format!("{}/status", t.plural),
                    "singularName": "",
                    "namespaced": t.namespaced,
                    "kind": t.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        if resources.is_empty() {
            return None;
        }
        let gv = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(
            json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_crd_defines_its_versions_with_storage_first() {
        let crd = json!({
            "metadata": {"name": "things.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "things", "kind": "Thing", "shortNames": ["th"]},
                "versions": [
                    {"name": "v1alpha1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "additionalPrinterColumns": [{"name": "Ready", "type": "string", "jsonPath": ".status.ready"}]},
                ]
            }
        });
        let t = from_crd(&crd).expect("valid");
        assert_eq!(
            t.versions
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>(),
            ["v1", "v1alpha1"]
        );
        assert!(t.status_subresource && t.namespaced && t.custom);
        assert_eq!(t.versions[0].columns[0].json_path, ".status.ready");
        assert_eq!(t.versions[1].columns[0].name, "Age");

        let mut bad = crd.clone();
        bad["metadata"]["name"] = json!("wrong");
        assert_eq!(from_crd(&bad).expect_err("name").field, "metadata.name");
    }

    #[test]
    fn versions_are_preferred_as_kubernetes_orders_them() {
        let mut vs = [
            "v1alpha1", "v2beta1", "v1", "v2alpha1", "v1beta1", "v2", "foo",
        ];
        vs.sort_by(|a, b| {
            version_priority(b)
                .cmp(&version_priority(a))
                .then_with(|| a.cmp(b))
        });
        assert_eq!(
            vs,
            [
                "v2", "v1", "v2beta1", "v1beta1", "v2alpha1", "v1alpha1", "foo"
            ]
        );
    }

    #[test]
    fn discovery_lists_groups_and_status_subresources() {
        let r = Registry::with_builtins();
        let core = r.resource_list("", "v1").expect("core");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .expect("a")
            .iter()
            .filter_map(|x| x["name"].as_str())
            .collect();
        assert!(names.contains(&"secrets") && names.contains(&"pods/status"));
        let groups = r.groups();
        assert!(
            groups["groups"]
                .as_array()
                .expect("a")
                .iter()
                .any(|g| g["name"] == "coordination.k8s.io")
        );
        assert!(r.resource_list("nope", "v1").is_none());
    }
}
