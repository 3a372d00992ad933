//! Managed identity through IMDS and aad-pod-identity's NMI, on paused tokio time mirrored
//! onto the testkit clock.

use std::time::Duration;

use akv_auth::{
    AuthMode, AuthOptions, Credentials, Error, ImdsOptions, ManagedIdentityCredential,
    ManagedIdentityOptions, UserAssignedId,
};
use azure_core::credentials::TokenCredential;
use testkit::clock::Clock;
use testkit::imds::{IdentitySpec, ImdsMode, NmiOptions, PodSpec};
use testkit::token::{Principal, peek_claims};

use crate::support::{ACCVAULT_URL, SCOPE, World, error_text, mirror_clock, pod_ip};

fn nmi(delay: Duration) -> ImdsMode {
    ImdsMode::Nmi(NmiOptions {
        assignment_delay: delay,
        ..Default::default()
    })
}

fn credential(
    w: &World,
    endpoint: String,
    id: Option<UserAssignedId>,
    from: Option<std::net::IpAddr>,
) -> std::sync::Arc<ManagedIdentityCredential> {
    let mut common = w.common();
    common.http.local_address = from;
    ManagedIdentityCredential::new(ManagedIdentityOptions {
        user_assigned: id,
        imds: ImdsOptions {
            endpoint: Some(endpoint),
            ..Default::default()
        },
        common,
        ..Default::default()
    })
    .expect("credential")
}

#[tokio::test(start_paused = true)]
async fn nmi_answering_404_for_60_seconds_then_binding_succeeds_within_the_default_budget() {
    let uami = Principal::new("pod-identity");
    let w = World::with(Clock::manual(), None).await;
    w.grant(&uami);
    let imds = w.imds(nmi(Duration::from_secs(60))).await;
    imds.add_pod(
        PodSpec::new("apps", "web-0", pod_ip(11)).identity(IdentitySpec::user_assigned(&uami)),
    );
    let cred = credential(
        &w,
        imds.endpoint(),
        Some(UserAssignedId::ClientId(uami.app_id.clone())),
        Some(pod_ip(11)),
    );
    let mirror = mirror_clock(w.clock.clone());
    let started = tokio::time::Instant::now();
    let value = w
        .read_secret(ACCVAULT_URL, cred, "db-pass")
        .await
        .unwrap_or_else(|e| panic!("{}", error_text(&e)));
    let elapsed = started.elapsed();
    mirror.abort();
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    assert!(elapsed >= Duration::from_secs(60), "{elapsed:?}");
    assert!(
        elapsed < akv_auth::managed_identity::DEFAULT_RETRY_BUDGET,
        "{elapsed:?}"
    );
    let statuses: Vec<u16> = imds.log().records().iter().map(|r| r.status).collect();
    assert!(statuses.len() >= 3, "{statuses:?}");
    assert!(
        statuses[..statuses.len() - 1].iter().all(|s| *s == 404),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&200));
    let query = &imds.log().records()[0].query;
    assert!(query.contains("api-version=2018-02-01"), "{query}");
    assert!(
        query.contains(&format!("client_id={}", uami.app_id)),
        "{query}"
    );
}

#[tokio::test(start_paused = true)]
async fn nmi_never_binding_fails_after_the_budget_naming_the_fix() {
    let w = World::with(Clock::manual(), None).await;
    for unbound_status in [404, 403] {
        let imds = w
            .imds(ImdsMode::Nmi(NmiOptions {
                unbound_status,
                ..Default::default()
            }))
            .await;
        imds.add_pod(PodSpec::new("apps", "unbound-0", pod_ip(12)));
        let cred = credential(&w, imds.endpoint(), None, Some(pod_ip(12)));
        let mirror = mirror_clock(w.clock.clone());
        let started = tokio::time::Instant::now();
        let err = cred
            .get_token(&[SCOPE], None)
            .await
            .expect_err("never bound");
        let elapsed = started.elapsed();
        mirror.abort();
        assert!(
            elapsed <= akv_auth::managed_identity::DEFAULT_RETRY_BUDGET,
            "{elapsed:?}"
        );
        assert!(elapsed >= Duration::from_secs(90), "{elapsed:?}");
        let ours = Error::find(&err).expect("ours");
        assert_eq!(ours.kind(), "managed_identity_unavailable");
        let text = ours.to_string();
        assert!(text.contains("addAzurePodIdentityException=true"), "{text}");
        assert!(text.contains("workload identity"), "{text}");
        assert!(text.contains(&format!("HTTP {unbound_status}")), "{text}");
        assert!(
            text.contains("getting assigned identities for pod apps/unbound-0"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_identity_not_assigned_to_the_vm_fails_at_once_and_system_identity_works() {
    let w = World::start().await;
    let vm = Principal::new("vm");
    w.grant(&vm);
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&vm));
    let token = credential(&w, imds.endpoint(), None, None)
        .get_token(&[SCOPE], None)
        .await
        .expect("system identity");
    assert_eq!(
        peek_claims(token.token.secret()).expect("claims").oid,
        vm.object_id
    );

    let err = credential(
        &w,
        imds.endpoint(),
        Some(UserAssignedId::ClientId("not-assigned".into())),
        None,
    )
    .get_token(&[SCOPE], None)
    .await
    .expect_err("not assigned");
    let ours = Error::find(&err).expect("ours");
    assert_eq!(ours.kind(), "managed_identity_refused");
    assert!(ours.to_string().contains("HTTP 400"), "{ours}");
}

#[tokio::test]
async fn the_charts_user_defined_msi_cloud_config_uses_the_user_assigned_identity() {
    let w = World::start().await;
    let uami = Principal::new("akv2k8s-uami");
    w.grant(&uami);
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&Principal::new("node")));
    imds.assign(IdentitySpec::user_assigned(&uami));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("azure.json");
    std::fs::write(
        &path,
        format!(
            r#"{{
  "cloud": "AzurePublicCloud",
  "tenantId": "{}",
  "subscriptionId": "sub",
  "aadClientId": "msi",
  "aadClientSecret": "msi",
  "useManagedIdentityExtension": true,
  "userAssignedIdentityID": "{}",
}}"#,
            uami.tenant_id, uami.app_id
        ),
    )
    .expect("write");
    let creds = Credentials::new(
        AuthMode::AzureCloudConfig,
        AuthOptions {
            env: akv_auth::Env::from([("UNUSED", "")]),
            cloud_config_path: path,
            http: Some(w.http()),
            imds: ImdsOptions {
                endpoint: Some(imds.endpoint()),
                ..Default::default()
            },
            ..Default::default()
        },
    )
    .expect("credentials");
    assert_eq!(creds.provider, akv_auth::managed_identity::PROVIDER);
    let value = w
        .read_secret(ACCVAULT_URL, creds.credential, "db-pass")
        .await
        .expect("read");
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    assert_eq!(
        w.entra.log().counts().total,
        0,
        "no service principal named msi"
    );
    let query = &imds.log().records()[0].query;
    assert!(
        query.contains(&format!("client_id={}", uami.app_id)),
        "{query}"
    );
}
