//! The controller in operation: Key Vault throttling, the per-vault read budget under
//! overload, the read plane's metrics in the host's registry, and two replicas with leader
//! election on one Lease.

use std::time::Duration;

use akv_client::cache::{BudgetConfig, ReadConfig};
use akv_client::metrics::ClientMetrics;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_sync::{LeaderElectionConfig, SyncConfig, SyncMetrics};
use kube::api::Api;
use kube::runtime::wait::await_condition;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde_json::json;
use testkit::faults::{Fault, RequestRecord};
use testkit::vault::{KeyVaultFake, SecretSpec};

use crate::controller_harness::{
    DEADLINE, NS, VAULT, World, data, is_ready, not_ready, secret_spec,
};

/// Waits (on the request log, with a deadline) until `n` records match `pred`; returns them.
async fn wait_requests(
    kv: &KeyVaultFake,
    n: usize,
    pred: impl Fn(&RequestRecord) -> bool,
) -> Vec<RequestRecord> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let records = kv.log().records();
            let hits: Vec<_> = records.iter().filter(|r| pred(r)).cloned().collect();
            if hits.len() >= n {
                return hits;
            }
            kv.log().wait_for(records.len() + 1).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} matching Key Vault requests in time"))
}

fn encoded(reg: &Registry) -> String {
    let mut out = String::new();
    encode(&mut out, reg).expect("encode");
    out
}

/// More AKVS than the read budget can refresh, on fewer worker slots than AKVS: refreshes of
/// synced AKVS must never keep the others from their first sync (the 10,000-AKVS stall), the
/// budget must hold, and refreshes must still happen (at a stretched interval).
#[tokio::test(flavor = "multi_thread")]
async fn over_budget_refreshes_are_deferred_and_never_starve_first_syncs() {
    const N: usize = 40;
    const BUDGET: u32 = 10;
    let budget_window = Duration::from_secs(1);
    let mut w = World::new().await;
    let mut reg = Registry::default();
    let client_metrics = ClientMetrics::register(reg.sub_registry_with_prefix("akv2k8s_client"));
    let base = World::config();
    w.start(SyncConfig {
        // 40 AKVS every 200 ms want 200 reads/s; the budget allows 10/s.
        concurrency: 2,
        key_vault_read: Some(ReadConfig {
            budget: BudgetConfig {
                requests: BUDGET,
                window: budget_window,
            },
            ..base.key_vault_read.clone().unwrap_or_default()
        }),
        client_metrics: Some(client_metrics),
        ..base
    });
    let started = std::time::Instant::now();
    for i in 0..N {
        let name = format!("b{i}");
        w.kv.set_secret(VAULT, &name, SecretSpec::new(format!("v{i}")))
            .expect("seed");
        w.create_akvs(
            &name,
            secret_spec(&name, json!({"secret": {"name": name, "dataKey": "v"}})),
        )
        .await;
    }
    for i in 0..N {
        w.wait_akvs(&format!("b{i}"), |a| is_ready(a, "Synced"))
            .await;
    }
    // Refreshes keep being deferred while the budget is spent, without touching status.
    let deferred = || {
        encoded(&reg)
            .lines()
            .find_map(|l| l.strip_prefix("akv2k8s_client_budget_deferred_refreshes_total "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    tokio::time::timeout(DEADLINE, async {
        while deferred() < 1.0 {
            w.kv.log().wait_for(w.kv.log().records().len() + 1).await;
        }
    })
    .await
    .expect("refreshes deferred");

    // Key Vault still moves the Secret, at the stretched interval.
    w.kv.set_secret(VAULT, "b0", SecretSpec::new("rotated"))
        .expect("rotate");
    w.wait_secret("b0", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("rotated"))
    })
    .await;

    // The budget held: a burst of BUDGET, then BUDGET per window.
    let reads =
        w.kv.log()
            .records()
            .iter()
            .filter(|r| r.method == "GET" && r.status == 200)
            .count();
    let windows = started.elapsed().as_secs_f64() / budget_window.as_secs_f64();
    let allowed = f64::from(BUDGET) * (1.0 + windows);
    assert!(
        reads as f64 <= allowed,
        "{reads} Key Vault reads in {windows:.1} windows, the budget allows {allowed:.0}"
    );
    let ready_changes = w.akvs_api().get("b1").await.expect("get");
    assert!(
        is_ready(&ready_changes, "Synced"),
        "deferral is not a failure"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_vault_throttling_waits_for_retry_after_keeps_the_secret_and_recovers() {
    let mut w = World::new().await;
    let mut reg = Registry::default();
    let client_metrics = ClientMetrics::register(reg.sub_registry_with_prefix("akv2k8s_client"));
    w.start(SyncConfig {
        client_metrics: Some(client_metrics),
        ..World::config()
    });
    w.kv.set_secret(VAULT, "th", SecretSpec::new("good"))
        .expect("seed");
    w.create_akvs(
        "th",
        secret_spec("th", json!({"secret": {"name": "th", "dataKey": "v"}})),
    )
    .await;
    let before = w.wait_secret("th", |s| s.is_some()).await.expect("secret");
    w.wait_akvs("th", |a| is_ready(a, "Synced")).await;

    let retry_after = Duration::from_secs(2);
    w.kv.faults().inject(
        Fault::throttle(retry_after)
            .on_host(&format!("{VAULT}.vault.azure.net"))
            .authenticated_only(),
    );
    w.wait_akvs("th", |a| not_ready(a, "ErrAzureVault")).await;
    w.wait_event("ErrAzureVault", "th").await;
    // Key Vault moves on while the controller is throttled.
    w.kv.set_secret(VAULT, "th", SecretSpec::new("newer"))
        .expect("rotate");

    // The controller retries no sooner than Retry-After: after the first retry (the status
    // change may trigger one at once), consecutive 429s are at least Retry-After apart.
    let throttled = wait_requests(&w.kv, 4, |r| r.status == 429).await;
    let span = throttled[3]
        .at
        .duration_since(throttled[1].at)
        .expect("log in order");
    assert!(
        span >= retry_after * 2 - Duration::from_millis(100),
        "three throttled requests within {span:?}"
    );

    let during = w.secrets().get("th").await.expect("get");
    assert_eq!(
        during.metadata.resource_version, before.metadata.resource_version,
        "the Secret is not written while throttled"
    );
    assert_eq!(data(&during, "v").as_deref(), Some("good"));
    assert!(
        encoded(&reg).contains("akv2k8s_client_keyvault_throttles_total{kind=\"secret\"}"),
        "throttles counted"
    );

    w.kv.faults().clear();
    w.wait_akvs("th", |a| is_ready(a, "Synced")).await;
    w.wait_secret("th", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("newer"))
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn read_plane_metrics_are_exported_in_the_hosts_registry() {
    let mut w = World::new().await;
    let mut reg = Registry::default();
    let metrics = SyncMetrics::register(&mut reg);
    let client_metrics = ClientMetrics::register(reg.sub_registry_with_prefix("akv2k8s_client"));
    w.metrics = metrics;
    w.start(SyncConfig {
        client_metrics: Some(client_metrics),
        ..World::config()
    });
    w.kv.set_secret(VAULT, "m", SecretSpec::new("metric-value"))
        .expect("seed");
    w.create_akvs(
        "m",
        secret_spec("m", json!({"secret": {"name": "m", "dataKey": "v"}})),
    )
    .await;
    w.wait_akvs("m", |a| is_ready(a, "Synced")).await;
    let text = encoded(&reg);
    assert!(
        text.contains("akv2k8s_client_keyvault_requests_total{kind=\"secret\",result=\"ok\"}"),
        "{text}"
    );
    assert!(
        text.contains("akv2k8s_client_cache_lookups_total{kind=\"secret\",result=\"miss\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("akv2k8s_syncs_total{operation=\"add\",object=\"AzureKeyVaultSecret\"} 1"),
        "{text}"
    );
    assert!(!text.contains("metric-value"));
    w.stop().await;
}

const LEASE: &str = "akv2k8s-controller";

fn replica(id: &str) -> SyncConfig {
    SyncConfig {
        leader_election: Some(LeaderElectionConfig::new(NS, LEASE, id).timings(
            Duration::from_secs(3),
            Duration::from_secs(2),
            Duration::from_millis(200),
        )),
        event_instance: Some(id.to_owned()),
        ..World::config()
    }
}

async fn wait_holder(w: &World, id: &'static str) {
    let leases: Api<Lease> = Api::namespaced(w.client.clone(), NS);
    tokio::time::timeout(
        DEADLINE,
        await_condition(leases, LEASE, move |l: Option<&Lease>| {
            l.and_then(|l| l.spec.as_ref())
                .and_then(|s| s.holder_identity.as_deref())
                == Some(id)
        }),
    )
    .await
    .unwrap_or_else(|_| panic!("{id} holds the Lease in time"))
    .expect("watch Lease");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_with_leader_election_have_one_writer_and_the_other_takes_over() {
    let w = World::new().await;
    let a = w.spawn(
        w.client_as("replica-a").await,
        replica("replica-a"),
        SyncMetrics::default(),
    );
    wait_holder(&w, "replica-a").await;
    let b = w.spawn(
        w.client_as("replica-b").await,
        replica("replica-b"),
        SyncMetrics::default(),
    );

    w.kv.set_secret(VAULT, "ha", SecretSpec::new("v1"))
        .expect("seed");
    w.create_akvs(
        "ha",
        secret_spec("ha", json!({"secret": {"name": "ha", "dataKey": "v"}})),
    )
    .await;
    w.wait_secret("ha", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("v1"))
    })
    .await;
    w.wait_akvs("ha", |a| is_ready(a, "Synced")).await;
    w.kv.set_secret(VAULT, "ha", SecretSpec::new("v2"))
        .expect("rotate");
    w.wait_secret("ha", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("v2"))
    })
    .await;
    assert!(w.writes_by("replica-a") > 0, "the leader writes");
    assert_eq!(w.writes_by("replica-b"), 0, "the follower does not");

    a.stop().await;
    let leader_writes = w.writes_by("replica-a");
    wait_holder(&w, "replica-b").await;
    w.kv.set_secret(VAULT, "ha", SecretSpec::new("v3"))
        .expect("rotate");
    w.wait_secret("ha", |s| {
        s.is_some_and(|s| data(s, "v").as_deref() == Some("v3"))
    })
    .await;
    w.wait_akvs("ha", |a| {
        is_ready(a, "Synced")
            && a.status
                .as_ref()
                .and_then(|s| s.object_version.as_deref())
                .is_some()
    })
    .await;
    assert!(w.writes_by("replica-b") > 0, "the new leader writes");
    assert_eq!(
        w.writes_by("replica-a"),
        leader_writes,
        "the old one has stopped"
    );
    b.stop().await;
}
