//! The shared read plane against the fake: single-flight, budget order, measurement.

use std::time::Duration;

use akv_client::cache::{BudgetConfig, ReadConfig, ReadPlane};
use akv_client::{IdentityRef, KeyVaultProvider, ObjectKind, ObjectRef};
use testkit::clock::Clock;
use testkit::faults::{Fault, Outcome};
use testkit::vault::SecretSpec;

use crate::support::{VAULT, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_reads_of_one_object_cost_one_get() {
    let w = World::start_with_clock(Clock::manual()).await;
    w.kv.set_secret(VAULT, "shared", SecretSpec::new("v"))
        .expect("seed");
    let latency = Duration::from_secs(5);
    w.kv.faults()
        .inject(Fault::latency(latency).authenticated_only().times(1));
    let plane = ReadPlane::new(w.provider(), ReadConfig::default(), None).expect("plane");
    let kv = plane
        .vault(&w.url(), &IdentityRef::default_identity())
        .expect("vault");
    let obj = ObjectRef::latest(&w.url(), ObjectKind::Secret, "shared");

    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (kv, obj) = (kv.clone(), obj.clone());
            tokio::spawn(async move { kv.get(&obj).await })
        })
        .collect();
    // The fake holds the one authorized GET; wait until all 1,000 callers wait on it.
    w.kv.faults().wait_delayed(1).await;
    plane.wait_waiting(1000).await;
    w.kv.clock().advance(latency);
    for t in tasks {
        let got = t.await.expect("task").expect("read");
        assert!(!got.version().is_empty());
    }
    assert_eq!(
        w.kv.log().counts().authorized,
        1,
        "exactly one authorized GET"
    );
    assert_eq!(plane.waiting(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_budget_exhausted_a_first_read_overtakes_queued_refreshes() {
    let w = World::start().await;
    for name in ["a", "b", "c", "d"] {
        w.kv.set_secret(VAULT, name, SecretSpec::new(name))
            .expect("seed");
    }
    let cfg = ReadConfig {
        ttl: Duration::ZERO, // every read of a cached object is a refresh
        budget: BudgetConfig {
            requests: 3,
            window: Duration::from_millis(600), // one token per 200 ms
        },
        ..Default::default()
    };
    let plane = ReadPlane::new(w.provider(), cfg, None).expect("plane");
    let kv = plane
        .vault(&w.url(), &IdentityRef::default_identity())
        .expect("vault");
    let obj = |n: &str| ObjectRef::latest(&w.url(), ObjectKind::Secret, n);
    for n in ["a", "b", "c"] {
        kv.get(&obj(n)).await.expect("first read");
    }
    let budget = plane.budget(&w.url());
    let mut tasks = Vec::new();
    for n in ["a", "b", "c"] {
        let (kv, o) = (kv.clone(), obj(n));
        tasks.push(tokio::spawn(async move { kv.get(&o).await }));
    }
    budget.wait_queued(0, 3).await;
    let (kv2, o) = (kv.clone(), obj("d"));
    tasks.push(tokio::spawn(async move { kv2.get(&o).await }));
    for t in tasks {
        t.await.expect("task").expect("read");
    }
    let order: Vec<String> =
        w.kv.log()
            .filter(|r| r.outcome == Outcome::Authorized)
            .into_iter()
            .map(|r| {
                r.path
                    .trim_start_matches("/secrets/")
                    .trim_end_matches('/')
                    .to_owned()
            })
            .collect();
    assert_eq!(order[..3], ["a", "b", "c"]);
    assert_eq!(
        order[3], "d",
        "the first read of d overtook the refreshes: {order:?}"
    );
    let mut refreshes = order[4..].to_vec();
    refreshes.sort();
    assert_eq!(refreshes, ["a", "b", "c"]);
}

/// The closing measurement: 1,000 objects × 10 concurrent readers, 20 ms latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement: run with --ignored --nocapture"]
async fn measure_a_thousand_objects_times_ten_readers() {
    use futures::StreamExt as _;
    let w = World::start().await;
    for i in 0..1000 {
        w.kv.set_secret(VAULT, &format!("s{i}"), SecretSpec::new("v"))
            .expect("seed");
    }
    w.kv.faults()
        .inject(Fault::latency(Duration::from_millis(20)).authenticated_only());
    let plane = ReadPlane::new(w.provider(), ReadConfig::default(), None).expect("plane");
    let kv = plane
        .vault(&w.url(), &IdentityRef::default_identity())
        .expect("vault");
    let started = std::time::Instant::now();
    let readers: Vec<_> = (0..10)
        .map(|_| {
            let (kv, url) = (kv.clone(), w.url());
            tokio::spawn(async move {
                futures::stream::iter(0..1000)
                    .map(|i| {
                        let (kv, o) = (
                            kv.clone(),
                            ObjectRef::latest(&url, ObjectKind::Secret, &format!("s{i}")),
                        );
                        async move { kv.get(&o).await }
                    })
                    .buffer_unordered(50)
                    .for_each(|r| async move {
                        r.expect("read");
                    })
                    .await;
            })
        })
        .collect();
    for r in readers {
        r.await.expect("reader");
    }
    let elapsed = started.elapsed();
    let c = w.kv.log().counts();
    println!(
        "1000 objects x 10 readers: {} authorized GETs, {} challenges, {:?} wall",
        c.authorized, c.challenges, elapsed
    );
    assert_eq!(c.authorized, 1000);
}
