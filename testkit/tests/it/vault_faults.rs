//! Every fault mode of the Key Vault fake has an observable effect on a real client.

use std::time::Duration;

use testkit::clock::Clock;
use testkit::faults::{Fault, Outcome};
use testkit::vault::SecretSpec;

use crate::support::{VAULT, World, no_retry, quick_retries};

#[tokio::test]
async fn an_injected_status_fails_the_call_until_it_is_used_up() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    w.kv.faults().inject(
        Fault::status(503)
            .on_path("/secrets/a")
            .authenticated_only()
            .times(2),
    );

    let err = w
        .secrets(no_retry())
        .get_secret("a", None)
        .await
        .expect_err("503");
    assert_eq!(err.http_status().map(u16::from), Some(503));
    // The second 503 is absorbed by the SDK's retry policy.
    let ok = w
        .secrets(quick_retries())
        .get_secret("a", None)
        .await
        .expect("retried");
    assert_eq!(ok.into_model().expect("model").value.as_deref(), Some("x"));
    assert_eq!(w.kv.log().counts().faulted, 2);
    assert_eq!(w.kv.faults().pending(), 0);
}

#[tokio::test]
async fn a_dropped_connection_is_a_transport_error_the_sdk_retries() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    w.kv.faults()
        .inject(Fault::drop_connection().authenticated_only().times(1));

    let raw = w
        .http()
        .get(w.url("/secrets/a/?api-version=7.4"))
        .bearer_auth(w.kv.token_for(VAULT, &w.app).expect("token").as_str());
    let err = raw.send().await.expect_err("dropped");
    assert!(!err.is_status(), "no HTTP answer at all: {err}");

    w.kv.faults()
        .inject(Fault::drop_connection().authenticated_only().times(1));
    let ok = w
        .secrets(quick_retries())
        .get_secret("a", None)
        .await
        .expect("retried after the drop");
    assert_eq!(ok.into_model().expect("model").value.as_deref(), Some("x"));
    let dropped = w.kv.log().filter(|r| r.outcome == Outcome::Dropped);
    assert_eq!(dropped.len(), 2);
    assert!(dropped.iter().all(|r| r.status == 0));
}

#[tokio::test]
async fn latency_waits_on_the_testkit_clock_not_on_the_wall_clock() {
    let clock = Clock::manual();
    let w = World::start_with_clock(clock.clone()).await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    // Ten minutes of latency: the test would time out if it were real.
    w.kv.faults().inject(
        Fault::latency(Duration::from_secs(600))
            .authenticated_only()
            .times(1),
    );
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let request = tokio::spawn(
        w.http()
            .get(w.url("/secrets/a/?api-version=7.4"))
            .bearer_auth(token.as_str())
            .send(),
    );

    w.kv.faults().wait_delayed(1).await;
    assert!(!request.is_finished(), "answered before the clock moved");
    assert_eq!(w.kv.log().counts().total, 0, "not answered yet");
    clock.advance(Duration::from_secs(600));
    let resp = tokio::time::timeout(Duration::from_secs(30), request)
        .await
        .expect("answered after the advance")
        .expect("task")
        .expect("response");
    assert_eq!(resp.status(), 200);
    assert_eq!(w.kv.log().counts().authorized, 1);
}

#[tokio::test]
async fn faults_can_target_one_vault_host_and_method() {
    let w = World::start().await;
    w.kv.create_vault(
        testkit::vault::VaultSpec::new("othervault")
            .grant(&w.app, testkit::vault::Permissions::all()),
    )
    .expect("vault");
    w.kv.set_secret(VAULT, "a", SecretSpec::new("x"))
        .expect("seed");
    w.kv.set_secret("othervault", "a", SecretSpec::new("y"))
        .expect("seed");
    w.kv.faults().inject(
        Fault::status(500)
            .on_host("othervault.vault.azure.net")
            .on_method("GET"),
    );
    let http = w.http();
    let t1 = w.kv.token_for(VAULT, &w.app).expect("token");
    let t2 = w.kv.token_for("othervault", &w.app).expect("token");
    let a = http
        .get(w.url("/secrets/a?api-version=7.4"))
        .bearer_auth(t1.as_str())
        .send()
        .await
        .expect("a");
    let b = http
        .get("https://othervault.vault.azure.net/secrets/a?api-version=7.4")
        .bearer_auth(t2.as_str())
        .send()
        .await
        .expect("b");
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 500));
    let body: serde_json::Value = b.json().await.expect("json");
    assert_eq!(body["error"]["code"], "InternalServerError");
}

#[tokio::test]
async fn the_request_log_never_holds_tokens_or_values() {
    let w = World::start().await;
    w.kv.set_secret(VAULT, "a", SecretSpec::new("very-secret-value"))
        .expect("seed");
    let ok = w
        .secrets(no_retry())
        .get_secret("a", None)
        .await
        .expect("get");
    assert_eq!(
        ok.into_model().expect("model").value.as_deref(),
        Some("very-secret-value")
    );
    let token = w.kv.token_for(VAULT, &w.app).expect("token");
    let dump = format!("{:?}", w.kv.log().records());
    assert!(!dump.contains("very-secret-value"));
    assert!(
        !dump.contains(token.as_str().split('.').next().expect("header")),
        "no token parts"
    );
    assert!(!format!("{token:?}").contains(token.as_str()));
}
