//! What the bundled examples (`examples/akvs/`) promise, checked independently of the
//! controller's own formatting code: types, keys, values from the vault fixture, PEM blocks.

use anyhow::{Context as _, ensure};
use base64::Engine as _;
use serde_json::Value;
use testkit::fixtures::Fixture;

/// The examples' namespace.
pub const NAMESPACE: &str = "akv2k8s-demo";

/// One check of an output.
#[derive(Clone, Copy, Debug)]
pub enum Check {
    /// `key` holds the current value of this Key Vault secret of the fixture.
    Value(&'static str, &'static str),
    /// `username:password` is the current value of this Key Vault secret.
    BasicAuth(&'static str),
    /// The keys and values are the properties of this Key Vault secret's JSON object.
    Json(&'static str),
    /// `key` holds a PEM block with this label (`CERTIFICATE`, `PRIVATE KEY`, `PUBLIC KEY`).
    Pem(&'static str, &'static str),
}

/// What one output of the bundled examples must be.
#[derive(Clone, Copy, Debug)]
pub struct Expect {
    /// `Secret` or `ConfigMap`.
    pub kind: &'static str,
    /// Its name (namespace [`NAMESPACE`]).
    pub name: &'static str,
    /// Secret type.
    pub type_: Option<&'static str>,
    /// Its keys, sorted.
    pub keys: &'static [&'static str],
    /// Value checks.
    pub checks: &'static [Check],
}

/// The outputs of `examples/akvs/`.
pub const BUNDLED: &[Expect] = &[
    Expect {
        kind: "Secret",
        name: "db-password",
        type_: Some("Opaque"),
        keys: &["password"],
        checks: &[Check::Value("password", "db-password")],
    },
    Expect {
        kind: "Secret",
        name: "app-settings",
        type_: Some("Opaque"),
        keys: &["API_URL", "FEATURE_FLAGS", "LOG_LEVEL"],
        checks: &[Check::Json("app-settings")],
    },
    Expect {
        kind: "Secret",
        name: "web-tls",
        type_: Some("kubernetes.io/tls"),
        keys: &["tls.crt", "tls.key"],
        checks: &[
            Check::Pem("tls.crt", "CERTIFICATE"),
            Check::Pem("tls.key", "PRIVATE KEY"),
        ],
    },
    Expect {
        kind: "Secret",
        name: "signing-key",
        type_: Some("Opaque"),
        keys: &["signing-key.pub"],
        checks: &[Check::Pem("signing-key.pub", "PUBLIC KEY")],
    },
    Expect {
        kind: "ConfigMap",
        name: "api-certificate",
        type_: None,
        keys: &["tls.crt"],
        checks: &[Check::Pem("tls.crt", "CERTIFICATE")],
    },
    Expect {
        kind: "Secret",
        name: "db-credentials",
        type_: Some("Opaque"),
        keys: &["password", "username"],
        checks: &[
            Check::Value("username", "db-username"),
            Check::Value("password", "db-password"),
        ],
    },
    Expect {
        kind: "Secret",
        name: "registry-credentials",
        type_: Some("kubernetes.io/basic-auth"),
        keys: &["password", "username"],
        checks: &[Check::BasicAuth("registry-basic-auth")],
    },
];

impl Expect {
    /// Checks `live` (the object from the API server, as JSON); returns how many checks ran.
    /// Errors name the object and key, never a value.
    pub fn check(&self, live: &Value, fixture: &Fixture) -> anyhow::Result<usize> {
        let what = format!("{} {NAMESPACE}/{}", self.kind, self.name);
        let data = decoded(live);
        ensure!(
            live["type"].as_str() == self.type_,
            "{what}: type {:?}, expected {:?}",
            live["type"].as_str(),
            self.type_
        );
        let keys: Vec<&str> = data.iter().map(|(k, _)| k.as_str()).collect();
        ensure!(
            keys == self.keys,
            "{what}: keys {keys:?}, expected {:?}",
            self.keys
        );
        let get = |key: &str| -> anyhow::Result<&str> {
            data.iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
                .with_context(|| format!("{what}: no key {key}"))
        };
        let kv = |name: &str| {
            fixture_secret(fixture, name)
                .with_context(|| format!("{what}: the fixture has no Key Vault secret {name}"))
        };
        for check in self.checks {
            match *check {
                Check::Value(key, secret) => ensure!(
                    get(key)? == kv(secret)?,
                    "{what}: key {key} does not hold Key Vault secret {secret}'s current value"
                ),
                Check::BasicAuth(secret) => ensure!(
                    format!("{}:{}", get("username")?, get("password")?) == kv(secret)?,
                    "{what}: username:password is not Key Vault secret {secret}'s value"
                ),
                Check::Json(secret) => {
                    let json: serde_json::Map<String, Value> = serde_json::from_str(&kv(secret)?)
                        .with_context(|| {
                        format!("Key Vault secret {secret} is not a JSON object")
                    })?;
                    for (k, v) in &json {
                        let want = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                        ensure!(
                            get(k)? == want,
                            "{what}: key {k} is not property {k} of Key Vault secret {secret}"
                        );
                    }
                }
                Check::Pem(key, label) => {
                    let v = get(key)?;
                    ensure!(
                        v.starts_with("-----BEGIN ") && v.contains(&format!("{label}-----")),
                        "{what}: key {key} is not a PEM {label}"
                    );
                }
            }
        }
        Ok(self.checks.len() + 2)
    }
}

/// `data` and `binaryData` of a Secret or ConfigMap as UTF-8 text (lossy), sorted by key.
fn decoded(live: &Value) -> Vec<(String, String)> {
    let secret = live["kind"] == "Secret";
    let mut out = Vec::new();
    for field in ["data", "binaryData"] {
        for (k, v) in live[field].as_object().into_iter().flatten() {
            let text = v.as_str().unwrap_or_default();
            let text = if secret || field == "binaryData" {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .unwrap_or_default();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                text.to_owned()
            };
            out.push((k.clone(), text));
        }
    }
    out.sort();
    out
}

/// The current value of Key Vault secret `name` in the fixture (any vault).
pub fn fixture_secret(fixture: &Fixture, name: &str) -> Option<String> {
    let entry = fixture
        .vaults
        .iter()
        .flat_map(|v| &v.secrets)
        .find(|s| s.name == name)?;
    match (&entry.versions, &entry.value) {
        (Some(versions), _) => versions.last().map(|v| v.value.expose().to_owned()),
        (None, Some(v)) => Some(v.expose().to_owned()),
        (None, None) => None,
    }
}

/// The content type of Key Vault secret `name` in the fixture.
pub fn fixture_content_type(fixture: &Fixture, name: &str) -> Option<String> {
    fixture
        .vaults
        .iter()
        .flat_map(|v| &v.secrets)
        .find(|s| s.name == name)
        .and_then(|s| s.content_type.clone())
}

/// How two comparable objects differ, without values: the keys missing, extra or different,
/// or the metadata fields that differ.
pub fn difference(want: &Value, got: &Value) -> String {
    let mut parts = Vec::new();
    for field in ["data", "binaryData"] {
        let (w, g) = (&want[field], &got[field]);
        let keys = |v: &Value| -> Vec<String> {
            v.as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        for k in keys(w) {
            match g.get(&k) {
                None => parts.push(format!("{field}.{k} missing")),
                Some(v) if Some(v) != w.get(&k) => parts.push(format!("{field}.{k} differs")),
                Some(_) => {}
            }
        }
        for k in keys(g) {
            if w.get(&k).is_none() {
                parts.push(format!("{field}.{k} unexpected"));
            }
        }
    }
    for field in ["type", "apiVersion", "kind"] {
        if want[field] != got[field] {
            parts.push(format!("{field}: {} vs {}", want[field], got[field]));
        }
    }
    if want["metadata"] != got["metadata"] {
        parts.push(format!(
            "metadata: {} vs {}",
            want["metadata"], got["metadata"]
        ));
    }
    if parts.is_empty() {
        "no visible difference".into()
    } else {
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_fixture_holds_every_value_the_bundled_examples_check() {
        let fixture = crate::manifests::fixture(None).expect("example fixture");
        for e in BUNDLED {
            for c in e.checks {
                let secret = match *c {
                    Check::Value(_, s) | Check::BasicAuth(s) | Check::Json(s) => s,
                    Check::Pem(..) => continue,
                };
                assert!(
                    fixture_secret(&fixture, secret).is_some(),
                    "{}: {secret}",
                    e.name
                );
            }
        }
        assert_eq!(
            fixture_secret(&fixture, "db-password").as_deref(),
            Some("demo-db-password-v2"),
            "the last version is the current one"
        );
    }

    #[test]
    fn a_wrong_value_is_named_by_key_not_shown() {
        let fixture = crate::manifests::fixture(None).expect("example fixture");
        let live = json!({"kind": "Secret", "type": "Opaque",
            "data": {"password": base64::engine::general_purpose::STANDARD.encode("wrong-value")}});
        let err = BUNDLED[0].check(&live, &fixture).expect_err("wrong value");
        let text = err.to_string();
        assert!(text.contains("key password"), "{text}");
        assert!(
            !text.contains("wrong-value") && !text.contains("demo-db-password"),
            "{text}"
        );
    }

    #[test]
    fn differences_name_keys_only() {
        let want = json!({"kind": "Secret", "data": {"a": "MQ==", "b": "Mg=="}, "metadata": {}});
        let got = json!({"kind": "Secret", "data": {"a": "Mw==", "c": "Mg=="}, "metadata": {}});
        assert_eq!(
            difference(&want, &got),
            "data.a differs, data.b missing, data.c unexpected"
        );
    }
}
