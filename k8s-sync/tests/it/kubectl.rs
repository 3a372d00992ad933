//! The real `kubectl` against the fake with the CRD installed: upstream's manifests applied as
//! users apply them, and `kubectl get akvs` printing upstream's columns for each version.

use k8s_sync::crd::v2beta1;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use crate::support::{Kubectl, cluster_with_crd, fixtures_dir};

/// A `kubectl get` table split by the header's column offsets, so blank cells stay cells.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    text: String,
}

impl Table {
    fn parse(text: &str) -> Self {
        let mut lines = text.lines();
        let head = lines.next().expect("header");
        // Columns are separated by at least three spaces; names like `VAULT OBJECT` have one.
        let mut starts = vec![0];
        let bytes = head.as_bytes();
        for i in 1..bytes.len() {
            if bytes[i] != b' ' && i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
                starts.push(i);
            }
        }
        let cut = |line: &str| -> Vec<String> {
            starts
                .iter()
                .enumerate()
                .map(|(n, &from)| {
                    let to = starts.get(n + 1).copied().unwrap_or(line.len());
                    line.get(from.min(line.len())..to.min(line.len()))
                        .unwrap_or_default()
                        .trim()
                        .to_owned()
                })
                .collect()
        };
        Self {
            header: cut(head),
            rows: lines.filter(|l| !l.trim().is_empty()).map(cut).collect(),
            text: text.to_owned(),
        }
    }

    fn row(&self, name: &str) -> &[String] {
        self.rows
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("no row {name} in\n{}", self.text))
    }

    /// The cell, with a missing value (blank or `<none>`, by client) as `None`.
    fn cell(&self, name: &str, column: &str) -> Option<&str> {
        let i = self
            .header
            .iter()
            .position(|h| h == column)
            .unwrap_or_else(|| panic!("no column {column} in\n{}", self.text));
        Some(self.row(name)[i].as_str()).filter(|c| !c.is_empty() && *c != "<none>")
    }
}

#[tokio::test]
async fn kubectl_applies_upstream_manifests_and_prints_upstreams_columns() {
    let (api, client) = cluster_with_crd().await;
    let k = Kubectl::new(&api);
    let dir = fixtures_dir();
    let dir = dir.to_str().expect("utf-8 path");
    // Namespaces first, as a user would; then every AKVS manifest unchanged.
    for ns in ["integration-tests_namespace.yaml", "int-tests_ns.yaml"] {
        k.ok(&["apply", "-f", &format!("{dir}/{ns}")], None).await;
    }
    let out = k.ok(&["apply", "-f", dir], None).await;
    for name in [
        "test-secret",
        "certificate-sync",
        "secret-configmap-sync",
        "db-config",
        "secret-sync",
        "signing-key-sync",
        "secret-sync-1",
        "secret-sync-2",
    ] {
        assert!(
            out.contains(&format!("azurekeyvaultsecret.spv.no/{name} created")),
            "{name}: {out}"
        );
    }
    let again = k.ok(&["apply", "-f", dir], None).await;
    assert!(
        again.contains("azurekeyvaultsecret.spv.no/secret-sync unchanged"),
        "{again}"
    );

    // The controller's status write, at the storage version.
    let akvs: Api<v2beta1::AzureKeyVaultSecret> = Api::namespaced(client.clone(), "akv-test");
    akvs.patch_status(
        "secret-sync",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"secretName": "my-secret-from-akv", "secretHash": "h",
            "lastAzureUpdate": "2024-05-01T10:00:00Z"}}),
        ),
    )
    .await
    .expect("status");
    akvs.patch_status(
        "secret-configmap-sync",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"status": {"configMapName": "my-secret-from-akv", "configMapHash": "h"}}),
        ),
    )
    .await
    .expect("status");

    let v2_header = [
        "NAME",
        "VAULT",
        "VAULT OBJECT",
        "SECRET NAME",
        "CONFIGMAP NAME",
        "LAST SYNCHED",
        "AGE",
    ];
    // The fully qualified resource at each v2 version.
    for resource in [
        "azurekeyvaultsecrets.v2beta1.spv.no",
        "azurekeyvaultsecrets.v2alpha1.spv.no",
    ] {
        let t = Table::parse(&k.ok(&["get", resource, "-n", "akv-test"], None).await);
        assert_eq!(t.header, v2_header, "{resource}:\n{}", t.text);
        assert_eq!(t.rows.len(), 7, "{}", t.text);
        assert_eq!(t.cell("secret-sync", "VAULT"), Some("akv2k8sinttestskv"));
        assert_eq!(
            t.cell("secret-sync", "VAULT OBJECT"),
            Some("akv2k8s-test-secret")
        );
        assert_eq!(
            t.cell("secret-sync", "SECRET NAME"),
            Some("my-secret-from-akv")
        );
        assert_eq!(t.cell("secret-sync", "CONFIGMAP NAME"), None);
        assert!(
            t.cell("secret-sync", "LAST SYNCHED").is_some(),
            "{}",
            t.text
        );
        assert!(t.cell("secret-sync", "AGE").is_some(), "{}", t.text);
        assert_eq!(t.cell("secret-configmap-sync", "SECRET NAME"), None);
        assert_eq!(
            t.cell("secret-configmap-sync", "CONFIGMAP NAME"),
            Some("my-secret-from-akv")
        );
        assert_eq!(
            t.cell("db-config", "VAULT OBJECT"),
            Some("akv2k8s-multi-key-test")
        );
        assert_eq!(t.cell("db-config", "LAST SYNCHED"), None);
    }

    // The short name resolves to the preferred version, which (as on a real cluster) is the
    // GA version v1, so `kubectl get akvs` shows v1's columns; the explicit v1 resource too.
    let short = Table::parse(&k.ok(&["get", "akvs", "-n", "akv-test"], None).await);
    let v1 = Table::parse(
        &k.ok(
            &["get", "azurekeyvaultsecrets.v1.spv.no", "-n", "akv-test"],
            None,
        )
        .await,
    );
    assert_eq!(short.header, v1.header, "{}", short.text);
    assert_eq!(short.rows.len(), 7, "{}", short.text);
    assert_eq!(
        v1.header,
        [
            "NAME",
            "VAULT",
            "VAULT OBJECT",
            "SECRET NAME",
            "SYNCHED",
            "AGE"
        ],
        "{}",
        v1.text
    );
    assert_eq!(
        v1.cell("secret-sync", "SECRET NAME"),
        Some("my-secret-from-akv")
    );
    assert!(v1.cell("secret-sync", "SYNCHED").is_some(), "{}", v1.text);
    let v1alpha1 = Table::parse(
        &k.ok(
            &[
                "get",
                "azurekeyvaultsecrets.v1alpha1.spv.no",
                "-n",
                "akv-test",
            ],
            None,
        )
        .await,
    );
    assert_eq!(
        v1alpha1.header,
        [
            "NAME",
            "VAULT",
            "VAULT OBJECT",
            "OUTPUT OBJECT",
            "SYNCHED",
            "AGE"
        ],
        "{}",
        v1alpha1.text
    );
    assert_eq!(
        v1alpha1.cell("secret-sync", "OUTPUT OBJECT"),
        Some("my-secret-from-akv")
    );

    // The v1 manifest in its own namespace, and the `all` category.
    let int = Table::parse(&k.ok(&["get", "akvs", "-n", "akv2k8s-test"], None).await);
    assert_eq!(int.cell("test-secret", "VAULT"), Some("akv2k8s-test"));
    assert_eq!(int.cell("test-secret", "VAULT OBJECT"), Some("my-secret"));
    assert_eq!(int.cell("test-secret", "SECRET NAME"), None);
    let all = k
        .ok(&["get", "all", "-n", "akv-test", "-o", "name"], None)
        .await;
    assert!(
        all.lines()
            .filter(|l| l.starts_with("azurekeyvaultsecret.spv.no/"))
            .count()
            == 7,
        "category all lists the AKVS:\n{all}"
    );
}

#[tokio::test]
async fn kubectl_reports_upstreams_validation_errors() {
    let (api, _client) = cluster_with_crd().await;
    let k = Kubectl::new(&api);
    let bad = "apiVersion: spv.no/v2beta1\nkind: AzureKeyVaultSecret\nmetadata:\n  name: bad\n  namespace: default\nspec:\n  vault:\n    name: kv\n    object:\n      name: s\n      type: password\n";
    let (ok, out, err) = k.run(&["apply", "-f", "-"], Some(bad)).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("spec.vault.object.type") && err.contains("Unsupported value"),
        "{err}"
    );
}
