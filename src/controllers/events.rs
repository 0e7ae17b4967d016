//! Kubernetes Events the controller publishes (events.k8s.io/v1).
//!
//! In: an object reference, a reason and a message. Out: an Event; the same message about the
//! same object within six minutes becomes one Event with a growing `series` (as kube-runtime's
//! `Recorder` does), but a new message is a new Event: the Recorder keys its series without the
//! note, so a pod re-nominated to another NodeClaim kept its first, stale nomination. Failures
//! are logged, never fatal (an Event is advice, not state).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

/// Reason of the Event telling a pod where it will run.
pub const NOMINATED: &str = "Nominated";
/// Reason of the Event telling a pod why no node can be made for it.
pub const FAILED_SCHEDULING: &str = "FailedScheduling";

/// How long a published Event is extended instead of repeated.
const SERIES_FOR: Duration = Duration::from_secs(6 * 60);

/// What makes two Events the same: the object, type, reason, action and note.
type Key = (String, String, &'static str, String, String, String);

/// An Event already published: its name, namespace, count and when it was last seen.
struct Published {
    name: String,
    namespace: String,
    count: i32,
    last: Instant,
}

/// The controller's event publisher.
pub struct Events {
    client: kube::Client,
    instance: String,
    published: Mutex<HashMap<Key, Published>>,
}

impl Events {
    /// A publisher reporting as `purser` from replica `instance`.
    pub fn new(client: kube::Client, instance: &str) -> Self {
        Events {
            client,
            instance: instance.to_string(),
            published: Mutex::new(HashMap::new()),
        }
    }

    /// Publish a Normal event.
    pub async fn normal(&self, regarding: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(regarding, "Normal", reason, action, note).await;
    }

    /// Publish a Warning event.
    pub async fn warning(&self, regarding: &ObjectReference, reason: &str, action: &str, note: String) {
        self.publish(regarding, "Warning", reason, action, note).await;
    }

    async fn publish(
        &self,
        regarding: &ObjectReference,
        type_: &'static str,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let mut note = note;
        note.truncate(1000);
        let key: Key = (
            reference_key(regarding),
            regarding.namespace.clone().unwrap_or_default(),
            type_,
            reason.to_string(),
            action.to_string(),
            note.clone(),
        );
        let result = match self.repeat(&key) {
            Some((name, namespace, count)) => self.extend(&name, &namespace, count).await,
            None => self.create(regarding, type_, reason, action, &note).await,
        };
        match result {
            Ok((name, namespace, count)) => self.remember(key, name, namespace, count),
            Err(e) => tracing::warn!(reason, error = %e, "cannot publish an event"),
        }
    }

    /// The Event to extend for `key`, with its next count, when one was published recently.
    fn repeat(&self, key: &Key) -> Option<(String, String, i32)> {
        let mut published = self.published.lock().ok()?;
        published.retain(|_, p| p.last.elapsed() < SERIES_FOR);
        published
            .get(key)
            .map(|p| (p.name.clone(), p.namespace.clone(), p.count + 1))
    }

    fn remember(&self, key: Key, name: String, namespace: String, count: i32) {
        if let Ok(mut published) = self.published.lock() {
            published.insert(
                key,
                Published {
                    name,
                    namespace,
                    count,
                    last: Instant::now(),
                },
            );
        }
    }

    async fn create(
        &self,
        regarding: &ObjectReference,
        type_: &str,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(String, String, i32), kube::Error> {
        let now = k8s_openapi::jiff::Timestamp::now();
        let namespace = regarding.namespace.clone().unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            regarding.name.as_deref().unwrap_or(super::MANAGER),
            now.as_nanosecond()
        );
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            action: Some(action.into()),
            reason: Some(reason.into()),
            note: Some(note.into()),
            type_: Some(type_.into()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            reporting_controller: Some(super::MANAGER.into()),
            reporting_instance: Some(self.instance.clone()),
            ..Event::default()
        };
        Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await?;
        Ok((name, namespace, 1))
    }

    async fn extend(&self, name: &str, namespace: &str, count: i32) -> Result<(String, String, i32), kube::Error> {
        let series = EventSeries {
            count,
            last_observed_time: MicroTime(k8s_openapi::jiff::Timestamp::now()),
        };
        let patch = json!({"series": series});
        Api::<Event>::namespaced(self.client.clone(), namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok((name.to_string(), namespace.to_string(), count))
    }
}

/// `kind/namespace/name` of a reference.
fn reference_key(r: &ObjectReference) -> String {
    format!(
        "{}/{}/{}",
        r.kind.as_deref().unwrap_or_default(),
        r.namespace.as_deref().unwrap_or_default(),
        r.name.as_deref().unwrap_or_default()
    )
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
