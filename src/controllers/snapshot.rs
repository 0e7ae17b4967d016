//! From watch stores to the engine's snapshot, one bad object never stopping the rest.
//!
//! In: the reflector stores and the catalog. Out: a validated [`Snapshot`] of the objects that
//! load, and the objects that do not, each with the loader's message (object, field, what was
//! expected) so the controller can report them with a status condition and an Event.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Pod;
use kube::Resource;
use serde::Serialize;
use serde_json::Value;

use super::cluster::{ClusterState, is_provisionable};
use crate::catalog::Catalog;
use crate::model::Snapshot;
use crate::model::load::snapshot_from_objects;

/// An object the loader rejected.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Kind, e.g. `NodePool`.
    pub kind: String,
    /// Namespace (empty for cluster-scoped objects).
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The loader's message: object, field and what was expected.
    pub message: String,
}

/// The snapshot the loops plan from, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Built {
    /// Everything that loaded.
    pub snapshot: Snapshot,
    /// Objects left out because they do not load.
    pub invalid: Vec<Invalid>,
}

/// Remembers which object versions load, so a pass re-checks only what changed.
#[derive(Default)]
pub struct Validator {
    seen: Mutex<HashMap<String, (String, Option<String>)>>,
}

impl Validator {
    /// The loader's error for `value` alone (cached by uid and resourceVersion), or None.
    fn check(&self, value: &Value, catalog: &Catalog) -> Option<String> {
        let uid = value.pointer("/metadata/uid").and_then(Value::as_str);
        let version = value.pointer("/metadata/resourceVersion").and_then(Value::as_str);
        let key = uid.zip(version).map(|(u, v)| (u.to_string(), v.to_string()));
        if let Some((uid, version)) = &key
            && let Ok(seen) = self.seen.lock()
            && let Some((v, result)) = seen.get(uid)
            && v == version
        {
            return result.clone();
        }
        let result = snapshot_from_objects(std::slice::from_ref(value), catalog)
            .err()
            .map(|e| e.to_string());
        if let Some((uid, version)) = key
            && let Ok(mut seen) = self.seen.lock()
        {
            seen.insert(uid, (version, result.clone()));
        }
        result
    }
}

/// Build the snapshot from the stores. Pending pods count only once the scheduler has marked
/// them unschedulable (others may still fit existing nodes).
/// `extra` are objects the stores may not show yet (claims just created).
pub fn build(cluster: &ClusterState, catalog: &Catalog, validator: &Validator, extra: Vec<Value>) -> Built {
    let mut objects: Vec<Value> = extra;
    let mut invalid = vec![];
    let pods: Vec<_> = cluster.pods.state();
    let relevant = pods.iter().filter(|p| considered(p));
    collect(
        relevant.map(|p| p.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    collect(
        cluster.nodes.state().iter().map(|o| o.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    collect(
        cluster.daemonsets.state().iter().map(|o| o.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    collect(
        cluster.pdbs.state().iter().map(|o| o.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    collect(
        cluster.pools.state().iter().map(|o| o.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    collect(
        cluster.claims.state().iter().map(|o| o.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    collect(
        cluster.budgets.state().iter().map(|o| o.as_ref()),
        catalog,
        validator,
        &mut objects,
        &mut invalid,
    );
    match snapshot_from_objects(&objects, catalog) {
        Ok(loaded) => Built {
            snapshot: loaded.snapshot,
            invalid,
        },
        Err(e) => {
            tracing::error!(error = %e, "the cluster's objects do not load together; planning nothing this pass");
            Built {
                snapshot: Snapshot::default(),
                invalid,
            }
        }
    }
}

/// Bound pods, and pending pods the scheduler gave up on.
fn considered(pod: &Pod) -> bool {
    let bound = pod.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
    bound || is_provisionable(pod)
}

fn collect<'a, K>(
    items: impl Iterator<Item = &'a K>,
    catalog: &Catalog,
    validator: &Validator,
    objects: &mut Vec<Value>,
    invalid: &mut Vec<Invalid>,
) where
    K: Resource<DynamicType = ()> + Serialize + 'a,
{
    for item in items {
        let Ok(value) = to_object(item) else { continue };
        match validator.check(&value, catalog) {
            None => objects.push(value),
            Some(message) => invalid.push(Invalid {
                kind: K::kind(&()).to_string(),
                namespace: item.meta().namespace.clone().unwrap_or_default(),
                name: item.meta().name.clone().unwrap_or_default(),
                message,
            }),
        }
    }
}

/// The object as `kubectl get -o json` prints it (apiVersion and kind included).
pub fn to_object<K: Resource<DynamicType = ()> + Serialize>(item: &K) -> Result<Value, serde_json::Error> {
    let mut value = serde_json::to_value(item)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(K::api_version(&()).to_string()));
        map.insert("kind".into(), Value::String(K::kind(&()).to_string()));
    }
    Ok(value)
}
