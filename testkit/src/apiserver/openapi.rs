//! Enough OpenAPI v3 for `kubectl`: the `/openapi/v3` index of group/versions and, per
//! group/version, the resource paths with their operations and query parameters (kubectl checks
//! the PATCH operation for `fieldValidation` to choose server-side validation) and the schemas of
//! custom resources. Built-in schemas are not published: kubectl then uses its compiled-in types
//! for strategic merge patches, as it does against servers without OpenAPI.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::resources::{Registry, ResourceType};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(text: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    d.as_ref()[..16]
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// Every served group/version with the types it serves.
fn group_versions(registry: &Registry) -> BTreeMap<(String, String), Vec<&ResourceType>> {
    let mut gvs: BTreeMap<(String, String), Vec<&ResourceType>> = BTreeMap::new();
    for t in registry.all() {
        for v in &t.versions {
            gvs.entry((t.group.clone(), v.name.clone()))
                .or_default()
                .push(t);
        }
    }
    gvs
}

/// `/openapi/v3`: the index.
pub fn index(registry: &Registry) -> Value {
    let mut paths = serde_json::Map::new();
    for ((g, v), _) in group_versions(registry) {
        let doc = document(registry, &g, &v).unwrap_or_default();
        let p = gv_path(&g, &v);
        paths.insert(p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc.to_string()))}));
    }
    json!({"paths": paths})
}

fn param(name: &str) -> Value {
    json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}})
}

/// `/openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`.
pub fn document(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let gvs = group_versions(registry);
    let types = gvs.get(&(group.to_owned(), version.to_owned()))?;
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for t in types {
        let gvk = json!({"group": t.group, "version": version, "kind": t.kind});
        let base = if t.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}",
                gv_path(group, version),
                t.plural
            )
        } else {
            format!("/{}/{}", gv_path(group, version), t.plural)
        };
        let write_params = [
            param("dryRun"),
            param("fieldManager"),
            param("fieldValidation"),
        ];
        let op = |action: &str, extra: &[Value]| {
            let mut params: Vec<Value> = extra.to_vec();
            if matches!(action, "patch" | "put" | "post") {
                params.extend(write_params.iter().cloned());
            }
            if action == "patch" {
                params.push(param("force"));
            }
            json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk, "parameters": params,
                   "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(base.clone(), json!({"get": op("list", &[param("labelSelector"), param("fieldSelector")]), "post": op("post", &[])}));
        paths.insert(
            format!("{base}/{{name}}"),
            json!({"get": op("get", &[]), "put": op("put", &[]), "patch": op("patch", &[]), "delete": op("delete", &[])}),
        );
        if t.status_subresource {
            paths.insert(
                format!("{base}/{{name}}/status"),
                json!({"get": op("get", &[]), "put": op("put", &[]), "patch": op("patch", &[])}),
            );
        }
        if let Some(schema) = t.version(version).and_then(|v| v.schema.clone()) {
            let mut s = schema;
            s["x-kubernetes-group-version-kind"] = json!([gvk]);
            let reversed: Vec<&str> = t.group.split('.').rev().collect();
            schemas.insert(format!("{}.{version}.{}", reversed.join("."), t.kind), s);
        }
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": super::http::GIT_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }))
}
