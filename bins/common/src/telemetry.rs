//! The tracing subscriber every binary installs: `text` or `json`, klog verbosity mapped to
//! levels, `RUST_LOG` overriding both.
//!
//! | `--v` | akv2k8s-rs crates | HTTP/TLS libraries (hyper, h2, rustls, reqwest, tower) |
//! |---|---|---|
//! | 0-3 (chart `info` = 2) | info | info |
//! | 4-5 (chart `debug` = 4) | debug | info |
//! | 6-7 (chart `trace` = 6) | trace | info |
//! | 8+ | trace | trace |
//!
//! klog prints `Info` at every verbosity, and akv2k8s logs its routine messages at V(2), so
//! verbosities 0 to 3 all mean info. `RUST_LOG` (an `EnvFilter` directive string), when set and
//! not empty, replaces the mapping.

use anyhow::Context as _;
use tracing::Level;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;

use crate::args::{LogArgs, LogFormat};

/// The variable whose directives replace `--v`.
pub const RUST_LOG: &str = "RUST_LOG";

/// Libraries that are capped at info below `--v=8`: at debug they log every connection and frame.
const NOISY: [&str; 6] = ["hyper", "hyper_util", "h2", "rustls", "reqwest", "tower"];

/// The level `--v=<verbosity>` stands for.
pub fn level_for_verbosity(verbosity: u8) -> Level {
    match verbosity {
        0..=3 => Level::INFO,
        4..=5 => Level::DEBUG,
        _ => Level::TRACE,
    }
}

/// The `EnvFilter` directives for `--v=<verbosity>` (see the [module docs](self)).
pub fn directives_for_verbosity(verbosity: u8) -> String {
    let level = level_for_verbosity(verbosity).as_str().to_ascii_lowercase();
    if verbosity >= 8 || level == "info" {
        return level;
    }
    std::iter::once(level)
        .chain(NOISY.iter().map(|target| format!("{target}=info")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The filter: `rust_log` when it is set and not empty, else the `--v` mapping.
///
/// # Errors
///
/// `rust_log` is not a valid directive string (the message names `RUST_LOG`).
pub fn filter(verbosity: u8, rust_log: Option<&str>) -> anyhow::Result<EnvFilter> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => EnvFilter::builder()
            .parse(directives)
            .with_context(|| format!("invalid {RUST_LOG} `{directives}`")),
        None => Ok(EnvFilter::new(directives_for_verbosity(verbosity))),
    }
}

/// Installs the global subscriber for `args`, reading `RUST_LOG` from the process environment.
/// `text` writes to stderr (klog's default); `json` writes errors to stderr and everything else
/// to stdout, as upstream's JSON logger does.
///
/// # Errors
///
/// An invalid `RUST_LOG`, or a subscriber is already installed.
pub fn init(args: &LogArgs) -> anyhow::Result<()> {
    let rust_log = std::env::var(RUST_LOG).ok();
    let filter = filter(args.verbosity, rust_log.as_deref())?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let installed = match args.format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_writer(std::io::stderr)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(
                std::io::stderr
                    .with_max_level(Level::ERROR)
                    .or_else(std::io::stdout),
            )
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the tracing subscriber: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn klog_verbosity_maps_to_levels_as_the_chart_means_them() {
        let table = [
            (0, Level::INFO),
            (2, Level::INFO), // chart logLevel: info
            (3, Level::INFO),
            (4, Level::DEBUG), // chart logLevel: debug
            (5, Level::DEBUG),
            (6, Level::TRACE), // chart logLevel: trace
            (10, Level::TRACE),
        ];
        for (v, level) in table {
            assert_eq!(level_for_verbosity(v), level, "--v={v}");
        }
    }

    #[test]
    fn noisy_libraries_stay_at_info_until_v8() {
        assert_eq!(directives_for_verbosity(2), "info");
        let debug = directives_for_verbosity(4);
        assert!(debug.starts_with("debug,"), "{debug}");
        assert!(
            debug.contains("hyper=info") && debug.contains("h2=info"),
            "{debug}"
        );
        assert!(directives_for_verbosity(6).starts_with("trace,"));
        assert_eq!(directives_for_verbosity(8), "trace");
    }

    #[test]
    fn rust_log_replaces_the_verbosity_mapping() {
        // EnvFilter prints its directives in its own order.
        let directives = |f: EnvFilter| {
            let mut d: Vec<String> = f.to_string().split(',').map(str::to_owned).collect();
            d.sort();
            d
        };
        let f = filter(2, Some("k8s_sync=trace,warn")).expect("valid");
        assert_eq!(directives(f), ["k8s_sync=trace", "warn"]);
        let f = filter(4, Some("  ")).expect("blank means unset");
        assert!(directives(f).contains(&"debug".to_owned()));
        let f = filter(0, None).expect("unset");
        assert_eq!(directives(f), ["info"]);
        let err = filter(0, Some("k8s_sync=loud")).expect_err("bad level");
        assert!(err.to_string().contains("RUST_LOG"), "{err:#}");
    }
}
