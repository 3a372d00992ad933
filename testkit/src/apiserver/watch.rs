//! Watch streams: replay from a resourceVersion, live events, label/field selector transitions,
//! bookmarks, `timeoutSeconds` on the testkit clock, `410 Gone` for compacted history, and the
//! faults tests use to break watches (close them all, expire the next ones).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch as signal};

use super::http::{State, Target};
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Event, EventType};
use crate::clock::Clock;
use crate::faults::{Outcome, lock};
use crate::server::{FakeRequest, Reply};

/// The real server's default watch timeout when the client sends none.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);
/// How often bookmarks are sent to watches that asked for them (testkit clock).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// Faults and signals that act on watches.
#[derive(Debug)]
pub struct WatchControl {
    expire_next: Mutex<u32>,
    close: signal::Sender<u64>,
    bookmark: signal::Sender<u64>,
    open: signal::Sender<usize>,
}

impl Default for WatchControl {
    fn default() -> Self {
        Self {
            expire_next: Mutex::new(0),
            close: signal::channel(0).0,
            bookmark: signal::channel(0).0,
            open: signal::channel(0).0,
        }
    }
}

impl WatchControl {
    /// The next `n` watch requests get `410 Gone` (an `ERROR` event with an `Expired` Status).
    pub fn expire_next(&self, n: u32) {
        *lock(&self.expire_next) += n;
    }

    /// Ends every open watch (as an API server restart or a load balancer would).
    pub fn close_all(&self) {
        self.close.send_modify(|g| *g += 1);
    }

    /// Sends a BOOKMARK now to every open watch that allows bookmarks.
    pub fn bookmark_now(&self) {
        self.bookmark.send_modify(|g| *g += 1);
    }

    /// Watches currently open.
    pub fn open(&self) -> usize {
        *self.open.borrow()
    }

    /// Waits until at least `n` watches are open.
    pub async fn wait_open(&self, n: usize) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|o| *o >= n).await;
    }

    fn take_expiry(&self) -> bool {
        let mut n = lock(&self.expire_next);
        if *n > 0 {
            *n -= 1;
            true
        } else {
            false
        }
    }
}

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn error_event(e: &ApiError) -> Bytes {
    line(&json!({"type": "ERROR", "object": e.body()}))
}

fn stream_reply(first: Bytes, rest: Option<mpsc::Receiver<Bytes>>) -> Reply {
    let mut r = Reply::json(StatusCode::OK, &Value::Null, Outcome::Authorized);
    r.body = first;
    r.stream = rest;
    r.with_header(http::header::CACHE_CONTROL, "no-cache, private")
}

struct Filter {
    target: Target,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches(obj)
    }

    /// The event this watcher sees for `e`, if any (selector transitions become ADDED/DELETED).
    fn view(&self, e: &Event) -> Option<Value> {
        let rt = &self.target.rt;
        if e.key.group != rt.group || e.key.plural != rt.plural {
            return None;
        }
        if self
            .target
            .namespace
            .as_deref()
            .is_some_and(|ns| ns != e.key.namespace)
        {
            return None;
        }
        let now = self.matches(&e.object);
        let before = e.old.as_ref().is_some_and(|o| self.matches(o));
        let kind = match e.kind {
            EventType::Modified if now && before => "MODIFIED",
            EventType::Modified if now => "ADDED",
            EventType::Modified if before => "DELETED",
            EventType::Modified => return None,
            k if now => k.as_str(),
            _ => return None,
        };
        Some(json!({"type": kind, "object": State::present(&self.target, &e.object)}))
    }
}

/// Starts a watch for `target`.
///
/// # Errors
///
/// Malformed selectors or resourceVersion (400).
pub fn start(state: &State, target: &Target, req: &FakeRequest) -> Result<Reply, ApiError> {
    let (labels, fields) = target.selectors(req)?;
    let bookmarks = req.query_param("allowWatchBookmarks") == Some("true");
    let timeout = req
        .query_param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let from = match req
        .query_param("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
    {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}")))?,
        ),
    };
    if state.watches.take_expiry() {
        let e = ApiError::gone(format!(
            "too old resource version: {} (injected by testkit)",
            from.unwrap_or(0)
        ));
        return Ok(stream_reply(error_event(&e), None));
    }
    let filter = Filter {
        target: target.clone(),
        labels,
        fields,
    };
    let (replay, events, start_rv) = {
        let inner = lock(&state.inner);
        let replay: Vec<Value> = match from {
            Some(rv) => match inner.store.since(rv) {
                Some(events) => events.iter().filter_map(|e| filter.view(e)).collect(),
                None => {
                    let e = ApiError::gone(format!(
                        "too old resource version: {rv} ({})",
                        inner.store.compacted()
                    ));
                    return Ok(stream_reply(error_event(&e), None));
                }
            },
            // No resourceVersion: the current state as ADDED events, then changes.
            None => inner
                .store
                .list(
                    &target.rt.group,
                    &target.rt.plural,
                    target.namespace.as_deref(),
                    None,
                )
                .filter(|(_, o)| filter.matches(o))
                .map(|(_, o)| json!({"type": "ADDED", "object": State::present(target, o)}))
                .collect(),
        };
        (replay, inner.store.subscribe(), inner.store.rv())
    };
    let (tx, rx) = mpsc::channel(4096);
    let ctl = Control {
        close: state.watches.close.subscribe(),
        bookmark: state.watches.bookmark.subscribe(),
        open: state.watches.open.clone(),
    };
    tokio::spawn(run(
        filter,
        replay,
        events,
        start_rv,
        bookmarks,
        timeout,
        state.clock.clone(),
        ctl,
        tx,
    ));
    Ok(stream_reply(Bytes::new(), Some(rx)))
}

struct Control {
    close: signal::Receiver<u64>,
    bookmark: signal::Receiver<u64>,
    open: signal::Sender<usize>,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    filter: Filter,
    replay: Vec<Value>,
    mut events: broadcast::Receiver<Arc<Event>>,
    start_rv: u64,
    bookmarks: bool,
    timeout: Duration,
    clock: Clock,
    mut ctl: Control,
    tx: mpsc::Sender<Bytes>,
) {
    ctl.open.send_modify(|n| *n += 1);
    let _ = ctl.close.borrow_and_update();
    let _ = ctl.bookmark.borrow_and_update();
    let mut last_rv = start_rv;
    let bookmark_of = |rv: u64| {
        line(&json!({"type": "BOOKMARK", "object": {
            "kind": filter.target.rt.kind,
            "apiVersion": filter.target.rt.group_version(&filter.target.version),
            "metadata": {"resourceVersion": rv.to_string()},
        }}))
    };
    'outer: {
        for ev in replay {
            if tx.send(line(&ev)).await.is_err() {
                break 'outer;
            }
        }
        let deadline = clock.sleep(timeout);
        tokio::pin!(deadline);
        loop {
            let tick = clock.sleep(BOOKMARK_EVERY);
            tokio::select! {
                received = events.recv() => match received {
                    Ok(e) => {
                        last_rv = last_rv.max(e.rv);
                        if let Some(v) = filter.view(&e)
                            && tx.send(line(&v)).await.is_err()
                        {
                            break;
                        }
                    }
                    // Too slow a reader: end the watch; the client re-lists, as with a real server.
                    Err(_) => break,
                },
                _ = &mut deadline => break,
                _ = tick, if bookmarks => {
                    if tx.send(bookmark_of(last_rv)).await.is_err() { break; }
                }
                changed = ctl.bookmark.changed() => {
                    if changed.is_err() { break; }
                    if bookmarks && tx.send(bookmark_of(last_rv)).await.is_err() { break; }
                }
                _ = ctl.close.changed() => break,
                _ = tx.closed() => break,
            }
        }
    }
    ctl.open.send_modify(|n| *n = n.saturating_sub(1));
}
