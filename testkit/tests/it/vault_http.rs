//! The Key Vault fake over raw HTTP, held to literals: Microsoft's REST reference examples
//! (https://learn.microsoft.com/rest/api/keyvault/) and error bodies as Key Vault sends them.
//! The expected JSON is written here by hand, never produced by the fake.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::clock::Clock;
use testkit::cloud::Cloud;
use testkit::token::{Principal, TokenIssuer};
use testkit::vault::{
    AuthorizationModel, CertificateFormat, CertificateSpec, KeySpec, ObjectKind, Permissions,
    SecretSpec, VaultSpec,
};

use crate::support::{API_VERSION, VAULT, World, assert_conforms};

/// "Get Secret" example response (secrets/get-secret, api-version 7.4).
const GET_SECRET_EXAMPLE: &str = r#"{
  "value": "mysecretvalue",
  "id": "https://myvault.vault.azure.net/secrets/mysecretname/4387e9f3d6e14c459867679a90fd0f79",
  "attributes": {
    "enabled": true,
    "created": 1493938410,
    "updated": 1493938410,
    "recoveryLevel": "Recoverable+Purgeable"
  }
}"#;

/// "Get Secrets" example response (secrets/get-secrets).
const GET_SECRETS_EXAMPLE: &str = r#"{
  "value": [
    {
      "id": "https://myvault.vault.azure.net/secrets/listsecrettest0",
      "attributes": {
        "enabled": true,
        "created": 1482188947,
        "updated": 1482188947,
        "recoveryLevel": "Recoverable+Purgeable"
      }
    }
  ],
  "nextLink": "https://myvault.vault.azure.net:443/secrets?api-version=7.2&$skiptoken=eyJOZXh0TWFya2VyIjoiMiExNjAhTURBd01EWXlJWE5sWTNKbGRDOU1TVk5VVTBWRFVrVlVWRVZUVkRFaE1EQXdNREk0SVRrNU9Ua3RNVEl0TXpGVU1qTTZOVGs2TlRrdU9UazVPVGs1T1ZvaCIsIlRhcmdldExvY2F0aW9uIjowfQ&maxresults=1"
}"#;

/// "Get Key" example response (keys/get-key).
const GET_KEY_EXAMPLE: &str = r#"{
  "key": {
    "kid": "https://myvault.vault.azure.net/keys/CreateSoftKeyTest/78deebed173b48e48f55abf87ed4cf71",
    "kty": "RSA",
    "key_ops": ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"],
    "n": "2HJAE5fU3Cw2Rt9hEuq-F6XjINKGa-zskfISVqopqUy60GOs2eyhxbWbJBeUXNor_gf-tXtNeuqeBgitLeVa640UDvnEjYTKWjCniTxZRaU7ewY8BfTSk-7KxoDdLsPSpX_MX4rwlAx-_1UGk5t4sQgTbm9T6Fm2oqFd37dsz5-Gj27UP2GTAShfJPFD7MqU_zIgOI0pfqsbNL5xTQVM29K6rX4jSPtylZV3uWJtkoQIQnrIHhk1d0SC0KwlBV3V7R_LVYjiXLyIXsFzSNYgQ68ZjAwt8iL7I8Osa-ehQLM13DVvLASaf7Jnu3sC3CWl3Gyirgded6cfMmswJzY87w",
    "e": "AQAB"
  },
  "attributes": {
    "enabled": true,
    "created": 1493942451,
    "updated": 1493942451,
    "recoveryLevel": "Recoverable+Purgeable"
  },
  "tags": {
    "purpose": "unit test",
    "test name ": "CreateGetDeleteKeyTest"
  }
}"#;

/// "Get Certificate" example response (certificates/get-certificate), without the `cer`
/// body's value (any base64 string conforms) and without `pending`, which only certificates
/// created through an issuer have.
const GET_CERTIFICATE_EXAMPLE: &str = r#"{
  "id": "https://myvault.vault.azure.net/certificates/selfSignedCert01/2f9a9e0b1a4b4c07a5f0b8b1d5d2d0a3",
  "kid": "https://myvault.vault.azure.net/keys/selfSignedCert01/2f9a9e0b1a4b4c07a5f0b8b1d5d2d0a3",
  "sid": "https://myvault.vault.azure.net/secrets/selfSignedCert01/2f9a9e0b1a4b4c07a5f0b8b1d5d2d0a3",
  "x5t": "fLi3U52HunIVNXubkEnf8tP6Wbo",
  "cer": "MIICODCCAeagAwIBAgIQqHmpBAv+CY9IJFoUhlbziTAJBgUrDgMCHQUAMBYxFDASBgNVBAMTC1Jvb3QgQWdlbmN5",
  "attributes": {
    "enabled": true,
    "nbf": 1430344421,
    "exp": 2208988799,
    "created": 1482188947,
    "updated": 1482188947,
    "recoveryLevel": "Recoverable+Purgeable"
  },
  "policy": {
    "id": "https://myvault.vault.azure.net/certificates/selfSignedCert01/policy",
    "key_props": { "exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": false },
    "secret_props": { "contentType": "application/x-pkcs12" },
    "x509_props": {
      "subject": "CN=KeyVaultTest",
      "ekus": ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
      "key_usage": ["digitalSignature", "keyEncipherment"],
      "validity_months": 297
    },
    "lifetime_actions": [
      { "trigger": { "lifetime_percentage": 80 }, "action": { "action_type": "EmailContacts" } }
    ],
    "issuer": { "name": "Self" },
    "attributes": { "enabled": true, "created": 1482188947, "updated": 1482188947 }
  }
}"#;

fn parse(s: &str) -> Value {
    serde_json::from_str(s).expect("literal JSON")
}

async fn get(
    w: &World,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = w.http().get(w.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

#[tokio::test]
async fn get_secret_matches_the_documented_example() {
    // The example's clock and version, so that the documented response is reproduced exactly.
    let w = World::start_with_clock(Clock::manual_at_unix(1_493_938_410)).await;
    w.kv.create_vault(VaultSpec::new("myvault").grant(&w.app, Permissions::read_all()))
        .expect("vault");
    w.kv.set_secret(
        "myvault",
        "mysecretname",
        SecretSpec::new("mysecretvalue").version("4387e9f3d6e14c459867679a90fd0f79"),
    )
    .expect("seed");
    let token = w.kv.token_for("myvault", &w.app).expect("token");
    let resp = w
        .http()
        .get("https://myvault.vault.azure.net/secrets/mysecretname/4387e9f3d6e14c459867679a90fd0f79?api-version=7.4")
        .bearer_auth(token.as_str())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json; charset=utf-8")
    );
    let body: Value = resp.json().await.expect("json");
    let example = parse(GET_SECRET_EXAMPLE);
    for key in ["value", "id"] {
        assert_eq!(body[key], example[key], "{key}");
    }
    for key in ["enabled", "created", "updated", "recoveryLevel"] {
        assert_eq!(
            body["attributes"][key], example["attributes"][key],
            "attributes.{key}"
        );
    }
}

#[tokio::test]
async fn list_secrets_pages_conform_to_the_documented_example() {
    let w = World::start().await;
    for name in ["listsecrettest0", "listsecrettest1"] {
        w.kv.set_secret(VAULT, name, SecretSpec::new("v"))
            .expect("seed");
    }
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let (status, _, page1) = get(
        &w,
        "/secrets?api-version=7.2&maxresults=1",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(status, 200);
    assert_conforms(&parse(GET_SECRETS_EXAMPLE), &page1, "$");
    assert!(
        page1["value"][0].get("value").is_none(),
        "lists never carry values"
    );
    let next = page1["nextLink"].as_str().expect("nextLink");
    assert!(
        next.starts_with(
            "https://accvault.vault.azure.net:443/secrets?api-version=7.2&$skiptoken="
        ),
        "{next}"
    );
    assert!(next.ends_with("&maxresults=1"), "{next}");

    let resp = w
        .http()
        .get(next)
        .bearer_auth(token.as_str())
        .send()
        .await
        .expect("page 2");
    let page2: Value = resp.json().await.expect("json");
    assert_eq!(
        page2["value"][0]["id"],
        "https://accvault.vault.azure.net/secrets/listsecrettest1"
    );
    assert_eq!(page2["nextLink"], Value::Null);

    let (status, _, body) = get(
        &w,
        "/secrets?api-version=7.2&maxresults=26",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadParameter");
}

#[tokio::test]
async fn get_key_conforms_to_the_documented_example() {
    let w = World::start().await;
    w.kv.create_key(VAULT, "CreateSoftKeyTest", KeySpec::Rsa)
        .expect("key");
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let (status, _, body) = get(
        &w,
        "/keys/CreateSoftKeyTest/?api-version=7.4",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(status, 200);
    let mut example = parse(GET_KEY_EXAMPLE);
    example["tags"] = json!({}); // our key has no tags; the type still has to be an object
    assert_conforms(&example, &body, "$");
    assert_eq!(body["key"]["key_ops"], example["key"]["key_ops"]);
    assert_eq!(body["key"]["e"], "AQAB");
    let kid = body["key"]["kid"].as_str().expect("kid");
    assert!(
        kid.starts_with("https://accvault.vault.azure.net/keys/CreateSoftKeyTest/"),
        "{kid}"
    );

    w.kv.create_key(VAULT, "ec", KeySpec::EcP384).expect("key");
    let (_, _, ec) = get(&w, "/keys/ec?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(ec["key"]["kty"], "EC");
    assert_eq!(ec["key"]["crv"], "P-384");
    assert_eq!(ec["key"]["key_ops"], json!(["sign", "verify"]));
}

#[tokio::test]
async fn get_certificate_conforms_to_the_documented_example() {
    let w = World::start().await;
    let chain = testkit::certs::CertChain::builder(testkit::certs::KeyKind::Rsa2048)
        .common_name("KeyVaultTest")
        .build()
        .expect("chain");
    w.kv.import_certificate(
        VAULT,
        "selfSignedCert01",
        CertificateSpec::from_chain(
            &chain,
            CertificateFormat::Pfx(testkit::certs::PfxEncryption::Modern),
        ),
    )
    .expect("import");
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let (status, _, body) = get(
        &w,
        "/certificates/selfSignedCert01/?api-version=7.4",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(status, 200);
    assert_conforms(&parse(GET_CERTIFICATE_EXAMPLE), &body, "$");
    assert_eq!(body["x5t"], chain.leaf().x5t());
    assert_eq!(body["policy"]["x509_props"]["subject"], "CN=KeyVaultTest");
    let cer = body["cer"].as_str().expect("cer");
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(cer)
            .expect("base64"),
        chain.leaf().der()
    );

    let (status, _, policy) = get(
        &w,
        "/certificates/selfSignedCert01/policy?api-version=7.4",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(policy, body["policy"]);
}

#[tokio::test]
async fn unauthenticated_requests_get_key_vaults_challenge() {
    let w = World::start().await;
    let (status, headers, body) = get(&w, "/secrets/anything/?api-version=2025-07-01", None).await;
    assert_eq!(status, 401);
    assert_eq!(
        headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some(
            "Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", \
             resource=\"https://vault.azure.net\""
        )
    );
    assert_eq!(
        body,
        json!({"error":{"code":"Unauthorized","message":"AKV10000: Request is missing a Bearer or PoP token."}})
    );
    assert_eq!(w.kv.log().counts().challenges, 1);
    assert_eq!(w.kv.log().counts().authorized, 0);
}

#[tokio::test]
async fn a_missing_api_version_is_a_bad_request() {
    let w = World::start().await;
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let (status, _, body) = get(&w, "/secrets/a/", Some(token.as_str())).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "BadParameter");
}

#[tokio::test]
async fn tokens_for_another_audience_tenant_or_past_their_expiry_are_refused() {
    let clock = Clock::manual();
    let w = World::start_with_clock(clock.clone()).await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    let issuer = w.kv.issuer();
    let path = format!("/secrets/a/?api-version={API_VERSION}");

    let china = issuer.mint_for(
        &w.app,
        &Cloud::CHINA,
        "https://vault.azure.cn",
        Duration::from_secs(3600),
    );
    let (status, headers, body) = get(&w, &path, Some(china.as_str())).await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(
        body,
        json!({"error":{"code":"Unauthorized",
            "message":"AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://vault.azure.cn."}})
    );

    let other_tenant = w
        .app
        .clone()
        .in_tenant("2ac36096-05f9-482e-ae23-1bdb78adb0bb");
    let t = issuer.mint_for(
        &other_tenant,
        &Cloud::PUBLIC,
        "https://vault.azure.net",
        Duration::from_secs(3600),
    );
    let (status, _, body) = get(&w, &path, Some(t.as_str())).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["error"]["message"],
        "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/, \
         found https://sts.windows.net/2ac36096-05f9-482e-ae23-1bdb78adb0bb/."
    );

    let short = issuer.mint_for(
        &w.app,
        &Cloud::PUBLIC,
        "https://vault.azure.net",
        Duration::from_secs(60),
    );
    let (status, _, _) = get(&w, &path, Some(short.as_str())).await;
    assert_eq!(status, 200, "valid before expiry");
    clock.advance(Duration::from_secs(61));
    let (status, _, body) = get(&w, &path, Some(short.as_str())).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"error":{"code":"Unauthorized","message":"[TokenExpired] Error validating token: 'S2S12086'."}})
    );

    // Same claims signed by a key the vault does not trust.
    let forged_issuer = TokenIssuer::new(clock.clone()).expect("issuer");
    let mut claims = forged_issuer.claims_for(
        &w.app,
        &Cloud::PUBLIC,
        "https://vault.azure.net",
        Duration::from_secs(60),
    );
    claims.exp += 3600;
    let token = forged_issuer.mint(&claims);
    let parts: Vec<&str> = token.as_str().split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], parts[1], "c2lnbmF0dXJl");
    let (status, _, _) = get(&w, &path, Some(&forged)).await;
    assert_eq!(status, 401);

    assert_eq!(w.kv.log().counts().rejected_tokens, 4);
    assert_eq!(w.kv.log().counts().authorized, 1);
}

#[tokio::test]
async fn access_policies_refuse_unknown_principals_and_missing_permissions() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    let reader = Principal::new("reader");
    w.kv.grant(VAULT, &reader, Permissions::secrets_get())
        .expect("grant");
    let stranger = Principal::new("stranger");

    let token = w.kv.token_for(VAULT, &stranger).expect("token");
    let (status, _, body) = get(&w, "/secrets/a/?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(status, 403);
    let expected = format!(
        "The user, group or application 'appid={};oid={};iss=https://sts.windows.net/72f988bf-86f1-41af-91ab-2d7cd011db47/' \
         does not have secrets get permission on key vault 'accvault;location=westeurope'. For help resolving this issue, \
         please see https://go.microsoft.com/fwlink/?linkid=2125287",
        stranger.app_id, stranger.object_id
    );
    assert_eq!(
        body,
        json!({"error":{"code":"Forbidden","message":expected,"innererror":{"code":"AccessDenied"}}})
    );

    let token = w.kv.token_for(VAULT, &reader).expect("token");
    let (status, _, _) = get(&w, "/secrets/a/?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(status, 200);
    let (status, _, body) = get(&w, "/secrets?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(status, 403, "get does not imply list");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("does not have secrets list permission")
    );
    let (status, _, _) = get(&w, "/certificates/a?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(status, 403);
    // Permission is checked before existence: no probing of names.
    let (status, _, _) = get(
        &w,
        "/keys/does-not-exist?api-version=7.4",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn rbac_assignments_at_object_scope_grant_exactly_one_object() {
    let w = World::start().await;
    w.kv.create_vault(VaultSpec::new("rbacvault").authorization(AuthorizationModel::Rbac))
        .expect("vault");
    w.kv.set_secret("rbacvault", "mine", SecretSpec::new("x"))
        .expect("seed");
    w.kv.set_secret("rbacvault", "theirs", SecretSpec::new("y"))
        .expect("seed");
    let pod = Principal::new("pod-identity");
    let role = Permissions::for_role("Key Vault Secrets User").expect("role");
    w.kv.grant_object("rbacvault", &pod, role, ObjectKind::Secret, "mine")
        .expect("grant");
    let token = w.kv.token_for("rbacvault", &pod).expect("token");
    let http = w.http();
    let fetch = |name: &str| {
        http.get(format!(
            "https://rbacvault.vault.azure.net/secrets/{name}/?api-version=7.4"
        ))
        .bearer_auth(token.as_str())
        .send()
    };
    let mine = fetch("mine").await.expect("request");
    assert_eq!(mine.status(), 200);
    let theirs = fetch("theirs").await.expect("request");
    assert_eq!(theirs.status(), 403);
    let body: Value = theirs.json().await.expect("json");
    assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("Action: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'"),
        "{message}"
    );
    assert!(
        message.contains("/vaults/rbacvault/secrets/theirs'"),
        "{message}"
    );
    assert!(
        message.contains("\r\n"),
        "RBAC messages use CRLF line breaks"
    );
}

#[tokio::test]
async fn disabled_secrets_are_forbidden_and_expired_ones_are_still_served() {
    let w = World::start().await;
    let past = std::time::SystemTime::now() - Duration::from_secs(86_400);
    let future = std::time::SystemTime::now() + Duration::from_secs(86_400);
    w.kv.set_secret(VAULT, "old", SecretSpec::new("still-here").expires(past))
        .expect("seed");
    w.kv.set_secret(
        VAULT,
        "early",
        SecretSpec::new("already-here").not_before(future),
    )
    .expect("seed");
    w.kv.set_secret(VAULT, "off", SecretSpec::new("x"))
        .expect("seed");
    w.kv.set_enabled(VAULT, ObjectKind::Secret, "off", None, false)
        .expect("disable");
    let token = w.kv.token_for(VAULT, &w.app).expect("token");

    let (status, _, body) = get(&w, "/secrets/old/?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("still-here"))
    );
    let (status, _, body) = get(&w, "/secrets/early/?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(
        (status, body["value"].as_str()),
        (StatusCode::OK, Some("already-here"))
    );
    let (status, _, body) = get(&w, "/secrets/off/?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"error":{"code":"Forbidden","message":"Operation get is not allowed on a disabled secret.",
                        "innererror":{"code":"SecretDisabled"}}})
    );
    // Disabled secrets are still listed.
    let (_, _, list) = get(&w, "/secrets?api-version=7.4", Some(token.as_str())).await;
    let off = list["value"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"].as_str().is_some_and(|id| id.ends_with("/off")));
    assert_eq!(off.expect("listed")["attributes"]["enabled"], false);
}

#[tokio::test]
async fn missing_objects_answer_key_vaults_not_found_bodies() {
    let w = World::start().await;
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let (status, _, body) = get(&w, "/secrets/nope/?api-version=7.4", Some(token.as_str())).await;
    assert_eq!(status, 404);
    assert_eq!(
        body,
        json!({"error":{"code":"SecretNotFound","message":"A secret with (name/id) nope was not found in this key vault. \
            If you recently deleted this secret you may be able to recover it using the correct recovery command. \
            For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"}})
    );
    let (_, _, body) = get(
        &w,
        "/certificates/nope/0123?api-version=7.4",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(body["error"]["code"], "CertificateNotFound");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("m")
            .starts_with("A certificate with (name/id) nope/0123 ")
    );
    let (status, _, body) = get(
        &w,
        "/secrets/bad_name/?api-version=7.4",
        Some(token.as_str()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("BadParameter"))
    );
}
