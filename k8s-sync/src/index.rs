//! [`OutputIndex`]: the controller's memory of the Secrets or ConfigMaps it manages, fed by a
//! label-selected watch, holding each object as a compact [`Existing`] (digests, not values).
//!
//! It plays the part of a kube-runtime reflector store, at a fraction of the memory: a full
//! `Secret` with its managedFields costs several KiB, its `Existing` a few hundred bytes.
//! Watch semantics are the reflector's: the objects of a (re)list replace the whole index when
//! the list is complete, so objects deleted while the watch was down disappear too.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::ResourceExt as _;
use kube::runtime::watcher;
use tokio::sync::watch;

use crate::render::Existing;

/// An object the index can hold.
pub trait Indexed: kube::Resource {
    /// Its compact form.
    fn existing(&self) -> Existing;
}

impl Indexed for Secret {
    fn existing(&self) -> Existing {
        Existing::from_secret(self)
    }
}

impl Indexed for ConfigMap {
    fn existing(&self) -> Existing {
        Existing::from_config_map(self)
    }
}

type Key = (String, String);

#[derive(Debug, Default)]
struct State {
    live: HashMap<Key, Arc<Existing>>,
    /// Objects of a list in progress.
    relist: Option<HashMap<Key, Arc<Existing>>>,
}

/// Managed objects of one kind by namespace and name.
#[derive(Debug)]
pub struct OutputIndex {
    state: RwLock<State>,
    ready: watch::Sender<bool>,
}

impl Default for OutputIndex {
    fn default() -> Self {
        Self {
            state: RwLock::default(),
            ready: watch::channel(false).0,
        }
    }
}

fn key<K: kube::Resource>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

impl OutputIndex {
    /// An empty index, not ready until its first list completes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one watch event (call it on every event of the watch stream, in order).
    pub fn apply<K: Indexed>(&self, event: &watcher::Event<K>) {
        let mut s = self.state.write().unwrap_or_else(PoisonError::into_inner);
        match event {
            watcher::Event::Apply(obj) => {
                s.live.insert(key(obj), Arc::new(obj.existing()));
            }
            watcher::Event::Delete(obj) => {
                s.live.remove(&key(obj));
            }
            watcher::Event::Init => s.relist = Some(HashMap::new()),
            watcher::Event::InitApply(obj) => {
                s.relist
                    .get_or_insert_with(HashMap::new)
                    .insert(key(obj), Arc::new(obj.existing()));
            }
            watcher::Event::InitDone => {
                let mut fresh = s.relist.take().unwrap_or_default();
                fresh.shrink_to_fit();
                s.live = fresh;
                drop(s);
                self.ready.send_replace(true);
            }
        }
    }

    /// The object `namespace/name`, if the index holds it.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<Existing>> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .live
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Names of the objects in `namespace` with an ownerReference to `uid`, sorted.
    pub fn owned_by(&self, namespace: &str, uid: &str) -> Vec<String> {
        let s = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = s
            .live
            .iter()
            .filter(|((ns, _), e)| ns == namespace && e.owned_by(uid))
            .map(|((_, name), _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// Objects held.
    pub fn len(&self) -> usize {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .live
            .len()
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until the first list has completed.
    pub async fn wait_until_ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn secret(name: &str, owner: &str, value: &str) -> Secret {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns",
                "ownerReferences": [{"apiVersion": "spv.no/v2beta1", "kind": "AzureKeyVaultSecret",
                    "name": owner, "uid": owner}]},
            "data": {"k": k8s_openapi::ByteString(value.as_bytes().to_vec())},
        }))
        .expect("secret")
    }

    #[tokio::test]
    async fn follows_the_watch_like_a_reflector_store() {
        let index = OutputIndex::new();
        index.apply::<Secret>(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(secret("a", "u1", "1")));
        assert!(
            index.get("ns", "a").is_none(),
            "not before the list is complete"
        );
        index.apply(&watcher::Event::InitApply(secret("b", "u2", "2")));
        index.apply::<Secret>(&watcher::Event::InitDone);
        index.wait_until_ready().await;
        assert_eq!(index.len(), 2);
        assert!(index.get("ns", "a").is_some_and(|e| e.holds("k", b"1")));

        index.apply(&watcher::Event::Apply(secret("a", "u1", "changed")));
        assert!(
            index
                .get("ns", "a")
                .is_some_and(|e| e.holds("k", b"changed"))
        );
        index.apply(&watcher::Event::Apply(secret("c", "u1", "3")));
        assert_eq!(index.owned_by("ns", "u1"), ["a", "c"]);
        assert!(index.owned_by("other", "u1").is_empty());

        index.apply(&watcher::Event::Delete(secret("c", "u1", "3")));
        assert_eq!(index.owned_by("ns", "u1"), ["a"]);

        // A relist replaces everything: b went away while the watch was down.
        index.apply::<Secret>(&watcher::Event::Init);
        index.apply(&watcher::Event::InitApply(secret("a", "u1", "changed")));
        index.apply::<Secret>(&watcher::Event::InitDone);
        assert_eq!(index.len(), 1);
        assert!(index.get("ns", "b").is_none());
    }
}
