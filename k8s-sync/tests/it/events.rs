//! `k8s_sync::events::EventPublisher` against the fake API server: new Events, series for
//! repeats, a new Event for a new note, and a new Event when the series head is gone.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_sync::events::{Event, EventPublisher, EventType};
use kube::api::{Api, DeleteParams, ListParams};

use crate::support::cluster;

fn regarding(name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some("spv.no/v2beta1".into()),
        kind: Some("AzureKeyVaultSecret".into()),
        name: Some(name.into()),
        namespace: Some("default".into()),
        uid: Some(format!("uid-{name}")),
        ..Default::default()
    }
}

fn event(reason: &str, note: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.into(),
        note: note.into(),
        action: "Sync".into(),
    }
}

#[tokio::test]
async fn repeats_become_a_series_and_new_notes_new_events() {
    let (_api, client) = cluster().await;
    let events: Api<K8sEvent> = Api::namespaced(client.clone(), "default");
    let publisher = EventPublisher::new(client, "azurekeyvaultcontroller".into(), "pod-1".into());
    let a = regarding("a");

    publisher
        .publish(&event("ErrAzureVault", "503"), &a)
        .await
        .expect("publish");
    publisher
        .publish(&event("ErrAzureVault", "503"), &a)
        .await
        .expect("repeat");
    publisher
        .publish(&event("ErrAzureVault", "503"), &a)
        .await
        .expect("repeat");
    let list = events
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert_eq!(list.len(), 1, "repeats patch one Event");
    let e = &list[0];
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(3));
    assert_eq!(e.reason.as_deref(), Some("ErrAzureVault"));
    assert_eq!(e.type_.as_deref(), Some("Warning"));
    assert_eq!(
        e.reporting_controller.as_deref(),
        Some("azurekeyvaultcontroller")
    );
    assert_eq!(e.reporting_instance.as_deref(), Some("pod-1"));
    assert_eq!(e.regarding.as_ref(), Some(&a));

    // Another note, or another object: a new Event.
    publisher
        .publish(&event("ErrAzureVault", "403"), &a)
        .await
        .expect("new note");
    publisher
        .publish(&event("ErrAzureVault", "503"), &regarding("b"))
        .await
        .expect("other object");
    assert_eq!(
        events
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len(),
        3
    );
    assert_eq!(publisher.remembered(), 3);

    // The series head was deleted (e.g. expired): the next repeat creates a new Event.
    let head = e.metadata.name.clone().expect("name");
    events
        .delete(&head, &DeleteParams::default())
        .await
        .expect("delete");
    publisher
        .publish(&event("ErrAzureVault", "503"), &a)
        .await
        .expect("after delete");
    let list = events
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    assert_eq!(list.len(), 3);
    assert!(
        list.iter().any(|e| e.note.as_deref() == Some("503")
            && e.regarding.as_ref() == Some(&a)
            && e.series.is_none()),
        "a fresh Event for a: {list:?}"
    );
}
