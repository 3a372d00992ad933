//! `akv2k8s-controller`: the AzureKeyVaultSecret controller, a drop-in for akv2k8s's
//! `azure-keyvault-controller`. Parses upstream's argv and environment ([`args`]), builds the
//! Key Vault provider and the Kubernetes client ([`deps`]), serves `/healthz`, `/readyz` and
//! `/metrics` on `HTTP_PORT`, and runs [`k8s_sync::run`] until SIGTERM/SIGINT.

mod args;
mod deps;

use std::sync::Arc;

use akv2k8s_bins_common::{AdminServer, Readiness, Shutdown, install_crypto_provider, telemetry};
use anyhow::Context as _;
use k8s_sync::{SyncConfig, SyncDeps, SyncMetrics};
use prometheus_client::registry::Registry;

use crate::args::ControllerArgs;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ControllerArgs::parse_validated();
    if args.print_version {
        println!("akv2k8s-controller {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    telemetry::init(&args.log)?;
    install_crypto_provider();
    args.log_startup();
    let shutdown = Shutdown::on_signals().context("installing the signal handlers")?;

    let (key_vault, vault_dns_suffix) = deps::key_vaults(&args)?;
    let client = deps::kube_client(
        args.kubeconfig.as_deref(),
        args.master.as_deref(),
        &deps::user_agent(args.leader_elect_identity.as_deref()),
    )
    .await?;
    let mut registry = Registry::default();
    let metrics = SyncMetrics::register(&mut registry);
    let readiness = Readiness::new();
    let registry = args.metrics_enabled.then(|| Arc::new(registry));
    let admin = AdminServer::bind_all_interfaces(args.http_port, readiness.clone(), registry)
        .await
        .with_context(|| format!("listening on HTTP_PORT {}", args.http_port))?;
    let admin = tokio::spawn(admin.serve(shutdown.signalled()));

    let deps = SyncDeps {
        client,
        key_vault,
        metrics,
    };
    let cfg = SyncConfig {
        vault_dns_suffix,
        ..args.into()
    };
    // Ready once the API server serves the CRD (run checks again and fails without it).
    if k8s_sync::controller::check_crd(&deps.client, &cfg)
        .await
        .is_ok()
    {
        readiness.set_ready(true);
    }
    let result = k8s_sync::run(deps, cfg, shutdown.signalled()).await;
    readiness.set_ready(false);
    shutdown.trigger(); // the controller may stop on its own: stop the admin server too
    admin.await?.context("admin server")?;
    result.context("controller")
}
