use serde_json::json;

use super::*;

fn patched(object: Value, patch: Value) -> Result<Value> {
    let mut object = object;
    let api_version = object["apiVersion"].as_str().unwrap_or_default().to_owned();
    let kind = object["kind"].as_str().unwrap_or_default().to_owned();
    strategic_merge_patch(&mut object, &patch, &api_version, &kind).map(|()| object)
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "finalizers": ["a", "b"]}, "spec": spec})
}

#[test]
fn merge_lists_follow_the_real_ordering_rules() {
    // (patch, expected spec.containers names or finalizers) — outputs recorded from kubectl 1.32.
    let containers = json!([{"name": "c1", "image": "i"}, {"name": "c2", "image": "j"}]);
    let cases = [
        (
            json!({"spec": {"containers": [{"name": "c0", "image": "x"}]}}),
            json!(["c0", "c1", "c2"]),
        ),
        (
            json!({"spec": {"containers": [{"name": "c2", "image": "y"}]}}),
            json!(["c1", "c2"]),
        ),
        (
            json!({"spec": {"$setElementOrder/containers": [{"name": "c2"}, {"name": "c1"}], "containers": [{"name": "c1", "image": "z"}]}}),
            json!(["c2", "c1"]),
        ),
        (
            json!({"spec": {"containers": [{"name": "c1", "$patch": "delete"}]}}),
            json!(["c2"]),
        ),
    ];
    for (patch, want) in cases {
        let got =
            patched(pod(json!({"containers": containers})), patch.clone()).expect("patch applies");
        let names: Vec<Value> = got["spec"]["containers"]
            .as_array()
            .expect("list")
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(Value::Array(names), want, "patch {patch}");
    }
}

#[test]
fn finalizers_merge_as_a_set_and_honour_delete_and_order_directives() {
    let cases = [
        (
            json!({"metadata": {"finalizers": ["c"]}}),
            json!(["c", "a", "b"]),
        ),
        (
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            json!(["a", "b", "c"]),
        ),
        (
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
            json!(["b"]),
        ),
        (
            json!({"metadata": {"$setElementOrder/finalizers": ["b", "a"]}}),
            json!(["b", "a"]),
        ),
    ];
    for (patch, want) in cases {
        let got = patched(pod(json!({})), patch.clone()).expect("patch applies");
        assert_eq!(got["metadata"]["finalizers"], want, "patch {patch}");
    }
}

#[test]
fn env_entries_merge_by_name_and_nulls_delete_keys() {
    let got = patched(
        pod(json!({"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}]})),
        json!({"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}, {"name": "B", "value": null}, {"name": "C", "value": "3"}]}]}}),
    )
    .expect("patch applies");
    assert_eq!(
        got["spec"]["containers"][0]["env"],
        json!([{"name": "B"}, {"name": "C", "value": "3"}])
    );
}

#[test]
fn volume_mounts_merge_by_mount_path() {
    let got = patched(
        pod(json!({"containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/a"}, {"name": "v", "mountPath": "/b"}]}]})),
        json!({"spec": {"containers": [{"name": "c", "volumeMounts": [{"name": "v", "mountPath": "/b", "readOnly": true}]}]}}),
    )
    .expect("patch applies");
    assert_eq!(
        got["spec"]["containers"][0]["volumeMounts"],
        json!([{"name": "v", "mountPath": "/a"}, {"name": "v", "mountPath": "/b", "readOnly": true}])
    );
}

#[test]
fn retain_keys_clears_keys_the_directive_does_not_list() {
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}});
    let got = patched(
        deployment.clone(),
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
    )
    .expect("patch applies");
    assert_eq!(got["spec"]["strategy"], json!({"type": "Recreate"}));
    let err = patched(
        deployment,
        json!({"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": {}}}}),
    )
    .expect_err("rollingUpdate is not retained");
    assert_eq!(err.kind(), "invalid_strategic_patch");
}

#[test]
fn lists_without_a_merge_key_are_replaced() {
    let got = patched(
        pod(json!({"tolerations": [{"key": "a"}], "containers": [{"name": "c", "args": ["x", "y"]}]})),
        json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["z"]}]}}),
    )
    .expect("patch applies");
    assert_eq!(got["spec"]["tolerations"], json!([{"key": "b"}]));
    assert_eq!(got["spec"]["containers"][0]["args"], json!(["z"]));
}

#[test]
fn malformed_patches_fail_and_leave_the_target_unchanged() {
    let original = pod(json!({"containers": [{"name": "c"}], "securityContext": {"runAsUser": 1}}));
    for patch in [
        json!({"spec": {"containers": [{"image": "no-name"}]}}),
        json!({"spec": {"securityContext": {"$patch": "merge"}}}),
        json!({"spec": {"containers": [{"name": "c", "$patch": "merge"}]}}),
        json!(["not", "an", "object"]),
    ] {
        let mut target = original.clone();
        let err = strategic_merge_patch(&mut target, &patch, "v1", "Pod").expect_err("malformed");
        assert_eq!(err.status_code(), 422, "patch {patch}");
        assert_eq!(target, original, "patch {patch}");
    }
}

#[test]
fn custom_resources_are_unsupported_media() {
    let mut target = json!({"spec": {"a": 1}});
    let err = strategic_merge_patch(
        &mut target,
        &json!({"spec": {"a": 2}}),
        "example.com/v1",
        "Widget",
    )
    .expect_err("no Go type");
    assert!(matches!(err, PatchError::Unsupported { .. }));
    assert_eq!(err.status_code(), 415);
    assert_eq!(target, json!({"spec": {"a": 1}}));
}
