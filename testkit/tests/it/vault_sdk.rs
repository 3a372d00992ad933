//! The Key Vault fake driven by the official Azure SDK for Rust clients, with production URLs,
//! through the resolve override and the testkit CA.

use std::sync::Arc;

use azure_core::error::ErrorKind;
use azure_core::http::{ExponentialRetryOptions, RequestContent, RetryOptions};
use azure_core::time::Duration as AzDuration;
use azure_security_keyvault_secrets::models::{SecretClientGetSecretOptions, SetSecretParameters};
use base64::Engine as _;
use futures::TryStreamExt as _;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use testkit::certs::{CertChain, KeyKind, PfxEncryption};
use testkit::cloud::Cloud;
use testkit::faults::{Fault, Outcome};
use testkit::token::Principal;
use testkit::vault::{
    CertificateFormat, CertificateSpec, KeySpec, ObjectKind, Permissions, SecretSpec, VaultSpec,
};

use crate::support::{EntraStandIn, VAULT, World, no_retry};

fn http_error(err: &azure_core::Error) -> (u16, Option<String>) {
    match err.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => (u16::from(*status), error_code.clone()),
        other => panic!("expected an HTTP error, got {other:?}"),
    }
}

#[tokio::test]
async fn secret_client_reads_latest_and_pinned_versions_after_one_challenge() {
    let w = World::start().await;
    let v1 =
        w.kv.set_secret(VAULT, "db-pass", SecretSpec::new("first"))
            .expect("seed");
    w.kv.set_secret(
        VAULT,
        "db-pass",
        SecretSpec::new("second").content_type("text/plain"),
    )
    .expect("seed");
    let client = w.secrets(no_retry());

    let latest = client
        .get_secret("db-pass", None)
        .await
        .expect("get")
        .into_model()
        .expect("model");
    assert_eq!(latest.value.as_deref(), Some("second"));
    assert_eq!(latest.content_type.as_deref(), Some("text/plain"));

    let opts = SecretClientGetSecretOptions {
        secret_version: Some(v1.clone()),
        ..Default::default()
    };
    let pinned = client
        .get_secret("db-pass", Some(opts))
        .await
        .expect("get v1")
        .into_model()
        .expect("model");
    assert_eq!(pinned.value.as_deref(), Some("first"));
    assert_eq!(
        pinned.id.as_deref(),
        Some(format!("https://accvault.vault.azure.net/secrets/db-pass/{v1}").as_str())
    );

    let counts = w.kv.log().counts();
    assert_eq!(
        (counts.challenges, counts.authorized),
        (1, 2),
        "one challenge per client, then tokens"
    );
    let records = w.kv.log().records();
    assert_eq!(records[0].outcome, Outcome::Challenge);
    assert_eq!(
        records[1].path, "/secrets/db-pass/",
        "the SDK's trailing slash for the latest version"
    );
    assert_eq!(records[2].path, format!("/secrets/db-pass/{v1}"));
    assert!(
        records[1].query.contains("api-version=2025-07-01"),
        "{}",
        records[1].query
    );
    assert!(
        records[1]
            .user_agent
            .as_deref()
            .unwrap_or_default()
            .starts_with("azsdk-rust-security_keyvault_secrets/"),
        "{:?}",
        records[1].user_agent
    );
    assert_eq!(
        records[1].principal.as_deref(),
        Some(w.app.object_id.as_str())
    );
}

#[tokio::test]
async fn every_client_instance_pays_its_own_challenge() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    let cred = w.credential();
    for _ in 0..3 {
        let client = w.secrets_as(
            "https://accvault.vault.azure.net/",
            cred.clone(),
            no_retry(),
        );
        client.get_secret("a", None).await.expect("get");
    }
    let counts = w.kv.log().counts();
    assert_eq!((counts.challenges, counts.authorized), (3, 3));
    assert_eq!(cred.calls(), 3, "each client asks its credential once");
    assert_eq!(
        cred.scopes.lock().expect("scopes")[0],
        "https://vault.azure.net/.default"
    );
}

#[tokio::test]
async fn listing_follows_next_links_in_pages_of_at_most_twenty_five() {
    let w = World::start().await;
    for i in 0..60 {
        w.kv.set_secret(VAULT, &format!("s{i:02}"), SecretSpec::new("v"))
            .expect("seed");
    }
    for i in 0..5 {
        w.kv.set_secret(VAULT, "rotated", SecretSpec::new(format!("v{i}")))
            .expect("seed");
    }
    let client = w.secrets(no_retry());

    let all: Vec<_> = client
        .list_secret_properties(None)
        .expect("pager")
        .try_collect()
        .await
        .expect("list");
    assert_eq!(all.len(), 61);
    assert!(
        all.iter()
            .all(|p| p.id.as_deref().is_some_and(|id| !id.ends_with('/')))
    );
    let pages =
        w.kv.log()
            .filter(|r| r.path == "/secrets" && r.outcome == Outcome::Authorized);
    assert_eq!(pages.len(), 3, "25 + 25 + 11");
    assert!(pages[1].query.contains("skiptoken"), "{}", pages[1].query);

    let opts =
        azure_security_keyvault_secrets::models::SecretClientListSecretPropertiesVersionsOptions {
            maxresults: Some(2),
            ..Default::default()
        };
    let versions: Vec<_> = client
        .list_secret_properties_versions("rotated", Some(opts))
        .expect("pager")
        .try_collect()
        .await
        .expect("versions");
    assert_eq!(versions.len(), 5);
    let expected =
        w.kv.versions(VAULT, ObjectKind::Secret, "rotated")
            .expect("versions");
    let ids: Vec<String> = versions.iter().filter_map(|v| v.id.clone()).collect();
    assert!(
        ids.iter()
            .zip(&expected)
            .all(|(id, v)| id.ends_with(v.as_str())),
        "{ids:?}"
    );
    assert_eq!(
        w.kv.log()
            .filter(|r| r.path == "/secrets/rotated/versions")
            .len(),
        3,
        "2 + 2 + 1"
    );
}

#[tokio::test]
async fn certificates_come_with_cer_x5t_policy_and_a_backing_secret() {
    let w = World::start().await;
    let chain = CertChain::builder(KeyKind::Rsa2048)
        .common_name("app.example.com")
        .build()
        .expect("chain");
    let version =
        w.kv.import_certificate(
            VAULT,
            "tls",
            CertificateSpec::from_chain(&chain, CertificateFormat::Pfx(PfxEncryption::Modern)),
        )
        .expect("import");
    let locked = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("chain");
    w.kv.import_certificate(
        VAULT,
        "locked",
        CertificateSpec::from_chain(&locked, CertificateFormat::Pfx(PfxEncryption::Modern))
            .exportable(false),
    )
    .expect("import");

    let certs = w.certificates();
    let cert = certs
        .get_certificate("tls", None)
        .await
        .expect("get")
        .into_model()
        .expect("model");
    assert_eq!(cert.cer.as_deref(), Some(chain.leaf().der()));
    assert_eq!(
        cert.x509_thumbprint.as_deref(),
        Some(chain.leaf().sha1_thumbprint().as_slice())
    );
    assert_eq!(
        cert.sid.as_deref(),
        Some(format!("https://accvault.vault.azure.net/secrets/tls/{version}").as_str())
    );
    assert_eq!(
        cert.kid.as_deref(),
        Some(format!("https://accvault.vault.azure.net/keys/tls/{version}").as_str())
    );
    let policy = cert.policy.expect("policy");
    let key_props = policy.key_properties.expect("key_props");
    assert_eq!(key_props.exportable, Some(true));
    assert_eq!(key_props.key_size, Some(2048));
    assert_eq!(
        policy
            .secret_properties
            .and_then(|s| s.content_type)
            .as_deref(),
        Some("application/x-pkcs12")
    );

    // The private key comes from the secret of the same name.
    let secrets = w.secrets(no_retry());
    let backing = secrets
        .get_secret("tls", None)
        .await
        .expect("secret")
        .into_model()
        .expect("model");
    assert_eq!(
        backing.content_type.as_deref(),
        Some("application/x-pkcs12")
    );
    let pfx = base64::engine::general_purpose::STANDARD
        .decode(backing.value.expect("value"))
        .expect("base64");
    let store = KeyStore::from_pkcs12(&pfx, "", Pkcs12ImportPolicy::Relaxed).expect("PFX");
    let (_, key_chain) = store.private_key_chain().expect("private key");
    assert_eq!(key_chain.key().as_der(), chain.leaf_key().pkcs8_der());
    assert_eq!(key_chain.certs().len(), 3);

    let locked_cert = certs
        .get_certificate("locked", None)
        .await
        .expect("get")
        .into_model()
        .expect("model");
    assert_eq!(
        locked_cert
            .policy
            .and_then(|p| p.key_properties)
            .and_then(|k| k.exportable),
        Some(false)
    );
    let locked_secret = secrets
        .get_secret("locked", None)
        .await
        .expect("secret")
        .into_model()
        .expect("model");
    let pfx = base64::engine::general_purpose::STANDARD
        .decode(locked_secret.value.expect("value"))
        .expect("base64");
    let store = KeyStore::from_pkcs12(&pfx, "", Pkcs12ImportPolicy::Relaxed).expect("PFX");
    assert!(
        store.private_key_chain().is_none(),
        "a non-exportable certificate's secret holds no key"
    );
}

#[tokio::test]
async fn keys_come_as_rsa_and_ec_jwks() {
    let w = World::start().await;
    w.kv.create_key(VAULT, "rsa", KeySpec::Rsa).expect("key");
    w.kv.create_key(VAULT, "ec", KeySpec::EcP256).expect("key");
    let keys = w.keys();

    let rsa = keys
        .get_key("rsa", None)
        .await
        .expect("get")
        .into_model()
        .expect("model")
        .key
        .expect("jwk");
    assert_eq!(rsa.kty.map(|k| k.to_string()).as_deref(), Some("RSA"));
    assert_eq!(
        rsa.n.expect("n").len(),
        256,
        "2048-bit modulus without a leading zero"
    );
    assert_eq!(rsa.e.as_deref(), Some(&[1u8, 0, 1][..]));

    let ec = keys
        .get_key("ec", None)
        .await
        .expect("get")
        .into_model()
        .expect("model")
        .key
        .expect("jwk");
    assert_eq!(ec.kty.map(|k| k.to_string()).as_deref(), Some("EC"));
    assert_eq!(ec.crv.map(|c| c.to_string()).as_deref(), Some("P-256"));
    assert_eq!((ec.x.expect("x").len(), ec.y.expect("y").len()), (32, 32));
    assert!(ec.d.is_none(), "private material never leaves Key Vault");

    let missing = keys.get_key("nope", None).await.expect_err("missing key");
    assert_eq!(http_error(&missing), (404, Some("KeyNotFound".into())));
}

#[tokio::test]
async fn not_found_forbidden_and_disabled_surface_their_codes() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "off", SecretSpec::new("x").enabled(false))
        .expect("seed");
    let client = w.secrets(no_retry());
    let err = client.get_secret("missing", None).await.expect_err("404");
    assert_eq!(http_error(&err), (404, Some("SecretNotFound".into())));
    let err = client.get_secret("off", None).await.expect_err("disabled");
    assert_eq!(http_error(&err), (403, Some("Forbidden".into())));

    // A principal the vault does not know is refused, whatever the object.
    let stranger = EntraStandIn::new(w.kv.issuer().clone(), Principal::new("stranger"));
    let client = w.secrets_as("https://accvault.vault.azure.net/", stranger, no_retry());
    let err = client.get_secret("missing", None).await.expect_err("403");
    assert_eq!(http_error(&err), (403, Some("Forbidden".into())));

    let certs = w.certificates();
    let err = certs
        .get_certificate("missing", None)
        .await
        .expect_err("404");
    assert_eq!(http_error(&err), (404, Some("CertificateNotFound".into())));
}

#[tokio::test]
async fn throttled_requests_are_retried_after_retry_after() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    w.kv.faults().inject(
        Fault::throttle(std::time::Duration::from_secs(1))
            .authenticated_only()
            .times(1),
    );
    let retry = RetryOptions::exponential(ExponentialRetryOptions {
        initial_delay: AzDuration::milliseconds(10),
        max_retries: 3,
        max_total_elapsed: AzDuration::seconds(30),
        max_delay: AzDuration::milliseconds(100),
    });
    let client = w.secrets(retry);
    let secret = client
        .get_secret("a", None)
        .await
        .expect("retried")
        .into_model()
        .expect("model");
    assert_eq!(secret.value.as_deref(), Some("x"));

    let records = w.kv.log().records();
    let outcomes: Vec<Outcome> = records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Challenge, Outcome::Faulted, Outcome::Authorized]
    );
    assert_eq!(records[1].status, 429);
    let waited = records[2]
        .at
        .duration_since(records[1].at)
        .expect("ordered");
    assert!(
        waited >= std::time::Duration::from_secs(1),
        "retried after {waited:?}, before Retry-After"
    );
}

#[tokio::test]
async fn a_public_cloud_token_is_refused_by_a_china_cloud_vault() {
    let w = World::start().await;
    w.kv.create_vault(
        VaultSpec::new("cnvault")
            .cloud(Cloud::CHINA)
            .grant(&w.app, Permissions::read_all()),
    )
    .expect("vault");
    w.kv.set_secret("cnvault", "a", SecretSpec::new("x"))
        .expect("seed");

    // A correct credential follows the challenge to the China audience.
    let good = w.credential();
    let client = w.secrets_as("https://cnvault.vault.azure.cn/", good.clone(), no_retry());
    client
        .get_secret("a", None)
        .await
        .expect("china token accepted");
    assert_eq!(
        good.scopes.lock().expect("scopes").as_slice(),
        ["https://vault.azure.cn/.default"]
    );

    // A misconfigured one that always asks for the public cloud is refused.
    let mut bad = EntraStandIn::new(w.kv.issuer().clone(), w.app.clone());
    Arc::get_mut(&mut bad).expect("unique").audience_override =
        Some("https://vault.azure.net".into());
    let client = w.secrets_as("https://cnvault.vault.azure.cn/", bad, no_retry());
    let err = client
        .get_secret("a", None)
        .await
        .expect_err("wrong audience");
    assert_eq!(http_error(&err).0, 401);
    assert_eq!(w.kv.log().counts().rejected_tokens, 1);
}

#[tokio::test]
async fn set_secret_adds_a_version_the_next_get_returns() {
    let w = World::start().await;
    let client = w.secrets(no_retry());
    let params = SetSecretParameters {
        value: Some("seeded".into()),
        ..Default::default()
    };
    let set = client
        .set_secret(
            "new-one",
            RequestContent::try_from(params).expect("body"),
            None,
        )
        .await
        .expect("set")
        .into_model()
        .expect("model");
    let got = client
        .get_secret("new-one", None)
        .await
        .expect("get")
        .into_model()
        .expect("model");
    assert_eq!(got.value.as_deref(), Some("seeded"));
    assert_eq!(got.id, set.id);
    assert_eq!(
        w.kv.versions(VAULT, ObjectKind::Secret, "new-one")
            .expect("versions")
            .len(),
        1
    );
}
