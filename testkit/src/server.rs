//! The HTTP(S) plumbing every fake shares: a loopback listener on an ephemeral port, TLS with
//! a testkit serving certificate (or plain HTTP, like IMDS), fault application, and the
//! request log.
//!
//! A fake implements [`Service`]: a synchronous function from a parsed request to a reply
//! plus the body its real counterpart sends for an injected status. The server applies the
//! faults first (latency on the testkit clock, a status, or a dropped connection), then asks the
//! service, then logs the request.
//!
//! Each fake's handle holds an `Endpoint`: the running server with its faults, request log
//! and clock, and the CA behind its serving certificate.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt as _, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::certs::{CertError, ServerIdentity, TestCa};
use crate::clock::Clock;
use crate::faults::{FaultAction, Faults, Outcome, RequestKey, RequestLog, RequestRecord};
use crate::token::{IssuerKeyError, TokenIssuer};

/// Largest request body a fake reads.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// A request as a fake sees it.
#[derive(Clone)]
pub struct FakeRequest {
    /// The client's address (loopback; tests may bind `127.0.0.x` to play several pods).
    pub peer: SocketAddr,
    /// Method.
    pub method: Method,
    /// Lower-case host from the `Host` header, without port.
    pub host: String,
    /// Percent-encoded path as sent.
    pub path: String,
    /// Raw query string (without `?`).
    pub raw_query: String,
    /// Decoded query pairs.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl fmt::Debug for FakeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Headers and body may carry tokens and secret values.
        f.debug_struct("FakeRequest")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl FakeRequest {
    /// The first value of query parameter `name`.
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The token of an `Authorization: Bearer <token>` header.
    pub fn bearer(&self) -> Option<&str> {
        let v = self.header("authorization")?;
        let (scheme, token) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

/// A fake's answer.
#[derive(Debug)]
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body (sent first when `stream` is set).
    pub body: Bytes,
    /// Chunks sent after `body` until the sender is dropped (watch streams).
    pub stream: Option<tokio::sync::mpsc::Receiver<Bytes>>,
    /// Outcome for the request log.
    pub outcome: Outcome,
    /// Object id of the authenticated caller.
    pub principal: Option<String>,
}

impl Reply {
    /// A JSON reply.
    pub fn json(status: StatusCode, body: &serde_json::Value, outcome: Outcome) -> Self {
        Self {
            status,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            body: Bytes::from(body.to_string()),
            stream: None,
            outcome,
            principal: None,
        }
    }

    /// Adds a header (ignored when the value is not a valid header value).
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    /// Records the authenticated caller.
    #[must_use]
    pub fn by(mut self, principal: Option<String>) -> Self {
        self.principal = principal;
        self
    }
}

/// What a fake implements.
pub trait Service: Send + Sync + 'static {
    /// Answers one request.
    fn handle(&self, req: &FakeRequest) -> Reply;
    /// The reply the real service sends with `status` (used for injected faults).
    fn fault_reply(&self, req: &FakeRequest, status: u16, retry_after: Option<u64>) -> Reply;
}

/// How a listener speaks.
#[derive(Clone)]
pub enum Transport {
    /// HTTPS with this serving identity.
    Tls(Arc<rustls::ServerConfig>),
    /// Plain HTTP (IMDS).
    Plain,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Tls(_) => "Transport::Tls",
            Transport::Plain => "Transport::Plain",
        })
    }
}

impl Transport {
    /// TLS 1.2/1.3 with `identity`, HTTP/1.1 by ALPN, ring as the provider (whatever the
    /// process default is).
    ///
    /// # Errors
    ///
    /// When rustls rejects the certificate or key.
    pub fn tls(identity: ServerIdentity) -> Result<Self, rustls::Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Transport::Tls(Arc::new(config)))
    }
}

/// A running fake server. Dropping it stops accepting and closes open connections.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl ServerHandle {
    /// The loopback address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and closes open connections.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Everything a server needs besides its service.
#[derive(Clone, Debug)]
pub struct ServerParts {
    /// Faults to apply.
    pub faults: Arc<Faults>,
    /// Where requests are logged.
    pub log: Arc<RequestLog>,
    /// Clock for latency and log timestamps.
    pub clock: Clock,
}

/// Starts serving `service` on `127.0.0.1:0`.
///
/// # Errors
///
/// When the listener cannot be bound.
pub async fn serve<S: Service>(
    service: Arc<S>,
    transport: Transport,
    parts: ServerParts,
) -> std::io::Result<ServerHandle> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let mut stop_rx = stopped.clone();
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop_rx.wait_for(|s| *s) => break,
            };
            let Ok((tcp, peer)) = accepted else { continue };
            let _ = tcp.set_nodelay(true);
            let conn = Connection {
                service: service.clone(),
                parts: parts.clone(),
                peer,
            };
            let transport = transport.clone();
            let stop = stopped.clone();
            tokio::spawn(async move {
                match transport {
                    Transport::Plain => conn.run(TokioIo::new(tcp), stop).await,
                    Transport::Tls(config) => {
                        // A failed handshake (untrusted CA, wrong name) ends the connection.
                        if let Ok(tls) = TlsAcceptor::from(config).accept(tcp).await {
                            conn.run(TokioIo::new(tls), stop).await;
                        }
                    }
                }
            });
        }
    });
    Ok(ServerHandle { addr, stop })
}

/// What every fake's handle shares: the running server, its faults, log and clock, and the CA
/// behind its serving certificate (`C = ()` for plain HTTP). The fakes delegate their
/// accessors here.
#[derive(Debug)]
pub(crate) struct Endpoint<C = Arc<TestCa>> {
    server: ServerHandle,
    parts: ServerParts,
    ca: C,
}

/// Why an [`Endpoint`] did not start; each fake maps it onto its own error type.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The CA or the serving certificate could not be made.
    Cert(CertError),
    /// rustls rejected the serving identity.
    Tls(rustls::Error),
    /// Binding the listener failed.
    Bind(std::io::Error),
}

impl StartError {
    /// The fake's own error for this one.
    pub(crate) fn into_error<E>(
        self,
        cert: impl FnOnce(CertError) -> E,
        tls: impl FnOnce(rustls::Error) -> E,
        bind: impl FnOnce(std::io::Error) -> E,
    ) -> E {
        match self {
            StartError::Cert(e) => cert(e),
            StartError::Tls(e) => tls(e),
            StartError::Bind(e) => bind(e),
        }
    }
}

/// The token issuer a fake was given, or a new one on `clock`.
///
/// # Errors
///
/// When a new issuer's checked-in key cannot be read.
pub(crate) fn issuer_or_new(
    issuer: Option<Arc<TokenIssuer>>,
    clock: &Clock,
) -> Result<Arc<TokenIssuer>, IssuerKeyError> {
    match issuer {
        Some(i) => Ok(i),
        None => TokenIssuer::new(clock.clone()).map(Arc::new),
    }
}

/// `(host, addr)` pairs as `AKV2K8S_RESOLVE` takes them: `host=addr:port` joined by `,`.
pub(crate) fn resolve_env(overrides: &[(String, SocketAddr)]) -> String {
    overrides
        .iter()
        .map(|(h, a)| format!("{h}={a}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn fresh_parts(clock: Clock) -> ServerParts {
    ServerParts {
        faults: Arc::default(),
        log: Arc::default(),
        clock,
    }
}

impl Endpoint {
    /// Serves `service` over HTTPS on `127.0.0.1:0` with a certificate for `names` from `ca`
    /// (default: a new CA), with no faults and an empty log on `clock`.
    pub(crate) async fn tls<S: Service>(
        service: Arc<S>,
        clock: Clock,
        ca: Option<Arc<TestCa>>,
        names: &[&str],
    ) -> Result<Self, StartError> {
        let ca = match ca {
            Some(ca) => ca,
            None => Arc::new(TestCa::new().map_err(StartError::Cert)?),
        };
        let identity = ca.issue_server(names).map_err(StartError::Cert)?;
        let transport = Transport::tls(identity).map_err(StartError::Tls)?;
        let parts = fresh_parts(clock);
        let server = serve(service, transport, parts.clone())
            .await
            .map_err(StartError::Bind)?;
        Ok(Self { server, parts, ca })
    }

    /// The CA that signed the serving certificate.
    pub(crate) fn ca(&self) -> &Arc<TestCa> {
        &self.ca
    }

    /// The CA certificate as PEM.
    pub(crate) fn ca_pem(&self) -> String {
        self.ca.pem()
    }
}

impl Endpoint<()> {
    /// Serves `service` over plain HTTP on `127.0.0.1:0`, with no faults and an empty log on
    /// `clock`.
    pub(crate) async fn plain<S: Service>(service: Arc<S>, clock: Clock) -> std::io::Result<Self> {
        let parts = fresh_parts(clock);
        let server = serve(service, Transport::Plain, parts.clone()).await?;
        Ok(Self {
            server,
            parts,
            ca: (),
        })
    }
}

impl<C> Endpoint<C> {
    /// The loopback address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The clock.
    pub(crate) fn clock(&self) -> &Clock {
        &self.parts.clock
    }

    /// Fault injection.
    pub(crate) fn faults(&self) -> &Faults {
        &self.parts.faults
    }

    /// Every request answered.
    pub(crate) fn log(&self) -> &RequestLog {
        &self.parts.log
    }

    /// `(host, addr)` for each of `hosts`: what a client's resolve override must map.
    pub(crate) fn resolve_overrides(
        &self,
        hosts: impl IntoIterator<Item = String>,
    ) -> Vec<(String, SocketAddr)> {
        hosts.into_iter().map(|h| (h, self.addr())).collect()
    }

    /// Stops the server (also done on drop).
    pub(crate) fn shutdown(&self) {
        self.server.shutdown();
    }
}

struct Connection<S> {
    service: Arc<S>,
    parts: ServerParts,
    peer: SocketAddr,
}

/// The error that makes hyper close a connection without answering.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DropConnection {}

impl<S: Service> Connection<S> {
    async fn run<I>(self, io: I, mut stop: watch::Receiver<bool>)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let this = Arc::new(self);
        let svc = hyper::service::service_fn(move |req| {
            let this = this.clone();
            async move { this.answer(req).await }
        });
        let conn = hyper::server::conn::http1::Builder::new().serve_connection(io, svc);
        tokio::select! {
            _ = conn => {}
            _ = stop.wait_for(|s| *s) => {}
        }
    }

    async fn answer(
        &self,
        req: http::Request<Incoming>,
    ) -> Result<Response<ReplyBody>, DropConnection> {
        let at = self.parts.clock.now();
        let (head, body) = req.into_parts();
        let body = match Limited::new(body, MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return Err(DropConnection),
        };
        let host = head
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .or_else(|| head.uri.host())
            .unwrap_or_default();
        let host = strip_port(host).to_ascii_lowercase();
        let raw_query = head.uri.query().unwrap_or_default().to_owned();
        let request = FakeRequest {
            peer: self.peer,
            method: head.method.clone(),
            host,
            path: head.uri.path().to_owned(),
            query: form_urlencoded::parse(raw_query.as_bytes())
                .into_owned()
                .collect(),
            raw_query,
            headers: head.headers,
            body,
        };

        let key = RequestKey {
            method: request.method.as_str(),
            host: &request.host,
            path: &request.path,
            authenticated: request.bearer().is_some(),
        };
        let applied = self.parts.faults.take(&key);
        if !applied.latency.is_zero() {
            let sleep = self.parts.clock.sleep(applied.latency);
            let mut sleep = std::pin::pin!(sleep);
            // Fix the deadline (first poll) before telling tests that the request is waiting.
            if futures_poll_once(sleep.as_mut()).await.is_pending() {
                self.parts.faults.note_delayed();
                sleep.await;
            }
        }
        let reply = match applied.outcome {
            Some(FaultAction::DropConnection) => {
                self.log(&request, at, 0, Outcome::Dropped, None);
                return Err(DropConnection);
            }
            Some(FaultAction::Status {
                status,
                retry_after,
            }) => {
                let mut r = self.service.fault_reply(&request, status, retry_after);
                r.outcome = Outcome::Faulted;
                r
            }
            Some(FaultAction::Latency(_)) | None => self.service.handle(&request),
        };
        self.log(
            &request,
            at,
            reply.status.as_u16(),
            reply.outcome,
            reply.principal.clone(),
        );

        let body = ReplyBody {
            first: Some(reply.body).filter(|b| !b.is_empty()),
            rest: reply.stream,
        };
        let mut response = Response::new(body);
        *response.status_mut() = reply.status;
        for (name, value) in reply.headers {
            response.headers_mut().append(name, value);
        }
        Ok(response)
    }

    fn log(
        &self,
        req: &FakeRequest,
        at: std::time::SystemTime,
        status: u16,
        outcome: Outcome,
        principal: Option<String>,
    ) {
        self.parts.log.push(RequestRecord {
            seq: 0,
            at,
            method: req.method.as_str().to_owned(),
            host: req.host.clone(),
            path: req.path.clone(),
            query: req.raw_query.clone(),
            status,
            outcome,
            principal,
            user_agent: req.header("user-agent").map(str::to_owned),
        });
    }
}

/// A response body: a first chunk, then chunks from a channel until it closes.
pub struct ReplyBody {
    first: Option<Bytes>,
    rest: Option<tokio::sync::mpsc::Receiver<Bytes>>,
}

impl hyper::body::Body for ReplyBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(first))));
        }
        match self.rest.as_mut() {
            None => Poll::Ready(None),
            Some(rx) => rx
                .poll_recv(cx)
                .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.rest.is_none()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        match (&self.first, &self.rest) {
            (Some(b), None) => hyper::body::SizeHint::with_exact(b.len() as u64),
            (None, None) => hyper::body::SizeHint::with_exact(0),
            _ => hyper::body::SizeHint::default(),
        }
    }
}

/// Polls a future once and reports whether it finished.
async fn futures_poll_once<F: std::future::Future + Unpin>(mut fut: F) -> std::task::Poll<()> {
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
            std::task::Poll::Ready(_) => std::task::Poll::Ready(()),
            std::task::Poll::Pending => std::task::Poll::Pending,
        })
    })
    .await
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_once(']').map(|(h, _)| &h[1..]).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_stripped_from_hosts() {
        assert_eq!(strip_port("v.vault.azure.net:443"), "v.vault.azure.net");
        assert_eq!(strip_port("v.vault.azure.net"), "v.vault.azure.net");
        assert_eq!(strip_port("[::1]:8080"), "::1");
    }
}
