use serde_json::json;

use super::*;

fn walker(api_version: &str, kind: &str) -> Walker {
    Walker {
        schema: Kind::of(api_version, kind),
    }
}

#[test]
fn fields_v1_round_trips_members_with_and_without_children() {
    let v1 = json!({
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}}}}
    });
    assert_eq!(Fields::from_v1(&v1).to_v1(), v1);
}

#[test]
fn applied_fields_are_leaves_list_items_and_set_values_without_server_fields() {
    let config = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app": "x"}, "finalizers": ["a"]},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80, "protocol": "TCP"}]}],
                 "tolerations": [{"key": "k"}]}
    });
    let fields = walker("v1", "Pod").fields_of(&config);
    assert_eq!(
        fields.to_v1(),
        json!({
            "f:metadata": {"f:labels": {"f:app": {}}, "f:finalizers": {"v:\"a\"": {}}},
            "f:spec": {
                "f:containers": {"k:{\"name\":\"c\"}": {
                    ".": {}, "f:name": {}, "f:image": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}
                }},
                "f:tolerations": {}
            }
        })
    );
}

#[test]
fn display_path_prints_fields_keys_and_values_like_the_real_server() {
    let path = |s: &[&str]| s.iter().map(|p| (*p).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        display_path(&path(&["f:data", "f:password"])),
        ".data.password"
    );
    assert_eq!(
        display_path(&path(&[
            "f:spec",
            "f:containers",
            "k:{\"name\":\"app\"}",
            "f:image"
        ])),
        ".spec.containers[name=\"app\"].image"
    );
    assert_eq!(
        display_path(&path(&["f:metadata", "f:finalizers", "v:\"a\""])),
        ".metadata.finalizers[=\"a\"]"
    );
}

#[test]
fn comparison_separates_added_removed_and_modified_fields() {
    let w = walker("v1", "ConfigMap");
    let cmp = w.compare(
        &json!({"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}),
        &json!({"metadata": {"name": "c", "labels": {"x": "y"}}, "data": {"a": "9", "c": "3"}}),
    );
    assert_eq!(
        cmp.added.to_v1(),
        json!({"f:metadata": {"f:labels": {".": {}, "f:x": {}}}, "f:data": {"f:c": {}}})
    );
    assert_eq!(cmp.removed.to_v1(), json!({"f:data": {"f:b": {}}}));
    assert_eq!(cmp.modified.to_v1(), json!({"f:data": {"f:a": {}}}));
}

#[test]
fn merge_keeps_live_only_items_in_place_and_orders_shared_items_by_the_config() {
    let w = walker("v1", "Pod");
    let live = json!({"spec": {"containers": [{"name": "a", "image": "1"}, {"name": "x", "image": "2"}, {"name": "b", "image": "3"}]}});
    let config = json!({"spec": {"containers": [{"name": "b", "image": "4"}, {"name": "a"}, {"name": "n"}]}});
    let merged = w.merge(Some(&live), &config);
    assert_eq!(
        merged["spec"]["containers"],
        json!([{"name": "x", "image": "2"}, {"name": "b", "image": "4"}, {"name": "a", "image": "1"}, {"name": "n"}])
    );
}

#[test]
fn remove_drops_members_and_the_maps_they_leave_empty() {
    let w = walker("v1", "Secret");
    let mut obj = json!({"metadata": {"labels": {"a": "1"}, "finalizers": ["f", "g"]}, "data": {"k": "dg==", "l": "dg=="}});
    let fields = Fields::from_v1(
        &json!({"f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"f\"": {}}}, "f:data": {"f:k": {}}}),
    );
    w.remove(&mut obj, &fields);
    assert_eq!(
        obj,
        json!({"metadata": {"finalizers": ["g"]}, "data": {"l": "dg=="}})
    );
}
