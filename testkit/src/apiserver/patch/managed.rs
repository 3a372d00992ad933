//! `metadata.managedFields`: server-side apply and the bookkeeping of ordinary writes, after
//! `sigs.k8s.io/structured-merge-diff` and `k8s.io/apimachinery/pkg/util/managedfields`.
//!
//! A manager is identified by its name, its operation, its subresource and, for `Update`
//! entries only, the apiVersion it wrote with. Apply:
//!
//! 1. merges the configuration into the live object;
//! 2. removes what the manager applied last time and omits now, unless someone else owns it;
//! 3. compares the result with the live object: a field another manager owns that is added
//!    or changed is a conflict (409) unless `force`, which moves it to the applier; equal
//!    values are shared; removed fields leave their owners;
//! 4. the applier owns exactly what it applied.

use serde_json::{Map, Value, json};

use super::fields::{Fields, Walker, display_path};
use super::schema::Kind;

/// The operation a `managedFields` entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
    /// Create, update or any other patch.
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One field that an apply would take from another manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The manager that owns the field.
    pub manager: String,
    /// How that manager wrote it.
    pub operation: Operation,
    /// The apiVersion of that manager's entry.
    pub api_version: String,
    /// The subresource that manager wrote through, if any (`status`).
    pub subresource: Option<String>,
    /// The field, as the real server prints it: `.data.password`,
    /// `.spec.containers[name="app"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as the real server names it in messages: `"mgr"` for appliers,
    /// `"mgr" using v1` for updaters, with ` with subresource "status"` where it applies.
    pub fn manager_display(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            out.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

/// Why a server-side apply was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers; nothing was changed.
    /// Answer with [`conflict_status`]; the client may retry with `force=true`.
    #[error("apply conflicts with {} field(s) owned by other managers", .0.len())]
    Conflict(Vec<Conflict>),
    /// The configuration is not an object with `apiVersion` and `kind`, sets
    /// `metadata.managedFields`, or does not match the live object's kind.
    #[error("invalid apply configuration: {reason}")]
    Invalid {
        /// What is wrong.
        reason: String,
    },
}

impl ApplyError {
    /// A short, stable name for metric labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ApplyError::Conflict(_) => "apply_conflict",
            ApplyError::Invalid { .. } => "invalid_apply_configuration",
        }
    }

    /// The HTTP status the real API server answers with: 409 for conflicts, 400 otherwise.
    pub fn status_code(&self) -> u16 {
        match self {
            ApplyError::Conflict(_) => 409,
            ApplyError::Invalid { .. } => 400,
        }
    }
}

/// The `Status` body the real API server sends for a failed apply: 409 `Conflict` with one
/// `FieldManagerConflict` cause per field, or 400 `BadRequest`.
pub fn conflict_status(err: &ApplyError) -> Value {
    match err {
        ApplyError::Conflict(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| {
                    json!({
                        "reason": "FieldManagerConflict",
                        "message": format!("conflict with {}", c.manager_display()),
                        "field": c.field,
                    })
                })
                .collect();
            json!({
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": conflict_message(conflicts),
                "reason": "Conflict",
                "details": {"causes": causes},
                "code": 409,
            })
        }
        ApplyError::Invalid { reason } => json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": reason,
            "reason": "BadRequest",
            "code": 400,
        }),
    }
}

fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_display(),
            only.field
        );
    }
    let mut managers: Vec<String> = conflicts.iter().map(Conflict::manager_display).collect();
    managers.sort();
    managers.dedup();
    let mut lines = Vec::new();
    for manager in managers {
        lines.push(format!("conflicts with {manager}:"));
        for c in conflicts.iter().filter(|c| c.manager_display() == manager) {
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: Operation,
    api_version: String,
    time: Option<String>,
    subresource: Option<String>,
    fields: Fields,
}

impl Entry {
    fn same_manager(
        &self,
        manager: &str,
        operation: Operation,
        api_version: &str,
        subresource: Option<&str>,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }

    fn parse(v: &Value) -> Option<Entry> {
        let operation = match v.get("operation")?.as_str()? {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        Some(Entry {
            manager: v
                .get("manager")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            operation,
            api_version: v
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            time: v.get("time").and_then(Value::as_str).map(str::to_owned),
            subresource: v
                .get("subresource")
                .and_then(Value::as_str)
                .map(str::to_owned),
            fields: v.get("fieldsV1").map(Fields::from_v1).unwrap_or_default(),
        })
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), self.manager.clone().into());
        m.insert("operation".into(), self.operation.as_str().into());
        m.insert("apiVersion".into(), self.api_version.clone().into());
        if let Some(time) = &self.time {
            m.insert("time".into(), time.clone().into());
        }
        m.insert("fieldsType".into(), "FieldsV1".into());
        m.insert("fieldsV1".into(), self.fields.to_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), sub.clone().into());
        }
        Value::Object(m)
    }

    fn conflict(&self, path: &[String]) -> Conflict {
        Conflict {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: self.api_version.clone(),
            subresource: self.subresource.clone(),
            field: display_path(path),
        }
    }
}

fn managed_fields(obj: Option<&Value>) -> Option<&Vec<Value>> {
    obj?.get("metadata")?.get("managedFields")?.as_array()
}

fn parse_entries(list: Option<&Vec<Value>>) -> Vec<Entry> {
    list.map(|l| l.iter().filter_map(Entry::parse).collect())
        .unwrap_or_default()
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// Writes `entries` into `obj.metadata.managedFields`, in the real server's order (operation,
/// time, manager, apiVersion, subresource), dropping entries that own nothing.
fn write_entries(obj: &mut Value, mut entries: Vec<Entry>) {
    entries.retain(|e| !e.fields.is_empty());
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Value::Object(root) = obj else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(Entry::to_json).collect()),
        );
    }
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
    v
}

/// Drops `null`s: in an apply configuration they mean nothing here.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Server-side apply of `applied` (an `application/apply-patch+yaml` body, already parsed) by
/// `manager` to `live` (`None` when the object does not exist yet). Returns the new object
/// with `metadata.managedFields` updated; the server still sets `resourceVersion`, `uid`, …
///
/// `now` is the RFC 3339 UTC time recorded in the manager's entry when the object changes.
///
/// # Errors
///
/// [`ApplyError::Conflict`] when the configuration changes fields other managers own and
/// `force` is false (nothing changes), [`ApplyError::Invalid`] for a configuration that is
/// not an object with `apiVersion` and `kind`, sets `metadata.managedFields`, or names another
/// kind than the live object.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    let invalid = |reason: &str| ApplyError::Invalid {
        reason: reason.to_owned(),
    };
    if !applied.is_object() {
        return Err(invalid("the apply configuration must be an object"));
    }
    let api_version = str_field(applied, "apiVersion");
    let kind = str_field(applied, "kind");
    if api_version.is_empty() || kind.is_empty() {
        return Err(invalid(
            "apiVersion and kind must be set in the apply configuration",
        ));
    }
    if managed_fields(Some(applied)).is_some_and(|m| !m.is_empty()) {
        return Err(invalid("metadata.managedFields must be nil"));
    }
    if let Some(live) = live
        && str_field(live, "kind") != kind
    {
        return Err(invalid(
            "the apply configuration's kind does not match the object",
        ));
    }
    let walker = Walker {
        schema: Kind::of(api_version, kind),
    };
    let mut config = without_managed_fields(applied);
    strip_nulls(&mut config);
    let live_plain = live
        .map(without_managed_fields)
        .unwrap_or_else(|| json!({}));

    let mut entries = parse_entries(managed_fields(live));
    if live.is_some() && entries.is_empty() {
        // The real server charges what nobody has claimed yet to this manager.
        entries.push(Entry {
            manager: "before-first-apply".to_owned(),
            operation: Operation::Update,
            api_version: str_field(&live_plain, "apiVersion").to_owned(),
            time: None,
            subresource: None,
            fields: walker.fields_of(&live_plain),
        });
    }
    let mine = |e: &Entry| e.same_manager(manager, Operation::Apply, api_version, None);
    let last = entries
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let applied_set = walker.fields_of(&config);
    let others = entries
        .iter()
        .filter(|e| !mine(e))
        .fold(Fields::default(), |acc, e| acc.union(&e.fields));

    let mut merged = walker.merge(Some(&live_plain), &config);
    walker.remove(
        &mut merged,
        &last.difference(&applied_set).difference(&others),
    );

    let cmp = walker.compare(&live_plain, &merged);
    let changed = cmp.modified.union(&cmp.added);
    let mut conflicts = Vec::new();
    for e in entries.iter().filter(|e| !mine(e)) {
        for path in e.fields.intersection(&changed).paths() {
            conflicts.push(e.conflict(&path));
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts
            .sort_by(|a, b| (a.manager_display(), &a.field).cmp(&(b.manager_display(), &b.field)));
        return Err(ApplyError::Conflict(conflicts));
    }
    let previous_time = entries
        .iter()
        .find(|e| mine(e))
        .and_then(|e| e.time.clone());
    entries.retain(|e| !mine(e));
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    let object_changed = merged != live_plain;
    entries.push(Entry {
        manager: manager.to_owned(),
        operation: Operation::Apply,
        api_version: api_version.to_owned(),
        time: if object_changed || previous_time.is_none() {
            Some(now.to_owned())
        } else {
            previous_time
        },
        subresource: None,
        fields: applied_set,
    });
    write_entries(&mut merged, entries);
    Ok(merged)
}

/// Records a create, update or non-apply patch by `manager` (from `?fieldManager=` or the
/// user-agent default, e.g. `kubectl-client-side-apply`, `kubectl-edit`): the manager's
/// `Update` entry gains every field it added or changed and loses the fields it removed; other
/// managers lose those fields; entries left with nothing are dropped. A write that changes
/// nothing leaves `managedFields` alone.
///
/// `old` is the stored object (`None` on create); `new` is the object about to be stored and
/// gets its `metadata.managedFields` rewritten. A client that sends `managedFields: [{}]`
/// clears them, as on a real server; one that sends other entries replaces them.
pub fn record_update(old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    record(old, new, manager, None, now);
}

/// [`record_update`] for a write through a subresource (`status`): the entry carries
/// `subresource` and is a different manager from the same name's main-resource entry.
pub fn record_subresource_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: &str,
    now: &str,
) {
    record(old, new, manager, Some(subresource), now);
}

fn record(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    subresource: Option<&str>,
    now: &str,
) {
    let sent = managed_fields(Some(new)).cloned();
    if sent
        .as_ref()
        .is_some_and(|s| s.len() == 1 && s[0].as_object().is_some_and(Map::is_empty))
    {
        // The documented reset: the object is stored without managedFields.
        write_entries(new, Vec::new());
        return;
    }
    let old_list = managed_fields(old);
    let mut entries = match &sent {
        Some(list) if !list.is_empty() && Some(list) != old_list => parse_entries(Some(list)),
        _ => parse_entries(old_list),
    };
    let api_version = str_field(new, "apiVersion").to_owned();
    let walker = Walker {
        schema: Kind::of(&api_version, str_field(new, "kind")),
    };
    let old_plain = old.map(without_managed_fields).unwrap_or_else(|| json!({}));
    let new_plain = without_managed_fields(new);
    let cmp = walker.compare(&old_plain, &new_plain);
    let changed = cmp.modified.union(&cmp.added);
    for e in &mut entries {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    if !changed.is_empty() {
        match entries
            .iter_mut()
            .find(|e| e.same_manager(manager, Operation::Update, &api_version, subresource))
        {
            Some(e) => {
                e.fields = e.fields.union(&changed);
                e.time = Some(now.to_owned());
            }
            None => entries.push(Entry {
                manager: manager.to_owned(),
                operation: Operation::Update,
                api_version,
                time: Some(now.to_owned()),
                subresource: subresource.map(str::to_owned),
                fields: changed,
            }),
        }
    }
    write_entries(new, entries);
}

#[cfg(test)]
mod tests;
