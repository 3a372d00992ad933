//! Flag syntax shared by the binaries: what upstream akv2k8s (Go `flag` + klog) accepts, so the
//! argv the upstream Helm chart renders parses unchanged (design §2.5).
//!
//! The value parsers return `Err(String)`; clap prefixes the message with the flag and the
//! value (`invalid value 'soon' for '--azure-resync-period <PERIOD>': …`), so every bad value
//! names its flag (or its environment variable).

use std::net::SocketAddr;
use std::time::Duration;

/// What a bad period looks like to the user.
const PERIOD_HINT: &str = "expected seconds (30, 0.5) or a duration (500ms, 2m, 1h30m)";

/// Parses a Go `strconv.ParseBool` boolean: `1`, `t`, `T`, `TRUE`, `true`, `True`, `0`, `f`,
/// `F`, `FALSE`, `false`, `False`. Used with `num_args = 0..=1, require_equals = true,
/// default_missing_value = "true"`, so `--flag` alone means true, as in Go.
///
/// # Errors
///
/// Any other spelling (`yes`, `on`, empty).
pub fn parse_go_bool(s: &str) -> Result<bool, String> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err("expected true or false (also 1/0, t/f)".to_owned()),
    }
}

/// Parses a period: bare seconds as upstream's flags take them (`30`, and `0.5` for sub-second
/// periods), or a humantime duration (`500ms`, `2m`, `1h30m`). Zero is allowed.
///
/// # Errors
///
/// Empty, negative, not a number nor a duration, or too large.
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err(format!("empty; {PERIOD_HINT}"));
    }
    if s.starts_with('-') {
        return Err(format!("must not be negative; {PERIOD_HINT}"));
    }
    let bare_seconds =
        s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.bytes().any(|b| b.is_ascii_digit());
    if bare_seconds {
        let secs: f64 = s
            .parse()
            .map_err(|_| format!("not a number; {PERIOD_HINT}"))?;
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("too large; {PERIOD_HINT}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e}; {PERIOD_HINT}"))
}

/// [`parse_period`] for periods that drive a loop: zero is refused.
///
/// # Errors
///
/// As [`parse_period`], and zero.
pub fn parse_positive_period(s: &str) -> Result<Duration, String> {
    match parse_period(s)? {
        d if d.is_zero() => Err(format!("must be greater than zero; {PERIOD_HINT}")),
        d => Ok(d),
    }
}

/// Parses one `host=addr:port` resolve override, as curl's `--resolve` (IPv6 as
/// `[::1]:443`). Lists (`AKV2K8S_RESOLVE=a=…,b=…`) are split at commas by clap
/// (`value_delimiter = ','`) before they get here.
///
/// # Errors
///
/// No `=`, no host name, or no valid `addr:port`.
pub fn parse_resolve_entry(s: &str) -> Result<(String, SocketAddr), String> {
    let entries = akv_auth::http::parse_resolve(s).map_err(|e| match e {
        akv_auth::Error::InvalidConfig { reason, .. } => reason,
        other => other.to_string(),
    })?;
    match <[_; 1]>::try_from(entries) {
        Ok([entry]) => Ok(entry),
        Err(_) => Err("expected one host=addr:port".to_owned()),
    }
}

/// Log output format (`--logging-format`), as upstream's component-base logging.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines on stderr (klog's default destination).
    #[default]
    Text,
    /// One JSON object per event: errors on stderr, everything else on stdout (as
    /// component-base's JSON logger).
    Json,
}

/// Logging flags of the controller and the env-injector: `--v=<n>` and `--logging-format`.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// klog verbosity: 0-3 info, 4-5 debug, 6-7 trace for akv2k8s-rs, 8+ trace for every
    /// library (the upstream chart renders info=2, debug=4, trace=6). RUST_LOG, when set,
    /// replaces this.
    #[arg(long = "v", short = 'v', value_name = "N", default_value_t = 0)]
    pub verbosity: u8,

    /// Log format.
    #[arg(
        long = "logging-format",
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub format: LogFormat,
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            verbosity: 0,
            format: LogFormat::Text,
        }
    }
}

/// klog's own flags, which upstream's binaries accept besides `--v`. They are accepted so that an
/// argv written for upstream keeps working, and ignored: logs always go to stderr/stdout (see
/// [`LogFormat`]), never to files. [`KlogCompat::ignored`] names the ones that were given, for a
/// startup warning.
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct KlogCompat {
    /// klog `--vmodule` (ignored; use RUST_LOG=target=level).
    #[arg(long = "vmodule", hide = true, value_name = "PATTERN=N,...")]
    pub vmodule: Option<String>,
    /// klog `--logtostderr` (ignored: always true).
    #[arg(long = "logtostderr", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub logtostderr: Option<bool>,
    /// klog `--alsologtostderr` (ignored).
    #[arg(long = "alsologtostderr", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub alsologtostderr: Option<bool>,
    /// klog `--stderrthreshold` (ignored).
    #[arg(long = "stderrthreshold", hide = true)]
    pub stderrthreshold: Option<String>,
    /// klog `--log_dir` (ignored).
    #[arg(long = "log_dir", hide = true)]
    pub log_dir: Option<String>,
    /// klog `--log_file` (ignored).
    #[arg(long = "log_file", hide = true)]
    pub log_file: Option<String>,
    /// klog `--log_file_max_size` (ignored).
    #[arg(long = "log_file_max_size", hide = true)]
    pub log_file_max_size: Option<String>,
    /// klog `--skip_headers` (ignored).
    #[arg(long = "skip_headers", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub skip_headers: Option<bool>,
    /// klog `--skip_log_headers` (ignored).
    #[arg(long = "skip_log_headers", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub skip_log_headers: Option<bool>,
    /// klog `--add_dir_header` (ignored).
    #[arg(long = "add_dir_header", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub add_dir_header: Option<bool>,
    /// klog `--one_output` (ignored).
    #[arg(long = "one_output", hide = true, num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_parser = parse_go_bool)]
    pub one_output: Option<bool>,
    /// klog `--log_backtrace_at` (ignored).
    #[arg(long = "log_backtrace_at", hide = true)]
    pub log_backtrace_at: Option<String>,
    /// component-base `--log-flush-frequency` (ignored: nothing is buffered).
    #[arg(long = "log-flush-frequency", hide = true)]
    pub log_flush_frequency: Option<String>,
}

impl KlogCompat {
    /// The flags that were given (and are ignored), for a startup warning.
    pub fn ignored(&self) -> Vec<&'static str> {
        let Self {
            vmodule,
            logtostderr,
            alsologtostderr,
            stderrthreshold,
            log_dir,
            log_file,
            log_file_max_size,
            skip_headers,
            skip_log_headers,
            add_dir_header,
            one_output,
            log_backtrace_at,
            log_flush_frequency,
        } = self;
        [
            ("--vmodule", vmodule.is_some()),
            ("--logtostderr", logtostderr.is_some()),
            ("--alsologtostderr", alsologtostderr.is_some()),
            ("--stderrthreshold", stderrthreshold.is_some()),
            ("--log_dir", log_dir.is_some()),
            ("--log_file", log_file.is_some()),
            ("--log_file_max_size", log_file_max_size.is_some()),
            ("--skip_headers", skip_headers.is_some()),
            ("--skip_log_headers", skip_log_headers.is_some()),
            ("--add_dir_header", add_dir_header.is_some()),
            ("--one_output", one_output.is_some()),
            ("--log_backtrace_at", log_backtrace_at.is_some()),
            ("--log-flush-frequency", log_flush_frequency.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn go_booleans_parse_as_strconv_parsebool() {
        for t in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse_go_bool(t), Ok(true), "{t}");
        }
        for f in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse_go_bool(f), Ok(false), "{f}");
        }
        for bad in ["", "yes", "on", "tRUE", "2"] {
            assert!(parse_go_bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_are_bare_seconds_or_durations() {
        let table = [
            ("30", Duration::from_secs(30)),
            ("0", Duration::ZERO),
            ("0.5", Duration::from_millis(500)),
            (" 30 ", Duration::from_secs(30)),
            ("500ms", Duration::from_millis(500)),
            ("2m", Duration::from_secs(120)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h 30m", Duration::from_secs(5400)),
            ("30s", Duration::from_secs(30)),
        ];
        for (input, want) in table {
            assert_eq!(parse_period(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn bad_periods_say_what_is_expected() {
        for bad in [
            "",
            "-1",
            "-5s",
            "soon",
            "1e3",
            "1..2",
            "30x",
            "99999999999999999999999",
        ] {
            let err = parse_period(bad).expect_err(bad);
            assert!(err.contains("expected seconds"), "{bad}: {err}");
        }
        assert!(
            parse_positive_period("0")
                .expect_err("zero")
                .contains("greater than zero")
        );
        assert_eq!(parse_positive_period("0.001"), Ok(Duration::from_millis(1)));
    }

    #[test]
    fn resolve_entries_are_host_equals_socket_address() {
        assert_eq!(
            parse_resolve_entry("login.microsoftonline.com=127.0.0.1:8443"),
            Ok((
                "login.microsoftonline.com".to_owned(),
                "127.0.0.1:8443".parse().expect("addr")
            ))
        );
        assert_eq!(
            parse_resolve_entry("Vault.Azure.Net=[::1]:443").map(|(h, a)| (h, a.port())),
            Ok(("vault.azure.net".to_owned(), 443))
        );
        for bad in ["nohost", "=1.2.3.4:1", "h=1.2.3.4", "h=localhost:80", ""] {
            assert!(parse_resolve_entry(bad).is_err(), "{bad}");
        }
    }

    /// A command with the shared pieces, as the binaries flatten them.
    #[derive(Debug, clap::Parser)]
    #[command(disable_version_flag = true)]
    struct Cmd {
        #[command(flatten)]
        log: LogArgs,
        #[command(flatten)]
        klog: KlogCompat,
    }

    fn parse(argv: &[&str]) -> Result<Cmd, clap::Error> {
        Cmd::try_parse_from(std::iter::once("bin").chain(argv.iter().copied()))
    }

    #[test]
    fn klog_verbosity_and_format_parse_in_every_go_spelling() {
        let table: [(&[&str], u8, LogFormat); 7] = [
            (&[], 0, LogFormat::Text),
            (&["--v=2", "--logging-format=text"], 2, LogFormat::Text),
            (&["--v=4", "--logging-format=json"], 4, LogFormat::Json),
            (&["--v", "6"], 6, LogFormat::Text),
            (&["-v=6"], 6, LogFormat::Text),
            (&["-v", "3"], 3, LogFormat::Text),
            (&["--logging-format", "json"], 0, LogFormat::Json),
        ];
        for (argv, v, format) in table {
            let cmd = parse(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(
                cmd.log,
                LogArgs {
                    verbosity: v,
                    format
                },
                "{argv:?}"
            );
        }
    }

    #[test]
    fn bad_log_flags_name_the_flag() {
        for (argv, flag) in [
            (&["--v=high"][..], "--v"),
            (&["--v=-1"][..], "--v"),
            (&["--logging-format=logfmt"][..], "--logging-format"),
        ] {
            let err = parse(argv).expect_err(argv[0]).to_string();
            assert!(err.contains(flag), "{argv:?}: {err}");
        }
    }

    #[test]
    fn klog_flags_are_accepted_and_reported_as_ignored() {
        let cmd = parse(&[
            "--logtostderr",
            "--alsologtostderr=false",
            "--vmodule=foo=4",
            "--log_dir=/tmp",
            "--skip_headers=true",
        ])
        .expect("klog flags");
        assert_eq!(
            cmd.klog.ignored(),
            [
                "--vmodule",
                "--logtostderr",
                "--alsologtostderr",
                "--log_dir",
                "--skip_headers"
            ]
        );
        assert!(parse(&[]).expect("none").klog.ignored().is_empty());
    }
}
