//! The installed `kubectl` (an independent client) against the fake API server.
//! `kubectl` is a dispatcher that picks the client version from the server's `/version`
//! (the fake reports v1.33), so this exercises kubectl 1.33.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use testkit::apiserver::ApiServerFake;

use crate::apiserver::cluster;

struct Kubectl {
    _dir: tempfile::TempDir,
    kubectl: testkit::apiserver::Kubectl,
}

impl Kubectl {
    fn new(api: &ApiServerFake) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = api.write_kubeconfig(dir.path()).expect("kubeconfig");
        let kubectl = testkit::apiserver::Kubectl::new(kubeconfig, dir.path());
        Self { _dir: dir, kubectl }
    }

    fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Runs kubectl and returns (success, stdout, stderr).
    async fn run(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let out = self
            .kubectl
            .run(args, stdin)
            .await
            .expect("kubectl is installed on our build machines");
        (out.success, out.stdout, out.stderr)
    }

    async fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let (ok, out, err) = self.run(args, stdin).await;
        assert!(ok, "kubectl {args:?} failed:\n{err}\n{out}");
        out
    }

    async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&a, None).await).expect("kubectl JSON")
    }
}

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: shop
  labels:
    app: shop
stringData:
  password: hunter2
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  mode: fast
"#;

#[tokio::test]
async fn kubectl_applies_gets_patches_and_deletes() {
    let (api, _client) = cluster().await;
    let k = Kubectl::new(&api);
    let out = k.ok(&["apply", "-f", "-"], Some(MANIFESTS)).await;
    assert!(out.contains("namespace/shop created"), "{out}");
    assert!(out.contains("secret/db created"), "{out}");

    let secret = k.json(&["get", "secret", "db", "-n", "shop"]).await;
    assert_eq!(secret["data"]["password"], "aHVudGVyMg==");
    assert!(
        secret["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .is_string()
    );

    // Re-applying unchanged manifests changes nothing. kubectl still patches the Secret
    // (its last-applied `stringData` never appears in the live object, as on a real cluster),
    // and the server treats that patch as the no-op it is: same resourceVersion.
    let rv = secret["metadata"]["resourceVersion"].clone();
    let writes = api.writes();
    let out = k.ok(&["apply", "-f", "-"], Some(MANIFESTS)).await;
    assert!(out.contains("configmap/settings unchanged"), "{out}");
    assert!(out.contains("namespace/shop unchanged"), "{out}");
    assert_eq!(
        api.writes(),
        writes + 1,
        "only the Secret's stringData patch"
    );
    assert_eq!(
        k.json(&["get", "secret", "db", "-n", "shop"]).await["metadata"]["resourceVersion"],
        rv
    );

    let table = k.ok(&["get", "secrets", "-n", "shop"], None).await;
    let header = table.lines().next().expect("header");
    assert!(
        header
            .split_whitespace()
            .eq(["NAME", "TYPE", "DATA", "AGE"]),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("db ") && l.contains("Opaque") && l.contains(" 1 ")),
        "{table}"
    );

    k.ok(
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            "shop",
            "--type=merge",
            "-p",
            r#"{"data":{"extra":"1"}}"#,
        ],
        None,
    )
    .await;
    k.ok(
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            "shop",
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/data/mode"}]"#,
        ],
        None,
    )
    .await;
    k.ok(
        &[
            "patch",
            "configmap",
            "settings",
            "-n",
            "shop",
            "--type=strategic",
            "-p",
            r#"{"metadata":{"labels":{"s":"1"}}}"#,
        ],
        None,
    )
    .await;
    let cm = k
        .json(&["get", "configmap", "settings", "-n", "shop"])
        .await;
    assert_eq!(cm["data"], serde_json::json!({"extra": "1"}));
    assert_eq!(cm["metadata"]["labels"]["s"], "1");

    let out = k.ok(&["delete", "secret", "db", "-n", "shop"], None).await;
    assert!(out.contains("secret \"db\" deleted"), "{out}");
    let (ok, _, err) = k.run(&["get", "secret", "db", "-n", "shop"], None).await;
    assert!(!ok);
    assert!(err.contains("secrets \"db\" not found"), "{err}");
}

#[tokio::test]
async fn kubectl_server_side_apply_records_its_field_manager_and_reports_conflicts() {
    let (api, _client) = cluster().await;
    let k = Kubectl::new(&api);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  k: one\n";
    k.ok(&["apply", "--server-side", "-f", "-"], Some(cm)).await;
    let obj = k
        .json(&["get", "configmap", "owned", "--show-managed-fields"])
        .await;
    let managers: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .expect("managed")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"kubectl"), "{managers:?}");

    let other = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owned\ndata:\n  k: two\n";
    let (ok, _, err) = k
        .run(
            &["apply", "--server-side", "--field-manager=other", "-f", "-"],
            Some(other),
        )
        .await;
    assert!(!ok, "conflict expected");
    assert!(err.contains("conflict") && err.contains(".data.k"), "{err}");
    k.ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(other),
    )
    .await;
    let obj = k.json(&["get", "configmap", "owned"]).await;
    assert_eq!(obj["data"]["k"], "two");
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    shortNames: [wd]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
    additionalPrinterColumns:
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Ready
      type: string
      jsonPath: .status.conditions[?(@.type=="Ready")].status
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              color: {type: string}
          status:
            type: object
            x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test]
async fn kubectl_prints_custom_resources_with_printer_columns_and_short_names() {
    let (api, _client) = cluster().await;
    let k = Kubectl::new(&api);
    k.ok(&["apply", "-f", "-"], Some(CRD)).await;
    let widget =
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  color: red\n";
    k.ok(&["apply", "-f", "-"], Some(widget)).await;
    k.ok(
        &[
            "patch",
            "widget",
            "w1",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"conditions":[{"type":"Ready","status":"True"}]}}"#,
        ],
        None,
    )
    .await;
    let out = k.ok(&["get", "wd"], None).await;
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .expect("header")
            .split_whitespace()
            .eq(["NAME", "COLOR", "READY"]),
        "{out}"
    );
    assert!(
        lines
            .next()
            .expect("row")
            .split_whitespace()
            .eq(["w1", "red", "True"]),
        "{out}"
    );
    let yaml = k.ok(&["get", "widget", "w1", "-o", "yaml"], None).await;
    assert!(
        yaml.contains("color: red") && yaml.contains("apiVersion: example.com/v1"),
        "{yaml}"
    );
}

#[tokio::test]
async fn kubectl_get_watch_streams_changes() {
    let (api, client) = cluster().await;
    let k = Kubectl::new(&api);
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(k.kubectl.kubeconfig())
        .args(["get", "configmaps", "-w", "-o", "name"])
        .current_dir(k.dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    api.watches().wait_open(1).await;
    let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(client, "default");
    let cm =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "watched"}})).expect("cm");
    cms.create(&Default::default(), &cm).await.expect("create");
    let line = loop {
        let l = tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
            .await
            .expect("line")
            .expect("open");
        if l.contains("watched") {
            break l;
        }
    };
    assert_eq!(line, "configmap/watched");
    let _ = child.kill();
    let _ = child.wait();
}
