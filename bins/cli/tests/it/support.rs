//! Running the built binary with a deadline, and paths of the repository's files.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Deadline of every run of the binary.
pub const DEADLINE: Duration = Duration::from_secs(120);

/// The built `akv2k8s`.
pub fn akv2k8s() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_akv2k8s"));
    cmd.env_remove("RUST_LOG").stdin(Stdio::null());
    cmd
}

/// Runs `cmd` to completion within [`DEADLINE`] (a thread waits; the test blocks on a channel).
pub fn run(mut cmd: Command) -> Output {
    let (tx, rx) = mpsc::channel();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start akv2k8s");
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("wait for akv2k8s"),
        Err(_) => {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            panic!("akv2k8s did not finish within {DEADLINE:?}");
        }
    }
}

/// stdout and stderr as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A path in the repository.
pub fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}
