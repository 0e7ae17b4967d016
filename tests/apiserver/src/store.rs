//! The object store: every object as JSON, one global resourceVersion counter, the change
//! history that watches replay, and the table of served resource types.
//!
//! In: committed writes from `writes`. Out: reads for handlers and `Change`s, both kept in
//! `history` (until `compact`) and broadcast to live watches.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::broadcast;

use crate::fields::ManagedFields;
use crate::resources::{self, ResourceType};

/// Where an object lives: resource key (`group/plural`), namespace (empty if cluster-scoped)
/// and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectKey {
    /// `ResourceType::key()` of the object's type.
    pub resource: String,
    /// Namespace, or empty for cluster-scoped objects.
    pub namespace: String,
    /// Object name.
    pub name: String,
}

/// A stored object and the fields each manager owns.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The object as served (without `managedFields`).
    pub object: Value,
    /// Field ownership used by server-side apply.
    pub managed: ManagedFields,
}

/// Type of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeType {
    /// Object created.
    Added,
    /// Object changed.
    Modified,
    /// Object removed.
    Deleted,
}

/// One committed change, as replayed to watches.
#[derive(Debug, Clone)]
pub struct Change {
    /// resourceVersion of the change.
    pub rv: u64,
    /// Key of the changed object.
    pub key: ObjectKey,
    /// What happened.
    pub kind: ChangeType,
    /// Object after the change (for `Deleted`, its last state).
    pub object: Value,
    /// Object before the change, for `Modified`.
    pub previous: Option<Value>,
}

/// What a watch from a resourceVersion starts with: retained changes, then live ones.
#[derive(Debug)]
pub struct Replay {
    /// Changes after the requested resourceVersion, oldest first.
    pub history: Vec<Arc<Change>>,
    /// Changes committed after `history`.
    pub receiver: broadcast::Receiver<Arc<Change>>,
}

/// All server state that writes must change atomically.
#[derive(Debug)]
pub struct Store {
    rv: u64,
    compacted: u64,
    counter: u64,
    objects: BTreeMap<ObjectKey, Entry>,
    history: Vec<Arc<Change>>,
    changes: broadcast::Sender<Arc<Change>>,
    resources: Vec<ResourceType>,
}

const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

impl Default for Store {
    fn default() -> Self {
        let (changes, _) = broadcast::channel(16 * 1024);
        Store {
            rv: 0,
            compacted: 0,
            counter: 0,
            objects: BTreeMap::new(),
            history: Vec::new(),
            changes,
            resources: resources::builtins(),
        }
    }
}

impl Store {
    /// The latest resourceVersion handed out.
    pub fn current_rv(&self) -> u64 {
        self.rv
    }

    /// Oldest resourceVersion a watch may start from without 410 Gone.
    pub fn compacted_rv(&self) -> u64 {
        self.compacted
    }

    /// Forget the change history: watches from an older resourceVersion get 410.
    pub fn compact(&mut self) {
        self.compacted = self.rv;
        self.history.clear();
    }

    /// A fresh, deterministic uid.
    pub fn next_uid(&mut self) -> String {
        self.counter += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.counter)
    }

    /// A deterministic five-character suffix for `generateName`.
    pub fn next_suffix(&mut self) -> String {
        self.counter += 1;
        let mut n = self.counter.wrapping_mul(2_654_435_761) % 14_348_907;
        let base = NAME_ALPHABET.len() as u64;
        (0..5)
            .map(|_| {
                let c = NAME_ALPHABET[(n % base) as usize] as char;
                n /= base;
                c
            })
            .collect()
    }

    /// Stored entry at `key`.
    pub fn get(&self, key: &ObjectKey) -> Option<&Entry> {
        self.objects.get(key)
    }

    /// Objects of `resource`, in `namespace` if given, ordered by namespace and name.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .iter()
            .filter(|(k, _)| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
            .map(|(_, e)| &e.object)
            .collect()
    }

    /// Keys of every object of `resource` in `namespace` (all namespaces when `None`).
    pub fn keys(&self, resource: &str, namespace: Option<&str>) -> Vec<ObjectKey> {
        self.objects
            .keys()
            .filter(|k| k.resource == resource && namespace.is_none_or(|ns| k.namespace == ns))
            .cloned()
            .collect()
    }

    /// Stamp `object` with the next resourceVersion and store it, recording the change.
    pub fn commit(&mut self, key: ObjectKey, mut object: Value, managed: ManagedFields) -> Value {
        self.rv += 1;
        set_rv(&mut object, self.rv);
        let previous = self
            .objects
            .insert(
                key.clone(),
                Entry {
                    object: object.clone(),
                    managed,
                },
            )
            .map(|e| e.object);
        let kind = if previous.is_some() {
            ChangeType::Modified
        } else {
            ChangeType::Added
        };
        self.record(key, kind, object.clone(), previous);
        object
    }

    /// Remove the object at `key`, recording a `Deleted` change; returns its last state.
    pub fn remove(&mut self, key: &ObjectKey) -> Option<Value> {
        let mut object = self.objects.remove(key)?.object;
        self.rv += 1;
        set_rv(&mut object, self.rv);
        self.record(key.clone(), ChangeType::Deleted, object.clone(), None);
        Some(object)
    }

    fn record(&mut self, key: ObjectKey, kind: ChangeType, object: Value, previous: Option<Value>) {
        let change = Arc::new(Change {
            rv: self.rv,
            key,
            kind,
            object,
            previous,
        });
        self.history.push(change.clone());
        let _ = self.changes.send(change);
    }

    /// Retained changes after `rv` plus a receiver for later ones, or `None` if `rv` is
    /// older than the retained history.
    pub fn changes_since(&self, rv: u64) -> Option<Replay> {
        if rv < self.compacted {
            return None;
        }
        let start = self.history.partition_point(|c| c.rv <= rv);
        Some(Replay {
            history: self.history[start..].to_vec(),
            receiver: self.changes.subscribe(),
        })
    }

    /// A receiver of changes committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.changes.subscribe()
    }

    /// Served resource with `group`, `version` and `plural`.
    pub fn resource(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.resources
            .iter()
            .find(|r| r.group == group && r.plural == plural && r.versions.iter().any(|v| v == version))
    }

    /// Every served resource type.
    pub fn resources(&self) -> &[ResourceType] {
        &self.resources
    }

    /// Serve `resource`, replacing any earlier type with the same group and plural.
    pub fn register(&mut self, resource: ResourceType) {
        self.resources
            .retain(|r| !(r.group == resource.group && r.plural == resource.plural));
        self.resources.push(resource);
    }

    /// Stop serving `group/plural`.
    pub fn unregister(&mut self, group: &str, plural: &str) {
        self.resources.retain(|r| !(r.group == group && r.plural == plural));
    }
}

fn set_rv(object: &mut Value, rv: u64) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".to_owned(), Value::String(rv.to_string()));
    }
}
