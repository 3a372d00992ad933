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
}

impl Error {
    /// A short, bounded name for the failed operation, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MergeCrdVersions { .. } => "merge_crd_versions",
            Self::SerializeCrd { .. } => "serialize_crd",
        }
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::MergeCrdVersions { .. } | Self::SerializeCrd { .. } => false,
        }
    }

    /// How long the server asked us to wait before retrying, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
