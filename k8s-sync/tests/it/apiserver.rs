//! The CRD installed into testkit's fake API server and driven by kube's client: all four
//! versions served, upstream's manifests accepted unchanged, pruning across versions, 422s
//! where upstream's schema says so, and the status subresource.

use k8s_openapi::api::core::v1::Namespace;
use k8s_sync::crd::{ObjectType, READY, ReadyReason, v1, v1alpha1, v2alpha1, v2beta1};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt as _};
use serde_json::{Value, json};

use crate::support::{akvs_resource, api_status, cluster_with_crd, upstream_akvs, upstream_docs};

fn dynamic(client: &Client, version: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), "default", &akvs_resource(version))
}

fn object(version: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": format!("spv.no/{version}"), "kind": "AzureKeyVaultSecret",
        "metadata": {"name": name}, "spec": spec,
    }))
    .expect("object")
}

fn spec<T: serde::de::DeserializeOwned>(object: &str) -> T {
    serde_json::from_value(secret_spec(object)).expect("spec")
}

fn secret_spec(object: &str) -> Value {
    json!({"vault": {"name": "kv", "object": {"name": object, "type": "secret"}}})
}

#[tokio::test]
async fn all_four_versions_are_served_and_every_object_reads_at_every_version() {
    let (_api, client) = cluster_with_crd().await;
    let pp = PostParams::default();
    Api::<v1alpha1::AzureKeyVaultSecret>::default_namespaced(client.clone())
        .create(&pp, &v1alpha1::AzureKeyVaultSecret::new("a", spec("a")))
        .await
        .expect("create at v1alpha1");
    Api::<v1::AzureKeyVaultSecret>::default_namespaced(client.clone())
        .create(&pp, &v1::AzureKeyVaultSecret::new("b", spec("b")))
        .await
        .expect("create at v1");
    Api::<v2alpha1::AzureKeyVaultSecret>::default_namespaced(client.clone())
        .create(&pp, &v2alpha1::AzureKeyVaultSecret::new("c", spec("c")))
        .await
        .expect("create at v2alpha1");
    Api::<v2beta1::AzureKeyVaultSecret>::default_namespaced(client.clone())
        .create(&pp, &v2beta1::AzureKeyVaultSecret::new("d", spec("d")))
        .await
        .expect("create at v2beta1");

    for version in k8s_sync::crd::VERSIONS {
        let list = dynamic(&client, version)
            .list(&Default::default())
            .await
            .unwrap_or_else(|e| panic!("list at {version}: {e}"));
        let mut names: Vec<String> = list.items.iter().map(|o| o.name_any()).collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c", "d"], "{version}");
        for o in &list.items {
            assert_eq!(
                o.types.as_ref().map(|t| t.api_version.as_str()),
                Some(format!("spv.no/{version}").as_str())
            );
            assert_eq!(o.data["spec"], secret_spec(&o.name_any()), "{version}");
        }
    }
    let stored = Api::<v2beta1::AzureKeyVaultSecret>::default_namespaced(client)
        .get("a")
        .await
        .expect("get at v2beta1");
    assert_eq!(stored.spec.vault.object.type_, ObjectType::Secret);
}

#[tokio::test]
async fn upstream_manifests_apply_unchanged_and_read_back_at_v2beta1() {
    let (_api, client) = cluster_with_crd().await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    for doc in upstream_docs()
        .iter()
        .filter(|d| d.value["kind"] == "Namespace")
    {
        let ns: Namespace = serde_json::from_value(doc.value.clone()).expect("namespace");
        namespaces
            .patch(
                &ns.name_any(),
                &PatchParams::apply("upstream-manifests"),
                &Patch::Apply(&ns),
            )
            .await
            .expect("apply namespace");
    }
    let docs = upstream_akvs();
    assert_eq!(docs.len(), 8);
    for doc in &docs {
        let api_version = doc.value["apiVersion"].as_str().expect("apiVersion");
        let version = api_version.trim_start_matches("spv.no/");
        let ns = doc.value["metadata"]["namespace"].as_str().expect("ns");
        let name = doc.value["metadata"]["name"].as_str().expect("name");
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &akvs_resource(version));
        let applied = api
            .patch(
                name,
                &PatchParams::apply("upstream-manifests"),
                &Patch::Apply(&doc.value),
            )
            .await
            .unwrap_or_else(|e| panic!("{} ({name}) rejected: {e}", doc.file));
        assert_eq!(applied.data["spec"], doc.value["spec"], "{name}");

        let stored = Api::<v2beta1::AzureKeyVaultSecret>::namespaced(client.clone(), ns)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name} at v2beta1: {e}"));
        assert_eq!(
            serde_json::to_value(&stored.spec).expect("json"),
            doc.value["spec"],
            "{name}: the storage version holds the manifest's spec unchanged"
        );
    }
    // Re-applying the same manifests changes nothing.
    for doc in &docs {
        let version = doc.value["apiVersion"]
            .as_str()
            .expect("apiVersion")
            .trim_start_matches("spv.no/");
        let ns = doc.value["metadata"]["namespace"].as_str().expect("ns");
        let name = doc.value["metadata"]["name"].as_str().expect("name");
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &akvs_resource(version));
        let before = api.get(name).await.expect("get");
        let after = api
            .patch(
                name,
                &PatchParams::apply("upstream-manifests"),
                &Patch::Apply(&doc.value),
            )
            .await
            .expect("re-apply");
        assert_eq!(
            after.resource_version(),
            before.resource_version(),
            "{name}"
        );
        assert_eq!(after.metadata.generation, Some(1), "{name}");
    }
}

#[tokio::test]
async fn fields_a_version_lacks_are_pruned_so_v1alpha1_transforms_are_lost_as_upstream() {
    let (_api, client) = cluster_with_crd().await;
    let pp = PostParams::default();

    let created = dynamic(&client, "v1alpha1")
        .create(
            &pp,
            &object(
                "v1alpha1",
                "old",
                json!({"vault": {"name": "kv", "object": {"name": "s", "type": "secret"}},
                       "output": {"secret": {"name": "out", "dataKey": "k", "chainOrder": "ensureserverfirst"},
                                  "transforms": ["trim"]}}),
            ),
        )
        .await
        .expect("create at v1alpha1");
    assert_eq!(
        created.data["spec"]["output"]["secret"],
        json!({"name": "out", "dataKey": "k"}),
        "v1alpha1 has no chainOrder"
    );
    // `transforms` is not in the storage schema: the controller's view (v2beta1) and every later
    // version lack it. (A real API server also drops it from storage, so even v1alpha1 reads
    // lose it; testkit's fake keeps it in storage and prunes per version on read.)
    for v in ["v1", "v2alpha1", "v2beta1"] {
        let got = dynamic(&client, v).get("old").await.expect("get");
        assert_eq!(
            got.data["spec"]["output"],
            json!({"secret": {"name": "out", "dataKey": "k"}}),
            "{v}"
        );
    }
    let stored = Api::<v2beta1::AzureKeyVaultSecret>::default_namespaced(client.clone())
        .get("old")
        .await
        .expect("get");
    assert!(stored.spec.transforms().is_empty());
    assert_eq!(
        stored.spec.secret_output().map(|s| s.chain_order),
        Some(None)
    );

    let full = json!({
        "vault": {"name": "kv", "azureIdentity": {"name": "id"},
                  "object": {"name": "c", "type": "certificate", "version": "abc"}},
        "output": {"secret": {"name": "tls", "type": "kubernetes.io/tls", "chainOrder": "ensureserverfirst"},
                   "configMap": {"name": "cm", "dataKey": "ca.crt"},
                   "transform": ["trim"]}});
    dynamic(&client, "v2beta1")
        .create(&pp, &object("v2beta1", "new", full.clone()))
        .await
        .expect("create at v2beta1");
    let at = |v: &'static str| {
        let api = dynamic(&client, v);
        async move { api.get("new").await.expect("get").data["spec"].clone() }
    };
    assert_eq!(at("v2beta1").await, full);
    assert_eq!(at("v2alpha1").await, full);
    assert_eq!(
        at("v1").await,
        json!({"vault": {"name": "kv", "object": {"name": "c", "type": "certificate", "version": "abc"}},
               "output": {"secret": {"name": "tls", "type": "kubernetes.io/tls", "chainOrder": "ensureserverfirst"},
                          "transform": ["trim"]}}),
        "v1 has no configMap and no azureIdentity"
    );
    assert_eq!(
        at("v1alpha1").await,
        json!({"vault": {"name": "kv", "object": {"name": "c", "type": "certificate", "version": "abc"}},
               "output": {"secret": {"name": "tls", "type": "kubernetes.io/tls"}}}),
        "v1alpha1 spells the list `transforms` and has no chainOrder"
    );

    // Written at v1, a configMap output is dropped.
    let created = dynamic(&client, "v1")
        .create(
            &pp,
            &object(
                "v1",
                "mid",
                json!({"vault": {"name": "kv", "object": {"name": "s", "type": "secret"}},
                       "output": {"configMap": {"name": "cm", "dataKey": "k"}}}),
            ),
        )
        .await
        .expect("create at v1");
    assert_eq!(created.data["spec"]["output"], json!({}));
}

#[tokio::test]
async fn invalid_objects_get_422_where_upstreams_schema_says_so() {
    let (_api, client) = cluster_with_crd().await;
    let vault = |object: Value| json!({"name": "kv", "object": object});
    let ok_object = json!({"name": "s", "type": "secret"});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("v2beta1", json!({}), "spec.vault"),
        ("v1alpha1", json!({}), "spec.vault"),
        (
            "v2beta1",
            json!({"vault": {"object": ok_object}}),
            "spec.vault.name",
        ),
        ("v1", json!({"vault": {"name": "kv"}}), "spec.vault.object"),
        (
            "v2beta1",
            json!({"vault": vault(json!({"type": "secret"}))}),
            "spec.vault.object.name",
        ),
        (
            "v2alpha1",
            json!({"vault": vault(json!({"name": "s"}))}),
            "spec.vault.object.type",
        ),
        (
            "v2beta1",
            json!({"vault": vault(json!({"name": "s", "type": "password"}))}),
            "spec.vault.object.type",
        ),
        (
            "v1alpha1",
            json!({"vault": vault(json!({"name": "s", "type": "password"}))}),
            "spec.vault.object.type",
        ),
        (
            "v1",
            json!({"vault": vault(json!({"name": "s", "type": "multi-key-value-secret", "contentType": "text/plain"}))}),
            "spec.vault.object.contentType",
        ),
        (
            "v2beta1",
            json!({"vault": vault(ok_object.clone()), "output": {"secret": {"dataKey": "k"}}}),
            "spec.output.secret.name",
        ),
        (
            "v1alpha1",
            json!({"vault": vault(ok_object.clone()), "output": {"secret": {"dataKey": "k"}}}),
            "spec.output.secret.name",
        ),
        (
            "v1",
            json!({"vault": vault(ok_object.clone()), "output": {"secret": {"name": "o", "chainOrder": "leaffirst"}}}),
            "spec.output.secret.chainOrder",
        ),
        (
            "v2beta1",
            json!({"vault": vault(ok_object.clone()), "output": {"configMap": {"name": "cm"}}}),
            "spec.output.configMap.dataKey",
        ),
        (
            "v2alpha1",
            json!({"vault": vault(ok_object.clone()), "output": {"configMap": {"dataKey": "k"}}}),
            "spec.output.configMap.name",
        ),
        (
            "v2beta1",
            json!({"vault": {"name": "kv", "object": ok_object.clone(), "azureIdentity": {}}}),
            "spec.vault.azureIdentity.name",
        ),
        (
            "v2beta1",
            json!({"vault": vault(ok_object.clone()), "output": {"transform": "trim"}}),
            "spec.output.transform",
        ),
    ];
    for (i, (version, spec, field)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        let err = dynamic(&client, version)
            .create(
                &PostParams::default(),
                &object(version, &name, spec.clone()),
            )
            .await
            .expect_err(&format!("{version} {spec} must be rejected"));
        let (code, reason, status) = api_status(err);
        assert_eq!(
            (code, reason.as_str()),
            (422, "Invalid"),
            "{version} {spec}"
        );
        let fields: Vec<&str> = status["details"]["causes"]
            .as_array()
            .expect("causes")
            .iter()
            .filter_map(|c| c["field"].as_str())
            .collect();
        assert!(
            fields.contains(&field),
            "{version} {spec}: expected a cause at {field}, got {fields:?}"
        );
    }

    // Values upstream does not validate are accepted: transform names, Secret types, the vault
    // name's shape, an empty version.
    dynamic(&client, "v2beta1")
        .create(
            &PostParams::default(),
            &object(
                "v2beta1",
                "lenient",
                json!({"vault": {"name": "Not A Vault!", "object": {"name": "s", "type": "secret", "version": ""}},
                       "output": {"secret": {"name": "o", "type": "example.com/custom"}, "transform": ["nonexistant"]}}),
            ),
        )
        .await
        .expect("accepted as upstream accepts it");
}

#[tokio::test]
async fn status_is_a_subresource_with_upstream_and_extended_fields_in_every_version() {
    let (_api, client) = cluster_with_crd().await;
    let akvs: Api<v2beta1::AzureKeyVaultSecret> = Api::default_namespaced(client.clone());
    let spec = serde_json::from_value(json!({
        "vault": {"name": "kv", "object": {"name": "s", "type": "secret"}},
        "output": {"secret": {"name": "out", "dataKey": "k"}, "configMap": {"name": "cm", "dataKey": "k"}}
    }))
    .expect("spec");
    let created = akvs
        .create(
            &PostParams::default(),
            &v2beta1::AzureKeyVaultSecret::new("synced", spec),
        )
        .await
        .expect("create");

    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2024-05-01T10:00:00Z".parse().expect("time"),
    );
    let status = v2beta1::AzureKeyVaultSecretStatus {
        secret_hash: Some("h1".into()),
        secret_name: Some("out".into()),
        config_map_hash: Some("h2".into()),
        config_map_name: Some("cm".into()),
        last_azure_update: Some(now.clone()),
        observed_generation: created.metadata.generation,
        object_version: Some("0123456789abcdef0123456789abcdef".into()),
        conditions: vec![v2beta1::Condition::ready(
            ReadyReason::Synced,
            "",
            now,
            created.metadata.generation,
        )],
    };
    let patched = akvs
        .patch_status(
            "synced",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .expect("status patch");
    assert_eq!(patched.status.as_ref(), Some(&status));

    let v1_view = Api::<v1::AzureKeyVaultSecret>::default_namespaced(client.clone())
        .get("synced")
        .await
        .expect("get at v1");
    let v1_status = v1_view.status.expect("status at v1");
    assert_eq!(v1_status.secret_name.as_deref(), Some("out"));
    assert_eq!(v1_status.object_version, status.object_version);
    assert!(
        v1_status.ready().is_some_and(|c| c.is_ready()),
        "conditions are readable through v1, the preferred version of real servers"
    );
    let raw = dynamic(&client, "v1").get("synced").await.expect("raw v1");
    assert!(
        raw.data["status"].get("configMapName").is_none(),
        "v1 has no ConfigMap status"
    );

    let err = akvs
        .patch_status(
            "synced",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [
                {"type": READY, "status": "Maybe", "reason": "Synced", "message": "", "lastTransitionTime": "2024-05-01T10:00:00Z"}
            ]}})),
        )
        .await
        .expect_err("invalid condition status");
    let (code, _, body) = api_status(err);
    assert_eq!(code, 422, "{body}");
}
