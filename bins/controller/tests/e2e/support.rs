//! The end-to-end world: testkit's API server, Key Vault and Entra fakes sharing one CA, clock
//! and token issuer; the CRD installed from the checked-in YAML; the vault upstream's manifests
//! name, seeded with the objects they read; and the built `akv2k8s-controller` as a child
//! process with the chart's argv, its stderr captured to a file that is printed when a test
//! fails.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::runtime::wait::await_condition;
use kube::{Client, Resource as _};
use serde_json::Value;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};
use testkit::certs::{CertChain, KeyKind, PfxEncryption, TestCa};
use testkit::clock::Clock;
use testkit::entra::{ClientSpec, EntraFake, EntraOptions};
use testkit::faults::Outcome;
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{
    CertificateFormat, CertificateSpec, KeySpec, KeyVaultFake, KeyVaultOptions, Permissions,
    SecretSpec, VaultSpec,
};

/// The vault upstream's `integration-tests/` manifests name.
pub const VAULT: &str = "akv2k8sinttestskv";
/// The vault upstream's `int-tests/` manifest names.
pub const INT_TESTS_VAULT: &str = "akv2k8s-test";
/// Namespace of upstream's `integration-tests/` manifests.
pub const NS: &str = "akv-test";
/// Namespace of upstream's `int-tests/` manifests.
pub const INT_TESTS_NS: &str = "akv2k8s-test";
/// `--azure-resync-period`.
pub const PERIOD: Duration = Duration::from_millis(300);
/// `--azure-resync-period` as the chart renders it (seconds).
pub const PERIOD_ARG: &str = "0.3";
/// Deadline guard of every wait.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Values of the seeded Key Vault secrets.
pub const SECRET_VALUE: &str = "akv2k8s-test-secret-value";
pub const SECRET_TWO_VALUE: &str = "akv2k8s-test-secret-two-value";
pub const INT_TESTS_SECRET_VALUE: &str = "int-tests-my-secret-value";
pub const MULTI_KEY_JSON: &str = r#"{"database":"orders","user":"app","password":"p4ss-json"}"#;
pub const MULTI_KEY_YAML: &str = "database: orders\nuser: app\npassword: p4ss-yaml\n";

/// Key Vault objects the manifests read (besides the ones added by the tests below).
pub const OBJ_SECRET: &str = "akv2k8s-test-secret";
pub const OBJ_SECRET_TWO: &str = "akv2k8s-test-secret-two";
pub const OBJ_CERT: &str = "akv2k8s-test-cert";
pub const OBJ_KEY: &str = "akv2k8s-test-key";
pub const OBJ_MULTI_KEY: &str = "akv2k8s-multi-key-test";
/// Objects for the scenarios upstream has no manifest for.
pub const OBJ_MULTI_KEY_YAML: &str = "akv2k8s-multi-key-yaml-test";
pub const OBJ_PFX: &str = "akv2k8s-test-pfx";

const CLIENT_SECRET: &str = "e2e-controller-client-secret";
const UA_PREFIX: &str = "akv2k8s-controller/";

/// Upstream's manifests, verbatim (copies checked in under k8s-sync's fixtures).
pub mod manifest {
    macro_rules! fixture {
        ($name:ident, $file:literal) => {
            pub const $name: &str = include_str!(concat!(
                "../../../../k8s-sync/tests/fixtures/upstream-scenarios/",
                $file
            ));
        };
    }
    fixture!(NAMESPACE, "integration-tests_namespace.yaml");
    fixture!(SECRET_SYNC, "integration-tests_akvs-secret-sync.yaml");
    fixture!(
        CERTIFICATE_SYNC,
        "integration-tests_akvs-certificate-sync.yaml"
    );
    fixture!(
        SIGNING_KEY_SYNC,
        "integration-tests_akvs-signing-key-sync.yaml"
    );
    fixture!(
        MULTI_KEY_VALUE,
        "integration-tests_akvs-multi-key-value-secret.yaml"
    );
    fixture!(MULTI_AKVS, "integration-tests_multi-akvs-secret-sync.yaml");
    fixture!(CONFIGMAP_SYNC, "integration-tests_akvs-configmap-sync.yaml");
    fixture!(INT_TESTS_NAMESPACE, "int-tests_ns.yaml");
    fixture!(INT_TESTS_AKVS, "int-tests_test-secret_akvs.yaml");
}

/// The CRD as shipped (`crds/`), not as generated in-process.
const CRD_YAML: &str = include_str!("../../../../crds/azurekeyvaultsecrets.spv.no.yaml");

/// The fakes, a client of the API server, and files the controller reads.
pub struct Env {
    pub api: ApiServerFake,
    pub kv: KeyVaultFake,
    pub entra: EntraFake,
    pub client: Client,
    pub principal: Principal,
    /// Certificate chain behind the `akv2k8s-test-cert` certificate.
    pub cert: CertChain,
    /// Certificate chain behind the `akv2k8s-test-pfx` secret.
    pub pfx: CertChain,
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    ca_file: PathBuf,
}

impl Env {
    /// Fakes up, CRD installed, vaults seeded, the controller's service principal registered
    /// in Entra and granted read access in both vaults.
    pub async fn start() -> Env {
        testkit::install_crypto_provider();
        let clock = Clock::system();
        let ca = Arc::new(TestCa::new().expect("CA"));
        let issuer = Arc::new(TokenIssuer::new(clock.clone()).expect("token issuer"));
        let api = ApiServerFake::start(ApiServerOptions {
            clock: Some(clock.clone()),
            ca: Some(ca.clone()),
            history: None,
        })
        .await
        .expect("API server fake");
        let kv = KeyVaultFake::start(KeyVaultOptions {
            clock: Some(clock.clone()),
            issuer: Some(issuer.clone()),
            ca: Some(ca.clone()),
        })
        .await
        .expect("Key Vault fake");
        let entra = EntraFake::start(EntraOptions {
            clock: Some(clock),
            issuer: Some(issuer),
            ca: Some(ca.clone()),
            token_lifetime: None,
        })
        .await
        .expect("Entra fake");

        let principal = Principal::new("akv2k8s-controller");
        entra.add_client(ClientSpec::new(&principal).secret(CLIENT_SECRET));
        for vault in [VAULT, INT_TESTS_VAULT] {
            kv.create_vault(VaultSpec::new(vault).grant(&principal, Permissions::read_all()))
                .expect("create vault");
        }
        let (cert, pfx) = seed(&kv);

        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path()).expect("kubeconfig");
        let ca_file = ca.write_pem(dir.path()).expect("CA file");
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("kube config");
        let client = Client::try_from(config).expect("kube client");

        let crd: CustomResourceDefinition = serde_saphyr::from_str(CRD_YAML).expect("CRD YAML");
        k8s_sync::crd::install(&client, &crd, DEADLINE)
            .await
            .expect("CRD installed and established");

        Env {
            api,
            kv,
            entra,
            client,
            principal,
            cert,
            pfx,
            dir,
            kubeconfig,
            ca_file,
        }
    }

    /// Starts `akv2k8s-controller` with the chart's argv, `--azure-resync-period=0.3`,
    /// `AUTH_TYPE=environment` and the service principal's secret, `POD_NAME=<name>`, plus
    /// `extra_args` and `extra_env` (later values win, as with Go's flags).
    pub fn controller(
        &self,
        name: &str,
        extra_args: &[&str],
        extra_env: &[(&str, &str)],
    ) -> Controller {
        let stderr_path = self.dir.path().join(format!("{name}.stderr"));
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let resolve = format!("{},{}", self.kv.resolve_env(), self.entra.resolve_env());
        let http_port = free_port().to_string();
        let child = Command::new(env!("CARGO_BIN_EXE_akv2k8s-controller"))
            .args([
                "--cloudconfig=/etc/kubernetes/azure.json",
                "--version=1.8.4",
                "--v=2",
                "--logging-format=text",
                "--watch-all-namespaces=true",
                "--kube-resync-period=30",
            ])
            .arg(format!("--azure-resync-period={PERIOD_ARG}"))
            .arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .args(extra_args)
            .env_clear()
            .envs([
                ("AUTH_TYPE", "environment"),
                ("AZURE_TENANT_ID", self.principal.tenant_id.as_str()),
                ("AZURE_CLIENT_ID", self.principal.app_id.as_str()),
                ("AZURE_CLIENT_SECRET", CLIENT_SECRET),
                ("METRICS_ENABLED", "true"),
                ("HTTP_PORT", http_port.as_str()),
                ("RUNTIME_NAMESPACE", NS),
                ("POD_NAME", name),
                ("AKV2K8S_RESOLVE", resolve.as_str()),
                ("SSL_CERT_FILE", self.ca_file.to_str().expect("utf-8 path")),
            ])
            .envs(extra_env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start akv2k8s-controller");
        Controller {
            child,
            name: name.to_owned(),
            stderr: stderr_path,
            exited: None,
        }
    }

    /// Creates every document of a manifest, as `kubectl create -f` does.
    pub async fn apply(&self, yaml: &str) {
        for doc in serde_saphyr::from_multiple::<Value>(yaml).expect("manifest YAML") {
            let obj: DynamicObject = serde_json::from_value(doc.clone()).expect("object");
            let api_version = doc["apiVersion"].as_str().expect("apiVersion");
            let kind = doc["kind"].as_str().expect("kind");
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let plural = match kind {
                "Namespace" => "namespaces",
                "AzureKeyVaultSecret" => "azurekeyvaultsecrets",
                "Secret" => "secrets",
                other => panic!("no plural known for {other}"),
            };
            let ar = ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: api_version.into(),
                kind: kind.into(),
                plural: plural.into(),
            };
            let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                None => Api::all_with(self.client.clone(), &ar),
            };
            api.create(&PostParams::default(), &obj)
                .await
                .unwrap_or_else(|e| panic!("create {kind} {:?}: {e}", obj.metadata.name));
        }
    }

    pub fn secrets(&self, ns: &str) -> Api<Secret> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn config_maps(&self, ns: &str) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub fn akvs(&self, ns: &str) -> Api<AzureKeyVaultSecret> {
        Api::namespaced(self.client.clone(), ns)
    }

    /// Waits (watch, with a deadline) until the Secret satisfies `cond`; returns it.
    pub async fn wait_secret(
        &self,
        ns: &str,
        name: &str,
        cond: impl Fn(Option<&Secret>) -> bool,
    ) -> Option<Secret> {
        tokio::time::timeout(
            DEADLINE,
            await_condition(self.secrets(ns), name, move |s: Option<&Secret>| cond(s)),
        )
        .await
        .unwrap_or_else(|_| panic!("Secret {ns}/{name}: condition not met within {DEADLINE:?}"))
        .expect("watch Secret")
    }

    /// Waits until the Secret exists and holds exactly `keys`.
    pub async fn wait_secret_keys(&self, ns: &str, name: &str, keys: &[&str]) -> Secret {
        let want: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        self.wait_secret(ns, name, move |s| {
            s.is_some_and(|s| data(s).keys().cloned().collect::<Vec<_>>() == want)
        })
        .await
        .expect("Secret exists")
    }

    /// Waits until the ConfigMap exists and satisfies `cond`.
    pub async fn wait_config_map(
        &self,
        ns: &str,
        name: &str,
        cond: impl Fn(&ConfigMap) -> bool,
    ) -> ConfigMap {
        tokio::time::timeout(
            DEADLINE,
            await_condition(self.config_maps(ns), name, move |c: Option<&ConfigMap>| {
                c.is_some_and(&cond)
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("ConfigMap {ns}/{name}: condition not met in time"))
        .expect("watch ConfigMap")
        .expect("ConfigMap exists")
    }

    /// Waits until the AKVS's `Ready` condition has `status` and `reason`.
    pub async fn wait_ready(
        &self,
        ns: &str,
        name: &str,
        status: &str,
        reason: &str,
    ) -> AzureKeyVaultSecret {
        let (want_status, want_reason) = (status.to_owned(), reason.to_owned());
        tokio::time::timeout(
            DEADLINE,
            await_condition(
                self.akvs(ns),
                name,
                move |a: Option<&AzureKeyVaultSecret>| {
                    a.and_then(|a| a.status.as_ref())
                        .and_then(|s| s.ready())
                        .is_some_and(|c| {
                            c.status.to_string() == want_status && c.reason == want_reason
                        })
                },
            ),
        )
        .await
        .unwrap_or_else(|_| {
            panic!("AKVS {ns}/{name}: Ready={status} ({reason}) not reached in time")
        })
        .expect("watch AKVS")
        .expect("AKVS exists")
    }

    /// Waits until the AKVS exists and satisfies `cond`.
    pub async fn wait_akvs(
        &self,
        ns: &str,
        name: &str,
        cond: impl Fn(&AzureKeyVaultSecret) -> bool,
    ) -> AzureKeyVaultSecret {
        tokio::time::timeout(
            DEADLINE,
            await_condition(
                self.akvs(ns),
                name,
                move |a: Option<&AzureKeyVaultSecret>| a.is_some_and(&cond),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("AKVS {ns}/{name}: condition not met in time"))
        .expect("watch AKVS")
        .expect("AKVS exists")
    }

    /// Authorized Key Vault requests (billable transactions) so far.
    pub fn kv_reads(&self) -> usize {
        self.kv.log().counts().authorized
    }

    /// Key Vault requests answered by an injected fault so far.
    pub fn kv_faulted(&self) -> usize {
        self.kv
            .log()
            .filter(|r| r.outcome == Outcome::Faulted)
            .len()
    }

    /// Authorized Key Vault requests for one object (`secrets/<name>`, `keys/<name>`, …, any
    /// version).
    pub fn kv_reads_of(&self, kind: &str, name: &str) -> usize {
        self.kv_reads_by_object()
            .get(&format!("{kind}/{name}"))
            .copied()
            .unwrap_or(0)
    }

    /// Authorized Key Vault requests so far by object (`<kind>/<name>`).
    pub fn kv_reads_by_object(&self) -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for r in self.kv.log().filter(|r| r.outcome == Outcome::Authorized) {
            let mut segments = r.path.split('/').filter(|s| !s.is_empty());
            if let (Some(kind), Some(name)) = (segments.next(), segments.next()) {
                *by.entry(format!("{kind}/{}", name.to_ascii_lowercase()))
                    .or_insert(0) += 1;
            }
        }
        by
    }

    /// Write requests (POST, PUT, PATCH, DELETE) any controller replica made so far, and per
    /// replica (its `POD_NAME`, the last word of its User-Agent); `leases` counts Lease writes too.
    pub fn controller_writes(&self, leases: bool) -> BTreeMap<String, usize> {
        let mut by = BTreeMap::new();
        for r in self.api.log().filter(|r| {
            matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
                && (leases || !r.path.contains("/leases"))
        }) {
            let ua = r.user_agent.unwrap_or_default();
            if let Some(rest) = ua.strip_prefix(UA_PREFIX) {
                let who = rest.rsplit(' ').next().unwrap_or_default().to_owned();
                *by.entry(who).or_insert(0) += 1;
            }
        }
        by
    }

    /// Events stored (core and events.k8s.io).
    pub fn events(&self) -> usize {
        self.api.names("", "events", None).len()
            + self.api.names("events.k8s.io", "events", None).len()
    }

    /// Events whose reason is `reason`, in `ns`.
    pub fn events_with_reason(&self, ns: &str, reason: &str) -> usize {
        let count = |group: &str| {
            self.api
                .names(group, "events", Some(ns))
                .into_iter()
                .filter_map(|n| self.api.object(group, "events", ns, &n))
                .filter(|e| e["reason"] == reason)
                .count()
        };
        count("") + count("events.k8s.io")
    }
}

/// The seeded Key Vault objects: every object the upstream manifests read (vault
/// `akv2k8sinttestskv`; `my-secret` in `akv2k8s-test`), a YAML multi-key secret and a PFX stored
/// as a secret. Returns the chains behind the certificate and the PFX.
fn seed(kv: &KeyVaultFake) -> (CertChain, CertChain) {
    kv.set_secret(VAULT, OBJ_SECRET, SecretSpec::new(SECRET_VALUE))
        .expect("secret");
    kv.set_secret(VAULT, OBJ_SECRET_TWO, SecretSpec::new(SECRET_TWO_VALUE))
        .expect("secret two");
    kv.set_secret(
        VAULT,
        OBJ_MULTI_KEY,
        SecretSpec::new(MULTI_KEY_JSON).content_type("application/json"),
    )
    .expect("multi-key JSON");
    kv.set_secret(VAULT, OBJ_MULTI_KEY_YAML, SecretSpec::new(MULTI_KEY_YAML))
        .expect("multi-key YAML");
    let cert = CertChain::builder(KeyKind::Rsa2048)
        .common_name("akv2k8s-test-cert.akv-test.local")
        .build()
        .expect("certificate chain");
    kv.import_certificate(
        VAULT,
        OBJ_CERT,
        CertificateSpec::from_chain(&cert, CertificateFormat::Pfx(PfxEncryption::Modern)),
    )
    .expect("certificate");
    kv.create_key(VAULT, OBJ_KEY, KeySpec::Rsa).expect("key");
    let pfx = CertChain::builder(KeyKind::Rsa2048)
        .common_name("pfx-as-secret.akv-test.local")
        .build()
        .expect("PFX chain");
    let pfx_b64 = base64::engine::general_purpose::STANDARD
        .encode(pfx.pfx(PfxEncryption::Legacy3Des).expect("PFX"));
    kv.set_secret(
        VAULT,
        OBJ_PFX,
        SecretSpec::new(pfx_b64).content_type("application/x-pkcs12"),
    )
    .expect("PFX secret");
    kv.set_secret(
        INT_TESTS_VAULT,
        "my-secret",
        SecretSpec::new(INT_TESTS_SECRET_VALUE),
    )
    .expect("int-tests secret");
    (cert, pfx)
}

/// A Secret's data as UTF-8 strings (lossy), by key.
pub fn data(s: &Secret) -> BTreeMap<String, String> {
    s.data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect()
}

/// Names of the owners (ownerReferences) of an object.
pub fn owners<K: kube::Resource>(o: &K) -> Vec<String> {
    let mut names: Vec<String> = o
        .meta()
        .owner_references
        .iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    names.sort();
    names
}

/// Polls `cond` (the controller is another process: there is no channel to await) until it
/// holds, within [`DEADLINE`].
pub async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    tokio::time::timeout(DEADLINE, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: not within {DEADLINE:?}"));
}

/// Waits until Key Vault has answered `n` more authorized requests for `kind/name` than
/// `since`: the controller has refreshed that object `n` times, `n` intervals have passed.
pub async fn refreshed(env: &Env, kind: &str, name: &str, since: usize, n: usize) {
    until(&format!("{n} refreshes of {kind}/{name}"), || {
        env.kv_reads_of(kind, name) >= since + n
    })
    .await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `akv2k8s-controller`. Dropping it kills the process; when the test is failing,
/// its stderr is printed first.
pub struct Controller {
    child: Child,
    pub name: String,
    stderr: PathBuf,
    exited: Option<ExitStatus>,
}

impl Controller {
    /// Sends SIGTERM (what the kubelet sends on pod deletion).
    pub fn sigterm(&self) {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(killed.success(), "kill -TERM {}", self.child.id());
    }

    /// Waits for the process to exit, within [`DEADLINE`].
    pub async fn exited(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exited = Some(status);
                return status;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "{} did not exit within {DEADLINE:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Fails when the process has exited (it should run until the test stops it).
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            panic!("{} exited early: {status}", self.name);
        }
    }

    /// The captured stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "----- stderr of akv2k8s-controller {} -----\n{}----- end of {} -----",
                self.name,
                self.stderr(),
                self.name
            );
        }
    }
}

/// Whether a Secret is owned by nothing and carries no managed fields of the controller.
pub fn untouched_by_controller(s: &Secret) -> bool {
    s.meta().owner_references.as_ref().is_none_or(Vec::is_empty)
        && s.meta().managed_fields.iter().flatten().all(|m| {
            !m.manager
                .as_deref()
                .unwrap_or_default()
                .starts_with("akv2k8s")
        })
}
