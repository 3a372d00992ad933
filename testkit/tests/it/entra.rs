//! The Entra ID fake driven by azure_identity's credentials (with the production authority
//! URLs, through the resolve override) and by raw HTTP, with expected bodies written from
//! Microsoft's documentation and from what Entra is seen to send.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_identity::{
    ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};
use serde_json::{Value, json};
use testkit::certs::{CertChain, KeyKind, RsaFixtureKey};
use testkit::clock::Clock;
use testkit::cloud::Cloud;
use testkit::entra::{
    ClientSpec, EntraFake, FederatedCredential, TOKEN_EXCHANGE_AUDIENCE, UserSpec,
};
use testkit::faults::{Fault, Outcome};
use testkit::token::{Principal, peek_claims};
use testkit::vault::{Permissions, SecretSpec};

use crate::support::{
    ACCVAULT_URL, CertificateAssertion, IdentityWorld, VAULT, b64url, client_certificate,
    error_text, http_statuses, rsa_key, sign_rs256,
};

const SCOPE: &str = "https://vault.azure.net/.default";

/// `application/x-www-form-urlencoded` bodies (the workspace's reqwest has no `form` feature).
trait FormPairs {
    fn form_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self;
}

impl FormPairs for reqwest::RequestBuilder {
    fn form_pairs<K: AsRef<str>, V: AsRef<str>>(self, pairs: &[(K, V)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

fn v2_url(tenant: &str) -> String {
    format!("https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token")
}

/// A world where `app` may read `accvault` and `db-pass` holds `s3cr3t`.
async fn world_with_secret(clock: Clock) -> (IdentityWorld, Principal) {
    let w = IdentityWorld::start_with_clock(clock).await;
    let app = Principal::new("controller");
    w.kv.grant(VAULT, &app, Permissions::read_all())
        .expect("grant");
    w.kv.set_secret(VAULT, "db-pass", SecretSpec::new("s3cr3t"))
        .expect("seed");
    (w, app)
}

fn secret_credential(
    w: &IdentityWorld,
    app: &Principal,
    secret: &str,
) -> Arc<ClientSecretCredential> {
    ClientSecretCredential::new(
        &app.tenant_id,
        app.app_id.clone(),
        Secret::new(secret.to_owned()),
        Some(ClientSecretCredentialOptions {
            client_options: w.client_options(),
        }),
    )
    .expect("credential")
}

async fn post(w: &IdentityWorld, url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = w
        .http()
        .post(url)
        .form_pairs(form)
        .send()
        .await
        .expect("send");
    let status = resp.status().as_u16();
    let body = resp.json().await.expect("json body");
    (status, body)
}

/// Asserts Entra's error shape: the fields, the code in `error_codes`, `error_uri`, and the
/// `\r\n`-separated trace lines in the description.
fn assert_entra_error(body: &Value, error: &str, code: u32) {
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(body["error_codes"], json!([code]), "{body}");
    let description = body["error_description"].as_str().expect("description");
    assert!(
        description.starts_with(&format!("AADSTS{code}: ")),
        "{description}"
    );
    let trace = body["trace_id"].as_str().expect("trace_id");
    let correlation = body["correlation_id"].as_str().expect("correlation_id");
    let timestamp = body["timestamp"].as_str().expect("timestamp");
    assert!(
        description.ends_with(&format!(
            "\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"
        )),
        "{description}"
    );
    assert_eq!(timestamp.len(), "2024-10-02 22:05:03Z".len());
    assert!(
        body["error_uri"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/error?code={code}"))),
        "{body}"
    );
}

#[tokio::test]
async fn client_secret_credential_token_reads_a_secret_from_the_key_vault_fake() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra
        .add_client(ClientSpec::new(&app).secret("old").secret("current"));
    let cred = secret_credential(&w, &app, "current");

    let value = w
        .read_secret(ACCVAULT_URL, cred, "db-pass")
        .await
        .expect("read through both fakes");
    assert_eq!(value.as_deref(), Some("s3cr3t"));

    let records = w.entra.log().records();
    assert_eq!(records.len(), 1, "one token request");
    assert_eq!(records[0].method, "POST");
    assert_eq!(records[0].host, "login.microsoftonline.com");
    assert_eq!(
        records[0].path,
        format!("/{}/oauth2/v2.0/token", app.tenant_id)
    );
    assert_eq!(records[0].status, 200);
    assert_eq!(records[0].outcome, Outcome::Anonymous);
    assert_eq!(
        records[0].principal.as_deref(),
        Some(app.object_id.as_str())
    );
    assert_eq!(w.kv.log().counts().authorized, 1);
}

#[tokio::test]
async fn wrong_secret_answers_aadsts7000215_that_azure_identity_cannot_parse() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra.add_client(ClientSpec::new(&app).secret("right"));

    // The raw answer, as Entra sends it (status 401, `\r\n` escapes inside the JSON string).
    let resp = w
        .http()
        .post(v2_url(&app.tenant_id))
        .header("client-request-id", "0d5c2a8e-5a4e-4d3b-9c4e-111111111111")
        .form_pairs(&[
            ("client_id", app.app_id.as_str()),
            ("client_secret", "wrong"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let text = resp.text().await.expect("text");
    assert!(
        text.contains(&format!(
            "for a secret added to app '{}'.\\r\\nTrace ID: ",
            app.app_id
        )),
        "the two-character escapes are on the wire: {text}"
    );
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_entra_error(&body, "invalid_client", 7_000_215);
    assert_eq!(
        body["correlation_id"],
        "0d5c2a8e-5a4e-4d3b-9c4e-111111111111"
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID")
    );

    // What azure_identity 1.0 makes of it: no HTTP status anywhere, the code only in the text.
    let err = secret_credential(&w, &app, "wrong")
        .get_token(&[SCOPE], None)
        .await
        .expect_err("wrong secret");
    assert_eq!(err.http_status(), None);
    assert!(
        http_statuses(&err).is_empty(),
        "no error in the chain carries a status: {}",
        error_text(&err)
    );
    let text = error_text(&err);
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(
        text.contains("ClientSecretCredential authentication failed"),
        "{text}"
    );
    assert!(
        !text.contains("wrong\""),
        "the secret is not echoed: {text}"
    );
    assert_eq!(w.entra.log().counts().rejected_tokens, 2);
}

#[tokio::test]
async fn unknown_client_and_unknown_tenant_answer_as_entra_does() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let stranger = Principal::new("stranger");

    let (status, body) = post(
        &w,
        &v2_url(&app.tenant_id),
        &[
            ("client_id", stranger.app_id.as_str()),
            ("client_secret", "s"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "unauthorized_client", 700_016);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!(
                "Application with identifier '{}' was not found in the directory '{}'.",
                stranger.app_id, app.tenant_id
            )),
        "{body}"
    );

    let (status, body) = post(
        &w,
        &v2_url("00000000-0000-0000-0000-00000000dead"),
        &[
            ("client_id", app.app_id.as_str()),
            ("client_secret", "s"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_tenant", 90_002);

    // The same through azure_identity: the AADSTS code survives in the message.
    let err = secret_credential(&w, &stranger, "s")
        .get_token(&[SCOPE], None)
        .await
        .expect_err("unknown client");
    assert!(
        error_text(&err).contains("AADSTS700016"),
        "{}",
        error_text(&err)
    );
}

#[tokio::test]
async fn client_credentials_success_body_has_the_documented_fields_and_key_vault_claims() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let (status, body) = post(
        &w,
        &v2_url(&app.tenant_id),
        &[
            ("client_id", app.app_id.as_str()),
            ("scope", SCOPE),
            ("client_secret", "s"),
            ("grant_type", "client_credentials"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    // Microsoft identity platform, client credentials flow, "Successful response example".
    let documented = json!({
      "token_type": "Bearer",
      "expires_in": 3599,
      "ext_expires_in": 3599,
      "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiIsIng1dCI6Ik1uQ19WWmNBVGZNNXBP..."
    });
    crate::support::assert_conforms(&documented, &body, "$");
    assert_eq!(body["expires_in"], 3599);
    let claims = peek_claims(body["access_token"].as_str().expect("token")).expect("claims");
    assert_eq!(claims.aud, "https://vault.azure.net");
    assert_eq!(claims.tid, app.tenant_id);
    assert_eq!(claims.oid, app.object_id);
    assert_eq!(claims.appid, app.app_id);
    assert_eq!(
        claims.iss,
        format!("https://sts.windows.net/{}/", app.tenant_id)
    );
}

#[tokio::test]
async fn v1_endpoint_takes_a_resource_and_answers_numbers_as_strings() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::manual_at_unix(1_700_000_000)).await;
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let (status, body) = post(
        &w,
        &format!(
            "https://login.microsoftonline.com/{}/oauth2/token",
            app.tenant_id
        ),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app.app_id.as_str()),
            ("client_secret", "s"),
            ("resource", "https://vault.azure.net"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Azure AD v1.0 service-to-service "Service-to-service access token response" example.
    let documented = json!({
      "access_token": "eyJ0eXAiO ... 0X2tnSQLEANnSPHY0gKcgw",
      "token_type": "Bearer",
      "expires_in": "3599",
      "expires_on": "1388452167",
      "resource": "https://service.contoso.com/"
    });
    crate::support::assert_conforms(&documented, &body, "$");
    assert_eq!(body["expires_on"], "1700003599");
    assert_eq!(body["resource"], "https://vault.azure.net");

    let (status, body) = post(
        &w,
        &format!(
            "https://login.microsoftonline.com/{}/oauth2/token",
            app.tenant_id
        ),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app.app_id.as_str()),
            ("client_secret", "s"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_request", 900_144);
}

#[tokio::test]
async fn scopes_without_default_and_unknown_resources_are_refused() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let cases = [
        (
            "https://vault.azure.net/user_impersonation",
            400,
            "invalid_scope",
            1_002_012,
        ),
        ("not a scope at all", 400, "invalid_scope", 70_011),
        (
            "https://vault.example.org/.default",
            400,
            "invalid_resource",
            500_011,
        ),
    ];
    for (scope, want_status, error, code) in cases {
        let (status, body) = post(
            &w,
            &v2_url(&app.tenant_id),
            &[
                ("client_id", app.app_id.as_str()),
                ("client_secret", "s"),
                ("grant_type", "client_credentials"),
                ("scope", scope),
            ],
        )
        .await;
        assert_eq!(status, want_status, "{scope}: {body}");
        assert_entra_error(&body, error, code);
    }
    let resp = w
        .http()
        .get(v2_url(&app.tenant_id))
        .send()
        .await
        .expect("GET");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_entra_error(&body, "invalid_request", 900_561);
}

fn assertion_credential(
    w: &IdentityWorld,
    app: &Principal,
    assertion: CertificateAssertion,
) -> Arc<ClientAssertionCredential<CertificateAssertion>> {
    ClientAssertionCredential::new(
        app.tenant_id.clone(),
        app.app_id.clone(),
        assertion,
        Some(ClientAssertionCredentialOptions {
            client_options: w.client_options(),
        }),
    )
    .expect("credential")
}

#[tokio::test]
async fn certificate_assertion_credential_gets_a_token_the_key_vault_fake_accepts() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    let (cert, key) = client_certificate("controller-client");
    w.entra.add_client(ClientSpec::new(&app).certificate(&cert));
    let assertion = CertificateAssertion {
        key,
        cert,
        client_id: app.app_id.clone(),
        audience: EntraFake::token_endpoint(&Cloud::PUBLIC, &app.tenant_id),
        clock: w.clock.clone(),
        calls: Arc::default(),
    };
    let calls = assertion.calls.clone();
    let cred = assertion_credential(&w, &app, assertion);
    let value = w
        .read_secret(ACCVAULT_URL, cred, "db-pass")
        .await
        .expect("read with a certificate credential");
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn assertion_naming_the_certificate_by_x5t_s256_is_accepted() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    let (cert, key) = client_certificate("controller-client");
    w.entra.add_client(ClientSpec::new(&app).certificate(&cert));
    let now = w.clock.unix_seconds();
    let jwt = sign_rs256(
        &key,
        &json!({ "alg": "RS256", "typ": "JWT", "x5t#S256": b64url(cert.sha256_thumbprint()) }),
        &json!({ "aud": v2_url(&app.tenant_id), "iss": app.app_id, "sub": app.app_id, "nbf": now, "exp": now + 600, "jti": "1" }),
    );
    let (status, body) = post(
        &w,
        &v2_url(&app.tenant_id),
        &[
            ("client_id", app.app_id.as_str()),
            ("client_assertion", jwt.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn assertion_signed_with_the_wrong_key_fails_with_aadsts700027() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    // Registered: an RSA leaf on the checked-in *leaf* key. Signed: with the *client* key.
    let chain = CertChain::builder(KeyKind::Rsa2048).build().expect("chain");
    let registered = chain.leaf().clone();
    w.entra
        .add_client(ClientSpec::new(&app).certificate(&registered));
    let assertion = CertificateAssertion {
        key: Arc::new(rsa_key(RsaFixtureKey::Client)),
        cert: registered.clone(),
        client_id: app.app_id.clone(),
        audience: v2_url(&app.tenant_id),
        clock: w.clock.clone(),
        calls: Arc::default(),
    };

    let (status, body) = post(
        &w,
        &v2_url(&app.tenant_id),
        &[
            ("client_id", app.app_id.as_str()),
            ("client_assertion", assertion.sign().as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 700_027);
    let description = body["error_description"].as_str().unwrap_or_default();
    let thumbprint: String = registered
        .sha1_thumbprint()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert!(
        description.contains(&format!(
            "[Reason - Key was found, but use of the key to verify the signature failed., Thumbprint of key used by client: '{thumbprint}', Found key 'Start="
        )),
        "{description}"
    );

    let err = assertion_credential(&w, &app, assertion)
        .get_token(&[SCOPE], None)
        .await
        .expect_err("bad signature");
    assert_eq!(err.http_status(), None);
    assert!(
        error_text(&err).contains("AADSTS700027"),
        "{}",
        error_text(&err)
    );

    // A certificate the app does not have: "The key was not found."
    let (other, other_key) = client_certificate("not-registered");
    let unknown = CertificateAssertion {
        key: other_key,
        cert: other,
        client_id: app.app_id.clone(),
        audience: v2_url(&app.tenant_id),
        clock: w.clock.clone(),
        calls: Arc::default(),
    };
    let (status, body) = post(
        &w,
        &v2_url(&app.tenant_id),
        &[
            ("client_id", app.app_id.as_str()),
            ("client_assertion", unknown.sign().as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 700_027);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("[Reason - The key was not found., Thumbprint of key used by client: '")
    );
}

#[tokio::test]
async fn es256_expired_and_misaddressed_assertions_are_refused() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::manual()).await;
    let (cert, key) = client_certificate("controller-client");
    w.entra.add_client(ClientSpec::new(&app).certificate(&cert));
    let now = w.clock.unix_seconds();
    let send = |jwt: String| {
        let w = &w;
        let app = &app;
        async move {
            post(
                w,
                &v2_url(&app.tenant_id),
                &[
                    ("client_id", app.app_id.as_str()),
                    ("client_assertion", jwt.as_str()),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("grant_type", "client_credentials"),
                    ("scope", SCOPE),
                ],
            )
            .await
        }
    };
    let claims = |aud: &str, exp: u64| json!({ "aud": aud, "iss": app.app_id, "sub": app.app_id, "nbf": now, "exp": exp, "jti": "j" });
    let x5t = b64url(cert.sha1_thumbprint());

    // ES256 (the signature bytes do not matter: the algorithm is refused first).
    let es = format!(
        "{}.{}.{}",
        b64url(json!({ "alg": "ES256", "x5t": x5t }).to_string()),
        b64url(claims(&v2_url(&app.tenant_id), now + 600).to_string()),
        b64url([7u8; 64])
    );
    let (status, body) = send(es).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 5_002_738);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("'ES256' is not a supported signature algorithm")
    );

    // Signed correctly, then the clock passes its expiry.
    let jwt = sign_rs256(
        &key,
        &json!({ "alg": "RS256", "x5t": x5t }),
        &claims(&v2_url(&app.tenant_id), now + 600),
    );
    w.clock.advance(Duration::from_secs(601));
    let (status, body) = send(jwt).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 700_024);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("Client assertion is not within its valid time range. Current time: "),
        "{body}"
    );

    // Addressed to another tenant's endpoint.
    let now = w.clock.unix_seconds();
    let jwt = sign_rs256(
        &key,
        &json!({ "alg": "RS256", "x5t": x5t }),
        &json!({ "aud": v2_url("another-tenant"), "iss": app.app_id, "sub": app.app_id, "nbf": now, "exp": now + 600 }),
    );
    let (status, body) = send(jwt).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 50_013);

    let (status, body) = send("not.a.jwt".into()).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 50_027);
}

fn workload_credential(
    w: &IdentityWorld,
    app: &Principal,
    token_file: &std::path::Path,
) -> Arc<WorkloadIdentityCredential> {
    WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
        credential_options: ClientAssertionCredentialOptions {
            client_options: w.client_options(),
        },
        client_id: Some(app.app_id.clone()),
        tenant_id: Some(app.tenant_id.clone()),
        token_file_path: Some(token_file.to_owned()),
    }))
    .expect("workload identity credential")
}

#[tokio::test]
async fn workload_identity_credential_exchanges_a_service_account_token_for_key_vault() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    let sa = w.entra.service_account_issuer().clone();
    w.entra.add_client(
        ClientSpec::new(&app).federation(FederatedCredential::kubernetes(sa.url(), "apps", "web")),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("azure-identity-token");
    let projected = sa.mint(
        "apps",
        "web",
        TOKEN_EXCHANGE_AUDIENCE,
        Duration::from_secs(3600),
    );
    std::fs::write(&file, projected.as_str()).expect("token file");

    let value = w
        .read_secret(
            ACCVAULT_URL,
            workload_credential(&w, &app, &file),
            "db-pass",
        )
        .await
        .expect("read with workload identity");
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    assert!(!format!("{projected:?}").contains(projected.as_str()));
}

#[tokio::test]
async fn workload_identity_for_another_service_account_fails_with_aadsts70021() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    let sa = w.entra.service_account_issuer().clone();
    w.entra.add_client(
        ClientSpec::new(&app).federation(FederatedCredential::kubernetes(sa.url(), "apps", "web")),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        sa.mint(
            "apps",
            "batch",
            TOKEN_EXCHANGE_AUDIENCE,
            Duration::from_secs(3600),
        )
        .as_str(),
    )
    .expect("token file");

    let err = workload_credential(&w, &app, &file)
        .get_token(&[SCOPE], None)
        .await
        .expect_err("wrong subject");
    let text = error_text(&err);
    assert!(text.contains("AADSTS70021"), "{text}");
    assert!(text.contains("system:serviceaccount:apps:batch"), "{text}");
    assert_eq!(err.http_status(), None);

    // The raw answers for the other federation mismatches.
    let assertion_form = |jwt: &str| {
        vec![
            ("client_id".to_owned(), app.app_id.clone()),
            ("client_assertion".to_owned(), jwt.to_owned()),
            (
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ),
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("scope".to_owned(), SCOPE.to_owned()),
        ]
    };
    let send = |jwt: String| {
        let http = w.http();
        let form = assertion_form(&jwt);
        let url = v2_url(&app.tenant_id);
        async move {
            let resp = http.post(url).form_pairs(&form).send().await.expect("send");
            (
                resp.status().as_u16(),
                resp.json::<Value>().await.expect("json"),
            )
        }
    };
    let wrong_subject = sa.mint(
        "apps",
        "batch",
        TOKEN_EXCHANGE_AUDIENCE,
        Duration::from_secs(600),
    );
    let (status, body) = send(wrong_subject.as_str().to_owned()).await;
    assert_eq!(status, 400);
    assert_entra_error(&body, "invalid_request", 70_021);
    assert!(body["error_description"].as_str().unwrap_or_default().contains(&format!(
        "No matching federated identity record found for presented assertion. Assertion Issuer: '{}'. Assertion Subject: 'system:serviceaccount:apps:batch'. Assertion Audience: 'api://AzureADTokenExchange'.",
        sa.url()
    )));

    let wrong_audience = sa.mint(
        "apps",
        "web",
        "api://SomethingElse",
        Duration::from_secs(600),
    );
    let (status, body) = send(wrong_audience.as_str().to_owned()).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 700_212);

    let now = w.clock.unix_seconds();
    let other_issuer = sa.mint_claims(&json!({
        "iss": "https://oidc.example.org/other/", "sub": "system:serviceaccount:apps:web",
        "aud": [TOKEN_EXCHANGE_AUDIENCE], "nbf": now, "exp": now + 600,
    }));
    let (status, body) = send(other_issuer.as_str().to_owned()).await;
    assert_eq!(status, 401);
    assert_entra_error(&body, "invalid_client", 700_211);
}

#[tokio::test]
async fn password_grant_issues_user_tokens_and_refuses_a_wrong_password_with_aadsts50126() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra
        .add_client(ClientSpec::new(&app).public_client(true));
    let alice = UserSpec::new("alice@contoso.com", "correct horse");
    w.kv.grant(VAULT, &alice.principal(), Permissions::read_all())
        .expect("grant");
    w.entra.add_user(alice.clone());
    let form = |password: &'static str| {
        vec![
            ("client_id", app.app_id.clone()),
            ("grant_type", "password".to_owned()),
            ("username", "Alice@contoso.com".to_owned()),
            ("password", password.to_owned()),
            ("scope", format!("{SCOPE} openid profile offline_access")),
        ]
    };
    let resp = w
        .http()
        .post(v2_url(&app.tenant_id))
        .form_pairs(&form("correct horse"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token").to_owned();
    let claims = peek_claims(&token).expect("claims");
    assert_eq!(claims.oid, alice.object_id());
    assert_eq!(claims.appid, app.app_id);
    assert_eq!(claims.idtyp, "user");
    // The user's token reads the vault.
    let secret: Value = w
        .http()
        .get(format!(
            "{ACCVAULT_URL}secrets/db-pass/?api-version=2025-07-01"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(secret["value"], "s3cr3t");

    let resp = w
        .http()
        .post(v2_url(&app.tenant_id))
        .form_pairs(&form("Tr0ub4dor&3"))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.expect("json");
    assert_entra_error(&body, "invalid_grant", 50_126);
    assert!(
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .starts_with(
                "AADSTS50126: Error validating credentials due to invalid username or password.\r\n"
            )
    );
}

#[tokio::test]
async fn sovereign_authority_host_mints_tokens_for_that_cloud() {
    testkit::install_crypto_provider();
    let w = IdentityWorld::start().await;
    let app = Principal::new("china-app");
    w.kv.grant("chinavault", &app, Permissions::read_all())
        .expect("grant");
    w.kv.set_secret("chinavault", "greeting", SecretSpec::new("ni hao"))
        .expect("seed");
    w.entra
        .add_client(ClientSpec::new(&app).cloud(Cloud::CHINA).secret("s"));
    let mut custom = CustomConfiguration::default();
    custom.authority_host = "https://login.chinacloudapi.cn".into();
    let mut options = w.client_options();
    options.cloud = Some(Arc::new(CloudConfiguration::from(custom)));
    let cred = ClientSecretCredential::new(
        &app.tenant_id,
        app.app_id.clone(),
        Secret::new("s".to_owned()),
        Some(ClientSecretCredentialOptions {
            client_options: options,
        }),
    )
    .expect("credential");

    let token = cred
        .get_token(&["https://vault.azure.cn/.default"], None)
        .await
        .expect("token");
    let claims = peek_claims(token.token.secret()).expect("claims");
    assert_eq!(
        claims.iss,
        format!("https://sts.chinacloudapi.cn/{}/", app.tenant_id)
    );
    assert_eq!(claims.aud, "https://vault.azure.cn");
    let value = w
        .read_secret("https://chinavault.vault.azure.cn/", cred, "greeting")
        .await
        .expect("read the China vault");
    assert_eq!(value.as_deref(), Some("ni hao"));
    assert!(
        w.entra
            .log()
            .records()
            .iter()
            .all(|r| r.host == "login.chinacloudapi.cn")
    );

    // The public cloud's Entra does not know the China tenant.
    let resp = w
        .http()
        .post(v2_url(&app.tenant_id))
        .form_pairs(&[
            ("client_id", app.app_id.as_str()),
            ("client_secret", "s"),
            ("grant_type", "client_credentials"),
            ("scope", SCOPE),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn injected_throttling_answers_with_entra_body_and_retry_after() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    w.entra
        .faults()
        .inject(Fault::throttle(Duration::from_secs(3)).times(1));
    let form = [
        ("client_id", app.app_id.as_str()),
        ("client_secret", "s"),
        ("grant_type", "client_credentials"),
        ("scope", SCOPE),
    ];
    let resp = w
        .http()
        .post(v2_url(&app.tenant_id))
        .form_pairs(&form)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    let body: Value = resp.json().await.expect("json");
    assert_entra_error(&body, "temporarily_unavailable", 90_055);
    let (status, _) = post(&w, &v2_url(&app.tenant_id), &form).await;
    assert_eq!(status, 200);
    let counts = w.entra.log().counts();
    assert_eq!((counts.total, counts.faulted), (2, 1));
}

#[tokio::test]
async fn a_secret_credential_asks_entra_once_per_scope() {
    testkit::install_crypto_provider();
    let (w, app) = world_with_secret(Clock::system()).await;
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let cred = secret_credential(&w, &app, "s");
    let counter = AtomicUsize::new(0);
    for _ in 0..3 {
        cred.get_token(&[SCOPE], None).await.expect("token");
        counter.fetch_add(1, Ordering::SeqCst);
    }
    assert_eq!(counter.load(Ordering::SeqCst), 3);
    assert_eq!(
        w.entra.log().counts().total,
        1,
        "azure_identity caches the token"
    );
}
