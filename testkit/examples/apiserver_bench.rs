//! Measures the fake API server through kube's real client: create, list and watch of 10,000
//! objects. Numbers are printed, never asserted.
//!
//! ```sh
//! cargo run --release -p testkit --example apiserver_bench [-- <objects>]
//! ```

use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};

const CONCURRENCY: usize = 32;

fn rate(n: usize, d: Duration) -> String {
    format!(
        "{n} in {:.2} s = {:.0}/s",
        d.as_secs_f64(),
        n as f64 / d.as_secs_f64()
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    testkit::install_crypto_provider();
    let objects: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(10_000);
    let api = ApiServerFake::start(ApiServerOptions {
        history: Some(4 * objects),
        ..Default::default()
    })
    .await?;
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml())?,
        &Default::default(),
    )
    .await?;
    let client = Client::try_from(config)?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    println!(
        "fake API server bench: {objects} objects, {CONCURRENCY} concurrent requests through kube's client"
    );

    // Create.
    let start = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let secrets = secrets.clone();
            async move {
                let s: Secret = serde_json::from_value(json!({
                    "metadata": {"name": format!("s-{i:05}"), "labels": {"bench": "yes", "shard": (i % 10).to_string()}},
                    "stringData": {"value": format!("value-{i}")},
                }))?;
                secrets.create(&PostParams::default(), &s).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    println!("create:                 {}", rate(objects, start.elapsed()));

    // Full lists.
    let rounds = 20;
    let start = Instant::now();
    for _ in 0..rounds {
        let l = secrets.list(&ListParams::default()).await?;
        assert_eq!(l.items.len(), objects);
    }
    println!(
        "list all ({objects} items):  {} requests",
        rate(rounds, start.elapsed())
    );

    // Label-selected lists (a tenth of the objects).
    let start = Instant::now();
    for _ in 0..rounds {
        secrets
            .list(&ListParams::default().labels("shard=3"))
            .await?;
    }
    println!(
        "list 1/10 by label:     {} requests",
        rate(rounds, start.elapsed())
    );

    // Paged list.
    let start = Instant::now();
    let (mut pages, mut items) = (0, 0);
    let mut params = ListParams::default().limit(500);
    loop {
        let page = secrets.list(&params).await?;
        pages += 1;
        items += page.items.len();
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => break,
        }
    }
    println!(
        "paged list (limit 500): {} pages, {}",
        pages,
        rate(items, start.elapsed())
    );

    // Watch from "now" while objects are created: events per second as delivered.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let stream = cms.watch(&WatchParams::default().timeout(290), &rv).await?;
    let watcher = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut n = 0;
        let start = Instant::now();
        while let Some(ev) = stream.try_next().await? {
            if matches!(ev, WatchEvent::Added(_)) {
                n += 1;
                if n == objects {
                    break;
                }
            }
        }
        anyhow::Ok(start.elapsed())
    });
    api.watches().wait_open(1).await;
    let start = Instant::now();
    futures::stream::iter(0..objects)
        .map(|i| {
            let cms = cms.clone();
            async move {
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": format!("c-{i:05}")}, "data": {"k": "v"}}),
                )?;
                cms.create(&PostParams::default(), &cm).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?;
    let created = start.elapsed();
    let delivered = watcher.await??;
    println!(
        "watch while creating:   {} events (creates took {:.2} s)",
        rate(objects, delivered),
        created.as_secs_f64()
    );

    // A new watch replaying the whole history.
    let start = Instant::now();
    let stream = cms.watch(&WatchParams::default().timeout(290), &rv).await?;
    let mut stream = std::pin::pin!(stream);
    let mut n = 0;
    while n < objects {
        if let Some(WatchEvent::Added(_)) = stream.try_next().await? {
            n += 1;
        } else {
            break;
        }
    }
    println!(
        "watch replay from rv:   {} events",
        rate(n, start.elapsed())
    );
    println!("requests served:        {}", api.log().counts().total);
    Ok(())
}
