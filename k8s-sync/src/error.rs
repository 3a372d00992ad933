//! The errors of this crate.

use std::time::Duration;

/// Everything that can fail in `k8s-sync`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The per-version CRDs derived from the API types could not be merged into one.
    /// This is a programming error in the type definitions, never a run-time condition.
    #[error("cannot merge the AzureKeyVaultSecret versions into one CustomResourceDefinition")]
    MergeCrdVersions {
        /// What kube's `merge_crds` rejected.
        #[source]
        source: kube::core::crd::MergeError,
    },
    /// The CRD could not be written as YAML.
    #[error("cannot serialise the AzureKeyVaultSecret CustomResourceDefinition as YAML")]
    SerializeCrd {
        /// The YAML serialiser's error.
        #[source]
        source: serde_saphyr::ser::Error,
    },
    /// A configuration value is out of range; `reason` says what to set instead.
    #[error("invalid configuration: {field}: {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `LeaderElectionConfig::renew_deadline`.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// Reading the leader-election Lease failed.
    #[error("cannot get Lease {namespace}/{name}")]
    GetLease {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating or taking over the leader-election Lease failed (a 409 means another replica
    /// won the race).
    #[error("cannot acquire Lease {namespace}/{name}")]
    AcquireLease {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Renewing the leader-election Lease we hold failed (a 409 means it was taken from us).
    #[error("cannot renew Lease {namespace}/{name}")]
    RenewLease {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Releasing the leader-election Lease on shutdown failed; other replicas take over once it
    /// expires instead of at once.
    #[error("cannot release Lease {namespace}/{name}; other replicas wait for it to expire")]
    ReleaseLease {
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A Lease request got no answer in time.
    #[error("Lease {namespace}/{name}: no answer to {operation} within {timeout:?}")]
    LeaseTimeout {
        /// What was attempted: `acquire`, `renew` or `release`.
        operation: &'static str,
        /// Namespace of the Lease.
        namespace: String,
        /// Name of the Lease.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
}

impl Error {
    /// A short, bounded name for the failed operation, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MergeCrdVersions { .. } => "merge_crd_versions",
            Self::SerializeCrd { .. } => "serialize_crd",
            Self::InvalidConfig { .. } => "invalid_config",
            Self::GetLease { .. } => "get_lease",
            Self::AcquireLease { .. } => "acquire_lease",
            Self::RenewLease { .. } => "renew_lease",
            Self::ReleaseLease { .. } => "release_lease",
            Self::LeaseTimeout { .. } => "lease_timeout",
        }
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::MergeCrdVersions { .. }
            | Self::SerializeCrd { .. }
            | Self::InvalidConfig { .. } => false,
            Self::LeaseTimeout { .. } => true,
            Self::GetLease { source, .. }
            | Self::AcquireLease { source, .. }
            | Self::RenewLease { source, .. }
            | Self::ReleaseLease { source, .. } => is_retryable_kube(source),
        }
    }

    /// Whether this is a 409 from the API server: a precondition (resourceVersion) failed or the
    /// object already exists, i.e. another writer got there first.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::GetLease { source, .. }
            | Self::AcquireLease { source, .. }
            | Self::RenewLease { source, .. }
            | Self::ReleaseLease { source, .. } => {
                matches!(source, kube::Error::Api(s) if s.code == 409)
            }
            _ => false,
        }
    }

    /// How long the server asked us to wait before retrying, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// Transport failures, conflicts, throttling and server errors may pass; other 4xx (forbidden,
/// invalid) and client-side errors need an operator or a fix.
fn is_retryable_kube(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => matches!(s.code, 409 | 429 | 500..),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
