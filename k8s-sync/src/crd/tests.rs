use serde_json::{Value, json};

use super::*;

fn crd_json() -> Value {
    serde_json::to_value(crd().expect("crd")).expect("json")
}

fn version(crd: &Value, name: &str) -> Value {
    crd["spec"]["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .find(|v| v["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("version {name} missing"))
}

fn schema(crd: &Value, name: &str) -> Value {
    version(crd, name)["schema"]["openAPIV3Schema"].clone()
}

fn keys(v: &Value) -> Vec<&str> {
    v["properties"]
        .as_object()
        .map(|m| m.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn crd_names_scope_and_versions_are_upstreams() {
    let crd = crd_json();
    assert_eq!(crd["metadata"]["name"], CRD_NAME);
    let spec = &crd["spec"];
    assert_eq!(spec["group"], GROUP);
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(
        spec["names"],
        json!({"kind": KIND, "listKind": LIST_KIND, "plural": PLURAL,
               "singular": "azurekeyvaultsecret", "shortNames": [SHORT_NAME], "categories": ["all"]})
    );
    assert!(
        spec.get("conversion").is_none(),
        "no conversion, as upstream"
    );
    let versions: Vec<(&str, bool, bool)> = spec["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| {
            (
                v["name"].as_str().expect("name"),
                v["served"].as_bool().expect("served"),
                v["storage"].as_bool().expect("storage"),
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("v1", true, false),
            ("v1alpha1", true, false),
            ("v2alpha1", true, false),
            ("v2beta1", true, true)
        ]
    );
    for v in VERSIONS {
        assert_eq!(
            version(&crd, v)["subresources"],
            json!({"status": {}}),
            "{v}"
        );
    }
}

#[test]
fn printer_columns_per_version_are_upstreams() {
    let crd = crd_json();
    let columns = |v: &str| -> Vec<(String, String, String)> {
        version(&crd, v)["additionalPrinterColumns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().expect("name").to_owned(),
                    c["type"].as_str().expect("type").to_owned(),
                    c["jsonPath"].as_str().expect("path").to_owned(),
                )
            })
            .collect()
    };
    let col = |n: &str, t: &str, p: &str| (n.to_owned(), t.to_owned(), p.to_owned());
    let vault = col("Vault", "string", ".spec.vault.name");
    let object = col("Vault Object", "string", ".spec.vault.object.name");
    let age = col("Age", "date", ".metadata.creationTimestamp");
    let v2 = vec![
        vault.clone(),
        object.clone(),
        col("Secret Name", "string", ".status.secretName"),
        col("ConfigMap Name", "string", ".status.configMapName"),
        col("Last Synched", "date", ".status.lastAzureUpdate"),
        age.clone(),
    ];
    assert_eq!(columns("v2beta1"), v2);
    assert_eq!(columns("v2alpha1"), v2);
    assert_eq!(
        columns("v1"),
        [
            vault.clone(),
            object.clone(),
            col("Secret Name", "string", ".status.secretName"),
            col("Synched", "date", ".status.lastAzureUpdate"),
            age.clone()
        ]
    );
    assert_eq!(
        columns("v1alpha1"),
        [
            vault,
            object,
            col("Output Object", "string", ".status.secretName"),
            col("Synched", "date", ".status.lastAzureUpdate"),
            age
        ]
    );
}

#[test]
fn every_version_requires_spec_vault_name_object_and_object_name_type() {
    let crd = crd_json();
    for v in VERSIONS {
        let root = schema(&crd, v);
        assert_eq!(root["required"], json!(["spec"]), "{v}");
        let spec = &root["properties"]["spec"];
        assert_eq!(spec["required"], json!(["vault"]), "{v}");
        let vault = &spec["properties"]["vault"];
        assert_eq!(vault["required"], json!(["name", "object"]), "{v}");
        let object = &vault["properties"]["object"];
        assert_eq!(object["required"], json!(["name", "type"]), "{v}");
        assert_eq!(
            keys(object),
            ["contentType", "name", "type", "version"],
            "{v}"
        );
        assert_eq!(
            object["properties"]["type"]["enum"],
            json!(["secret", "certificate", "key", "multi-key-value-secret"]),
            "{v}"
        );
        assert_eq!(
            object["properties"]["contentType"]["enum"],
            json!(["application/x-json", "application/x-yaml"]),
            "{v}"
        );
        assert_eq!(
            spec["properties"]["output"]["properties"]["secret"]["required"],
            json!(["name"]),
            "{v}"
        );
    }
}

#[test]
fn versions_differ_where_upstreams_do() {
    let crd = crd_json();
    let output = |v: &str| schema(&crd, v)["properties"]["spec"]["properties"]["output"].clone();
    let vault = |v: &str| schema(&crd, v)["properties"]["spec"]["properties"]["vault"].clone();
    let status = |v: &str| schema(&crd, v)["properties"]["status"].clone();

    assert_eq!(keys(&output("v1alpha1")), ["secret", "transforms"]);
    assert_eq!(
        keys(&output("v1alpha1")["properties"]["secret"]),
        ["dataKey", "name", "type"]
    );
    assert_eq!(keys(&vault("v1alpha1")), ["name", "object"]);

    assert_eq!(keys(&output("v1")), ["secret", "transform"]);
    assert_eq!(
        keys(&output("v1")["properties"]["secret"]),
        ["chainOrder", "dataKey", "name", "type"]
    );
    assert_eq!(
        output("v1")["properties"]["secret"]["properties"]["chainOrder"]["enum"],
        json!(["ensureserverfirst"])
    );
    assert_eq!(keys(&vault("v1")), ["name", "object"]);

    for v in ["v2alpha1", "v2beta1"] {
        assert_eq!(
            keys(&output(v)),
            ["configMap", "secret", "transform"],
            "{v}"
        );
        assert_eq!(
            output(v)["properties"]["configMap"]["required"],
            json!(["dataKey", "name"])
        );
        assert_eq!(keys(&vault(v)), ["azureIdentity", "name", "object"], "{v}");
        assert_eq!(
            vault(v)["properties"]["azureIdentity"]["required"],
            json!(["name"])
        );
        assert!(status(v).get("required").is_none(), "{v}");
        assert_eq!(
            keys(&status(v)),
            [
                "conditions",
                "configMapHash",
                "configMapName",
                "lastAzureUpdate",
                "objectVersion",
                "observedGeneration",
                "secretHash",
                "secretName"
            ]
        );
    }
    for v in ["v1alpha1", "v1"] {
        assert_eq!(
            status(v)["required"],
            json!(["secretHash", "secretName"]),
            "{v}"
        );
        assert_eq!(
            keys(&status(v)),
            [
                "conditions",
                "lastAzureUpdate",
                "objectVersion",
                "observedGeneration",
                "secretHash",
                "secretName"
            ]
        );
    }
    assert_eq!(
        schema(&crd, "v2alpha1"),
        schema(&crd, "v2beta1"),
        "v2alpha1 serves v2beta1's schema"
    );
    assert_eq!(
        status("v2beta1")["properties"]["lastAzureUpdate"]["format"],
        "date-time"
    );
    let conditions = &status("v2beta1")["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
    assert_eq!(
        conditions["items"]["required"],
        json!(["lastTransitionTime", "message", "reason", "status", "type"])
    );
}

/// Every node is structural (has a type) and carries nothing upstream's schema lacks.
fn assert_upstream_shape(path: &str, s: &Value, seen: &mut usize) {
    *seen += 1;
    for key in [
        "nullable", "default", "title", "anyOf", "oneOf", "allOf", "$ref",
    ] {
        assert!(s.get(key).is_none(), "{path} has {key}: {s}");
    }
    assert!(s.get("type").is_some(), "{path} has no type: {s}");
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        assert!(values.iter().all(Value::is_string), "{path} enum: {s}");
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            assert_upstream_shape(&format!("{path}.{k}"), v, seen);
        }
    }
    if let Some(items) = s.get("items") {
        assert_upstream_shape(&format!("{path}[]"), items, seen);
    }
}

#[test]
fn schemas_are_structural_without_nullable_defaults_or_titles() {
    let crd = crd_json();
    for v in VERSIONS {
        let mut seen = 0;
        assert_upstream_shape(v, &schema(&crd, v), &mut seen);
        assert!(seen > 20, "{v}: walked {seen} nodes");
    }
}

#[test]
fn crd_yaml_parses_back_to_the_crd() {
    let yaml = crd_yaml().expect("yaml");
    assert!(yaml.contains(REGENERATE), "says how to regenerate");
    let parsed: CustomResourceDefinition = serde_saphyr::from_str(&yaml).expect("parse");
    assert_eq!(parsed, crd().expect("crd"));
}

#[test]
fn ready_reasons_imply_their_status_and_parse_back() {
    for r in ReadyReason::ALL {
        assert_eq!(ReadyReason::parse(r.as_str()), Some(*r));
        let expect = if matches!(r, ReadyReason::Synced | ReadyReason::NoOutput) {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        };
        assert_eq!(r.status(), expect, "{r}");
    }
    assert_eq!(ReadyReason::parse("Bogus"), None);
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2024-05-01T10:00:00Z".parse().expect("timestamp"),
    );
    let c = Condition::ready(
        ReadyReason::ErrAzureVault,
        "vault unreachable",
        now,
        Some(3),
    );
    assert!(!c.is_ready());
    assert_eq!(
        serde_json::to_value(&c).expect("json"),
        json!({"type": "Ready", "status": "False", "reason": "ErrAzureVault",
               "message": "vault unreachable", "lastTransitionTime": "2024-05-01T10:00:00Z",
               "observedGeneration": 3})
    );
}

#[test]
fn status_finds_the_ready_condition_and_round_trips() {
    let status: v2beta1::AzureKeyVaultSecretStatus = serde_json::from_value(json!({
        "secretHash": "abc", "secretName": "db", "lastAzureUpdate": "2024-05-01T10:00:00Z",
        "observedGeneration": 2, "objectVersion": "0123456789abcdef",
        "conditions": [
            {"type": "Other", "status": "False", "reason": "X", "message": "", "lastTransitionTime": "2024-05-01T10:00:00Z"},
            {"type": "Ready", "status": "True", "reason": "Synced", "message": "", "lastTransitionTime": "2024-05-01T10:00:00Z"}
        ]
    }))
    .expect("status");
    assert!(status.ready().is_some_and(Condition::is_ready));
    let back: v2beta1::AzureKeyVaultSecretStatus =
        serde_json::from_value(serde_json::to_value(&status).expect("json")).expect("back");
    assert_eq!(back, status);
    // A status written at v2beta1 without the fields v1 requires still reads at v1.
    let v1: v1::AzureKeyVaultSecretStatus =
        serde_json::from_value(json!({"configMapName": "cm"})).expect("v1 status");
    assert_eq!(v1, v1::AzureKeyVaultSecretStatus::default());
}

#[test]
fn enums_use_upstream_spellings() {
    assert_eq!(
        ObjectType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>(),
        ["secret", "certificate", "key", "multi-key-value-secret"]
    );
    assert_eq!(
        serde_json::to_value(ContentType::Yaml).expect("json"),
        "application/x-yaml"
    );
    assert_eq!(
        ChainOrder::EnsureServerFirst.to_string(),
        "ensureserverfirst"
    );
    assert!(serde_json::from_value::<ObjectType>(json!("password")).is_err());
}

#[test]
fn pinned_version_treats_empty_as_latest() {
    let mut object = AzureKeyVaultObject {
        name: "db".into(),
        type_: ObjectType::Secret,
        version: Some(String::new()),
        content_type: None,
    };
    assert_eq!(object.pinned_version(), None);
    object.version = Some("abc".into());
    assert_eq!(object.pinned_version(), Some("abc"));
}
