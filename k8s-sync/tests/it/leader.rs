//! Leader election against testkit's fake API server: one leader among replicas, release on
//! shutdown, stepping down when renewals fail, 409s as lost races, and the Lease's fields.
//!
//! Timings are short (lease 600 ms → `leaseDurationSeconds: 1`, renew deadline 400 ms, retry
//! 100 ms). Tests wait on the electors' leadership channels and on watches of the Lease, with
//! `timeout` as the only deadline guard.

use std::time::Duration;

use futures::TryStreamExt as _;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use k8s_sync::leader::{LeaderElectionConfig, LeaderElector};
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::watcher::watch_object;
use testkit::apiserver::ApiServerFake;
use testkit::faults::Fault;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

use crate::support::cluster;

const NAMESPACE: &str = "default";
const LEASE: &str = "akv2k8s-controller";
const LEASE_DURATION: Duration = Duration::from_millis(600);
const RENEW_DEADLINE: Duration = Duration::from_millis(400);
const RETRY_PERIOD: Duration = Duration::from_millis(100);
/// Deadline guard for things that should happen within a few retry periods.
const GUARD: Duration = Duration::from_secs(5);

/// A kube client that reaches the fake as `https://<host>:<port>`, so faults can target one
/// replica with `Fault::on_host` (the serving certificate names `localhost` and `127.0.0.1`).
async fn client_via(api: &ApiServerFake, host: &str) -> Client {
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig");
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    config.cluster_url = format!("https://{host}:{}", api.addr().port())
        .parse()
        .expect("url");
    Client::try_from(config).expect("client")
}

fn config(identity: &str) -> LeaderElectionConfig {
    LeaderElectionConfig::new(NAMESPACE, LEASE, identity).timings(
        LEASE_DURATION,
        RENEW_DEADLINE,
        RETRY_PERIOD,
    )
}

/// An elector running on its own task.
struct Replica {
    identity: &'static str,
    leading: watch::Receiver<bool>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<k8s_sync::Result<()>>,
}

impl Replica {
    fn start(client: Client, cfg: LeaderElectionConfig, identity: &'static str) -> Self {
        let elector = LeaderElector::new(client, cfg).expect("valid config");
        assert!(!elector.is_leader(), "nobody leads before run");
        let leading = elector.leadership();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(elector.run(async move {
            let _ = stopped.await;
        }));
        Self {
            identity,
            leading,
            stop,
            task,
        }
    }

    fn spawn(client: Client, identity: &'static str) -> Self {
        Self::start(client, config(identity), identity)
    }

    fn is_leader(&self) -> bool {
        *self.leading.borrow()
    }

    /// Waits (within `within`) until leadership is `want`.
    async fn until(&mut self, want: bool, within: Duration) {
        let who = self.identity;
        timeout(within, self.leading.wait_for(|l| *l == want))
            .await
            .unwrap_or_else(|_| panic!("{who}: leadership did not become {want} within {within:?}"))
            .expect("elector alive");
    }

    /// Resolves its shutdown future and waits for `run` to return.
    async fn shut_down(self) -> k8s_sync::Result<()> {
        let _ = self.stop.send(());
        timeout(GUARD, self.task)
            .await
            .expect("run returns after shutdown")
            .expect("run did not panic")
    }
}

fn leases(client: &Client) -> Api<Lease> {
    Api::namespaced(client.clone(), NAMESPACE)
}

async fn lease(client: &Client) -> LeaseSpec {
    leases(client)
        .get(LEASE)
        .await
        .expect("get lease")
        .spec
        .expect("lease spec")
}

/// Watches the Lease until `n` further writes (new resourceVersions) have been seen.
async fn writes(client: &Client, n: usize) -> Lease {
    let stream = watch_object(leases(client), LEASE);
    let mut stream = std::pin::pin!(stream);
    let mut seen: Option<String> = None;
    let mut count = 0;
    timeout(GUARD, async {
        loop {
            let lease = stream
                .try_next()
                .await
                .expect("watch lease")
                .expect("watch open");
            let Some(lease) = lease else { continue };
            let rv = lease.metadata.resource_version.clone();
            if seen.is_some() && seen != rv {
                count += 1;
                if count == n {
                    return lease;
                }
            }
            seen = rv;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} lease writes within {GUARD:?}"))
}

fn time(t: &Option<MicroTime>) -> Timestamp {
    t.as_ref().expect("timestamp set").0
}

fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref()
}

/// Lease writes (PUT/POST) the fake answered with `status`.
fn lease_writes_with(api: &ApiServerFake, status: u16) -> usize {
    api.log()
        .filter(|r| {
            r.path.split('/').any(|s| s == "leases")
                && (r.method == "PUT" || r.method == "POST")
                && r.status == status
        })
        .len()
}

#[tokio::test]
async fn two_replicas_elect_exactly_one_leader() {
    let (api, client) = cluster().await;
    let mut a = Replica::spawn(client.clone(), "a");
    let mut b = Replica::spawn(client.clone(), "b");

    let first = timeout(GUARD, async {
        tokio::select! {
            r = a.leading.wait_for(|l| *l) => r.map(|_| "a"),
            r = b.leading.wait_for(|l| *l) => r.map(|_| "b"),
        }
    })
    .await
    .expect("someone leads")
    .expect("electors alive");

    // Several renewals later the same one still leads and the other never did.
    let renewed = writes(&client, 3).await;
    let spec = renewed.spec.expect("spec");
    assert_eq!(holder(&spec), Some(first));
    let (leader, follower) = if first == "a" {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    assert!(leader.is_leader());
    assert!(!follower.is_leader());
    assert!(
        !follower.leading.has_changed().expect("alive"),
        "the follower never published leadership"
    );
    assert_eq!(spec.lease_transitions, Some(0), "nobody took over");

    a.shut_down().await.expect("release");
    b.shut_down().await.expect("release");
    assert_eq!(lease_writes_with(&api, 500), 0);
}

#[tokio::test]
async fn the_leader_releases_on_shutdown_and_the_other_takes_over_at_once() {
    let (_api, client) = cluster().await;
    let mut a = Replica::spawn(client.clone(), "a");
    a.until(true, GUARD).await;
    let mut b = Replica::spawn(client.clone(), "b");
    // b has read the Lease and stays a follower while a renews.
    writes(&client, 2).await;
    assert!(!b.is_leader());

    let mut a_leading = a.leading.clone();
    let stopped = Instant::now();
    a.shut_down().await.expect("lease released");
    assert!(!*a_leading.borrow_and_update(), "a stepped down");

    // Well within the lease duration: b does not wait for expiry.
    b.until(true, LEASE_DURATION).await;
    let took_over = stopped.elapsed();
    assert!(took_over < LEASE_DURATION, "took {took_over:?}");

    let spec = lease(&client).await;
    assert_eq!(holder(&spec), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    b.shut_down().await.expect("release");
}

#[tokio::test]
async fn a_leader_that_cannot_renew_steps_down_and_the_other_takes_over_after_expiry() {
    let (api, client) = cluster().await;
    // a reaches the fake as `localhost`, b and the test as 127.0.0.1.
    let mut a = Replica::spawn(client_via(&api, "localhost").await, "a");
    a.until(true, GUARD).await;
    let mut b = Replica::spawn(client.clone(), "b");
    writes(&client, 2).await;

    let broken = Instant::now();
    api.faults().inject(
        Fault::status(500)
            .on_path_segment("leases")
            .on_host("localhost"),
    );

    a.until(false, GUARD).await;
    let stepped_down = broken.elapsed();
    // It kept retrying until the deadline (its last good renewal was sent about a retry period
    // before the faults), and stopped before the Lease could expire for anyone else.
    let failed_renewals = api
        .log()
        .filter(|r| r.host == "localhost" && r.method == "PUT" && r.status == 500)
        .len();
    assert!(failed_renewals >= 2, "{failed_renewals} failed renewals");
    assert!(
        stepped_down >= RENEW_DEADLINE / 2,
        "stepped down after {stepped_down:?}"
    );
    assert!(
        stepped_down < LEASE_DURATION,
        "stepped down after {stepped_down:?}"
    );
    let last = lease(&client).await;
    assert_eq!(holder(&last), Some("a"), "not yet expired");
    assert!(!b.is_leader(), "b waits for expiry");

    b.until(true, GUARD).await;
    assert!(!a.is_leader(), "a never came back");
    let spec = lease(&client).await;
    assert_eq!(holder(&spec), Some("b"));
    assert_eq!(spec.lease_transitions, Some(1));
    let expiry = time(&last.renew_time)
        + SignedDuration::from_secs(last.lease_duration_seconds.expect("duration").into());
    assert!(
        time(&spec.acquire_time) >= expiry,
        "b acquired at {} before a's lease expired at {expiry}",
        time(&spec.acquire_time)
    );
    assert!(
        api.log()
            .filter(|r| r.host == "localhost" && r.status == 500)
            .len()
            >= 2,
        "a kept trying against the faults"
    );

    b.shut_down().await.expect("release");
    // a's release attempt fails (500s) or finds nothing to release; either way it returns.
    let _ = a.shut_down().await;
}

#[tokio::test]
async fn a_renewal_against_a_stale_resource_version_is_a_lost_race() {
    let (api, client) = cluster().await;
    // A renew deadline far beyond the retry period: stepping down quickly proves the 409 path.
    let cfg = config("a").timings(
        Duration::from_secs(30),
        Duration::from_secs(20),
        RETRY_PERIOD,
    );
    let mut a = Replica::start(client.clone(), cfg, "a");
    a.until(true, GUARD).await;

    // Another writer takes the Lease behind a's back.
    let leases = leases(&client);
    let mut stolen = leases.get(LEASE).await.expect("get");
    let now = Timestamp::now();
    stolen.spec = Some(LeaseSpec {
        holder_identity: Some("intruder".into()),
        renew_time: Some(MicroTime(now)),
        acquire_time: Some(MicroTime(now)),
        lease_duration_seconds: Some(60),
        lease_transitions: Some(1),
        ..LeaseSpec::default()
    });
    let stolen_at = Instant::now();
    let stolen = leases
        .replace(LEASE, &PostParams::default(), &stolen)
        .await
        .expect("steal");

    a.until(false, Duration::from_secs(2)).await;
    assert!(
        stolen_at.elapsed() < Duration::from_secs(2),
        "stepped down on the conflict, not at the renew deadline"
    );
    assert!(lease_writes_with(&api, 409) >= 1, "a's renewal got a 409");

    // a now follows: it reads the valid foreign Lease and leaves it alone.
    let reads = lease_reads(&api);
    logged(&api, "three more follower reads", |api| {
        lease_reads(api) >= reads + 3
    })
    .await;
    let after = leases.get(LEASE).await.expect("get");
    assert_eq!(
        after.metadata.resource_version, stolen.metadata.resource_version,
        "a did not overwrite the intruder"
    );
    assert!(!a.is_leader());
    a.shut_down()
        .await
        .expect("nothing to release: not the holder");
    let untouched = lease(&client).await;
    assert_eq!(holder(&untouched), Some("intruder"));
}

/// Waits (within [`GUARD`]) until the fake's request log satisfies `done`.
async fn logged(api: &ApiServerFake, what: &str, done: impl Fn(&ApiServerFake) -> bool) {
    timeout(GUARD, async {
        loop {
            let seen = api.log().records().len();
            if done(api) {
                return;
            }
            api.log().wait_for(seen + 1).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("not logged within {GUARD:?}: {what}"));
}

/// Lease reads the fake has answered.
fn lease_reads(api: &ApiServerFake) -> usize {
    api.log()
        .filter(|r| r.method == "GET" && r.path.ends_with(&format!("/leases/{LEASE}")))
        .len()
}

#[tokio::test]
async fn contenders_racing_for_an_expired_lease_produce_one_winner_and_one_409() {
    let (api, client) = cluster().await;
    let leases = leases(&client);
    let long_ago = Timestamp::now() - SignedDuration::from_secs(3600);
    leases
        .create(
            &PostParams::default(),
            &Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some("gone".into()),
                    renew_time: Some(MicroTime(long_ago)),
                    acquire_time: Some(MicroTime(long_ago)),
                    lease_duration_seconds: Some(1),
                    lease_transitions: Some(4),
                    ..LeaseSpec::default()
                }),
            },
        )
        .await
        .expect("create expired lease");
    // Both takeovers are in flight together: each read the same resourceVersion.
    api.faults().inject(
        Fault::latency(Duration::from_millis(300))
            .on_method("PUT")
            .on_path_segment("leases")
            .times(2),
    );
    let mut a = Replica::spawn(client.clone(), "a");
    let mut b = Replica::spawn(client.clone(), "b");

    let winner = timeout(GUARD, async {
        tokio::select! {
            r = a.leading.wait_for(|l| *l) => r.map(|_| "a"),
            r = b.leading.wait_for(|l| *l) => r.map(|_| "b"),
        }
    })
    .await
    .expect("someone leads")
    .expect("electors alive");
    // The loser's answer may still be on its way when the winner's arrives.
    logged(&api, "the loser's takeover answered 409", |api| {
        lease_writes_with(api, 409) >= 1
    })
    .await;
    assert_eq!(lease_writes_with(&api, 409), 1, "one lost race");

    let spec = writes(&client, 2).await.spec.expect("spec");
    assert_eq!(holder(&spec), Some(winner));
    assert_eq!(spec.lease_transitions, Some(5), "one takeover counted");
    let loser = if winner == "a" { &mut b } else { &mut a };
    assert!(!loser.is_leader());
    assert!(
        !loser.leading.has_changed().expect("alive"),
        "the loser never led"
    );

    a.shut_down().await.expect("release");
    b.shut_down().await.expect("release");
}

#[tokio::test]
async fn the_lease_records_holder_duration_transitions_and_times() {
    let (api, client) = cluster().await;
    let before = Timestamp::now();
    let mut a = Replica::spawn(client.clone(), "a");
    a.until(true, GUARD).await;
    let after = Timestamp::now();

    let created = lease(&client).await;
    assert_eq!(holder(&created), Some("a"));
    assert_eq!(created.lease_duration_seconds, Some(1), "600 ms rounds up");
    assert_eq!(created.lease_transitions, Some(0));
    assert_eq!(created.acquire_time, created.renew_time);
    let acquired = time(&created.acquire_time);
    assert!(
        acquired >= before - SignedDuration::from_micros(1) && acquired <= after,
        "acquireTime {acquired} within [{before}, {after}]"
    );
    // On the wire: RFC 3339 in UTC with microseconds.
    let raw = api
        .object("coordination.k8s.io", "leases", NAMESPACE, LEASE)
        .expect("stored lease");
    for field in ["acquireTime", "renewTime"] {
        let text = raw["spec"][field].as_str().expect("string");
        assert_eq!(
            text.len(),
            "2025-01-01T00:00:00.000000Z".len(),
            "{field}: {text}"
        );
        assert!(
            text.ends_with('Z') && text.as_bytes()[19] == b'.',
            "{field}: {text}"
        );
    }

    let renewed = writes(&client, 1).await.spec.expect("spec");
    assert_eq!(holder(&renewed), Some("a"));
    assert_eq!(
        renewed.acquire_time, created.acquire_time,
        "kept on renewal"
    );
    assert_eq!(renewed.lease_transitions, Some(0));
    assert!(time(&renewed.renew_time) > time(&created.renew_time));

    a.shut_down().await.expect("release");
    let released = lease(&client).await;
    assert_eq!(holder(&released), None);
    assert_eq!(released.acquire_time, None);
    assert_eq!(released.lease_duration_seconds, Some(1));
    assert_eq!(released.lease_transitions, Some(0), "kept on release");
    assert!(time(&released.renew_time) >= time(&renewed.renew_time));

    let mut b = Replica::spawn(client.clone(), "b");
    b.until(true, GUARD).await;
    let taken = lease(&client).await;
    assert_eq!(holder(&taken), Some("b"));
    assert_eq!(taken.lease_transitions, Some(1));
    assert!(time(&taken.acquire_time) >= time(&released.renew_time));
    assert_eq!(taken.acquire_time, taken.renew_time);
    b.shut_down().await.expect("release");
}

#[tokio::test]
async fn an_invalid_config_is_rejected_before_any_request() {
    let (api, client) = cluster().await;
    let err = LeaderElector::new(
        client,
        config("a").timings(LEASE_DURATION, LEASE_DURATION, RETRY_PERIOD),
    )
    .expect_err("renew deadline must be shorter than the lease");
    assert_eq!(err.kind(), "invalid_config");
    assert_eq!(
        api.log().filter(|r| r.path.contains("leases")).len(),
        0,
        "nothing sent"
    );
}
