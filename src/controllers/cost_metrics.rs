//! Cost metrics in OpenCost's names and labels, so that existing Grafana dashboards and the
//! OpenCost UI read them, and Purser's own allocation, idle and per-replica cost.
//!
//! In: the allocation of the current snapshot (`cost::allocation`), the Node and Pod objects
//! (provider ids, regions, containers, owners). Out: the gauges below, refreshed by the status
//! loop; a series whose node or pod went away is dropped at the next refresh.
//!
//! OpenCost's meanings are kept: `node_cpu_hourly_cost` is USD per vCPU-hour,
//! `node_ram_hourly_cost` USD per GiB-hour, `node_gpu_hourly_cost` USD per GPU-hour,
//! `container_*_allocation` are requests (cores, bytes, GPUs).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;

use k8s_openapi::api::core::v1::{Node, Pod};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::catalog::CapacityType;
use crate::cost::allocation::Allocation;
use crate::model::resources::Resources;

/// A float gauge.
type Value = Gauge<f64, AtomicU64>;

/// OpenCost's node labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    /// Node name.
    pub node: String,
    /// Instance type.
    pub instance_type: String,
    /// Cloud region.
    pub region: String,
    /// `spec.providerID`.
    pub provider_id: String,
    /// CPU architecture.
    pub arch: String,
    /// Zone (an addition to OpenCost's labels, for FOCUS's AvailabilityZone).
    pub zone: String,
}

/// OpenCost's container labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabels {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name.
    pub container: String,
    /// Node name.
    pub node: String,
}

/// Labels of a pod's allocated cost.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AllocationLabels {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// The pod's `team` label.
    pub team: String,
    /// The pod's `cost-centre` label.
    pub cost_centre: String,
    /// GPU model, for pods that request GPUs.
    pub gpu_model: String,
    /// `spot` or `on-demand`.
    pub capacity_type: String,
    /// Node the pod runs on (so `purser report` can share the node's idle cost).
    pub node: String,
    /// NodePool of that node (empty for nodes Purser does not manage).
    pub nodepool: String,
}

/// Labels of a node's idle cost.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IdleLabels {
    /// NodePool (empty for nodes Purser does not manage).
    pub nodepool: String,
    /// Node name.
    pub node: String,
}

/// Labels of a workload's cost per replica.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WorkloadLabels {
    /// Namespace.
    pub namespace: String,
    /// Owning workload: a Deployment's name for ReplicaSet pods, else the controller's name.
    pub workload: String,
}

/// Every cost gauge.
#[derive(Default)]
pub struct CostMetrics {
    node_total: Family<NodeLabels, Value>,
    node_cpu: Family<NodeLabels, Value>,
    node_ram: Family<NodeLabels, Value>,
    node_gpu: Family<NodeLabels, Value>,
    node_gpu_count: Family<NodeLabels, Value>,
    node_is_spot: Family<NodeLabels, Value>,
    container_cpu: Family<ContainerLabels, Value>,
    container_memory: Family<ContainerLabels, Value>,
    container_gpu: Family<ContainerLabels, Value>,
    allocation: Family<AllocationLabels, Value>,
    idle: Family<IdleLabels, Value>,
    replica: Family<WorkloadLabels, Value>,
}

impl CostMetrics {
    /// Register OpenCost's names in `root` (no prefix) and Purser's in `purser` (prefixed).
    pub fn register(&self, root: &mut Registry) {
        root.register(
            "node_total_hourly_cost",
            "Total node cost per hour, USD",
            self.node_total.clone(),
        );
        root.register(
            "node_cpu_hourly_cost",
            "Node cost per vCPU-hour, USD",
            self.node_cpu.clone(),
        );
        root.register(
            "node_ram_hourly_cost",
            "Node cost per GiB-hour of RAM, USD",
            self.node_ram.clone(),
        );
        root.register(
            "node_gpu_hourly_cost",
            "Node cost per GPU-hour, USD",
            self.node_gpu.clone(),
        );
        root.register("node_gpu_count", "GPUs on the node", self.node_gpu_count.clone());
        root.register(
            "kubecost_node_is_spot",
            "1 when the node is spot capacity",
            self.node_is_spot.clone(),
        );
        root.register(
            "container_cpu_allocation",
            "vCPUs allocated to a container (its requests)",
            self.container_cpu.clone(),
        );
        root.register(
            "container_memory_allocation_bytes",
            "Memory allocated to a container (its requests), bytes",
            self.container_memory.clone(),
        );
        root.register(
            "container_gpu_allocation",
            "GPUs allocated to a container (its requests)",
            self.container_gpu.clone(),
        );
        let purser = root.sub_registry_with_prefix("purser");
        purser.register(
            "allocation_hourly_cost",
            "A pod's allocated cost per hour (its requests at its node's unit prices), USD",
            self.allocation.clone(),
        );
        purser.register(
            "idle_hourly_cost",
            "The part of a node's price per hour no pod is allocated, USD",
            self.idle.clone(),
        );
        purser.register(
            "replica_hourly_cost",
            "Mean allocated cost per hour of one running replica of a workload, USD (divide by \
             requests per second per replica for a cost-per-request signal)",
            self.replica.clone(),
        );
    }

    /// Replace every series with those of `allocation`, `nodes` and `pods`.
    pub fn observe(&self, allocation: &Allocation, nodes: &[std::sync::Arc<Node>], pods: &[std::sync::Arc<Pod>]) {
        self.clear();
        let node_objects: HashMap<&str, &Node> = nodes
            .iter()
            .filter_map(|n| Some((n.metadata.name.as_deref()?, n.as_ref())))
            .collect();
        for n in &allocation.nodes {
            let object = node_objects.get(n.node.as_str());
            let labels = NodeLabels {
                node: n.node.clone(),
                instance_type: n.instance_type.clone(),
                region: object
                    .and_then(|o| label(o, "topology.kubernetes.io/region"))
                    .unwrap_or_default(),
                provider_id: object
                    .and_then(|o| o.spec.as_ref()?.provider_id.clone())
                    .unwrap_or_default(),
                arch: n.arch.clone(),
                zone: n.zone.clone(),
            };
            self.node_total.get_or_create(&labels).set(n.price);
            self.node_cpu.get_or_create(&labels).set(n.units.cpu);
            self.node_ram.get_or_create(&labels).set(n.units.memory_gib);
            self.node_gpu.get_or_create(&labels).set(n.units.gpu);
            self.node_gpu_count.get_or_create(&labels).set(n.capacity.gpu);
            let spot = n.capacity_type == Some(CapacityType::Spot);
            self.node_is_spot
                .get_or_create(&labels)
                .set(if spot { 1.0 } else { 0.0 });
            self.idle
                .get_or_create(&IdleLabels {
                    nodepool: n.pool.clone().unwrap_or_default(),
                    node: n.node.clone(),
                })
                .set(n.idle());
        }
        let priced: std::collections::HashSet<&str> = allocation.nodes.iter().map(|n| n.node.as_str()).collect();
        for row in pods.iter().filter_map(|p| containers(p)).flatten() {
            if !priced.contains(row.labels.node.as_str()) {
                continue;
            }
            self.container_cpu.get_or_create(&row.labels).set(row.cpu);
            self.container_memory.get_or_create(&row.labels).set(row.memory_bytes);
            self.container_gpu.get_or_create(&row.labels).set(row.gpus);
        }
        let owners: HashMap<(&str, &str), String> = pods
            .iter()
            .filter_map(|p| {
                let meta = &p.metadata;
                Some(((meta.namespace.as_deref()?, meta.name.as_deref()?), workload(p)?))
            })
            .collect();
        let mut replicas: BTreeMap<(String, String), (f64, u32)> = BTreeMap::new();
        for p in &allocation.pods {
            self.allocation
                .get_or_create(&AllocationLabels {
                    namespace: p.namespace.clone(),
                    pod: p.pod.clone(),
                    team: p.team.clone(),
                    cost_centre: p.cost_centre.clone(),
                    gpu_model: p.gpu_model.clone(),
                    capacity_type: p.capacity_type.map(|c| c.as_str().to_string()).unwrap_or_default(),
                    node: p.node.clone(),
                    nodepool: p.pool.clone(),
                })
                .set(p.hourly);
            if let Some(owner) = owners.get(&(p.namespace.as_str(), p.pod.as_str())) {
                let entry = replicas.entry((p.namespace.clone(), owner.clone())).or_default();
                entry.0 += p.hourly;
                entry.1 += 1;
            }
        }
        for ((namespace, workload), (total, count)) in replicas {
            self.replica
                .get_or_create(&WorkloadLabels { namespace, workload })
                .set(total / f64::from(count.max(1)));
        }
    }

    fn clear(&self) {
        for f in [
            &self.node_total,
            &self.node_cpu,
            &self.node_ram,
            &self.node_gpu,
            &self.node_gpu_count,
            &self.node_is_spot,
        ] {
            f.clear();
        }
        for f in [&self.container_cpu, &self.container_memory, &self.container_gpu] {
            f.clear();
        }
        self.allocation.clear();
        self.idle.clear();
        self.replica.clear();
    }
}

fn label(node: &Node, key: &str) -> Option<String> {
    node.metadata.labels.as_ref()?.get(key).cloned()
}

/// One container's requests, with its labels.
struct ContainerRow {
    labels: ContainerLabels,
    cpu: f64,
    memory_bytes: f64,
    gpus: f64,
}

/// The containers of a running pod (none for a pending one); a request that does not parse
/// counts as zero (the loader reports the pod).
fn containers(pod: &Pod) -> Option<Vec<ContainerRow>> {
    let spec = pod.spec.as_ref()?;
    let node = spec.node_name.clone()?;
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    Some(
        spec.containers
            .iter()
            .map(|c| {
                let requests = c
                    .resources
                    .as_ref()
                    .and_then(|r| r.requests.as_ref())
                    .map(|r| Resources::parse(r.iter().map(|(k, v)| (k.as_str(), v.0.as_str()))).unwrap_or_default())
                    .unwrap_or_default();
                ContainerRow {
                    labels: ContainerLabels {
                        namespace: namespace.clone(),
                        pod: name.clone(),
                        container: c.name.clone(),
                        node: node.clone(),
                    },
                    cpu: requests.get(crate::model::resources::CPU).as_f64(),
                    memory_bytes: requests.get(crate::model::resources::MEMORY).as_f64(),
                    gpus: requests.accelerators().as_f64(),
                }
            })
            .collect(),
    )
}

/// The workload a pod belongs to: its controller's name, with a ReplicaSet's
/// `-<pod-template-hash>` suffix removed (so Deployment pods roll up to the Deployment).
fn workload(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))?;
    let hash = pod.metadata.labels.as_ref().and_then(|l| l.get("pod-template-hash"));
    let name = match (owner.kind.as_str(), hash) {
        ("ReplicaSet", Some(hash)) => owner
            .name
            .strip_suffix(&format!("-{hash}"))
            .unwrap_or(&owner.name)
            .to_string(),
        _ => owner.name.clone(),
    };
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn deployment_pods_roll_up_to_the_deployment() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-7d9f-abcde", "namespace": "shop", "labels": {"pod-template-hash": "7d9f"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n1", "containers": [
                {"name": "app", "resources": {"requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}}},
                {"name": "sidecar"}]}
        }))
        .unwrap();
        assert_eq!(workload(&pod).as_deref(), Some("web"));
        let rows = containers(&pod).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].cpu, rows[0].memory_bytes, rows[0].gpus),
            (0.5, 1073741824.0, 1.0)
        );
        assert_eq!((rows[1].cpu, rows[1].labels.container.as_str()), (0.0, "sidecar"));
    }

    #[test]
    fn opencost_names_carry_no_prefix_and_purser_names_do() {
        let metrics = crate::controllers::metrics::Metrics::default();
        let node = crate::model::NodeInfo {
            name: "n1".into(),
            price: Some(1.0),
            instance_type: Some("m5.large".into()),
            capacity_type: Some(CapacityType::Spot),
            capacity: Resources::parse([("cpu", "2"), ("memory", "8Gi")]).unwrap(),
            pool: Some("general".into()),
            ..Default::default()
        };
        let pod = crate::model::pod::PodInfo {
            key: "shop/web-1".into(),
            namespace: "shop".into(),
            node_name: Some("n1".into()),
            requests: Resources::parse([("cpu", "1"), ("memory", "4Gi")]).unwrap(),
            ..Default::default()
        };
        let snapshot = crate::model::Snapshot {
            nodes: vec![node],
            pods: vec![pod],
            ..Default::default()
        };
        let allocation = crate::cost::allocation::allocate(&snapshot);
        metrics.cost.observe(&allocation, &[], &[]);
        let text = metrics.encode();
        assert!(
            text.contains(
                r#"node_total_hourly_cost{node="n1",instance_type="m5.large",region="",provider_id="",arch="",zone=""} 1.0"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"kubecost_node_is_spot{node="n1""#), "{text}");
        assert!(text.contains(r#"purser_allocation_hourly_cost{namespace="shop",pod="web-1",team="",cost_centre="",gpu_model="",capacity_type="spot",node="n1",nodepool="general"} "#), "{text}");
        assert!(
            text.contains(r#"purser_idle_hourly_cost{nodepool="general",node="n1"} "#),
            "{text}"
        );
        assert!(text.contains("purser_pods_pending"), "{text}");
        assert!(!text.contains("purser_node_total_hourly_cost"), "{text}");
    }
}
