//! `akv2k8s`: the operator CLI.
//!
//! Until the CLI issue lands this binary knows `version` and describes what `demo` will do;
//! `render`, `sandbox` and `crd` arrive with it.

use std::process::ExitCode;

const DEMO_PLAN: &str = "\
akv2k8s demo will start the testkit fakes in-process on loopback (Kubernetes API server,
Key Vault, Entra ID), load the AzureKeyVaultSecret examples and the vault fixture from
examples/, run the real controller against them, rotate a Key Vault value and show the
Secret following it, printing each step with its duration and the calls it cost.

The fakes exist today (crate testkit: Key Vault, Entra ID, IMDS/NMI, the Kubernetes API
server, the certificate factory; run `cargo test -p testkit`); the controller and this demo
arrive with their issues.";

fn main() -> ExitCode {
    let version = env!("CARGO_PKG_VERSION");
    match std::env::args().nth(1).as_deref() {
        Some("version") | Some("--version") => {
            println!("akv2k8s {version}");
            ExitCode::SUCCESS
        }
        Some("demo") => {
            println!("{DEMO_PLAN}");
            ExitCode::SUCCESS
        }
        other => {
            if let Some(cmd) = other {
                eprintln!("akv2k8s: unknown command {cmd:?}");
            }
            eprintln!("usage: akv2k8s <demo|version>");
            ExitCode::from(2)
        }
    }
}
