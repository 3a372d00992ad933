//! `crd`, `version` and `--help`.

use crate::support::{akv2k8s, repo, run, text};

#[test]
fn crd_prints_the_checked_in_file() {
    let out = run({
        let mut c = akv2k8s();
        c.arg("crd");
        c
    });
    assert!(out.status.success(), "{out:?}");
    let checked_in = std::fs::read_to_string(repo("crds/azurekeyvaultsecrets.spv.no.yaml"))
        .expect("checked-in CRD");
    assert_eq!(text(&out).0, checked_in);
}

#[test]
fn version_prints_the_package_version() {
    for arg in ["version", "--version"] {
        let out = run({
            let mut c = akv2k8s();
            c.arg(arg);
            c
        });
        assert!(out.status.success(), "{arg}: {out:?}");
        assert_eq!(
            text(&out).0.trim(),
            format!("akv2k8s {}", env!("CARGO_PKG_VERSION")),
            "{arg}"
        );
    }
}

#[test]
fn every_command_has_help() {
    for cmd in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["render", "--help"],
        vec!["sandbox", "--help"],
        vec!["crd", "--help"],
        vec!["version", "--help"],
    ] {
        let out = run({
            let mut c = akv2k8s();
            c.args(&cmd);
            c
        });
        let (stdout, _) = text(&out);
        assert!(out.status.success(), "{cmd:?}: {out:?}");
        assert!(stdout.contains("Usage: akv2k8s"), "{cmd:?}: {stdout}");
    }
}

#[test]
fn unknown_commands_are_refused_with_usage() {
    let out = run({
        let mut c = akv2k8s();
        c.arg("deploy");
        c
    });
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(text(&out).1.contains("Usage: akv2k8s"), "{out:?}");
}
