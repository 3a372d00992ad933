//! End to end: the built `akv2k8s-controller` as a process against testkit's API server, Key
//! Vault and Entra fakes, applying upstream akv2k8s's scenario manifests unchanged (behaviour
//! reference §8.9), plus rotation, a Key Vault outage, a foreign Secret, deletion, leader
//! election across two processes, and a steady state that costs no writes.
//!
//! Every wait is a watch (`await_condition`) or a poll of the fakes' request logs under a
//! deadline; the controller runs with `--azure-resync-period=0.3`. Measured figures are printed
//! (`cargo test -p akv2k8s-controller --test e2e -- --nocapture`).

#[path = "e2e/support.rs"]
mod support;

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use testkit::faults::Fault;
use testkit::vault::SecretSpec;

use support::*;

/// Upstream has no manifest for a YAML multi-key secret: the JSON one with the YAML content type.
const MULTI_KEY_YAML_AKVS: &str = "
apiVersion: spv.no/v2beta1
kind: AzureKeyVaultSecret
metadata:
  name: db-config-yaml
  namespace: akv-test
spec:
  vault:
    name: akv2k8sinttestskv
    object:
      contentType: application/x-yaml
      name: akv2k8s-multi-key-yaml-test
      type: multi-key-value-secret
  output:
    secret:
      name: db-config-yaml
";

/// §8.9 scenario 9 (from upstream's docs): a PFX stored as a secret, output as a TLS Secret.
const PFX_AKVS: &str = "
apiVersion: spv.no/v2beta1
kind: AzureKeyVaultSecret
metadata:
  name: pfx-secret-sync
  namespace: akv-test
spec:
  vault:
    name: akv2k8sinttestskv
    object:
      name: akv2k8s-test-pfx
      type: secret
  output:
    secret:
      name: my-pfx-from-akv
      type: kubernetes.io/tls
";

/// Every AKVS the scenarios test creates in `akv-test`.
const SCENARIO_AKVS: [&str; 9] = [
    "secret-sync",
    "certificate-sync",
    "signing-key-sync",
    "db-config",
    "secret-sync-1",
    "secret-sync-2",
    "secret-configmap-sync",
    "db-config-yaml",
    "pfx-secret-sync",
];

fn multi_key(password: &str) -> Vec<(String, String)> {
    [
        ("database", "orders"),
        ("password", password),
        ("user", "app"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

fn assert_tls(s: &Secret, chain: &testkit::certs::CertChain) {
    assert_eq!(s.type_.as_deref(), Some("kubernetes.io/tls"));
    let d = data(s);
    assert_eq!(
        d.keys().collect::<Vec<_>>(),
        ["tls.crt", "tls.key"],
        "TLS keys"
    );
    assert!(
        d["tls.crt"].starts_with(&chain.leaf().pem()),
        "tls.crt starts with the leaf: {}",
        d["tls.crt"]
    );
    assert!(
        d["tls.key"].contains("PRIVATE KEY-----"),
        "tls.key is a PEM key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_scenarios_sync_and_then_cost_no_writes() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let _controller = env.controller("replica-0", &[], &[]);

    let started = Instant::now();
    for m in [
        manifest::SECRET_SYNC,
        manifest::CERTIFICATE_SYNC,
        manifest::SIGNING_KEY_SYNC,
        manifest::MULTI_KEY_VALUE,
        manifest::MULTI_AKVS,
        manifest::CONFIGMAP_SYNC,
        MULTI_KEY_YAML_AKVS,
        PFX_AKVS,
    ] {
        env.apply(m).await;
    }

    // 1. secret-sync: Opaque Secret, key secret-value.
    let s = env
        .wait_secret_keys(NS, "my-secret-from-akv", &["secret-value"])
        .await;
    assert_eq!(s.type_.as_deref(), Some("Opaque"));
    assert_eq!(data(&s)["secret-value"], SECRET_VALUE);
    assert_eq!(owners(&s), ["secret-sync"]);
    // 2. certificate-sync: kubernetes.io/tls with the exportable certificate's key.
    let s = env
        .wait_secret_keys(NS, "my-certificate-from-akv", &["tls.crt", "tls.key"])
        .await;
    assert_tls(&s, &env.cert);
    // 3. signing-key-sync: key signing-key.
    let s = env
        .wait_secret_keys(NS, "my-signing-key-from-akv", &["signing-key"])
        .await;
    assert!(
        !data(&s)["signing-key"].is_empty(),
        "signing-key has a value"
    );
    // 4. multi-key-value (JSON, and YAML): one key per entry.
    let s = env
        .wait_secret_keys(NS, "db-config", &["database", "password", "user"])
        .await;
    assert_eq!(
        data(&s).into_iter().collect::<Vec<_>>(),
        multi_key("p4ss-json")
    );
    let s = env
        .wait_secret_keys(NS, "db-config-yaml", &["database", "password", "user"])
        .await;
    assert_eq!(
        data(&s).into_iter().collect::<Vec<_>>(),
        multi_key("p4ss-yaml")
    );
    // 5. multi-akvs: two AKVS → one Secret, two owners.
    let s = env
        .wait_secret_keys(
            NS,
            "my-secrets-from-akv",
            &["secret-value-1", "secret-value-2"],
        )
        .await;
    assert_eq!(data(&s)["secret-value-1"], SECRET_VALUE);
    assert_eq!(data(&s)["secret-value-2"], SECRET_TWO_VALUE);
    assert_eq!(owners(&s), ["secret-sync-1", "secret-sync-2"]);
    // 6. configmap-sync: ConfigMap, key secret-value.
    let cm = env
        .wait_config_map(NS, "my-secret-from-akv", |c| {
            c.data
                .as_ref()
                .is_some_and(|d| d.get("secret-value").map(String::as_str) == Some(SECRET_VALUE))
        })
        .await;
    assert_eq!(owners(&cm), ["secret-configmap-sync"]);
    // 9. PFX stored as a secret → kubernetes.io/tls.
    let s = env
        .wait_secret_keys(NS, "my-pfx-from-akv", &["tls.crt", "tls.key"])
        .await;
    assert_tls(&s, &env.pfx);

    for name in SCENARIO_AKVS {
        let akvs = env.wait_ready(NS, name, "True", "Synced").await;
        let status = akvs.status.expect("status");
        assert!(status.object_version.is_some(), "{name}: objectVersion");
        assert_eq!(status.observed_generation, akvs.metadata.generation);
    }
    let synced_in = started.elapsed();

    // Steady state: Key Vault unchanged for ≥ 3 intervals → no writes, no Events. It starts
    // once every object has been refreshed after the initial sync (writes still in flight from
    // the initial sync belong to it), and the window ends when every object has been read 4
    // more times (≥ 3 whole intervals).
    let initial = env.kv_reads_by_object();
    until("every object refreshed once after the initial sync", || {
        let now = env.kv_reads_by_object();
        initial
            .iter()
            .all(|(o, n)| now.get(o).copied().unwrap_or(0) > *n)
    })
    .await;
    let writes_to_sync = env.controller_writes(true);
    let status_writes = env
        .api
        .log()
        .filter(|r| r.method == "PATCH" && r.path.ends_with("/status"))
        .len();
    let writes_before = env.api.writes();
    let events_before = env.events();
    let reads_before = env.kv_reads();
    let per_object = env.kv_reads_by_object();
    let window = Instant::now();
    until("every object refreshed 4 more times", || {
        let now = env.kv_reads_by_object();
        per_object
            .iter()
            .all(|(o, n)| now.get(o).copied().unwrap_or(0) >= n + 4)
    })
    .await;
    let elapsed = window.elapsed();
    assert_eq!(
        env.api.writes() - writes_before,
        0,
        "API writes in the steady state: {:?}",
        env.api
            .log()
            .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .into_iter()
            .skip(writes_before)
            .map(|r| format!("{} {}?{} -> {}", r.method, r.path, r.query, r.status))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        env.events() - events_before,
        0,
        "Events in the steady state"
    );

    let intervals = elapsed.as_secs_f64() / PERIOD.as_secs_f64();
    let reads = env.kv_reads() - reads_before;
    let distinct = per_object.len();
    let after = env.kv_reads_by_object();
    // Three AKVS read akv2k8s-test-secret: at most one read per distinct object per interval.
    let shared = format!("secrets/{OBJ_SECRET}");
    let shared_reads = after[&shared] - per_object[&shared];
    assert!(
        (shared_reads as f64) <= intervals.ceil() + 1.0,
        "{shared_reads} reads of the shared object in {intervals:.1} intervals"
    );
    println!(
        "MEASURED scenarios: {} AKVS synced in {synced_in:?} (controller API writes {writes_to_sync:?}, \
         {status_writes} of them status patches); \
         steady state over {elapsed:?} ({intervals:.1} intervals): 0 API writes, 0 Events, \
         {reads} Key Vault reads = {:.2} per AKVS per interval, {:.2} per distinct object \
         ({distinct}: {:?}) per interval; shared object read {shared_reads} times by 3 AKVS",
        SCENARIO_AKVS.len(),
        reads as f64 / SCENARIO_AKVS.len() as f64 / intervals,
        reads as f64 / distinct as f64 / intervals,
        per_object.keys().collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespace_isolation_syncs_only_the_runtime_namespace() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    env.apply(manifest::INT_TESTS_NAMESPACE).await;
    let _controller = env.controller("replica-0", &["--watch-all-namespaces=false"], &[]);
    env.apply(manifest::SECRET_SYNC).await;
    env.apply(manifest::INT_TESTS_AKVS).await;
    // An AKVS with an output outside the controller's namespace.
    env.apply(
        "
apiVersion: spv.no/v2beta1
kind: AzureKeyVaultSecret
metadata:
  name: other-namespace-sync
  namespace: akv2k8s-test
spec:
  vault:
    name: akv2k8s-test
    object:
      name: my-secret
      type: secret
  output:
    secret:
      name: my-secret-from-akv
      dataKey: secret-value
",
    )
    .await;

    let s = env
        .wait_secret_keys(NS, "my-secret-from-akv", &["secret-value"])
        .await;
    assert_eq!(data(&s)["secret-value"], SECRET_VALUE);
    env.wait_ready(NS, "secret-sync", "True", "Synced").await;
    let since = env.kv_reads_of("secrets", OBJ_SECRET);
    refreshed(&env, "secrets", OBJ_SECRET, since, 3).await;

    for name in ["test-secret", "other-namespace-sync"] {
        let akvs = env.akvs(INT_TESTS_NS).get(name).await.expect("AKVS");
        assert!(akvs.status.is_none(), "{name}: status stays empty");
        assert!(akvs.metadata.finalizers.is_none(), "{name}: no finalizer");
    }
    assert!(
        env.secrets(INT_TESTS_NS)
            .get_opt("my-secret-from-akv")
            .await
            .expect("get")
            .is_none(),
        "no Secret outside the runtime namespace"
    );
    assert_eq!(
        env.kv
            .log()
            .filter(|r| r.host.starts_with(INT_TESTS_VAULT))
            .len(),
        0,
        "the other namespace's vault is never read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn label_filtering_syncs_only_akvs_with_object_labels() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let _controller = env.controller(
        "replica-0",
        &[],
        &[("OBJECT_LABELS", "someSecretLabel=someSecretValue")],
    );
    env.apply(manifest::SECRET_SYNC).await; // no labels
    env.apply(
        "
apiVersion: spv.no/v2beta1
kind: AzureKeyVaultSecret
metadata:
  name: labelled-secret-sync
  namespace: akv-test
  labels:
    someSecretLabel: someSecretValue
spec:
  vault:
    name: akv2k8sinttestskv
    object:
      name: akv2k8s-test-secret-two
      type: secret
  output:
    secret:
      name: labelled-secret-from-akv
      dataKey: secret-value
",
    )
    .await;

    let s = env
        .wait_secret_keys(NS, "labelled-secret-from-akv", &["secret-value"])
        .await;
    assert_eq!(data(&s)["secret-value"], SECRET_TWO_VALUE);
    env.wait_ready(NS, "labelled-secret-sync", "True", "Synced")
        .await;
    let since = env.kv_reads_of("secrets", OBJ_SECRET_TWO);
    refreshed(&env, "secrets", OBJ_SECRET_TWO, since, 3).await;

    let unlabelled = env.akvs(NS).get("secret-sync").await.expect("AKVS");
    assert!(unlabelled.status.is_none(), "unlabelled AKVS: no status");
    assert!(
        env.secrets(NS)
            .get_opt("my-secret-from-akv")
            .await
            .expect("get")
            .is_none(),
        "unlabelled AKVS: no Secret"
    );
    assert_eq!(
        env.kv_reads_of("secrets", OBJ_SECRET),
        0,
        "unlabelled AKVS's object never read"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_vault_value_reaches_the_secret_within_one_interval() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let _controller = env.controller("replica-0", &[], &[]);
    env.apply(manifest::SECRET_SYNC).await;
    env.wait_secret_keys(NS, "my-secret-from-akv", &["secret-value"])
        .await;
    let before = env.wait_ready(NS, "secret-sync", "True", "Synced").await;

    let mut worst = Duration::ZERO;
    for round in 1..=3 {
        let value = format!("rotated-{round}");
        let version = env
            .kv
            .set_secret(VAULT, OBJ_SECRET, SecretSpec::new(&value))
            .expect("rotate");
        let rotated = Instant::now();
        env.wait_secret(NS, "my-secret-from-akv", |s| {
            s.is_some_and(|s| data(s).get("secret-value") == Some(&value))
        })
        .await;
        let took = rotated.elapsed();
        worst = worst.max(took);
        // One interval (+10 % jitter) plus slack for the process, the fakes and the watch.
        assert!(
            took <= PERIOD.mul_f64(1.1) + Duration::from_millis(700),
            "round {round}: Secret updated {took:?} after the rotation"
        );
        env.wait_akvs(NS, "secret-sync", |a| {
            a.status.as_ref().is_some_and(|s| {
                s.object_version.as_deref() == Some(version.as_str())
                    && s.ready().is_some_and(|c| c.reason == "Synced")
            })
        })
        .await;
    }
    assert_ne!(
        before.status.and_then(|s| s.object_version),
        env.akvs(NS)
            .get("secret-sync")
            .await
            .expect("AKVS")
            .status
            .and_then(|s| s.object_version),
        "objectVersion changed"
    );
    assert!(env.events_with_reason(NS, "Synced") >= 1, "Synced Event");
    println!(
        "MEASURED rotation: Secret updated at most {worst:?} after a Key Vault change (interval {PERIOD:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_vault_outage_keeps_the_secret_reports_not_ready_and_recovers() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let _controller = env.controller("replica-0", &[], &[]);
    env.apply(manifest::SECRET_SYNC).await;
    let synced = env
        .wait_secret_keys(NS, "my-secret-from-akv", &["secret-value"])
        .await;
    env.wait_ready(NS, "secret-sync", "True", "Synced").await;

    let host = format!("{VAULT}.vault.azure.net");
    env.kv.faults().inject(Fault::status(503).on_host(&host));
    // Rotated while down: the controller cannot see it and must keep the last good value.
    env.kv
        .set_secret(VAULT, OBJ_SECRET, SecretSpec::new("rotated-during-outage"))
        .expect("rotate");
    let down = Instant::now();
    let akvs = env
        .wait_ready(NS, "secret-sync", "False", "ErrAzureVault")
        .await;
    let noticed = down.elapsed();
    let message = akvs
        .status
        .and_then(|s| s.ready().map(|c| c.message.clone()));
    let faulted = env.kv_faulted();
    // Several intervals of outage: the controller keeps trying (with backoff).
    until("several more failed Key Vault reads", || {
        env.kv_faulted() >= faulted + 3 && down.elapsed() >= PERIOD * 4
    })
    .await;
    let during = env
        .secrets(NS)
        .get("my-secret-from-akv")
        .await
        .expect("Secret");
    assert_eq!(
        during.metadata.resource_version, synced.metadata.resource_version,
        "Secret not written during the outage"
    );
    assert_eq!(data(&during)["secret-value"], SECRET_VALUE);
    assert!(
        env.events_with_reason(NS, "ErrAzureVault") >= 1,
        "ErrAzureVault Event"
    );

    env.kv.faults().clear();
    let cleared = Instant::now();
    env.wait_secret(NS, "my-secret-from-akv", |s| {
        s.is_some_and(|s| {
            data(s).get("secret-value").map(String::as_str) == Some("rotated-during-outage")
        })
    })
    .await;
    env.wait_ready(NS, "secret-sync", "True", "Synced").await;
    println!(
        "MEASURED outage: Ready=False after {noticed:?} ({message:?}); {} failed reads over {:?}; \
         recovered {:?} after Key Vault came back",
        env.kv_faulted(),
        cleared - down,
        cleared.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_secret_with_the_same_name_is_left_untouched() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let foreign: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "my-secret-from-akv", "namespace": NS, "labels": {"app": "mine"}},
        "type": "Opaque",
        "stringData": {"secret-value": "not-from-key-vault"},
    }))
    .expect("Secret");
    let foreign = env
        .secrets(NS)
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create the foreign Secret");
    let _controller = env.controller("replica-0", &[], &[]);
    env.apply(manifest::SECRET_SYNC).await;

    env.wait_ready(NS, "secret-sync", "False", "ErrResourceExists")
        .await;
    // Retried with backoff (1 s, 2 s, …: the foreign owner may go away), each retry reading
    // Key Vault again: two retries and the Secret is still untouched.
    let since = env.kv_reads_of("secrets", OBJ_SECRET);
    refreshed(&env, "secrets", OBJ_SECRET, since, 2).await;
    let now = env
        .secrets(NS)
        .get("my-secret-from-akv")
        .await
        .expect("Secret");
    assert_eq!(
        now.metadata.resource_version,
        foreign.metadata.resource_version
    );
    assert_eq!(data(&now)["secret-value"], "not-from-key-vault");
    assert!(untouched_by_controller(&now), "{:?}", now.metadata);
    assert!(
        env.events_with_reason(NS, "ErrResourceExists") >= 1,
        "ErrResourceExists Event"
    );

    // Deleting the AKVS does not delete the Secret it never owned.
    env.akvs(NS)
        .delete("secret-sync", &DeleteParams::default())
        .await
        .expect("delete AKVS");
    until("AKVS gone", || {
        env.api
            .object("spv.no", "azurekeyvaultsecrets", NS, "secret-sync")
            .is_none()
    })
    .await;
    let after = env
        .secrets(NS)
        .get("my-secret-from-akv")
        .await
        .expect("the foreign Secret survives");
    assert_eq!(
        after.metadata.resource_version,
        foreign.metadata.resource_version
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleted_akvs_removes_its_keys_and_keeps_the_other_owners() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let _controller = env.controller("replica-0", &[], &[]);
    env.apply(manifest::MULTI_AKVS).await;
    env.wait_secret_keys(
        NS,
        "my-secrets-from-akv",
        &["secret-value-1", "secret-value-2"],
    )
    .await;
    env.wait_ready(NS, "secret-sync-1", "True", "Synced").await;
    env.wait_ready(NS, "secret-sync-2", "True", "Synced").await;

    // Key Vault down: deleting must not need it.
    env.kv
        .faults()
        .inject(Fault::status(503).on_host(&format!("{VAULT}.vault.azure.net")));
    env.akvs(NS)
        .delete("secret-sync-1", &DeleteParams::default())
        .await
        .expect("delete AKVS");
    let s = env
        .wait_secret_keys(NS, "my-secrets-from-akv", &["secret-value-2"])
        .await;
    assert_eq!(data(&s)["secret-value-2"], SECRET_TWO_VALUE);
    until("secret-sync-1 gone (finalizer released)", || {
        env.api
            .object("spv.no", "azurekeyvaultsecrets", NS, "secret-sync-1")
            .is_none()
    })
    .await;
    let s = env
        .wait_secret(NS, "my-secrets-from-akv", |s| {
            s.is_some_and(|s| owners(s) == ["secret-sync-2"])
        })
        .await
        .expect("Secret");
    assert_eq!(data(&s).len(), 1);

    // The last owner goes: the Secret goes.
    env.akvs(NS)
        .delete("secret-sync-2", &DeleteParams::default())
        .await
        .expect("delete AKVS");
    env.wait_secret(NS, "my-secrets-from-akv", |s| s.is_none())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_have_one_writer_and_the_survivor_takes_over_after_sigterm() {
    let env = Env::start().await;
    env.apply(manifest::NAMESPACE).await;
    let lease = [
        "--leader-elect",
        "--leader-elect-lease-duration=3",
        "--leader-elect-renew-deadline=2",
        "--leader-elect-retry-period=0.5",
    ];
    let mut a = env.controller("replica-a", &lease, &[]);
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(env.client.clone(), NS);
    let holder = || async {
        leases
            .get_opt("akv2k8s-controller")
            .await
            .expect("get Lease")
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty())
    };
    tokio::time::timeout(DEADLINE, async {
        while holder().await.as_deref() != Some("replica-a") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("replica-a leads");
    let mut b = env.controller("replica-b", &lease, &[]);
    env.apply(manifest::SECRET_SYNC).await;
    env.wait_secret_keys(NS, "my-secret-from-akv", &["secret-value"])
        .await;
    env.wait_ready(NS, "secret-sync", "True", "Synced").await;
    env.kv
        .set_secret(VAULT, OBJ_SECRET, SecretSpec::new("rotated-under-a"))
        .expect("rotate");
    env.wait_secret(NS, "my-secret-from-akv", |s| {
        s.is_some_and(|s| {
            data(s).get("secret-value").map(String::as_str) == Some("rotated-under-a")
        })
    })
    .await;
    // Several intervals with both running.
    let since = env.kv_reads_of("secrets", OBJ_SECRET);
    refreshed(&env, "secrets", OBJ_SECRET, since, 3).await;
    a.assert_running();
    b.assert_running();
    let writes = env.controller_writes(false);
    assert!(
        writes.get("replica-a").copied().unwrap_or(0) > 0,
        "{writes:?}"
    );
    assert_eq!(
        writes.get("replica-b"),
        None,
        "the follower writes nothing: {writes:?}"
    );
    assert_eq!(holder().await.as_deref(), Some("replica-a"));

    a.sigterm();
    let stopped = Instant::now();
    assert_eq!(a.exited().await.code(), Some(0), "graceful exit");
    tokio::time::timeout(DEADLINE, async {
        while holder().await.as_deref() != Some("replica-b") {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("replica-b leads");
    let took_over = stopped.elapsed();
    assert!(
        took_over < Duration::from_secs(3),
        "took over in {took_over:?} (lease 3 s)"
    );

    env.kv
        .set_secret(VAULT, OBJ_SECRET, SecretSpec::new("rotated-under-b"))
        .expect("rotate");
    env.wait_secret(NS, "my-secret-from-akv", |s| {
        s.is_some_and(|s| {
            data(s).get("secret-value").map(String::as_str) == Some("rotated-under-b")
        })
    })
    .await;
    let after = env.controller_writes(false);
    assert!(
        after.get("replica-b").copied().unwrap_or(0) > 0,
        "{after:?}"
    );
    assert_eq!(after.get("replica-a"), writes.get("replica-a"), "{after:?}");
    b.assert_running();
    println!(
        "MEASURED leader election: replica-b took over {took_over:?} after SIGTERM to the leader; writes {after:?}"
    );
}
