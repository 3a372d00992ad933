//! `akv2k8s`: the operator CLI of akv2k8s-rs (docs/cli.md).
//!
//! * `demo`: the real controller against in-process fakes of Kubernetes, Key Vault and Entra
//!   ID, on the embedded examples, every step verified ([`demo`]).
//! * `render`: the Secrets/ConfigMaps the controller would write for AzureKeyVaultSecret
//!   manifests ([`render`], built on `k8s_sync::preview`).
//! * `sandbox`: the fakes for local development until Ctrl-C ([`sandbox`]).
//! * `crd`, `version`.
//!
//! Logs go to stderr at `warn` unless `RUST_LOG` says otherwise; output goes to stdout.

mod args;
mod controller;
mod demo;
mod fakes;
mod manifests;
mod render;
mod sandbox;
mod show;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo reports the controller's failures itself (Ready conditions), so its warnings
    // would say everything twice.
    let default = match cli.command {
        Command::Demo(_) => "error",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _no_second_subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    akv2k8s_bins_common::install_crypto_provider();
    let result = match cli.command {
        Command::Demo(a) => demo::run(a).await,
        Command::Render(a) => render::run(a).await,
        Command::Sandbox(a) => sandbox::run(a).await.map(|()| true),
        Command::Crd => k8s_sync::crd_yaml()
            .map(|yaml| print!("{yaml}"))
            .map(|()| true)
            .map_err(Into::into),
        Command::Version => {
            println!("akv2k8s {}", env!("CARGO_PKG_VERSION"));
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("akv2k8s: {e:#}");
            ExitCode::FAILURE
        }
    }
}
