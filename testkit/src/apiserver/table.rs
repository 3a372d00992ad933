//! Server-side printing: `meta.k8s.io/v1` `Table` responses (what `kubectl get` asks for), with
//! the built-in types' columns and CRDs' `additionalPrinterColumns`.

use std::time::SystemTime;

use serde_json::{Value, json};

use super::http::Target;
use crate::clock::{from_unix_seconds, parse_rfc3339};

/// A `Table` for a list (`is_list`) or a single object.
pub fn table(target: &Target, body: &Value, is_list: bool, now: SystemTime) -> Value {
    let columns = target
        .rt
        .version(&target.version)
        .map(|v| v.columns.clone())
        .unwrap_or_default();
    let mut defs = vec![json!({"name": "Name", "type": "string", "format": "name",
        "description": "Name must be unique within a namespace.", "priority": 0})];
    for c in &columns {
        let type_ = if c.json_path.starts_with(".metadata.creationTimestamp") && !target.rt.custom {
            "string"
        } else {
            c.type_.as_str()
        };
        defs.push(json!({"name": c.name, "type": type_, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    let items: Vec<&Value> = if is_list {
        body["items"]
            .as_array()
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    } else {
        vec![body]
    };
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let mut cells = vec![obj["metadata"]["name"].clone()];
            for c in &columns {
                cells.push(cell(obj, &c.json_path, &c.type_, target.rt.custom, now));
            }
            json!({"cells": cells, "object": {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            }})
        })
        .collect();
    let mut meta = json!({});
    if is_list {
        meta = body["metadata"].clone();
    } else if let Some(rv) = body["metadata"]["resourceVersion"].as_str() {
        meta["resourceVersion"] = json!(rv);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}

fn cell(obj: &Value, path: &str, type_: &str, custom: bool, now: SystemTime) -> Value {
    if let Some(fields) = path.strip_prefix("@count:") {
        let n: usize = fields
            .split('+')
            .map(|f| {
                obj[f]
                    .as_object()
                    .map_or_else(|| obj[f].as_array().map_or(0, Vec::len), |m| m.len())
            })
            .sum();
        return json!(n);
    }
    match path {
        "@pod-ready" => {
            let statuses = obj["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = obj["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s["ready"].as_bool() == Some(true))
                .count();
            return json!(format!("{ready}/{total}"));
        }
        "@pod-restarts" => {
            let n: i64 = obj["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["restartCount"].as_i64())
                .sum();
            return json!(n);
        }
        _ => {}
    }
    let v = jsonpath(obj, path).unwrap_or(Value::Null);
    // The built-in Age columns and CRD `date` columns are rendered as ages by the server
    // (the CRD table convertor's `HumanDuration`), missing values as `<unknown>`/`<none>`.
    if (path == ".metadata.creationTimestamp" && !custom) || type_ == "date" {
        if v.is_null() && type_ == "date" && custom {
            return Value::Null;
        }
        return json!(
            v.as_str()
                .and_then(|t| parse_rfc3339(t).ok())
                .map(|t| human_age(now, from_unix_seconds(t)))
                .unwrap_or_else(|| "<unknown>".into())
        );
    }
    match (type_, &v) {
        (_, Value::Null) => Value::Null,
        ("integer" | "number" | "boolean", _) => v,
        (_, Value::String(_)) => v,
        _ => json!(v.to_string()),
    }
}

/// Evaluates the JSONPath subset printer columns use: `.a.b`, `[n]`, `[*]` and filters
/// `[?(@.k=="v")]`.
pub fn jsonpath(obj: &Value, path: &str) -> Option<Value> {
    let mut current = vec![obj.clone()];
    let mut rest = path.trim().trim_start_matches('{').trim_end_matches('}');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let field = &r[..end];
            current = current
                .iter()
                .filter_map(|v| v.get(field).cloned())
                .collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = &r[end + 1..];
            current = if inner == "*" {
                current
                    .iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .collect()
            } else if let Some(filter) =
                inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')'))
            {
                let (field, value) = filter.split_once("==")?;
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                current
                    .iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .filter(|item| {
                        let v = &item[field.trim()];
                        v.as_str() == Some(value)
                            || serde_json::from_str::<Value>(value).ok().as_ref() == Some(v)
                    })
                    .collect()
            } else {
                let i: usize = inner.parse().ok()?;
                current.iter().filter_map(|v| v.get(i).cloned()).collect()
            };
        } else {
            return None;
        }
    }
    match current.len() {
        0 => None,
        1 => current.pop(),
        _ => Some(Value::String(
            current
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join(","),
        )),
    }
}

/// Kubernetes' `HumanDuration` of `now - then` (`5s`, `3m2s`, `17m`, `5h3m`, `3d4h`, `40d`, `2y`).
pub fn human_age(now: SystemTime, then: SystemTime) -> String {
    let s = now.duration_since(then).unwrap_or_default().as_secs();
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => {
            if s.is_multiple_of(60) {
                format!("{m}m")
            } else {
                format!("{m}m{}s", s % 60)
            }
        }
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => {
            if m.is_multiple_of(60) {
                format!("{h}h")
            } else {
                format!("{h}h{}m", m % 60)
            }
        }
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 => {
            if h.is_multiple_of(24) {
                format!("{d}d")
            } else {
                format!("{d}d{}h", h % 24)
            }
        }
        _ if h < 24 * 365 * 2 => format!("{d}d"),
        _ => format!("{}y", d / 365),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn jsonpath_covers_printer_column_forms() {
        let o = json!({"spec": {"vault": {"name": "kv"}}, "status": {"conditions": [
            {"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}, "items": [{"a": 1}, {"a": 2}]});
        assert_eq!(jsonpath(&o, ".spec.vault.name"), Some(json!("kv")));
        assert_eq!(
            jsonpath(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            jsonpath(&o, ".status.conditions[0].type"),
            Some(json!("Synced"))
        );
        assert_eq!(jsonpath(&o, ".items[*].a"), Some(json!("1,2")));
        assert_eq!(jsonpath(&o, ".spec.missing"), None);
    }

    #[test]
    fn ages_read_like_kubectls() {
        let t0 = SystemTime::UNIX_EPOCH;
        let at = |s: u64| human_age(t0 + Duration::from_secs(s), t0);
        assert_eq!(at(5), "5s");
        assert_eq!(at(182), "3m2s");
        assert_eq!(at(17 * 60), "17m");
        assert_eq!(at(5 * 3600 + 180), "5h3m");
        assert_eq!(at(3 * 86_400 + 4 * 3600), "3d4h");
        assert_eq!(at(40 * 86_400), "40d");
    }
}
