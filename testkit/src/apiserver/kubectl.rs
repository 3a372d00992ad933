//! [`Kubectl`]: the installed `kubectl` binary pointed at a fake, for tests that hold the fake
//! to an independent client.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The installed `kubectl`, run with `--kubeconfig <file>` (e.g. one written by
/// [`super::ApiServerFake::write_kubeconfig`]) from a working directory.
#[derive(Clone, Debug)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    cwd: PathBuf,
}

/// What one `kubectl` run printed.
#[derive(Clone, Debug)]
pub struct KubectlOutput {
    /// Exit status 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Kubectl {
    /// `kubectl --kubeconfig <kubeconfig>`, run in `cwd` (relative `-f` paths resolve there).
    pub fn new(kubeconfig: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Self {
        Self {
            kubeconfig: kubeconfig.into(),
            cwd: cwd.into(),
        }
    }

    /// The kubeconfig file.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// Runs `kubectl <args>` with `stdin` (or none) on a blocking thread, since a fake in
    /// the same process answers on the runtime's threads.
    ///
    /// # Errors
    ///
    /// `kubectl` cannot be started or its output read (not that it failed: see
    /// [`KubectlOutput::success`]).
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> std::io::Result<KubectlOutput> {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .current_dir(&self.cwd)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let input = stdin.map(str::to_owned);
        let out = tokio::task::spawn_blocking(move || {
            let mut child = cmd.spawn()?;
            if let (Some(text), Some(mut pipe)) = (input, child.stdin.take()) {
                pipe.write_all(text.as_bytes())?;
            }
            child.wait_with_output()
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(KubectlOutput {
            success: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}
