//! What every akv2k8s-rs binary shares, so that each `main.rs` only parses and wires.
//!
//! * [`args`]: parsers for the flag syntax upstream akv2k8s (Go `flag` + klog) accepts, so the
//!   argv the upstream Helm chart renders works unchanged: Go booleans (`--flag`,
//!   `--flag=true|false|1|0|t|f`), periods as bare seconds or humantime strings (`30`, `0.5`,
//!   `500ms`, `2m`), `--resolve host=addr:port`, and the clap pieces shared by the controller
//!   and the env-injector ([`LogArgs`]: `--v`, `--logging-format`; [`KlogCompat`]: klog flags
//!   accepted and ignored).
//! * [`telemetry`]: the tracing subscriber (`text` or `json`, klog `--v` mapped to levels,
//!   `RUST_LOG` overrides).
//! * [`shutdown`]: SIGTERM/SIGINT as a shutdown future; a second signal exits 1, as upstream.
//! * [`tls`]: installs rustls' ring provider (the workspace builds rustls without a default).
//! * [`admin`] (feature `admin`, on by default): the plain-HTTP server for `/healthz`,
//!   `/readyz` and `/metrics` (prometheus-client text encoding) on `HTTP_PORT`.
//!
//! # Place in the crate graph
//!
//! ```text
//! akv-auth  <-  akv-client  <-  {k8s-sync, k8s-mutate}  <-  bins (this package + one per binary)
//! ```
//!
//! Only `bins` may use clap, anyhow, tracing-subscriber and signal handlers (STYLE.md §1); the
//! libraries never install a subscriber, a signal handler or a `Registry`.
#![warn(missing_docs)]

#[cfg(feature = "admin")]
pub mod admin;
pub mod args;
pub mod shutdown;
pub mod telemetry;
pub mod tls;

#[cfg(feature = "admin")]
pub use admin::{AdminServer, Readiness};
pub use args::{KlogCompat, LogArgs, LogFormat};
pub use shutdown::Shutdown;
pub use tls::install_crypto_provider;
