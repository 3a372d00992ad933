use akv_client::secret::SecretValue;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::FieldsV1;
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

fn applied(manager: &str, fields: Value) -> ManagedFieldsEntry {
    ManagedFieldsEntry {
        manager: Some(manager.into()),
        operation: Some("Apply".into()),
        fields_v1: Some(FieldsV1(fields)),
        ..Default::default()
    }
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
        data: [("k".to_owned(), b"v".to_vec())].into(),
        labels: d.labels.clone(),
        annotations: d.annotations.clone(),
        owners: vec![d.owner.clone()],
        managed_fields: vec![applied(m, json!({"f:data": {"f:k": {}}}))],
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
    changed.data.insert("k".into(), b"old".to_vec());
    assert_eq!(
        classify(&d, Some(&changed), "uid-1", "akv2k8s", m),
        Plan::Apply
    );

    let mut stale = ours.clone();
    stale.managed_fields = vec![applied(m, json!({"f:data": {"f:k": {}, "f:old": {}}}))];
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
        .managed_fields
        .push(applied("akv2k8s/other", json!({"f:data": {"f:k": {}}})));
    assert_eq!(
        classify(&d, Some(&contested), "uid-1", "akv2k8s", m),
        Plan::KeyConflict(vec!["k".into()])
    );
    let mut kubectl = ours.clone();
    kubectl
        .managed_fields
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
    mine.managed_fields = vec![applied(
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
        data: [("password".to_owned(), b"hunter2".to_vec())].into(),
        ..Default::default()
    };
    let dbg = format!("{e:?}");
    assert!(dbg.contains("password") && !dbg.contains("hunter2"));
}
