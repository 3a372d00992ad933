//! A fake Kubernetes API server that behaves like one: kube's real client, kube-runtime's
//! watchers and controllers, and the installed `kubectl` work against it.
//!
//! HTTPS on `127.0.0.1` (ephemeral port) with a testkit CA, bearer tokens it issued, and:
//!
//! * discovery (`/version`, `/api`, `/apis`, group/version resource lists with verbs, short
//!   names, categories) and `Table` output for `kubectl get` (built-in columns, CRD printer
//!   columns);
//! * core/v1 `namespaces`, `secrets`, `configmaps`, `pods`, `serviceaccounts`, `events`;
//!   `events.k8s.io/v1` events; `coordination.k8s.io/v1` leases;
//!   `apiextensions.k8s.io/v1` CRDs, whose custom resources are served for every served
//!   version (conversion `None`: `apiVersion` rewritten, fields pruned per version schema) with
//!   the `status` subresource;
//! * get, list (label and field selectors, `limit`/`continue`), watch (`resourceVersion`,
//!   bookmarks, `timeoutSeconds`, `410 Gone` past the retained history), create (uid,
//!   creationTimestamp, generateName, generation, one global resourceVersion), update (409 on a
//!   stale resourceVersion), patch (merge, JSON, strategic, server-side apply with
//!   managedFields), delete (propagation policies, ownerReference GC, finalizers, namespace
//!   termination), all asynchronous as in a cluster;
//! * validation like the real server's (names, Secrets, ConfigMaps, CRD schemas) with `422
//!   Invalid` Status objects and causes;
//! * fault injection per verb/path (statuses, latency, dropped connections), watch faults
//!   (close all, expire the next ones, compact history), request counters and log.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! testkit::install_crypto_provider();
//! let api = testkit::apiserver::ApiServerFake::start(Default::default()).await?;
//! let yaml = api.kubeconfig_yaml();
//! assert!(yaml.contains(&api.url()));
//! # Ok(()) }
//! ```

mod controllers;
mod fields;
mod http;
mod kubectl;
mod openapi;
pub mod patch;
mod resources;
mod select;
mod status;
mod store;
mod table;
mod validate;
mod watch;
mod write;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};

pub use http::GIT_VERSION;
pub use kubectl::{Kubectl, KubectlOutput};
pub use resources::{Column, ResourceType, Version};
pub use select::{FieldSelector, LabelSelector};
pub use status::{ApiError, Cause};
pub use store::DEFAULT_HISTORY;
pub use table::{human_age, jsonpath};
pub use watch::WatchControl;

use crate::certs::{CertError, TestCa};
use crate::clock::Clock;
use crate::faults::{Faults, RequestLog, lock};
use crate::server::Endpoint;

/// Errors starting the fake API server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiServerError {
    /// The serving certificate could not be made.
    #[error(transparent)]
    Cert(#[from] CertError),
    /// TLS setup failed.
    #[error("TLS setup failed")]
    Tls(#[source] rustls::Error),
    /// Binding the listener failed.
    #[error("binding the listener failed")]
    Bind(#[source] std::io::Error),
    /// Writing the kubeconfig failed.
    #[error("could not write {path}")]
    Write {
        /// File.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
}

/// How to start an [`ApiServerFake`].
#[derive(Clone, Debug, Default)]
pub struct ApiServerOptions {
    /// Clock for timestamps, watch timeouts and bookmarks (default: system clock).
    pub clock: Option<Clock>,
    /// CA for the serving certificate (default: a new one).
    pub ca: Option<Arc<TestCa>>,
    /// Events kept for watches (default [`DEFAULT_HISTORY`]); older resourceVersions get 410.
    pub history: Option<usize>,
}

/// A running fake API server. Dropping it stops the server and its controllers.
#[derive(Debug)]
pub struct ApiServerFake {
    state: Arc<http::State>,
    endpoint: Endpoint,
    token: String,
    controllers: tokio::task::JoinHandle<()>,
}

impl Drop for ApiServerFake {
    fn drop(&mut self) {
        self.controllers.abort();
        self.state.watches.close_all();
    }
}

/// The namespaces a new cluster has.
const INITIAL_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

impl ApiServerFake {
    /// Starts the server on an ephemeral loopback port with the initial namespaces.
    ///
    /// # Errors
    ///
    /// When the listener cannot be bound or TLS cannot be set up.
    pub async fn start(opts: ApiServerOptions) -> Result<Self, ApiServerError> {
        let clock = opts.clock.unwrap_or_default();
        let mut store = store::Store::new(opts.history.unwrap_or(DEFAULT_HISTORY));
        let now = crate::clock::rfc3339(clock.now());
        for ns in INITIAL_NAMESPACES {
            let rv = store.next_rv();
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {
                "name": ns, "uid": crate::ids::random_guid(), "creationTimestamp": now, "resourceVersion": rv.to_string(),
                "labels": {"kubernetes.io/metadata.name": ns}},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            let key = store::Key {
                group: String::new(),
                plural: "namespaces".into(),
                namespace: String::new(),
                name: ns.into(),
            };
            store.put(key, obj, rv);
        }
        let token = random_token();
        let events = store.subscribe();
        let state = Arc::new(http::State {
            inner: Mutex::new(http::Inner {
                store,
                registry: resources::Registry::with_builtins(),
            }),
            tokens: Mutex::new(BTreeSet::from([token.clone()])),
            clock: clock.clone(),
            watches: WatchControl::default(),
        });
        let controllers = tokio::spawn(controllers::run(state.clone(), events));
        let names = ["localhost", "127.0.0.1", "kubernetes.default.svc"];
        let endpoint = Endpoint::tls(state.clone(), clock, opts.ca, &names)
            .await
            .map_err(|e| {
                e.into_error(
                    ApiServerError::Cert,
                    ApiServerError::Tls,
                    ApiServerError::Bind,
                )
            })?;
        Ok(Self {
            state,
            endpoint,
            token,
            controllers,
        })
    }

    /// The loopback address.
    pub fn addr(&self) -> SocketAddr {
        self.endpoint.addr()
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr())
    }

    /// The CA that signed the serving certificate.
    pub fn ca(&self) -> &Arc<TestCa> {
        self.endpoint.ca()
    }

    /// The CA as PEM.
    pub fn ca_pem(&self) -> String {
        self.endpoint.ca_pem()
    }

    /// The administrator's bearer token (the one in the kubeconfig).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Issues another accepted bearer token.
    pub fn issue_token(&self) -> String {
        let t = random_token();
        lock(&self.state.tokens).insert(t.clone());
        t
    }

    /// A kubeconfig for this server (context `testkit`, namespace `default`).
    pub fn kubeconfig_yaml(&self) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(self.ca_pem());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: testkit\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\n\
             contexts:\n- name: testkit\n  context:\n    cluster: testkit\n    user: testkit-admin\n    namespace: default\n\
             current-context: testkit\nusers:\n- name: testkit-admin\n  user:\n    token: {}\n",
            self.url(),
            self.token
        )
    }

    /// Writes the kubeconfig to `dir/kubeconfig` and returns the path.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, dir: &Path) -> Result<PathBuf, ApiServerError> {
        let path = dir.join("kubeconfig");
        std::fs::write(&path, self.kubeconfig_yaml()).map_err(|source| ApiServerError::Write {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        self.endpoint.clock()
    }

    /// HTTP-level fault injection (statuses, latency, dropped connections by method/path).
    pub fn faults(&self) -> &Faults {
        self.endpoint.faults()
    }

    /// Every request answered.
    pub fn log(&self) -> &RequestLog {
        self.endpoint.log()
    }

    /// Watch faults and signals.
    pub fn watches(&self) -> &WatchControl {
        &self.state.watches
    }

    /// Forgets the event history: every watch or continue token from an older
    /// resourceVersion gets `410 Gone`.
    pub fn compact(&self) {
        lock(&self.state.inner).store.compact();
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.state.inner).store.rv()
    }

    /// An object as stored (storage version), for assertions.
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = store::Key {
            group: group.into(),
            plural: plural.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        lock(&self.state.inner).store.get(&key).cloned()
    }

    /// Names of the objects of `group`/`plural` in `namespace` (`None`: all), sorted.
    pub fn names(&self, group: &str, plural: &str, namespace: Option<&str>) -> Vec<String> {
        lock(&self.state.inner)
            .store
            .list(group, plural, namespace, None)
            .map(|(k, _)| k.name.clone())
            .collect()
    }

    /// Write requests answered so far (POST, PUT, PATCH, DELETE), for asserting API cost.
    pub fn writes(&self) -> usize {
        self.log()
            .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE"))
            .len()
    }
}

/// A new bearer token: `testkit.` and 24 random bytes in base64url.
fn random_token() -> String {
    format!(
        "testkit.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::ids::random_bytes::<24>())
    )
}
