//! Kubernetes Events the controller publishes (events.k8s.io/v1, through kube's Recorder).
//!
//! In: an object reference, a reason and a message. Out: an Event; failures are logged, never
//! fatal (an Event is advice, not state).

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

/// Reason of the Event telling a pod where it will run.
pub const NOMINATED: &str = "Nominated";
/// Reason of the Event telling a pod why no node can be made for it.
pub const FAILED_SCHEDULING: &str = "FailedScheduling";

/// The controller's event publisher.
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
}

impl Events {
    /// A publisher reporting as `purser` from replica `instance`.
    pub fn new(client: kube::Client, instance: &str) -> Self {
        let reporter = Reporter {
            controller: super::MANAGER.into(),
            instance: Some(instance.to_string()),
        };
        Events {
            recorder: Recorder::new(client, reporter),
        }
    }

    /// Publish a Normal event.
    pub async fn normal(&self, regarding: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(regarding, EventType::Normal, reason, action, note).await;
    }

    /// Publish a Warning event.
    pub async fn warning(&self, regarding: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(regarding, EventType::Warning, reason, action, note).await;
    }

    async fn publish(&self, regarding: &ObjectReference, type_: EventType, reason: &str, action: &str, note: String) {
        let mut note = note;
        note.truncate(1000);
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, regarding).await {
            tracing::warn!(reason, error = %e, "cannot publish an event");
        }
    }
}

/// A reference to the pod `namespace/name`.
pub fn pod_ref(key: &str) -> ObjectReference {
    let (namespace, name) = key.split_once('/').unwrap_or(("default", key));
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        ..ObjectReference::default()
    }
}

/// A reference to a cluster-scoped object of `kind` in `api_version`.
pub fn cluster_ref(api_version: &str, kind: &str, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.into()),
        kind: Some(kind.into()),
        name: Some(name.into()),
        ..ObjectReference::default()
    }
}
