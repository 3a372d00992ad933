//! The Azure implementation against the fake, and the formatting of what it reads.

use std::time::{Duration, SystemTime};

use akv_client::cert::KeyFormat;
use akv_client::format::{
    FormatOptions, ObjectSpec, ObjectType, Target, fetch, format, secret_type,
};
use akv_client::{Error, ObjectKind, ObjectRef, VaultObject};
use testkit::certs::{CertChain, KeyKind, PemPart, PfxEncryption};
use testkit::faults::Fault;
use testkit::vault::{CertificateFormat, CertificateSpec, KeySpec, SecretSpec};

use crate::support::{VAULT, World};

fn lf(s: &str) -> String {
    s.replace("\r\n", "\n")
}

#[tokio::test]
async fn secrets_latest_pinned_and_expired_are_read_with_one_challenge() {
    let w = World::start().await;
    let v1 =
        w.kv.set_secret(VAULT, "db", SecretSpec::new("first"))
            .expect("seed");
    w.kv.set_secret(
        VAULT,
        "db",
        SecretSpec::new("second").expires(SystemTime::now() - Duration::from_secs(60)),
    )
    .expect("seed");
    let kv = w.vault();
    let latest = kv
        .get(&ObjectRef::latest(&w.url(), ObjectKind::Secret, "db"))
        .await
        .expect("latest");
    let VaultObject::Secret(s) = &latest else {
        panic!("secret")
    };
    assert_eq!(
        s.value.as_str(),
        Some("second"),
        "expired secrets are returned"
    );
    assert!(s.expires.is_some());
    let pinned = kv
        .get(&ObjectRef::latest(&w.url(), ObjectKind::Secret, "db").at(Some(&v1)))
        .await
        .expect("pinned");
    assert_eq!(pinned.version(), v1);
    let c = w.kv.log().counts();
    assert_eq!((c.challenges, c.authorized), (1, 2), "one client, reused");
}

#[tokio::test]
async fn deleted_and_disabled_objects_surface_404_and_403() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "off", SecretSpec::new("x").enabled(false))
        .expect("seed");
    let kv = w.vault();
    let e = kv
        .get(&ObjectRef::latest(&w.url(), ObjectKind::Secret, "gone"))
        .await
        .expect_err("404");
    assert_eq!(
        (e.status(), e.code(), e.kind()),
        (Some(404), Some("SecretNotFound"), "not_found")
    );
    assert!(!e.is_retryable());
    let e = kv
        .get(&ObjectRef::latest(&w.url(), ObjectKind::Secret, "off"))
        .await
        .expect_err("403");
    assert_eq!((e.status(), e.kind()), (Some(403), "forbidden"));
}

#[tokio::test]
async fn certificates_of_every_format_give_tls_output_leaf_first() {
    let w = World::start().await;
    let cases = [
        (
            "modern",
            KeyKind::Rsa2048,
            CertificateFormat::Pfx(PfxEncryption::Modern),
        ),
        (
            "legacy3des",
            KeyKind::EcdsaP256,
            CertificateFormat::Pfx(PfxEncryption::Legacy3Des),
        ),
        (
            "legacyrc2",
            KeyKind::Rsa2048,
            CertificateFormat::Pfx(PfxEncryption::LegacyRc2),
        ),
        (
            "pemrootfirst",
            KeyKind::EcdsaP384,
            CertificateFormat::Pem(vec![
                PemPart::Root,
                PemPart::Intermediate,
                PemPart::Leaf,
                PemPart::Key,
            ]),
        ),
    ];
    let kv = w.vault();
    for (name, kind, fmt) in cases {
        let chain = CertChain::builder(kind).build().expect("chain");
        w.kv.import_certificate(VAULT, name, CertificateSpec::from_chain(&chain, fmt))
            .expect("import");
        let spec = ObjectSpec::new(name, ObjectType::Certificate);
        let target = Target::Secret {
            secret_type: secret_type::TLS,
            data_key: None,
        };
        let material = fetch(kv.as_ref(), &w.url(), &spec, None, &target)
            .await
            .expect("fetch");
        let opts = FormatOptions {
            private_key: KeyFormat::Pkcs8,
            ca_crt: false,
        };
        let v = format(&spec, &target, &material, &opts).expect("format");
        let crt: String = chain
            .certs_leaf_first()
            .iter()
            .map(|c| lf(&c.pem()))
            .collect();
        assert_eq!(
            v.get("tls.crt").and_then(|v| v.as_str()),
            Some(crt.as_str()),
            "{name}"
        );
        assert_eq!(
            v.get("tls.key").and_then(|v| v.as_str()),
            Some(lf(&chain.leaf_key().pkcs8_pem()).as_str()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn non_exportable_certificates_are_refused_before_reading_the_secret() {
    let w = World::start().await;
    let chain = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("chain");
    w.kv.import_certificate(
        VAULT,
        "locked",
        CertificateSpec::from_chain(&chain, CertificateFormat::Pfx(PfxEncryption::Modern))
            .exportable(false),
    )
    .expect("import");
    let kv = w.vault();
    let spec = ObjectSpec::new("locked", ObjectType::Certificate);
    let tls = Target::Secret {
        secret_type: secret_type::TLS,
        data_key: None,
    };
    let e = fetch(kv.as_ref(), &w.url(), &spec, None, &tls)
        .await
        .expect_err("locked");
    assert!(matches!(e, Error::NotExportable { .. }), "{e}");
    // The public certificate still works.
    let cm = Target::ConfigMap {
        data_key: Some("crt"),
    };
    let m = fetch(kv.as_ref(), &w.url(), &spec, None, &cm)
        .await
        .expect("public");
    let v = format(&spec, &cm, &m, &FormatOptions::default()).expect("format");
    assert_eq!(
        v.get("crt").and_then(|v| v.as_str()),
        Some(lf(&chain.leaf().pem()).as_str())
    );
}

#[tokio::test]
async fn rsa_and_ec_keys_become_pem_public_keys() {
    let w = World::start().await;
    w.kv.create_key(VAULT, "rsa", KeySpec::Rsa).expect("key");
    w.kv.create_key(VAULT, "ec", KeySpec::EcP256).expect("key");
    let kv = w.vault();
    for name in ["rsa", "ec"] {
        let spec = ObjectSpec::new(name, ObjectType::Key);
        let target = Target::Env { query: "" };
        let m = fetch(kv.as_ref(), &w.url(), &spec, None, &target)
            .await
            .expect("fetch");
        let pem = format(&spec, &target, &m, &FormatOptions::default())
            .expect("format")
            .into_single()
            .expect("value");
        let text = pem.as_str().expect("text");
        let parsed = pem::parse(text).expect("pem");
        assert_eq!(parsed.tag(), "PUBLIC KEY");
        // x509-parser reads it as a SubjectPublicKeyInfo.
        use x509_parser::prelude::FromDer as _;
        let (rest, _) =
            x509_parser::x509::SubjectPublicKeyInfo::from_der(parsed.contents()).expect("spki");
        assert!(rest.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn throttling_is_waited_out_by_the_read_plane() {
    use akv_client::cache::{ReadConfig, ReadPlane};
    use akv_client::{IdentityRef, KeyVaultProvider};
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    w.kv.faults().inject(
        Fault::throttle(Duration::from_secs(1))
            .authenticated_only()
            .times(1),
    );
    let plane = ReadPlane::new(w.provider(), ReadConfig::default(), None).expect("plane");
    let kv = plane
        .vault(&w.url(), &IdentityRef::default_identity())
        .expect("vault");
    let started = std::time::Instant::now();
    kv.get(&ObjectRef::latest(&w.url(), ObjectKind::Secret, "a"))
        .await
        .expect("after retry");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let c = w.kv.log().counts();
    assert_eq!((c.faulted, c.authorized), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_on_a_fresh_client_pay_one_challenge() {
    let w = World::start().await;
    for i in 0..20 {
        w.kv.set_secret(VAULT, &format!("s{i}"), SecretSpec::new("v"))
            .expect("seed");
    }
    // Every request (challenges included) takes a while, so the callers really overlap.
    w.kv.faults()
        .inject(Fault::latency(Duration::from_millis(50)));
    let kv = w.vault();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (kv, o) = (
                kv.clone(),
                ObjectRef::latest(&w.url(), ObjectKind::Secret, &format!("s{i}")),
            );
            tokio::spawn(async move { kv.get(&o).await })
        })
        .collect();
    for t in tasks {
        t.await.expect("task").expect("read");
    }
    let c = w.kv.log().counts();
    assert_eq!(
        (c.challenges, c.authorized),
        (1, 20),
        "the first request primed the client for the other 19"
    );
}

#[tokio::test]
async fn an_untrusted_server_certificate_is_reported_at_once_as_tls() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    // akv-auth's builder, trusting some other CA only: the fake's certificate does not verify.
    let other_ca = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("chain")
        .root()
        .pem();
    let provider = w.provider_with(
        akv_auth::HttpOptions::default()
            .trust_only(other_ca)
            .resolve(w.kv.resolve_overrides()),
    );
    let kv = akv_client::KeyVaultProvider::vault(
        provider.as_ref(),
        &w.url(),
        &akv_client::IdentityRef::default_identity(),
    )
    .expect("vault");
    let started = std::time::Instant::now();
    for _ in 0..2 {
        let e = kv
            .get(&ObjectRef::latest(&w.url(), ObjectKind::Secret, "a"))
            .await
            .expect_err("untrusted");
        assert_eq!(e.kind(), "tls", "{e}");
        assert!(!e.is_retryable());
        let chain = std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(": ");
        assert!(chain.contains("TLS handshake with"), "{chain}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not retried: {:?}",
        started.elapsed()
    );
    assert_eq!(w.kv.log().counts().total, 0, "no request reached the fake");
}

#[tokio::test]
async fn a_malformed_extra_root_is_a_transport_error() {
    let w = World::start().await;
    let cred = std::sync::Arc::new(crate::support::EntraStandIn::new(&w));
    let e = akv_client::azure::AzureKeyVaults::new(akv_client::azure::AzureOptions::single(
        cred,
        akv_auth::HttpOptions::default()
            .trust_only("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
    ))
    .expect_err("bad root");
    assert_eq!(e.kind(), "build_transport");
    let source = std::error::Error::source(&e).expect("source").to_string();
    assert!(source.contains("extra_roots_pem"), "{source}");
}

#[tokio::test]
async fn list_pages_through_every_kind_with_names_and_attributes() {
    let w = World::start().await;
    // More than one page (Key Vault pages at 25 or fewer).
    for i in 0..30 {
        let spec = SecretSpec::new(format!("v{i}"));
        let spec = match i {
            0 => spec.content_type("application/json"),
            1 => spec.enabled(false),
            _ => spec,
        };
        w.kv.set_secret(VAULT, &format!("s{i:02}"), spec)
            .expect("seed");
    }
    let chain = CertChain::builder(KeyKind::Rsa2048).build().expect("chain");
    w.kv.import_certificate(
        VAULT,
        "web",
        CertificateSpec::from_chain(&chain, CertificateFormat::Pfx(PfxEncryption::Modern)),
    )
    .expect("import");
    w.kv.create_key(VAULT, "signing", KeySpec::Rsa)
        .expect("key");
    let kv = w.vault();

    let secrets = kv.list(&w.url(), ObjectKind::Secret).await.expect("list");
    let names: Vec<&str> = secrets.iter().map(|m| m.name.as_str()).collect();
    for i in 0..30 {
        assert!(names.contains(&format!("s{i:02}").as_str()), "{names:?}");
    }
    let s0 = secrets.iter().find(|m| m.name == "s00").expect("s00");
    assert_eq!(s0.kind, ObjectKind::Secret);
    assert_eq!(s0.content_type.as_deref(), Some("application/json"));
    assert_eq!(s0.enabled, Some(true));
    assert!(s0.updated.is_some());
    let s1 = secrets.iter().find(|m| m.name == "s01").expect("s01");
    assert_eq!(s1.enabled, Some(false));

    let certificates = kv
        .list(&w.url(), ObjectKind::Certificate)
        .await
        .expect("list");
    assert_eq!(
        certificates
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        ["web"]
    );
    assert_eq!(certificates[0].kind, ObjectKind::Certificate);
    // A certificate's managed key and backing secret are listed too, as Key Vault does.
    assert!(names.contains(&"web"), "{names:?}");
    assert_eq!(secrets.len(), 31);
    let keys = kv.list(&w.url(), ObjectKind::Key).await.expect("list");
    assert_eq!(
        keys.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["signing", "web"]
    );
    assert_eq!(keys[0].enabled, Some(true));

    // Another vault through this reader is refused by name.
    let other = akv_client::VaultUrl::from_name("other", "").expect("url");
    let err = kv
        .list(&other, ObjectKind::Secret)
        .await
        .expect_err("other vault");
    assert!(err.to_string().contains("other"), "{err}");
}
