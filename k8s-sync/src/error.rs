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
    /// The `AzureKeyVaultSecret` CRD is not served by the API server.
    #[error(
        "the AzureKeyVaultSecret CRD (azurekeyvaultsecrets.spv.no) is not installed: apply crds/azurekeyvaultsecrets.spv.no.yaml"
    )]
    CrdNotInstalled {
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating the CRD was refused.
    #[error("cannot create CustomResourceDefinition {name}")]
    InstallCrd {
        /// The CRD's name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// The CRD was created but not `Established` in time.
    #[error("CustomResourceDefinition {name} was not established within {timeout:?}")]
    CrdNotEstablished {
        /// The CRD's name.
        name: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The Key Vault read plane could not be built.
    #[error("cannot build the Key Vault read plane")]
    ReadPlane {
        /// akv-client's error (boxed: it is large).
        #[source]
        source: Box<akv_client::Error>,
    },
    /// `spec.vault.name` is not a Key Vault name, or its vault cannot be opened.
    #[error("cannot open Key Vault '{vault}' for AzureKeyVaultSecret {namespace}/{name}")]
    OpenVault {
        /// Namespace of the AKVS.
        namespace: String,
        /// Name of the AKVS.
        name: String,
        /// `spec.vault.name`.
        vault: String,
        /// akv-client's error (boxed: it is large).
        #[source]
        source: Box<akv_client::Error>,
    },
    /// Reading the object from Key Vault failed.
    #[error(
        "cannot read '{object}' from Key Vault '{vault}' for AzureKeyVaultSecret {namespace}/{name}"
    )]
    FetchObject {
        /// Namespace of the AKVS.
        namespace: String,
        /// Name of the AKVS.
        name: String,
        /// `spec.vault.name`.
        vault: String,
        /// `spec.vault.object.name`.
        object: String,
        /// akv-client's error (boxed: it is large).
        #[source]
        source: Box<akv_client::Error>,
    },
    /// The spec cannot be rendered into its outputs (no dataKey, unknown transform, …).
    #[error("cannot render the outputs of AzureKeyVaultSecret {namespace}/{name}")]
    Render {
        /// Namespace of the AKVS.
        namespace: String,
        /// Name of the AKVS.
        name: String,
        /// akv-client's error (boxed: it is large).
        #[source]
        source: Box<akv_client::Error>,
    },
    /// An output with the requested name exists and is not managed by this AKVS.
    #[error("{kind} {namespace}/{name} already exists and is not managed by AzureKeyVaultSecret")]
    ResourceExists {
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
    /// Keys this AKVS would write are owned by another AKVS writing the same object.
    #[error("{kind} {namespace}/{name}: keys {keys:?} are owned by another AzureKeyVaultSecret")]
    KeyConflict {
        /// `Secret` or `ConfigMap`.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The contested keys (names only).
        keys: Vec<String>,
    },
    /// The Secret type changed, but other AKVS write the Secret too, so it cannot be recreated.
    #[error(
        "Secret {namespace}/{name} has type {from}, and other AzureKeyVaultSecrets write it; the type is immutable: use a new Secret name"
    )]
    SharedSecretType {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The existing type.
        from: String,
    },
    /// Reading an output object failed.
    #[error("cannot get {kind} {namespace}/{name}")]
    GetOutput {
        /// Secret or ConfigMap.
        kind: crate::render::OutputKind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Server-side apply of an output failed.
    #[error("cannot apply {kind} {namespace}/{name}")]
    ApplyOutput {
        /// Secret or ConfigMap.
        kind: crate::render::OutputKind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Deleting an output failed.
    #[error("cannot delete {kind} {namespace}/{name}")]
    DeleteOutput {
        /// Secret or ConfigMap.
        kind: crate::render::OutputKind,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Writing the AKVS status failed.
    #[error("cannot patch the status of AzureKeyVaultSecret {namespace}/{name}")]
    PatchStatus {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed.
    #[error("cannot update the finalizers of AzureKeyVaultSecret {namespace}/{name}")]
    PatchFinalizers {
        /// Namespace.
        namespace: String,
        /// Name.
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
            Self::CrdNotInstalled { .. } => "crd_not_installed",
            Self::InstallCrd { .. } => "install_crd",
            Self::CrdNotEstablished { .. } => "crd_not_established",
            Self::ReadPlane { .. } => "read_plane",
            Self::OpenVault { .. } => "open_vault",
            Self::FetchObject { .. } => "fetch_object",
            Self::Render { .. } => "render",
            Self::ResourceExists { .. } => "resource_exists",
            Self::KeyConflict { .. } => "key_conflict",
            Self::SharedSecretType { .. } => "shared_secret_type",
            Self::GetOutput { .. } => "get_output",
            Self::ApplyOutput { .. } => "apply_output",
            Self::DeleteOutput { .. } => "delete_output",
            Self::PatchStatus { .. } => "patch_status",
            Self::PatchFinalizers { .. } => "patch_finalizers",
        }
    }

    /// Whether trying again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::MergeCrdVersions { .. }
            | Self::SerializeCrd { .. }
            | Self::InvalidConfig { .. }
            | Self::CrdNotInstalled { .. }
            | Self::InstallCrd { .. }
            | Self::ReadPlane { .. }
            | Self::OpenVault { .. }
            | Self::Render { .. }
            | Self::SharedSecretType { .. } => false,
            // The other owner or the foreign object may go away.
            Self::ResourceExists { .. } | Self::KeyConflict { .. } => true,
            Self::LeaseTimeout { .. } | Self::CrdNotEstablished { .. } => true,
            Self::FetchObject { source, .. } => source.is_retryable(),
            Self::GetLease { source, .. }
            | Self::AcquireLease { source, .. }
            | Self::RenewLease { source, .. }
            | Self::ReleaseLease { source, .. }
            | Self::GetOutput { source, .. }
            | Self::ApplyOutput { source, .. }
            | Self::DeleteOutput { source, .. }
            | Self::PatchStatus { source, .. }
            | Self::PatchFinalizers { source, .. } => is_retryable_kube(source),
        }
    }

    /// Whether this is a 409 from the API server: a precondition (resourceVersion) failed or the
    /// object already exists, i.e. another writer got there first.
    pub fn is_conflict(&self) -> bool {
        match self {
            Self::GetLease { source, .. }
            | Self::AcquireLease { source, .. }
            | Self::RenewLease { source, .. }
            | Self::ReleaseLease { source, .. }
            | Self::ApplyOutput { source, .. }
            | Self::DeleteOutput { source, .. }
            | Self::PatchFinalizers { source, .. } => {
                matches!(source, kube::Error::Api(s) if s.code == 409)
            }
            _ => false,
        }
    }

    /// How long the server asked us to wait before retrying, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::FetchObject { source, .. } => source.retry_after(),
            _ => None,
        }
    }

    /// Whether an output is held by someone else (a foreign object or another AKVS's key):
    /// resolved by others, not by waiting for Key Vault.
    pub fn is_ownership_conflict(&self) -> bool {
        matches!(self, Self::ResourceExists { .. } | Self::KeyConflict { .. })
    }

    /// When this is a Key Vault refresh the read budget deferred (not a failure): when to
    /// try again.
    pub fn deferred(&self) -> Option<Duration> {
        match self {
            Self::FetchObject { source, .. } => source.deferred(),
            _ => None,
        }
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
