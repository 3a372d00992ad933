//! SIGTERM reaches [`Shutdown::on_signals`]. Its own test binary (one process, one test), because
//! signal handlers are process-wide.

use std::time::Duration;

use akv2k8s_bins_common::Shutdown;

#[tokio::test]
async fn first_sigterm_starts_the_graceful_shutdown() {
    let shutdown = Shutdown::on_signals().expect("install handlers");
    assert!(!shutdown.is_triggered());
    let status = std::process::Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill: {status}");
    tokio::time::timeout(Duration::from_secs(10), shutdown.signalled())
        .await
        .expect("shutdown after SIGTERM");
    assert!(shutdown.is_triggered());
}
