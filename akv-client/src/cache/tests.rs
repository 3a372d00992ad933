use super::*;

#[tokio::test(start_paused = true)]
async fn queued_first_reads_are_admitted_before_queued_refreshes() {
    let budget = Arc::new(Budget::new(
        BudgetConfig {
            requests: 1,
            window: Duration::from_secs(1),
        },
        None,
    ));
    budget.acquire(Priority::First).await; // empties the bucket
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for (i, p) in [(0, Priority::Refresh), (1, Priority::Refresh)] {
        let (b, o) = (budget.clone(), order.clone());
        tasks.push(tokio::spawn(async move {
            b.acquire(p).await;
            lock(&o).push(i);
        }));
    }
    budget.wait_queued(0, 2).await;
    let (b, o) = (budget.clone(), order.clone());
    tasks.push(tokio::spawn(async move {
        b.acquire(Priority::First).await;
        lock(&o).push(2);
    }));
    budget.wait_queued(1, 2).await;
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(*lock(&order), [2, 0, 1]);
}

#[tokio::test(start_paused = true)]
async fn the_bucket_refills_at_the_configured_rate() {
    let budget = Budget::new(
        BudgetConfig {
            requests: 10,
            window: Duration::from_secs(10),
        },
        None,
    );
    let start = Instant::now();
    for _ in 0..15 {
        budget.acquire(Priority::First).await;
    }
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

/// A vault of secrets named `s…` (anything else is 404), counting reads.
#[derive(Debug, Default)]
struct CountingVault {
    reads: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl KeyVault for CountingVault {
    async fn get(&self, obj: &ObjectRef) -> Result<VaultObject> {
        lock(&self.reads).push(obj.name.clone());
        if !obj.name.starts_with('s') {
            return Err(Error::MissingField {
                kind: "secret",
                object: obj.name.clone(),
                field: "value",
            });
        }
        Ok(VaultObject::Secret(crate::object::SecretObject {
            name: obj.name.clone(),
            version: "v1".into(),
            content_type: None,
            value: "value".into(),
            expires: None,
        }))
    }

    async fn list(&self, _vault: &VaultUrl, _kind: ObjectKind) -> Result<Vec<ObjectMeta>> {
        Ok(Vec::new())
    }
}

#[derive(Debug, Default)]
struct CountingProvider(Arc<CountingVault>);

impl KeyVaultProvider for CountingProvider {
    fn vault(&self, _url: &VaultUrl, _identity: &IdentityRef) -> Result<Arc<dyn KeyVault>> {
        Ok(self.0.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn values_past_their_ttl_are_evicted_and_old_keys_forgotten() {
    let provider = Arc::new(CountingProvider::default());
    let cfg = ReadConfig {
        ttl: Duration::from_secs(60),
        forget_after: Duration::from_secs(300),
        sweep_interval: Duration::from_secs(30),
        ..Default::default()
    };
    let plane = ReadPlane::new(provider.clone(), cfg, None).expect("plane");
    let url = VaultUrl::from_name("v", "").expect("url");
    let kv = plane
        .vault(&url, &IdentityRef::default_identity())
        .expect("vault");
    let get = |name: &str| {
        let (kv, obj) = (
            kv.clone(),
            ObjectRef::latest(&url, ObjectKind::Secret, name),
        );
        async move { kv.get(&obj).await }
    };
    let size = |keys, values| CacheSize { keys, values };

    get("sa").await.expect("sa");
    get("sb").await.expect("sb");
    get("sa").await.expect("hit");
    assert_eq!(plane.cache_size(), size(2, 2));
    assert_eq!(lock(&provider.0.reads).len(), 2, "the third read was a hit");

    // Past the TTL, the next lookup sweeps: both values go, their keys stay (refresh priority).
    tokio::time::advance(Duration::from_secs(61)).await;
    get("sc").await.expect("sc");
    assert_eq!(plane.cache_size(), size(3, 1));

    // Errors are not cached and leave no key behind.
    get("missing").await.expect_err("not found");
    assert_eq!(plane.cache_size(), size(3, 1));

    // Past TTL + forget_after for sa/sb: forgotten. sc's value expired; this read refreshes it.
    tokio::time::advance(Duration::from_secs(301)).await;
    get("sc").await.expect("sc again");
    assert_eq!(plane.cache_size(), size(1, 1));
    assert_eq!(
        *lock(&provider.0.reads),
        ["sa", "sb", "sc", "missing", "sc"]
    );
}

#[tokio::test(start_paused = true)]
async fn expired_values_wait_for_their_next_access_or_a_sweep_which_also_runs_on_demand() {
    let provider = Arc::new(CountingProvider::default());
    let cfg = ReadConfig {
        ttl: Duration::from_secs(10),
        forget_after: Duration::from_secs(10),
        sweep_interval: Duration::from_secs(3600),
        ..Default::default()
    };
    let plane = ReadPlane::new(provider.clone(), cfg, None).expect("plane");
    let url = VaultUrl::from_name("v", "").expect("url");
    let kv = plane
        .vault(&url, &IdentityRef::default_identity())
        .expect("vault");
    for name in ["s1", "s2"] {
        kv.get(&ObjectRef::latest(&url, ObjectKind::Secret, name))
            .await
            .expect("read");
    }
    tokio::time::advance(Duration::from_secs(11)).await;
    // No sweep is due; the expired entry read again is replaced, the other one stays put.
    kv.get(&ObjectRef::latest(&url, ObjectKind::Secret, "s1"))
        .await
        .expect("refresh");
    assert_eq!(
        plane.cache_size(),
        CacheSize { keys: 2, values: 2 },
        "no sweep yet"
    );
    plane.sweep();
    assert_eq!(plane.cache_size(), CacheSize { keys: 2, values: 1 });
    tokio::time::advance(Duration::from_secs(20)).await;
    plane.sweep();
    assert_eq!(plane.cache_size(), CacheSize::default());
}

#[tokio::test(start_paused = true)]
async fn refusals_are_spaced_at_the_budget_rate_after_tokens_owed_to_first_reads() {
    let budget = Arc::new(Budget::new(
        BudgetConfig {
            requests: 2,
            window: Duration::from_secs(2),
        },
        None,
    ));
    let cap = Duration::from_secs(60);
    // A full bucket admits refreshes.
    assert_eq!(budget.try_refresh(cap), Ok(()));
    assert_eq!(budget.try_refresh(cap), Ok(()));
    // Empty: each refusal gets the next one-second slot.
    let waits: Vec<Duration> = (0..3)
        .map(|_| budget.try_refresh(cap).expect_err("spent"))
        .collect();
    assert_eq!(
        waits,
        [1, 2, 3].map(Duration::from_secs),
        "the next token, then one slot each"
    );
    // A waiting first read is served before any refresh, even when a token is free.
    let b = budget.clone();
    let first = tokio::spawn(async move { b.acquire(Priority::First).await });
    budget.wait_queued(1, 0).await;
    let refused = budget.try_refresh(cap).expect_err("a first read waits");
    assert_eq!(
        refused,
        Duration::from_secs(4),
        "behind the earlier refusals"
    );
    first.await.expect("first read admitted");
    // The cap bounds the wait.
    assert_eq!(
        budget.try_refresh(Duration::from_millis(10)),
        Err(Duration::from_millis(10))
    );
}

#[tokio::test(start_paused = true)]
async fn with_defer_a_refresh_over_budget_fails_at_once_and_a_first_read_still_waits() {
    let provider = Arc::new(CountingProvider::default());
    let cfg = ReadConfig {
        ttl: Duration::from_secs(10),
        budget: BudgetConfig {
            requests: 1,
            window: Duration::from_secs(5),
        },
        refresh_over_budget: OverBudget::Defer,
        ..Default::default()
    };
    let plane = ReadPlane::new(provider.clone(), cfg, None).expect("plane");
    let url = VaultUrl::from_name("v", "").expect("url");
    let kv = plane
        .vault(&url, &IdentityRef::default_identity())
        .expect("vault");
    let obj = |name: &str| ObjectRef::latest(&url, ObjectKind::Secret, name);
    kv.get(&obj("sa"))
        .await
        .expect("first read spends the bucket");
    tokio::time::advance(Duration::from_secs(11)).await; // sa expired; 2.2 tokens' time passed
    kv.get(&obj("sa")).await.expect("refresh with a token");

    // The bucket is empty: a refresh is refused at once with a time to come back.
    tokio::time::advance(Duration::from_secs(11)).await;
    kv.get(&obj("sb"))
        .await
        .expect("first read takes the token");
    let start = Instant::now();
    let err = kv.get(&obj("sa")).await.expect_err("deferred");
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting");
    assert_eq!(err.deferred(), Some(Duration::from_secs(5)), "{err}");
    assert_eq!(err.kind(), "over_budget");
    // A first read waits for its token instead.
    kv.get(&obj("sc")).await.expect("first read waits");
    assert_eq!(start.elapsed(), Duration::from_secs(5));
    assert_eq!(*lock(&provider.0.reads), ["sa", "sa", "sb", "sc"]);
}

#[tokio::test(start_paused = true)]
async fn while_first_reads_are_made_refreshes_leave_them_a_reserve() {
    // 10 tokens per 100 s: a reserve of 1 token, held for 10 s after a first read.
    let budget = Budget::new(
        BudgetConfig {
            requests: 10,
            window: Duration::from_secs(100),
        },
        None,
    );
    let cap = Duration::from_secs(600);
    assert_eq!(
        budget.try_refresh(cap),
        Ok(()),
        "no first reads: no reserve"
    );
    for _ in 0..7 {
        budget.acquire(Priority::First).await;
    }
    // Two tokens left, one of them reserved for first reads.
    assert_eq!(budget.try_refresh(cap), Ok(()));
    assert!(
        budget.try_refresh(cap).is_err(),
        "the last token is reserved"
    );
    budget.acquire(Priority::First).await; // the reserve serves a first read at once
    // Ten seconds without first reads: the reserve is released (and one token has refilled).
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(budget.try_refresh(cap), Ok(()));
}
