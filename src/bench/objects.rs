//! Kubernetes objects as `kubectl get -o json` prints them, built in code so that benchmark
//! inputs go through the same loader (`snapshot_from_objects`) as real clusters.

use serde_json::{Map, Value, json};

use crate::catalog::Catalog;
use crate::model::Snapshot;
use crate::model::load::{PURSER_API_VERSION, snapshot_from_objects};
use crate::model::pod::pod_from_k8s;

/// A pending pod to be written out as a `v1` Pod object.
#[derive(Debug, Clone)]
pub struct PodTemplate {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Creation order: the pod is created this many seconds after a fixed instant.
    pub created: usize,
    /// Labels.
    pub labels: Map<String, Value>,
    /// Container requests (extended resources are also written as limits).
    pub requests: Map<String, Value>,
    /// Extra `spec` fields (affinity, tolerations, nodeSelector, topologySpreadConstraints).
    pub spec: Map<String, Value>,
}

impl PodTemplate {
    /// A pod with no labels, requests or constraints.
    pub fn new(namespace: &str, name: &str, created: usize) -> Self {
        PodTemplate {
            namespace: namespace.into(),
            name: name.into(),
            created,
            labels: Map::new(),
            requests: Map::new(),
            spec: Map::new(),
        }
    }

    /// Add a label.
    pub fn label(&mut self, key: &str, value: &str) -> &mut Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Add a container request.
    pub fn request(&mut self, resource: &str, quantity: &str) -> &mut Self {
        self.requests.insert(resource.into(), quantity.into());
        self
    }

    /// Set a `spec` field.
    pub fn spec(&mut self, field: &str, value: Value) -> &mut Self {
        self.spec.insert(field.into(), value);
        self
    }
}

/// RFC 3339 time `seconds` after 2025-06-01T00:00:00Z (within 30 days).
fn timestamp(seconds: usize) -> String {
    let (d, rest) = (seconds / 86_400, seconds % 86_400);
    format!(
        "2025-06-{:02}T{:02}:{:02}:{:02}Z",
        1 + d.min(29),
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The Pod object of a template: one container, `Pending`, owned by a ReplicaSet.
pub fn pod_object(t: &PodTemplate) -> Value {
    let limits: Map<String, Value> = t
        .requests
        .iter()
        .filter(|(k, _)| k.contains('/'))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut resources = Map::new();
    resources.insert("requests".into(), Value::Object(t.requests.clone()));
    if !limits.is_empty() {
        resources.insert("limits".into(), Value::Object(limits));
    }
    let mut spec = t.spec.clone();
    spec.insert(
        "containers".into(),
        json!([{"name": "main", "image": "registry.k8s.io/pause:3.10", "resources": resources}]),
    );
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": t.name,
            "namespace": t.namespace,
            "labels": t.labels,
            "creationTimestamp": timestamp(t.created),
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": format!("{}-rs", t.name),
                "uid": format!("rs-{}", t.name),
                "controller": true,
            }],
        },
        "spec": spec,
        "status": {"phase": "Pending"},
    })
}

/// A `purser.dev/v1` NodePool with the given `spec`.
pub fn node_pool(name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": PURSER_API_VERSION,
        "kind": "NodePool",
        "metadata": {"name": name},
        "spec": spec,
    })
}

/// A `purser.dev/v1` CostBudget.
pub fn cost_budget(name: &str, match_labels: Value, max_hourly_cost: f64) -> Value {
    json!({
        "apiVersion": PURSER_API_VERSION,
        "kind": "CostBudget",
        "metadata": {"name": name},
        "spec": {
            "selector": {"podSelector": {"matchLabels": match_labels}},
            "maxHourlyCost": max_hourly_cost,
        },
    })
}

/// An `apps/v1` DaemonSet whose pods request `requests` and carry `template_spec` fields.
pub fn daemonset(namespace: &str, name: &str, requests: Value, template_spec: Value) -> Value {
    let mut spec = template_spec.as_object().cloned().unwrap_or_default();
    spec.insert(
        "containers".into(),
        json!([{"name": name, "image": "registry.k8s.io/pause:3.10", "resources": {"requests": requests}}]),
    );
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
        },
    })
}

/// A snapshot of `cluster` objects (NodePools, budgets, DaemonSets) read by the loader, plus
/// `pods` converted one at a time with the loader's pod conversion (`pod_from_k8s`) and sorted
/// by key as the loader sorts them. Converting pods one by one keeps the JSON of 20k pods from
/// being resident at once, so peak memory reflects the snapshot, not the benchmark's scaffolding.
pub fn snapshot(
    cluster: &[Value],
    pods: impl IntoIterator<Item = Value>,
    catalog: &Catalog,
) -> Result<Snapshot, String> {
    let mut snapshot = snapshot_from_objects(cluster, catalog)
        .map_err(|e| e.to_string())?
        .snapshot;
    for value in pods {
        let pod: k8s_openapi::api::core::v1::Pod =
            serde_json::from_value(value).map_err(|e| format!("pod object: {e}"))?;
        snapshot.pods.push(pod_from_k8s(&pod).map_err(|e| e.to_string())?);
    }
    snapshot.pods.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(w) = snapshot.pods.windows(2).find(|w| w[0].key == w[1].key) {
        return Err(format!("pod {} appears twice", w[0].key));
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_convert_like_the_loader() {
        let catalog = crate::bench::karpenter::catalog();
        let pool = node_pool("default", json!({"template": {"spec": {}}}));
        let mut t = PodTemplate::new("default", "p", 3);
        t.label("app", "x")
            .request("cpu", "250m")
            .request("nvidia.com/gpu", "1");
        let mut objects = vec![pool, pod_object(&t)];
        let loaded = snapshot_from_objects(&objects, &catalog).unwrap().snapshot;
        let pods = objects.split_off(1);
        let built = snapshot(&objects, pods, &catalog).unwrap();
        assert_eq!(built, loaded);
        assert!(built.pods[0].is_pending());
    }

    #[test]
    fn timestamps_are_valid() {
        assert_eq!(timestamp(0), "2025-06-01T00:00:00Z");
        assert_eq!(timestamp(86_400 + 3_723), "2025-06-02T01:02:03Z");
    }
}
