//! Upstream's formatting cases (behaviour reference §8.3–8.4) and ours.

use base64::Engine as _;
use testkit::certs::{CertChain, KeyKind, PemPart, PfxEncryption};

use super::*;
use crate::key::JsonWebKey;
use crate::secret::CONTENT_TYPE_YAML;

fn secret(value: &str) -> Material {
    Material::Secret(SecretObject {
        name: "some-secret".into(),
        version: "v1".into(),
        content_type: None,
        value: SecretValue::from(value),
        expires: None,
    })
}

fn cert_material(chain: &CertChain, backing_pem: Option<String>, exportable: bool) -> Material {
    Material::Certificate {
        certificate: CertificateObject {
            name: "some-secret".into(),
            version: "v1".into(),
            cer: chain.leaf().der().to_vec(),
            exportable: Some(exportable),
            secret_content_type: Some("application/x-pem-file".into()),
        },
        backing: backing_pem.map(|pem| SecretObject {
            name: "some-secret".into(),
            version: "v1".into(),
            content_type: Some("application/x-pem-file".into()),
            value: SecretValue::from(pem),
            expires: None,
        }),
    }
}

fn sec(t: &'static str, key: Option<&'static str>) -> Target<'static> {
    Target::Secret {
        secret_type: t,
        data_key: key,
    }
}

fn keys(r: Result<Values>) -> Vec<String> {
    r.expect("values")
        .keys()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

fn run(spec: &ObjectSpec, target: Target<'_>, m: &Material) -> Result<Values> {
    format(spec, &target, m, &FormatOptions::default())
}

fn chain() -> CertChain {
    CertChain::builder(KeyKind::Rsa2048)
        .common_name("test.com")
        .build()
        .expect("chain")
}

#[test]
fn upstream_secret_handler_cases() {
    let plain = ObjectSpec::new("some-secret", ObjectType::Secret);
    // HandleSecretWithNoDataKey / HandleConfigMapWithNoDataKey
    assert!(matches!(
        run(&plain, sec("", None), &secret("x")),
        Err(Error::NoDataKey { target: "secret" })
    ));
    assert!(matches!(
        run(&plain, Target::ConfigMap { data_key: None }, &secret("x")),
        Err(Error::NoDataKey {
            target: "configmap"
        })
    ));
    // HandleSecretWithBasicAuthOutput
    assert_eq!(
        keys(run(
            &plain,
            sec(secret_type::BASIC_AUTH, None),
            &secret("myuser:mypassword")
        )),
        ["password", "username"]
    );
    // HandleSecretWithDockerConfigJsonAsOutput (with a JSON value: see the deviation test below)
    let docker = r#"{"auths":{"r.io":{"auth":"dTpw"}}}"#;
    assert_eq!(
        keys(run(
            &plain,
            sec(secret_type::DOCKER_CONFIG_JSON, None),
            &secret(docker)
        )),
        [".dockerconfigjson"]
    );
    // HandleSecretWithDockerConfigAsOutput / HandleSecretWithSSHAuthAsOutput
    assert_eq!(
        keys(run(
            &plain,
            sec(secret_type::DOCKER_CFG, None),
            &secret("lkajslfjalsdj")
        )),
        [".dockercfg"]
    );
    assert_eq!(
        keys(run(
            &plain,
            sec(secret_type::SSH_AUTH, None),
            &secret("lkajslfjalsdj")
        )),
        ["ssh-privatekey"]
    );
    // HandleSecretWithTypeTLSAsOutput: base64 PFX, two+ certs and an RSA key
    let pfx = chain().pfx(PfxEncryption::Legacy3Des).expect("pfx");
    let b64 = base64::engine::general_purpose::STANDARD.encode(pfx);
    assert_eq!(
        keys(run(&plain, sec(secret_type::TLS, None), &secret(&b64))),
        ["tls.crt", "tls.key"]
    );
}

#[test]
fn upstream_certificate_handler_cases() {
    let c = chain();
    let spec = ObjectSpec::new("some-secret", ObjectType::Certificate);
    let with_key = cert_material(&c, Some(c.pem_bundle(&PemPart::KEY_VAULT_ORDER)), true);
    let without_key = cert_material(&c, Some(c.pem_bundle(&[PemPart::Leaf])), true);
    // HandleCertificateWithTlsOutput
    assert_eq!(
        keys(run(&spec, sec(secret_type::TLS, None), &with_key)),
        ["tls.crt", "tls.key"]
    );
    // HandlePubliKeyCertificateOnlyWithTlsOutput
    assert!(matches!(
        run(&spec, sec(secret_type::TLS, None), &without_key),
        Err(Error::NoPrivateKey)
    ));
    // HandlePubliKeyCertificateWithDataKey / HandleCertificateWithOutputDataKey
    let v = run(&spec, sec("", Some("mykey")), &without_key).expect("public");
    assert_eq!(v.keys(), ["mykey"]);
    assert_eq!(
        v.get("mykey").and_then(|v| v.as_str()),
        Some(lf(&c.leaf().pem()).as_str())
    );
    // HandleCertificateFailureWithNoOutputDataKey
    assert!(run(&spec, sec("", None), &with_key).is_err());
    // HandleCertificateWithRawOutput: the stored bundle as is
    let v = run(&spec, sec(secret_type::OPAQUE, Some("my-key")), &with_key).expect("raw");
    assert_eq!(
        v.get("my-key").map(SecretValue::as_bytes),
        Some(c.pem_bundle(&PemPart::KEY_VAULT_ORDER).as_bytes())
    );
}

#[test]
fn upstream_multi_key_cases_ignore_the_secret_type() {
    let yaml = "firstValue: some first value data\nsecondValue: some second value data\n";
    let spec = ObjectSpec::new("some-secret", ObjectType::MultiKeyValueSecret)
        .content_type(CONTENT_TYPE_YAML);
    assert_eq!(
        keys(run(&spec, sec("", None), &secret(yaml))),
        ["firstValue", "secondValue"]
    );
    assert_eq!(
        keys(run(
            &spec,
            Target::ConfigMap { data_key: None },
            &secret(yaml)
        )),
        ["firstValue", "secondValue"]
    );
    assert_eq!(
        keys(run(
            &spec,
            sec(secret_type::DOCKER_CFG, None),
            &secret(yaml)
        )),
        ["firstValue", "secondValue"]
    );
    let no_ct = ObjectSpec::new("some-secret", ObjectType::MultiKeyValueSecret);
    assert!(matches!(
        run(&no_ct, sec("", None), &secret(yaml)),
        Err(Error::MultiKeyNoContentType)
    ));
}

#[test]
fn basic_auth_splits_on_the_first_colon() {
    // Deviation: upstream rejected passwords containing ':'.
    let plain = ObjectSpec::new("s", ObjectType::Secret);
    let v = run(
        &plain,
        sec(secret_type::BASIC_AUTH, None),
        &secret("user:pa:ss"),
    )
    .expect("split");
    assert_eq!(v.get("username").and_then(|v| v.as_str()), Some("user"));
    assert_eq!(v.get("password").and_then(|v| v.as_str()), Some("pa:ss"));
    assert!(matches!(
        run(
            &plain,
            sec(secret_type::BASIC_AUTH, None),
            &secret("nocolon")
        ),
        Err(Error::BasicAuth)
    ));
}

#[test]
fn dockerconfigjson_is_validated_and_gets_auth_when_missing() {
    let plain = ObjectSpec::new("s", ObjectType::Secret);
    // Deviation: upstream copied any text (its test uses "lkajslfjalsdj").
    let e = run(
        &plain,
        sec(secret_type::DOCKER_CONFIG_JSON, None),
        &secret("lkajslfjalsdj"),
    )
    .expect_err("not json");
    assert!(!e.to_string().contains("lkajslfjalsdj"), "{e}");
    let v = run(
        &plain,
        sec(secret_type::DOCKER_CONFIG_JSON, None),
        &secret(r#"{"auths":{"r.io":{"username":"u","password":"p"}}}"#),
    )
    .expect("auth added");
    let doc: serde_json::Value =
        serde_json::from_slice(v.get(".dockerconfigjson").expect("key").as_bytes()).expect("json");
    assert_eq!(doc["auths"]["r.io"]["auth"], "dTpw");
    // Unchanged input is passed through byte for byte.
    let as_is = "{ \"auths\": {\"r.io\": {\"auth\": \"dTpw\"}} }";
    let v = run(
        &plain,
        sec(secret_type::DOCKER_CONFIG_JSON, None),
        &secret(as_is),
    )
    .expect("as is");
    assert_eq!(
        v.get(".dockerconfigjson").and_then(|v| v.as_str()),
        Some(as_is)
    );
}

#[test]
fn transforms_apply_to_secrets_before_formatting() {
    let spec = ObjectSpec::new("s", ObjectType::Secret)
        .transforms(vec![Transform::Base64Decode, Transform::Trim]);
    let value = base64::engine::general_purpose::STANDARD.encode("  u:p \n");
    let v = run(&spec, sec(secret_type::BASIC_AUTH, None), &secret(&value)).expect("ok");
    assert_eq!(v.get("password").and_then(|v| v.as_str()), Some("p"));
    // Multi-key objects ignore transforms, as upstream.
    let mk = ObjectSpec::new("s", ObjectType::MultiKeyValueSecret)
        .content_type(CONTENT_TYPE_YAML)
        .transforms(vec![Transform::Base64Decode]);
    assert_eq!(keys(run(&mk, sec("", None), &secret("a: b\n"))), ["a"]);
}

#[test]
fn tls_outputs_order_the_chain_and_can_add_ca_crt() {
    let c = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("chain");
    let spec = ObjectSpec::new("some-secret", ObjectType::Certificate);
    let root_first = cert_material(
        &c,
        Some(c.pem_bundle(&[
            PemPart::Root,
            PemPart::Intermediate,
            PemPart::Leaf,
            PemPart::Key,
        ])),
        true,
    );
    let opts = FormatOptions {
        ca_crt: true,
        private_key: KeyFormat::Pkcs8,
    };
    let v = format(&spec, &sec(secret_type::TLS, None), &root_first, &opts).expect("tls");
    assert_eq!(v.keys(), ["ca.crt", "tls.crt", "tls.key"]);
    let crt = c
        .certs_leaf_first()
        .iter()
        .map(|c| lf(&c.pem()))
        .collect::<String>();
    assert_eq!(
        v.get("tls.crt").and_then(|v| v.as_str()),
        Some(crt.as_str())
    );
    assert_eq!(
        v.get("ca.crt").and_then(|v| v.as_str()),
        Some(lf(&c.root().pem()).as_str())
    );
    assert!(
        v.get("tls.key")
            .and_then(|v| v.as_str())
            .is_some_and(|k| k.starts_with("-----BEGIN PRIVATE KEY-----"))
    );
}

#[test]
fn non_exportable_certificates_fail_naming_exportability() {
    let c = chain();
    let spec = ObjectSpec::new("locked", ObjectType::Certificate);
    let m = cert_material(&c, Some(c.pem_bundle(&[PemPart::Leaf])), false);
    let e = run(&spec, sec(secret_type::TLS, None), &m).expect_err("locked");
    assert!(e.to_string().contains("not exportable"), "{e}");
    let e = run(&spec, Target::Env { query: "tls.key" }, &m).expect_err("locked env");
    assert!(matches!(e, Error::NotExportable { .. }));
    // The public part is still available.
    assert!(
        run(
            &spec,
            Target::ConfigMap {
                data_key: Some("crt")
            },
            &m
        )
        .is_ok()
    );
}

#[test]
fn env_queries_resolve_as_the_launcher_needs() {
    let c = chain();
    let cert_spec = ObjectSpec::new("some-secret", ObjectType::Certificate);
    let m = cert_material(&c, Some(c.pem_bundle(&PemPart::KEY_VAULT_ORDER)), true);
    let one = |spec: &ObjectSpec, q: &str, m: &Material| {
        run(spec, Target::Env { query: q }, m)
            .expect("env")
            .into_single()
            .expect("one value")
    };
    assert!(
        one(&cert_spec, "tls.key", &m)
            .as_str()
            .is_some_and(|k| k.starts_with("-----BEGIN RSA PRIVATE KEY-----"))
    );
    assert_eq!(one(&cert_spec, "raw", &m).as_bytes(), c.leaf().der());
    assert_eq!(
        one(&cert_spec, "tls.crt", &m).as_str(),
        Some(lf(&c.leaf().pem()).as_str())
    );
    assert_eq!(
        one(&cert_spec, "", &m).as_str(),
        Some(lf(&c.leaf().pem()).as_str())
    );

    let plain = ObjectSpec::new("s", ObjectType::Secret);
    assert_eq!(one(&plain, "", &secret("u:p")).as_str(), Some("u:p"));
    assert_eq!(one(&plain, "username", &secret("u:p")).as_str(), Some("u"));
    assert_eq!(one(&plain, "password", &secret("u:p")).as_str(), Some("p"));
    let e = run(&plain, Target::Env { query: "nope" }, &secret("u:p")).expect_err("query");
    assert!(e.to_string().contains("'nope'"), "{e}");

    let mk = ObjectSpec::new("mk", ObjectType::MultiKeyValueSecret).content_type(CONTENT_TYPE_YAML);
    assert_eq!(one(&mk, "a", &secret("a: b\n")).as_str(), Some("b"));
    let e = run(&mk, Target::Env { query: "zz" }, &secret("a: b\n")).expect_err("missing");
    assert!(e.to_string().contains("key 'zz' not found"), "{e}");
}

#[test]
fn keys_become_pem_public_keys_and_certificates_work_in_config_maps() {
    let spec = ObjectSpec::new("k", ObjectType::Key);
    let m = Material::Key(KeyObject {
        name: "k".into(),
        version: "v".into(),
        jwk: JsonWebKey {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(vec![1; 32]),
            y: Some(vec![2; 32]),
            ..Default::default()
        },
    });
    let v = run(&spec, sec("", Some("pub")), &m).expect("key");
    assert!(
        v.get("pub")
            .and_then(|v| v.as_str())
            .is_some_and(|p| p.starts_with("-----BEGIN PUBLIC KEY-----"))
    );
    assert!(matches!(
        run(&spec, sec("", None), &m),
        Err(Error::NoDataKey { .. })
    ));
    // Upstream crashed on certificate → ConfigMap.
    let c = chain();
    let cm = run(
        &ObjectSpec::new("c", ObjectType::Certificate),
        Target::ConfigMap {
            data_key: Some("ca"),
        },
        &cert_material(&c, None, true),
    )
    .expect("configmap");
    assert_eq!(
        cm.get("ca").and_then(|v| v.as_str()),
        Some(lf(&c.leaf().pem()).as_str())
    );
}

#[test]
fn mismatched_material_and_unknown_types_are_errors() {
    let spec = ObjectSpec::new("k", ObjectType::Key);
    assert!(matches!(
        run(&spec, sec("", Some("a")), &secret("x")),
        Err(Error::WrongMaterial { .. })
    ));
    assert!(ObjectType::parse("blob").is_err());
    assert_eq!(
        ObjectType::parse("multi-key-value-secret").expect("mk"),
        ObjectType::MultiKeyValueSecret
    );
}

#[test]
fn values_debug_lists_keys_only() {
    let plain = ObjectSpec::new("s", ObjectType::Secret);
    let v = run(
        &plain,
        sec(secret_type::BASIC_AUTH, None),
        &secret("alice:hunter2"),
    )
    .expect("ok");
    let dbg = format!("{v:?}");
    assert!(!dbg.contains("hunter2") && !dbg.contains("alice"), "{dbg}");
    assert!(dbg.contains("username"), "{dbg}");
}

#[test]
fn backing_secret_needs_follow_the_output() {
    let cert = ObjectSpec::new("c", ObjectType::Certificate);
    assert!(needs_backing_secret(&cert, &sec(secret_type::TLS, None)));
    assert!(needs_backing_secret(
        &cert,
        &sec(secret_type::OPAQUE, Some("k"))
    ));
    assert!(!needs_backing_secret(&cert, &sec("", Some("k"))));
    assert!(needs_backing_secret(
        &cert,
        &Target::Env { query: "tls.key" }
    ));
    assert!(!needs_backing_secret(&cert, &Target::Env { query: "raw" }));
    assert!(!needs_backing_secret(
        &ObjectSpec::new("s", ObjectType::Secret),
        &sec(secret_type::TLS, None)
    ));
}

/// testkit writes PEM with CRLF; we write LF, as Go's `pem.Encode`.
fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}
