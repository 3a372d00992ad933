//! Shared test plumbing: a fake cluster with the CRD installed, the upstream fixtures, kubectl.

use std::path::{Path, PathBuf};

use kube::Client;
use kube::api::ApiResource;
use serde_json::Value;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};

/// A started API server fake and a kube client for it, built from the kubeconfig it writes.
pub async fn cluster() -> (ApiServerFake, Client) {
    testkit::install_crypto_provider();
    let api = ApiServerFake::start(ApiServerOptions::default())
        .await
        .expect("start the API server fake");
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    (api, Client::try_from(config).expect("client"))
}

/// [`cluster`] with `k8s_sync::crd()` installed and Established.
pub async fn cluster_with_crd() -> (ApiServerFake, Client) {
    let (api, client) = cluster().await;
    k8s_sync::crd::install(
        &client,
        &k8s_sync::crd().expect("crd"),
        std::time::Duration::from_secs(10),
    )
    .await
    .expect("CRD installed and established");
    (api, client)
}

/// The `spv.no/<version>` AzureKeyVaultSecret resource, for dynamic (untyped) access.
pub fn akvs_resource(version: &str) -> ApiResource {
    ApiResource {
        group: "spv.no".into(),
        version: version.into(),
        api_version: format!("spv.no/{version}"),
        kind: "AzureKeyVaultSecret".into(),
        plural: "azurekeyvaultsecrets".into(),
    }
}

/// The status code, reason and body of an API error.
pub fn api_status(err: kube::Error) -> (u16, String, Value) {
    match err {
        kube::Error::Api(s) => (
            s.code,
            s.reason.clone(),
            serde_json::to_value(&s).expect("status json"),
        ),
        other => panic!("expected an API error, got {other}"),
    }
}

/// `tests/fixtures/upstream-scenarios`: verbatim copies of upstream's manifests.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upstream-scenarios")
}

/// One YAML document of an upstream manifest file.
#[derive(Clone, Debug)]
pub struct Doc {
    /// File name.
    pub file: String,
    /// The file's text (all its documents).
    pub text: String,
    /// This document, parsed.
    pub value: Value,
}

/// Every document of every upstream fixture file, in file-name order.
pub fn upstream_docs() -> Vec<Doc> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("read fixture");
        let file = path
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        for value in serde_saphyr::from_multiple::<Value>(&text).expect("parse fixture") {
            docs.push(Doc {
                file: file.clone(),
                text: text.clone(),
                value,
            });
        }
    }
    docs
}

/// The upstream documents of kind AzureKeyVaultSecret.
pub fn upstream_akvs() -> Vec<Doc> {
    upstream_docs()
        .into_iter()
        .filter(|d| d.value["kind"] == "AzureKeyVaultSecret")
        .collect()
}

/// The real `kubectl`, with a kubeconfig for the fake in a directory of its own.
pub struct Kubectl {
    _dir: tempfile::TempDir,
    kubectl: testkit::apiserver::Kubectl,
}

impl Kubectl {
    pub fn new(api: &ApiServerFake) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path()).expect("kubeconfig");
        let kubectl = testkit::apiserver::Kubectl::new(kubeconfig, dir.path());
        Self { _dir: dir, kubectl }
    }

    /// Runs kubectl and returns (success, stdout, stderr).
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let out = self
            .kubectl
            .run(args, stdin)
            .await
            .expect("kubectl is installed on our build machines");
        (out.success, out.stdout, out.stderr)
    }

    /// Runs kubectl and returns stdout, failing the test when kubectl fails.
    pub async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed:\n{err}\n{out}");
        out
    }
}
