//! The API server's HTTP surface: authentication, discovery, routing and the verbs.

use std::collections::BTreeSet;
use std::sync::Mutex;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::resources::{Registry, ResourceType};
use super::select::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Key, Store};
use super::write::parse_body;
use super::{openapi, table, validate, watch};
use crate::clock::Clock;
use crate::faults::{Outcome, lock};
use crate::server::{FakeRequest, Reply, Service};

/// What the server reports at `/version`.
pub const GIT_VERSION: &str = "v1.33.1";

/// Mutable state behind one lock: objects and the types they belong to.
#[derive(Debug)]
pub struct Inner {
    /// Objects and history.
    pub store: Store,
    /// Served types.
    pub registry: Registry,
}

/// Shared state of the fake API server.
pub struct State {
    /// Objects, history and types.
    pub inner: Mutex<Inner>,
    /// Bearer tokens the server accepts.
    pub tokens: Mutex<BTreeSet<String>>,
    /// Clock for timestamps, watch timeouts and bookmarks.
    pub clock: Clock,
    /// Watch-level faults and signals.
    pub watches: watch::WatchControl,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State").finish_non_exhaustive()
    }
}

/// The parsed resource part of a request path.
#[derive(Clone, Debug)]
pub struct Target {
    /// The type.
    pub rt: ResourceType,
    /// Requested version.
    pub version: String,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// Subresource (`status`).
    pub sub: Option<String>,
}

impl Target {
    pub(super) fn key(&self, name: &str) -> Key {
        Key {
            group: self.rt.group.clone(),
            plural: self.rt.plural.clone(),
            namespace: self.namespace.clone().unwrap_or_default(),
            name: name.to_owned(),
        }
    }

    /// The `labelSelector` and `fieldSelector` of a list or watch.
    ///
    /// # Errors
    ///
    /// 400 with the API server's wording when either does not parse.
    pub(super) fn selectors(
        &self,
        req: &FakeRequest,
    ) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(req.query_param("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(
            req.query_param("fieldSelector").unwrap_or_default(),
            &self.rt.plural,
        )
        .map_err(|e| ApiError::bad_request(e.0))?;
        Ok((labels, fields))
    }
}

fn json_reply(status: StatusCode, body: &Value) -> Reply {
    Reply::json(status, body, Outcome::Authorized)
        .with_header(http::header::CACHE_CONTROL, "no-cache, private")
}

fn error_reply(e: &ApiError) -> Reply {
    json_reply(
        StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &e.body(),
    )
}

impl Service for State {
    fn handle(&self, req: &FakeRequest) -> Reply {
        let authorized = req.bearer().is_some_and(|t| lock(&self.tokens).contains(t));
        if !authorized {
            let mut r = error_reply(&ApiError::unauthorized());
            r.outcome = Outcome::TokenRejected;
            return r;
        }
        match self.route(req) {
            Ok(r) => r,
            Err(e) => error_reply(&e),
        }
    }

    fn fault_reply(&self, _req: &FakeRequest, status: u16, retry_after: Option<u64>) -> Reply {
        let (reason, message) = match status {
            429 => (
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
            500 => (
                "InternalError",
                "Internal error occurred: injected by testkit",
            ),
            503 => (
                "ServiceUnavailable",
                "The server is currently unable to handle the request",
            ),
            504 => (
                "Timeout",
                "The server was unable to return a response in the time allotted",
            ),
            409 => (
                "Conflict",
                "Operation cannot be fulfilled: injected by testkit",
            ),
            410 => (
                "Expired",
                "The resourceVersion for the provided list is too old.",
            ),
            _ => ("InternalError", "injected by testkit"),
        };
        let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": message, "reason": reason, "code": status});
        let r = json_reply(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &body,
        );
        match retry_after {
            Some(s) => r.with_header(http::header::RETRY_AFTER, &s.to_string()),
            None => r,
        }
    }
}

impl State {
    fn route(&self, req: &FakeRequest) -> Result<Reply, ApiError> {
        let path = req.path.trim_end_matches('/');
        let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        match segs.as_slice() {
            ["version"] => Ok(json_reply(
                StatusCode::OK,
                &json!({"major": "1", "minor": "33", "gitVersion": GIT_VERSION, "gitCommit": "testkit",
                        "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24.0",
                        "compiler": "gc", "platform": "linux/amd64"}),
            )),
            ["healthz" | "readyz" | "livez"] => {
                let mut r = json_reply(StatusCode::OK, &Value::Null);
                r.body = bytes::Bytes::from_static(b"ok");
                r.headers = vec![(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("text/plain; charset=utf-8"),
                )];
                Ok(r)
            }
            ["api"] => Ok(json_reply(
                StatusCode::OK,
                &json!({"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
            )),
            ["apis"] => Ok(json_reply(
                StatusCode::OK,
                &lock(&self.inner).registry.groups(),
            )),
            ["openapi", "v3"] => Ok(json_reply(
                StatusCode::OK,
                &openapi::index(&lock(&self.inner).registry),
            )),
            ["openapi", "v3", "api", version] => {
                openapi::document(&lock(&self.inner).registry, "", version)
                    .map(|d| json_reply(StatusCode::OK, &d))
                    .ok_or_else(ApiError::no_route)
            }
            ["openapi", "v3", "apis", group, version] => {
                openapi::document(&lock(&self.inner).registry, group, version)
                    .map(|d| json_reply(StatusCode::OK, &d))
                    .ok_or_else(ApiError::no_route)
            }
            ["api", "v1"] => self.resource_list("", "v1"),
            ["apis", group] => {
                let groups = lock(&self.inner).registry.groups();
                let g = groups["groups"]
                    .as_array()
                    .and_then(|gs| gs.iter().find(|g| g["name"] == *group))
                    .cloned();
                match g {
                    Some(mut g) => {
                        g["kind"] = json!("APIGroup");
                        g["apiVersion"] = json!("v1");
                        Ok(json_reply(StatusCode::OK, &g))
                    }
                    None => Err(ApiError::no_route()),
                }
            }
            ["apis", group, version] => self.resource_list(group, version),
            ["api", "v1", rest @ ..] => self.resource(req, "", "v1", rest),
            ["apis", group, version, rest @ ..] => self.resource(req, group, version, rest),
            _ => Err(ApiError::no_route()),
        }
    }

    fn resource_list(&self, group: &str, version: &str) -> Result<Reply, ApiError> {
        lock(&self.inner)
            .registry
            .resource_list(group, version)
            .map(|l| json_reply(StatusCode::OK, &l))
            .ok_or_else(ApiError::no_route)
    }

    fn target(&self, group: &str, version: &str, rest: &[&str]) -> Result<Target, ApiError> {
        let inner = lock(&self.inner);
        let served = |plural: &str| inner.registry.served(group, version, plural).cloned();
        let t =
            |rt: ResourceType, ns: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
                rt,
                version: version.to_owned(),
                namespace: ns.map(str::to_owned),
                name: name.map(str::to_owned),
                sub: sub.map(str::to_owned),
            };
        let target = match rest {
            ["namespaces", ns, plural, tail @ ..]
                if !matches!(*plural, "status" | "finalize") || !tail.is_empty() =>
            {
                let rt = served(plural)
                    .filter(|r| r.namespaced)
                    .ok_or_else(ApiError::no_route)?;
                match tail {
                    [] => t(rt, Some(ns), None, None),
                    [name] => t(rt, Some(ns), Some(name), None),
                    [name, sub] => t(rt, Some(ns), Some(name), Some(sub)),
                    _ => return Err(ApiError::no_route()),
                }
            }
            [plural, tail @ ..] => {
                let rt = served(plural).ok_or_else(ApiError::no_route)?;
                match tail {
                    [] => t(rt, None, None, None),
                    [name] if !rt.namespaced => t(rt, None, Some(name), None),
                    [name, sub] if !rt.namespaced => t(rt, None, Some(name), Some(sub)),
                    _ => return Err(ApiError::no_route()),
                }
            }
            [] => return Err(ApiError::no_route()),
        };
        if let Some(sub) = &target.sub {
            let ok = (sub == "status" && target.rt.status_subresource)
                || (sub == "finalize" && target.rt.plural == "namespaces");
            if !ok {
                return Err(ApiError::no_route());
            }
        }
        Ok(target)
    }

    fn resource(
        &self,
        req: &FakeRequest,
        group: &str,
        version: &str,
        rest: &[&str],
    ) -> Result<Reply, ApiError> {
        let target = self.target(group, version, rest)?;
        let table = req.header("accept").is_some_and(|a| a.contains("as=Table"));
        let query = |k: &str| req.query_param(k).filter(|v| !v.is_empty());
        match (&req.method, &target.name) {
            (&Method::GET, None) if matches!(query("watch"), Some("true" | "1")) => {
                watch::start(self, &target, req)
            }
            (&Method::GET, None) => {
                let list = self.list(&target, req)?;
                Ok(json_reply(
                    StatusCode::OK,
                    &if table {
                        table::table(&target, &list, true, self.clock.now())
                    } else {
                        list
                    },
                ))
            }
            (&Method::GET, Some(name)) => {
                let obj = self.get(&target, name)?;
                Ok(json_reply(
                    StatusCode::OK,
                    &if table {
                        table::table(&target, &obj, false, self.clock.now())
                    } else {
                        obj
                    },
                ))
            }
            (&Method::POST, None) => {
                let body = parse_body(req)?;
                let obj = self.create(&target, body, req)?;
                Ok(json_reply(StatusCode::CREATED, &obj))
            }
            (&Method::PUT, Some(name)) => {
                let body = parse_body(req)?;
                let (code, obj) = self.update(&target, name, body, req)?;
                Ok(json_reply(code, &obj))
            }
            (&Method::PATCH, Some(name)) => {
                let (code, obj) = self.patch(&target, name, req)?;
                Ok(json_reply(code, &obj))
            }
            (&Method::DELETE, Some(name)) => {
                let obj = self.delete(&target, name, req)?;
                Ok(json_reply(StatusCode::OK, &obj))
            }
            (&Method::DELETE, None) => {
                let list = self.list(&target, req)?;
                let mut gone = Vec::new();
                for item in list["items"].as_array().into_iter().flatten() {
                    let name = item["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    let mut t = target.clone();
                    t.namespace = item["metadata"]["namespace"]
                        .as_str()
                        .map(str::to_owned)
                        .or(t.namespace);
                    self.delete(&t, &name, req)?;
                    gone.push(item.clone());
                }
                let mut l = list;
                l["items"] = Value::Array(gone);
                Ok(json_reply(StatusCode::OK, &l))
            }
            (m, _) => Err(ApiError::method_not_allowed(m.as_str(), &target.rt)),
        }
    }

    /// The object as served at the requested version.
    pub fn present(target: &Target, obj: &Value) -> Value {
        let mut o = obj.clone();
        o["apiVersion"] = json!(target.rt.group_version(&target.version));
        o["kind"] = json!(target.rt.kind);
        if let Some(schema) = target
            .rt
            .version(&target.version)
            .and_then(|v| v.schema.as_ref())
        {
            validate::prune(&mut o, schema, true);
        }
        o
    }

    fn get(&self, target: &Target, name: &str) -> Result<Value, ApiError> {
        let inner = lock(&self.inner);
        let obj = inner
            .store
            .get(&target.key(name))
            .ok_or_else(|| ApiError::not_found(&target.rt, name))?;
        Ok(Self::present(target, obj))
    }

    fn list(&self, target: &Target, req: &FakeRequest) -> Result<Value, ApiError> {
        let (labels, fields) = target.selectors(req)?;
        let limit = req
            .query_param("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let inner = lock(&self.inner);
        let (rv, after) = match req.query_param("continue").filter(|c| !c.is_empty()) {
            Some(token) => {
                let (rv, after) = decode_continue(token)
                    .ok_or_else(|| ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
                if rv < inner.store.compacted() {
                    return Err(ApiError::gone(
                        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
                    ));
                }
                (rv, Some(after))
            }
            None => (inner.store.rv(), None),
        };
        let after_key = after.as_ref().map(|(ns, name)| Key {
            group: target.rt.group.clone(),
            plural: target.rt.plural.clone(),
            namespace: ns.clone(),
            name: name.clone(),
        });
        let mut items = Vec::new();
        let mut remaining = 0usize;
        for (k, obj) in inner.store.list(
            &target.rt.group,
            &target.rt.plural,
            target.namespace.as_deref(),
            after_key.as_ref(),
        ) {
            if !labels.matches_object(obj) || !fields.matches(obj) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                remaining += 1;
                continue;
            }
            items.push((k.clone(), Self::present(target, obj)));
        }
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if remaining > 0
            && let Some((k, _)) = items.last()
        {
            meta["continue"] = json!(encode_continue(rv, &k.namespace, &k.name));
            meta["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "kind": target.rt.list_kind,
            "apiVersion": target.rt.group_version(&target.version),
            "metadata": meta,
            "items": items.into_iter().map(|(_, o)| o).collect::<Vec<_>>(),
        }))
    }
}

fn encode_continue(rv: u64, ns: &str, name: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(
        json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{ns}/{name}")}).to_string(),
    )
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let (ns, name) = v["start"].as_str()?.split_once('/')?;
    Some((v["rv"].as_u64()?, (ns.to_owned(), name.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "ns", "a");
        assert_eq!(decode_continue(&t), Some((42, ("ns".into(), "a".into()))));
        assert_eq!(decode_continue("garbage"), None);
    }
}
