//! The write path: create, update, patch and delete, and the validation, server-owned
//! metadata and CRD registration every write goes through.

use http::StatusCode;
use serde_json::{Value, json};

use super::http::{Inner, State, Target};
use super::status::{self, ApiError, Cause};
use super::store::Key;
use super::{fields, validate};
use crate::clock::rfc3339;
use crate::faults::lock;
use crate::ids::{random_guid, random_suffix};
use crate::server::FakeRequest;

impl State {
    pub(super) fn create(
        &self,
        target: &Target,
        body: Value,
        req: &FakeRequest,
    ) -> Result<Value, ApiError> {
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

    pub(super) fn update(
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
        let kind = WriteKind::on(target, WriteKind::Update);
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

    pub(super) fn patch(
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
            let kind = WriteKind::on(target, WriteKind::Apply);
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
        let kind = WriteKind::on(target, WriteKind::Update);
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
                new["metadata"]["uid"] = json!(random_guid());
                new["metadata"]["creationTimestamp"] = json!(now);
                if rt.tracks_generation {
                    new["metadata"]["generation"] = json!(1);
                }
                if let Some(m) = new["metadata"].as_object_mut() {
                    m.remove("deletionTimestamp");
                    m.remove("resourceVersion");
                }
                // Custom resources with a status subresource start without status: the real
                // server drops status sent on create.
                if rt.custom
                    && rt.status_subresource
                    && let Some(m) = new.as_object_mut()
                {
                    m.remove("status");
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
        // Stored at the storage version: fields that version does not know are pruned too
        // (conversion `None`), as the real server does when it encodes for storage.
        if target.version != rt.storage_version
            && let Some(schema) = rt
                .version(&rt.storage_version)
                .and_then(|v| v.schema.as_ref())
        {
            validate::prune(&mut new, schema, true);
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

impl WriteKind {
    /// `kind` on the main resource, [`WriteKind::Status`] on the `status` subresource.
    fn on(target: &Target, kind: WriteKind) -> WriteKind {
        if target.sub.is_some() {
            WriteKind::Status
        } else {
            kind
        }
    }
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

pub(super) fn parse_body(req: &FakeRequest) -> Result<Value, ApiError> {
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
