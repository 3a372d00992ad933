//! Output for people: manifests as multi-document YAML, Secrets and ConfigMaps as short
//! listings, values masked (their length only: never the value, never a hash of it) unless
//! `--show-values`.

use base64::Engine as _;
use serde_json::Value;

/// The note at the top of masked output.
pub const MASKED_NOTE: &str = "values masked (their length only); --show-values prints them";

/// Manifests as multi-document YAML (`---` between documents), values masked unless
/// `show_values`.
///
/// # Errors
///
/// The YAML serialiser fails (not expected for JSON values).
pub fn yaml_documents(manifests: &[Value], show_values: bool) -> anyhow::Result<String> {
    let mut out = String::new();
    if !show_values {
        out.push_str(&format!("# {MASKED_NOTE}\n"));
    }
    for (i, m) in manifests.iter().enumerate() {
        let mut m = m.clone();
        if !show_values {
            k8s_sync::preview::mask_values(&mut m);
        }
        if i > 0 || !show_values {
            out.push_str("---\n");
        }
        out.push_str(&serde_saphyr::to_string(&m)?);
    }
    Ok(out)
}

/// A Secret or ConfigMap as a few lines: kind, namespace/name, type, owners, then one line
/// per key (`key  <masked: N bytes>`, or the value with `show_values`).
pub fn object_listing(obj: &Value, show_values: bool, indent: &str) -> String {
    let kind = obj["kind"].as_str().unwrap_or("Secret");
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    let mut owners: Vec<&str> = obj["metadata"]["ownerReferences"]
        .as_array()
        .map(|refs| refs.iter().filter_map(|r| r["name"].as_str()).collect())
        .unwrap_or_default();
    owners.sort_unstable();
    let mut out = format!("{indent}{kind} {ns}/{name}");
    if let Some(t) = obj["type"].as_str() {
        out.push_str(&format!("  type {t}"));
    }
    if !owners.is_empty() {
        out.push_str(&format!("  written by {}", owners.join(", ")));
    }
    out.push('\n');
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for field in ["data", "binaryData"] {
        let base64 = kind == "Secret" || field == "binaryData";
        for (k, v) in obj[field].as_object().into_iter().flatten() {
            let text = v.as_str().unwrap_or_default();
            let bytes = match base64 {
                true => base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_else(|_| text.as_bytes().to_vec()),
                false => text.as_bytes().to_vec(),
            };
            entries.push((k.clone(), bytes));
        }
    }
    entries.sort();
    let width = entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, bytes) in entries {
        out.push_str(&format!("{indent}    {key:<width$}  "));
        out.push_str(&value_text(&bytes, show_values, &format!("{indent}      ")));
        out.push('\n');
    }
    out
}

/// One value: masked, a single line, or an indented block (PEM).
fn value_text(bytes: &[u8], show_values: bool, indent: &str) -> String {
    if !show_values {
        return format!("<masked: {} bytes>", bytes.len());
    }
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.trim_end().contains('\n') => text.trim_end().to_owned(),
        Ok(text) => {
            let mut block = String::from("|");
            for line in text.trim_end().lines() {
                block.push('\n');
                block.push_str(indent);
                block.push_str(line);
            }
            block
        }
        Err(_) => format!(
            "(binary, base64) {}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

/// `1 key`, `2 keys`.
pub fn count(n: usize, noun: &str) -> String {
    match n {
        1 => format!("1 {noun}"),
        _ => format!("{n} {noun}s"),
    }
}

/// A duration as people read it: `850 ms`, `1.25 s`.
pub fn duration(d: std::time::Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.2} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret() -> Value {
        json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "n", "ownerReferences": [{"name": "a"}]},
            "data": {"password": "aHVudGVyMg==", "cert": "bGluZTEKbGluZTIK"}})
    }

    #[test]
    fn masked_listing_shows_lengths_and_never_values() {
        let text = object_listing(&secret(), false, "");
        assert!(
            text.starts_with("Secret n/db  type Opaque  written by a\n"),
            "{text}"
        );
        assert!(text.contains("password  <masked: 7 bytes>"), "{text}");
        assert!(
            !text.contains("hunter2") && !text.contains("aHVudGVyMg"),
            "{text}"
        );
        let yaml = yaml_documents(&[secret()], false).expect("yaml");
        assert!(
            !yaml.contains("hunter2") && !yaml.contains("aHVudGVyMg"),
            "{yaml}"
        );
        assert!(yaml.contains("<masked: 7 bytes>"), "{yaml}");
    }

    #[test]
    fn shown_values_are_decoded_and_blocks_indented() {
        let text = object_listing(&secret(), true, "");
        assert!(text.contains("password  hunter2"), "{text}");
        assert!(
            text.contains("cert      |\n      line1\n      line2"),
            "{text}"
        );
        let yaml = yaml_documents(&[secret(), secret()], true).expect("yaml");
        assert!(yaml.contains("aHVudGVyMg=="), "{yaml}");
        assert_eq!(yaml.matches("---\n").count(), 1, "{yaml}");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(std::time::Duration::from_millis(850)), "850 ms");
        assert_eq!(duration(std::time::Duration::from_millis(1250)), "1.25 s");
    }
}
