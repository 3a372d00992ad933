//! Providers that talk to Entra ID: client secret, client certificate (PFX and PEM), username/
//! password, workload identity; error classification, refresh, cloud mismatch.

use std::sync::Arc;
use std::time::Duration;

use akv_auth::{
    CertificateSource, ClientCertificateCredential, ClientCertificateOptions,
    ClientSecretCredential, ClientSecretOptions, CloudEnvironment, Error, HttpOptions,
    UsernamePasswordCredential, UsernamePasswordOptions, WorkloadIdentityCredential,
    WorkloadIdentityOptions,
};
use azure_core::credentials::{Secret, TokenCredential};
use testkit::certs::{CertChain, KeyKind, PemPart, PfxEncryption, RsaFixtureKey};
use testkit::clock::Clock;
use testkit::entra::{ClientSpec, FederatedCredential, TOKEN_EXCHANGE_AUDIENCE, UserSpec};
use testkit::token::{Principal, peek_claims};
use testkit::vault::Permissions;

use crate::support::{ACCVAULT_URL, CHINAVAULT_URL, SCOPE, VAULT, World, error_text};

fn secret_credential(w: &World, app: &Principal, secret: &str) -> Arc<ClientSecretCredential> {
    ClientSecretCredential::new(ClientSecretOptions {
        tenant_id: app.tenant_id.clone(),
        client_id: app.app_id.clone(),
        secret: Secret::new(secret.to_owned()),
        common: w.common(),
    })
    .expect("credential")
}

#[tokio::test]
async fn client_secret_reads_a_secret_through_the_sdk_and_caches_the_token() {
    let w = World::start().await;
    let app = Principal::new("controller");
    w.grant(&app);
    w.entra.add_client(ClientSpec::new(&app).secret("right"));
    let cred = secret_credential(&w, &app, "right");
    let value = w
        .read_secret(ACCVAULT_URL, cred.clone(), "db-pass")
        .await
        .expect("read");
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    w.read_secret(ACCVAULT_URL, cred, "db-pass")
        .await
        .expect("read again");
    assert_eq!(w.entra.log().counts().total, 1, "one token request");
}

#[tokio::test]
async fn real_shaped_entra_error_bodies_are_reported_with_their_aadsts_code() {
    let w = World::start().await;
    let app = Principal::new("controller");
    w.entra.add_client(ClientSpec::new(&app).secret("right"));
    let wrong = secret_credential(&w, &app, "wrong-value-xyz");
    assert!(!format!("{wrong:?}").contains("wrong-value-xyz"));
    let err = wrong
        .get_token(&[SCOPE], None)
        .await
        .expect_err("wrong secret");
    let ours = Error::find(&err).expect("our error in the chain");
    assert_eq!(ours.aadsts(), Some(7_000_215));
    assert_eq!(ours.kind(), "identity");
    assert!(!ours.is_retryable());
    let text = error_text(&err);
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(text.contains("use the secret's value"), "{text}");
    assert!(!text.contains("wrong-value-xyz"), "{text}");
    assert!(!format!("{err:?}").contains("wrong-value-xyz"));

    // Unknown client in the tenant.
    let stranger = Principal::new("stranger");
    let err = secret_credential(&w, &stranger, "x")
        .get_token(&[SCOPE], None)
        .await
        .expect_err("unknown client");
    assert_eq!(Error::find(&err).and_then(Error::aadsts), Some(700_016));
}

#[tokio::test(start_paused = true)]
async fn the_token_endpoint_sees_a_second_request_once_the_token_is_in_its_refresh_window() {
    // Entra hands out 4-minute tokens: our cache refreshes after half their lifetime.
    let w = World::with(Clock::manual(), Some(Duration::from_secs(240))).await;
    let app = Principal::new("controller");
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let cred = secret_credential(&w, &app, "s");
    let first = cred.get_token(&[SCOPE], None).await.expect("token");
    cred.get_token(&[SCOPE], None).await.expect("cached");
    assert_eq!(w.entra.log().counts().total, 1);
    tokio::time::advance(Duration::from_secs(110)).await;
    cred.get_token(&[SCOPE], None).await.expect("still cached");
    assert_eq!(w.entra.log().counts().total, 1, "not yet in the window");
    tokio::time::advance(Duration::from_secs(15)).await;
    w.clock.advance(Duration::from_secs(125));
    let second = cred.get_token(&[SCOPE], None).await.expect("refreshed");
    assert_eq!(
        w.entra.log().counts().total,
        2,
        "refreshed inside the window"
    );
    assert_ne!(first.token.secret(), second.token.secret());
}

#[tokio::test]
async fn a_public_cloud_token_at_a_china_vault_is_refused_and_explained() {
    let w = World::start().await;
    let app = Principal::new("controller");
    w.grant(&app);
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    // Configured for the public cloud (the default), reading a China-cloud vault.
    let cred = secret_credential(&w, &app, "s");
    let err = w
        .read_secret(CHINAVAULT_URL, cred, "db-pass")
        .await
        .expect_err("refused by Key Vault");
    assert_eq!(err.http_status().map(u16::from), Some(401));
    let explained = Error::from_vault_error(&err).expect("recognised");
    assert_eq!(explained.kind(), "vault_rejected_token");
    let text = explained.to_string();
    assert!(
        text.contains("AKV10032") || text.contains("AKV10022"),
        "{text}"
    );
    assert!(text.contains("AzureChinaCloud"), "{text}");
    assert!(w.kv.log().counts().authorized == 0, "nothing was read");

    // Configured for the China cloud, the same app (registered there) reads it.
    let china_app = Principal::new("china-app");
    w.grant(&china_app);
    w.entra.add_client(
        ClientSpec::new(&china_app)
            .cloud(testkit::cloud::Cloud::CHINA)
            .secret("s"),
    );
    let mut common = w.common();
    common.cloud = CloudEnvironment::china();
    let cred = ClientSecretCredential::new(ClientSecretOptions {
        tenant_id: china_app.tenant_id.clone(),
        client_id: china_app.app_id.clone(),
        secret: Secret::new("s"),
        common,
    })
    .expect("credential");
    let value = w
        .read_secret(CHINAVAULT_URL, cred, "db-pass")
        .await
        .expect("read the China vault");
    assert_eq!(value.as_deref(), Some("ni hao"));
}

fn rsa_chain() -> CertChain {
    CertChain::builder(KeyKind::Rsa2048)
        .common_name("akv2k8s-client")
        .build()
        .expect("RSA chain")
}

#[tokio::test]
async fn client_certificate_from_pfx_and_pem_gets_tokens_the_key_vault_fake_accepts() {
    let w = World::start().await;
    let app = Principal::new("cert-app");
    w.grant(&app);
    let chain = rsa_chain();
    w.entra
        .add_client(ClientSpec::new(&app).certificate(chain.leaf()));
    let dir = tempfile::tempdir().expect("tempdir");
    let pfx = dir.path().join("client.pfx");
    std::fs::write(
        &pfx,
        chain
            .pfx_with_password(PfxEncryption::Legacy3Des, "pfx-pass")
            .expect("pfx"),
    )
    .expect("write");
    let pem = dir.path().join("client.pem");
    std::fs::write(&pem, chain.pem_bundle(&PemPart::KEY_VAULT_ORDER)).expect("write");

    for (source, password) in [
        (CertificateSource::Path(pfx), Some(Secret::new("pfx-pass"))),
        (CertificateSource::Path(pem), None),
        (
            CertificateSource::Bytes(chain.pfx(PfxEncryption::Modern).expect("pfx")),
            None,
        ),
    ] {
        let label = format!("{source:?}");
        let cred = ClientCertificateCredential::new(ClientCertificateOptions {
            tenant_id: app.tenant_id.clone(),
            client_id: app.app_id.clone(),
            certificate: source,
            password,
            common: w.common(),
        })
        .expect(&label);
        assert!(!format!("{cred:?}").contains("pfx-pass"));
        let value = w
            .read_secret(ACCVAULT_URL, cred, "db-pass")
            .await
            .unwrap_or_else(|e| panic!("{label}: {}", error_text(&e)));
        assert_eq!(value.as_deref(), Some("s3cr3t"), "{label}");
    }
}

#[tokio::test]
async fn certificate_errors_are_clear_ec_keys_wrong_passwords_and_unregistered_certificates() {
    let w = World::start().await;
    let app = Principal::new("cert-app");
    let make = |source, password| {
        ClientCertificateCredential::new(ClientCertificateOptions {
            tenant_id: app.tenant_id.clone(),
            client_id: app.app_id.clone(),
            certificate: source,
            password,
            common: w.common(),
        })
    };
    let ec = CertChain::builder(KeyKind::EcdsaP256)
        .build()
        .expect("EC chain");
    let err = make(
        CertificateSource::Bytes(ec.pfx(PfxEncryption::Modern).expect("pfx")),
        None,
    )
    .expect_err("EC");
    assert!(
        err.to_string().contains("EC key") && err.to_string().contains("RSA"),
        "{err}"
    );
    let err = make(
        CertificateSource::Bytes(ec.pem_bundle(&PemPart::KEY_VAULT_ORDER).into_bytes()),
        None,
    )
    .expect_err("EC PEM");
    assert!(err.to_string().contains("EC key"), "{err}");

    let rsa = rsa_chain();
    let err = make(
        CertificateSource::Bytes(
            rsa.pfx_with_password(PfxEncryption::Modern, "right")
                .expect("pfx"),
        ),
        Some(Secret::new("wrong-pfx-password")),
    )
    .expect_err("wrong password");
    assert!(err.to_string().contains("password"), "{err}");
    assert!(!err.to_string().contains("wrong-pfx-password"), "{err}");

    // A certificate the app does not have: Entra's AADSTS700027.
    w.entra.add_client(ClientSpec::new(&app).secret("unused"));
    let cred = make(
        CertificateSource::Bytes(rsa.pfx(PfxEncryption::Modern).expect("pfx")),
        None,
    )
    .expect("credential");
    let err = cred
        .get_token(&[SCOPE], None)
        .await
        .expect_err("unregistered");
    assert_eq!(
        Error::find(&err).and_then(Error::aadsts),
        Some(700_027),
        "{}",
        error_text(&err)
    );
    let _ = RsaFixtureKey::Client;
}

#[tokio::test]
async fn username_password_gets_a_user_token_and_reports_aadsts50126_with_status() {
    let w = World::start().await;
    let app = Principal::new("public-app");
    w.entra
        .add_client(ClientSpec::new(&app).public_client(true));
    let alice = UserSpec::new("alice@contoso.com", "correct horse");
    w.kv.grant(VAULT, &alice.principal(), Permissions::read_all())
        .expect("grant");
    w.entra.add_user(alice.clone());
    let cred = |password: &str| {
        UsernamePasswordCredential::new(UsernamePasswordOptions {
            tenant_id: app.tenant_id.clone(),
            client_id: app.app_id.clone(),
            username: "alice@contoso.com".into(),
            password: Secret::new(password.to_owned()),
            common: w.common(),
        })
        .expect("credential")
    };
    let value = w
        .read_secret(ACCVAULT_URL, cred("correct horse"), "db-pass")
        .await
        .expect("read as alice");
    assert_eq!(value.as_deref(), Some("s3cr3t"));

    let wrong = cred("battery staple");
    assert!(!format!("{wrong:?}").contains("battery"));
    let err = wrong
        .get_token(&[SCOPE], None)
        .await
        .expect_err("wrong password");
    let ours = Error::find(&err).expect("ours");
    assert_eq!(ours.aadsts(), Some(50_126));
    let text = ours.to_string();
    assert!(
        text.contains("HTTP 400") && text.contains("AZURE_PASSWORD"),
        "{text}"
    );
    assert!(!text.contains("battery staple"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn workload_identity_rereads_the_rotated_token_file_on_every_exchange() {
    let w = World::with(Clock::manual(), Some(Duration::from_secs(240))).await;
    let app = Principal::new("wi-app");
    w.grant(&app);
    let sa = w.entra.service_account_issuer().clone();
    w.entra.add_client(
        ClientSpec::new(&app).federation(FederatedCredential::kubernetes(sa.url(), "apps", "web")),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("azure-identity-token");
    let write = |sa_name: &str| {
        let t = sa.mint(
            "apps",
            sa_name,
            TOKEN_EXCHANGE_AUDIENCE,
            Duration::from_secs(3600),
        );
        std::fs::write(&file, t.as_str()).expect("token file");
    };
    write("web");
    let env = akv_auth::Env::from([
        ("AZURE_TENANT_ID", app.tenant_id.as_str()),
        ("AZURE_CLIENT_ID", app.app_id.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().expect("utf-8")),
    ]);
    let cred = WorkloadIdentityCredential::new(WorkloadIdentityOptions {
        env,
        common: w.common(),
        ..Default::default()
    })
    .expect("credential");
    let first = cred
        .get_token(&[SCOPE], None)
        .await
        .expect("first exchange");
    assert_eq!(
        peek_claims(first.token.secret()).expect("claims").oid,
        app.object_id
    );

    // Kubelet rotates the file; this one names a subject with no federated credential, so the
    // next exchange fails only if the new file is read.
    write("batch");
    tokio::time::advance(Duration::from_secs(121)).await;
    w.clock.advance(Duration::from_secs(121));
    cred.get_token(&[SCOPE], None)
        .await
        .expect("still-valid token returned");
    let records = w.entra.log().records();
    assert_eq!(records.len(), 2, "a second exchange was attempted");
    assert_eq!(
        records[1].status, 400,
        "with the rotated (unfederated) token"
    );

    // Rotated again to a good token: the next exchange succeeds with it.
    write("web");
    let second = cred.get_token(&[SCOPE], None).await.expect("exchange");
    assert_eq!(w.entra.log().records().len(), 3);
    assert_eq!(w.entra.log().records()[2].status, 200);
    assert_ne!(first.token.secret(), second.token.secret());

    // A token file that is not there: the error names it.
    let missing = WorkloadIdentityCredential::new(WorkloadIdentityOptions {
        tenant_id: Some(app.tenant_id.clone()),
        client_id: Some(app.app_id.clone()),
        token_file: Some(dir.path().join("nope")),
        common: w.common(),
        ..Default::default()
    })
    .expect("credential");
    let err = missing
        .get_token(&[SCOPE], None)
        .await
        .expect_err("no file");
    let text = error_text(&err);
    assert!(text.contains("federated token file"), "{text}");
}

#[tokio::test]
async fn an_untrusted_server_certificate_fails_at_once_with_a_tls_error() {
    let w = World::start().await;
    let app = Principal::new("controller");
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let other_ca = testkit::certs::TestCa::new().expect("CA");
    let http = HttpOptions::default()
        .trust_only(other_ca.pem())
        .resolve(w.entra.resolve_overrides());
    let mut common = w.common();
    common.http = http; // default (bounded) retries: a TLS error must not be retried
    let cred = ClientSecretCredential::new(ClientSecretOptions {
        tenant_id: app.tenant_id.clone(),
        client_id: app.app_id.clone(),
        secret: Secret::new("s"),
        common,
    })
    .expect("credential");
    let started = std::time::Instant::now();
    let err = cred.get_token(&[SCOPE], None).await.expect_err("untrusted");
    assert!(started.elapsed() < Duration::from_secs(5), "not retried");
    let text = error_text(&err);
    assert!(
        text.contains("TLS handshake with login.microsoftonline.com failed"),
        "{text}"
    );
    assert!(text.contains("SSL_CERT_FILE"), "{text}");
}
