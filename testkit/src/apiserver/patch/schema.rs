//! What the patch and field-management code needs to know about the shape of the types we
//! serve: which lists merge by key (and by which key), which are sets of scalars, which are
//! atomic, and which maps are atomic.
//!
//! Strategic merge patch reads the `patchMergeKey`/`patchStrategy` struct tags of the Go types;
//! server-side apply reads `x-kubernetes-list-type`/`x-kubernetes-list-map-keys`/
//! `x-kubernetes-map-type` from the OpenAPI schema. The two disagree in places (container
//! `ports` merge on `containerPort` for strategic merge but are keyed by
//! `containerPort`+`protocol` for apply), so a keyed list carries both.
//!
//! Paths are field names from the object root with list levels skipped:
//! `spec.containers[*].env` is `["spec", "containers", "env"]`.

/// How a list field combines with another value of itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ListType {
    /// A list of objects identified by key fields (`patchStrategy:"merge"` with a merge key;
    /// `x-kubernetes-list-type: map`).
    Map {
        /// The strategic merge patch merge key.
        smp_key: &'static str,
        /// The server-side apply list-map keys.
        ssa_keys: &'static [&'static str],
    },
    /// A list of scalars merged as a set (`patchStrategy:"merge"` on `[]string`;
    /// `x-kubernetes-list-type: set`).
    Set,
    /// Replaced as a whole (no patch strategy; `x-kubernetes-list-type: atomic`).
    Atomic,
}

/// The kinds whose schema we know; everything else is a custom resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `v1` Pod: the pod spec sits at `spec`.
    Pod,
    /// Workloads whose pod template sits at `spec.template`.
    Workload,
    /// `batch/v1` CronJob: the pod template sits at `spec.jobTemplate.spec.template`.
    CronJob,
    /// `v1` ServiceAccount (`secrets` merge by name).
    ServiceAccount,
    /// `v1` Namespace (`status.conditions` merge by type).
    Namespace,
    /// `v1` Service (`spec.ports` merge by port).
    Service,
    /// Any other built-in kind we serve: only the object metadata rules apply.
    Plain,
    /// A custom resource: maps are granular, lists are atomic; strategic merge is refused.
    Custom,
}

impl Kind {
    /// Classifies `apiVersion`/`kind`.
    pub(crate) fn of(api_version: &str, kind: &str) -> Kind {
        match (api_version, kind) {
            ("v1", "Pod") => Kind::Pod,
            ("apps/v1", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
            | ("batch/v1", "Job") => Kind::Workload,
            ("batch/v1", "CronJob") => Kind::CronJob,
            ("v1", "ServiceAccount") => Kind::ServiceAccount,
            ("v1", "Namespace") => Kind::Namespace,
            ("v1", "Service") => Kind::Service,
            ("v1", "Secret" | "ConfigMap" | "Event" | "Endpoints")
            | ("events.k8s.io/v1", "Event")
            | ("coordination.k8s.io/v1", "Lease")
            | ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => Kind::Plain,
            _ => Kind::Custom,
        }
    }

    /// True for kinds compiled into the API server (they support strategic merge patch).
    pub(crate) fn is_builtin(self) -> bool {
        self != Kind::Custom
    }

    /// Where the pod spec sits, if this kind has one.
    fn pod_spec_prefix(self) -> Option<&'static [&'static str]> {
        match self {
            Kind::Pod => Some(&["spec"]),
            Kind::Workload => Some(&["spec", "template", "spec"]),
            Kind::CronJob => Some(&["spec", "jobTemplate", "spec", "template", "spec"]),
            _ => None,
        }
    }

    /// The list type of the list field at `path`.
    pub(crate) fn list_type(self, path: &[&str]) -> ListType {
        const NAME: ListType = ListType::Map {
            smp_key: "name",
            ssa_keys: &["name"],
        };
        const TYPE: ListType = ListType::Map {
            smp_key: "type",
            ssa_keys: &["type"],
        };
        const IP: ListType = ListType::Map {
            smp_key: "ip",
            ssa_keys: &["ip"],
        };
        // Object metadata, at the root and in pod templates.
        if let [.., "metadata", field] = path {
            match *field {
                "ownerReferences" => {
                    return ListType::Map {
                        smp_key: "uid",
                        ssa_keys: &["uid"],
                    };
                }
                "finalizers" => return ListType::Set,
                _ => {}
            }
        }
        if let Some(prefix) = self.pod_spec_prefix()
            && let Some(rel) = path.strip_prefix(prefix)
        {
            return match rel {
                ["containers" | "initContainers" | "ephemeralContainers"]
                | ["volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates"] => NAME,
                ["hostAliases"] => IP,
                ["topologySpreadConstraints"] => ListType::Map {
                    smp_key: "topologyKey",
                    ssa_keys: &["topologyKey", "whenUnsatisfiable"],
                },
                [
                    "containers" | "initContainers" | "ephemeralContainers",
                    field,
                ] => match *field {
                    "env" => NAME,
                    "ports" => ListType::Map {
                        smp_key: "containerPort",
                        ssa_keys: &["containerPort", "protocol"],
                    },
                    "volumeMounts" => ListType::Map {
                        smp_key: "mountPath",
                        ssa_keys: &["mountPath"],
                    },
                    "volumeDevices" => ListType::Map {
                        smp_key: "devicePath",
                        ssa_keys: &["devicePath"],
                    },
                    _ => ListType::Atomic,
                },
                _ => ListType::Atomic,
            };
        }
        match (self, path) {
            (Kind::Pod, ["status", "conditions"]) => TYPE,
            (Kind::Pod, ["status", "podIPs" | "hostIPs"]) => IP,
            (Kind::Workload | Kind::Namespace, ["status", "conditions"]) => TYPE,
            (Kind::ServiceAccount, ["secrets"]) => NAME,
            (Kind::Service, ["spec", "ports"]) => ListType::Map {
                smp_key: "port",
                ssa_keys: &["port", "protocol"],
            },
            _ => ListType::Atomic,
        }
    }

    /// True when the map at `path` is owned and replaced as a whole by server-side apply
    /// (`x-kubernetes-map-type: atomic`, e.g. label selectors).
    pub(crate) fn map_is_atomic(self, path: &[&str]) -> bool {
        matches!(
            (self, path),
            (Kind::Workload | Kind::Service, ["spec", "selector"])
                | (Kind::CronJob, ["spec", "jobTemplate", "spec", "selector"])
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_mounts_are_keyed_by_mount_path_in_every_pod_template() {
        for (kind, prefix) in [
            (Kind::of("v1", "Pod"), vec!["spec"]),
            (
                Kind::of("apps/v1", "Deployment"),
                vec!["spec", "template", "spec"],
            ),
            (
                Kind::of("batch/v1", "CronJob"),
                vec!["spec", "jobTemplate", "spec", "template", "spec"],
            ),
        ] {
            let mut path = prefix.clone();
            path.extend(["initContainers", "volumeMounts"]);
            assert_eq!(
                kind.list_type(&path),
                ListType::Map {
                    smp_key: "mountPath",
                    ssa_keys: &["mountPath"]
                }
            );
        }
    }

    #[test]
    fn custom_resources_have_atomic_lists_except_metadata() {
        let cr = Kind::of("example.com/v1", "Widget");
        assert!(!cr.is_builtin());
        assert_eq!(cr.list_type(&["spec", "containers"]), ListType::Atomic);
        assert_eq!(cr.list_type(&["metadata", "finalizers"]), ListType::Set);
    }
}
