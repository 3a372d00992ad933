//! `akv2k8s-env`: the in-pod launcher.
//!
//! A skeleton until the "the in-pod launcher" issue lands: it reports its version and says
//! that the component is not built yet, so that nobody mistakes it for a working binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    let version = env!("CARGO_PKG_VERSION");
    if std::env::args().skip(1).any(|a| a == "--print-version") {
        println!("akv2k8s-env {version}");
        return ExitCode::SUCCESS;
    }
    eprintln!("akv2k8s-env {version}: the in-pod launcher is not implemented in this build yet");
    ExitCode::from(2)
}
