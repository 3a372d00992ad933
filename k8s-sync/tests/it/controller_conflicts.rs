//! The controller against specs and outputs it must refuse or handle with care: a changed
//! Secret type (single owner and shared), two AKVS writing the same key, and an invalid spec.

use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use testkit::certs::{CertChain, KeyKind, PemPart};
use testkit::vault::{CertificateFormat, CertificateSpec, SecretSpec};

use crate::controller_harness::{
    NS, VAULT, World, certificate_spec, data, is_ready, keys, not_ready, secret_spec,
};

/// Imports a certificate with its private key under `name`.
fn import_certificate(w: &World, name: &str) {
    let chain = CertChain::builder(KeyKind::Rsa2048).build().expect("chain");
    w.kv.import_certificate(
        VAULT,
        name,
        CertificateSpec::from_chain(
            &chain,
            CertificateFormat::Pem(vec![PemPart::Leaf, PemPart::Key]),
        ),
    )
    .expect("import certificate");
}

/// The `type` of the Event with `reason` about `regarding`, if there is one.
async fn event_type(w: &World, reason: &str, regarding: &str) -> Option<String> {
    Api::<Event>::namespaced(w.client.clone(), NS)
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .find(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding)
        })
        .and_then(|e| e.type_)
}

/// Merge patch of `spec.output.secret`: switch to `kubernetes.io/tls`, drop `dataKey`.
fn to_tls(name: &str) -> Patch<serde_json::Value> {
    Patch::Merge(json!({"spec": {"output": {"secret": {
        "name": name, "type": "kubernetes.io/tls", "dataKey": null,
    }}}}))
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_secret_type_recreates_a_secret_with_one_owner_and_warns() {
    let mut w = World::started().await;
    import_certificate(&w, "tc");
    w.create_akvs(
        "tc",
        certificate_spec(
            "tc",
            json!({"secret": {"name": "tc", "dataKey": "cert.pem"}}),
        ),
    )
    .await;
    let before = w.wait_secret("tc", |s| s.is_some()).await.expect("secret");
    assert_eq!(before.type_.as_deref(), Some("Opaque"));
    w.wait_akvs("tc", |a| is_ready(a, "Synced")).await;

    w.akvs_api()
        .patch("tc", &PatchParams::default(), &to_tls("tc"))
        .await
        .expect("switch to TLS");
    let after = w
        .wait_secret("tc", |s| {
            s.is_some_and(|s| s.type_.as_deref() == Some("kubernetes.io/tls"))
        })
        .await
        .expect("recreated");
    assert_ne!(after.metadata.uid, before.metadata.uid, "a new object");
    assert_eq!(keys(&after), ["tls.crt", "tls.key"]);
    w.wait_event("SecretTypeChanged", "tc").await;
    assert_eq!(
        event_type(&w, "SecretTypeChanged", "tc").await.as_deref(),
        Some("Warning")
    );
    w.wait_akvs("tc", |a| is_ready(a, "Synced")).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changed_secret_type_of_a_shared_secret_is_refused_and_leaves_it_untouched() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "sa", SecretSpec::new("va"))
        .expect("seed");
    import_certificate(&w, "sb");
    w.create_akvs(
        "sa",
        secret_spec("sa", json!({"secret": {"name": "shared", "dataKey": "ka"}})),
    )
    .await;
    w.create_akvs(
        "sb",
        certificate_spec("sb", json!({"secret": {"name": "shared", "dataKey": "kb"}})),
    )
    .await;
    let before = w
        .wait_secret("shared", |s| s.is_some_and(|s| keys(s) == ["ka", "kb"]))
        .await
        .expect("shared");
    w.wait_akvs("sb", |a| is_ready(a, "Synced")).await;

    w.akvs_api()
        .patch("sb", &PatchParams::default(), &to_tls("shared"))
        .await
        .expect("switch to TLS");
    let a = w.wait_akvs("sb", |a| not_ready(a, "ErrOutputWrite")).await;
    let message = a
        .status
        .and_then(|s| s.ready().map(|c| c.message.clone()))
        .unwrap_or_default();
    assert!(message.contains("shared"), "{message}");
    w.wait_event("ErrOutputWrite", "sb").await;
    assert_eq!(
        event_type(&w, "ErrOutputWrite", "sb").await.as_deref(),
        Some("Warning")
    );

    let now = w.secrets().get("shared").await.expect("get");
    assert_eq!(now.metadata.uid, before.metadata.uid);
    assert_eq!(
        now.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(now.type_.as_deref(), Some("Opaque"));
    assert_eq!(data(&now, "ka").as_deref(), Some("va"));
    w.wait_akvs("sa", |a| is_ready(a, "Synced")).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn second_akvs_writing_the_same_key_is_refused() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "one", SecretSpec::new("first"))
        .expect("seed");
    w.kv.set_secret(VAULT, "two", SecretSpec::new("second"))
        .expect("seed");
    w.create_akvs(
        "one",
        secret_spec("one", json!({"secret": {"name": "conf", "dataKey": "k"}})),
    )
    .await;
    let before = w
        .wait_secret("conf", |s| {
            s.is_some_and(|s| data(s, "k").as_deref() == Some("first"))
        })
        .await
        .expect("secret");
    w.wait_akvs("one", |a| is_ready(a, "Synced")).await;

    w.create_akvs(
        "two",
        secret_spec("two", json!({"secret": {"name": "conf", "dataKey": "k"}})),
    )
    .await;
    w.wait_akvs("two", |a| not_ready(a, "ErrResourceExists"))
        .await;
    w.wait_event("ErrResourceExists", "two").await;

    let now = w.secrets().get("conf").await.expect("get");
    assert_eq!(
        now.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(data(&now, "k").as_deref(), Some("first"));
    let owners = now.metadata.owner_references.unwrap_or_default();
    assert_eq!(
        owners.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["one"]
    );
    w.wait_akvs("one", |a| is_ready(a, "Synced")).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_spec_is_reported_without_reading_key_vault() {
    let mut w = World::started().await;
    import_certificate(&w, "inv");
    // A certificate into an Opaque Secret needs a dataKey.
    w.create_akvs(
        "inv",
        certificate_spec("inv", json!({"secret": {"name": "inv", "type": "Opaque"}})),
    )
    .await;
    let a = w.wait_akvs("inv", |a| not_ready(a, "InvalidSpec")).await;
    let message = a
        .status
        .and_then(|s| s.ready().map(|c| c.message.clone()))
        .unwrap_or_default();
    assert!(message.contains("datakey"), "{message}");
    w.wait_event("InvalidSpec", "inv").await;
    assert_eq!(
        event_type(&w, "InvalidSpec", "inv").await.as_deref(),
        Some("Warning")
    );
    assert!(
        w.secrets().get_opt("inv").await.expect("get").is_none(),
        "no output"
    );
    let reads = w.kv.log().filter(|r| r.path.contains("/inv"));
    assert!(reads.is_empty(), "Key Vault was read: {reads:?}");
    w.stop().await;
}
