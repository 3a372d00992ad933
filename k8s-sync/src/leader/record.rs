//! The Lease record: pure functions over `LeaseSpec` that decide expiry and build the spec a
//! claim, renewal or release writes, plus what this replica has observed of the Lease.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// The `leaseDurationSeconds` a released Lease carries (client-go's value).
const RELEASED_LEASE_DURATION_SECONDS: i32 = 1;

/// When the Lease was last seen to change (new resourceVersion), as this replica observed it.
#[derive(Debug, Default)]
pub(super) struct Observer {
    last: Option<(Option<String>, Option<Instant>)>,
}

impl Observer {
    /// Records the Lease's resourceVersion as seen now and returns when it last changed; `None`
    /// until a change has been seen (the first sighting says nothing about its age).
    pub(super) fn observe(&mut self, resource_version: Option<&str>) -> Option<Instant> {
        match &mut self.last {
            Some((rv, changed_at)) if rv.as_deref() == resource_version => *changed_at,
            Some((rv, changed_at)) => {
                *rv = resource_version.map(str::to_owned);
                *changed_at = Some(Instant::now());
                *changed_at
            }
            None => {
                self.last = Some((resource_version.map(str::to_owned), None));
                None
            }
        }
    }
}

/// The Lease's spec, or an empty one.
pub(super) fn lease_spec(lease: &Lease) -> LeaseSpec {
    lease.spec.clone().unwrap_or_default()
}

/// The holder named in `spec`, if any (an empty identity is no holder).
pub(super) fn holder(spec: &LeaseSpec) -> Option<&str> {
    spec.holder_identity.as_deref().filter(|h| !h.is_empty())
}

/// `leaseDurationSeconds` for `d`: whole seconds, rounded up, at least 1 (the API server rejects
/// 0).
pub(super) fn lease_duration_seconds(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs.max(1)).unwrap_or(i32::MAX)
}

/// The validity period the Lease declares, or `fallback` (our own) when it declares none.
pub(super) fn record_duration(spec: &LeaseSpec, fallback: Duration) -> Duration {
    match spec.lease_duration_seconds {
        Some(s) if s > 0 => Duration::from_secs(s.unsigned_abs().into()),
        _ => fallback,
    }
}

/// Whether the Lease's holder has let it lapse: `renewTime + leaseDurationSeconds <= now`.
/// A Lease without `renewTime` has expired.
pub(super) fn lease_expired(spec: &LeaseSpec, now: Timestamp, fallback: Duration) -> bool {
    let Some(MicroTime(renewed)) = spec.renew_time else {
        return true;
    };
    let valid_for =
        SignedDuration::try_from(record_duration(spec, fallback)).unwrap_or(SignedDuration::MAX);
    renewed
        .checked_add(valid_for)
        .is_ok_and(|expires| expires <= now)
}

/// The spec that makes `identity` the holder at `now`. Renewing our own Lease keeps
/// `acquireTime` and `leaseTransitions`; taking one over sets `acquireTime` and counts a
/// transition; a new Lease (`current` = `None`) starts at 0.
pub(super) fn claim(
    current: Option<&LeaseSpec>,
    identity: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> LeaseSpec {
    let mut spec = current.cloned().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(identity) {
        spec.holder_identity = Some(identity.to_owned());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(match current {
            None => 0,
            Some(c) => c.lease_transitions.unwrap_or(0).saturating_add(1),
        });
    }
    spec.acquire_time.get_or_insert(MicroTime(now));
    spec.lease_transitions.get_or_insert(0);
    spec.lease_duration_seconds = Some(lease_duration_seconds(lease_duration));
    spec.renew_time = Some(MicroTime(now));
    spec
}

/// The spec of a released Lease (client-go's `ReleaseOnCancel`): no holder, renewed now with a
/// 1 s duration, transitions kept.
pub(super) fn released(current: &LeaseSpec, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        acquire_time: None,
        renew_time: Some(MicroTime(now)),
        lease_duration_seconds: Some(RELEASED_LEASE_DURATION_SECONDS),
        ..current.clone()
    }
}
