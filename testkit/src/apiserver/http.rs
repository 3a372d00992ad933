//! The API server's HTTP surface: authentication, discovery, routing and the verbs.

use std::collections::BTreeSet;
use std::sync::Mutex;

use http::{Method, StatusCode};
use serde_json::{Value, json};

use super::resources::{Registry, ResourceType};
use super::select::{FieldSelector, LabelSelector};
use super::status::{self, ApiError, Cause};
use super::store::{Key, Store};
use super::{fields, openapi, table, validate, watch};
use crate::clock::{Clock, rfc3339};
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
    fn key(&self, name: &str) -> Key {
        Key {
            group: self.rt.group.clone(),
            plural: self.rt.plural.clone(),
            namespace: self.namespace.clone().unwrap_or_default(),
            name: name.to_owned(),
        }
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
        let labels = LabelSelector::parse(req.query_param("labelSelector").unwrap_or_default())
            .map_err(|e| ApiError::bad_request(format!("unable to parse requirement: {e}")))?;
        let fields = FieldSelector::parse(
            req.query_param("fieldSelector").unwrap_or_default(),
            &target.rt.plural,
        )
        .map_err(|e| ApiError::bad_request(e.0))?;
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

    fn create(&self, target: &Target, body: Value, req: &FakeRequest) -> Result<Value, ApiError> {
        self.create_as(target, body, req, WriteKind::Create)
    }

    /// Creates an object; `kind` is `Apply` when server-side apply creates it (its
    /// managedFields are already set).
    fn create_as(
        &self,
        target: &Target,
        mut body: Value,
        req: &FakeRequest,
        kind: WriteKind,
    ) -> Result<Value, ApiError> {
        check_type(target, &body)?;
        let ns = match (&target.namespace, body["metadata"]["namespace"].as_str()) {
            (Some(p), Some(b)) if p != b => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            (Some(p), _) => Some(p.clone()),
            (None, _) if target.rt.namespaced => return Err(ApiError::no_route()),
            (None, _) => None,
        };
        let mut inner = lock(&self.inner);
        let name = match body["metadata"]["name"].as_str().filter(|n| !n.is_empty()) {
            Some(n) => n.to_owned(),
            None => match body["metadata"]["generateName"].as_str() {
                Some(prefix) => format!("{prefix}{}", random_suffix()),
                None => {
                    return Err(ApiError::invalid(
                        &target.rt,
                        "",
                        vec![Cause::required("metadata.name")],
                    ));
                }
            },
        };
        body["metadata"]["name"] = json!(name);
        if let Some(ns) = &ns {
            body["metadata"]["namespace"] = json!(ns);
            let ns_key = Key {
                group: String::new(),
                plural: "namespaces".into(),
                namespace: String::new(),
                name: ns.clone(),
            };
            match inner.store.get(&ns_key) {
                None => {
                    let ns_rt = inner
                        .registry
                        .get("", "namespaces")
                        .cloned()
                        .ok_or_else(|| ApiError::internal("no namespaces type"))?;
                    return Err(ApiError::not_found(&ns_rt, ns));
                }
                Some(n) if !n["metadata"]["deletionTimestamp"].is_null() => {
                    return Err(ApiError::forbidden(format!(
                        "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        target.rt.qualified()
                    )));
                }
                Some(_) => {}
            }
        }
        let key = target.key(&name);
        if inner.store.get(&key).is_some() {
            return Err(ApiError::already_exists(&target.rt, &name));
        }
        let manager = field_manager(req, "create");
        let stored = self.write(&mut inner, target, key, body, None, kind, &manager, req)?;
        Ok(Self::present(target, &stored))
    }

    fn update(
        &self,
        target: &Target,
        name: &str,
        body: Value,
        req: &FakeRequest,
    ) -> Result<(StatusCode, Value), ApiError> {
        check_type(target, &body)?;
        if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
            return Err(ApiError::bad_request(
                "the name of the object does not match the name on the URL",
            ));
        }
        let mut inner = lock(&self.inner);
        let key = target.key(name);
        let Some(old) = inner.store.get(&key).cloned() else {
            return Err(ApiError::not_found(&target.rt, name));
        };
        if let Some(rv) = body["metadata"]["resourceVersion"]
            .as_str()
            .filter(|rv| !rv.is_empty())
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(&target.rt, name));
        }
        let manager = field_manager(req, "update");
        let kind = if target.sub.is_some() {
            WriteKind::Status
        } else {
            WriteKind::Update
        };
        let stored = self.write(
            &mut inner,
            target,
            key,
            body,
            Some(&old),
            kind,
            &manager,
            req,
        )?;
        Ok((StatusCode::OK, Self::present(target, &stored)))
    }

    fn patch(
        &self,
        target: &Target,
        name: &str,
        req: &FakeRequest,
    ) -> Result<(StatusCode, Value), ApiError> {
        let content_type = req
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let is_apply = content_type == "application/apply-patch+yaml";
        let patch: Value = if is_apply {
            serde_saphyr::from_str::<Value>(
                std::str::from_utf8(&req.body)
                    .map_err(|_| ApiError::bad_request("body is not UTF-8"))?,
            )
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
        } else {
            serde_json::from_slice(&req.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        let mut inner = lock(&self.inner);
        let key = target.key(name);
        let old = inner.store.get(&key).cloned();
        let now = rfc3339(self.clock.now());
        if is_apply {
            let Some(manager) = req.query_param("fieldManager").filter(|m| !m.is_empty()) else {
                return Err(ApiError::bad_request(
                    "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                ));
            };
            check_type(target, &patch)?;
            let force = req.query_param("force") == Some("true");
            let applied = fields::apply(old.as_ref(), &patch, manager, force, &now)?;
            let created = old.is_none();
            if created {
                drop(inner);
                let obj = self.create_as(target, applied, req, WriteKind::Apply)?;
                return Ok((StatusCode::CREATED, obj));
            }
            let kind = if target.sub.is_some() {
                WriteKind::Status
            } else {
                WriteKind::Apply
            };
            let stored = self.write(
                &mut inner,
                target,
                key,
                applied,
                old.as_ref(),
                kind,
                manager,
                req,
            )?;
            return Ok((StatusCode::OK, Self::present(target, &stored)));
        }
        let Some(old) = old else {
            return Err(ApiError::not_found(&target.rt, name));
        };
        let mut new = Self::present(target, &old);
        match content_type.as_str() {
            "application/merge-patch+json" | "application/json" => {
                fields::merge_patch(&mut new, &patch)
            }
            "application/json-patch+json" => fields::json_patch(&mut new, &patch)?,
            "application/strategic-merge-patch+json" => {
                if target.rt.custom {
                    return Err(ApiError::unsupported_media_type(&content_type));
                }
                fields::strategic_merge_patch(
                    &mut new,
                    &patch,
                    &target.rt.group_version(&target.version),
                    &target.rt.kind,
                )?
            }
            other => return Err(ApiError::unsupported_media_type(other)),
        }
        if let Some(rv) = patch["metadata"]["resourceVersion"].as_str()
            && Some(rv) != old["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(&target.rt, name));
        }
        let manager = field_manager(req, "patch");
        let kind = if target.sub.is_some() {
            WriteKind::Status
        } else {
            WriteKind::Update
        };
        // The stored resourceVersion, not the patched one, is the precondition.
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"].clone();
        let stored = self.write(
            &mut inner,
            target,
            key,
            new,
            Some(&old),
            kind,
            &manager,
            req,
        )?;
        Ok((StatusCode::OK, Self::present(target, &stored)))
    }

    /// Validates, completes and stores an object; returns what was stored.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        inner: &mut Inner,
        target: &Target,
        key: Key,
        mut new: Value,
        old: Option<&Value>,
        kind: WriteKind,
        manager: &str,
        req: &FakeRequest,
    ) -> Result<Value, ApiError> {
        let rt = &target.rt;
        let now = rfc3339(self.clock.now());
        if !new["metadata"].is_object() {
            new["metadata"] = json!({});
        }
        new["apiVersion"] = json!(rt.group_version(&rt.storage_version));
        new["kind"] = json!(rt.kind);
        // Status subresource: the main resource ignores status, /status ignores the rest.
        if let Some(old) = old
            && rt.status_subresource
        {
            match kind {
                WriteKind::Status => {
                    let status = new["status"].clone();
                    new = old.clone();
                    new["status"] = status;
                }
                _ => new["status"] = old["status"].clone(),
            }
            if new["status"].is_null()
                && let Some(m) = new.as_object_mut()
            {
                m.remove("status");
            }
        }
        // Server-owned metadata.
        let meta_old = old.map(|o| o["metadata"].clone()).unwrap_or(Value::Null);
        match old {
            Some(_) => {
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match meta_old.get(f) {
                        Some(v) => new["metadata"][f] = v.clone(),
                        None => {
                            if let Some(m) = new["metadata"].as_object_mut() {
                                m.remove(f);
                            }
                        }
                    }
                }
            }
            None => {
                new["metadata"]["uid"] = json!(random_uid());
                new["metadata"]["creationTimestamp"] = json!(now);
                if rt.tracks_generation {
                    new["metadata"]["generation"] = json!(1);
                }
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("deletionTimestamp");
                    m.remove("resourceVersion");
                }
            }
        }
        let name = key.name.clone();
        // Validation.
        let mut causes = Vec::new();
        if old.is_none()
            && let Some(c) = validate::name(&rt.plural, &name)
        {
            causes.push(c);
        }
        match (rt.group.as_str(), rt.plural.as_str()) {
            ("", "secrets") => causes.extend(validate::secret(&mut new, old)?),
            ("", "configmaps") => causes.extend(validate::configmap(&new)),
            ("", "namespaces") if new["status"]["phase"].is_null() => {
                new["status"] = json!({"phase": "Active"});
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                if let Err(e) = super::resources::from_crd(&new) {
                    causes.push(Cause::invalid(e.field.clone(), &Value::Null, &e.reason));
                }
            }
            _ => {}
        }
        if let Some(schema) = rt.version(&target.version).and_then(|v| v.schema.as_ref()) {
            validate::schema(&new, schema, "", &mut causes);
            let before = new.clone();
            validate::prune(&mut new, schema, true);
            if req.query_param("fieldValidation") == Some("Strict") && before != new {
                return Err(ApiError::bad_request(format!(
                    "{} in version {:?} cannot be handled as a {}: strict decoding error: unknown field",
                    rt.kind, target.version, rt.kind
                )));
            }
        }
        if let Some(old_fin) = meta_old["finalizers"].as_array()
            && !meta_old["deletionTimestamp"].is_null()
        {
            let added: Vec<&Value> = new["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| !old_fin.contains(f))
                .collect();
            if !added.is_empty() {
                causes.push(Cause::forbidden(
                    "metadata.finalizers",
                    "no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(rt, &name, causes));
        }
        // Generation bumps on changes outside metadata and status.
        if rt.tracks_generation
            && let Some(old) = old
        {
            let strip = |v: &Value| {
                let mut v = v.clone();
                if let Some(m) = v.as_object_mut() {
                    m.remove("metadata");
                    m.remove("status");
                    m.remove("apiVersion");
                    m.remove("kind");
                }
                v
            };
            if strip(old) != strip(&new) {
                let g = meta_old["generation"].as_i64().unwrap_or(1) + 1;
                new["metadata"]["generation"] = json!(g);
            }
        }
        if kind != WriteKind::Apply {
            fields::record_update(old, &mut new, manager, &now, kind == WriteKind::Status);
        }
        if old.is_some_and(|o| strip_rv(o) == strip_rv(&new)) {
            // No-op writes change nothing, not even the resourceVersion.
            return Ok(old.cloned().unwrap_or(new));
        }
        if req.query_param("dryRun").is_some() {
            return Ok(new);
        }
        // An object being deleted goes once its last finalizer is removed.
        if !new["metadata"]["deletionTimestamp"].is_null()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(Vec::is_empty)
            && rt.plural != "namespaces"
        {
            inner.store.remove(&key);
            return Ok(new);
        }
        let rv = inner.store.next_rv();
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        if rt.plural == "customresourcedefinitions" && rt.group == "apiextensions.k8s.io" {
            register_crd(inner, &mut new);
        }
        inner.store.put(key, new.clone(), rv);
        Ok(new)
    }

    /// Deletes (or starts deleting) an object; see the module docs for finalizers and GC.
    pub fn delete(
        &self,
        target: &Target,
        name: &str,
        req: &FakeRequest,
    ) -> Result<Value, ApiError> {
        let body: Value = if req.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&req.body).unwrap_or(Value::Null)
        };
        let policy = req
            .query_param("propagationPolicy")
            .map(str::to_owned)
            .or_else(|| body["propagationPolicy"].as_str().map(str::to_owned))
            .or_else(|| match body["orphanDependents"].as_bool() {
                Some(true) => Some("Orphan".into()),
                _ => None,
            })
            .unwrap_or_else(|| "Background".into());
        let mut inner = lock(&self.inner);
        let key = target.key(name);
        let Some(mut obj) = inner.store.get(&key).cloned() else {
            return Err(ApiError::not_found(&target.rt, name));
        };
        if let Some(uid) = body["preconditions"]["uid"].as_str()
            && Some(uid) != obj["metadata"]["uid"].as_str()
        {
            return Err(ApiError::conflict(&target.rt, name));
        }
        if let Some(rv) = body["preconditions"]["resourceVersion"].as_str()
            && Some(rv) != obj["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::conflict(&target.rt, name));
        }
        if req.query_param("dryRun").is_some() {
            return Ok(Self::present(target, &obj));
        }
        let mut finalizers: Vec<Value> = obj["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        match policy.as_str() {
            "Foreground" => push_unique(&mut finalizers, "foregroundDeletion"),
            "Orphan" => push_unique(&mut finalizers, "orphan"),
            "Background" => {}
            other => {
                return Err(ApiError::invalid(
                    &target.rt,
                    name,
                    vec![Cause::unsupported(
                        "propagationPolicy",
                        &json!(other),
                        &[json!("Background"), json!("Foreground"), json!("Orphan")],
                    )],
                ));
            }
        }
        let is_namespace = target.rt.group.is_empty() && target.rt.plural == "namespaces";
        if finalizers.is_empty() && !is_namespace {
            let uid = obj["metadata"]["uid"].clone();
            inner.store.remove(&key);
            return Ok(status::deleted(&target.rt, name, &uid));
        }
        if obj["metadata"]["deletionTimestamp"].is_null() {
            obj["metadata"]["deletionTimestamp"] = json!(rfc3339(self.clock.now()));
            obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
            if target.rt.tracks_generation {
                obj["metadata"]["generation"] =
                    json!(obj["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
            }
        }
        if is_namespace {
            obj["status"]["phase"] = json!("Terminating");
        }
        if !finalizers.is_empty() {
            obj["metadata"]["finalizers"] = Value::Array(finalizers);
        }
        let rv = inner.store.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv.to_string());
        inner.store.put(key, obj.clone(), rv);
        Ok(Self::present(target, &obj))
    }
}

fn push_unique(list: &mut Vec<Value>, f: &str) {
    if !list.iter().any(|v| v == f) {
        list.push(json!(f));
    }
}

fn strip_rv(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("resourceVersion");
        m.remove("managedFields");
    }
    v
}

/// Registers (or updates) the type a CRD defines and marks it Established.
fn register_crd(inner: &mut Inner, crd: &mut Value) {
    if let Ok(rt) = super::resources::from_crd(crd) {
        inner.registry.insert(rt);
        let accepted = json!({"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found"});
        let established = json!({"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"});
        crd["status"]["conditions"] = json!([accepted, established]);
        crd["status"]["acceptedNames"] = crd["spec"]["names"].clone();
        crd["status"]["storedVersions"] = json!([super::resources::from_crd(crd)
            .map(|r| r.storage_version)
            .unwrap_or_default()]);
    }
}

/// Which write path an object takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteKind {
    Create,
    Update,
    Apply,
    Status,
}

fn check_type(target: &Target, body: &Value) -> Result<(), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    if let Some(kind) = body["kind"].as_str()
        && kind != target.rt.kind
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({}) does not match the expected API version ({})",
            body["apiVersion"].as_str().unwrap_or_default(),
            target.rt.group_version(&target.version)
        )));
    }
    if let Some(av) = body["apiVersion"].as_str()
        && av != target.rt.group_version(&target.version)
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            target.rt.group_version(&target.version)
        )));
    }
    Ok(())
}

fn parse_body(req: &FakeRequest) -> Result<Value, ApiError> {
    let ct = req.header("content-type").unwrap_or("application/json");
    if ct.contains("yaml") {
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| ApiError::bad_request("body is not UTF-8"))?;
        return serde_saphyr::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")));
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

/// The field manager of a write: `?fieldManager=`, else derived from the user agent as the
/// real server does (`kubectl` → `kubectl-<verb>`, else the agent's program name).
fn field_manager(req: &FakeRequest, verb: &str) -> String {
    if let Some(m) = req.query_param("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_owned();
    }
    let agent = req.header("user-agent").unwrap_or("unknown");
    let program = agent.split('/').next().unwrap_or(agent);
    if program.starts_with("kubectl") {
        format!("kubectl-{verb}")
    } else {
        program.to_owned()
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom as _;
    let mut b = [0u8; N];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b
}

/// A v4-style UID.
pub fn random_uid() -> String {
    let b = random_bytes::<16>();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Five characters from the alphabet `generateName` uses.
fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    random_bytes::<5>()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect()
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

    #[test]
    fn generated_names_and_uids_have_the_real_shapes() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
        let u = random_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
