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
