//! `akv2k8s-env-injector`: the env-injector webhook and auth service.
//!
//! A skeleton until the "the env-injection webhook" issue lands: it reports its version and says
//! that the component is not built yet, so that nobody mistakes it for a working binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    let version = env!("CARGO_PKG_VERSION");
    if std::env::args().skip(1).any(|a| a == "--print-version") {
        println!("akv2k8s-env-injector {version}");
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "akv2k8s-env-injector {version}: the env-injector webhook and auth service is not implemented in this build yet"
    );
    ExitCode::from(2)
}
