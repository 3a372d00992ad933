//! Leader election on a `coordination.k8s.io/v1` Lease: several controller replicas run, one
//! writes.
//!
//! kube 5 has no leader election, so this is client-go's `leaderelection` with a `LeaseLock`,
//! on [`Api<Lease>`]. A [`LeaderElector`] campaigns for one Lease and publishes whether it
//! leads on a [`watch`] channel ([`LeaderElector::leadership`]); [`LeaderElector::run`] drives
//! it until the shutdown future resolves.
//!
//! ```text
//!              Lease free, expired or already ours: write it (resourceVersion precondition)
//!   follower ──────────────────────────────────────────────────────────────▶ leader ──┐
//!      ▲  ▲                                                                   │   ▲    │ renew every
//!      │  └─ 409 / not yet expired: retry every retry_period                  │   └────┘ retry_period
//!      │                                                                      │
//!      └──── renew deadline passed, or 409 on renew (taken over) ─────────────┤ leadership = false
//!                                                                             │ at once
//!                                                    shutdown: leadership = false, release Lease
//! ```
//!
//! # Semantics
//!
//! * **Acquire.** A follower reads the Lease every `retry_period`. It writes itself in as holder
//!   when the Lease does not exist (create), has no holder (released), already names it
//!   (restart with the same identity, or an answer lost in transit), or has expired:
//!   `renewTime + leaseDurationSeconds` is before now. A takeover sets `acquireTime` and
//!   increments `leaseTransitions`; a new Lease starts at 0 transitions.
//! * **One winner.** Every write is a `replace` carrying the `resourceVersion` that was read (or a
//!   `create`), so when two replicas race for the same Lease the API server accepts one and answers
//!   409 to the other, which stays a follower.
//! * **Renew.** The leader rewrites `renewTime` every `retry_period`. Its leadership is good until
//!   `renew_deadline` after the last successful renewal was *sent*; when that passes without a
//!   renewal, or a renewal gets a 409 (someone else wrote the Lease), leadership drops to `false`
//!   at once and the elector becomes a follower again. Because `renew_deadline < lease_duration`,
//!   a leader that cannot renew stops writing before any other replica may take over.
//! * **Release.** When the shutdown future resolves, a leader first publishes `false` and then
//!   releases the Lease (as client-go's `ReleaseOnCancel`): `holderIdentity` and `acquireTime`
//!   cleared, `renewTime` now, `leaseDurationSeconds` 1, `leaseTransitions` kept. Another replica
//!   acquires it on its next retry instead of waiting for the Lease to expire.
//!
//! # Time
//!
//! Renewal deadlines are measured with [`tokio::time::Instant`]. Expiry compares the Lease's
//! wall-clock `renewTime` (a [`MicroTime`], which wraps a `jiff::Timestamp` in k8s-openapi
//! 0.29 and is written as RFC 3339 UTC with six fraction digits) with this replica's clock, so replicas' clocks must agree to well within the lease duration,
//! as on any NTP-synchronised cluster. As a guard against a clock running ahead, a follower that
//! has itself *seen* the Lease change within the last lease duration does not treat it as
//! expired. `leaseDurationSeconds` is whole seconds: durations are rounded up (600 ms → 1 s).
//!
//! [`MicroTime`]: k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime
//!
//! # Example
//!
//! ```
//! use k8s_sync::leader::{LeaderElectionConfig, LeaderElector};
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! testkit::install_crypto_provider();
//! let api = testkit::apiserver::ApiServerFake::start(Default::default()).await?;
//! let kubeconfig = kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml())?;
//! let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
//! let client = kube::Client::try_from(config)?;
//!
//! let elector = LeaderElector::new(
//!     client,
//!     LeaderElectionConfig::new("default", "akv2k8s-controller", "replica-0"),
//! )?;
//! let mut leading = elector.leadership();
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let election = tokio::spawn(elector.run(async move {
//!     let _ = stopped.await;
//! }));
//!
//! leading.wait_for(|leader| *leader).await?; // start writing
//! let _ = stop.send(());
//! election.await??; // released: another replica may lead now
//! assert!(!*leading.borrow());
//! # Ok(())
//! # }
//! ```

mod config;
mod record;

use std::future::Future;
use std::pin::pin;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tracing::{Instrument as _, debug, error, info, info_span, warn};

pub use config::{
    DEFAULT_LEASE_DURATION, DEFAULT_LEASE_NAME, DEFAULT_NAMESPACE, DEFAULT_RENEW_DEADLINE,
    DEFAULT_RETRY_PERIOD, LeaderElectionConfig,
};
use record::{Observer, claim, holder, lease_expired, lease_spec, record_duration, released};

use crate::error::{Error, Result};

/// Campaigns for one Lease; see the [module docs](self) for the protocol.
#[derive(Debug)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    leader: watch::Sender<bool>,
}

/// What one acquisition attempt found.
enum Attempt {
    /// We hold the Lease; this is the server's copy.
    Acquired(Box<Lease>),
    /// Another replica holds a valid Lease.
    Held {
        /// Its identity.
        holder: String,
    },
}

/// Why a leader stopped leading.
#[derive(Clone, Copy, Debug)]
enum Lost {
    /// No successful renewal within `renew_deadline`.
    RenewDeadline,
    /// A renewal got a 409: another writer changed the Lease.
    Conflict,
}

impl LeaderElector {
    /// An elector for `config.namespace/config.lease_name`. Nothing is sent until
    /// [`LeaderElector::run`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] when the config does not pass
    /// [`LeaderElectionConfig::validate`].
    pub fn new(client: Client, config: LeaderElectionConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            leader: watch::Sender::new(false),
        })
    }

    /// Whether this replica leads, now and as it changes: `true` from a successful acquisition
    /// until leadership is lost or `run` shuts down. Write only while it is `true`, and stop at
    /// once when it turns `false`.
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leader.subscribe()
    }

    /// Whether this replica leads right now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// The validated configuration.
    pub fn config(&self) -> &LeaderElectionConfig {
        &self.config
    }

    /// Campaigns until `shutdown` resolves: acquires the Lease when it is free, renews it while
    /// leading, and publishes leadership on [`LeaderElector::leadership`]. API errors are logged
    /// and retried every `retry_period`; they never end the campaign.
    ///
    /// # Cancellation
    ///
    /// When `shutdown` resolves, leadership turns `false` first, then a held Lease is released so
    /// another replica takes over at once, and `run` returns. Stop the guarded writers before or
    /// as `shutdown` resolves: after the release another replica may start writing. Dropping the
    /// future instead skips the release; other replicas then wait for the Lease to expire.
    ///
    /// # Errors
    ///
    /// [`Error::ReleaseLease`] or [`Error::LeaseTimeout`] when the release on shutdown failed (the
    /// Lease then expires by itself after `lease_duration`).
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let span = info_span!(
            "leader_election",
            namespace = %self.config.namespace,
            name = %self.config.lease_name,
            identity = %self.config.holder_identity,
        );
        self.campaign(shutdown).instrument(span).await
    }

    async fn campaign(&self, shutdown: impl Future<Output = ()>) -> Result<()> {
        let mut shutdown = pin!(shutdown);
        let cfg = &self.config;
        let mut observer = Observer::default();
        let mut seen_holder: Option<String> = None;
        // Set when an acquisition write may have landed without us seeing the answer.
        let mut uncertain = false;
        loop {
            // Follower: try to acquire every retry_period.
            let (mut lease, mut deadline) = loop {
                let started = Instant::now();
                let attempt = tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        // An attempt was in flight: it may have made us the holder.
                        return self.release(None).await;
                    }
                    r = timeout_at(started + cfg.renew_deadline, self.try_acquire(&mut observer)) => r,
                };
                match attempt {
                    Ok(Ok(Attempt::Acquired(lease))) => {
                        break (*lease, started + cfg.renew_deadline);
                    }
                    Ok(Ok(Attempt::Held { holder })) => {
                        uncertain = false;
                        if seen_holder.as_deref() != Some(holder.as_str()) {
                            debug!(holder = %holder, "lease held by another replica");
                            seen_holder = Some(holder);
                        }
                    }
                    Ok(Err(e)) if e.is_conflict() => {
                        debug!(
                            error = &e as &dyn std::error::Error,
                            "lost the race for the lease"
                        );
                    }
                    Ok(Err(e)) => log_api_error(&e, "cannot acquire the lease; retrying"),
                    Err(_elapsed) => {
                        uncertain = true;
                        warn!(timeout = ?cfg.renew_deadline, "no answer acquiring the lease; retrying");
                    }
                }
                tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        return if uncertain { self.release(None).await } else { Ok(()) };
                    }
                    () = sleep(cfg.retry_period) => {}
                }
            };
            seen_holder = None;
            uncertain = false;
            self.leader.send_replace(true);
            info!(
                transitions = lease_spec(&lease).lease_transitions.unwrap_or(0),
                "leadership acquired"
            );

            // Leader: renew every retry_period until the deadline passes or the Lease is taken.
            let lost = loop {
                let wake = (Instant::now() + cfg.retry_period).min(deadline);
                tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        self.leader.send_replace(false);
                        return self.release(Some(lease)).await;
                    }
                    () = sleep_until(wake) => {}
                }
                if Instant::now() >= deadline {
                    break Lost::RenewDeadline;
                }
                let started = Instant::now();
                let renewed = tokio::select! {
                    biased;
                    () = &mut shutdown => {
                        self.leader.send_replace(false);
                        // The renewal may have landed: release re-reads on a 409.
                        return self.release(Some(lease)).await;
                    }
                    r = timeout_at(deadline, self.renew(&lease)) => r,
                };
                match renewed {
                    Ok(Ok(next)) => {
                        lease = next;
                        deadline = started + cfg.renew_deadline;
                        debug!("lease renewed");
                    }
                    Ok(Err(e)) if e.is_conflict() => break Lost::Conflict,
                    Ok(Err(e)) => log_api_error(&e, "cannot renew the lease; retrying"),
                    Err(_elapsed) => break Lost::RenewDeadline,
                }
            };
            self.leader.send_replace(false);
            match lost {
                Lost::RenewDeadline => warn!(
                    renew_deadline = ?cfg.renew_deadline,
                    "leadership lost: no renewal within the renew deadline"
                ),
                Lost::Conflict => warn!("leadership lost: the lease was changed by another writer"),
            }
        }
    }

    /// One acquisition attempt: read the Lease, and write ourselves in if it is free.
    async fn try_acquire(&self, observer: &mut Observer) -> Result<Attempt> {
        let cfg = &self.config;
        let current = self
            .api
            .get_opt(&cfg.lease_name)
            .await
            .map_err(|source| self.error(source, Op::Get))?;
        let now = Timestamp::now();
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(cfg.lease_name.clone()),
                    namespace: Some(cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(claim(None, &cfg.holder_identity, cfg.lease_duration, now)),
            };
            let created = self
                .api
                .create(&PostParams::default(), &lease)
                .await
                .map_err(|source| self.error(source, Op::Acquire))?;
            debug!("lease created");
            return Ok(Attempt::Acquired(Box::new(created)));
        };
        let spec = lease_spec(&lease);
        let changed_at = observer.observe(lease.metadata.resource_version.as_deref());
        if let Some(holder) = holder(&spec).filter(|h| *h != cfg.holder_identity) {
            let valid = !lease_expired(&spec, now, cfg.lease_duration);
            // Our clock may run ahead of the holder's: a Lease we saw change recently is live.
            let renewed_recently = changed_at
                .is_some_and(|at| at.elapsed() < record_duration(&spec, cfg.lease_duration));
            if valid || renewed_recently {
                return Ok(Attempt::Held {
                    holder: holder.to_owned(),
                });
            }
            info!(holder = %holder, "lease expired; taking over");
        }
        lease.spec = Some(claim(
            Some(&spec),
            &cfg.holder_identity,
            cfg.lease_duration,
            now,
        ));
        let replaced = self
            .api
            .replace(&cfg.lease_name, &PostParams::default(), &lease)
            .await
            .map_err(|source| self.error(source, Op::Acquire))?;
        Ok(Attempt::Acquired(Box::new(replaced)))
    }

    /// Rewrites `renewTime` of the Lease we hold, with its resourceVersion as precondition.
    async fn renew(&self, held: &Lease) -> Result<Lease> {
        let cfg = &self.config;
        let mut next = held.clone();
        next.spec = Some(claim(
            held.spec.as_ref(),
            &cfg.holder_identity,
            cfg.lease_duration,
            Timestamp::now(),
        ));
        self.api
            .replace(&cfg.lease_name, &PostParams::default(), &next)
            .await
            .map_err(|source| self.error(source, Op::Renew))
    }

    /// Releases the Lease if we hold it, within `renew_deadline`. `held` is our last copy; without
    /// one, or when it is stale (409), the Lease is read first.
    async fn release(&self, held: Option<Lease>) -> Result<()> {
        let cfg = &self.config;
        let released = timeout(cfg.renew_deadline, self.release_held(held)).await;
        let result = released.unwrap_or_else(|_| {
            Err(Error::LeaseTimeout {
                operation: "release",
                namespace: cfg.namespace.clone(),
                name: cfg.lease_name.clone(),
                timeout: cfg.renew_deadline,
            })
        });
        if let Err(e) = &result {
            warn!(
                error = e as &dyn std::error::Error,
                "lease not released; other replicas wait for it to expire"
            );
        }
        result
    }

    async fn release_held(&self, held: Option<Lease>) -> Result<()> {
        let cfg = &self.config;
        let mut lease = held;
        let mut reread = false;
        loop {
            let current = match lease.take() {
                Some(l) => l,
                None => match self
                    .api
                    .get_opt(&cfg.lease_name)
                    .await
                    .map_err(|source| self.error(source, Op::Get))?
                {
                    Some(l) => l,
                    None => return Ok(()),
                },
            };
            let spec = lease_spec(&current);
            if holder(&spec) != Some(cfg.holder_identity.as_str()) {
                debug!("lease not held by this replica; nothing to release");
                return Ok(());
            }
            let mut next = current;
            next.spec = Some(released(&spec, Timestamp::now()));
            match self
                .api
                .replace(&cfg.lease_name, &PostParams::default(), &next)
                .await
            {
                Ok(_) => {
                    info!("lease released");
                    return Ok(());
                }
                // Our copy is stale (e.g. a renewal landed that we stopped waiting for): re-read
                // once; it may name another holder by now.
                Err(kube::Error::Api(s)) if s.code == 409 && !reread => reread = true,
                Err(source) => return Err(self.error(source, Op::Release)),
            }
        }
    }

    fn error(&self, source: kube::Error, op: Op) -> Error {
        let namespace = self.config.namespace.clone();
        let name = self.config.lease_name.clone();
        match op {
            Op::Get => Error::GetLease {
                namespace,
                name,
                source,
            },
            Op::Acquire => Error::AcquireLease {
                namespace,
                name,
                source,
            },
            Op::Renew => Error::RenewLease {
                namespace,
                name,
                source,
            },
            Op::Release => Error::ReleaseLease {
                namespace,
                name,
                source,
            },
        }
    }
}

/// The Lease operations, for [`LeaderElector::error`].
#[derive(Clone, Copy)]
enum Op {
    Get,
    Acquire,
    Renew,
    Release,
}

fn log_api_error(e: &Error, message: &'static str) {
    if e.is_retryable() {
        warn!(error = e as &dyn std::error::Error, "{message}");
    } else {
        // Forbidden, invalid: RBAC or the Lease needs an operator. Keep trying meanwhile.
        error!(
            error = e as &dyn std::error::Error,
            kind = e.kind(),
            "{message}"
        );
    }
}

#[cfg(test)]
mod tests;
