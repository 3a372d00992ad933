//! The IMDS / NMI fake driven by azure_identity's `ManagedIdentityCredential` (its hard-coded
//! `http://169.254.169.254` redirected in-process to the fake) and by raw HTTP, with expected
//! bodies written from Microsoft's and aad-pod-identity's documentation and sources.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId};
use serde_json::{Value, json};
use testkit::clock::Clock;
use testkit::faults::Fault;
use testkit::imds::{IdentitySpec, ImdsFake, ImdsMode, NmiOptions, PodSpec};
use testkit::token::{Principal, peek_claims};
use testkit::vault::{Permissions, SecretSpec};

use crate::support::{
    ACCVAULT_URL, IdentityWorld, RedirectTransport, VAULT, error_text, http_statuses,
};

const RESOURCE: &str = "https://vault.azure.net";
const SCOPE: &str = "https://vault.azure.net/.default";

fn pod_ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn managed_identity(
    imds: &ImdsFake,
    id: Option<UserAssignedId>,
    from: Option<IpAddr>,
) -> Arc<ManagedIdentityCredential> {
    ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
        user_assigned_id: id,
        client_options: ClientOptions {
            transport: Some(Transport::new(RedirectTransport::new(imds.addr(), from))),
            ..Default::default()
        },
    }))
    .expect("managed identity credential")
}

/// GET the token endpoint as `from` (a pod IP), with or without `Metadata: true`.
async fn get(imds: &ImdsFake, query: &str, metadata: bool, from: Option<IpAddr>) -> (u16, String) {
    let http = reqwest::Client::builder()
        .local_address(from)
        .build()
        .expect("client");
    let mut req = http.get(format!("{}?{query}", imds.endpoint()));
    if metadata {
        req = req.header("Metadata", "true");
    }
    let resp = req.send().await.expect("send");
    (resp.status().as_u16(), resp.text().await.expect("text"))
}

async fn world_with_secret(clock: Clock, reader: &Principal) -> IdentityWorld {
    let w = IdentityWorld::start_with_clock(clock).await;
    w.kv.grant(VAULT, reader, Permissions::read_all())
        .expect("grant");
    w.kv.set_secret(VAULT, "db-pass", SecretSpec::new("s3cr3t"))
        .expect("seed");
    w
}

#[tokio::test]
async fn managed_identity_credential_reads_a_secret_with_the_system_assigned_identity() {
    testkit::install_crypto_provider();
    let vm = Principal::new("vm");
    let w = world_with_secret(Clock::system(), &vm).await;
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&vm));

    let value = w
        .read_secret(ACCVAULT_URL, managed_identity(&imds, None, None), "db-pass")
        .await
        .expect("read with the VM's identity");
    assert_eq!(value.as_deref(), Some("s3cr3t"));
    let records = imds.log().records();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].path, "/metadata/identity/oauth2/token");
    assert!(
        records[0].query.contains("api-version=2019-08-01"),
        "{}",
        records[0].query
    );
    assert_eq!(records[0].principal.as_deref(), Some(vm.object_id.as_str()));
}

#[tokio::test]
async fn user_assigned_identities_are_chosen_by_client_object_or_resource_id() {
    testkit::install_crypto_provider();
    let system = Principal::new("vm");
    let user = Principal::new("uami");
    let w = IdentityWorld::start().await;
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&system));
    let uami = IdentitySpec::user_assigned(&user);
    imds.assign(uami.clone());

    for id in [
        UserAssignedId::ClientId(user.app_id.clone()),
        UserAssignedId::ObjectId(user.object_id.clone()),
        UserAssignedId::ResourceId(uami.resource_id.clone()),
    ] {
        let token = managed_identity(&imds, Some(id.clone()), None)
            .get_token(&[SCOPE], None)
            .await
            .unwrap_or_else(|e| panic!("{id:?}: {}", error_text(&e)));
        let claims = peek_claims(token.token.secret()).expect("claims");
        assert_eq!(claims.oid, user.object_id, "{id:?}");
        assert_eq!(claims.aud, RESOURCE);
    }

    // An identity the VM does not have: IMDS's 400, which azure_identity reports as such.
    let err = managed_identity(&imds, Some(UserAssignedId::ClientId("nope".into())), None)
        .get_token(&[SCOPE], None)
        .await
        .expect_err("unassigned identity");
    assert_eq!(http_statuses(&err), vec![400]);
    assert!(
        error_text(&err).contains("The requested identity has not been assigned to this resource"),
        "{}",
        error_text(&err)
    );
    let (status, body) = get(
        &imds,
        "api-version=2018-02-01&resource=https://vault.azure.net&client_id=nope",
        true,
        None,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json"),
        json!({ "error": "invalid_request", "error_description": "Identity not found" })
    );
}

#[tokio::test]
async fn imds_token_body_matches_the_documented_example_with_numbers_as_strings() {
    testkit::install_crypto_provider();
    let vm = Principal::new("vm");
    let w = IdentityWorld::start_with_clock(Clock::manual_at_unix(1_700_000_000)).await;
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&vm));
    let (status, body) = get(
        &imds,
        "api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net",
        true,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    // "Use managed identities on a virtual machine to acquire access token", sample response.
    let documented = json!({
      "access_token": "eyJ0eXAi...",
      "refresh_token": "",
      "expires_in": "3599",
      "expires_on": "1506484173",
      "not_before": "1506480273",
      "resource": "https://management.azure.com/",
      "token_type": "Bearer"
    });
    for field in [
        "access_token",
        "expires_in",
        "expires_on",
        "not_before",
        "resource",
        "token_type",
    ] {
        assert!(body[field].is_string(), "{field} in {body}");
        assert!(documented[field].is_string());
    }
    assert_eq!(body["expires_on"], "1700086399");
    assert_eq!(body["ext_expires_in"], "86399");
    assert_eq!(body["client_id"], vm.app_id.as_str());
    assert_eq!(body["resource"], RESOURCE);
}

#[tokio::test]
async fn requests_without_metadata_header_or_resource_get_imds_errors() {
    testkit::install_crypto_provider();
    let w = IdentityWorld::start().await;
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&Principal::new("vm")));
    let cases = [
        (
            "api-version=2018-02-01&resource=https://vault.azure.net",
            false,
            "Required metadata header not specified",
        ),
        (
            "api-version=2018-02-01",
            true,
            "Required query variable 'resource' is missing",
        ),
        (
            "resource=https://vault.azure.net",
            true,
            "Required query variable 'api-version' is missing",
        ),
    ];
    for (query, metadata, description) in cases {
        let (status, body) = get(&imds, query, metadata, None).await;
        assert_eq!(status, 400, "{query}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).expect("json"),
            json!({ "error": "invalid_request", "error_description": description })
        );
    }
}

fn nmi(delay: Duration) -> ImdsMode {
    ImdsMode::Nmi(NmiOptions {
        assignment_delay: delay,
        ..Default::default()
    })
}

#[tokio::test]
async fn nmi_answers_404_per_pod_until_the_assignment_window_passes_on_the_testkit_clock() {
    testkit::install_crypto_provider();
    let uami = Principal::new("pod-identity");
    let w = IdentityWorld::start_with_clock(Clock::manual()).await;
    let imds = w.imds(nmi(Duration::from_secs(45))).await;
    imds.add_pod(
        PodSpec::new("apps", "web-0", pod_ip(2)).identity(IdentitySpec::user_assigned(&uami)),
    );
    imds.add_pod(
        PodSpec::new("apps", "web-1", pod_ip(3)).identity(IdentitySpec::user_assigned(&uami)),
    );
    let query = "api-version=2018-02-01&resource=https://vault.azure.net";

    let (status, body) = get(&imds, query, true, Some(pod_ip(2))).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        "getting assigned identities for pod apps/web-0 in CREATED state failed after 16 attempts, retry duration [5]s, error: <nil>. Check MIC pod logs for identity assignment errors\n"
    );
    w.clock.advance(Duration::from_secs(30));
    // web-1's window starts at its own first request.
    let (status, _) = get(&imds, query, true, Some(pod_ip(3))).await;
    assert_eq!(status, 404);
    w.clock.advance(Duration::from_secs(15));
    let (status, body) = get(&imds, query, true, Some(pod_ip(2))).await;
    assert_eq!(status, 200, "{body}");
    // NMI's body: adal's token re-marshalled, no client_id.
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["refresh_token"], "");
    assert!(
        body["expires_on"].is_string() && body.get("client_id").is_none(),
        "{body}"
    );
    let (status, _) = get(&imds, query, true, Some(pod_ip(3))).await;
    assert_eq!(status, 404, "web-1 has waited only 15 s");

    // Not a pod NMI knows.
    let (status, body) = get(&imds, query, true, Some(pod_ip(9))).await;
    assert_eq!(status, 500);
    assert_eq!(body, "match failed, ip:127.0.0.9 matching pods:[]\n");
}

#[tokio::test]
async fn managed_identity_credential_retries_through_the_nmi_window_and_reads_the_vault() {
    testkit::install_crypto_provider();
    let uami = Principal::new("pod-identity");
    let w = world_with_secret(Clock::manual(), &uami).await;
    let imds = w.imds(nmi(Duration::from_secs(40))).await;
    imds.add_pod(
        PodSpec::new("apps", "web-0", pod_ip(4)).identity(IdentitySpec::user_assigned(&uami)),
    );
    let cred = managed_identity(
        &imds,
        Some(UserAssignedId::ClientId(uami.app_id.clone())),
        Some(pod_ip(4)),
    );

    let read = w.read_secret(ACCVAULT_URL, cred, "db-pass");
    let assign = async {
        // The first attempt has been answered 404; MIC finishes while the SDK backs off.
        imds.log().wait_for(1).await;
        w.clock.advance(Duration::from_secs(41));
    };
    let (value, ()) = tokio::join!(read, assign);
    assert_eq!(
        value.expect("read after the window").as_deref(),
        Some("s3cr3t")
    );
    let statuses: Vec<u16> = imds.log().records().iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![404, 200]);
}

#[tokio::test]
async fn a_pod_without_binding_is_refused_forever() {
    testkit::install_crypto_provider();
    let w = IdentityWorld::start_with_clock(Clock::manual()).await;
    let imds = w
        .imds(ImdsMode::Nmi(NmiOptions {
            unbound_status: 403,
            ..Default::default()
        }))
        .await;
    imds.add_pod(PodSpec::new("apps", "unbound-0", pod_ip(5)));
    let err = managed_identity(&imds, None, Some(pod_ip(5)))
        .get_token(&[SCOPE], None)
        .await
        .expect_err("no identity bound");
    assert_eq!(http_statuses(&err), vec![403]);
    assert!(
        error_text(&err).contains("getting assigned identities for pod apps/unbound-0 in CREATED state failed after 16 attempts"),
        "{}",
        error_text(&err)
    );
    w.clock.advance(Duration::from_secs(24 * 3600));
    let (status, _) = get(
        &imds,
        "api-version=2018-02-01&resource=https://vault.azure.net",
        true,
        Some(pod_ip(5)),
    )
    .await;
    assert_eq!(status, 403, "still unbound a day later");
}

#[tokio::test]
async fn nmi_can_answer_503_with_retry_after_while_assigning() {
    testkit::install_crypto_provider();
    let w = IdentityWorld::start_with_clock(Clock::manual()).await;
    let imds = w
        .imds(ImdsMode::Nmi(NmiOptions {
            pending_status: 503,
            ..Default::default()
        }))
        .await;
    imds.add_pod(
        PodSpec::new("apps", "web-0", pod_ip(6))
            .identity(IdentitySpec::user_assigned(&Principal::new("x"))),
    );
    let http = reqwest::Client::builder()
        .local_address(pod_ip(6))
        .build()
        .expect("client");
    let resp = http
        .get(format!(
            "{}?api-version=2018-02-01&resource=https://vault.azure.net",
            imds.endpoint()
        ))
        .header("Metadata", "true")
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "20");
    assert_eq!(resp.headers()["content-type"], "text/plain; charset=utf-8");
}

#[tokio::test]
async fn transient_faults_carry_imds_bodies_and_then_clear() {
    testkit::install_crypto_provider();
    let w = IdentityWorld::start().await;
    let imds = w.imds(ImdsMode::Vm).await;
    imds.assign(IdentitySpec::system(&Principal::new("vm")));
    imds.faults()
        .inject(Fault::throttle(Duration::from_secs(1)).times(1));
    imds.faults().inject(Fault::status(500).times(1));
    let query = "api-version=2018-02-01&resource=https://vault.azure.net";
    let (status, body) = get(&imds, query, true, None).await;
    assert_eq!(status, 429);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("json")["error"],
        "too_many_requests"
    );
    let (status, body) = get(&imds, query, true, None).await;
    assert_eq!(status, 500);
    assert!(
        body.contains("Failed to retrieve token from the Active directory."),
        "{body}"
    );
    let (status, _) = get(&imds, query, true, None).await;
    assert_eq!(status, 200);
    assert_eq!(imds.log().counts().faulted, 2);
}
