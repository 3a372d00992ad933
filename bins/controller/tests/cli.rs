//! The built `akv2k8s-controller` run with the argv and environment the upstream chart renders
//! (behaviour reference §6.3). The binary logs its settings first; these tests read them from
//! the JSON log and then let the start fail on the missing cloud config or cluster (the run
//! against testkit's API server is in `tests/run.rs`).

use std::process::{Command, Output};

use serde_json::Value;

/// The controller container's args with the chart's default values, `logFormat: json`.
const CHART_ARGV: [&str; 7] = [
    "--cloudconfig=/etc/kubernetes/azure.json",
    "--version=1.8.4",
    "--v=2",
    "--logging-format=json",
    "--watch-all-namespaces=true",
    "--kube-resync-period=30",
    "--azure-resync-period=30",
];

/// The controller container's env with the chart's defaults (RUNTIME_NAMESPACE from the
/// fieldRef) plus POD_NAME.
const CHART_ENV: [(&str, &str); 5] = [
    ("AUTH_TYPE", "azureCloudConfig"),
    ("METRICS_ENABLED", "false"),
    ("HTTP_PORT", "9000"),
    ("RUNTIME_NAMESPACE", "akv2k8s"),
    ("POD_NAME", "akv2k8s-controller-5c9d8-x2x7q"),
];

fn run(argv: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_akv2k8s-controller"))
        .args(argv)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .expect("run akv2k8s-controller")
}

/// The settings event from JSON logs on stdout.
fn settings(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "akv2k8s-controller settings")
        .unwrap_or_else(|| {
            panic!(
                "no settings event; stdout: {stdout}; stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

#[test]
fn chart_argv_and_env_are_accepted() {
    let out = run(&CHART_ARGV, &CHART_ENV);
    let s = settings(&out);
    assert_eq!(s["level"], "INFO");
    assert_eq!(s["version"], "1.8.4");
    assert_eq!(s["auth_type"], "azureCloudConfig");
    assert_eq!(s["cloudconfig"], "/etc/kubernetes/azure.json");
    assert_eq!(s["namespace"], "*");
    assert_eq!(s["azure_resync_period"], "30s");
    assert_eq!(s["metrics_enabled"], false);
    assert_eq!(s["http_port"], 9000);
    assert_eq!(s["lease"], "akv2k8s/akv2k8s-controller");
    assert_eq!(s["identity"], "akv2k8s-controller-5c9d8-x2x7q");
    // No /etc/kubernetes/azure.json here: the start stops (upstream went on without a
    // credential) with an error that names the mode and the file.
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("AUTH_TYPE=azureCloudConfig"), "{stderr}");
    assert!(stderr.contains("/etc/kubernetes/azure.json"), "{stderr}");
}

#[test]
fn env_settings_are_read() {
    let env = [
        ("AUTH_TYPE", "environment"),
        ("OBJECT_LABELS", "shard=a,tier=backend"),
        ("METRICS_ENABLED", "true"),
        ("HTTP_PORT", "9100"),
        ("RUNTIME_NAMESPACE", "team-a"),
        ("POD_NAME", "replica-0"),
        (
            "AKV2K8S_RESOLVE",
            "login.microsoftonline.com=127.0.0.1:1,x.vault.azure.net=127.0.0.1:2",
        ),
    ];
    // A repeated flag takes its last value, as with Go's `flag`.
    let argv = [&CHART_ARGV[..], &["--watch-all-namespaces=false"]].concat();
    let out = run(&argv, &env);
    let s = settings(&out);
    assert_eq!(s["auth_type"], "environment");
    assert_eq!(s["object_labels"], "shard=a,tier=backend");
    assert_eq!(s["metrics_enabled"], true);
    assert_eq!(s["http_port"], 9100);
    assert_eq!(s["namespace"], "team-a");
    assert_eq!(s["lease"], "team-a/akv2k8s-controller");
    assert_eq!(s["identity"], "replica-0");
    assert_eq!(s["resolve_overrides"], 2);
    // The credential builds (managed identity is environment mode's last resort); with the
    // environment cleared there is no cluster to reach.
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no Kubernetes configuration"), "{stderr}");
}

#[test]
fn bad_env_values_fail_naming_flag_and_variable() {
    let table = [
        ("HTTP_PORT", "http", "--http-port"),
        ("METRICS_ENABLED", "yes", "--metrics-enabled"),
        ("AUTH_TYPE", "cloudConfig", "--auth-type"),
        ("OBJECT_LABELS", "shard", "--object-labels"),
        ("AKV2K8S_RESOLVE", "vault.azure.net", "--resolve"),
    ];
    for (var, value, flag) in table {
        let out = run(&CHART_ARGV, &[(var, value), ("POD_NAME", "p")]);
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag), "{var}={value}: {stderr}");
        assert!(stderr.contains(var), "{var}={value}: {stderr}");
        assert!(out.stdout.is_empty(), "nothing logged before the error");
    }
}

#[test]
fn print_version_prints_and_version_does_not() {
    let out = run(&["--print-version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("akv2k8s-controller {}\n", env!("CARGO_PKG_VERSION"))
    );
    let out = run(&CHART_ARGV, &CHART_ENV);
    assert!(
        !String::from_utf8_lossy(&out.stdout).starts_with("akv2k8s-controller "),
        "--version=<tag> is a value"
    );
}

#[test]
fn rust_log_overrides_verbosity() {
    let out = run(&CHART_ARGV, &[("RUST_LOG", "error"), ("POD_NAME", "p")]);
    assert!(out.stdout.is_empty(), "info filtered out by RUST_LOG=error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("azure.json"));
    let out = run(
        &CHART_ARGV,
        &[("RUST_LOG", "akv2k8s=loud"), ("POD_NAME", "p")],
    );
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RUST_LOG"));
}

#[test]
fn watching_one_namespace_needs_runtime_namespace() {
    let argv = [&CHART_ARGV[..4], &["--watch-all-namespaces=false"]].concat();
    let out = run(&argv, &[("POD_NAME", "p")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("RUNTIME_NAMESPACE"), "{stderr}");
}
