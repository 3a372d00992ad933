//! `akv2k8s render`: what it prints for upstream's scenario manifests is what the controller
//! writes for them; errors name file, document and field; values are masked unless asked.
//!
//! The comparison (`k8s_sync::preview::comparable` on both sides) drops what the API server
//! adds: `uid`, `resourceVersion`, `creationTimestamp`, `managedFields` and every other
//! metadata field except `name`, `namespace`, `labels`, `annotations`, `ownerReferences`.
//! The rendered manifests carry no ownerReferences (the manifests on disk have no uid), so the
//! controller's are removed too after checking that they name exactly the AzureKeyVaultSecrets
//! that write the object.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use akv_auth::{AuthMode, AuthOptions, Credentials, Env, HttpOptions};
use akv_client::azure::{AzureKeyVaults, AzureOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use k8s_sync::preview::comparable;
use k8s_sync::{SyncConfig, SyncDeps, SyncMetrics};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::Value;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};
use testkit::certs::TestCa;
use testkit::clock::Clock;
use testkit::entra::{EntraFake, EntraOptions};
use testkit::fixtures::{Fakes, Fixture};
use testkit::token::TokenIssuer;
use testkit::vault::{KeyVaultFake, KeyVaultOptions};

use crate::support::{DEADLINE, akv2k8s, repo, run, text};

const SCENARIOS: &str = "k8s-sync/tests/fixtures/upstream-scenarios";
const FIXTURE: &str = "bins/cli/tests/fixtures/upstream-vault.yaml";
const CLIENT_SECRET: &str = "cli-test-client-secret";

/// The fakes seeded with the upstream vault fixture, the CRD, the upstream manifests applied,
/// and `k8s_sync::run` (Key Vault through akv-auth's client secret credential and
/// akv-client's Azure provider) until every AzureKeyVaultSecret with an output is Ready.
struct World {
    /// Kept running for the client.
    _api: ApiServerFake,
    kv: KeyVaultFake,
    entra: EntraFake,
    client: kube::Client,
    tenant: String,
    client_id: String,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<k8s_sync::Result<()>>>,
}

impl World {
    async fn start() -> World {
        testkit::install_crypto_provider();
        let clock = Clock::system();
        let ca = Arc::new(TestCa::new().expect("CA"));
        let issuer = Arc::new(TokenIssuer::new(clock.clone()).expect("issuer"));
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer.clone()),
            ca: Some(ca.clone()),
        })
        .await
        .expect("Key Vault fake");
        let entra = EntraFake::start(EntraOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer),
            ca: Some(ca.clone()),
            token_lifetime: None,
        })
        .await
        .expect("Entra fake");
        let api = ApiServerFake::start(ApiServerOptions {
            clock: Some(clock),
            ca: Some(ca.clone()),
            history: None,
        })
        .await
        .expect("API server fake");
        let fixture = Fixture::from_file(&repo(FIXTURE)).expect("fixture");
        let applied = fixture
            .apply_all(&Fakes::new().key_vault(&kv).entra(&entra))
            .expect("seed");
        let principal = applied.principal("akv2k8s-controller").expect("principal");
        let dir = tempfile::tempdir().expect("tempdir");
        ca.write_pem(dir.path()).expect("CA file");

        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("kube config");
        let client = kube::Client::try_from(config).expect("client");
        k8s_sync::crd::install(&client, &k8s_sync::crd().expect("CRD"), DEADLINE)
            .await
            .expect("CRD installed and established");

        let mut world = World {
            _api: api,
            kv,
            entra,
            client,
            tenant: principal.tenant_id.clone(),
            client_id: principal.app_id.clone(),
            dir,
            stop: None,
            task: None,
        };
        world.start_controller(&ca);
        world
    }

    fn start_controller(&mut self, ca: &TestCa) {
        let env = [
            ("AZURE_TENANT_ID", self.tenant.clone()),
            ("AZURE_CLIENT_ID", self.client_id.clone()),
            ("AZURE_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut resolve = self.kv.resolve_overrides();
        resolve.extend(self.entra.resolve_overrides());
        let http = HttpOptions::default().trust_only(ca.pem()).resolve(resolve);
        let creds = Credentials::new(
            AuthMode::Environment,
            AuthOptions {
                env: Env::Map(Arc::new(env)),
                http: Some(http.clone()),
                ..AuthOptions::default()
            },
        )
        .expect("credential");
        let provider = AzureKeyVaults::new(AzureOptions::single(creds.credential, http))
            .expect("Key Vault provider");
        let deps = SyncDeps {
            client: self.client.clone(),
            key_vault: provider,
            metrics: SyncMetrics::default(),
        };
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        self.stop = Some(tx);
        self.task = Some(tokio::spawn(k8s_sync::run(
            deps,
            SyncConfig::default(),
            async move {
                let _ = rx.await;
            },
        )));
    }

    /// Creates every document of every scenario file, as `kubectl create -f <dir>` does.
    async fn apply_scenarios(&self) -> Vec<Value> {
        let mut akvs = Vec::new();
        let mut files: Vec<_> = std::fs::read_dir(repo(SCENARIOS))
            .expect("scenarios")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        files.sort();
        let mut docs = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            docs.extend(
                serde_saphyr::from_multiple::<Value>(&text)
                    .expect("YAML")
                    .into_iter()
                    .filter(|d| !d.is_null()),
            );
        }
        // Namespaces first, as `kubectl create -f` would need them.
        docs.sort_by_key(|d| d["kind"] != "Namespace");
        {
            for doc in docs {
                let kind = doc["kind"].as_str().expect("kind").to_owned();
                let api_version = doc["apiVersion"].as_str().expect("apiVersion").to_owned();
                let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
                let plural = match kind.as_str() {
                    "Namespace" => "namespaces",
                    "AzureKeyVaultSecret" => "azurekeyvaultsecrets",
                    other => panic!("unexpected kind {other}"),
                };
                let ar = ApiResource {
                    group: group.into(),
                    version: version.into(),
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    plural: plural.into(),
                };
                let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
                let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                    None => Api::all_with(self.client.clone(), &ar),
                };
                api.create(&PostParams::default(), &obj)
                    .await
                    .unwrap_or_else(|e| panic!("create {kind}: {e}"));
                if kind == "AzureKeyVaultSecret" {
                    akvs.push(doc);
                }
            }
        }
        akvs
    }

    /// Waits until every AzureKeyVaultSecret with an output is Ready=True.
    async fn wait_ready(&self, akvs: &[Value]) {
        for a in akvs.iter().filter(|a| !a["spec"]["output"].is_null()) {
            let ns = a["metadata"]["namespace"].as_str().expect("namespace");
            let name = a["metadata"]["name"].as_str().expect("name");
            let api: Api<AzureKeyVaultSecret> = Api::namespaced(self.client.clone(), ns);
            tokio::time::timeout(
                DEADLINE,
                await_condition(api, name, |a: Option<&AzureKeyVaultSecret>| {
                    a.and_then(|a| a.status.as_ref())
                        .and_then(|s| s.ready())
                        .is_some_and(|c| c.is_ready())
                }),
            )
            .await
            .unwrap_or_else(|_| panic!("{ns}/{name} not Ready in time"))
            .expect("watch");
        }
    }

    /// Every Secret and ConfigMap the controller wrote, comparable, ownerReferences removed
    /// (and returned by object).
    async fn written(&self) -> (BTreeSet<String>, BTreeMap<String, BTreeSet<String>>) {
        let lp = ListParams::default().labels("spv.no/akv2k8s-managed=true");
        let mut objects = Vec::new();
        for s in Api::<Secret>::all(self.client.clone())
            .list(&lp)
            .await
            .expect("list")
        {
            let mut v = serde_json::to_value(s).expect("json");
            v["apiVersion"] = "v1".into();
            v["kind"] = "Secret".into();
            objects.push(v);
        }
        for c in Api::<ConfigMap>::all(self.client.clone())
            .list(&lp)
            .await
            .expect("list")
        {
            let mut v = serde_json::to_value(c).expect("json");
            v["apiVersion"] = "v1".into();
            v["kind"] = "ConfigMap".into();
            objects.push(v);
        }
        let mut owners = BTreeMap::new();
        let mut out = BTreeSet::new();
        for o in objects {
            let mut c = comparable(&o);
            let refs = c["metadata"]
                .as_object_mut()
                .and_then(|m| m.remove("ownerReferences"))
                .unwrap_or_default();
            let names = refs
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect();
            owners.insert(id(&c), names);
            out.insert(c.to_string());
        }
        (out, owners)
    }

    /// `render` environment: the real Key Vault path (AUTH_TYPE=environment) pointed at the
    /// fakes through the documented resolve override and root file.
    fn render_env(&self) -> Vec<(String, String)> {
        vec![
            ("AUTH_TYPE".into(), "environment".into()),
            ("AZURE_TENANT_ID".into(), self.tenant.clone()),
            ("AZURE_CLIENT_ID".into(), self.client_id.clone()),
            ("AZURE_CLIENT_SECRET".into(), CLIENT_SECRET.into()),
            (
                "AKV2K8S_RESOLVE".into(),
                format!("{},{}", self.kv.resolve_env(), self.entra.resolve_env()),
            ),
            (
                "SSL_CERT_FILE".into(),
                self.dir.path().join("testkit-ca.pem").display().to_string(),
            ),
        ]
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("controller stops")
                .expect("task")
                .expect("run ok");
        }
    }
}

fn id(v: &Value) -> String {
    format!(
        "{} {}/{}",
        v["kind"].as_str().unwrap_or_default(),
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Parses render's stdout into comparable objects.
fn rendered(stdout: &str) -> BTreeSet<String> {
    serde_saphyr::from_multiple::<Value>(stdout)
        .expect("render prints YAML")
        .into_iter()
        .filter(|v| !v.is_null())
        .map(|v| comparable(&v).to_string())
        .collect()
}

/// Which AzureKeyVaultSecrets write each object (by the manifests).
fn writers(akvs: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut by: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in akvs {
        let ns = a["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = a["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        for (field, kind) in [("secret", "Secret"), ("configMap", "ConfigMap")] {
            if let Some(out) = a["spec"]["output"][field]["name"].as_str() {
                by.entry(format!("{kind} {ns}/{out}"))
                    .or_default()
                    .insert(name.clone());
            }
        }
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn render_prints_what_the_controller_writes_for_the_upstream_scenarios() {
    let world = World::start().await;
    let akvs = world.apply_scenarios().await;
    world.wait_ready(&akvs).await;
    let (written, owners) = world.written().await;
    assert_eq!(
        written.len(),
        6,
        "the scenarios write six objects: {written:#?}"
    );
    assert_eq!(owners, writers(&akvs), "ownerReferences name the writers");

    // The real Key Vault path (AUTH_TYPE, AZURE_*, AKV2K8S_RESOLVE, SSL_CERT_FILE) against
    // the same fakes the controller read.
    let env = world.render_env();
    let out = tokio::task::spawn_blocking(move || {
        let mut c = akv2k8s();
        c.args(["render", "--show-values", "-f"])
            .arg(repo(SCENARIOS))
            .env_remove("AZURE_ENVIRONMENT")
            .envs(env);
        run(c)
    })
    .await
    .expect("render");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(
        rendered(&stdout),
        written,
        "render (Key Vault) vs controller"
    );
    // Non-AKVS documents and the env-injection-only AKVS are noted, not rendered.
    assert!(stderr.contains("skipping Namespace akv-test"), "{stderr}");
    assert!(
        stderr.contains("akv2k8s-test/test-secret has no output"),
        "{stderr}"
    );

    // The same from a fake seeded with the fixture alone (its certificate and key are
    // checked-in material, so the objects are identical).
    let out = tokio::task::spawn_blocking(|| {
        let mut c = akv2k8s();
        c.args(["render", "--show-values", "--vault-fixture"])
            .arg(repo(FIXTURE))
            .arg("-f")
            .arg(repo(SCENARIOS));
        run(c)
    })
    .await
    .expect("render");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(rendered(&stdout), written, "render (fixture) vs controller");
    world.stop().await;
}

#[test]
fn render_masks_values_unless_asked() {
    let render_two = |flags: &[&str]| {
        let mut c = akv2k8s();
        c.arg("render")
            .args(flags)
            .arg("--vault-fixture")
            .arg(repo(FIXTURE));
        for scenario in ["configmap-sync", "secret-sync"] {
            c.arg("-f").arg(repo(&format!(
                "{SCENARIOS}/integration-tests_akvs-{scenario}.yaml"
            )));
        }
        run(c)
    };
    let masked = render_two(&[]);
    let (stdout, stderr) = text(&masked);
    assert!(masked.status.success(), "{stdout}\n{stderr}");
    // The value, and its base64 form in the Secret.
    for hidden in [
        "akv2k8s-test-secret-value",
        "YWt2Mms4cy10ZXN0LXNlY3JldC12YWx1ZQ==",
    ] {
        assert!(!stdout.contains(hidden), "{hidden}:\n{stdout}");
        assert!(!stderr.contains(hidden), "{hidden}:\n{stderr}");
    }
    assert!(
        stdout.contains("secret-value: \"<masked: 25 bytes>\""),
        "{stdout}"
    );

    let shown = render_two(&["--show-values"]);
    let (stdout, stderr) = text(&shown);
    assert!(shown.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("secret-value: akv2k8s-test-secret-value"),
        "{stdout}"
    );
    assert!(
        stdout.contains("secret-value: YWt2Mms4cy10ZXN0LXNlY3JldC12YWx1ZQ=="),
        "{stdout}"
    );
}

#[test]
fn render_errors_name_file_document_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("a.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: apps}\n---\n\
         apiVersion: spv.no/v1alpha1\nkind: AzureKeyVaultSecret\nmetadata: {name: b, namespace: apps}\n\
         spec:\n  vault:\n    name: kv\n    object: {name: o, type: sekret}\n",
    )
    .expect("write");
    let out = run({
        let mut c = akv2k8s();
        c.args(["render", "--vault-fixture"])
            .arg(repo(FIXTURE))
            .arg("-f")
            .arg(&file);
        c
    });
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: document 2: spec.vault.object.type: unknown variant `sekret`",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn render_reports_an_object_missing_from_key_vault_and_prints_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("two.yaml");
    std::fs::write(
        &file,
        "apiVersion: spv.no/v2beta1\nkind: AzureKeyVaultSecret\nmetadata: {name: ok}\n\
         spec:\n  vault: {name: akv2k8sinttestskv, object: {name: akv2k8s-test-secret, type: secret}}\n  \
         output: {secret: {name: ok, dataKey: v}}\n---\n\
         apiVersion: spv.no/v2beta1\nkind: AzureKeyVaultSecret\nmetadata: {name: missing}\n\
         spec:\n  vault: {name: akv2k8sinttestskv, object: {name: nope, type: secret}}\n  \
         output: {secret: {name: missing, dataKey: v}}\n",
    )
    .expect("write");
    let out = run({
        let mut c = akv2k8s();
        c.args(["render", "-n", "apps", "--vault-fixture"])
            .arg(repo(FIXTURE))
            .arg("-f")
            .arg(&file);
        c
    });
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: document 2: AzureKeyVaultSecret apps/missing: ErrAzureVault",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stdout.contains("name: ok\n  namespace: apps"), "{stdout}");
}
