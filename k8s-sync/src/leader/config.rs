//! Which Lease to campaign for, as whom, and how fast: [`LeaderElectionConfig`] and its
//! defaults (client-go's).

use std::time::Duration;

use crate::error::{Error, Result};

/// How long a Lease is valid after its last renewal (client-go's default).
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// How long a leader keeps leading without a successful renewal (client-go's default).
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// How often followers try to acquire and the leader renews (client-go's default).
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The Lease the controller campaigns for.
pub const DEFAULT_LEASE_NAME: &str = "akv2k8s-controller";
/// The namespace of the Lease.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Which Lease to campaign for, as whom, and how fast.
///
/// `Default` names [`DEFAULT_LEASE_NAME`] in [`DEFAULT_NAMESPACE`] with client-go's timings and
/// an empty `holder_identity`, which [`LeaderElectionConfig::validate`] rejects: every replica
/// needs its own identity, usually the pod name.
#[derive(Clone, Debug)]
pub struct LeaderElectionConfig {
    /// Name of the `coordination.k8s.io/v1` Lease.
    pub lease_name: String,
    /// Namespace of the Lease (usually the controller's own).
    pub namespace: String,
    /// This replica's identity, written to `holderIdentity`; unique per replica (pod name).
    pub holder_identity: String,
    /// How long the Lease stays valid after a renewal; written, rounded up to whole seconds, to
    /// `leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// How long the leader may go without a successful renewal before it stops leading. Shorter
    /// than `lease_duration`.
    pub renew_deadline: Duration,
    /// The interval between acquisition attempts and between renewals. Shorter than
    /// `renew_deadline`.
    pub retry_period: Duration,
}

impl Default for LeaderElectionConfig {
    fn default() -> Self {
        Self {
            lease_name: DEFAULT_LEASE_NAME.to_owned(),
            namespace: DEFAULT_NAMESPACE.to_owned(),
            holder_identity: String::new(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }
}

impl LeaderElectionConfig {
    /// The Lease `namespace/lease_name`, campaigned for as `holder_identity`, with the default
    /// timings.
    pub fn new(
        namespace: impl Into<String>,
        lease_name: impl Into<String>,
        holder_identity: impl Into<String>,
    ) -> Self {
        Self {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            holder_identity: holder_identity.into(),
            ..Self::default()
        }
    }

    /// Sets the three timings at once (they are validated together).
    #[must_use]
    pub fn timings(
        mut self,
        lease_duration: Duration,
        renew_deadline: Duration,
        retry_period: Duration,
    ) -> Self {
        self.lease_duration = lease_duration;
        self.renew_deadline = renew_deadline;
        self.retry_period = retry_period;
        self
    }

    /// Checks that names are set and that `0 < retry_period < renew_deadline < lease_duration`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first offending field.
    pub fn validate(&self) -> Result<()> {
        let invalid = |field, reason: &str| {
            Err(Error::InvalidConfig {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.lease_name.is_empty() {
            return invalid("LeaderElectionConfig::lease_name", "set the Lease name");
        }
        if self.namespace.is_empty() {
            return invalid(
                "LeaderElectionConfig::namespace",
                "set the namespace of the Lease",
            );
        }
        if self.holder_identity.is_empty() {
            return invalid(
                "LeaderElectionConfig::holder_identity",
                "set an identity unique to this replica, e.g. the pod name",
            );
        }
        if self.retry_period.is_zero() {
            return invalid(
                "LeaderElectionConfig::retry_period",
                "must be greater than zero",
            );
        }
        if self.renew_deadline <= self.retry_period {
            return invalid(
                "LeaderElectionConfig::renew_deadline",
                "must be longer than retry_period, so the leader can retry a failed renewal",
            );
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid(
                "LeaderElectionConfig::lease_duration",
                "must be longer than renew_deadline, so a leader that cannot renew stops \
                 before another replica may take over",
            );
        }
        if self.lease_duration.as_secs() >= i32::MAX as u64 {
            return invalid(
                "LeaderElectionConfig::lease_duration",
                "must fit leaseDurationSeconds (i32 seconds)",
            );
        }
        Ok(())
    }
}
