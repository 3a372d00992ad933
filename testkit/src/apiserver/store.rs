//! Object storage with one global resourceVersion counter and a bounded event history for
//! watches (older versions answer `410 Gone`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

/// Where an object lives: group, plural, namespace (`""` for cluster-scoped), name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// API group.
    pub group: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace or `""`.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// A watch event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// A change to one object.
#[derive(Clone, Debug)]
pub struct Event {
    /// The resourceVersion the change created.
    pub rv: u64,
    /// Type.
    pub kind: EventType,
    /// Where.
    pub key: Key,
    /// The object after the change (for `Deleted`: its last state).
    pub object: Value,
    /// The object before the change (`Modified` only), for selector transitions.
    pub old: Option<Value>,
}

/// Default number of events kept for watches.
pub const DEFAULT_HISTORY: usize = 10_000;

/// The objects and their history.
pub struct Store {
    rv: u64,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Arc<Event>>,
    /// Events with `rv <= compacted` are gone: watches from there get 410.
    compacted: u64,
    history_limit: usize,
    events: broadcast::Sender<Arc<Event>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("rv", &self.rv)
            .field("objects", &self.objects.len())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// An empty store keeping `history_limit` events.
    pub fn new(history_limit: usize) -> Self {
        Self {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            compacted: 1,
            history_limit: history_limit.max(1),
            events: broadcast::channel(65_536).0,
        }
    }

    /// The current resourceVersion.
    pub fn rv(&self) -> u64 {
        self.rv
    }

    /// The oldest resourceVersion a watch may start from.
    pub fn compacted(&self) -> u64 {
        self.compacted
    }

    /// Allocates the next resourceVersion.
    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// An object.
    pub fn get(&self, key: &Key) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of `group`/`plural` in `namespace` (`None`: all namespaces), in key order,
    /// starting after `after` (exclusive).
    pub fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
        after: Option<&'a Key>,
    ) -> impl Iterator<Item = (&'a Key, &'a Value)> + 'a {
        self.objects
            .iter()
            .filter(move |(k, _)| k.group == group && k.plural == plural)
            .filter(move |(k, _)| namespace.is_none_or(|ns| k.namespace == ns))
            .filter(move |(k, _)| after.is_none_or(|a| *k > a))
    }

    /// Every object (for the background controllers).
    pub fn all(&self) -> impl Iterator<Item = (&Key, &Value)> {
        self.objects.iter()
    }

    /// Stores `object` (whose `metadata.resourceVersion` the caller set to `rv`) and records
    /// the event.
    pub fn put(&mut self, key: Key, object: Value, rv: u64) -> Arc<Event> {
        let old = self.objects.insert(key.clone(), object.clone());
        let kind = if old.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.record(Event {
            rv,
            kind,
            key,
            object,
            old,
        })
    }

    /// Removes an object and records the event (the object's last state, with a fresh
    /// resourceVersion, is what watchers see).
    pub fn remove(&mut self, key: &Key) -> Option<Arc<Event>> {
        let mut last = self.objects.remove(key)?;
        let rv = self.next_rv();
        last["metadata"]["resourceVersion"] = Value::String(rv.to_string());
        Some(self.record(Event {
            rv,
            kind: EventType::Deleted,
            key: key.clone(),
            object: last,
            old: None,
        }))
    }

    fn record(&mut self, event: Event) -> Arc<Event> {
        let event = Arc::new(event);
        self.history.push_back(event.clone());
        while self.history.len() > self.history_limit {
            if let Some(e) = self.history.pop_front() {
                self.compacted = e.rv;
            }
        }
        // Nobody listening is fine.
        let _ = self.events.send(event.clone());
        event
    }

    /// Forgets all history up to now: every watch from an older resourceVersion gets 410.
    pub fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    /// Events after `rv` (exclusive), or `None` when `rv` is older than the history.
    pub fn since(&self, rv: u64) -> Option<Vec<Arc<Event>>> {
        if rv < self.compacted {
            return None;
        }
        Some(self.history.iter().filter(|e| e.rv > rv).cloned().collect())
    }

    /// A receiver of every future event. Subscribe while holding the store lock, right
    /// after reading [`Store::since`], so no event falls between the two.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Key {
        Key {
            group: String::new(),
            plural: "secrets".into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    #[test]
    fn history_is_bounded_and_older_versions_are_gone() {
        let mut s = Store::new(2);
        for n in ["a", "b", "c"] {
            let rv = s.next_rv();
            s.put(key(n), json!({"metadata": {"name": n}}), rv);
        }
        assert_eq!(s.rv(), 4);
        assert!(s.since(1).is_none(), "rv 2 was dropped, so 1 is too old");
        assert_eq!(s.since(2).expect("kept").len(), 2);
        let ev = s.remove(&key("a")).expect("removed");
        assert_eq!(ev.kind, EventType::Deleted);
        assert_eq!(ev.object["metadata"]["resourceVersion"], "5");
        s.compact();
        assert!(s.since(4).is_none());
        assert_eq!(s.since(5).expect("now").len(), 0);
        assert_eq!(s.list("", "secrets", Some("default"), None).count(), 2);
        assert_eq!(s.list("", "secrets", None, Some(&key("b"))).count(), 1);
    }
}
