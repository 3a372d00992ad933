use akv_client::secret::SecretValue;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};
use serde_json::json;

use super::*;

fn akvs(spec: Value) -> AzureKeyVaultSecret {
    serde_json::from_value(json!({
        "apiVersion": "spv.no/v2beta1", "kind": "AzureKeyVaultSecret",
        "metadata": {
            "name": "db", "namespace": "shop", "uid": "uid-1",
            "labels": {"team": "a"},
            "annotations": {"note": "n", "kubectl.kubernetes.io/last-applied-configuration": "{}"},
        },
        "spec": spec,
    }))
    .expect("akvs")
}

fn secret_akvs(output: Value) -> AzureKeyVaultSecret {
    akvs(
        json!({"vault": {"name": "kv", "object": {"name": "o", "type": "secret"}}, "output": output}),
    )
}

fn values(pairs: &[(&str, &str)]) -> Values {
    Values(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretValue::from(*v)))
            .collect(),
    )
}

fn desired(a: &AzureKeyVaultSecret, v: Values, existing: Option<&Existing>) -> Desired {
    let (labels, annotations) = propagated(a, existing, "akv2k8s/db");
    Desired {
        output: outputs(&a.spec).remove(0),
        namespace: "shop".into(),
        values: v,
        labels,
        annotations,
        owner: owner_reference(a).expect("uid"),
    }
}

fn applied(manager: &str, fields: Value) -> Applied {
    Applied::from_entry(&ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some("Apply".into()),
        fields_v1: Some(FieldsV1(fields)),
        ..Default::default()
    })
    .expect("an apply entry")
}

#[test]
fn outputs_default_the_secret_type_to_opaque_and_keep_the_raw_type() {
    let table = [
        (
            json!({"secret": {"name": "s", "dataKey": "k"}}),
            Some("Opaque"),
            "",
        ),
        (
            json!({"secret": {"name": "s", "type": "kubernetes.io/tls"}}),
            Some("kubernetes.io/tls"),
            "kubernetes.io/tls",
        ),
    ];
    for (output, ty, raw) in table {
        let o = outputs(&secret_akvs(output).spec);
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].secret_type.as_deref(), ty);
        assert_eq!(o[0].raw_type, raw);
    }
    let both = outputs(
        &secret_akvs(json!({"secret": {"name": "s", "dataKey": "k"}, "configMap": {"name": "c", "dataKey": "d"}}))
            .spec,
    );
    assert_eq!(
        both.iter().map(|o| o.kind).collect::<Vec<_>>(),
        [OutputKind::Secret, OutputKind::ConfigMap]
    );
    assert!(
        outputs(&secret_akvs(json!({})).spec).is_empty(),
        "no output: env injection only"
    );
}

#[test]
fn outputs_without_a_data_key_are_rejected_before_key_vault_is_read() {
    use ObjectType::{Certificate, Key, MultiKeyValueSecret, Secret as Sec};
    let cases: &[(ObjectType, Value, bool)] = &[
        (Sec, json!({"secret": {"name": "s"}}), false),
        (Sec, json!({"secret": {"name": "s", "dataKey": ""}}), false),
        (Sec, json!({"secret": {"name": "s", "dataKey": "k"}}), true),
        (
            Sec,
            json!({"secret": {"name": "s", "type": "kubernetes.io/basic-auth"}}),
            true,
        ),
        (
            Sec,
            json!({"secret": {"name": "s", "type": "kubernetes.io/tls"}}),
            true,
        ),
        (
            Sec,
            json!({"configMap": {"name": "c", "dataKey": ""}}),
            false,
        ),
        (
            Certificate,
            json!({"secret": {"name": "s", "type": "kubernetes.io/tls"}}),
            true,
        ),
        (
            Certificate,
            json!({"secret": {"name": "s", "type": "Opaque"}}),
            false,
        ),
        (Certificate, json!({"secret": {"name": "s"}}), false),
        (
            Certificate,
            json!({"secret": {"name": "s", "type": "kubernetes.io/basic-auth"}}),
            false,
        ),
        (
            Certificate,
            json!({"configMap": {"name": "c", "dataKey": "ca.pem"}}),
            true,
        ),
        (
            Key,
            json!({"secret": {"name": "s", "type": "kubernetes.io/tls"}}),
            false,
        ),
        (MultiKeyValueSecret, json!({"secret": {"name": "s"}}), true),
        (
            MultiKeyValueSecret,
            json!({"configMap": {"name": "c", "dataKey": ""}}),
            true,
        ),
    ];
    for (object_type, output, ok) in cases {
        let a = secret_akvs(output.clone());
        let out = outputs(&a.spec);
        let res = out[0].check(*object_type);
        assert_eq!(res.is_ok(), *ok, "{object_type:?} {output}: {res:?}");
        if let Err(e) = res {
            assert!(matches!(e, akv_client::Error::NoDataKey { .. }), "{e}");
        }
    }
}

#[test]
fn object_spec_rejects_unknown_transforms_and_keeps_content_type() {
    let a = secret_akvs(
        json!({"secret": {"name": "s", "dataKey": "k"}, "transform": ["trim", "nope"]}),
    );
    assert!(object_spec(&a.spec).is_err());
    let m = akvs(
        json!({"vault": {"name": "kv", "object": {"name": "o", "type": "multi-key-value-secret", "contentType": "application/x-yaml"}}}),
    );
    assert_eq!(
        object_spec(&m.spec).expect("spec").content_type.as_deref(),
        Some("application/x-yaml")
    );
}

#[test]
fn apply_body_holds_type_data_labels_and_one_owner_reference() {
    let a = secret_akvs(json!({"secret": {"name": "s", "dataKey": "k"}}));
    let body = apply_body(&desired(&a, values(&[("k", "v")]), None));
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["kind"], "Secret");
    assert_eq!(body["type"], "Opaque");
    assert_eq!(body["data"]["k"], "dg==");
    assert_eq!(body["metadata"]["labels"][MANAGED_LABEL], MANAGED_VALUE);
    assert_eq!(body["metadata"]["labels"]["team"], "a");
    assert_eq!(body["metadata"]["annotations"]["note"], "n");
    assert!(
        body["metadata"]["annotations"]
            .get("kubectl.kubernetes.io/last-applied-configuration")
            .is_none()
    );
    assert_eq!(body["metadata"]["ownerReferences"][0]["uid"], "uid-1");
    assert_eq!(body["metadata"]["ownerReferences"][0]["controller"], false);
    assert_eq!(
        body["metadata"]["ownerReferences"][0]["apiVersion"],
        "spv.no/v2beta1"
    );
}

#[test]
fn config_map_body_puts_binary_values_in_binary_data() {
    let a = secret_akvs(json!({"configMap": {"name": "c", "dataKey": "d"}}));
    let mut v = values(&[("d", "text")]);
    v.0.insert("bin".into(), SecretValue::new(vec![0xff, 0x00]));
    let body = apply_body(&desired(&a, v, None));
    assert_eq!(body["kind"], "ConfigMap");
    assert_eq!(body["data"]["d"], "text");
    assert_eq!(body["binaryData"]["bin"], "/wA=");
    assert!(body.get("type").is_none());
}

#[test]
fn classify_decides_per_ownership_type_and_content() {
    let a = secret_akvs(json!({"secret": {"name": "s", "dataKey": "k"}}));
    let d = desired(&a, values(&[("k", "v")]), None);
    let m = "akv2k8s/db";
    let ours = Existing {
        uid: Some("s-uid".into()),
        secret_type: Some("Opaque".into()),
        data: [("k".to_owned(), existing::digest(b"v"))].into(),
        labels: d.labels.clone().into_iter().collect(),
        annotations: d.annotations.clone().into_iter().collect(),
        owners: vec![Owner::from(&d.owner)],
        applied: vec![applied(m, json!({"f:data": {"f:k": {}}}))],
        ..Default::default()
    };
    assert_eq!(classify(&d, None, "uid-1", "akv2k8s", m), Plan::Apply);
    assert_eq!(
        classify(&d, Some(&ours), "uid-1", "akv2k8s", m),
        Plan::UpToDate
    );

    let foreign = Existing {
        secret_type: Some("Opaque".into()),
        ..Default::default()
    };
    assert_eq!(
        classify(&d, Some(&foreign), "uid-1", "akv2k8s", m),
        Plan::Foreign
    );

    let mut changed = ours.clone();
    changed.data.insert("k".into(), existing::digest(b"old"));
    assert_eq!(
        classify(&d, Some(&changed), "uid-1", "akv2k8s", m),
        Plan::Apply
    );

    let mut stale = ours.clone();
    stale.applied = vec![applied(m, json!({"f:data": {"f:k": {}, "f:old": {}}}))];
    assert_eq!(
        classify(&d, Some(&stale), "uid-1", "akv2k8s", m),
        Plan::Apply,
        "prunes old keys"
    );

    let mut tls = ours.clone();
    tls.secret_type = Some("kubernetes.io/tls".into());
    assert_eq!(
        classify(&d, Some(&tls), "uid-1", "akv2k8s", m),
        Plan::TypeChanged {
            from: "kubernetes.io/tls".into(),
            shared: false
        }
    );

    let mut contested = ours.clone();
    contested
        .applied
        .push(applied("akv2k8s/other", json!({"f:data": {"f:k": {}}})));
    assert_eq!(
        classify(&d, Some(&contested), "uid-1", "akv2k8s", m),
        Plan::KeyConflict(vec!["k".into()])
    );
    let mut kubectl = ours.clone();
    kubectl
        .applied
        .push(applied("kubectl", json!({"f:data": {"f:k": {}}})));
    assert_eq!(
        classify(&d, Some(&kubectl), "uid-1", "akv2k8s", m),
        Plan::UpToDate
    );
}

#[test]
fn propagation_never_clobbers_values_others_set() {
    let a = secret_akvs(json!({"secret": {"name": "s", "dataKey": "k"}}));
    let existing = Existing {
        labels: [("team".to_owned(), "b".to_owned())].into(),
        annotations: [("note".to_owned(), "kubectl".to_owned())].into(),
        ..Default::default()
    };
    let (labels, annotations) = propagated(&a, Some(&existing), "akv2k8s/db");
    assert!(!labels.contains_key("team"));
    assert!(!annotations.contains_key("note"));
    assert_eq!(
        labels.get(MANAGED_LABEL).map(String::as_str),
        Some(MANAGED_VALUE)
    );

    let mut mine = existing.clone();
    mine.applied = vec![applied(
        "akv2k8s/db",
        json!({"f:metadata": {"f:labels": {"f:team": {}}}}),
    )];
    let (labels, _) = propagated(&a, Some(&mine), "akv2k8s/db");
    assert_eq!(
        labels.get("team").map(String::as_str),
        Some("a"),
        "ours to update"
    );
}

#[test]
fn field_manager_is_per_akvs_and_bounded() {
    let a = secret_akvs(json!({}));
    assert_eq!(field_manager("akv2k8s", &a), "akv2k8s/db");
    let mut long = a.clone();
    long.metadata.name = Some("x".repeat(200));
    assert_eq!(field_manager("akv2k8s", &long), "akv2k8s/uid-1");
}

#[test]
fn version_hash_follows_version_ids_not_values() {
    let a = secret_akvs(json!({"secret": {"name": "s", "dataKey": "k"}}));
    let o = outputs(&a.spec).remove(0);
    let h1 = version_hash(&a.spec, "v1", &o, &["k"]);
    assert_eq!(h1, version_hash(&a.spec, "v1", &o, &["k"]));
    assert_ne!(h1, version_hash(&a.spec, "v2", &o, &["k"]));
    assert_eq!(h1.len(), 16);
}

#[test]
fn existing_debug_lists_keys_only() {
    let e = Existing {
        data: [("password".to_owned(), existing::digest(b"hunter2"))].into(),
        ..Default::default()
    };
    let dbg = format!("{e:?}");
    assert!(dbg.contains("password") && !dbg.contains("hunter2"));
}

/// A Secret as the API server returns it after two AKVS applied keys and kubectl edited it.
fn shared_secret() -> Secret {
    serde_json::from_value(json!({
        "metadata": {
            "name": "s", "namespace": "ns",
            "labels": {"spv.no/akv2k8s-managed": "true", "team": "a"},
            "annotations": {"note": "x"},
            "managedFields": [
                {"manager": "akv2k8s/a", "operation": "Apply", "apiVersion": "v1",
                 "time": "2026-12-03T10:00:00Z", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {"f:k1": {}}, "f:type": {},
                    "f:metadata": {"f:labels": {"f:spv.no/akv2k8s-managed": {}, "f:team": {}},
                                   "f:annotations": {"f:note": {}},
                                   "f:ownerReferences": {"k:{\"uid\":\"u1\"}": {}}}}},
                {"manager": "akv2k8s/b", "operation": "Apply", "apiVersion": "v1",
                 "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {"f:k2": {}}, "f:binaryData": {"f:b": {}}}},
                {"manager": "akv2k8s/c", "operation": "Update", "apiVersion": "v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k3": {}}}},
                {"manager": "akv2k8s/d", "operation": "Apply", "apiVersion": "v1",
                 "subresource": "status", "fieldsType": "FieldsV1",
                 "fieldsV1": {"f:data": {"f:k5": {}}}},
                {"manager": "other/a", "operation": "Apply", "apiVersion": "v1",
                 "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:k4": {}}}}
            ]
        },
        "type": "Opaque",
        "data": {"k1": "djE=", "k2": "djI=", "k3": "djM=", "k4": "djQ="}
    }))
    .expect("secret")
}

#[test]
fn existing_keeps_apply_ownership_and_value_digests_only() {
    let e = Existing::from_secret(&shared_secret());
    let set = |v: &[&str]| {
        v.iter()
            .map(|s| (*s).to_owned())
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert_eq!(e.owned("akv2k8s/a", "data"), set(&["k1"]));
    assert_eq!(
        e.owned("akv2k8s/a", "labels"),
        set(&["spv.no/akv2k8s-managed", "team"])
    );
    assert_eq!(e.owned("akv2k8s/a", "annotations"), set(&["note"]));
    assert_eq!(e.owned("akv2k8s/b", "data"), set(&["b", "k2"]));
    assert_eq!(e.owned("akv2k8s/b", "binaryData"), set(&["b", "k2"]));
    assert!(
        e.owned("akv2k8s/c", "data").is_empty(),
        "updates own nothing we track"
    );
    assert!(
        e.owned("akv2k8s/d", "data").is_empty(),
        "subresources are not outputs"
    );
    assert_eq!(
        e.conflicting_keys("akv2k8s", "akv2k8s/a", &["k1", "k2", "k3", "k4", "b"]),
        ["k2", "b"],
        "only other AKVS appliers conflict"
    );
    assert!(e.holds("k1", b"v1") && !e.holds("k1", b"v2") && !e.holds("zz", b"v1"));
    assert_eq!(e.secret_type.as_deref(), Some("Opaque"));
    assert!(e.is_ours("anything"), "managed label");
    let dbg = format!("{e:?}");
    assert!(dbg.contains("k1") && !dbg.contains("v1\"") && !dbg.contains("djE="));
}

#[test]
fn small_maps_are_sorted_and_later_entries_win() {
    let m: SmallMap<u8> = [
        ("b".to_owned(), 1),
        ("a".to_owned(), 2),
        ("b".to_owned(), 3),
    ]
    .into();
    assert_eq!(m.iter().collect::<Vec<_>>(), [("a", &2), ("b", &3)]);
    let mut m = m;
    m.insert("c".into(), 4);
    m.insert("a".into(), 5);
    assert_eq!(m.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(m.get("a"), Some(&5));
    assert!(!m.contains_key("z"));
    assert_eq!(m.len(), 3);
}
