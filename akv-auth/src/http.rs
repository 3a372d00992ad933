//! The one place that builds the HTTP clients every provider uses.
//!
//! * Resolve override (`AKV2K8S_RESOLVE=host=addr:port,…`, empty in production): keep the
//!   production hostnames and redirect only name resolution (DESIGN §5).
//! * Roots: the system store, or `SSL_CERT_FILE`/`SSL_CERT_DIR` (honoured by
//!   rustls-native-certs), plus PEM roots given in [`HttpOptions::extra_roots_pem`].
//! * Bounded retries for the Azure SDK pipeline, and TLS verification failures reported at
//!   once ([`Error::Tls`]) instead of being retried for a minute.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use azure_core::http::{
    AsyncRawResponse, ClientOptions, ExponentialRetryOptions, HttpClient, Request, RetryOptions,
    Transport,
};

use crate::env::{AKV2K8S_RESOLVE, Env};
use crate::error::{Error, Result};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default per-request timeout.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Retry policy for requests sent through the Azure SDK pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryConfig {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First delay.
    pub initial_delay: Duration,
    /// Cap of one delay.
    pub max_delay: Duration,
    /// Cap of all attempts together.
    pub max_total: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total: Duration::from_secs(30),
        }
    }
}

impl RetryConfig {
    /// No retries.
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            ..Self::default()
        }
    }

    fn sdk(&self) -> RetryOptions {
        if self.max_retries == 0 {
            return RetryOptions::none();
        }
        let ms = |d: Duration| {
            azure_core::time::Duration::milliseconds(
                i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            )
        };
        RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: ms(self.initial_delay),
            max_retries: self.max_retries,
            max_total_elapsed: ms(self.max_total),
            max_delay: ms(self.max_delay),
        })
    }
}

/// How HTTP clients are built.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// `host → address` overrides (curl's `--resolve`).
    pub resolve: Vec<(String, SocketAddr)>,
    /// Extra trusted roots (PEM text; certificates only, never keys).
    pub extra_roots_pem: Vec<String>,
    /// Trust only [`HttpOptions::extra_roots_pem`], not the system store (tests).
    pub only_extra_roots: bool,
    /// Source address of outgoing connections (tests play a pod IP for NMI with it).
    pub local_address: Option<IpAddr>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Retries in the Azure SDK pipeline.
    pub retry: RetryConfig,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            resolve: Vec::new(),
            extra_roots_pem: Vec::new(),
            only_extra_roots: false,
            local_address: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryConfig::default(),
        }
    }
}

impl HttpOptions {
    /// Defaults plus `AKV2K8S_RESOLVE` from `env`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when `AKV2K8S_RESOLVE` is malformed.
    pub fn from_env(env: &Env) -> Result<Self> {
        Ok(Self {
            resolve: match env.get(AKV2K8S_RESOLVE) {
                Some(v) => parse_resolve(&v)?,
                None => Vec::new(),
            },
            ..Self::default()
        })
    }

    /// Trust only `ca_pem` (and never the system store).
    #[must_use]
    pub fn trust_only(mut self, ca_pem: impl Into<String>) -> Self {
        self.extra_roots_pem.push(ca_pem.into());
        self.only_extra_roots = true;
        self
    }

    /// Adds resolve overrides.
    #[must_use]
    pub fn resolve<I: IntoIterator<Item = (String, SocketAddr)>>(mut self, entries: I) -> Self {
        self.resolve.extend(entries);
        self
    }

    fn roots_description(&self) -> String {
        let env_roots = ["SSL_CERT_FILE", "SSL_CERT_DIR"]
            .iter()
            .filter_map(|v| std::env::var(v).ok().map(|p| format!("{v}={p}")))
            .collect::<Vec<_>>();
        let base = if self.only_extra_roots {
            "no system roots".to_owned()
        } else if env_roots.is_empty() {
            "the system store".to_owned()
        } else {
            env_roots.join(", ")
        };
        match self.extra_roots_pem.len() {
            0 => base,
            n => format!("{base} + {n} extra root(s)"),
        }
    }

    /// Builds a reqwest client with these options (and `identity` for mTLS).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when an extra root is not PEM or the client cannot be built.
    pub fn reqwest_client(&self, identity: Option<reqwest::Identity>) -> Result<reqwest::Client> {
        let mut roots = Vec::new();
        for pem in &self.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| {
                Error::InvalidConfig {
                    field: "HttpOptions::extra_roots_pem",
                    reason: "not a PEM certificate bundle".into(),
                }
            })?;
            if certs.is_empty() {
                // Trusting "nothing" by accident would fail every handshake later with a
                // confusing message; say so now.
                return Err(Error::InvalidConfig {
                    field: "HttpOptions::extra_roots_pem",
                    reason: "holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
                        .into(),
                });
            }
            roots.extend(certs);
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout)
            .local_address(self.local_address);
        b = if self.only_extra_roots {
            b.tls_certs_only(roots)
        } else if !roots.is_empty() {
            b.tls_certs_merge(roots)
        } else {
            b
        };
        for (host, addr) in &self.resolve {
            b = b.resolve(host, *addr);
        }
        if let Some(id) = identity {
            b = b.identity(id);
        }
        b.build().map_err(|e| Error::InvalidConfig {
            field: "HttpOptions",
            reason: format!("the HTTP client could not be built: {e}"),
        })
    }

    /// Azure SDK client options: our transport (resolve override, roots, immediate TLS errors)
    /// and bounded retries.
    ///
    /// # Errors
    ///
    /// As [`HttpOptions::reqwest_client`].
    pub fn client_options(&self) -> Result<ClientOptions> {
        let transport = SdkTransport {
            client: self.reqwest_client(None)?,
            roots: self.roots_description(),
        };
        Ok(ClientOptions {
            transport: Some(Transport::new(Arc::new(transport))),
            retry: self.retry.sdk(),
            ..Default::default()
        })
    }

    /// Classifies a reqwest error: TLS failures become [`Error::Tls`].
    pub(crate) fn classify(&self, operation: &'static str, host: &str, e: reqwest::Error) -> Error {
        match tls_detail(&e) {
            Some(detail) => Error::Tls {
                host: host.to_owned(),
                detail,
                roots: self.roots_description(),
            },
            None => Error::Http {
                operation,
                host: host.to_owned(),
                source: e,
            },
        }
    }
}

/// The host of `url`; empty when it has none (for error context only).
pub(crate) fn host_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Parses `host=addr:port[,host=addr:port…]` (whitespace around entries is ignored).
///
/// ```
/// let r = akv_auth::http::parse_resolve("login.microsoftonline.com=127.0.0.1:8443").unwrap();
/// assert_eq!(r[0].0, "login.microsoftonline.com");
/// assert_eq!(r[0].1.port(), 8443);
/// ```
///
/// # Errors
///
/// [`Error::InvalidConfig`] naming the entry and what is wrong with it.
pub fn parse_resolve(value: &str) -> Result<Vec<(String, SocketAddr)>> {
    let bad = |entry: &str, why: &str| Error::InvalidConfig {
        field: AKV2K8S_RESOLVE,
        reason: format!("entry `{entry}` {why}; expected host=addr:port[,host=addr:port…]"),
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let (host, addr) = entry
                .split_once('=')
                .ok_or_else(|| bad(entry, "has no `=`"))?;
            let host = host.trim();
            if host.is_empty() || host.contains(['/', ':', ' ']) {
                return Err(bad(entry, "has no valid host name"));
            }
            let addr: SocketAddr = addr
                .trim()
                .parse()
                .map_err(|_| bad(entry, "has no valid addr:port (IPv6 as [::1]:443)"))?;
            Ok((host.to_ascii_lowercase(), addr))
        })
        .collect()
}

/// A TLS verification failure's description, if `e` is one.
fn tls_detail(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r.to_string());
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(r.to_string());
        }
        let text = err.to_string();
        if text.contains("invalid peer certificate") {
            return Some(text);
        }
        cur = err.source();
    }
    None
}

/// reqwest as the Azure SDK's transport, with TLS failures turned into non-retried errors.
#[derive(Debug)]
struct SdkTransport {
    client: reqwest::Client,
    roots: String,
}

#[async_trait::async_trait]
impl HttpClient for SdkTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        match self.client.execute_request(request).await {
            Ok(r) => Ok(r),
            Err(e) => match tls_detail(&e) {
                Some(detail) => Err(azure_core::Error::new(
                    azure_core::error::ErrorKind::Other,
                    Error::Tls {
                        host: request.url().host_str().unwrap_or_default().to_owned(),
                        detail,
                        roots: self.roots.clone(),
                    },
                )),
                None => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_root_without_any_certificate_is_refused() {
        testkit::install_crypto_provider();
        let err = HttpOptions::default()
            .trust_only("not a certificate")
            .reqwest_client(None)
            .expect_err("no certificate in the root");
        assert!(err.to_string().contains("extra_roots_pem"), "{err}");
    }

    #[test]
    fn resolve_overrides_parse_and_malformed_entries_are_named() {
        let ok = parse_resolve(" a.example=127.0.0.1:1 , B.example=[::1]:443,").expect("parse");
        assert_eq!(
            ok,
            vec![
                ("a.example".to_owned(), "127.0.0.1:1".parse().expect("addr")),
                ("b.example".to_owned(), "[::1]:443".parse().expect("addr")),
            ]
        );
        for bad in [
            "a.example",
            "a.example=127.0.0.1",
            "=1.2.3.4:5",
            "https://x=1.2.3.4:5",
        ] {
            let e = parse_resolve(bad).expect_err(bad);
            assert!(e.to_string().contains(AKV2K8S_RESOLVE), "{e}");
        }
        assert!(parse_resolve("").expect("empty").is_empty());
    }

    #[test]
    fn retry_config_none_disables_retries() {
        assert_eq!(RetryConfig::none().max_retries, 0);
        let o =
            HttpOptions::from_env(&Env::from([(AKV2K8S_RESOLVE, "h=1.2.3.4:5")])).expect("options");
        assert_eq!(o.resolve.len(), 1);
    }

    fn host_name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9]([a-zA-Z0-9-]{0,8}[a-zA-Z0-9])?(\\.[a-zA-Z0-9-]{1,8}){0,3}"
    }

    fn socket_addr() -> impl Strategy<Value = SocketAddr> {
        (any::<IpAddr>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(ip, port))
    }

    /// Spaces and tabs, as an operator might type them around entries and `=`.
    fn pad() -> impl Strategy<Value = String> {
        "[ \t]{0,2}"
    }

    proptest! {
        #[test]
        fn resolve_entries_round_trip_whatever_the_spacing_and_empty_entries(
            entries in proptest::collection::vec(
                (host_name(), socket_addr(), pad(), pad(), pad(), any::<bool>()),
                1..5,
            ),
            trailing_comma in any::<bool>(),
        ) {
            let mut text = String::new();
            for (i, (host, addr, before, around, after, empty_before)) in entries.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                if *empty_before {
                    text.push_str(around);
                    text.push(',');
                }
                text.push_str(&format!("{before}{host}{around}={around}{addr}{after}"));
            }
            if trailing_comma {
                text.push(',');
            }
            let want: Vec<(String, SocketAddr)> = entries
                .iter()
                .map(|(host, addr, ..)| (host.to_ascii_lowercase(), *addr))
                .collect();
            prop_assert_eq!(parse_resolve(&text).expect("well-formed"), want);
        }

        #[test]
        fn entries_without_equals_or_with_a_url_for_a_host_are_refused_naming_the_variable(
            host in host_name(),
            addr in socket_addr(),
            scheme in "(https?://|[a-z]+:|/)",
        ) {
            for bad in [host.clone(), format!("{scheme}{host}={addr}"), format!("={addr}")] {
                let err = parse_resolve(&bad).expect_err("malformed");
                let text = err.to_string();
                prop_assert!(text.contains(AKV2K8S_RESOLVE), "{}", text);
                prop_assert!(text.contains(bad.trim()), "names the entry: {}", text);
            }
        }

        #[test]
        fn arbitrary_values_never_panic_and_every_error_names_the_variable(value in "\\PC{0,40}") {
            match parse_resolve(&value) {
                Ok(entries) => {
                    for (host, _) in entries {
                        prop_assert!(!host.is_empty() && host == host.to_ascii_lowercase());
                    }
                }
                Err(e) => prop_assert!(e.to_string().contains(AKV2K8S_RESOLVE), "{}", e),
            }
        }
    }
}
