//! Status conditions: the `Ready` condition and its reasons, shaped like `metav1.Condition` so
//! `kubectl wait --for=condition=Ready akvs/<name>` works.

use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::object::string_enum;

/// The condition type the controller maintains.
pub const READY: &str = "Ready";

/// One observation of the object's state, as `metav1.Condition`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(
    description = "Condition contains details for one aspect of the current state of this resource"
)]
pub struct Condition {
    /// Type of condition in CamelCase, e.g. Ready
    #[serde(rename = "type")]
    #[schemars(length(max = 316))]
    pub type_: String,
    /// Status of the condition, one of True, False, Unknown
    pub status: ConditionStatus,
    /// A programmatic identifier in CamelCase for the reason of the condition's last transition
    #[schemars(
        length(min = 1, max = 1024),
        pattern(r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    )]
    pub reason: String,
    /// A human readable message with details about the transition; may be empty
    #[schemars(length(max = 32768))]
    pub message: String,
    /// When the condition last changed from one status to another
    #[schemars(schema_with = "super::date_time")]
    pub last_transition_time: Time,
    /// The metadata.generation the condition was set for
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A `Ready` condition with the status that `reason` implies.
    pub fn ready(
        reason: ReadyReason,
        message: impl Into<String>,
        now: Time,
        generation: Option<i64>,
    ) -> Self {
        Self {
            type_: READY.into(),
            status: reason.status(),
            reason: reason.as_str().into(),
            message: message.into(),
            last_transition_time: now,
            observed_generation: generation,
        }
    }

    /// Whether this is a `Ready` condition with status `True`.
    pub fn is_ready(&self) -> bool {
        self.type_ == READY && self.status == ConditionStatus::True
    }
}

string_enum! {
    /// Status of a [`Condition`].
    ConditionStatus, "Status of the condition, one of True, False, Unknown" {
        /// The condition holds.
        True = "True",
        /// The condition does not hold.
        False = "False",
        /// The controller cannot tell (yet).
        Unknown = "Unknown",
    }
}

/// Why an `AzureKeyVaultSecret` is or is not `Ready`. The `Err*` names are upstream's Event
/// reasons, so Events and the condition agree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReadyReason {
    /// The outputs hold the Key Vault version in `status.objectVersion` (`True`).
    Synced,
    /// No Secret or ConfigMap output is requested: the object serves env injection only (`True`).
    NoOutput,
    /// Key Vault could not be read (unreachable, throttled, denied, object missing); the last
    /// good outputs are kept (`False`).
    ErrAzureVault,
    /// An output exists and is not owned by this object; it was left untouched (`False`).
    ErrResourceExists,
    /// The spec cannot be rendered: missing `dataKey`, unknown transform, a certificate without
    /// a private key for a TLS Secret… (`False`).
    InvalidSpec,
    /// Writing an output to the API server failed, e.g. a changed Secret `type`, which is
    /// immutable (`False`).
    ErrOutputWrite,
}

impl ReadyReason {
    /// Every reason.
    pub const ALL: &'static [Self] = &[
        Self::Synced,
        Self::NoOutput,
        Self::ErrAzureVault,
        Self::ErrResourceExists,
        Self::InvalidSpec,
        Self::ErrOutputWrite,
    ];

    /// The CamelCase `reason` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "Synced",
            Self::NoOutput => "NoOutput",
            Self::ErrAzureVault => "ErrAzureVault",
            Self::ErrResourceExists => "ErrResourceExists",
            Self::InvalidSpec => "InvalidSpec",
            Self::ErrOutputWrite => "ErrOutputWrite",
        }
    }

    /// The `Ready` status this reason goes with.
    pub fn status(self) -> ConditionStatus {
        match self {
            Self::Synced | Self::NoOutput => ConditionStatus::True,
            Self::ErrAzureVault
            | Self::ErrResourceExists
            | Self::InvalidSpec
            | Self::ErrOutputWrite => ConditionStatus::False,
        }
    }

    /// The reason named `s`, if it is one of ours.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for ReadyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Marks a `conditions` list as a map keyed by `type`, as `metav1.Condition` lists are.
pub(crate) fn condition_list(generator: &mut SchemaGenerator) -> Schema {
    let item = generator.subschema_for::<Condition>();
    json_schema!({
        "type": "array",
        "description": "Observations of the object's state; the controller maintains Ready",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}
