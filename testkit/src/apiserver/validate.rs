//! Validation like the real server's: names, Secret and ConfigMap rules, and custom resources
//! against their CRD's OpenAPI v3 schema (with pruning of unknown fields).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};

use super::status::{ApiError, Cause};

/// Largest total size of a Secret's or ConfigMap's data.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const KEY_MSG: &str = "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')";

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// DNS-1123 subdomain (most object names).
pub fn is_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_label)
}

/// Name rules: namespaces are DNS-1123 labels, everything else DNS-1123 subdomains.
pub fn name(plural: &str, name: &str) -> Option<Cause> {
    let v = Value::String(name.to_owned());
    if plural == "namespaces" {
        (!is_label(name)).then(|| Cause::invalid("metadata.name", &v, LABEL_MSG))
    } else {
        (!is_subdomain(name)).then(|| Cause::invalid("metadata.name", &v, SUBDOMAIN_MSG))
    }
}

fn valid_config_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Normalises and validates a Secret: `stringData` merged into `data` (base64) and removed,
/// `type` defaulted to `Opaque`, `data` base64 checked (400 as the decoder answers), keys,
/// size and type-specific required keys checked, `type` immutable against `old`.
///
/// # Errors
///
/// 400 for undecodable data, 422 with causes otherwise.
pub fn secret(obj: &mut Value, old: Option<&Value>) -> Result<Vec<Cause>, ApiError> {
    let mut causes = Vec::new();
    if obj["type"].is_null() {
        obj["type"] = Value::String("Opaque".into());
    }
    let mut data: Map<String, Value> = obj["data"].as_object().cloned().unwrap_or_default();
    for (k, v) in &data {
        let Some(s) = v.as_str() else {
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: json: cannot unmarshal {} into Go struct field Secret.data of type []uint8",
                json_type(v)
            )));
        };
        if let Err(e) = STANDARD.decode(s) {
            let at = match e {
                base64::DecodeError::InvalidByte(i, _)
                | base64::DecodeError::InvalidLastSymbol(i, _) => i,
                _ => s.len(),
            };
            return Err(ApiError::bad_request(format!(
                "Secret in version \"v1\" cannot be handled as a Secret: illegal base64 data at input byte {at}"
            )));
        }
        if !valid_config_key(k) {
            causes.push(Cause::invalid(
                format!("data[{k}]"),
                &Value::String(k.clone()),
                KEY_MSG,
            ));
        }
    }
    if let Some(sd) = obj.get("stringData").and_then(Value::as_object) {
        for (k, v) in sd {
            if !valid_config_key(k) {
                causes.push(Cause::invalid(
                    format!("stringData[{k}]"),
                    &Value::String(k.clone()),
                    KEY_MSG,
                ));
            }
            let text = v.as_str().unwrap_or_default();
            data.insert(k.clone(), Value::String(STANDARD.encode(text)));
        }
    }
    if let Some(m) = obj.as_object_mut() {
        m.remove("stringData");
        if data.is_empty() {
            m.remove("data");
        } else {
            m.insert("data".into(), Value::Object(data.clone()));
        }
    }
    let size: usize = data
        .values()
        .filter_map(Value::as_str)
        .map(|s| s.len() * 3 / 4)
        .sum();
    if size > MAX_DATA_BYTES {
        causes.push(Cause::too_long("data", MAX_DATA_BYTES));
    }
    let ty = obj["type"].as_str().unwrap_or("Opaque").to_owned();
    let required: &[&str] = match ty.as_str() {
        "kubernetes.io/tls" => &["tls.crt", "tls.key"],
        "kubernetes.io/dockerconfigjson" => &[".dockerconfigjson"],
        "kubernetes.io/dockercfg" => &[".dockercfg"],
        "kubernetes.io/ssh-auth" => &["ssh-privatekey"],
        _ => &[],
    };
    for k in required {
        if !data.contains_key(*k) {
            causes.push(Cause::required(format!("data[{k}]")));
        }
    }
    if ty == "kubernetes.io/basic-auth"
        && !data.contains_key("username")
        && !data.contains_key("password")
    {
        causes.push(Cause::required("data[username]"));
    }
    if let Some(old) = old {
        let old_ty = old["type"].as_str().unwrap_or("Opaque");
        if old_ty != ty {
            causes.push(Cause::invalid(
                "type",
                &Value::String(ty.clone()),
                "field is immutable",
            ));
        }
        if old["immutable"].as_bool() == Some(true) && old["data"] != obj["data"] {
            causes.push(Cause::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    Ok(causes)
}

/// ConfigMap keys and size.
pub fn configmap(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let mut size = 0;
    for field in ["data", "binaryData"] {
        for (k, v) in obj[field].as_object().into_iter().flatten() {
            if !valid_config_key(k) {
                causes.push(Cause::invalid(
                    format!("{field}[{k}]"),
                    &Value::String(k.clone()),
                    KEY_MSG,
                ));
            }
            size += v.as_str().map_or(0, str::len);
        }
    }
    if size > MAX_DATA_BYTES {
        causes.push(Cause::too_long("", MAX_DATA_BYTES));
    }
    causes
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(expected: &str, v: &Value) -> bool {
    match expected {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Validates `value` against an OpenAPI v3 (structural) schema: types, `required`, `enum`,
/// `nullable`, `minimum`/`maximum`, `minLength`/`maxLength`, `maxItems`, `x-kubernetes-int-or-string`.
pub fn schema(value: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if schema["nullable"].as_bool() != Some(true)
            && !path.is_empty()
            && schema.get("type").is_some()
        {
            causes.push(Cause::invalid(
                path,
                value,
                &format!(
                    "{path} in body must be of type {}: \"null\"",
                    schema["type"].as_str().unwrap_or("object")
                ),
            ));
        }
        return;
    }
    if schema["x-kubernetes-int-or-string"].as_bool() == Some(true) {
        if !(value.is_string() || type_matches("integer", value)) {
            causes.push(Cause::invalid(
                path,
                value,
                &format!(
                    "{path} in body must be of type integer or string: {:?}",
                    json_type(value)
                ),
            ));
        }
        return;
    }
    if let Some(t) = schema["type"].as_str()
        && !type_matches(t, value)
    {
        causes.push(Cause {
            reason: "FieldValueTypeInvalid",
            field: path.to_owned(),
            message: format!(
                "Invalid value: {:?}: {path} in body must be of type {t}: {:?}",
                json_type(value),
                json_type(value)
            ),
        });
        return;
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        causes.push(Cause::unsupported(path, value, options));
    }
    if let (Some(n), Some(min)) = (value.as_f64(), schema["minimum"].as_f64())
        && n < min
    {
        causes.push(Cause::invalid(
            path,
            value,
            &format!("{path} in body should be greater than or equal to {min}"),
        ));
    }
    if let (Some(n), Some(max)) = (value.as_f64(), schema["maximum"].as_f64())
        && n > max
    {
        causes.push(Cause::invalid(
            path,
            value,
            &format!("{path} in body should be less than or equal to {max}"),
        ));
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|m| len < m) {
            causes.push(Cause::invalid(
                path,
                value,
                &format!(
                    "{path} in body should be at least {} chars long",
                    schema["minLength"]
                ),
            ));
        }
        if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
            causes.push(Cause::too_long(
                path,
                schema["maxLength"].as_u64().unwrap_or_default() as usize,
            ));
        }
    }
    match value {
        Value::Object(map) => {
            for req in schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !map.contains_key(req) {
                    causes.push(Cause::required(join(path, req)));
                }
            }
            let props = schema["properties"].as_object();
            for (k, v) in map {
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    self::schema(v, s, &join(path, k), causes);
                } else if let Some(s) = schema.get("additionalProperties").filter(|s| s.is_object())
                {
                    self::schema(v, s, &join(path, k), causes);
                }
            }
        }
        Value::Array(items) => {
            if schema["maxItems"]
                .as_u64()
                .is_some_and(|m| items.len() as u64 > m)
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    field: path.to_owned(),
                    message: format!(
                        "Too many: {}: must have at most {} items",
                        items.len(),
                        schema["maxItems"]
                    ),
                });
            }
            if let Some(s) = schema.get("items") {
                for (i, v) in items.iter().enumerate() {
                    self::schema(v, s, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes fields the schema does not declare (structural pruning), except under
/// `x-kubernetes-preserve-unknown-fields: true`. `apiVersion`, `kind` and `metadata` are kept at
/// the root.
pub fn prune(value: &mut Value, schema: &Value, root: bool) {
    if schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true)
        && schema.get("properties").is_none()
    {
        return;
    }
    match value {
        Value::Object(map) => {
            let props = schema["properties"].as_object();
            let additional = schema.get("additionalProperties").filter(|s| s.is_object());
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
            map.retain(|k, _| {
                (root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                    || props.is_some_and(|p| p.contains_key(k))
                    || additional.is_some()
                    || preserve
            });
            for (k, v) in map.iter_mut() {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(s) = props.and_then(|p| p.get(k)) {
                    prune(v, s, false);
                } else if let Some(s) = additional {
                    prune(v, s, false);
                }
            }
        }
        Value::Array(items) => {
            if let Some(s) = schema.get("items") {
                for v in items {
                    prune(v, s, false);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_follow_dns_1123() {
        assert!(name("secrets", "db-pass.v1").is_none());
        assert!(name("secrets", "Bad_Name").is_some());
        assert!(name("namespaces", "a.b").is_some(), "namespaces are labels");
        assert!(name("secrets", &"a".repeat(254)).is_some());
    }

    #[test]
    fn string_data_merges_into_data_and_types_are_checked() {
        let mut s = json!({"stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}});
        assert!(secret(&mut s, None).expect("ok").is_empty());
        assert_eq!(s["data"]["password"], "aHVudGVyMg==");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());

        let mut bad = json!({"data": {"k": "not base64!"}});
        let err = secret(&mut bad, None).expect_err("400");
        assert_eq!(err.code, 400);
        assert!(
            err.message.contains("illegal base64 data at input byte 3"),
            "{}",
            err.message
        );

        let mut tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
        let causes = secret(&mut tls, None).expect("parsed");
        assert_eq!(causes, [Cause::required("data[tls.key]")]);

        let mut changed =
            json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "", "tls.key": ""}});
        let causes = secret(&mut changed, Some(&json!({"type": "Opaque"}))).expect("parsed");
        assert_eq!(causes[0].field, "type");
        assert!(causes[0].message.ends_with("field is immutable"));
    }

    #[test]
    fn custom_resources_are_validated_and_pruned() {
        let s = json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["vault"],
                    "properties": {
                        "vault": {"type": "object", "properties": {"name": {"type": "string"},
                                  "object": {"type": "object", "properties": {"type": {"type": "string", "enum": ["secret", "key"]}}}}},
                        "count": {"type": "integer"},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }
            }
        });
        let mut causes = Vec::new();
        let obj = json!({"spec": {"count": "x", "vault": {"object": {"type": "blob"}}}});
        schema(&obj, &s, "", &mut causes);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["spec.count", "spec.vault.object.type"]);
        let mut missing = Vec::new();
        schema(&json!({"spec": {}}), &s, "", &mut missing);
        assert_eq!(missing, [Cause::required("spec.vault")]);

        let mut o = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                           "spec": {"vault": {"name": "v", "extra": 1}, "free": {"anything": [1]}}, "junk": true});
        prune(&mut o, &s, true);
        assert_eq!(
            o,
            json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"},
                             "spec": {"vault": {"name": "v"}, "free": {"anything": [1]}}})
        );
    }
}
