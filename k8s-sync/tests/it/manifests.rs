//! Upstream's AKVS manifests against the Rust types, offline.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_sync::crd::{ContentType, ObjectType, v1, v2beta1};
use kube::ResourceExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::support::{fixtures_dir, upstream_akvs, upstream_docs};

/// What each upstream AKVS says, independent of its version.
#[derive(Debug, PartialEq)]
struct Summary {
    version: &'static str,
    namespace: String,
    vault: String,
    object: String,
    type_: ObjectType,
    content_type: Option<ContentType>,
    secret: Option<(String, Option<String>, Option<String>)>,
    config_map: Option<(String, String)>,
}

fn expected() -> BTreeMap<&'static str, Summary> {
    let s = |v: &str| v.to_owned();
    let secret =
        |name: &str, key: Option<&str>, ty: Option<&str>| Some((s(name), key.map(s), ty.map(s)));
    let base = |object: &str, type_| Summary {
        version: "v2beta1",
        namespace: s("akv-test"),
        vault: s("akv2k8sinttestskv"),
        object: s(object),
        type_,
        content_type: None,
        secret: None,
        config_map: None,
    };
    BTreeMap::from([
        (
            "test-secret",
            Summary {
                version: "v1",
                namespace: s("akv2k8s-test"),
                vault: s("akv2k8s-test"),
                ..base("my-secret", ObjectType::Secret)
            },
        ),
        (
            "certificate-sync",
            Summary {
                secret: secret("my-certificate-from-akv", None, Some("kubernetes.io/tls")),
                ..base("akv2k8s-test-cert", ObjectType::Certificate)
            },
        ),
        (
            "secret-configmap-sync",
            Summary {
                config_map: Some((s("my-secret-from-akv"), s("secret-value"))),
                ..base("akv2k8s-test-secret", ObjectType::Secret)
            },
        ),
        (
            "db-config",
            Summary {
                content_type: Some(ContentType::Json),
                secret: secret("db-config", None, None),
                ..base("akv2k8s-multi-key-test", ObjectType::MultiKeyValueSecret)
            },
        ),
        (
            "secret-sync",
            Summary {
                secret: secret("my-secret-from-akv", Some("secret-value"), None),
                ..base("akv2k8s-test-secret", ObjectType::Secret)
            },
        ),
        (
            "signing-key-sync",
            Summary {
                secret: secret("my-signing-key-from-akv", Some("signing-key"), None),
                ..base("akv2k8s-test-key", ObjectType::Key)
            },
        ),
        (
            "secret-sync-1",
            Summary {
                secret: secret("my-secrets-from-akv", Some("secret-value-1"), None),
                ..base("akv2k8s-test-secret", ObjectType::Secret)
            },
        ),
        (
            "secret-sync-2",
            Summary {
                secret: secret("my-secrets-from-akv", Some("secret-value-2"), None),
                ..base("akv2k8s-test-secret-two", ObjectType::Secret)
            },
        ),
    ])
}

fn summarise_v1(a: &v1::AzureKeyVaultSecret) -> Summary {
    let o = &a.spec.vault.object;
    Summary {
        version: "v1",
        namespace: a.namespace().unwrap_or_default(),
        vault: a.spec.vault.name.clone(),
        object: o.name.clone(),
        type_: o.type_,
        content_type: o.content_type,
        secret: a
            .spec
            .output
            .as_ref()
            .and_then(|out| out.secret.as_ref())
            .map(|s| (s.name.clone(), s.data_key.clone(), s.type_.clone())),
        config_map: None,
    }
}

fn summarise_v2beta1(a: &v2beta1::AzureKeyVaultSecret) -> Summary {
    let o = &a.spec.vault.object;
    Summary {
        version: "v2beta1",
        namespace: a.namespace().unwrap_or_default(),
        vault: a.spec.vault.name.clone(),
        object: o.name.clone(),
        type_: o.type_,
        content_type: o.content_type,
        secret: a
            .spec
            .secret_output()
            .map(|s| (s.name.clone(), s.data_key.clone(), s.type_.clone())),
        config_map: a
            .spec
            .config_map_output()
            .map(|c| (c.name.clone(), c.data_key.clone())),
    }
}

/// Parses `value` as `T`, and checks that `T` serialises back to exactly the manifest (JSON and
/// a YAML round trip).
fn round_trip<T>(value: &Value) -> T
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let typed: T = serde_json::from_value(value.clone()).expect("deserialize");
    assert_eq!(
        &serde_json::to_value(&typed).expect("serialize"),
        value,
        "serialises back to the manifest"
    );
    let yaml = serde_saphyr::to_string(&typed).expect("yaml");
    let again: T = serde_saphyr::from_str(&yaml).expect("yaml back");
    assert_eq!(again, typed, "YAML round trip");
    typed
}

#[test]
fn every_upstream_akvs_manifest_deserializes_into_its_version_type_and_round_trips() {
    let docs = upstream_akvs();
    let mut seen = BTreeMap::new();
    for doc in &docs {
        let summary = match doc.value["apiVersion"].as_str() {
            Some("spv.no/v1") => summarise_v1(&round_trip(&doc.value)),
            Some("spv.no/v2beta1") => summarise_v2beta1(&round_trip(&doc.value)),
            other => panic!("{}: unexpected apiVersion {other:?}", doc.file),
        };
        let name = doc.value["metadata"]["name"]
            .as_str()
            .expect("name")
            .to_owned();
        seen.insert(name, summary);
    }
    let expected = expected();
    assert_eq!(seen.len(), expected.len(), "{:?}", seen.keys());
    for (name, want) in expected {
        assert_eq!(seen.get(name), Some(&want), "{name}");
    }
}

#[test]
fn single_document_manifests_parse_straight_from_yaml_text() {
    let v1_text = std::fs::read_to_string(fixtures_dir().join("int-tests_test-secret_akvs.yaml"))
        .expect("read");
    let a: v1::AzureKeyVaultSecret = serde_saphyr::from_str(&v1_text).expect("v1");
    assert_eq!(a.name_any(), "test-secret");
    assert!(a.spec.output.is_none());

    let docs = upstream_akvs();
    let singles = docs
        .iter()
        .filter(|d| d.file.starts_with("integration-tests_akvs-"));
    let mut n = 0;
    for doc in singles {
        let a: v2beta1::AzureKeyVaultSecret =
            serde_saphyr::from_str(&doc.text).unwrap_or_else(|e| panic!("{}: {e}", doc.file));
        assert_eq!(a.namespace().as_deref(), Some("akv-test"), "{}", doc.file);
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn the_fixtures_hold_eight_akvs_in_two_versions_and_their_namespaces() {
    let docs = upstream_docs();
    let mut kinds = BTreeMap::new();
    for d in &docs {
        let key = format!(
            "{} {}",
            d.value["apiVersion"].as_str().unwrap_or_default(),
            d.value["kind"].as_str().unwrap_or_default()
        );
        *kinds.entry(key).or_insert(0) += 1;
    }
    assert_eq!(
        kinds,
        BTreeMap::from([
            ("spv.no/v1 AzureKeyVaultSecret".to_owned(), 1),
            ("spv.no/v2beta1 AzureKeyVaultSecret".to_owned(), 7),
            ("v1 Namespace".to_owned(), 2),
        ])
    );
}

#[test]
#[ignore = "needs the shared reference checkout at ../shared/reference/upstream-scenarios"]
fn fixtures_are_verbatim_copies_of_the_shared_reference() {
    let original =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/upstream-scenarios");
    let mut compared = 0;
    for entry in std::fs::read_dir(fixtures_dir()).expect("fixtures") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().expect("name");
            let ours = std::fs::read(&path).expect("ours");
            let theirs = std::fs::read(original.join(name)).expect("original");
            assert!(ours == theirs, "{name:?} differs from the shared reference");
            compared += 1;
        }
    }
    assert_eq!(compared, 9);
}
