//! The cluster's background controllers that our users' objects depend on, run asynchronously
//! after writes as in a cluster: ownerReference garbage collection (background, foreground,
//! orphan) and namespace termination.
//!
//! ```text
//! store event ──► reconcile(event) ──► writes (deletes, finalizer removals) ──► store events …
//! ```

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::http::{Inner, State};
use super::store::{Event, EventType, Key};
use crate::clock::rfc3339;
use crate::faults::lock;

/// Runs until the store's event channel closes (the server is dropped).
pub async fn run(state: Arc<State>, mut events: broadcast::Receiver<Arc<Event>>) {
    loop {
        match events.recv().await {
            Ok(e) => {
                let now = rfc3339(state.clock.now());
                let mut inner = lock(&state.inner);
                reconcile(&mut inner, &e, &now);
            }
            // Missed events: reconcile everything that may be pending.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                let now = rfc3339(state.clock.now());
                let mut inner = lock(&state.inner);
                sweep(&mut inner, &now);
            }
            Err(broadcast::error::RecvError::Closed) => break,
        }
    }
}

fn uid(obj: &Value) -> Option<&str> {
    obj["metadata"]["uid"].as_str()
}

fn owner_uids(obj: &Value) -> Vec<String> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["uid"].as_str().map(str::to_owned))
        .collect()
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == f))
}

fn dependents(inner: &Inner, owner_uid: &str) -> Vec<(Key, Value)> {
    inner
        .store
        .all()
        .filter(|(_, o)| owner_uids(o).iter().any(|u| u == owner_uid))
        .map(|(k, o)| (k.clone(), o.clone()))
        .collect()
}

fn uid_exists(inner: &Inner, u: &str) -> bool {
    inner.store.all().any(|(_, o)| uid(o) == Some(u))
}

fn put(inner: &mut Inner, key: Key, mut obj: Value) {
    let rv = inner.store.next_rv();
    obj["metadata"]["resourceVersion"] = json!(rv.to_string());
    inner.store.put(key, obj, rv);
}

/// Deletes an object the way a Background delete does: at once, or by marking it when
/// finalizers must run first.
fn start_delete(inner: &mut Inner, key: &Key, now: &str) {
    let Some(mut obj) = inner.store.get(key).cloned() else {
        return;
    };
    let finalizers = obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    let is_namespace = key.group.is_empty() && key.plural == "namespaces";
    if !(finalizers || is_namespace) {
        inner.store.remove(key);
        return;
    }
    if obj["metadata"]["deletionTimestamp"].is_null() {
        obj["metadata"]["deletionTimestamp"] = json!(now);
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if key.group.is_empty() && key.plural == "namespaces" {
            obj["status"]["phase"] = json!("Terminating");
        }
        put(inner, key.clone(), obj);
    }
}

fn remove_finalizer(inner: &mut Inner, key: &Key, f: &str) {
    let Some(mut obj) = inner.store.get(key).cloned() else {
        return;
    };
    if let Some(list) = obj["metadata"]["finalizers"].as_array_mut() {
        list.retain(|x| x != f);
        if list.is_empty()
            && let Some(m) = obj["metadata"].as_object_mut()
        {
            m.remove("finalizers");
        }
    }
    if obj["metadata"]["finalizers"].is_null() && !obj["metadata"]["deletionTimestamp"].is_null() {
        inner.store.remove(key);
    } else {
        put(inner, key.clone(), obj);
    }
}

fn reconcile(inner: &mut Inner, e: &Event, now: &str) {
    match e.kind {
        EventType::Deleted => {
            // A deleted CRD stops serving its type and takes its objects with it.
            if e.key.group == "apiextensions.k8s.io" && e.key.plural == "customresourcedefinitions"
            {
                let group = e.object["spec"]["group"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let plural = e.object["spec"]["names"]["plural"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                inner.registry.remove(&group, &plural);
                let objects: Vec<Key> = inner
                    .store
                    .list(&group, &plural, None, None)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in objects {
                    inner.store.remove(&k);
                }
            }
            if let Some(u) = uid(&e.object) {
                collect_garbage(inner, u, now);
            }
            // A deletion may unblock foreground owners and terminating namespaces.
            sweep(inner, now);
        }
        EventType::Added | EventType::Modified => {
            if !e.object["metadata"]["deletionTimestamp"].is_null() {
                deleting(inner, &e.key, now);
            }
        }
    }
}

/// Dependents of a deleted owner: deleted when no other owner remains, else the dangling
/// reference is removed.
fn collect_garbage(inner: &mut Inner, owner: &str, now: &str) {
    for (key, mut dep) in dependents(inner, owner) {
        let others: Vec<String> = owner_uids(&dep)
            .into_iter()
            .filter(|u| u != owner)
            .collect();
        if others.iter().any(|u| uid_exists(inner, u)) {
            if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != owner);
            }
            put(inner, key, dep);
        } else {
            start_delete(inner, &key, now);
        }
    }
}

/// An object with a deletionTimestamp: run the GC finalizers and namespace termination.
fn deleting(inner: &mut Inner, key: &Key, now: &str) {
    let Some(obj) = inner.store.get(key).cloned() else {
        return;
    };
    let Some(u) = uid(&obj).map(str::to_owned) else {
        return;
    };
    if has_finalizer(&obj, "orphan") {
        for (dkey, mut dep) in dependents(inner, &u) {
            if let Some(refs) = dep["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != u.as_str());
            }
            put(inner, dkey, dep);
        }
        remove_finalizer(inner, key, "orphan");
        return;
    }
    if has_finalizer(&obj, "foregroundDeletion") {
        let deps = dependents(inner, &u);
        if deps.is_empty() {
            remove_finalizer(inner, key, "foregroundDeletion");
        } else {
            for (dkey, _) in deps {
                start_delete(inner, &dkey, now);
            }
        }
        return;
    }
    if key.group.is_empty() && key.plural == "namespaces" {
        let ns = key.name.clone();
        let inside: Vec<Key> = inner
            .store
            .all()
            .filter(|(k, _)| k.namespace == ns)
            .map(|(k, _)| k.clone())
            .collect();
        if inside.is_empty() {
            inner.store.remove(key);
        } else {
            for k in inside {
                start_delete(inner, &k, now);
            }
        }
    }
}

/// Re-checks every object being deleted (foreground owners waiting for dependents,
/// namespaces waiting to be empty).
fn sweep(inner: &mut Inner, now: &str) {
    let pending: Vec<Key> = inner
        .store
        .all()
        .filter(|(k, o)| {
            !o["metadata"]["deletionTimestamp"].is_null()
                && (has_finalizer(o, "foregroundDeletion")
                    || has_finalizer(o, "orphan")
                    || (k.group.is_empty() && k.plural == "namespaces"))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for k in pending {
        deleting(inner, &k, now);
    }
}
