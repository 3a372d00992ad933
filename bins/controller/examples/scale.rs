//! Scale measurement: the built `akv2k8s-controller` as a process against testkit's API server,
//! Key Vault and Entra fakes (in this process), syncing N AzureKeyVaultSecrets (one Key Vault
//! secret each, Opaque output) next to M unrelated Secrets. Numbers are printed, never asserted.
//!
//! ```sh
//! cargo build --release -p akv2k8s-controller --examples
//! target/release/examples/scale [--akvs N] [--unrelated M] [--controller PATH]
//!     [--resync SECS] [--concurrency C] [--deadline SECS] [--kv-latency-ms MS]
//! ```
//!
//! `--kv-latency-ms` delays every authorized Key Vault answer (DESIGN's target: initial sync of
//! 10,000 AKVS with 20 ms Key Vault latency limited only by the budget).
//!
//! Reports the time from the first AKVS create until every AKVS is `Ready=True`, the API
//! requests (and writes) and authorized Key Vault requests made meanwhile, the controller's
//! RSS and high-water mark after sync and, when `--resync` is given, the steady-state requests
//! over two `--azure-resync-period`s.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use kube::Client;
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};
use testkit::certs::TestCa;
use testkit::clock::Clock;
use testkit::entra::{ClientSpec, EntraFake, EntraOptions};
use testkit::faults::{Fault, Outcome, RequestRecord};
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{KeyVaultFake, KeyVaultOptions, Permissions, SecretSpec, VaultSpec};

const VAULT: &str = "akv2k8sscalekv";
const NS: &str = "scale";
const CLIENT_SECRET: &str = "scale-controller-client-secret";
const UA_PREFIX: &str = "akv2k8s-controller/";
/// The CRD as shipped (`crds/`).
const CRD_YAML: &str = include_str!("../../../crds/azurekeyvaultsecrets.spv.no.yaml");

struct Args {
    akvs: usize,
    unrelated: usize,
    controller: PathBuf,
    resync: Option<f64>,
    concurrency: usize,
    deadline: Duration,
    kv_latency: Option<Duration>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut akvs = 1000;
    let mut unrelated = None;
    let mut controller = PathBuf::from("target/release/akv2k8s-controller");
    let mut resync = None;
    let mut concurrency = 32;
    let mut deadline = Duration::from_secs(480);
    let mut kv_latency = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .with_context(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--akvs" => akvs = value()?.parse()?,
            "--unrelated" => unrelated = Some(value()?.parse()?),
            "--controller" => controller = PathBuf::from(value()?),
            "--resync" => resync = Some(value()?.parse()?),
            "--concurrency" => concurrency = value()?.parse()?,
            "--deadline" => deadline = Duration::from_secs_f64(value()?.parse()?),
            "--kv-latency-ms" => kv_latency = Some(Duration::from_millis(value()?.parse()?)),
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(Args {
        akvs,
        unrelated: unrelated.unwrap_or(akvs),
        controller,
        resync,
        concurrency,
        deadline,
        kv_latency,
    })
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn is_write(r: &RequestRecord) -> bool {
    matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
}

fn from_controller(r: &RequestRecord) -> bool {
    r.user_agent
        .as_deref()
        .is_some_and(|ua| ua.starts_with(UA_PREFIX))
}

/// API requests of the controller with `seq >= since`: total, writes (Leases excluded), and
/// counts by `METHOD resource`.
struct ApiStats {
    total: usize,
    writes: usize,
    by: BTreeMap<String, usize>,
}

fn api_stats(api: &ApiServerFake, since: u64) -> ApiStats {
    let records = api.log().filter(|r| r.seq >= since && from_controller(r));
    let mut by = BTreeMap::new();
    let mut writes = 0;
    for r in &records {
        if is_write(r) && !r.path.contains("/leases") {
            writes += 1;
        }
        let watch = r.query.contains("watch=true") || r.query.contains("watch=1");
        let resource = resource_of(&r.path);
        let verb = if watch { "WATCH" } else { r.method.as_str() };
        *by.entry(format!("{verb} {resource}")).or_insert(0) += 1;
    }
    ApiStats {
        total: records.len(),
        writes,
        by,
    }
}

/// The plural of a request path (`/api/v1/namespaces/x/secrets/y` → `secrets`, with a
/// `/status` suffix kept).
fn resource_of(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest: &[&str] = match segs.first() {
        Some(&"api") => segs.get(2..).unwrap_or_default(),
        Some(&"apis") => segs.get(3..).unwrap_or_default(),
        _ => return path.to_owned(),
    };
    let rest = match rest {
        ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
        other => other,
    };
    match rest {
        [plural, _, sub] => format!("{plural}/{sub}"),
        [plural, ..] => (*plural).to_owned(),
        [] => path.to_owned(),
    }
}

/// Authorized Key Vault GETs with `seq >= since`.
fn kv_authorized(kv: &KeyVaultFake, since: u64) -> usize {
    kv.log()
        .filter(|r| r.seq >= since && r.outcome == Outcome::Authorized && r.method == "GET")
        .len()
}

fn next_seq(log: &testkit::faults::RequestLog) -> u64 {
    log.counts().total as u64
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `make(0..n)`, `concurrency` at a time.
async fn create_all<F, Fut>(n: usize, concurrency: usize, make: F) -> anyhow::Result<()>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    futures::stream::iter(0..n)
        .map(make)
        .buffer_unordered(concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let n = args.akvs;
    testkit::install_crypto_provider();

    // The fakes, sharing one CA, clock and token issuer.
    let clock = Clock::system();
    let ca = Arc::new(TestCa::new()?);
    let issuer = Arc::new(TokenIssuer::new(clock.clone())?);
    let api = ApiServerFake::start(ApiServerOptions {
        clock: Some(clock.clone()),
        ca: Some(ca.clone()),
        history: Some(200_000),
    })
    .await?;
    let kv = KeyVaultFake::start(KeyVaultOptions {
        clock: Some(clock.clone()),
        issuer: Some(issuer.clone()),
        ca: Some(ca.clone()),
    })
    .await?;
    let entra = EntraFake::start(EntraOptions {
        clock: Some(clock),
        issuer: Some(issuer),
        ca: Some(ca.clone()),
        token_lifetime: None,
    })
    .await?;
    let principal = Principal::new("akv2k8s-controller");
    entra.add_client(ClientSpec::new(&principal).secret(CLIENT_SECRET));
    kv.create_vault(VaultSpec::new(VAULT).grant(&principal, Permissions::read_all()))?;
    if let Some(d) = args.kv_latency {
        kv.faults().inject(Fault::latency(d).authenticated_only());
    }

    let dir = tempfile::tempdir()?;
    let kubeconfig = api.write_kubeconfig(dir.path())?;
    let ca_file = ca.write_pem(dir.path())?;
    let client = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml())?,
            &Default::default(),
        )
        .await?,
    )?;

    println!(
        "akv2k8s-controller scale: {n} AKVS, {} unrelated Secrets, {} concurrent creates, Key Vault latency {} ms",
        args.unrelated,
        args.concurrency,
        args.kv_latency.unwrap_or_default().as_millis()
    );

    // Key Vault: N distinct secrets.
    let start = Instant::now();
    for i in 0..n {
        kv.set_secret(
            VAULT,
            &format!("secret-{i:05}"),
            SecretSpec::new(format!("value-{i:05}-{}", "x".repeat(32))),
        )?;
    }
    println!(
        "seeded Key Vault:        {n} secrets in {:.2} s",
        start.elapsed().as_secs_f64()
    );

    // Cluster: namespace, M unrelated Secrets, the CRD.
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": NS}}))?,
    )
    .await?;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), NS);
    let start = Instant::now();
    create_all(args.unrelated, args.concurrency, |i| {
        let secrets = secrets.clone();
        async move {
            let s: Secret = serde_json::from_value(json!({
                "metadata": {"name": format!("unrelated-{i:05}"), "labels": {"app": "unrelated"}},
                "type": "Opaque",
                "stringData": {"value": format!("unrelated-{i:05}-{}", "y".repeat(32))},
            }))?;
            secrets.create(&PostParams::default(), &s).await?;
            anyhow::Ok(())
        }
    })
    .await?;
    println!(
        "unrelated Secrets:       {} created in {:.2} s",
        args.unrelated,
        start.elapsed().as_secs_f64()
    );
    let crd: CustomResourceDefinition = serde_saphyr::from_str(CRD_YAML)?;
    k8s_sync::crd::install(&client, &crd, Duration::from_secs(30)).await?;

    // The controller.
    let period = args.resync.unwrap_or(30.0);
    let stderr_path = dir.path().join("controller.stderr");
    let resolve = format!("{},{}", kv.resolve_env(), entra.resolve_env());
    let http_port = free_port()?.to_string();
    let controller = Controller(
        Command::new(&args.controller)
            .args([
                "--cloudconfig=/etc/kubernetes/azure.json",
                "--version=1.8.4",
                "--v=2",
                "--logging-format=text",
                "--watch-all-namespaces=true",
                "--kube-resync-period=30",
            ])
            .arg(format!("--azure-resync-period={period}"))
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .env_clear()
            .envs([
                ("AUTH_TYPE", "environment"),
                ("AZURE_TENANT_ID", principal.tenant_id.as_str()),
                ("AZURE_CLIENT_ID", principal.app_id.as_str()),
                ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
                ("METRICS_ENABLED", "true"),
                ("HTTP_PORT", http_port.as_str()),
                ("RUNTIME_NAMESPACE", NS),
                ("POD_NAME", "scale"),
                ("AKV2K8S_RESOLVE", resolve.as_str()),
                ("SSL_CERT_FILE", ca_file.to_str().context("utf-8 path")?),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .with_context(|| format!("start {}", args.controller.display()))?,
    );
    let pid = controller.0.id();

    // Settle: wait until the controller has watched AKVS and Secrets, then a little more.
    let start = Instant::now();
    while api_stats(&api, 0)
        .by
        .keys()
        .filter(|k| k.starts_with("WATCH "))
        .count()
        < 2
    {
        if start.elapsed() > Duration::from_secs(60) {
            print_stderr_tail(&stderr_path);
            bail!("the controller did not start watching within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, hwm) = memory(pid);
    println!(
        "controller started:      watching after {:.2} s; RSS {} (HWM {}) with {} Secrets in the cluster",
        start.elapsed().as_secs_f64() - 2.0,
        mib(rss),
        mib(hwm),
        args.unrelated
    );

    // Watch the AKVS: names Ready=True.
    let akvs: Api<AzureKeyVaultSecret> = Api::namespaced(client.clone(), NS);
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(0usize);
    let watch_api = akvs.clone();
    let watching = tokio::spawn(async move {
        let mut ready = HashSet::new();
        let stream = watcher(watch_api, watcher::Config::default());
        let mut stream = std::pin::pin!(stream);
        while let Some(ev) = stream.next().await {
            let objs = match ev {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => vec![o],
                _ => continue,
            };
            for o in objs {
                let is_ready = o
                    .status
                    .as_ref()
                    .and_then(|s| s.ready())
                    .is_some_and(|c| c.status.to_string() == "True");
                let name = o.metadata.name.clone().unwrap_or_default();
                if is_ready {
                    ready.insert(name);
                } else {
                    ready.remove(&name);
                }
            }
            ready_tx.send_replace(ready.len());
        }
    });

    // Sync: create N AKVS, wait until all are Ready=True.
    let api_since = next_seq(api.log());
    let kv_since = next_seq(kv.log());
    let start = Instant::now();
    let mut creating = {
        let akvs = akvs.clone();
        let concurrency = args.concurrency;
        tokio::spawn(async move {
            create_all(n, concurrency, |i| {
                let akvs = akvs.clone();
                async move {
                    let a: AzureKeyVaultSecret = serde_json::from_value(json!({
                        "apiVersion": "spv.no/v2beta1",
                        "kind": "AzureKeyVaultSecret",
                        "metadata": {"name": format!("akvs-{i:05}"), "namespace": NS},
                        "spec": {
                            "vault": {"name": VAULT, "object": {"name": format!("secret-{i:05}"), "type": "secret"}},
                            "output": {"secret": {"name": format!("out-{i:05}"), "dataKey": "value"}},
                        },
                    }))?;
                    akvs.create(&PostParams::default(), &a).await?;
                    anyhow::Ok(())
                }
            })
            .await?;
            anyhow::Ok(start.elapsed())
        })
    };
    let mut created_in = None;
    let mut last_report = Instant::now();
    let mut peak_rss = 0;
    let synced = loop {
        let ready = *ready_rx.borrow_and_update();
        if ready >= n {
            break Some(start.elapsed());
        }
        if creating.is_finished() && created_in.is_none() {
            created_in = Some((&mut creating).await??);
            let ready = *ready_rx.borrow();
            println!(
                "  creates done:          {n} AKVS created in {:.2} s ({ready} Ready)",
                created_in.unwrap_or_default().as_secs_f64()
            );
            continue;
        }
        peak_rss = peak_rss.max(memory(pid).0);
        if start.elapsed() > args.deadline {
            break None;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            // Is the API server answering this program?
            let probe = Instant::now();
            let answered = tokio::time::timeout(Duration::from_secs(5), nss.get(NS)).await;
            let probe = match answered {
                Ok(Ok(_)) => format!("{:.0} ms", probe.elapsed().as_secs_f64() * 1000.0),
                Ok(Err(e)) => format!("error {e}"),
                Err(_) => "no answer in 5 s".to_owned(),
            };
            let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
            let problems = stderr
                .lines()
                .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
                .count();
            println!(
                "  t={:>6.1} s: {ready:>6} Ready, controller API requests {}, Key Vault authorized {}, RSS {}, probe GET {probe}, controller WARN/ERROR lines {problems}",
                start.elapsed().as_secs_f64(),
                api_stats(&api, api_since).total,
                kv_authorized(&kv, kv_since),
                mib(memory(pid).0)
            );
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), ready_rx.changed()).await;
    };
    let sync_stats = api_stats(&api, api_since);
    let sync_kv = kv_authorized(&kv, kv_since);
    let (rss, hwm) = memory(pid);
    let ready_now = *ready_rx.borrow();
    match synced {
        Some(d) => println!(
            "sync:                    {n} AKVS Ready=True in {:.2} s ({:.0}/s) from the first create",
            d.as_secs_f64(),
            n as f64 / d.as_secs_f64()
        ),
        None => println!(
            "sync:                    NOT DONE: {ready_now}/{n} Ready=True after {:.0} s",
            args.deadline.as_secs_f64()
        ),
    }
    println!(
        "  API requests: {} in all (incl. this program's creates); the controller's: {} ({} writes excluding Leases)",
        next_seq(api.log()) - api_since,
        sync_stats.total,
        sync_stats.writes
    );
    for (k, v) in &sync_stats.by {
        println!("    {k:<40} {v}");
    }
    println!(
        "  Key Vault authorized GETs: {sync_kv} (all Key Vault requests {})",
        next_seq(kv.log()) - kv_since
    );
    println!(
        "controller memory:       RSS {} HWM {} after sync (peak RSS sampled during sync {})",
        mib(rss),
        mib(hwm),
        mib(peak_rss.max(rss))
    );
    let out_secrets = api.names("", "secrets", Some(NS)).len();
    println!(
        "Secrets in {NS}:          {out_secrets} ({} unrelated + {} outputs)",
        args.unrelated,
        out_secrets.saturating_sub(args.unrelated)
    );

    // Steady state over two Azure resync periods.
    if synced.is_some()
        && let Some(period) = args.resync
    {
        let api_since = next_seq(api.log());
        let kv_since = next_seq(kv.log());
        let window = Duration::from_secs_f64(2.0 * period);
        tokio::time::sleep(window).await;
        let st = api_stats(&api, api_since);
        let (rss, hwm) = memory(pid);
        println!(
            "steady state ({:.0} s = 2 periods): controller API requests {}, writes {} (excl. Leases), Key Vault authorized {}; RSS {} HWM {}",
            window.as_secs_f64(),
            st.total,
            st.writes,
            kv_authorized(&kv, kv_since),
            mib(rss),
            mib(hwm)
        );
        for (k, v) in &st.by {
            println!("    {k:<40} {v}");
        }
    }

    watching.abort();
    drop(controller);
    if synced.is_none() {
        print_stderr_tail(&stderr_path);
    }
    Ok(())
}

fn print_stderr_tail(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    eprintln!("----- last lines of the controller's stderr -----");
    for l in &lines[lines.len().saturating_sub(30)..] {
        eprintln!("{l}");
    }
}
