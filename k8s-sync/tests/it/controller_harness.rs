//! The real `k8s_sync::run` against testkit's API server and Key Vault fakes.

use std::sync::Arc;
use std::time::Duration;

use akv_auth::HttpOptions;
use akv_client::azure::{AzureKeyVaults, AzureOptions};
use akv_client::cache::ReadConfig;
use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_sync::crd::v2beta1::AzureKeyVaultSecret;
use k8s_sync::{SyncConfig, SyncDeps, SyncMetrics};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::wait::await_condition;
use serde_json::{Value, json};
use testkit::apiserver::ApiServerFake;
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{KeyVaultFake, KeyVaultOptions, Permissions, VaultSpec};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::support::cluster_with_crd;

pub const VAULT: &str = "akv2k8s-test";
pub const NS: &str = "default";
pub const PERIOD: Duration = Duration::from_millis(200);
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct World {
    pub api: ApiServerFake,
    pub client: Client,
    pub kv: KeyVaultFake,
    pub metrics: SyncMetrics,
    main: Option<Instance>,
}

/// One running `k8s_sync::run`.
pub struct Instance {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<k8s_sync::Result<()>>>,
}

impl Instance {
    /// Resolves the shutdown future and waits (with a deadline) for `run` to return `Ok`.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(DEADLINE, task)
                .await
                .expect("run returns after shutdown")
                .expect("run task")
                .expect("run ok");
        }
    }
}

impl World {
    /// Fakes up, CRD installed, vault created; the controller not yet running.
    pub async fn new() -> World {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let (api, client) = cluster_with_crd().await;
        let kv = KeyVaultFake::start(KeyVaultOptions::default())
            .await
            .expect("start the Key Vault fake");
        kv.create_vault(VaultSpec::new(VAULT).grant(&controller_principal(), Permissions::all()))
            .expect("create vault");
        World {
            api,
            client,
            kv,
            metrics: SyncMetrics::default(),
            main: None,
        }
    }

    pub fn config() -> SyncConfig {
        SyncConfig {
            azure_resync_period: PERIOD,
            error_backoff_base: Duration::from_millis(50),
            error_backoff_max: Duration::from_millis(400),
            key_vault_read: Some(ReadConfig {
                max_attempts: 1,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Starts the controller with [`World::config`].
    pub async fn started() -> World {
        let mut w = World::new().await;
        w.start(Self::config());
        w
    }

    /// Starts the controller (the test's main instance) with `cfg`.
    pub fn start(&mut self, cfg: SyncConfig) {
        self.main = Some(self.spawn(self.client.clone(), cfg, self.metrics.clone()));
    }

    /// Starts another `k8s_sync::run` with its own client, config and metrics.
    pub fn spawn(&self, client: Client, cfg: SyncConfig, metrics: SyncMetrics) -> Instance {
        let cred = Arc::new(EntraStandIn {
            issuer: self.kv.issuer().clone(),
            principal: controller_principal(),
        });
        let http = HttpOptions::default()
            .trust_only(self.kv.ca_pem())
            .resolve(self.kv.resolve_overrides());
        let provider =
            AzureKeyVaults::new(AzureOptions::single(cred, http)).expect("Key Vault provider");
        let deps = SyncDeps {
            client,
            key_vault: provider,
            metrics,
        };
        let (tx, rx) = oneshot::channel::<()>();
        Instance {
            stop: Some(tx),
            task: Some(tokio::spawn(k8s_sync::run(deps, cfg, async move {
                let _ = rx.await;
            }))),
        }
    }

    /// Stops the main controller and waits for `run` to return.
    pub async fn stop(&mut self) {
        if let Some(main) = self.main.take() {
            main.stop().await;
        }
    }

    /// A client of the API server fake that sends `user-agent: <agent>`, so its requests can
    /// be told apart in the fake's request log.
    pub async fn client_as(&self, agent: &'static str) -> Client {
        let kubeconfig =
            kube::config::Kubeconfig::from_yaml(&self.api.kubeconfig_yaml()).expect("kubeconfig");
        let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("config");
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static(agent),
        ));
        Client::try_from(config).expect("client")
    }

    /// Writes (POST, PUT, PATCH, DELETE) the API server answered for `agent`, Lease requests
    /// excluded (every replica campaigns).
    pub fn writes_by(&self, agent: &str) -> usize {
        self.api
            .log()
            .filter(|r| {
                matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
                    && r.user_agent.as_deref() == Some(agent)
                    && !r.path.contains("/leases")
            })
            .len()
    }

    pub fn akvs_api(&self) -> Api<AzureKeyVaultSecret> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub fn config_maps(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), NS)
    }

    pub async fn create_akvs(&self, name: &str, spec: Value) -> AzureKeyVaultSecret {
        self.create_akvs_with(json!({"name": name}), spec).await
    }

    pub async fn create_akvs_with(&self, metadata: Value, spec: Value) -> AzureKeyVaultSecret {
        let akvs: AzureKeyVaultSecret = serde_json::from_value(json!({
            "apiVersion": "spv.no/v2beta1",
            "kind": "AzureKeyVaultSecret",
            "metadata": metadata,
            "spec": spec,
        }))
        .expect("akvs");
        self.akvs_api()
            .create(&PostParams::default(), &akvs)
            .await
            .expect("create akvs")
    }

    /// Waits (watch, with a deadline) until the Secret satisfies `cond`.
    pub async fn wait_secret(
        &self,
        name: &str,
        cond: impl Fn(Option<&Secret>) -> bool,
    ) -> Option<Secret> {
        tokio::time::timeout(
            DEADLINE,
            await_condition(self.secrets(), name, move |s: Option<&Secret>| cond(s)),
        )
        .await
        .unwrap_or_else(|_| panic!("Secret {name}: condition not met in time"))
        .expect("watch secret")
    }

    pub async fn wait_config_map(
        &self,
        name: &str,
        cond: impl Fn(Option<&ConfigMap>) -> bool,
    ) -> Option<ConfigMap> {
        tokio::time::timeout(
            DEADLINE,
            await_condition(self.config_maps(), name, move |c: Option<&ConfigMap>| {
                cond(c)
            }),
        )
        .await
        .unwrap_or_else(|_| panic!("ConfigMap {name}: condition not met in time"))
        .expect("watch configmap")
    }

    pub async fn wait_akvs(
        &self,
        name: &str,
        cond: impl Fn(&AzureKeyVaultSecret) -> bool,
    ) -> AzureKeyVaultSecret {
        tokio::time::timeout(
            DEADLINE,
            await_condition(
                self.akvs_api(),
                name,
                move |a: Option<&AzureKeyVaultSecret>| a.is_some_and(&cond),
            ),
        )
        .await
        .unwrap_or_else(|_| panic!("AKVS {name}: condition not met in time"))
        .expect("watch akvs")
        .expect("akvs exists")
    }

    /// Events (`events.k8s.io/v1`) in the namespace: (reason, regarding name).
    pub async fn events(&self) -> Vec<(String, String, Option<String>)> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        api.list(&ListParams::default())
            .await
            .expect("list events")
            .items
            .into_iter()
            .map(|e| {
                (
                    e.reason.unwrap_or_default(),
                    e.regarding.and_then(|r| r.name).unwrap_or_default(),
                    e.note,
                )
            })
            .collect()
    }

    /// Waits (watch, with a deadline) for an Event with `reason` about `regarding`.
    pub async fn wait_event(&self, reason: &str, regarding: &str) {
        use futures::{StreamExt as _, TryStreamExt as _};
        use kube::runtime::{WatchStreamExt as _, watcher};
        let api: Api<Event> = Api::namespaced(self.client.clone(), NS);
        let stream = watcher(api, watcher::Config::default())
            .applied_objects()
            .boxed();
        let found = tokio::time::timeout(
            DEADLINE,
            stream
                .try_filter(|e| {
                    let hit = e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(regarding);
                    std::future::ready(hit)
                })
                .try_next(),
        )
        .await
        .unwrap_or_else(|_| panic!("no {reason} Event for {regarding} in time"))
        .expect("watch events");
        assert!(found.is_some(), "event stream ended");
    }
}

/// The spec of an AKVS reading Key Vault secret `object` into `output`.
pub fn secret_spec(object: &str, output: Value) -> Value {
    json!({
        "vault": {"name": VAULT, "object": {"name": object, "type": "secret"}},
        "output": output,
    })
}

/// The spec of an AKVS reading Key Vault certificate `object` into `output`.
pub fn certificate_spec(object: &str, output: Value) -> Value {
    json!({
        "vault": {"name": VAULT, "object": {"name": object, "type": "certificate"}},
        "output": output,
    })
}

pub fn data(s: &Secret, key: &str) -> Option<String> {
    s.data
        .as_ref()?
        .get(key)
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
}

pub fn keys(s: &Secret) -> Vec<String> {
    s.data
        .as_ref()
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default()
}

pub fn ready(a: &AzureKeyVaultSecret) -> Option<(String, String)> {
    let c = a.status.as_ref()?.ready()?;
    Some((c.status.as_str().to_owned(), c.reason.clone()))
}

pub fn is_ready(a: &AzureKeyVaultSecret, reason: &str) -> bool {
    ready(a) == Some(("True".into(), reason.into()))
}

pub fn not_ready(a: &AzureKeyVaultSecret, reason: &str) -> bool {
    ready(a) == Some(("False".into(), reason.into()))
}

/// The Entra principal the controller runs as.
fn controller_principal() -> Principal {
    Principal::new("controller")
}

/// Mints the fake's tokens for the requested audience, as Entra would.
#[derive(Debug)]
struct EntraStandIn {
    issuer: Arc<TokenIssuer>,
    principal: Principal,
}

#[async_trait::async_trait]
impl TokenCredential for EntraStandIn {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<TokenRequestOptions<'_>>,
    ) -> azure_core::Result<AccessToken> {
        let scope = scopes.first().copied().unwrap_or_default();
        let (token, exp) =
            self.issuer
                .mint_for_vault_scope(&self.principal, scope, Duration::from_secs(3600));
        let expires =
            azure_core::time::OffsetDateTime::from_unix_timestamp(exp as i64).expect("expiry");
        Ok(AccessToken::new(token.as_str().to_owned(), expires))
    }
}
