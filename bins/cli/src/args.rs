//! `akv2k8s`'s command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use akv_auth::AuthMode;
use akv_auth::cloud_config::DEFAULT_CLOUD_CONFIG_PATH;
use akv2k8s_bins_common::args::{parse_positive_period, parse_resolve_entry};
use clap::{Args, Parser, Subcommand};

/// The akv2k8s-rs operator CLI.
#[derive(Debug, Parser)]
#[command(
    name = "akv2k8s",
    version,
    about = "akv2k8s-rs operator CLI: try the controller on embedded fakes (demo), see what an \
             AzureKeyVaultSecret produces before applying it (render), run the fakes for local \
             development (sandbox), print the CRD (crd)"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the real controller against in-process fakes of Kubernetes, Key Vault and Entra ID
    /// on the embedded examples, rotate a Key Vault value, and check every step.
    Demo(DemoArgs),
    /// Print the Secrets and ConfigMaps the controller would write for AzureKeyVaultSecret
    /// manifests (multi-document YAML in and out).
    Render(RenderArgs),
    /// Start the fakes (Kubernetes API server with the CRD, Key Vault, Entra ID) until Ctrl-C,
    /// and print how to point kubectl, akv2k8s-controller or an application at them.
    Sandbox(SandboxArgs),
    /// Print the AzureKeyVaultSecret CustomResourceDefinition (crds/azurekeyvaultsecrets.spv.no.yaml).
    Crd,
    /// Print the version.
    Version,
}

/// `akv2k8s demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Print secret values (default: masked, their length only).
    #[arg(long)]
    pub show_values: bool,

    /// Vault fixture to seed Key Vault and Entra with, instead of the embedded
    /// examples/vault-fixture.yaml (format: docs/testkit-fixtures.md).
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,

    /// Directory (or file) of manifests (Namespaces and AzureKeyVaultSecrets) to apply instead
    /// of the embedded examples/akvs/.
    #[arg(long, value_name = "DIR")]
    pub examples: Option<PathBuf>,

    /// The Key Vault secret to rotate (a new version), read by at least one example.
    #[arg(long, value_name = "NAME", default_value = "db-password")]
    pub rotate: String,

    /// The controller's --azure-resync-period: how soon a rotation reaches the Secrets.
    #[arg(long, value_name = "PERIOD", default_value = "1", value_parser = parse_positive_period)]
    pub resync_period: Duration,
}

/// `akv2k8s render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// Manifest files or directories (their *.yaml, *.yml, *.json); `-` reads standard input.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,

    /// Read Key Vault from an in-process fake seeded with this vault fixture (signing in as
    /// its first client with a secret) instead of the real Key Vault.
    #[arg(long, value_name = "FILE")]
    pub vault_fixture: Option<PathBuf>,

    /// Print secret values (default: masked, their length only; masked output cannot be
    /// applied).
    #[arg(long)]
    pub show_values: bool,

    /// Namespace of AzureKeyVaultSecrets that name none.
    #[arg(short = 'n', long, value_name = "NAMESPACE", default_value = "default")]
    pub namespace: String,

    /// Key Vault credential (real Key Vault only): azureCloudConfig, environment or
    /// environment-azidentity, as akv2k8s-controller.
    #[arg(long, env = "AUTH_TYPE", value_name = "TYPE", default_value = "azureCloudConfig",
          value_parser = parse_auth_type)]
    pub auth_type: AuthMode,

    /// Cloud config file, read when AUTH_TYPE=azureCloudConfig.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CLOUD_CONFIG_PATH)]
    pub cloudconfig: PathBuf,

    /// Resolve HOST to ADDR:PORT instead of DNS (like curl --resolve); repeatable, or a
    /// comma-separated list in AKV2K8S_RESOLVE.
    #[arg(long, env = "AKV2K8S_RESOLVE", value_name = "HOST=ADDR:PORT", value_delimiter = ',',
          value_parser = parse_resolve_entry)]
    pub resolve: Vec<(String, SocketAddr)>,
}

/// `akv2k8s sandbox`.
#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Vault fixture to seed Key Vault and Entra with (default: the embedded
    /// examples/vault-fixture.yaml).
    #[arg(long, value_name = "FILE")]
    pub fixture: Option<PathBuf>,

    /// Directory for the kubeconfig, the CA certificate and the environment file (created if
    /// missing). Default: a new temporary directory, removed on exit.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Also run the controller in-process (as `akv2k8s-controller` would, resync 1 s), so
    /// AzureKeyVaultSecrets applied with kubectl are synced.
    #[arg(long)]
    pub controller: bool,

    /// Apply the embedded examples (examples/akvs/) after start.
    #[arg(long)]
    pub with_examples: bool,
}

fn parse_auth_type(s: &str) -> Result<AuthMode, String> {
    s.parse::<AuthMode>().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn render_takes_several_files_and_a_fixture() {
        let cli = Cli::try_parse_from([
            "akv2k8s",
            "render",
            "-f",
            "a.yaml",
            "-f",
            "dir",
            "--vault-fixture",
            "v.yaml",
        ])
        .expect("parses");
        let Command::Render(r) = cli.command else {
            panic!("render");
        };
        assert_eq!(r.files, [PathBuf::from("a.yaml"), PathBuf::from("dir")]);
        assert_eq!(r.vault_fixture, Some(PathBuf::from("v.yaml")));
        assert!(!r.show_values);
    }

    #[test]
    fn render_without_files_is_refused() {
        let err = Cli::try_parse_from(["akv2k8s", "render"]).expect_err("-f is required");
        assert!(err.to_string().contains("--filename"), "{err}");
    }
}
