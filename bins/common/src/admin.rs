//! The plain-HTTP admin server on `HTTP_PORT`: `/healthz`, `/readyz` and, when metrics are
//! enabled, `/metrics`.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | 200, empty body: the process serves (upstream's liveness and readiness probe) |
//! | `GET /readyz` | 200 `ok` once the binary calls [`Readiness::set_ready`], else 503 `not ready` |
//! | `GET /metrics` | the root registry in the OpenMetrics text format; 404 when metrics are off |
//!
//! Any other method on these paths gets 405 `Invalid request method`, as upstream's
//! `/healthz`; `HEAD` is answered like `GET`. Upstream serves `/healthz` whether or not
//! `METRICS_ENABLED` is set, because the chart's probes use it; so does this server.

use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;

/// Content type of `/metrics` (prometheus-client writes OpenMetrics text).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Body of a 405, as upstream's.
const INVALID_METHOD: &str = "Invalid request method";

/// Whether the component is ready to do its work (`/readyz`). Clones share the flag.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Not ready.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the component ready or not ready.
    pub fn set_ready(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    /// Whether it is ready.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[derive(Clone)]
struct AppState {
    readiness: Readiness,
    metrics: Option<Arc<Registry>>,
}

/// The admin routes: `readiness` for `/readyz`, and `/metrics` only when `metrics` is `Some`.
pub fn router(readiness: Readiness, metrics: Option<Arc<Registry>>) -> Router {
    let with_metrics = metrics.is_some();
    let router = Router::new()
        .route("/healthz", any(healthz))
        .route("/readyz", any(readyz));
    let router = if with_metrics {
        router.route("/metrics", any(metrics_handler))
    } else {
        router
    };
    router.with_state(AppState { readiness, metrics })
}

fn method_allowed(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

async fn healthz(method: Method) -> Response {
    if !method_allowed(&method) {
        return (StatusCode::METHOD_NOT_ALLOWED, INVALID_METHOD).into_response();
    }
    StatusCode::OK.into_response()
}

async fn readyz(method: Method, State(state): State<AppState>) -> Response {
    if !method_allowed(&method) {
        return (StatusCode::METHOD_NOT_ALLOWED, INVALID_METHOD).into_response();
    }
    if state.readiness.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics_handler(method: Method, State(state): State<AppState>) -> Response {
    if !method_allowed(&method) {
        return (StatusCode::METHOD_NOT_ALLOWED, INVALID_METHOD).into_response();
    }
    let Some(registry) = state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut body = String::new();
    match prometheus_client::encoding::text::encode(&mut body, &registry) {
        Ok(()) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(
                error = &e as &dyn std::error::Error,
                "encoding metrics failed"
            );
            (StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable").into_response()
        }
    }
}

/// The admin server, bound and not yet serving.
#[derive(Debug)]
pub struct AdminServer {
    listener: TcpListener,
    router: Router,
}

impl AdminServer {
    /// Binds `addr` (port 0 picks a free port; see [`AdminServer::local_addr`]).
    ///
    /// # Errors
    ///
    /// The address cannot be bound (in use, no permission).
    pub async fn bind(
        addr: SocketAddr,
        readiness: Readiness,
        metrics: Option<Arc<Registry>>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self {
            listener,
            router: router(readiness, metrics),
        })
    }

    /// Binds `port` on every interface, as upstream's `:HTTP_PORT`: IPv6 and IPv4 (`[::]`,
    /// dual-stack on Linux), or IPv4 only (`0.0.0.0`) where IPv6 is unavailable.
    ///
    /// # Errors
    ///
    /// Neither address can be bound; the error is the IPv4 one.
    pub async fn bind_all_interfaces(
        port: u16,
        readiness: Readiness,
        metrics: Option<Arc<Registry>>,
    ) -> std::io::Result<Self> {
        let v6 = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
        match Self::bind(v6, readiness.clone(), metrics.clone()).await {
            Ok(server) => Ok(server),
            Err(e) => {
                tracing::debug!(error = &e as &dyn std::error::Error, "no IPv6 listener");
                let v4 = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
                Self::bind(v4, readiness, metrics).await
            }
        }
    }

    /// The bound address.
    ///
    /// # Errors
    ///
    /// The socket cannot report its address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    ///
    /// # Errors
    ///
    /// The listener fails.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::metrics::counter::Counter;

    use super::*;
    use crate::Shutdown;

    struct Running {
        base: String,
        http: reqwest::Client,
        shutdown: Shutdown,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(readiness: Readiness, metrics: Option<Arc<Registry>>) -> Running {
        crate::install_crypto_provider();
        let server = AdminServer::bind(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            readiness,
            metrics,
        )
        .await
        .expect("bind");
        let base = format!("http://{}", server.local_addr().expect("addr"));
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.serve(shutdown.signalled()));
        Running {
            base,
            http: reqwest::Client::new(),
            shutdown,
            task,
        }
    }

    impl Running {
        async fn get(&self, path: &str) -> (StatusCode, String) {
            self.request(Method::GET, path).await
        }

        async fn request(&self, method: Method, path: &str) -> (StatusCode, String) {
            let resp = self
                .http
                .request(method, format!("{}{path}", self.base))
                .send()
                .await
                .expect("request");
            let status = resp.status();
            (status, resp.text().await.expect("body"))
        }

        async fn stop(self) {
            self.shutdown.trigger();
            tokio::time::timeout(std::time::Duration::from_secs(10), self.task)
                .await
                .expect("server stops after shutdown")
                .expect("task")
                .expect("serve");
        }
    }

    #[tokio::test]
    async fn healthz_answers_get_with_an_empty_200_and_other_methods_with_405() {
        let srv = start(Readiness::new(), None).await;
        assert_eq!(srv.get("/healthz").await, (StatusCode::OK, String::new()));
        assert_eq!(
            srv.request(Method::HEAD, "/healthz").await.0,
            StatusCode::OK
        );
        assert_eq!(
            srv.request(Method::POST, "/healthz").await,
            (
                StatusCode::METHOD_NOT_ALLOWED,
                "Invalid request method".to_owned()
            )
        );
        srv.stop().await;
    }

    #[tokio::test]
    async fn readyz_follows_the_readiness_flag() {
        let readiness = Readiness::new();
        let srv = start(readiness.clone(), None).await;
        assert_eq!(
            srv.get("/readyz").await,
            (StatusCode::SERVICE_UNAVAILABLE, "not ready".to_owned())
        );
        readiness.set_ready(true);
        assert_eq!(srv.get("/readyz").await, (StatusCode::OK, "ok".to_owned()));
        readiness.set_ready(false);
        assert_eq!(srv.get("/readyz").await.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            srv.request(Method::DELETE, "/readyz").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        srv.stop().await;
    }

    #[tokio::test]
    async fn metrics_serves_the_registry_as_openmetrics_text() {
        let mut registry = Registry::default();
        let syncs = Counter::<u64>::default();
        registry.register("akv2k8s_syncs", "Syncs", syncs.clone());
        syncs.inc_by(3);
        let srv = start(Readiness::new(), Some(Arc::new(registry))).await;

        let resp = srv
            .http
            .get(format!("{}/metrics", srv.base))
            .send()
            .await
            .expect("scrape");
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(
            resp.headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok()),
            Some(METRICS_CONTENT_TYPE)
        );
        let body = resp.text().await.expect("body");
        assert!(body.contains("# TYPE akv2k8s_syncs counter"), "{body}");
        assert!(body.contains("akv2k8s_syncs_total 3"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
        assert_eq!(
            srv.request(Method::PUT, "/metrics").await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        srv.stop().await;
    }

    #[tokio::test]
    async fn metrics_is_absent_when_disabled_while_healthz_stays() {
        let srv = start(Readiness::new(), None).await;
        assert_eq!(srv.get("/metrics").await.0, StatusCode::NOT_FOUND);
        assert_eq!(srv.get("/healthz").await.0, StatusCode::OK);
        assert_eq!(srv.get("/other").await.0, StatusCode::NOT_FOUND);
        srv.stop().await;
    }

    #[tokio::test]
    async fn binding_a_port_in_use_fails() {
        let srv = AdminServer::bind(
            SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            Readiness::new(),
            None,
        )
        .await
        .expect("bind");
        let taken = srv.local_addr().expect("addr");
        let err = AdminServer::bind(taken, Readiness::new(), None)
            .await
            .expect_err("port in use");
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    }

    #[tokio::test]
    async fn all_interfaces_listener_answers_on_loopback() {
        let server = AdminServer::bind_all_interfaces(0, Readiness::new(), None)
            .await
            .expect("bind");
        let port = server.local_addr().expect("addr").port();
        let shutdown = Shutdown::new();
        let task = tokio::spawn(server.serve(shutdown.signalled()));
        crate::install_crypto_provider();
        let status = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
            .await
            .expect("IPv4 loopback reaches the all-interfaces listener")
            .status();
        assert_eq!(status, StatusCode::OK);
        shutdown.trigger();
        task.await.expect("task").expect("serve");
    }
}
