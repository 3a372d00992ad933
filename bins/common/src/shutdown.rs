//! Graceful shutdown: SIGTERM/SIGINT become a future the components await.
//!
//! As upstream akv2k8s: the first SIGTERM or SIGINT starts a graceful shutdown (the libraries'
//! `run(deps, cfg, shutdown)` returns, the leader releases its Lease); a second one exits the
//! process with status 1 at once.

use std::future::Future;
use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A shutdown trigger that any number of components can wait on.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A trigger that fires only through [`Shutdown::trigger`].
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// A trigger that fires on the first SIGTERM or SIGINT; the second one exits the process
    /// with status 1. Must be called inside a tokio runtime.
    ///
    /// # Errors
    ///
    /// The signal handlers cannot be installed.
    pub fn on_signals() -> std::io::Result<Self> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = Self::new();
        let trigger = shutdown.clone();
        tokio::spawn(async move {
            let first = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(
                signal = first,
                "shutting down; a second signal exits at once"
            );
            trigger.trigger();
            let second = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::warn!(signal = second, "second signal: exiting with status 1");
            std::process::exit(1);
        });
        Ok(shutdown)
    }

    /// Starts the shutdown. Idempotent.
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    /// Whether the shutdown has started.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// A future that completes once the shutdown has started (at once if it already has), in the
    /// shape the libraries' `run(deps, cfg, shutdown)` takes.
    pub fn signalled(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            // `Err` means every sender is gone: nobody can trigger any more, so stop too.
            let _closed = rx.wait_for(|triggered| *triggered).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_waiter_completes_after_the_trigger() {
        let shutdown = Shutdown::new();
        let early = tokio::spawn(shutdown.signalled());
        let clone = shutdown.clone();
        assert!(!shutdown.is_triggered());
        clone.trigger();
        assert!(shutdown.is_triggered());
        tokio::time::timeout(Duration::from_secs(5), early)
            .await
            .expect("deadline")
            .expect("waiter");
        // A waiter that starts after the trigger completes at once.
        tokio::time::timeout(Duration::from_secs(5), shutdown.signalled())
            .await
            .expect("late waiter");
        shutdown.trigger(); // idempotent
        assert!(shutdown.is_triggered());
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_stay_pending_until_triggered() {
        let shutdown = Shutdown::new();
        let waited = tokio::time::timeout(Duration::from_secs(3600), shutdown.signalled()).await;
        assert!(waited.is_err(), "completed without a trigger");
    }
}
