//! `akv2k8s sandbox`: kubectl works against it with the kubeconfig it writes, the controller
//! it can run syncs what kubectl applies, and SIGINT stops it cleanly.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use crate::support::{DEADLINE, akv2k8s, repo};

/// A running sandbox whose stdout lines arrive on a channel.
struct Sandbox {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Sandbox {
    fn start(args: &[&str]) -> Sandbox {
        let mut child = akv2k8s()
            .arg("sandbox")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the sandbox");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Sandbox {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits (channel, deadline) for a line starting with `prefix`.
    fn wait_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no line {prefix:?} ({e}); output so far:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// The value printed after `label` (e.g. `kubeconfig`).
    fn printed(&self, label: &str) -> String {
        self.seen
            .iter()
            .find_map(|l| l.trim_start().strip_prefix(label))
            .map(|rest| rest.trim().to_owned())
            .unwrap_or_else(|| panic!("{label} not printed:\n{}", self.seen.join("\n")))
    }

    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for the exit (a thread waits; the test blocks on a channel with a deadline).
    fn exit_code(self) -> Option<i32> {
        let Sandbox {
            mut child,
            lines,
            mut seen,
        } = self;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        let status = rx
            .recv_timeout(DEADLINE)
            .expect("the sandbox exits after SIGINT")
            .expect("wait");
        // The rest of stdout, up to its end (the reader thread then drops its sender).
        while let Ok(line) = lines.recv_timeout(DEADLINE) {
            seen.push(line);
        }
        assert!(
            seen.iter().any(|l| l == "akv2k8s sandbox: stopped"),
            "{}",
            seen.join("\n")
        );
        status.code()
    }
}

fn kubectl(kubeconfig: &str, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn kubectl_works_against_the_sandbox_and_sigint_stops_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut sandbox = Sandbox::start(&["--dir", dir.path().to_str().expect("utf-8")]);
    sandbox.wait_line("akv2k8s sandbox: ready");
    let kubeconfig = sandbox.printed("kubeconfig");
    assert!(
        kubeconfig.starts_with(
            dir.path()
                .canonicalize()
                .expect("dir")
                .to_str()
                .expect("utf-8")
        )
    );
    let env = std::fs::read_to_string(
        sandbox
            .printed("environment")
            .split(' ')
            .next()
            .expect("path"),
    )
    .expect("env file");
    for var in [
        "AUTH_TYPE=environment",
        "AZURE_CLIENT_SECRET=",
        "AKV2K8S_RESOLVE=",
        "SSL_CERT_FILE=",
    ] {
        assert!(env.contains(var), "{var}: {env}");
    }
    assert!(
        !sandbox
            .seen
            .iter()
            .any(|l| l.contains("demo-controller-client-secret")),
        "the client secret stays in the file"
    );

    let listed = kubectl(&kubeconfig, &["get", "azurekeyvaultsecrets", "-A"]);
    assert!(
        listed.is_empty() || listed.contains("No resources"),
        "{listed}"
    );
    kubectl(
        &kubeconfig,
        &[
            "apply",
            "-f",
            repo("examples/akvs/00-namespace.yaml")
                .to_str()
                .expect("utf-8"),
        ],
    );
    let applied = kubectl(
        &kubeconfig,
        &[
            "apply",
            "-f",
            repo("examples/akvs/01-plain-secret.yaml")
                .to_str()
                .expect("utf-8"),
        ],
    );
    assert!(
        applied.contains("azurekeyvaultsecret.spv.no/db-password created"),
        "{applied}"
    );
    let listed = kubectl(&kubeconfig, &["get", "akvs", "-A"]);
    assert!(listed.contains("db-password"), "{listed}");

    sandbox.interrupt();
    assert_eq!(sandbox.exit_code(), Some(0));
}

#[test]
fn sandbox_with_the_controller_syncs_what_kubectl_applies() {
    let mut sandbox = Sandbox::start(&["--controller"]);
    sandbox.wait_line("akv2k8s sandbox: ready");
    let kubeconfig = sandbox.printed("kubeconfig");
    let examples = repo("examples/akvs");
    kubectl(
        &kubeconfig,
        &["apply", "-f", examples.to_str().expect("utf-8")],
    );
    kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=condition=Ready",
            "akvs/db-credentials-password",
            "-n",
            "akv2k8s-demo",
            &format!("--timeout={}s", DEADLINE.as_secs()),
        ],
    );
    let secret = kubectl(
        &kubeconfig,
        &[
            "get",
            "secret",
            "db-credentials",
            "-n",
            "akv2k8s-demo",
            "-o",
            "jsonpath={.data.username}",
        ],
    );
    assert_eq!(
        secret, "ZGVtby1hcHA=",
        "base64 of the fixture's db-username"
    );
    let dir = std::path::PathBuf::from(kubeconfig)
        .parent()
        .expect("dir")
        .to_path_buf();
    sandbox.interrupt();
    assert_eq!(sandbox.exit_code(), Some(0));
    assert!(!dir.exists(), "the temporary directory is removed on exit");
}
