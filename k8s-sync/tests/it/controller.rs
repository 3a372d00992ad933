//! The controller end to end: `k8s_sync::run` against the API server and Key Vault fakes.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use testkit::certs::{CertChain, KeyKind, PemPart};
use testkit::faults::Fault;
use testkit::vault::{CertificateFormat, CertificateSpec, KeySpec, SecretSpec};

use crate::controller_harness::{
    DEADLINE, NS, PERIOD, VAULT, World, data, is_ready, keys, not_ready, secret_spec,
};

#[tokio::test(flavor = "multi_thread")]
async fn plain_secret_becomes_opaque_secret_with_its_data_key() {
    let mut w = World::started().await;
    let ver =
        w.kv.set_secret(VAULT, "db-pass", SecretSpec::new("s3cr3t"))
            .expect("seed");
    let akvs = w
        .create_akvs_with(
            json!({"name": "db", "labels": {"team": "shop"}, "annotations": {"note": "x"}}),
            secret_spec(
                "db-pass",
                json!({"secret": {"name": "db", "dataKey": "password"}}),
            ),
        )
        .await;
    let s = w.wait_secret("db", |s| s.is_some()).await.expect("secret");
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(data(&s, "password").as_deref(), Some("s3cr3t"));
    assert_eq!(
        s.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("team"))
            .map(String::as_str),
        Some("shop")
    );
    assert_eq!(
        s.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("note"))
            .map(String::as_str),
        Some("x")
    );
    let owners = s.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(owners[0].kind, "AzureKeyVaultSecret");
    assert_eq!(Some(owners[0].uid.clone()), akvs.metadata.uid);

    let a = w.wait_akvs("db", |a| is_ready(a, "Synced")).await;
    let st = a.status.clone().expect("status");
    assert_eq!(st.observed_generation, a.metadata.generation);
    assert_eq!(st.secret_name.as_deref(), Some("db"));
    assert_eq!(st.object_version.as_deref(), Some(ver.as_str()));
    assert!(st.secret_hash.as_deref().is_some_and(|h| !h.is_empty()));
    assert!(st.last_azure_update.is_some());
    let cond = st.ready().expect("ready");
    assert_eq!(cond.observed_generation, a.metadata.generation);
    assert!(
        !cond.message.contains("s3cr3t"),
        "status never holds values"
    );
    assert!(
        a.metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|f| f == k8s_sync::render::FINALIZER)
    );
    w.wait_event("Synced", "db").await;
    for (_, _, note) in w.events().await {
        assert!(!note.unwrap_or_default().contains("s3cr3t"));
    }
    assert!(w.metrics.syncs("add", "AzureKeyVaultSecret") >= 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificate_becomes_tls_secret_and_public_pem_config_map() {
    let mut w = World::started().await;
    let chain = CertChain::builder(KeyKind::Rsa2048).build().expect("chain");
    w.kv.import_certificate(
        VAULT,
        "web",
        CertificateSpec::from_chain(
            &chain,
            CertificateFormat::Pem(vec![PemPart::Leaf, PemPart::Intermediate, PemPart::Key]),
        ),
    )
    .expect("import");
    w.create_akvs(
        "web-tls",
        json!({
            "vault": {"name": VAULT, "object": {"name": "web", "type": "certificate"}},
            "output": {"secret": {"name": "web-tls", "type": "kubernetes.io/tls"}},
        }),
    )
    .await;
    w.create_akvs(
        "web-ca",
        json!({
            "vault": {"name": VAULT, "object": {"name": "web", "type": "certificate"}},
            "output": {"configMap": {"name": "web-ca", "dataKey": "cert.pem"}},
        }),
    )
    .await;
    let s = w
        .wait_secret("web-tls", |s| s.is_some())
        .await
        .expect("tls");
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let crt = data(&s, "tls.crt").expect("tls.crt");
    assert!(crt.starts_with(&chain.leaf().pem()), "leaf first");
    assert!(
        data(&s, "tls.key")
            .expect("tls.key")
            .contains("PRIVATE KEY")
    );
    let cm = w
        .wait_config_map("web-ca", |c| c.is_some())
        .await
        .expect("configmap");
    let pem = cm
        .data
        .as_ref()
        .and_then(|d| d.get("cert.pem"))
        .expect("cert.pem");
    assert!(pem.contains("BEGIN CERTIFICATE") && !pem.contains("PRIVATE KEY"));
    w.wait_akvs("web-ca", |a| is_ready(a, "Synced")).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_key_json_and_key_objects_render_per_the_reference() {
    let mut w = World::started().await;
    w.kv.set_secret(
        VAULT,
        "cfg",
        SecretSpec::new(r#"{"user":"app","host":"db.local"}"#).content_type("application/x-json"),
    )
    .expect("seed");
    w.kv.create_key(VAULT, "sign", KeySpec::Rsa).expect("key");
    w.create_akvs(
        "cfg",
        json!({
            "vault": {"name": VAULT, "object": {"name": "cfg", "type": "multi-key-value-secret", "contentType": "application/x-json"}},
            "output": {"secret": {"name": "cfg"}},
        }),
    )
    .await;
    w.create_akvs(
        "sign",
        json!({
            "vault": {"name": VAULT, "object": {"name": "sign", "type": "key"}},
            "output": {"secret": {"name": "sign", "dataKey": "key.pem"}},
        }),
    )
    .await;
    let s = w.wait_secret("cfg", |s| s.is_some()).await.expect("cfg");
    assert_eq!(keys(&s), vec!["host", "user"]);
    assert_eq!(data(&s, "user").as_deref(), Some("app"));
    let k = w.wait_secret("sign", |s| s.is_some()).await.expect("sign");
    assert!(
        data(&k, "key.pem")
            .expect("key.pem")
            .starts_with("-----BEGIN PUBLIC KEY-----")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_akvs_share_one_secret_and_deleting_one_keeps_the_others_keys() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("va"))
        .expect("a");
    w.kv.set_secret(VAULT, "b", SecretSpec::new("vb"))
        .expect("b");
    w.create_akvs(
        "a",
        secret_spec("a", json!({"secret": {"name": "shared", "dataKey": "ka"}})),
    )
    .await;
    w.create_akvs(
        "b",
        secret_spec("b", json!({"secret": {"name": "shared", "dataKey": "kb"}})),
    )
    .await;
    let s = w
        .wait_secret("shared", |s| s.is_some_and(|s| keys(s) == ["ka", "kb"]))
        .await
        .expect("shared");
    assert_eq!(s.metadata.owner_references.map(|o| o.len()), Some(2));

    let vault_reads = w.kv.log().counts().authorized;
    w.akvs_api()
        .delete("a", &DeleteParams::default())
        .await
        .expect("delete a");
    let s = w
        .wait_secret("shared", |s| s.is_some_and(|s| keys(s) == ["kb"]))
        .await
        .expect("still there");
    assert_eq!(data(&s, "kb").as_deref(), Some("vb"));
    let owners = s.metadata.owner_references.unwrap_or_default();
    assert_eq!(
        owners.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["b"]
    );
    // The AKVS is gone once its finalizer is removed; releasing its keys needed no Key
    // Vault read of its object.
    tokio::time::timeout(
        DEADLINE,
        kube::runtime::wait::await_condition(w.akvs_api(), "a", |a: Option<&_>| a.is_none()),
    )
    .await
    .expect("AKVS a deleted in time")
    .expect("watch");
    let reads_of_a =
        w.kv.log()
            .filter(|r| r.path.starts_with("/secrets/a"))
            .into_iter()
            .filter(|r| r.seq as usize >= vault_reads)
            .count();
    assert!(
        reads_of_a <= 1,
        "at most a refresh already in flight, got {reads_of_a}"
    );

    w.akvs_api()
        .delete("b", &DeleteParams::default())
        .await
        .expect("delete b");
    w.wait_secret("shared", |s| s.is_none()).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_secret_is_left_untouched_and_reported() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "x", SecretSpec::new("from-vault"))
        .expect("seed");
    let foreign = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("mine".into()),
            ..Default::default()
        },
        data: Some([("k".to_owned(), ByteString(b"keep".to_vec()))].into()),
        ..Default::default()
    };
    let created = w
        .secrets()
        .create(&PostParams::default(), &foreign)
        .await
        .expect("foreign");
    w.create_akvs(
        "x",
        secret_spec("x", json!({"secret": {"name": "mine", "dataKey": "k"}})),
    )
    .await;
    w.wait_akvs("x", |a| not_ready(a, "ErrResourceExists"))
        .await;
    w.wait_event("ErrResourceExists", "x").await;
    let now = w.secrets().get("mine").await.expect("get");
    assert_eq!(
        now.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(data(&now, "k").as_deref(), Some("keep"));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_value_reaches_the_secret_within_an_interval() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "rot", SecretSpec::new("v1"))
        .expect("v1");
    w.create_akvs(
        "rot",
        secret_spec("rot", json!({"secret": {"name": "rot", "dataKey": "v"}})),
    )
    .await;
    w.wait_secret("rot", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("v1"))
    })
    .await;
    let v2 =
        w.kv.set_secret(VAULT, "rot", SecretSpec::new("v2"))
            .expect("v2");
    let started = std::time::Instant::now();
    w.wait_secret("rot", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("v2"))
    })
    .await;
    // One interval plus jitter, plus scheduling slack on a busy test machine.
    assert!(
        started.elapsed() < PERIOD * 10,
        "took {:?}",
        started.elapsed()
    );
    w.wait_akvs("rot", |a| {
        a.status.as_ref().and_then(|s| s.object_version.clone()) == Some(v2.clone())
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_vault_outage_keeps_the_secret_and_recovers() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "o", SecretSpec::new("good"))
        .expect("seed");
    w.create_akvs(
        "o",
        secret_spec("o", json!({"secret": {"name": "o", "dataKey": "v"}})),
    )
    .await;
    let before = w.wait_secret("o", |s| s.is_some()).await.expect("secret");
    w.wait_akvs("o", |a| is_ready(a, "Synced")).await;

    w.kv.faults()
        .inject(Fault::status(503).on_host(&format!("{VAULT}.vault.azure.net")));
    w.wait_akvs("o", |a| not_ready(a, "ErrAzureVault")).await;
    w.wait_event("ErrAzureVault", "o").await;
    let during = w.secrets().get("o").await.expect("get");
    assert_eq!(
        during.metadata.resource_version,
        before.metadata.resource_version
    );
    assert_eq!(data(&during, "v").as_deref(), Some("good"));
    assert!(w.metrics.syncs_failed("sync", "AzureKeyVault") >= 1);

    w.kv.faults().clear();
    w.kv.set_secret(VAULT, "o", SecretSpec::new("better"))
        .expect("rotate");
    w.wait_akvs("o", |a| is_ready(a, "Synced")).await;
    w.wait_secret("o", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("better"))
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn steady_state_makes_no_writes_and_no_events() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "st", SecretSpec::new("same"))
        .expect("seed");
    w.kv.set_secret(VAULT, "st2", SecretSpec::new("other"))
        .expect("seed");
    w.create_akvs(
        "st",
        secret_spec("st", json!({"secret": {"name": "st", "dataKey": "v"}})),
    )
    .await;
    w.create_akvs(
        "st2",
        secret_spec("st2", json!({"configMap": {"name": "st2", "dataKey": "v"}})),
    )
    .await;
    w.wait_akvs("st", |a| is_ready(a, "Synced")).await;
    w.wait_akvs("st2", |a| is_ready(a, "Synced")).await;
    w.wait_event("Synced", "st").await;
    w.wait_event("Synced", "st2").await;

    // Let the first refresh settle, then measure over at least three intervals, measured as
    // Key Vault reads (each refresh reads once per interval).
    let reads_at = |w: &World| w.kv.log().counts().authorized;
    let settle = reads_at(&w) + 2;
    wait_reads(&w, settle).await;
    // The first sync wrote status and finalizer once each, although the reconciles its own
    // writes triggered saw a watch cache that had not caught up yet.
    for name in ["st", "st2"] {
        let path = format!("/apis/spv.no/v2beta1/namespaces/{NS}/azurekeyvaultsecrets/{name}");
        let patches = |p: &str| {
            w.api
                .log()
                .filter(|r| r.method == "PATCH" && r.path == p)
                .len()
        };
        assert_eq!(
            patches(&format!("{path}/status")),
            1,
            "{name}: one status write"
        );
        assert_eq!(patches(&path), 1, "{name}: one finalizer write");
    }
    let writes = w.api.writes();
    let events = w.events().await.len();
    let start_reads = reads_at(&w);
    wait_reads(&w, start_reads + 6).await; // ≥ 3 intervals for each of the two AKVS
    assert_eq!(w.api.writes(), writes, "no writes in a steady state");
    assert_eq!(
        w.events().await.len(),
        events,
        "no Events in a steady state"
    );
    w.stop().await;
}

/// Waits until Key Vault has answered `n` authorized reads (the controller's refreshes),
/// watching the fake's request log with a deadline.
async fn wait_reads(w: &World, n: usize) {
    tokio::time::timeout(DEADLINE, async {
        while w.kv.log().counts().authorized < n {
            w.kv.log().wait_for(w.kv.log().records().len() + 1).await;
        }
    })
    .await
    .expect("Key Vault reads in time");
}

#[tokio::test(flavor = "multi_thread")]
async fn renamed_output_removes_the_old_secret() {
    let mut w = World::started().await;
    w.kv.set_secret(VAULT, "rn", SecretSpec::new("v"))
        .expect("seed");
    w.create_akvs(
        "rn",
        secret_spec("rn", json!({"secret": {"name": "old", "dataKey": "v"}})),
    )
    .await;
    w.wait_secret("old", |s| s.is_some()).await;
    w.akvs_api()
        .patch(
            "rn",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"spec": {"output": {"secret": {"name": "new", "dataKey": "v2"}}}}),
            ),
        )
        .await
        .expect("rename");
    let s = w.wait_secret("new", |s| s.is_some()).await.expect("new");
    assert_eq!(keys(&s), vec!["v2"]);
    w.wait_secret("old", |s| s.is_none()).await;
    let a = w
        .wait_akvs("rn", |a| {
            a.status.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("new")
        })
        .await;
    assert_eq!(
        a.status.and_then(|s| s.observed_generation),
        a.metadata.generation
    );

    // Removing every output does not crash: the output goes, the AKVS is Ready (NoOutput).
    w.akvs_api()
        .patch(
            "rn",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"output": null}})),
        )
        .await
        .expect("remove outputs");
    w.wait_secret("new", |s| s.is_none()).await;
    w.wait_akvs("rn", |a| is_ready(a, "NoOutput")).await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn with_leader_election_the_leader_writes_and_releases_the_lease_on_shutdown() {
    use k8s_openapi::api::coordination::v1::Lease;
    use k8s_sync::LeaderElectionConfig;
    let mut w = World::new().await;
    w.start(k8s_sync::SyncConfig {
        leader_election: Some(
            LeaderElectionConfig::new("default", "akv2k8s-controller", "replica-0").timings(
                std::time::Duration::from_secs(3),
                std::time::Duration::from_secs(2),
                std::time::Duration::from_millis(200),
            ),
        ),
        ..World::config()
    });
    w.kv.set_secret(VAULT, "le", SecretSpec::new("v"))
        .expect("seed");
    w.create_akvs(
        "le",
        secret_spec("le", json!({"secret": {"name": "le", "dataKey": "v"}})),
    )
    .await;
    w.wait_secret("le", |s| s.is_some()).await;
    let leases: kube::Api<Lease> = kube::Api::namespaced(w.client.clone(), "default");
    let held = leases.get("akv2k8s-controller").await.expect("lease");
    assert_eq!(
        held.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("replica-0")
    );
    w.stop().await;
    let released = leases.get("akv2k8s-controller").await.expect("lease");
    assert_eq!(released.spec.and_then(|s| s.holder_identity), None);
}
