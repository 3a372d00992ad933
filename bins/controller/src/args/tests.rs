//! Parsing tests with the argv the upstream chart (akv2k8s 2.8.4) renders, written out as
//! literals (behaviour reference §6.3). Environment settings are exercised through the built
//! binary in `tests/cli.rs`, because clap reads them from the process environment.

use akv2k8s_bins_common::LogFormat;

use super::*;

/// The controller container's args with the chart's default values.
const CHART_DEFAULT: [&str; 7] = [
    "--cloudconfig=/etc/kubernetes/azure.json",
    "--version=1.8.4",
    "--v=2",
    "--logging-format=text",
    "--watch-all-namespaces=true",
    "--kube-resync-period=30",
    "--azure-resync-period=30",
];

fn parse(argv: &[&str]) -> Result<ControllerArgs, clap::Error> {
    parse_on_host(argv, Some("akv2k8s-controller-7d9f-abcde"))
}

fn parse_on_host(argv: &[&str], host: Option<&str>) -> Result<ControllerArgs, clap::Error> {
    ControllerArgs::try_parse_validated_from(
        std::iter::once("akv2k8s-controller").chain(argv.iter().copied()),
        || host.map(str::to_owned),
    )
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn chart_default_argv_parses_to_upstream_defaults() {
    let args = parse(&CHART_DEFAULT).expect("chart argv");
    assert_eq!(
        args.cloudconfig,
        PathBuf::from("/etc/kubernetes/azure.json")
    );
    assert_eq!(args.version, "1.8.4");
    assert!(
        !args.print_version,
        "--version=<tag> is a value, not a printer"
    );
    assert_eq!(args.log.verbosity, 2);
    assert_eq!(args.log.format, LogFormat::Text);
    assert!(args.watch_all_namespaces);
    assert_eq!(args.watched_namespace(), None);
    assert_eq!(args.kube_resync_period, secs(30));
    assert_eq!(args.azure_resync_period, secs(30));
    assert!(
        !args.leader_elect,
        "off by default: the upstream chart grants no lease permissions"
    );
    assert_eq!(args.leader_elect_resource_name, "akv2k8s-controller");
    assert!(args.klog.ignored().is_empty());
}

#[test]
fn no_argv_gives_the_same_defaults_as_the_chart() {
    let args = parse(&[]).expect("no args");
    let chart = parse(&CHART_DEFAULT).expect("chart argv");
    assert_eq!(args.cloudconfig, chart.cloudconfig);
    assert_eq!(args.watch_all_namespaces, chart.watch_all_namespaces);
    assert_eq!(args.kube_resync_period, chart.kube_resync_period);
    assert_eq!(args.azure_resync_period, chart.azure_resync_period);
    assert_eq!(args.version, "");
    assert_eq!(args.log.verbosity, 0);
    assert_eq!(args.http_port, 9000);
    assert!(!args.metrics_enabled);
    assert_eq!(args.auth_type, AuthMode::AzureCloudConfig);
    assert_eq!(args.object_labels, None);
    assert!(args.resolve.is_empty());
    assert_eq!(args.lease_namespace(), DEFAULT_LEASE_NAMESPACE);
}

#[test]
fn chart_value_variants_parse() {
    // (argv the chart renders for some values, verbosity, format, watch all, azure period)
    let table: [(&[&str], u8, LogFormat, bool, Duration); 5] = [
        // global.logLevel=debug, logFormat=json, azureKeyVaultResyncPeriod=60
        (
            &[
                "--cloudconfig=/etc/kubernetes/azure.json",
                "--version=1.8.4",
                "--v=4",
                "--logging-format=json",
                "--watch-all-namespaces=true",
                "--kube-resync-period=30",
                "--azure-resync-period=60",
            ],
            4,
            LogFormat::Json,
            true,
            secs(60),
        ),
        // global.logLevel=trace, watchAllNamespaces=false (RUNTIME_NAMESPACE via the flag here)
        (
            &[
                "--cloudconfig=/etc/kubernetes/azure.json",
                "--version=1.8.4",
                "--v=6",
                "--logging-format=text",
                "--watch-all-namespaces=false",
                "--kube-resync-period=30",
                "--azure-resync-period=30",
                "--runtime-namespace=akv2k8s",
            ],
            6,
            LogFormat::Text,
            false,
            secs(30),
        ),
        // cloudConfig on a userDefinedMSI ConfigMap path; sub-second period for e2e tests
        (
            &[
                "--cloudconfig=/etc/akv2k8s/azure.json",
                "--version=1.8.4",
                "--v=2",
                "--logging-format=text",
                "--watch-all-namespaces=true",
                "--kube-resync-period=30",
                "--azure-resync-period=0.2",
            ],
            2,
            LogFormat::Text,
            true,
            Duration::from_millis(200),
        ),
        // Go spellings: bare boolean, space-separated values, humantime periods
        (
            &[
                "--watch-all-namespaces",
                "--v",
                "3",
                "--azure-resync-period",
                "500ms",
                "--kube-resync-period=2m",
            ],
            3,
            LogFormat::Text,
            true,
            Duration::from_millis(500),
        ),
        // strconv.ParseBool spellings
        (
            &[
                "--watch-all-namespaces=0",
                "--runtime-namespace",
                "team-a",
                "--azure-resync-period=1m30s",
            ],
            0,
            LogFormat::Text,
            false,
            secs(90),
        ),
    ];
    for (argv, v, format, all, period) in table {
        let args = parse(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        assert_eq!(args.log.verbosity, v, "{argv:?}");
        assert_eq!(args.log.format, format, "{argv:?}");
        assert_eq!(args.watch_all_namespaces, all, "{argv:?}");
        assert_eq!(args.azure_resync_period, period, "{argv:?}");
        if !all {
            assert!(args.watched_namespace().is_some(), "{argv:?}");
            assert_eq!(
                args.lease_namespace(),
                args.watched_namespace().unwrap_or("")
            );
        }
    }
}

#[test]
fn env_settings_are_flags_too() {
    let args = parse(&[
        "--auth-type=environment-azidentity",
        "--object-labels= shard = a , tier=backend",
        "--metrics-enabled",
        "--http-port=9100",
        "--runtime-namespace=akv2k8s",
        "--resolve=login.microsoftonline.com=127.0.0.1:8443",
        "--resolve",
        "vault.azure.net=127.0.0.1:9443,myvault.vault.azure.net=127.0.0.1:9443",
        "--kubeconfig=/tmp/kubeconfig",
        "--master=10.0.0.1:6443",
    ])
    .expect("args");
    assert_eq!(args.auth_type, AuthMode::EnvironmentAzidentity);
    assert_eq!(args.object_labels.as_deref(), Some("shard=a,tier=backend"));
    assert!(args.metrics_enabled);
    assert_eq!(args.http_port, 9100);
    assert_eq!(args.runtime_namespace.as_deref(), Some("akv2k8s"));
    assert_eq!(
        args.watched_namespace(),
        None,
        "still watching all namespaces"
    );
    assert_eq!(args.lease_namespace(), "akv2k8s");
    let hosts: Vec<_> = args
        .resolve
        .iter()
        .map(|(h, a)| (h.as_str(), a.port()))
        .collect();
    assert_eq!(
        hosts,
        [
            ("login.microsoftonline.com", 8443),
            ("vault.azure.net", 9443),
            ("myvault.vault.azure.net", 9443)
        ]
    );
    assert_eq!(args.kubeconfig, Some(PathBuf::from("/tmp/kubeconfig")));
    assert_eq!(args.master.as_deref(), Some("https://10.0.0.1:6443"));
}

#[test]
fn a_repeated_flag_takes_its_last_value_and_resolve_accumulates() {
    let args = parse(&[
        "--v=2",
        "--v=4",
        "--watch-all-namespaces=true",
        "--watch-all-namespaces=false",
        "--runtime-namespace=akv2k8s",
        "--resolve=a.example=127.0.0.1:1",
        "--resolve=b.example=127.0.0.1:2",
    ])
    .expect("repeats");
    assert_eq!(args.log.verbosity, 4);
    assert!(!args.watch_all_namespaces);
    assert_eq!(args.resolve.len(), 2, "--resolve is repeatable");
}

#[test]
fn clap_definition_is_consistent() {
    ControllerArgs::command().debug_assert();
    assert!(
        ControllerArgs::command().get_version().is_none(),
        "--version is a value flag"
    );
}

#[test]
fn leader_election_flags() {
    let args = parse_on_host(
        &[
            "--leader-elect",
            "--leader-elect-resource-name=akv2k8s-shard-a",
            "--leader-elect-resource-namespace=kube-system",
            "--leader-elect-identity=replica-1",
            "--leader-elect-lease-duration=1500ms",
            "--leader-elect-renew-deadline=1s",
            "--leader-elect-retry-period=0.2",
            "--runtime-namespace=akv2k8s",
        ],
        None,
    )
    .expect("args");
    assert!(args.leader_elect);
    assert_eq!(args.leader_elect_resource_name, "akv2k8s-shard-a");
    assert_eq!(
        args.lease_namespace(),
        "kube-system",
        "the flag beats RUNTIME_NAMESPACE"
    );
    assert_eq!(args.leader_elect_identity.as_deref(), Some("replica-1"));
    assert_eq!(
        args.leader_elect_lease_duration,
        Duration::from_millis(1500)
    );
    assert_eq!(args.leader_elect_renew_deadline, secs(1));
    assert_eq!(args.leader_elect_retry_period, Duration::from_millis(200));

    let single = parse_on_host(&["--leader-elect=false"], None).expect("no identity needed");
    assert!(!single.leader_elect);
    assert_eq!(single.leader_elect_identity, None);
}

#[test]
fn print_version_is_separate_from_the_version_value() {
    let args = parse(&["--print-version"]).expect("print");
    assert!(args.print_version);
    assert_eq!(args.version, "");
    let args = parse(&["--version=v1.8.4", "--print-version"]).expect("both");
    assert!(args.print_version);
    assert_eq!(args.version, "v1.8.4");
    // --print-version skips validation (it needs no namespace or identity).
    assert!(parse_on_host(&["--print-version", "--watch-all-namespaces=false"], None).is_ok());
}

#[test]
fn klog_flags_are_accepted_and_ignored() {
    let args = parse(
        &[
            &CHART_DEFAULT[..],
            &[
                "--logtostderr",
                "--vmodule=controller=4",
                "--alsologtostderr=false",
            ],
        ]
        .concat(),
    )
    .expect("klog flags");
    assert_eq!(
        args.klog.ignored(),
        ["--vmodule", "--logtostderr", "--alsologtostderr"]
    );
}

#[test]
fn bad_values_name_their_flag() {
    let table: [(&[&str], &str); 17] = [
        (&["--v=info"], "--v"),
        (&["--logging-format=logfmt"], "--logging-format"),
        (&["--watch-all-namespaces=yes"], "--watch-all-namespaces"),
        (&["--kube-resync-period=soon"], "--kube-resync-period"),
        (&["--kube-resync-period=-30"], "--kube-resync-period"),
        (&["--azure-resync-period=0"], "--azure-resync-period"),
        (&["--azure-resync-period=30x"], "--azure-resync-period"),
        (&["--auth-type=cloudConfig"], "--auth-type"),
        (&["--object-labels=a"], "--object-labels"),
        (&["--metrics-enabled=on"], "--metrics-enabled"),
        (&["--http-port=70000"], "--http-port"),
        (&["--http-port=abc"], "--http-port"),
        (&["--resolve=vault.azure.net"], "--resolve"),
        (&["--master=ftp://api"], "--master"),
        (&["--leader-elect=maybe"], "--leader-elect"),
        (
            &["--leader-elect-retry-period=0"],
            "--leader-elect-retry-period",
        ),
        (&["--no-such-flag"], "--no-such-flag"),
    ];
    for (argv, flag) in table {
        let err = parse(argv).expect_err(argv[0]).to_string();
        assert!(err.contains(flag), "{argv:?} -> {err}");
    }
    // Go's `--bool value` form is not a boolean value: the value would be a stray argument.
    let err = parse(&["--watch-all-namespaces", "false"]).expect_err("stray value");
    assert_eq!(err.kind(), ErrorKind::UnknownArgument, "{err}");
}

#[test]
fn unknown_auth_type_lists_the_valid_ones() {
    let err = parse(&["--auth-type=cloudConfig"])
        .expect_err("webhook default")
        .to_string();
    assert!(err.contains("azureCloudConfig"), "{err}");
    assert!(err.contains("environment-azidentity"), "{err}");
}

#[test]
fn bad_combinations_say_what_to_set() {
    let err = parse(&["--watch-all-namespaces=false"]).expect_err("no namespace");
    assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
    assert!(err.to_string().contains("RUNTIME_NAMESPACE"), "{err}");
    let err = parse(&["--watch-all-namespaces=false", "--runtime-namespace= "])
        .expect_err("blank namespace");
    assert!(err.to_string().contains("RUNTIME_NAMESPACE"), "{err}");

    let err = parse_on_host(&["--leader-elect"], None).expect_err("no identity");
    assert!(err.to_string().contains("POD_NAME"), "{err}");
    let err = parse_on_host(&["--leader-elect"], Some("  ")).expect_err("blank host name");
    assert!(err.to_string().contains("POD_NAME"), "{err}");

    let err = parse(&[
        "--leader-elect",
        "--leader-elect-lease-duration=10",
        "--leader-elect-renew-deadline=10",
    ])
    .expect_err("renew deadline not below lease duration");
    assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    assert!(
        err.to_string().contains("--leader-elect-renew-deadline"),
        "{err}"
    );
}

#[test]
fn object_labels_are_an_equality_label_set() {
    let ok = [
        ("", ""),
        ("shard=a", "shard=a"),
        (" shard = a , tier=backend ", "shard=a,tier=backend"),
        (
            "app.kubernetes.io/part-of=akv2k8s",
            "app.kubernetes.io/part-of=akv2k8s",
        ),
        ("empty=", "empty="),
        ("a=b,", "a=b"),
    ];
    for (input, want) in ok {
        assert_eq!(parse_label_set(input).as_deref(), Ok(want), "{input:?}");
    }
    let bad = [
        ("a", "not key=value"),
        ("a==b", "not key=value"),
        ("a!=b", "label key"),
        ("=b", "is empty"),
        ("-a=b", "start and end"),
        ("a=b c", "only letters"),
        ("Bad_Prefix/a=b", "prefix"),
        ("a=in (b)", "label value"),
    ];
    for (input, why) in bad {
        let err = parse_label_set(input).expect_err(input);
        assert!(err.contains(why), "{input:?}: {err}");
    }
    let long = "x".repeat(64);
    assert!(parse_label_set(&format!("{long}=a")).is_err());
    assert!(parse_label_set(&format!("a={long}")).is_err());
}

#[test]
fn master_accepts_urls_and_host_port() {
    assert_eq!(
        parse_master("https://api:6443").as_deref(),
        Ok("https://api:6443")
    );
    assert_eq!(
        parse_master("http://127.0.0.1:8080").as_deref(),
        Ok("http://127.0.0.1:8080")
    );
    assert_eq!(
        parse_master("10.0.0.1:6443").as_deref(),
        Ok("https://10.0.0.1:6443")
    );
    for bad in ["", "ftp://api", "https://", "not a url"] {
        assert!(parse_master(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn chart_argv_becomes_the_upstream_sync_config() {
    let cfg = SyncConfig::from(parse(&CHART_DEFAULT).expect("chart argv"));
    assert_eq!(cfg.namespace, None);
    assert_eq!(cfg.label_selector, None);
    assert_eq!(cfg.azure_resync_period, secs(30));
    assert_eq!(cfg.concurrency, DEFAULT_CONCURRENCY);
    assert!(cfg.leader_election.is_none(), "off by default, as upstream");
    let mut argv = CHART_DEFAULT.to_vec();
    argv.push("--leader-elect");
    let cfg = SyncConfig::from(parse(&argv).expect("chart argv + --leader-elect"));
    let le = cfg
        .leader_election
        .as_ref()
        .expect("leader election when asked for");
    assert_eq!(
        (
            le.namespace.as_str(),
            le.lease_name.as_str(),
            le.holder_identity.as_str()
        ),
        (
            "default",
            "akv2k8s-controller",
            "akv2k8s-controller-7d9f-abcde"
        )
    );
    assert_eq!(
        (le.lease_duration, le.renew_deadline, le.retry_period),
        (secs(15), secs(10), secs(2))
    );
    assert_eq!(
        cfg.event_instance.as_deref(),
        Some("akv2k8s-controller-7d9f-abcde")
    );
    cfg.validate().expect("valid for k8s-sync");
}

#[test]
fn namespace_labels_and_single_replica_reach_the_sync_config() {
    let args = parse(&[
        "--watch-all-namespaces=false",
        "--runtime-namespace=team-a",
        "--object-labels=shard=a",
        "--azure-resync-period=250ms",
        "--concurrency=2",
        "--leader-elect=false",
    ])
    .expect("args");
    let cfg = SyncConfig::from(args);
    assert_eq!(cfg.namespace.as_deref(), Some("team-a"));
    assert_eq!(cfg.label_selector.as_deref(), Some("shard=a"));
    assert_eq!(cfg.azure_resync_period, Duration::from_millis(250));
    assert_eq!(cfg.concurrency, 2);
    assert!(cfg.leader_election.is_none());
    cfg.validate().expect("valid for k8s-sync");

    // RUNTIME_NAMESPACE alone does not narrow the watch, and an empty label set selects all.
    let cfg = SyncConfig::from(
        parse(&[
            "--runtime-namespace=akv2k8s",
            "--object-labels=",
            "--leader-elect",
        ])
        .expect("args"),
    );
    assert_eq!(cfg.namespace, None);
    assert_eq!(cfg.label_selector, None);
    assert_eq!(
        cfg.leader_election.map(|le| le.namespace).as_deref(),
        Some("akv2k8s")
    );
}
