//! The fake API server driven by kube's real client and kube-runtime: CRUD semantics,
//! watches that recover, a real `Controller`, GC, finalizers, namespaces, CRD versions and
//! validation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, CustomResource, CustomResourceExt as _, Resource as _, ResourceExt as _};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use testkit::apiserver::{ApiServerFake, ApiServerOptions};
use testkit::faults::Fault;

/// A started server and a kube client for it, built from the kubeconfig it writes.
pub async fn cluster() -> (ApiServerFake, Client) {
    cluster_with(ApiServerOptions::default()).await
}

pub async fn cluster_with(opts: ApiServerOptions) -> (ApiServerFake, Client) {
    testkit::install_crypto_provider();
    let api = ApiServerFake::start(opts)
        .await
        .expect("start the API server fake");
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&api.kubeconfig_yaml()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    (api, client)
}

/// Polls `check` until it holds or 10 s pass (a deadline guard, not a sleep-to-wait).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn secret(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "labels": labels.iter().cloned().collect::<BTreeMap<_, _>>()},
        "stringData": data.iter().cloned().collect::<BTreeMap<_, _>>(),
    }))
    .expect("secret")
}

fn api_status(err: kube::Error) -> (u16, String, serde_json::Value) {
    match err {
        kube::Error::Api(s) => (
            s.code,
            s.reason.clone(),
            serde_json::to_value(&s).expect("status json"),
        ),
        other => panic!("expected an API error, got {other}"),
    }
}

#[tokio::test]
async fn secrets_round_trip_with_server_side_defaults_and_conflicts() {
    let (_api, client) = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let created = secrets
        .create(
            &PostParams::default(),
            &secret("db", &[("app", "web")], &[("password", "hunter2")]),
        )
        .await
        .expect("create");
    let meta = &created.metadata;
    assert_eq!(meta.uid.as_deref().map(str::len), Some(36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    assert_eq!(
        created
            .data
            .as_ref()
            .and_then(|d| d.get("password"))
            .map(|b| b.0.as_slice()),
        Some(&b"hunter2"[..])
    );
    assert!(
        created.string_data.is_none(),
        "stringData is merged into data"
    );
    assert!(
        meta.managed_fields.as_ref().is_some_and(|m| !m.is_empty()),
        "managedFields recorded"
    );

    let err = secrets
        .create(&PostParams::default(), &secret("db", &[], &[]))
        .await
        .expect_err("exists");
    assert_eq!(api_status(err).1, "AlreadyExists");

    // Optimistic concurrency: an update from a stale copy is refused.
    let mut first = secrets.get("db").await.expect("get");
    let mut second = first.clone();
    first
        .metadata
        .labels
        .get_or_insert_default()
        .insert("v".into(), "1".into());
    secrets
        .replace("db", &PostParams::default(), &first)
        .await
        .expect("first update");
    second
        .metadata
        .labels
        .get_or_insert_default()
        .insert("v".into(), "2".into());
    let (code, reason, _) = api_status(
        secrets
            .replace("db", &PostParams::default(), &second)
            .await
            .expect_err("stale"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));

    let patched = secrets
        .patch(
            "db",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"app": null, "tier": "db"}}})),
        )
        .await
        .expect("merge patch");
    let labels = patched.metadata.labels.expect("labels");
    assert_eq!(labels.get("tier").map(String::as_str), Some("db"));
    assert!(!labels.contains_key("app"));

    let gone = secrets
        .delete("db", &DeleteParams::default())
        .await
        .expect("delete");
    assert!(gone.is_right(), "deleted at once: a Status");
    let (code, _, status) = api_status(secrets.get("db").await.expect_err("gone"));
    assert_eq!(code, 404);
    assert_eq!(status["message"], "secrets \"db\" not found");
}

#[tokio::test]
async fn lists_filter_by_labels_and_fields_and_page_with_continue_tokens() {
    let (api, client) = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    for i in 0..7 {
        let tier = if i % 2 == 0 { "even" } else { "odd" };
        secrets
            .create(
                &PostParams::default(),
                &secret(&format!("s{i}"), &[("tier", tier)], &[]),
            )
            .await
            .expect("create");
    }
    let even = secrets
        .list(&ListParams::default().labels("tier=even"))
        .await
        .expect("list");
    assert_eq!(even.items.len(), 4);
    let set = secrets
        .list(&ListParams::default().labels("tier in (odd),tier notin (even)"))
        .await
        .expect("list");
    assert_eq!(set.items.len(), 3);
    let one = secrets
        .list(&ListParams::default().fields("metadata.name=s3"))
        .await
        .expect("list");
    assert_eq!(
        one.items.iter().map(|s| s.name_any()).collect::<Vec<_>>(),
        ["s3"]
    );

    let mut names = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = secrets.list(&params).await.expect("page");
        pages += 1;
        names.extend(page.items.iter().map(|s| s.name_any()));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => params = params.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["s0", "s1", "s2", "s3", "s4", "s5", "s6"]);

    let first = secrets
        .list(&ListParams::default().limit(2))
        .await
        .expect("page");
    secrets
        .create(&PostParams::default(), &secret("later", &[], &[]))
        .await
        .expect("create");
    api.compact();
    let token = first.metadata.continue_.expect("continue");
    let (code, reason, _) = api_status(
        secrets
            .list(&ListParams::default().limit(2).continue_token(&token))
            .await
            .expect_err("too old"),
    );
    assert_eq!((code, reason.as_str()), (410, "Expired"));
}

async fn next_name(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("watch event")
        .expect("open")
}

#[tokio::test]
async fn a_watcher_recovers_from_expired_history_and_closed_connections() {
    let (api, client) = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stream = watcher(cms.clone(), watcher::Config::default()).applied_objects();
    let task = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            if let Ok(cm) = item {
                let _ = tx.send(cm.name_any());
            }
        }
    });
    let create = |name: &'static str| {
        let cms = cms.clone();
        async move {
            let cm: ConfigMap =
                serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}}))
                    .expect("cm");
            cms.create(&PostParams::default(), &cm)
                .await
                .expect("create");
        }
    };

    create("one").await;
    assert_eq!(next_name(&mut rx).await, "one");
    api.watches().wait_open(1).await;

    // History compacted and the watch closed: the re-watch gets 410, the watcher re-lists.
    api.compact();
    api.watches().expire_next(1);
    api.watches().close_all();
    create("two").await;
    let mut seen = Vec::new();
    while !seen.contains(&"two".to_string()) {
        seen.push(next_name(&mut rx).await);
    }

    // A dropped watch connection is retried too.
    api.faults()
        .inject(Fault::drop_connection().on_method("GET").times(1));
    api.watches().close_all();
    create("three").await;
    while next_name(&mut rx).await != "three" {}
    task.abort();
    assert!(api.log().counts().faulted >= 1);
}

#[tokio::test]
async fn watches_replay_from_a_resource_version_and_send_bookmarks() {
    let (api, client) = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = cms.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    for name in ["a", "b"] {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
        cms.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let params = kube::api::WatchParams::default().timeout(290);
    let stream = cms.watch(&params, &rv).await.expect("watch");
    let mut stream = std::pin::pin!(stream);
    let mut names = Vec::new();
    while names.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .expect("event")
            .expect("ok")
        {
            Some(kube::api::WatchEvent::Added(cm)) => names.push(cm.name_any()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(names, ["a", "b"]);
    api.watches().bookmark_now();
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("event")
        .expect("ok")
    {
        Some(kube::api::WatchEvent::Bookmark(b)) => {
            assert!(!b.metadata.resource_version.is_empty())
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    // From a compacted version: ERROR 410 Expired.
    api.compact();
    let stream = cms.watch(&params, &rv).await.expect("watch");
    let mut stream = std::pin::pin!(stream);
    match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("event")
        .expect("ok")
    {
        Some(kube::api::WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"))
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, JsonSchema)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Thing",
    namespaced,
    status = "ThingStatus"
)]
#[kube(printcolumn = r#"{"name":"Value","type":"string","jsonPath":".spec.value"}"#)]
pub struct ThingSpec {
    pub value: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, JsonSchema)]
pub struct ThingStatus {
    pub synced: bool,
}

pub async fn install_crd(client: &Client, crd: &CustomResourceDefinition) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), crd)
        .await
        .expect("create CRD");
    let name = crd.name_any();
    eventually("CRD established", || {
        let crds = crds.clone();
        let name = name.clone();
        async move {
            crds.get(&name)
                .await
                .ok()
                .and_then(|c| c.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                })
        }
    })
    .await;
}

#[derive(Debug, thiserror::Error)]
#[error("reconcile failed")]
struct ReconcileError(#[source] kube::Error);

async fn reconcile(thing: Arc<Thing>, client: Arc<Client>) -> Result<Action, ReconcileError> {
    let ns = thing.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced((*client).clone(), &ns);
    let owner = thing.controller_owner_ref(&()).expect("owner ref");
    let s: Secret = serde_json::from_value(json!({
        "metadata": {"name": format!("{}-out", thing.name_any()), "ownerReferences": [owner]},
        "stringData": {"value": thing.spec.value},
    }))
    .expect("secret");
    secrets
        .patch(
            &s.name_any(),
            &PatchParams::apply("thing-controller").force(),
            &Patch::Apply(&s),
        )
        .await
        .map_err(ReconcileError)?;
    let things: Api<Thing> = Api::namespaced((*client).clone(), &ns);
    things
        .patch_status(
            &thing.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"synced": true}})),
        )
        .await
        .map_err(ReconcileError)?;
    Ok(Action::await_change())
}

#[tokio::test]
async fn a_kube_runtime_controller_reconciles_and_garbage_collection_follows_owners() {
    let (api, client) = cluster().await;
    install_crd(&client, &Thing::crd()).await;
    let things: Api<Thing> = Api::namespaced(client.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let controller = Controller::new(things.clone(), watcher::Config::default())
        .owns(secrets.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_secs(1)),
            Arc::new(client.clone()),
        )
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    let thing = Thing::new("alpha", ThingSpec { value: "42".into() });
    let created = things
        .create(&PostParams::default(), &thing)
        .await
        .expect("create");
    assert_eq!(created.metadata.generation, Some(1));
    eventually("the controller wrote the secret and the status", || {
        let (secrets, things) = (secrets.clone(), things.clone());
        async move {
            let s = secrets.get_opt("alpha-out").await.ok().flatten();
            let t = things.get("alpha").await.ok();
            s.is_some() && t.and_then(|t| t.status).is_some_and(|st| st.synced)
        }
    })
    .await;
    let t = things.get("alpha").await.expect("get");
    assert_eq!(
        t.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );

    // A spec change bumps generation and is reconciled into the Secret.
    things
        .patch(
            "alpha",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"value": "43"}})),
        )
        .await
        .expect("patch spec");
    assert_eq!(
        things.get("alpha").await.expect("get").metadata.generation,
        Some(2)
    );
    eventually("the secret follows the spec", || {
        let secrets = secrets.clone();
        async move {
            secrets
                .get("alpha-out")
                .await
                .ok()
                .and_then(|s| s.data)
                .and_then(|d| d.get("value").map(|v| v.0.clone()))
                == Some(b"43".to_vec())
        }
    })
    .await;

    // Deleting the owner removes what it owns, asynchronously.
    things
        .delete("alpha", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the owned secret is collected", || {
        let secrets = secrets.clone();
        async move { secrets.get_opt("alpha-out").await.ok().flatten().is_none() }
    })
    .await;
    controller.abort();
    assert!(api.writes() >= 4);
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed_and_foreground_waits_for_dependents() {
    let (_api, client) = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "owner", "finalizers": ["example.com/keep"]}}),
    )
    .expect("cm");
    let owner = cms
        .create(&PostParams::default(), &owner)
        .await
        .expect("create");
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid().expect("uid"), "blockOwnerDeletion": true}]}}))
    .expect("cm");
    cms.create(&PostParams::default(), &dep)
        .await
        .expect("create");

    let deleting = cms
        .delete("owner", &DeleteParams::foreground())
        .await
        .expect("delete");
    let obj = deleting.left().expect("still there while finalizers run");
    assert!(obj.metadata.deletion_timestamp.is_some());
    eventually("the dependent goes first", || {
        let cms = cms.clone();
        async move { cms.get_opt("dep").await.ok().flatten().is_none() }
    })
    .await;
    let owner = cms.get("owner").await.expect("held by its own finalizer");
    assert_eq!(owner.finalizers(), ["example.com/keep"]);
    let err = cms
        .patch(
            "owner",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
            {"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/late"}]))
                .expect("json patch"),
            ),
        )
        .await
        .expect_err("no new finalizers while deleting");
    assert_eq!(api_status(err).0, 422);
    cms.patch(
        "owner",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("remove finalizer");
    assert!(
        cms.get_opt("owner").await.expect("get").is_none(),
        "gone once the last finalizer is removed"
    );
}

#[tokio::test]
async fn deleting_a_namespace_removes_its_objects_then_itself() {
    let (_api, client) = cluster().await;
    let nss: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "team-a"}})).expect("ns");
    nss.create(&PostParams::default(), &ns)
        .await
        .expect("create ns");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team-a");
    secrets
        .create(&PostParams::default(), &secret("s", &[], &[]))
        .await
        .expect("create");
    let missing: Api<Secret> = Api::namespaced(client.clone(), "nope");
    let (code, _, status) = api_status(
        missing
            .create(&PostParams::default(), &secret("s", &[], &[]))
            .await
            .expect_err("no ns"),
    );
    assert_eq!(code, 404);
    assert_eq!(status["message"], "namespaces \"nope\" not found");

    nss.delete("team-a", &DeleteParams::default())
        .await
        .expect("delete ns");
    eventually("namespace and contents gone", || {
        let (nss, secrets) = (nss.clone(), secrets.clone());
        async move {
            nss.get_opt("team-a").await.ok().flatten().is_none()
                && secrets
                    .list(&ListParams::default())
                    .await
                    .map(|l| l.items.is_empty())
                    .unwrap_or(false)
        }
    })
    .await;
}

#[tokio::test]
async fn server_side_apply_tracks_owners_conflicts_and_forced_transfers() {
    let (_api, client) = cluster().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"a": "1", "common": "x"}});
    cms.patch("shared", &PatchParams::apply("alice"), &Patch::Apply(&a))
        .await
        .expect("alice applies");
    let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"b": "2", "common": "y"}});
    let (code, reason, status) = api_status(
        cms.patch("shared", &PatchParams::apply("bob"), &Patch::Apply(&b))
            .await
            .expect_err("conflict"),
    );
    assert_eq!((code, reason.as_str()), (409, "Conflict"));
    let causes = status["details"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("causes in {status}"));
    assert_eq!(causes[0]["reason"], "FieldManagerConflict", "{status}");
    assert_eq!(causes[0]["field"], ".data.common");

    let forced = cms
        .patch(
            "shared",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(&b),
        )
        .await
        .expect("forced");
    let data = forced.data.expect("data");
    assert_eq!(data.get("common").map(String::as_str), Some("y"));
    assert_eq!(
        data.get("a").map(String::as_str),
        Some("1"),
        "alice's other field stays"
    );
    // Alice now omits `a`: it is removed, since nobody else owns it.
    let a2 = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {}});
    let after = cms
        .patch("shared", &PatchParams::apply("alice"), &Patch::Apply(&a2))
        .await
        .expect("alice re-applies");
    let data = after.data.unwrap_or_default();
    assert!(!data.contains_key("a"));
    assert_eq!(data.get("b").map(String::as_str), Some("2"));
    let managers: Vec<String> = after
        .metadata
        .managed_fields
        .unwrap_or_default()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"bob".to_string()), "{managers:?}");
}

#[tokio::test]
async fn crd_versions_are_served_with_apiversion_rewritten_and_unknown_fields_pruned() {
    let (_api, client) = cluster().await;
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [
                {"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"type": "integer"}, "legacy": {"type": "string"},
                        "mode": {"type": "string", "enum": ["fast", "slow"]}}}}}}},
                {"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer"}}}}}}}
            ]}
    }))
    .expect("crd");
    install_crd(&client, &crd).await;
    let ar1 = kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1alpha1".into(),
        api_version: "example.com/v1alpha1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    };
    let old: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar1);
    let obj: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1alpha1", "kind": "Gadget", "metadata": {"name": "g"},
        "spec": {"size": 3, "legacy": "yes", "unknown": true}}))
    .expect("obj");
    let stored = old
        .create(&PostParams::default(), &obj)
        .await
        .expect("create");
    assert_eq!(
        stored.data["spec"],
        json!({"size": 3, "legacy": "yes"}),
        "unknown field pruned on write"
    );

    let mut ar2 = ar1.clone();
    ar2.version = "v1".into();
    ar2.api_version = "example.com/v1".into();
    let new: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar2);
    let read = new.get("g").await.expect("get at v1");
    assert_eq!(
        read.types.as_ref().map(|t| t.api_version.as_str()),
        Some("example.com/v1")
    );
    assert_eq!(
        read.data["spec"],
        json!({"size": 3}),
        "pruned per the v1 schema"
    );

    let bad: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1alpha1", "kind": "Gadget", "metadata": {"name": "bad"},
        "spec": {"mode": "warp"}}))
    .expect("obj");
    let (code, reason, status) = api_status(
        old.create(&PostParams::default(), &bad)
            .await
            .expect_err("invalid"),
    );
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .expect("causes")
        .iter()
        .filter_map(|c| c["field"].as_str())
        .collect();
    assert!(
        fields.contains(&"spec.size") && fields.contains(&"spec.mode"),
        "{fields:?}"
    );
}

#[tokio::test]
async fn secrets_are_validated_like_the_real_server() {
    let (_api, client) = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(client, "default");
    let (code, _, status) = api_status(
        secrets
            .create(&PostParams::default(), &secret("Bad_Name", &[], &[]))
            .await
            .expect_err("name"),
    );
    assert_eq!(code, 422);
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");

    let tls: Secret = serde_json::from_value(json!({"metadata": {"name": "tls"}, "type": "kubernetes.io/tls", "stringData": {"tls.crt": "x"}})).expect("s");
    let (code, _, status) = api_status(
        secrets
            .create(&PostParams::default(), &tls)
            .await
            .expect_err("tls"),
    );
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        "Secret \"tls\" is invalid: data[tls.key]: Required value"
    );

    secrets
        .create(&PostParams::default(), &secret("plain", &[], &[("k", "v")]))
        .await
        .expect("create");
    let (code, _, status) = api_status(
        secrets
            .patch(
                "plain",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"type": "kubernetes.io/basic-auth", "stringData": {"username": "u"}}),
                ),
            )
            .await
            .expect_err("type is immutable"),
    );
    assert_eq!(code, 422);
    assert!(
        status["message"]
            .as_str()
            .expect("m")
            .contains("type: Invalid value: \"kubernetes.io/basic-auth\": field is immutable")
    );
}

#[tokio::test]
async fn injected_500s_on_secret_writes_surface_through_kube_while_configmaps_keep_working() {
    let (api, client) = cluster().await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let other_ns: Api<Secret> = Api::namespaced(client.clone(), "kube-system");
    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    secrets
        .create(
            &PostParams::default(),
            &secret("before", &[], &[("k", "v")]),
        )
        .await
        .expect("create before the fault");

    // Every write of a secret, in any namespace: the `secrets` segment, one rule per verb.
    for method in ["POST", "PUT", "PATCH", "DELETE"] {
        api.faults().inject(
            Fault::status(500)
                .on_method(method)
                .on_path_segment("secrets"),
        );
    }

    let (code, reason, status) = api_status(
        secrets
            .create(&PostParams::default(), &secret("db", &[], &[("k", "v")]))
            .await
            .expect_err("secret create fails"),
    );
    assert_eq!((code, reason.as_str()), (500, "InternalError"));
    assert_eq!(status["status"], "Failure");
    assert_eq!(
        status["message"],
        "Internal error occurred: injected by testkit"
    );
    let (code, ..) = api_status(
        other_ns
            .create(&PostParams::default(), &secret("db", &[], &[]))
            .await
            .expect_err("another namespace fails too"),
    );
    assert_eq!(code, 500);
    let (code, ..) = api_status(
        secrets
            .patch(
                "before",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
            )
            .await
            .expect_err("secret patch fails"),
    );
    assert_eq!(code, 500);
    let (code, ..) = api_status(
        secrets
            .delete("before", &DeleteParams::default())
            .await
            .expect_err("secret delete fails"),
    );
    assert_eq!(code, 500);

    // Reads of secrets and every configmap call are untouched.
    let before = secrets.get("before").await.expect("reads still work");
    assert!(
        !before.labels().contains_key("x"),
        "the patch did not land: {:?}",
        before.metadata.labels
    );
    assert_eq!(
        secrets
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        1,
        "the failed create left nothing behind"
    );
    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "settings"}, "data": {"k": "v"}}))
            .expect("cm");
    cms.create(&PostParams::default(), &cm)
        .await
        .expect("configmap create");
    let patched = cms
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"k": "w"}})),
        )
        .await
        .expect("configmap patch");
    assert_eq!(
        patched.data.and_then(|d| d.get("k").cloned()).as_deref(),
        Some("w")
    );
    cms.delete("settings", &DeleteParams::default())
        .await
        .expect("configmap delete");

    let faulted = api.log().filter(|r| r.status == 500);
    assert_eq!(faulted.len(), 4, "{faulted:?}");
    assert!(
        faulted
            .iter()
            .all(|r| r.path.split('/').any(|s| s == "secrets")),
        "{faulted:?}"
    );
}
