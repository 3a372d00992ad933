//! Mode selection (`AUTH_TYPE`) end to end: environment precedence, the default chain and its
//! combined error.

use std::time::Duration;

use akv_auth::{AuthMode, AuthOptions, Credentials, Env, Error, ImdsOptions};
use testkit::clock::Clock;
use testkit::entra::{ClientSpec, FederatedCredential, TOKEN_EXCHANGE_AUDIENCE};
use testkit::imds::{IdentitySpec, ImdsMode};
use testkit::token::Principal;

use crate::support::{ACCVAULT_URL, SCOPE, World, error_text};

fn options(w: &World, env: Env, imds_endpoint: Option<String>) -> AuthOptions {
    AuthOptions {
        env,
        http: Some(w.http()),
        imds: ImdsOptions {
            endpoint: imds_endpoint,
            retry_budget: Duration::from_secs(2),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn environment_mode_prefers_the_secret_and_falls_back_to_managed_identity_with_azure_client_id()
 {
    let w = World::start().await;
    let app = Principal::new("sp");
    let uami = Principal::new("uami");
    w.grant(&app);
    w.grant(&uami);
    w.entra.add_client(ClientSpec::new(&app).secret("s"));
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::user_assigned(&uami));
    imds.assign(IdentitySpec::user_assigned(&Principal::new("other")));

    let env = Env::from([
        ("AUTH_TYPE", "environment"),
        ("AZURE_TENANT_ID", app.tenant_id.as_str()),
        ("AZURE_CLIENT_ID", app.app_id.as_str()),
        ("AZURE_CLIENT_SECRET", "s"),
    ]);
    let creds = Credentials::from_env(options(&w, env, Some(imds.endpoint()))).expect("env");
    assert_eq!(creds.provider, akv_auth::client_secret::PROVIDER);
    assert_eq!(
        w.read_secret(ACCVAULT_URL, creds.credential, "db-pass")
            .await
            .expect("read")
            .as_deref(),
        Some("s3cr3t")
    );

    let env = Env::from([
        ("AUTH_TYPE", "environment"),
        ("AZURE_CLIENT_ID", uami.app_id.as_str()),
    ]);
    let creds = Credentials::from_env(options(&w, env, Some(imds.endpoint()))).expect("env");
    assert_eq!(creds.provider, akv_auth::managed_identity::PROVIDER);
    assert_eq!(
        w.read_secret(ACCVAULT_URL, creds.credential, "db-pass")
            .await
            .expect("read with the user-assigned identity")
            .as_deref(),
        Some("s3cr3t")
    );
    assert!(imds.log().records()[0].query.contains(&uami.app_id));
}

#[tokio::test]
async fn the_default_chain_uses_workload_identity_when_the_environment_has_no_secret() {
    let w = World::with(Clock::system(), None).await;
    let app = Principal::new("wi");
    w.grant(&app);
    let sa = w.entra.service_account_issuer().clone();
    w.entra.add_client(
        ClientSpec::new(&app).federation(FederatedCredential::kubernetes(
            sa.url(),
            "akv2k8s",
            "akv2k8s-controller",
        )),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        sa.mint(
            "akv2k8s",
            "akv2k8s-controller",
            TOKEN_EXCHANGE_AUDIENCE,
            Duration::from_secs(3600),
        )
        .as_str(),
    )
    .expect("write");
    let env = Env::from([
        ("AUTH_TYPE", "environment-azidentity"),
        ("AZURE_TENANT_ID", app.tenant_id.as_str()),
        ("AZURE_CLIENT_ID", app.app_id.as_str()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.to_str().expect("utf-8")),
        ("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com/"),
    ]);
    let creds = Credentials::from_env(options(&w, env, None)).expect("chain");
    assert_eq!(creds.mode, AuthMode::EnvironmentAzidentity);
    assert_eq!(
        w.read_secret(ACCVAULT_URL, creds.credential, "db-pass")
            .await
            .expect("read")
            .as_deref(),
        Some("s3cr3t")
    );
}

#[tokio::test]
async fn the_default_chain_error_lists_why_each_link_was_skipped_or_failed() {
    let w = World::start().await;
    // Nothing configured, and an IMDS endpoint where nothing listens.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let env = Env::from([("AUTH_TYPE", "environment-azidentity")]);
    let creds = Credentials::from_env(options(&w, env, Some(endpoint))).expect("chain");
    let err = creds
        .credential
        .get_token(&[SCOPE], None)
        .await
        .expect_err("nothing works");
    let ours = Error::find(&err).expect("ours");
    assert_eq!(ours.kind(), "chain_exhausted");
    let text = ours.to_string();
    let env_at = text.find("environment: not configured").expect(&text);
    let wi_at = text
        .find("workload identity: AZURE_FEDERATED_TOKEN_FILE not set")
        .expect(&text);
    let mi_at = text.find("managed identity: ").expect(&text);
    assert!(env_at < wi_at && wi_at < mi_at, "{text}");
    assert!(
        text.contains("addAzurePodIdentityException"),
        "{}",
        error_text(&err)
    );
}

#[test]
fn an_unknown_auth_type_or_cloud_is_a_clear_startup_error() {
    let err = Credentials::from_env(AuthOptions {
        env: Env::from([("AUTH_TYPE", "cloudConfig")]),
        ..Default::default()
    })
    .expect_err("upstream webhook default");
    assert!(
        err.to_string()
            .contains("azureCloudConfig (default), environment or environment-azidentity"),
        "{err}"
    );
    let err = Credentials::new(
        AuthMode::Environment,
        AuthOptions {
            env: Env::from([("AZURE_ENVIRONMENT", "AzureMarsCloud")]),
            ..Default::default()
        },
    )
    .expect_err("unknown cloud");
    assert_eq!(err.kind(), "unknown_cloud");
    let err = Credentials::new(
        AuthMode::AzureCloudConfig,
        AuthOptions {
            env: Env::from([("X", "")]),
            cloud_config_path: "/nonexistent/azure.json".into(),
            ..Default::default()
        },
    )
    .expect_err("no file");
    assert!(err.to_string().contains("/nonexistent/azure.json"), "{err}");
    let err = Credentials::new(
        AuthMode::Environment,
        AuthOptions {
            env: Env::from([("AKV2K8S_RESOLVE", "login.microsoftonline.com")]),
            ..Default::default()
        },
    )
    .expect_err("bad resolve");
    assert!(err.to_string().contains("AKV2K8S_RESOLVE"), "{err}");
}
