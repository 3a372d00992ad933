use serde_json::json;

use super::*;

const T0: &str = "2024-01-01T00:00:00Z";
const T1: &str = "2024-01-01T00:01:00Z";

fn secret(data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}, "data": data})
}

fn entries(obj: &Value) -> Vec<(String, String, Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_owned(),
                        e["operation"].as_str().unwrap_or_default().to_owned(),
                        e["fieldsV1"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn conflicts(err: ApplyError) -> Vec<(String, String)> {
    match err {
        ApplyError::Conflict(c) => c.into_iter().map(|c| (c.manager, c.field)).collect(),
        other => panic!("expected a conflict, got {other}"),
    }
}

#[test]
fn apply_creates_the_object_and_an_apply_entry_in_fields_v1() {
    let obj = apply(
        None,
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"app": "x"}}, "data": {"key": "dg=="}}),
        "mgr",
        false,
        T0,
    )
    .expect("applies");
    assert_eq!(obj["data"], json!({"key": "dg=="}));
    assert_eq!(
        obj["metadata"]["managedFields"],
        json!([{
            "manager": "mgr", "operation": "Apply", "apiVersion": "v1", "time": T0, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
        }])
    );
}

#[test]
fn applying_another_managers_field_with_a_different_value_conflicts_and_changes_nothing() {
    let live = apply(
        None,
        &secret(json!({"password": "YQ=="})),
        "owner",
        false,
        T0,
    )
    .expect("applies");
    let err = apply(
        Some(&live),
        &secret(json!({"password": "Yg=="})),
        "other",
        false,
        T1,
    )
    .expect_err("conflict");
    assert_eq!(err.status_code(), 409);
    let status = conflict_status(&err);
    assert_eq!(
        status,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Apply failed with 1 conflict: conflict with \"owner\": .data.password",
            "reason": "Conflict",
            "details": {"causes": [{"reason": "FieldManagerConflict", "message": "conflict with \"owner\"", "field": ".data.password"}]},
            "code": 409
        })
    );
}

#[test]
fn force_moves_ownership_to_the_applier() {
    let live = apply(
        None,
        &secret(json!({"password": "YQ==", "user": "dQ=="})),
        "owner",
        false,
        T0,
    )
    .expect("applies");
    let obj = apply(
        Some(&live),
        &secret(json!({"password": "Yg=="})),
        "other",
        true,
        T1,
    )
    .expect("forced");
    assert_eq!(obj["data"], json!({"password": "Yg==", "user": "dQ=="}));
    assert_eq!(
        entries(&obj),
        [
            (
                "owner".into(),
                "Apply".into(),
                json!({"f:data": {"f:user": {}}})
            ),
            (
                "other".into(),
                "Apply".into(),
                json!({"f:data": {"f:password": {}}})
            ),
        ]
    );
}

#[test]
fn applying_the_same_value_shares_ownership() {
    let live = apply(
        None,
        &secret(json!({"password": "YQ=="})),
        "owner",
        false,
        T0,
    )
    .expect("applies");
    let obj = apply(
        Some(&live),
        &secret(json!({"password": "YQ=="})),
        "other",
        false,
        T1,
    )
    .expect("no conflict");
    let owners: Vec<String> = entries(&obj).into_iter().map(|(m, _, _)| m).collect();
    // Sorted as the real server sorts them: operation, then time.
    assert_eq!(owners, ["owner", "other"]);
    // Once shared, the first owner's omission only releases the field.
    let obj = apply(Some(&obj), &secret(json!({})), "owner", false, T1).expect("applies");
    assert_eq!(obj["data"], json!({"password": "YQ=="}));
    assert_eq!(
        entries(&obj),
        [(
            "other".into(),
            "Apply".into(),
            json!({"f:data": {"f:password": {}}})
        )]
    );
}

#[test]
fn a_field_the_applier_stops_applying_is_removed_when_nobody_else_owns_it() {
    let live = apply(
        None,
        &secret(json!({"a": "YQ==", "b": "Yg=="})),
        "mgr",
        false,
        T0,
    )
    .expect("applies");
    let obj = apply(Some(&live), &secret(json!({"a": "YQ=="})), "mgr", false, T1).expect("applies");
    assert_eq!(obj["data"], json!({"a": "YQ=="}));
}

#[test]
fn fields_set_by_an_update_conflict_with_a_later_apply() {
    let mut created = secret(json!({"password": "YQ=="}));
    record_update(None, &mut created, "kubectl-client-side-apply", T0);
    assert_eq!(
        entries(&created),
        [(
            "kubectl-client-side-apply".into(),
            "Update".into(),
            json!({"f:data": {".": {}, "f:password": {}}})
        )]
    );
    let err = apply(
        Some(&created),
        &secret(json!({"password": "Yg=="})),
        "kubectl",
        false,
        T1,
    )
    .expect_err("conflict");
    assert_eq!(
        conflict_status(&err)["message"],
        "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .data.password"
    );
    assert_eq!(
        conflict_status(&err)["details"]["causes"][0]["message"],
        "conflict with \"kubectl-client-side-apply\" using v1"
    );
}

#[test]
fn an_update_takes_the_fields_it_changes_from_their_previous_owners() {
    let live = apply(
        None,
        &secret(json!({"a": "YQ==", "b": "Yg=="})),
        "applier",
        false,
        T0,
    )
    .expect("applies");
    let mut new = live.clone();
    new["data"]["a"] = json!("eA==");
    new["data"]["c"] = json!("Yw==");
    record_update(Some(&live), &mut new, "controller", T1);
    assert_eq!(
        entries(&new),
        [
            (
                "applier".into(),
                "Apply".into(),
                json!({"f:data": {"f:b": {}}})
            ),
            (
                "controller".into(),
                "Update".into(),
                json!({"f:data": {"f:a": {}, "f:c": {}}})
            ),
        ]
    );
    // An update that removes the applier's last field drops its entry.
    let mut newer = new.clone();
    newer["data"].as_object_mut().expect("map").remove("b");
    record_update(Some(&new), &mut newer, "controller", T1);
    assert_eq!(
        entries(&newer),
        [(
            "controller".into(),
            "Update".into(),
            json!({"f:data": {"f:a": {}, "f:c": {}}})
        )]
    );
}

#[test]
fn an_update_that_changes_nothing_leaves_managed_fields_alone() {
    let mut live = secret(json!({"a": "YQ=="}));
    record_update(None, &mut live, "creator", T0);
    let mut same = live.clone();
    record_update(Some(&live), &mut same, "someone-else", T1);
    assert_eq!(same, live);
}

#[test]
fn sending_a_single_empty_entry_resets_managed_fields() {
    let mut live = secret(json!({"a": "YQ=="}));
    record_update(None, &mut live, "creator", T0);
    let mut new = live.clone();
    new["metadata"]["managedFields"] = json!([{}]);
    record_update(Some(&live), &mut new, "creator", T1);
    assert_eq!(new["metadata"].get("managedFields"), None);
}

#[test]
fn owner_references_are_owned_by_uid_and_finalizers_by_value() {
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "c",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u-1"}],
        "finalizers": ["example.com/f"]
    }});
    let live = apply(None, &config, "ctl", false, T0).expect("applies");
    assert_eq!(
        entries(&live)[0].2,
        json!({"f:metadata": {
            "f:ownerReferences": {"k:{\"uid\":\"u-1\"}": {".": {}, "f:apiVersion": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}},
            "f:finalizers": {"v:\"example.com/f\"": {}}
        }})
    );
    // Another manager adds its own owner reference and finalizer without conflict; both stay.
    let other = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "c",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "t", "uid": "u-2"}],
        "finalizers": ["example.com/g"]
    }});
    let obj = apply(Some(&live), &other, "other", false, T1).expect("no conflict");
    let uids: Vec<&Value> = obj["metadata"]["ownerReferences"]
        .as_array()
        .expect("list")
        .iter()
        .map(|o| &o["uid"])
        .collect();
    assert_eq!(uids, [&json!("u-1"), &json!("u-2")]);
    assert_eq!(
        obj["metadata"]["finalizers"],
        json!(["example.com/f", "example.com/g"])
    );
    // The first manager drops its finalizer: only its own goes.
    let obj = apply(
        Some(&obj),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c",
        "ownerReferences": [{"apiVersion": "v1", "kind": "Secret", "name": "s", "uid": "u-1"}]}}),
        "ctl",
        false,
        T1,
    )
    .expect("applies");
    assert_eq!(obj["metadata"]["finalizers"], json!(["example.com/g"]));
}

#[test]
fn custom_resources_own_nested_map_fields_one_by_one_and_lists_whole() {
    let widget = |size: i64, zones: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
               "spec": {"size": size, "placement": {"zones": zones}}})
    };
    let live = apply(None, &widget(1, json!(["a"])), "a", false, T0).expect("applies");
    assert_eq!(
        entries(&live)[0].2,
        json!({"f:spec": {"f:size": {}, "f:placement": {"f:zones": {}}}})
    );
    let err = apply(Some(&live), &widget(1, json!(["a", "b"])), "b", false, T1)
        .expect_err("list is atomic");
    assert_eq!(
        conflicts(err),
        [("a".to_owned(), ".spec.placement.zones".to_owned())]
    );
}

#[test]
fn conflicts_with_several_managers_are_grouped_by_manager() {
    let mut live = secret(json!({"a": "YQ==", "b": "Yg==", "c": "Yw=="}));
    record_update(None, &mut live, "zeta", T0);
    let live = apply(
        Some(&live),
        &secret(json!({"a": "YQ=="})),
        "alpha",
        false,
        T0,
    )
    .expect("shares a");
    let err = apply(
        Some(&live),
        &secret(json!({"a": "MQ==", "b": "Mg==", "c": "Mw=="})),
        "omega",
        false,
        T1,
    )
    .expect_err("conflicts");
    let status = conflict_status(&err);
    assert_eq!(
        status["message"],
        "Apply failed with 4 conflicts: conflicts with \"alpha\":\n- .data.a\nconflicts with \"zeta\" using v1:\n- .data.a\n- .data.b\n- .data.c"
    );
    assert_eq!(
        status["details"]["causes"].as_array().map(Vec::len),
        Some(4)
    );
}

#[test]
fn the_first_apply_to_an_unmanaged_object_conflicts_with_before_first_apply() {
    let live = secret(json!({"a": "YQ=="}));
    let err =
        apply(Some(&live), &secret(json!({"a": "Yg=="})), "mgr", false, T0).expect_err("conflict");
    assert_eq!(
        conflicts(err),
        [("before-first-apply".to_owned(), ".data.a".to_owned())]
    );
}

#[test]
fn keyed_list_items_merge_into_the_live_object_and_conflict_per_field() {
    let pod = |image: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"containers": [{"name": "app", "image": image}]}})
    };
    let live = apply(None, &pod("nginx:1"), "a", false, T0).expect("applies");
    let mut with_sidecar = live.clone();
    with_sidecar["spec"]["containers"]
        .as_array_mut()
        .expect("list")
        .push(json!({"name": "sidecar", "image": "envoy"}));
    record_update(Some(&live), &mut with_sidecar, "injector", T0);
    let err = apply(Some(&with_sidecar), &pod("nginx:2"), "b", false, T1).expect_err("conflict");
    assert_eq!(
        conflicts(err),
        [(
            "a".to_owned(),
            ".spec.containers[name=\"app\"].image".to_owned()
        )]
    );
    let obj = apply(Some(&with_sidecar), &pod("nginx:2"), "a", false, T1).expect("own field");
    assert_eq!(
        obj["spec"]["containers"],
        json!([{"name": "app", "image": "nginx:2"}, {"name": "sidecar", "image": "envoy"}])
    );
}

#[test]
fn invalid_apply_configurations_are_bad_requests() {
    for config in [
        json!([]),
        json!({"kind": "Secret"}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"managedFields": [{"manager": "x"}]}}),
    ] {
        let err = apply(None, &config, "m", false, T0).expect_err("invalid");
        assert_eq!(err.status_code(), 400);
        assert_eq!(conflict_status(&err)["reason"], "BadRequest");
    }
}
