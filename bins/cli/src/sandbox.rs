//! `akv2k8s sandbox`: the fakes for local development, until SIGINT/SIGTERM.
//!
//! Writes into its directory: `kubeconfig` (the API server fake, admin token, CA),
//! `testkit-ca.pem` (the CA behind every fake's certificate) and `akv2k8s.env` (mode 0600: the
//! environment `akv2k8s-controller` needs to read the fake Key Vault, client secret included),
//! prints the endpoints and the commands, then a line `akv2k8s sandbox: ready …` last.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use akv2k8s_bins_common::Shutdown;
use anyhow::Context as _;

use crate::args::SandboxArgs;
use crate::controller::RunningController;
use crate::fakes::Cluster;
use crate::manifests;

/// The line `sandbox` prints once everything is up (tests wait for it).
pub const READY: &str = "akv2k8s sandbox: ready";

/// Runs the sandbox until SIGINT/SIGTERM.
///
/// # Errors
///
/// The fixture is invalid, a fake cannot start, or the files cannot be written.
pub async fn run(args: SandboxArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::on_signals().context("installing the signal handlers")?;
    let fixture = manifests::fixture(args.fixture.as_deref())?;
    let cluster = Cluster::start(&fixture).await?;
    cluster.install_crd().await?;
    let (_temp, dir) = match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating --dir {}", dir.display()))?;
            (None, dir.canonicalize().unwrap_or_else(|_| dir.clone()))
        }
        None => {
            let temp = tempfile::Builder::new()
                .prefix("akv2k8s-sandbox-")
                .tempdir()
                .context("creating a temporary directory")?;
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    };
    let files = write_files(&cluster, &dir)?;
    let controller = match args.controller {
        true => Some(RunningController::start(&cluster, std::time::Duration::from_secs(1)).await?),
        false => None,
    };
    if args.with_examples {
        cluster.apply(&manifests::examples()?).await?;
    }

    let mut out = std::io::stdout().lock();
    out.write_all(describe(&cluster, &files, controller.is_some()).as_bytes())?;
    writeln!(out, "{READY} (Ctrl-C stops it)")?;
    out.flush()?;
    drop(out);

    shutdown.signalled().await;
    if let Some(controller) = controller {
        controller.stop().await?;
    }
    cluster.shutdown();
    println!("akv2k8s sandbox: stopped");
    Ok(())
}

/// Paths of the files the sandbox writes.
struct Files {
    kubeconfig: PathBuf,
    ca: PathBuf,
    env: PathBuf,
    /// The variables of `env`, the client secret replaced by a note.
    shown_env: Vec<(String, String)>,
}

fn write_files(cluster: &Cluster, dir: &Path) -> anyhow::Result<Files> {
    let kubeconfig = cluster
        .api
        .write_kubeconfig(dir)
        .context("writing the kubeconfig")?;
    let ca = cluster
        .azure
        .ca
        .write_pem(dir)
        .context("writing the CA certificate")?;
    let mut vars = vec![("AUTH_TYPE".to_owned(), "environment".to_owned())];
    vars.extend(
        cluster
            .azure
            .login
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v)),
    );
    vars.push((
        akv_auth::env::AKV2K8S_RESOLVE.to_owned(),
        cluster.azure.resolve_env(),
    ));
    vars.push(("SSL_CERT_FILE".to_owned(), ca.display().to_string()));
    let env = dir.join("akv2k8s.env");
    let mut text = String::from(
        "# akv2k8s sandbox: the environment akv2k8s-controller needs to read the fake Key Vault.\n\
         # Load it with: set -a; . ./akv2k8s.env; set +a\n",
    );
    for (k, v) in &vars {
        let _ = writeln!(text, "{k}={v}");
    }
    write_private(&env, &text)?;
    let shown_env = vars
        .into_iter()
        .map(|(k, v)| match k == akv_auth::env::AZURE_CLIENT_SECRET {
            true => (k, "(in the file)".to_owned()),
            false => (k, v),
        })
        .collect();
    Ok(Files {
        kubeconfig,
        ca,
        env,
        shown_env,
    })
}

/// Writes `text` readable by the owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

fn describe(cluster: &Cluster, files: &Files, controller: bool) -> String {
    let kv = cluster.azure.kv.addr();
    let entra = cluster.azure.entra.addr();
    let kubeconfig = files.kubeconfig.display();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "akv2k8s sandbox: fakes on 127.0.0.1 with the AzureKeyVaultSecret CRD installed{}\n",
        if controller {
            " and the controller running (resync 1 s)"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "  Kubernetes API server  {}", cluster.api.url());
    for (host, addr) in cluster.azure.kv.resolve_overrides() {
        let _ = writeln!(s, "  Key Vault              https://{host}/ -> {addr}");
    }
    let _ = writeln!(
        s,
        "  Entra ID               https://login.microsoftonline.com/ (every cloud's authority host) -> {entra}"
    );
    let _ = writeln!(
        s,
        "  IMDS                   http://{} (managed identities; AZURE_POD_IDENTITY_AUTHORITY_HOST)",
        cluster.azure.imds.addr()
    );
    let _ = writeln!(s, "  kubeconfig             {kubeconfig}");
    let _ = writeln!(s, "  CA certificate         {}", files.ca.display());
    let _ = writeln!(
        s,
        "  environment            {} (mode 0600: holds the client secret)\n",
        files.env.display()
    );
    let _ = writeln!(s, "kubectl:");
    let _ = writeln!(
        s,
        "  kubectl --kubeconfig {kubeconfig} get azurekeyvaultsecrets -A"
    );
    let _ = writeln!(
        s,
        "  kubectl --kubeconfig {kubeconfig} apply -f examples/akvs/\n"
    );
    let _ = writeln!(
        s,
        "akv2k8s-controller (signs in as fixture client {:?}):",
        cluster.azure.login.principal
    );
    let _ = writeln!(s, "  set -a; . {}; set +a", files.env.display());
    let _ = writeln!(
        s,
        "  akv2k8s-controller --kubeconfig {kubeconfig} --azure-resync-period=1"
    );
    let _ = writeln!(s, "  where {} sets:", files.env.display());
    for (k, v) in &files.shown_env {
        let _ = writeln!(s, "    {k}={v}");
    }
    let vault_host = cluster
        .azure
        .kv
        .resolve_overrides()
        .into_iter()
        .next()
        .map_or_else(|| "<vault>.vault.azure.net".to_owned(), |(h, _)| h);
    let _ = writeln!(
        s,
        "\nyour application: keep the production URLs, resolve the hosts above to their addresses \
         (AKV2K8S_RESOLVE for akv2k8s-rs clients) and trust {} (SSL_CERT_FILE), e.g.\n  \
         curl --connect-to {vault_host}:443:{kv} --cacert {} https://{vault_host}/secrets?api-version=2025-07-01\n  \
         (401 with the challenge; tokens come from Entra at {entra})\n",
        files.ca.display(),
        files.ca.display()
    );
    s
}
