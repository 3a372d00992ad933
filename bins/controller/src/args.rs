//! `akv2k8s-controller`'s command line: upstream akv2k8s's flags and environment, exactly as
//! the upstream Helm chart renders them (design §2.5, behaviour reference §2.1 and §6.3), plus
//! leader election and the resolve override.
//!
//! | upstream | here |
//! |---|---|
//! | `--cloudconfig=<path>` | same; default `/etc/kubernetes/azure.json` |
//! | `--version=<tag>` | a value, logged at startup (not a version printer: `--print-version`) |
//! | `--v=<n>` | klog verbosity → log level (`akv2k8s_bins_common::telemetry`) |
//! | `--logging-format=text\|json` | same |
//! | `--watch-all-namespaces[=<bool>]` | same; `false` watches `RUNTIME_NAMESPACE` only |
//! | `--kube-resync-period=<n>` | accepted and ignored: kube-rs watchers do not resync |
//! | `--azure-resync-period=<n>` | the Key Vault refresh interval (seconds, `0.5`, `500ms`, `2m`) |
//! | `--kubeconfig`, `--master` | same |
//! | klog's `--vmodule`, `--logtostderr`, … | accepted and ignored ([`KlogCompat`]) |
//! | env `AUTH_TYPE`, `OBJECT_LABELS`, `METRICS_ENABLED`, `HTTP_PORT`, `RUNTIME_NAMESPACE` | same (also as flags) |
//! | env `AZURE_*` | read by akv-auth through its `Env` |
//!
//! Added: `--print-version`; `--concurrency`; leader election (`--leader-elect[=<bool>]`,
//! default false because the upstream chart grants no lease permissions, `--leader-elect-resource-name`/`-namespace`, `--leader-elect-identity` or env
//! `POD_NAME`, else the host name, and the three client-go timings); `--resolve host=addr:port`
//! (repeatable; env `AKV2K8S_RESOLVE`, comma-separated). Extra trusted roots come from
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` (read by rustls-native-certs). Every env setting is also a
//! flag; a flag beats its variable.
//!
//! As with Go's `flag`, a repeated flag takes its last value. Go also accepts single-dash long
//! flags (`-v=2` works here, `-cloudconfig=…` does not) and `--bool value` (here an error); the
//! chart renders neither.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use akv_auth::AuthMode;
use akv_auth::cloud_config::DEFAULT_CLOUD_CONFIG_PATH;
use akv2k8s_bins_common::args::{
    parse_go_bool, parse_period, parse_positive_period, parse_resolve_entry,
};
use akv2k8s_bins_common::{KlogCompat, LogArgs};
use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser};

use k8s_sync::controller::DEFAULT_CONCURRENCY;
use k8s_sync::leader::{DEFAULT_LEASE_NAME, DEFAULT_NAMESPACE as DEFAULT_LEASE_NAMESPACE};
use k8s_sync::{LeaderElectionConfig, SyncConfig};

/// `akv2k8s-controller` flags and environment.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "akv2k8s-controller",
    about = "Syncs Azure Key Vault objects into Kubernetes Secrets and ConfigMaps \
             (AzureKeyVaultSecret controller; drop-in for akv2k8s's azure-keyvault-controller)",
    disable_version_flag = true,
    // Go's `flag`: a repeated flag takes its last value.
    args_override_self = true
)]
pub struct ControllerArgs {
    /// Cloud config file, read when AUTH_TYPE=azureCloudConfig.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_CLOUD_CONFIG_PATH)]
    pub cloudconfig: PathBuf,

    /// Version string to log at startup (the upstream chart passes the image tag). Use
    /// --print-version to print this binary's version.
    #[arg(long = "version", value_name = "TAG", default_value = "")]
    pub version: String,

    /// Print this binary's version and exit.
    #[arg(long)]
    pub print_version: bool,

    /// Logging: --v and --logging-format.
    #[command(flatten)]
    pub log: LogArgs,

    /// Kubeconfig file (out of cluster). Default: KUBECONFIG, ~/.kube/config, then in-cluster.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// API server URL; overrides the kubeconfig's (`host:port` means https).
    #[arg(long, value_name = "URL", value_parser = parse_master)]
    pub master: Option<String>,

    /// Watch AzureKeyVaultSecrets in every namespace; false: only in RUNTIME_NAMESPACE.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "true", value_parser = parse_go_bool)]
    pub watch_all_namespaces: bool,

    /// Accepted for compatibility and ignored: kube-rs watchers keep their caches current
    /// without periodic resyncs.
    #[arg(long, value_name = "PERIOD", default_value = "30", value_parser = parse_period)]
    pub kube_resync_period: Duration,

    /// How often each AzureKeyVaultSecret is refreshed from Key Vault: seconds (30, 0.5) or a
    /// duration (500ms, 2m).
    #[arg(long, value_name = "PERIOD", default_value = "30", value_parser = parse_positive_period)]
    pub azure_resync_period: Duration,

    /// AzureKeyVaultSecrets reconciled at once (0: no limit).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_CONCURRENCY)]
    pub concurrency: u16,

    /// Key Vault credential: azureCloudConfig, environment or environment-azidentity.
    #[arg(long, env = "AUTH_TYPE", value_name = "TYPE", default_value = "azureCloudConfig",
          value_parser = parse_auth_type)]
    pub auth_type: AuthMode,

    /// Only AzureKeyVaultSecrets with these labels (`k=v,k2=v2`), to shard between controllers.
    #[arg(long, env = "OBJECT_LABELS", value_name = "K=V,...", value_parser = parse_label_set)]
    pub object_labels: Option<String>,

    /// Serve /metrics on the HTTP port.
    #[arg(long, env = "METRICS_ENABLED", value_name = "BOOL", num_args = 0..=1,
          require_equals = true, default_missing_value = "true", default_value = "false",
          value_parser = parse_go_bool)]
    pub metrics_enabled: bool,

    /// Port of /healthz, /readyz and /metrics (plain HTTP, every interface).
    #[arg(long, env = "HTTP_PORT", value_name = "PORT", default_value_t = 9000)]
    pub http_port: u16,

    /// This controller's namespace: the watched one with --watch-all-namespaces=false, and the
    /// Lease's by default. The chart sets it from the pod's namespace.
    #[arg(long, env = "RUNTIME_NAMESPACE", value_name = "NAMESPACE")]
    pub runtime_namespace: Option<String>,

    /// Resolve HOST to ADDR:PORT instead of DNS (like curl --resolve); repeatable, or a
    /// comma-separated list in AKV2K8S_RESOLVE. Empty in production.
    #[arg(long, env = "AKV2K8S_RESOLVE", value_name = "HOST=ADDR:PORT", value_delimiter = ',',
          value_parser = parse_resolve_entry)]
    pub resolve: Vec<(String, SocketAddr)>,

    /// Run several replicas with one writer, elected through a coordination.k8s.io Lease
    /// (needs get/create/update on leases). Off by default: the upstream chart runs one replica
    /// and grants no lease permissions, so a drop-in install must not depend on them.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", default_value = "false", value_parser = parse_go_bool)]
    pub leader_elect: bool,

    /// Name of the Lease.
    #[arg(long, value_name = "NAME", default_value = DEFAULT_LEASE_NAME)]
    pub leader_elect_resource_name: String,

    /// Namespace of the Lease. Default: RUNTIME_NAMESPACE, else `default`.
    #[arg(long, value_name = "NAMESPACE")]
    pub leader_elect_resource_namespace: Option<String>,

    /// This replica's identity in the Lease. Default: POD_NAME, else the host name.
    #[arg(long, env = "POD_NAME", value_name = "ID")]
    pub leader_elect_identity: Option<String>,

    /// How long a Lease stays valid after its last renewal.
    #[arg(long, value_name = "PERIOD", default_value = "15", value_parser = parse_positive_period)]
    pub leader_elect_lease_duration: Duration,

    /// How long the leader keeps writing without a successful renewal.
    #[arg(long, value_name = "PERIOD", default_value = "10", value_parser = parse_positive_period)]
    pub leader_elect_renew_deadline: Duration,

    /// Interval between acquisition attempts and between renewals.
    #[arg(long, value_name = "PERIOD", default_value = "2", value_parser = parse_positive_period)]
    pub leader_elect_retry_period: Duration,

    /// klog flags, accepted and ignored.
    #[command(flatten)]
    pub klog: KlogCompat,
}

impl ControllerArgs {
    /// Parses the process's argv and environment and validates them; prints the error and exits
    /// with status 2 (as Go's `flag.ExitOnError`) when they are wrong.
    pub fn parse_validated() -> Self {
        Self::try_parse_validated_from(std::env::args_os(), system_hostname)
            .unwrap_or_else(|e| e.exit())
    }

    /// Parses `argv` (and the process environment for the `env` settings), then validates
    /// the combination; `hostname` is the leader-election identity of last resort.
    ///
    /// # Errors
    ///
    /// A bad value (the message names the flag) or a bad combination.
    pub fn try_parse_validated_from<I, T>(
        argv: I,
        hostname: impl FnOnce() -> Option<String>,
    ) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::try_parse_from(argv)
            .map_err(name_env_source)?
            .validate(hostname)
    }

    fn validate(mut self, hostname: impl FnOnce() -> Option<String>) -> Result<Self, clap::Error> {
        let error = |kind, msg: String| Err(Self::command().error(kind, msg));
        if self.print_version {
            return Ok(self);
        }
        blank_to_none(&mut self.runtime_namespace);
        blank_to_none(&mut self.leader_elect_resource_namespace);
        blank_to_none(&mut self.leader_elect_identity);
        if !self.watch_all_namespaces && self.runtime_namespace.is_none() {
            return error(
                ErrorKind::MissingRequiredArgument,
                "--watch-all-namespaces=false watches only RUNTIME_NAMESPACE, which is not set \
                 (the chart sets it from the pod's namespace; or pass --runtime-namespace)"
                    .to_owned(),
            );
        }
        if !self.leader_elect {
            return Ok(self);
        }
        if self.leader_elect_identity.is_none() {
            self.leader_elect_identity = hostname().filter(|h| !h.trim().is_empty());
        }
        if self.leader_elect_identity.is_none() {
            return error(
                ErrorKind::MissingRequiredArgument,
                "leader election needs an identity per replica: set POD_NAME (fieldRef \
                 metadata.name) or --leader-elect-identity, or pass --leader-elect=false"
                    .to_owned(),
            );
        }
        let (lease, renew, retry) = (
            self.leader_elect_lease_duration,
            self.leader_elect_renew_deadline,
            self.leader_elect_retry_period,
        );
        if !(retry < renew && renew < lease) {
            return error(
                ErrorKind::ArgumentConflict,
                format!(
                    "leader election timings must satisfy --leader-elect-retry-period ({retry:?}) \
                     < --leader-elect-renew-deadline ({renew:?}) < \
                     --leader-elect-lease-duration ({lease:?})"
                ),
            );
        }
        Ok(self)
    }

    /// The namespace to watch: `None` for every namespace.
    pub fn watched_namespace(&self) -> Option<&str> {
        match self.watch_all_namespaces {
            true => None,
            false => self.runtime_namespace.as_deref(),
        }
    }

    /// The Lease's namespace: the flag, else `RUNTIME_NAMESPACE`, else `default`.
    pub fn lease_namespace(&self) -> &str {
        self.leader_elect_resource_namespace
            .as_deref()
            .or(self.runtime_namespace.as_deref())
            .unwrap_or(DEFAULT_LEASE_NAMESPACE)
    }

    /// Logs the effective settings (no secrets: credentials are read by akv-auth, not here) and
    /// warns about flags that are accepted and ignored.
    pub fn log_startup(&self) {
        tracing::info!(
            version = %self.version,
            binary_version = env!("CARGO_PKG_VERSION"),
            auth_type = %self.auth_type,
            cloudconfig = %self.cloudconfig.display(),
            namespace = self.watched_namespace().unwrap_or("*"),
            object_labels = self.object_labels.as_deref().unwrap_or(""),
            azure_resync_period = ?self.azure_resync_period,
            metrics_enabled = self.metrics_enabled,
            http_port = self.http_port,
            leader_elect = self.leader_elect,
            lease = %format_args!("{}/{}", self.lease_namespace(), self.leader_elect_resource_name),
            identity = self.leader_elect_identity.as_deref().unwrap_or(""),
            resolve_overrides = self.resolve.len(),
            "akv2k8s-controller settings"
        );
        let ignored = self.klog.ignored();
        if !ignored.is_empty() {
            tracing::warn!(flags = ?ignored, "klog flags are accepted and ignored");
        }
    }
}

/// Adds a tip naming the environment variable behind a bad value when that variable is set: clap
/// names only the flag (`invalid value 'abc' for '--http-port <PORT>'`), while the chart sets
/// `HTTP_PORT`.
fn name_env_source(mut err: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue};
    if !matches!(
        err.kind(),
        ErrorKind::ValueValidation | ErrorKind::InvalidValue
    ) {
        return err;
    }
    let Some(ContextValue::String(invalid)) = err.get(ContextKind::InvalidArg) else {
        return err;
    };
    let flag = invalid
        .split([' ', '[', '='])
        .next()
        .unwrap_or_default()
        .to_owned();
    let cmd = ControllerArgs::command();
    let env = cmd
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| flag == format!("--{l}")))
        .find_map(|a| a.get_env())
        .filter(|env| std::env::var_os(env).is_some());
    if let Some(env) = env {
        let tip = format!(
            "{flag} takes its value from the environment variable {} when the flag is not given",
            env.to_string_lossy()
        );
        err.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![tip.into()]),
        );
    }
    err
}

fn blank_to_none(value: &mut Option<String>) {
    if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
        *value = None;
    }
}

/// The host name (`HOSTNAME`, else the kernel's), the leader-election identity of last resort.
pub fn system_hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

fn parse_auth_type(s: &str) -> Result<AuthMode, String> {
    s.parse::<AuthMode>().map_err(|e| e.to_string())
}

/// `--master`: an http(s) URL; `host[:port]` alone means https, as client-go.
fn parse_master(s: &str) -> Result<String, String> {
    let s = s.trim();
    let url = if s.contains("://") {
        s.to_owned()
    } else {
        format!("https://{s}")
    };
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a URL ({e}); expected e.g. https://10.0.0.1:6443"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("https" | "http"), Some(h)) if !h.is_empty() => Ok(url),
        _ => Err("expected an http(s) URL with a host, e.g. https://10.0.0.1:6443".to_owned()),
    }
}

/// `OBJECT_LABELS`: an equality label set `k=v,k2=v2`, as upstream's
/// `labels.ConvertSelectorToLabelsMap` (spaces around keys and values ignored); returns the
/// label selector, empty for an empty set.
fn parse_label_set(s: &str) -> Result<String, String> {
    let mut pairs = Vec::new();
    for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
        let mut parts = pair.split('=');
        let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!(
                "`{}` is not key=value; expected an equality label set k=v,k2=v2",
                pair.trim()
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        check_label_key(key).map_err(|why| format!("label key `{key}` {why}"))?;
        check_label_name(value, true).map_err(|why| format!("label value `{value}` {why}"))?;
        pairs.push(format!("{key}={value}"));
    }
    Ok(pairs.join(","))
}

fn check_label_key(key: &str) -> Result<(), &'static str> {
    let name = match key.split_once('/') {
        Some((prefix, name)) => {
            let dns_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                });
            if !dns_ok {
                return Err("has an invalid prefix (a lowercase DNS subdomain)");
            }
            name
        }
        None => key,
    };
    check_label_name(name, false)
}

/// A label name or value: at most 63 characters, alphanumerics with `-`, `_`, `.` inside.
fn check_label_name(s: &str, empty_ok: bool) -> Result<(), &'static str> {
    let alnum = |c: Option<u8>| c.is_some_and(|b| b.is_ascii_alphanumeric());
    match s {
        "" if empty_ok => Ok(()),
        "" => Err("is empty"),
        s if s.len() > 63 => Err("is longer than 63 characters"),
        s if !alnum(s.bytes().next()) || !alnum(s.bytes().last()) => {
            Err("must start and end with a letter or digit")
        }
        s if !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) =>
        {
            Err("may contain only letters, digits, '-', '_' and '.'")
        }
        _ => Ok(()),
    }
}

/// The controller's part of the command line. Settings the binary uses itself are named and
/// skipped here, so that a new flag does not compile until it is wired somewhere.
impl From<ControllerArgs> for SyncConfig {
    fn from(args: ControllerArgs) -> Self {
        let lease_namespace = args.lease_namespace().to_owned();
        let ControllerArgs {
            cloudconfig: _,   // credentials (main)
            version: _,       // logged at startup
            print_version: _, // main
            log: _,           // telemetry
            kubeconfig: _,    // kube client (main)
            master: _,        // kube client (main)
            watch_all_namespaces,
            kube_resync_period: _, // accepted and ignored: watchers do not resync
            azure_resync_period,
            concurrency,
            auth_type: _, // credentials (main)
            object_labels,
            metrics_enabled: _, // admin server (main)
            http_port: _,       // admin server (main)
            runtime_namespace,
            resolve: _, // HTTP options of credentials and Key Vault (main)
            leader_elect,
            leader_elect_resource_name,
            leader_elect_resource_namespace: _, // in `lease_namespace`
            leader_elect_identity,
            leader_elect_lease_duration,
            leader_elect_renew_deadline,
            leader_elect_retry_period,
            klog: _, // accepted and ignored
        } = args;
        let leader_election = leader_elect.then(|| LeaderElectionConfig {
            lease_name: leader_elect_resource_name,
            namespace: lease_namespace,
            holder_identity: leader_elect_identity.clone().unwrap_or_default(),
            lease_duration: leader_elect_lease_duration,
            renew_deadline: leader_elect_renew_deadline,
            retry_period: leader_elect_retry_period,
        });
        SyncConfig {
            namespace: runtime_namespace.filter(|_| !watch_all_namespaces),
            label_selector: object_labels.filter(|s| !s.is_empty()),
            azure_resync_period,
            concurrency,
            leader_election,
            event_instance: leader_elect_identity,
            ..SyncConfig::default()
        }
    }
}

#[cfg(test)]
mod tests;
