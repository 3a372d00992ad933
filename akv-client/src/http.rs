//! The HTTP client handed to the Azure SDK as its transport: DESIGN §5's resolve override
//! (`HOST=ADDR:PORT`, curl-like) and extra trusted roots.
//!
//! **Interim:** `akv-auth` will own the one HTTP client builder of the workspace (shared by
//! credentials and Key Vault). Until it lands, [`HttpOptions::build`] is here; afterwards
//! [`crate::azure::AzureOptions::http`] should take `akv_auth`'s client and this module
//! shrinks to a re-export.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::{Error, Result};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default whole-request timeout (upstream runs each Key Vault call under 30 s).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How to build the HTTP client.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Host names resolved to fixed addresses (`--resolve`, `AKV2K8S_RESOLVE`); empty in
    /// production.
    pub resolve: Vec<(String, SocketAddr)>,
    /// Extra trusted roots (PEM, one or more certificates per entry).
    pub extra_roots_pem: Vec<String>,
    /// Trust only `extra_roots_pem` (tests against the fakes) instead of adding them to the
    /// system roots.
    pub extra_roots_only: bool,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout.
    pub request_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            resolve: Vec::new(),
            extra_roots_pem: Vec::new(),
            extra_roots_only: false,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

impl HttpOptions {
    /// Parses one `HOST=ADDR:PORT` override (`ADDR` may be `[v6]`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the malformed entry.
    pub fn parse_resolve(entry: &str) -> Result<(String, SocketAddr)> {
        let invalid = || Error::InvalidConfig {
            field: "resolve",
            reason: format!("'{entry}' is not HOST=ADDR:PORT"),
        };
        let (host, addr) = entry.split_once('=').ok_or_else(invalid)?;
        let addr: SocketAddr = addr.trim().parse().map_err(|_| invalid())?;
        let host = host.trim().to_ascii_lowercase();
        if host.is_empty() {
            return Err(invalid());
        }
        Ok((host, addr))
    }

    /// Builds the reqwest client. The process must have installed rustls' ring provider.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for unreadable roots, [`Error::BuildClient`] when reqwest fails.
    pub fn build(&self) -> Result<reqwest::Client> {
        let mut roots = Vec::new();
        for pem in &self.extra_roots_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|_| {
                Error::InvalidConfig {
                    field: "extra_roots_pem",
                    reason: "not a PEM certificate bundle".into(),
                }
            })?;
            roots.extend(certs);
        }
        let mut b = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout);
        if self.extra_roots_only {
            b = b.tls_certs_only(roots);
        } else if !roots.is_empty() {
            b = b.tls_certs_merge(roots);
        }
        for (host, addr) in &self.resolve {
            b = b.resolve(host, *addr);
        }
        b.build().map_err(|e| Error::BuildClient {
            vault: String::new(),
            kind: "http",
            source: Box::new(e),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_entries_parse_like_curl() {
        let (h, a) =
            HttpOptions::parse_resolve("MyVault.vault.azure.net=127.0.0.1:8443").expect("v4");
        assert_eq!((h.as_str(), a.port()), ("myvault.vault.azure.net", 8443));
        assert!(HttpOptions::parse_resolve("[::1]:1").is_err());
        assert!(HttpOptions::parse_resolve("h=[::1]:443").is_ok());
        assert!(HttpOptions::parse_resolve("h=localhost").is_err());
    }
}
