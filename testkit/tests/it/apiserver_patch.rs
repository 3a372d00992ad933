//! The strategic merge patch of the fake API server checked against the real implementation:
//! `kubectl patch --local --type strategic` computes the merge client-side with the same Go
//! code the API server runs, without contacting a server.
//!
//! kubectl is part of our CI machine image: when it is missing these tests fail, they never
//! skip.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use testkit::apiserver::patch::{PatchError, strategic_merge_patch};

/// Runs `kubectl patch --local` on `object` and returns its result, or kubectl's error text.
fn kubectl_patch(dir: &Path, object: &Value, patch: &Value) -> Result<Value, String> {
    let file = dir.join("object.json");
    std::fs::write(&file, object.to_string()).expect("write the object");
    // A kubeconfig that points nowhere proves that --local never talks to a server.
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: nowhere\n  cluster: {server: \"https://127.0.0.1:1\"}\n\
         contexts:\n- name: nowhere\n  context: {cluster: nowhere, user: nobody}\ncurrent-context: nowhere\n\
         users:\n- name: nobody\n  user: {token: none}\n",
    )
    .expect("write the kubeconfig");
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["patch", "--local", "--type", "strategic", "-o", "json", "-f"])
        .arg(&file)
        .arg("-p")
        .arg(patch.to_string())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "kubectl is required for the strategic merge patch oracle tests and is part of the CI image; \
                 install kubectl (1.27+) on PATH: {e}"
            )
        });
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).expect("kubectl prints JSON"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn pod() -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": "web", "namespace": "default",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"note": "x"},
            "finalizers": ["example.com/a", "example.com/b"],
            "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1", "uid": "u-1", "controller": true},
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u-2"}
            ]
        },
        "spec": {
            "imagePullSecrets": [{"name": "reg1"}],
            "tolerations": [{"key": "a", "operator": "Exists"}, {"key": "b", "operator": "Exists"}],
            "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
            "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"]}],
            "containers": [
                {
                    "name": "app", "image": "nginx:1", "args": ["--a", "--b"],
                    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "C", "value": "3"}],
                    "ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}],
                    "volumeMounts": [
                        {"name": "data", "mountPath": "/data"},
                        {"name": "data", "mountPath": "/cache", "subPath": "cache"}
                    ]
                },
                {"name": "sidecar", "image": "envoy:1"}
            ],
            "volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cm"}}]
        }
    })
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "app", "image": "nginx:1",
                        "env": [{"name": "A", "value": "1"}],
                        "ports": [{"containerPort": 80}]
                    }],
                    "volumes": [{"name": "data", "emptyDir": {}}]
                }
            }
        }
    })
}

/// (behaviour, object, patch)
fn cases() -> Vec<(&'static str, Value, Value)> {
    vec![
        (
            "containers merge by name",
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "envoy:2"}]}}),
        ),
        (
            "a new container goes before the containers the patch does not mention",
            pod(),
            json!({"spec": {"containers": [{"name": "new", "image": "x"}]}}),
        ),
        (
            "env entries are deleted with $patch: delete",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "B", "$patch": "delete"}]}]}}),
        ),
        (
            "a null inside an existing env entry deletes the key",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [{"name": "A", "value": null, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}),
        ),
        (
            "volumeMounts merge by mountPath, not by name",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "volumeMounts": [{"name": "data", "mountPath": "/cache", "readOnly": true}]}]}}),
        ),
        (
            "container ports merge by containerPort",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "ports": [{"containerPort": 443, "name": "tls"}, {"containerPort": 8080}]}]}}),
        ),
        (
            "ownerReferences merge by uid",
            pod(),
            json!({"metadata": {"ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "cm", "uid": "u-2", "blockOwnerDeletion": true},
                {"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u-3"}
            ]}}),
        ),
        (
            "ownerReferences are deleted by uid",
            pod(),
            json!({"metadata": {"ownerReferences": [{"uid": "u-1", "$patch": "delete"}]}}),
        ),
        (
            "$setElementOrder reorders containers",
            pod(),
            json!({"spec": {
                "$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}],
                "containers": [{"name": "app", "image": "nginx:2"}]
            }}),
        ),
        (
            "$setElementOrder reorders env and places new entries",
            pod(),
            json!({"spec": {"containers": [{
                "name": "app",
                "$setElementOrder/env": [{"name": "C"}, {"name": "D"}, {"name": "A"}, {"name": "B"}],
                "env": [{"name": "D", "value": "4"}]
            }]}}),
        ),
        (
            "finalizers merge as a set with new values first",
            pod(),
            json!({"metadata": {"finalizers": ["example.com/b", "example.com/c"]}}),
        ),
        (
            "$deleteFromPrimitiveList removes finalizers",
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}),
        ),
        (
            "$setElementOrder orders finalizers",
            pod(),
            json!({"metadata": {
                "$setElementOrder/finalizers": ["example.com/b", "example.com/z", "example.com/a"],
                "finalizers": ["example.com/z"]
            }}),
        ),
        (
            "$retainKeys clears the other keys of a deployment strategy",
            deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": null}}}),
        ),
        (
            "$retainKeys switches a volume source",
            pod(),
            json!({"spec": {"volumes": [{"name": "data", "$retainKeys": ["name", "secret"], "secret": {"secretName": "s"}}]}}),
        ),
        (
            "null deletes labels and annotations",
            pod(),
            json!({"metadata": {"labels": {"tier": null, "new": "y"}, "annotations": null}}),
        ),
        (
            "tolerations have no merge key and are replaced",
            pod(),
            json!({"spec": {"tolerations": [{"key": "c", "operator": "Exists"}]}}),
        ),
        (
            "command and args are replaced",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "args": ["--c"]}], "initContainers": [{"name": "init", "command": ["true"]}]}}),
        ),
        (
            "$patch: replace replaces the containers list",
            pod(),
            json!({"spec": {"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}}),
        ),
        (
            "$patch: replace replaces a map",
            pod(),
            json!({"spec": {"securityContext": {"$patch": "replace", "runAsNonRoot": true}}}),
        ),
        (
            "$patch: delete empties a map",
            pod(),
            json!({"spec": {"securityContext": {"$patch": "delete"}}}),
        ),
        (
            "deleting every container leaves an empty list",
            pod(),
            json!({"spec": {"containers": [{"name": "app", "$patch": "delete"}, {"name": "sidecar", "$patch": "delete"}]}}),
        ),
        (
            "a new list item is stored as sent, nulls and directives included",
            pod(),
            json!({"spec": {"containers": [{"name": "new", "image": "x", "env": [{"name": "Z", "$patch": "delete"}, {"name": "Y", "value": null}]}]}}),
        ),
        (
            "a new field loses its nulls and directive items",
            pod(),
            json!({"spec": {"ephemeralContainers": [{"name": "dbg", "image": "x", "env": [{"name": "Z", "$patch": "delete"}, {"name": "Y", "value": null}]}]}}),
        ),
        (
            "imagePullSecrets merge by name",
            pod(),
            json!({"spec": {"imagePullSecrets": [{"name": "reg2"}]}}),
        ),
        (
            "a deployment's pod template merges containers, env and volumes by name",
            deployment(),
            json!({"spec": {"replicas": 3, "template": {"spec": {
                "containers": [{"name": "app", "image": "nginx:2", "env": [{"name": "B", "value": "2"}], "ports": [{"containerPort": 80, "name": "http"}]}],
                "volumes": [{"name": "extra", "configMap": {"name": "x"}}]
            }}}}),
        ),
        (
            "secret data merges key by key with null deleting",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "YQ==", "b": "Yg=="}}),
            json!({"data": {"a": null, "c": "Yw=="}, "stringData": {"d": "x"}}),
        ),
        (
            "configmap data and labels merge",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"k": "v"}}),
            json!({"metadata": {"labels": {"b": "2"}}, "data": {"k": "w", "l": "x"}}),
        ),
        (
            "serviceaccount secrets merge by name and imagePullSecrets are replaced",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "sa"}, "secrets": [{"name": "t1"}], "imagePullSecrets": [{"name": "r1"}]}),
            json!({"secrets": [{"name": "t2"}], "imagePullSecrets": [{"name": "r2"}]}),
        ),
        (
            "namespace labels merge",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "labels": {"a": "1"}}, "spec": {"finalizers": ["kubernetes"]}}),
            json!({"metadata": {"labels": {"b": "2"}}}),
        ),
        (
            "lease spec merges",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}),
            json!({"spec": {"holderIdentity": "b", "renewTime": "2024-01-01T00:00:00.000000Z"}}),
        ),
        (
            "event count and series merge",
            json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Synced", "count": 1}),
            json!({"count": 2, "lastTimestamp": "2024-01-01T00:00:00Z"}),
        ),
        (
            "$patch: merge on a map is rejected",
            pod(),
            json!({"spec": {"securityContext": {"$patch": "merge", "runAsGroup": 1}}}),
        ),
        (
            "a merge-list item without its merge key is rejected",
            pod(),
            json!({"spec": {"containers": [{"image": "x"}]}}),
        ),
        (
            "a field outside $retainKeys is rejected",
            deployment(),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {"maxSurge": 3}}}}),
        ),
    ]
}

#[test]
fn strategic_merge_patch_matches_kubectl_patch_local() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut failures = Vec::new();
    let mut rejected = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 15);
    for (behaviour, object, patch) in cases {
        let expected = kubectl_patch(dir.path(), &object, &patch);
        let api_version = object["apiVersion"]
            .as_str()
            .expect("apiVersion")
            .to_owned();
        let kind = object["kind"].as_str().expect("kind").to_owned();
        let mut ours = object.clone();
        let result = strategic_merge_patch(&mut ours, &patch, &api_version, &kind);
        match (expected, result) {
            (Ok(want), Ok(())) if want == ours => {}
            (Err(_), Err(PatchError::InvalidStrategicPatch { .. })) => {
                assert_eq!(
                    ours, object,
                    "{behaviour}: a failed patch leaves the object unchanged"
                );
                rejected.push(behaviour);
            }
            (want, got) => failures.push(format!(
                "{behaviour}\n  patch:   {patch}\n  kubectl: {}\n  ours:    {}",
                match want {
                    Ok(v) => v.to_string(),
                    Err(e) => format!("error: {}", e.trim()),
                },
                match got {
                    Ok(()) => ours.to_string(),
                    Err(e) => format!("error: {e}"),
                }
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "differences from kubectl:\n{}",
        failures.join("\n\n")
    );
    assert_eq!(
        rejected,
        [
            "$patch: merge on a map is rejected",
            "a merge-list item without its merge key is rejected",
            "a field outside $retainKeys is rejected",
        ]
    );
}

#[test]
fn custom_resources_are_refused_like_kubectl_refuses_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let patch = json!({"spec": {"size": 2}});
    let kubectl = kubectl_patch(dir.path(), &widget, &patch);
    assert!(
        kubectl.is_err(),
        "kubectl cannot strategic-merge a kind it has no Go type for: {kubectl:?}"
    );
    let mut ours = widget.clone();
    let err = strategic_merge_patch(&mut ours, &patch, "example.com/v1", "Widget")
        .expect_err("unsupported");
    assert!(matches!(err, PatchError::Unsupported { .. }));
    assert_eq!(err.status_code(), 415);
    assert_eq!(ours, widget);
}
