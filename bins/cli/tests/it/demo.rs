//! `akv2k8s demo`: passes on the embedded examples, masks values unless asked, and fails
//! naming the step when the fixture or the examples are broken.

use crate::support::{akv2k8s, run, text};

/// Values of examples/vault-fixture.yaml that appear in the synced Secrets.
const FIXTURE_VALUES: [&str; 4] = [
    "demo-db-password-v2",
    "demo-app",
    "demo-user",
    "search,export",
];

const STEPS: [&str; 10] = [
    "load the vault fixture and the examples",
    "start the fakes: Kubernetes API server, Key Vault, Entra ID",
    "install the AzureKeyVaultSecret CRD",
    "start the controller (k8s_sync::run)",
    "apply the examples",
    "every AzureKeyVaultSecret is Ready",
    "outputs hold what the examples ask for",
    "rotate db-password in Key Vault; the Secrets follow",
    "steady state: Key Vault re-read, nothing written",
    "stop the controller",
];

#[test]
fn demo_passes_every_step_and_masks_values() {
    let out = run({
        let mut c = akv2k8s();
        c.arg("demo");
        c
    });
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for step in STEPS {
        assert!(stdout.contains(&format!("✓ {step}")), "{step}:\n{stdout}");
    }
    assert!(!stdout.contains('✗'), "{stdout}");
    assert!(stdout.contains("demo passed: 10 steps"), "{stdout}");
    for section in [
        "Secrets and ConfigMaps",
        "Secret akv2k8s-demo/db-credentials  type Opaque  written by db-credentials-password, db-credentials-username",
        "Secret akv2k8s-demo/web-tls  type kubernetes.io/tls",
        "ConfigMap akv2k8s-demo/api-certificate",
        "Secret akv2k8s-demo/registry-credentials  type kubernetes.io/basic-auth",
        "AzureKeyVaultSecrets:",
        "Calls (from the fakes' request logs):",
        "steady state:",
    ] {
        assert!(stdout.contains(section), "{section}:\n{stdout}");
    }
    assert!(
        stdout.contains("<masked: 8 bytes>"),
        "db-username's length:\n{stdout}"
    );
    for value in FIXTURE_VALUES {
        assert!(!stdout.contains(value), "{value} printed:\n{stdout}");
        assert!(!stderr.contains(value), "{value} logged:\n{stderr}");
    }
    assert!(!stdout.contains("BEGIN"), "PEM printed:\n{stdout}");
}

#[test]
fn demo_with_show_values_prints_them() {
    let out = run({
        let mut c = akv2k8s();
        c.args(["demo", "--show-values"]);
        c
    });
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for value in [
        "demo-app",
        "demo-user",
        "search,export",
        "-----BEGIN CERTIFICATE-----",
    ] {
        assert!(stdout.contains(value), "{value} missing:\n{stdout}");
    }
    // The rotated value replaced v2 in both Secrets that read db-password.
    assert!(
        stdout.contains("password  db-password-rotated-"),
        "{stdout}"
    );
}

#[test]
fn demo_with_a_broken_fixture_fails_naming_the_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = dir.path().join("no-db-password.yaml");
    let text_of_example = include_str!("../../../../examples/vault-fixture.yaml");
    // The same fixture without the db-password secret the first example reads.
    let (before, after) = text_of_example
        .split_once("      - name: db-password\n")
        .expect("the example fixture has db-password");
    let (_, rest) = after
        .split_once("\n\n")
        .expect("db-password's entry ends with a blank line");
    std::fs::write(&fixture, format!("{before}{rest}")).expect("write fixture");

    let out = run({
        let mut c = akv2k8s();
        c.args(["demo", "--fixture"]).arg(&fixture);
        c
    });
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("✗ every AzureKeyVaultSecret is Ready"),
        "{stdout}"
    );
    assert!(
        stdout.contains("db-password (Ready=False ErrAzureVault)")
            && stdout.contains("db-credentials-password (Ready=False ErrAzureVault)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("demo FAILED at step 6 (every AzureKeyVaultSecret is Ready)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("SecretNotFound") || stdout.contains("was not found"),
        "{stdout}"
    );
}

#[test]
fn demo_with_an_invalid_example_fails_at_loading_naming_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "apiVersion: spv.no/v1\nkind: AzureKeyVaultSecret\nmetadata: {name: a, namespace: default}\n\
         spec: {vault: {name: akv2k8s-demo, object: {name: db-password, type: sekret}}}\n",
    )
    .expect("write example");
    let out = run({
        let mut c = akv2k8s();
        c.args(["demo", "--examples"]).arg(dir.path());
        c
    });
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("✗ load the vault fixture and the examples"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad.yaml: document 1: spec.vault.object.type: unknown variant `sekret`"),
        "{stdout}"
    );
    assert!(stdout.contains("demo FAILED at step 1"), "{stdout}");
}
