//! The built `akv2k8s-controller` against testkit's fake API server, with the chart's argv: it
//! serves `/healthz`, `/readyz` and `/metrics`, takes the Lease, and on SIGTERM releases it and
//! exits 0.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use testkit::apiserver::ApiServerFake;

const DEADLINE: Duration = Duration::from_secs(30);

/// Kills the child if the test fails before it exits.
struct Controller(Child);

impl Drop for Controller {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// GETs `url` until it answers 200, within [`DEADLINE`]; returns the body. The controller is
/// another process, so there is no channel to await: this is what a readiness probe does.
async fn get_ok(http: &reqwest::Client, url: &str) -> String {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(resp) = http.get(url).send().await
                && resp.status() == reqwest::StatusCode::OK
            {
                return resp.text().await.expect("body");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} did not answer 200 within {DEADLINE:?}"))
}

/// The Lease's holder once `pred` holds for it, within [`DEADLINE`].
async fn lease_holder(leases: &Api<Lease>, pred: impl Fn(Option<&str>) -> bool) -> Option<String> {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Ok(lease) = leases.get("akv2k8s-controller").await {
                let holder = lease
                    .spec
                    .and_then(|s| s.holder_identity)
                    .filter(|h| !h.is_empty());
                if pred(holder.as_deref()) {
                    return holder;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("Lease state within the deadline")
}

#[tokio::test]
async fn serves_probes_and_metrics_leads_and_stops_on_sigterm() {
    testkit::install_crypto_provider();
    let api = ApiServerFake::start(Default::default())
        .await
        .expect("API server");
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("config"),
    )
    .expect("client");
    k8s_sync::crd::install(
        &client,
        &k8s_sync::crd().expect("crd"),
        std::time::Duration::from_secs(30),
    )
    .await
    .expect("CRD installed and established");
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, api.kubeconfig_yaml()).expect("write kubeconfig");
    let port = free_port();

    let child = Command::new(env!("CARGO_BIN_EXE_akv2k8s-controller"))
        .args([
            "--cloudconfig=/etc/kubernetes/azure.json",
            "--version=1.8.4",
            "--v=2",
            "--logging-format=text",
            "--watch-all-namespaces=true",
            "--kube-resync-period=30",
            "--azure-resync-period=30",
        ])
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        // The chart's argv plus leader election, which is off by default.
        .arg("--leader-elect")
        .env_clear()
        .envs([
            ("AUTH_TYPE", "environment"),
            ("AZURE_TENANT_ID", "00000000-0000-0000-0000-000000000001"),
            ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000002"),
            ("AZURE_CLIENT_SECRET", "not-used-without-AKVS"),
            ("METRICS_ENABLED", "true"),
            ("RUNTIME_NAMESPACE", "default"),
            ("POD_NAME", "replica-0"),
        ])
        .env("HTTP_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start akv2k8s-controller");
    let mut controller = Controller(child);

    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(get_ok(&http, &format!("{base}/healthz")).await, "");
    assert_eq!(get_ok(&http, &format!("{base}/readyz")).await, "ok");
    let metrics = get_ok(&http, &format!("{base}/metrics")).await;
    // k8s-sync's metrics on the root registry (labelled families appear with their first sample).
    assert!(metrics.contains("akv2k8s_sync_queue_depth 0"), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");

    let leases: Api<Lease> = Api::namespaced(client, "default");
    let holder = lease_holder(&leases, |h| h.is_some()).await;
    assert_eq!(holder.as_deref(), Some("replica-0"));

    let pid = controller.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        let status = controller.0.wait();
        (controller, status)
    });
    let (_controller, status) = tokio::time::timeout(DEADLINE, status)
        .await
        .expect("exits after SIGTERM")
        .expect("wait task");
    assert_eq!(status.expect("status").code(), Some(0), "graceful exit");
    assert_eq!(
        lease_holder(&leases, |h| h.is_none()).await,
        None,
        "Lease released"
    );
}
