//! Kubernetes Events (`events.k8s.io/v1`) with bounded memory.
//!
//! kube-runtime's `Recorder` keeps every Event it published for six minutes (the whole
//! object, to patch a series) and scans that cache on every publish: at 10,000 AKVS syncing
//! at once that is tens of MiB and a quadratic amount of work. [`EventPublisher`] keeps, per
//! distinct Event, only a hash of what makes it distinct, the Event's name and its count —
//! about 100 bytes — and sweeps expired entries at most every [`SWEEP_INTERVAL`].
//!
//! Semantics follow client-go's `events.k8s.io` recorder: an Event identical to one published
//! less than [`SERIES_WINDOW`] ago (same regarding object, type, reason, action, note and
//! reporter) is not created again; the first one gets a `series` (`count`,
//! `lastObservedTime`) patched instead. Unlike kube-runtime's recorder the note is part of
//! the identity, so a new message is never hidden behind an old Event's text.

use std::collections::HashMap;
use std::hash::{BuildHasher as _, Hash, Hasher as _, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as K8sEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

/// How long a published Event is remembered as the head of a series.
pub const SERIES_WINDOW: Duration = Duration::from_secs(6 * 60);
/// Least time between two sweeps of the series memory.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(30);

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something needs attention.
    Warning,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

/// One Event to publish about an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Machine-readable reason, e.g. `Synced`.
    pub reason: String,
    /// Human-readable note (never values: our notes name objects, not their contents).
    pub note: String,
    /// What the controller did, e.g. `Sync`.
    pub action: String,
}

#[derive(Debug)]
struct Series {
    name: String,
    count: i32,
    last: Instant,
}

#[derive(Debug)]
struct Memory {
    series: HashMap<u64, Series>,
    next_sweep: Instant,
}

/// Publishes Events as one controller instance; cheap to share behind an `Arc`.
pub struct EventPublisher {
    client: Client,
    controller: String,
    instance: String,
    hasher: RandomState,
    unique: AtomicU64,
    memory: Mutex<Memory>,
}

impl std::fmt::Debug for EventPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventPublisher")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl EventPublisher {
    /// A publisher reporting as `controller` (`reportingController`) and `instance`
    /// (`reportingInstance`, e.g. the pod name).
    pub fn new(client: Client, controller: String, instance: String) -> Self {
        Self {
            client,
            controller,
            instance,
            hasher: RandomState::new(),
            unique: AtomicU64::new(0),
            memory: Mutex::new(Memory {
                series: HashMap::new(),
                next_sweep: Instant::now() + SWEEP_INTERVAL,
            }),
        }
    }

    /// Distinct Events remembered as series heads.
    pub fn remembered(&self) -> usize {
        self.lock().series.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn key(&self, ev: &Event, regarding: &ObjectReference) -> u64 {
        let mut h = self.hasher.build_hasher();
        ev.hash(&mut h);
        (
            &regarding.api_version,
            &regarding.kind,
            &regarding.namespace,
            &regarding.name,
            &regarding.uid,
        )
            .hash(&mut h);
        h.finish()
    }

    /// Publishes `ev` about `regarding`: creates an Event, or bumps the series of the same
    /// Event published within [`SERIES_WINDOW`].
    ///
    /// # Errors
    ///
    /// The API server's error (e.g. 403 without `create` on `events.k8s.io` events).
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Instant::now();
        let key = self.key(ev, regarding);
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let repeat = {
            let mut m = self.lock();
            if now >= m.next_sweep {
                m.series
                    .retain(|_, s| now.duration_since(s.last) < SERIES_WINDOW);
                m.next_sweep = now + SWEEP_INTERVAL;
            }
            match m.series.get_mut(&key) {
                Some(s) if now.duration_since(s.last) < SERIES_WINDOW => {
                    s.count = s.count.saturating_add(1);
                    s.last = now;
                    Some((s.name.clone(), s.count))
                }
                _ => None,
            }
        };
        if let Some((name, count)) = repeat {
            let api: Api<K8sEvent> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({"series": EventSeries {
                count,
                last_observed_time: MicroTime(Timestamp::now()),
            }});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                // Expired or deleted: start a new Event.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let event = self.new_event(ev, regarding, &namespace);
        let name = event.metadata.name.clone().unwrap_or_default();
        Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        self.lock().series.insert(
            key,
            Series {
                name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    fn new_event(&self, ev: &Event, regarding: &ObjectReference, namespace: &str) -> K8sEvent {
        let now = Timestamp::now();
        // Unique per process even within one nanosecond.
        let n = self.unique.fetch_add(1, Ordering::Relaxed);
        let stamp = now
            .as_nanosecond()
            .unsigned_abs()
            .wrapping_add(u128::from(n));
        let base = regarding.name.as_deref().unwrap_or(&self.controller);
        // Event names are DNS subdomains (≤ 253): room for the suffix.
        let base: String = base.chars().take(200).collect();
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{stamp:x}")),
                namespace: Some(namespace.to_owned()),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            note: Some(ev.note.clone()),
            type_: Some(ev.type_.as_str().to_owned()),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            ..Default::default()
        }
    }
}
