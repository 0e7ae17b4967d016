//! Who pays for what, now: every priced node split into its unit prices, every running pod's
//! allocated cost at its node's unit prices (OpenCost's method, see the parent module), and
//! each node's idle cost, the part of its price no pod is allocated (charged to its NodePool).
//!
//! Pure. In: a snapshot. Out: an [`Allocation`], read by the controller's cost metrics.

use std::collections::HashMap;

use crate::catalog::CapacityType;
use crate::model::Snapshot;

use super::{CostBasis, UnitPrices};

/// Pod label that names a team.
pub const TEAM_LABEL: &str = "team";
/// Pod label that names a cost centre.
pub const COST_CENTRE_LABEL: &str = "cost-centre";
/// Node labels that name the GPU model, first found wins.
const GPU_NAME_LABELS: [&str; 3] = [
    "purser.dev/instance-gpu-name",
    "karpenter.k8s.aws/instance-gpu-name",
    "nvidia.com/gpu.product",
];

/// One node's price and how it splits.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeCost {
    /// Node name.
    pub node: String,
    /// NodePool, when Purser manages it.
    pub pool: Option<String>,
    /// Instance type (empty when unknown).
    pub instance_type: String,
    /// Spot or on-demand, when known.
    pub capacity_type: Option<CapacityType>,
    /// `kubernetes.io/arch` (empty when unknown).
    pub arch: String,
    /// Zone (empty when unknown).
    pub zone: String,
    /// GPU model (empty for none).
    pub gpu_model: String,
    /// USD per hour.
    pub price: f64,
    /// The price per unit of each resource.
    pub units: UnitPrices,
    /// vCPUs, GiB and accelerators of the node's capacity.
    pub capacity: CostBasis,
    /// USD per hour allocated to its pods.
    pub allocated: f64,
}

impl NodeCost {
    /// USD per hour of the node no pod is allocated.
    pub fn idle(&self) -> f64 {
        (self.price - self.allocated).max(0.0)
    }
}

/// One running pod's allocated cost.
#[derive(Debug, Clone, PartialEq)]
pub struct PodCost {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Node it runs on.
    pub node: String,
    /// NodePool of its node (empty for nodes Purser does not manage).
    pub pool: String,
    /// Its `team` label (empty when unset).
    pub team: String,
    /// Its `cost-centre` label (empty when unset).
    pub cost_centre: String,
    /// GPU model of its node when it requests accelerators (empty otherwise).
    pub gpu_model: String,
    /// Capacity type of its node.
    pub capacity_type: Option<CapacityType>,
    /// What it requests, in the units costs are priced in.
    pub requests: CostBasis,
    /// USD per hour.
    pub hourly: f64,
}

/// The allocation of a whole snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Allocation {
    /// Priced nodes, in snapshot order.
    pub nodes: Vec<NodeCost>,
    /// Pods bound to priced nodes, in snapshot order.
    pub pods: Vec<PodCost>,
}

/// Allocate every priced node of `snapshot` to the pods bound to it.
pub fn allocate(snapshot: &Snapshot) -> Allocation {
    let mut nodes: Vec<NodeCost> = snapshot
        .nodes
        .iter()
        .filter(|n| !n.in_flight)
        .filter_map(|n| {
            let price = n.price?;
            Some(NodeCost {
                node: n.name.clone(),
                pool: n.pool.clone(),
                instance_type: n.instance_type.clone().unwrap_or_default(),
                capacity_type: n.capacity_type,
                arch: n.labels.get("kubernetes.io/arch").cloned().unwrap_or_default(),
                zone: n.zone.clone().unwrap_or_default(),
                gpu_model: gpu_model(&n.labels),
                price,
                units: UnitPrices::split(price, &n.capacity),
                capacity: CostBasis::of(&n.capacity),
                allocated: 0.0,
            })
        })
        .collect();
    let index: HashMap<String, usize> = nodes.iter().enumerate().map(|(i, n)| (n.node.clone(), i)).collect();
    let mut pods = vec![];
    for pod in snapshot.pods.iter().filter(|p| !p.is_pending()) {
        let Some(&i) = pod.node_name.as_ref().and_then(|n| index.get(n)) else {
            continue;
        };
        let node = &mut nodes[i];
        let requests = CostBasis::of(&pod.requests);
        let hourly = node.units.price_of(&requests);
        node.allocated += hourly;
        let label = |key: &str| pod.labels.get(key).cloned().unwrap_or_default();
        pods.push(PodCost {
            namespace: pod.namespace.clone(),
            pod: pod.key.split_once('/').map_or(pod.key.clone(), |(_, n)| n.to_string()),
            node: node.node.clone(),
            pool: node.pool.clone().unwrap_or_default(),
            team: label(TEAM_LABEL),
            cost_centre: label(COST_CENTRE_LABEL),
            gpu_model: if requests.gpu > 0.0 {
                node.gpu_model.clone()
            } else {
                String::new()
            },
            capacity_type: node.capacity_type,
            requests,
            hourly,
        });
    }
    Allocation { nodes, pods }
}

/// The GPU model a node's labels name, lower case (empty for none).
fn gpu_model(labels: &std::collections::BTreeMap<String, String>) -> String {
    GPU_NAME_LABELS
        .iter()
        .find_map(|k| labels.get(*k))
        .map(|v| v.to_lowercase())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NodeInfo;
    use crate::model::pod::PodInfo;
    use crate::model::resources::Resources;

    fn node(name: &str, price: Option<f64>, capacity: &[(&str, &str)]) -> NodeInfo {
        let mut n = NodeInfo {
            name: name.into(),
            price,
            capacity: Resources::parse(capacity.iter().copied()).unwrap(),
            pool: Some("gpu-train".into()),
            instance_type: Some("g5.12xlarge".into()),
            capacity_type: Some(CapacityType::Spot),
            ..NodeInfo::default()
        };
        n.allocatable = n.capacity.clone();
        n.labels.insert("purser.dev/instance-gpu-name".into(), "A10G".into());
        n
    }

    fn pod(key: &str, node: Option<&str>, requests: &[(&str, &str)], team: &str) -> PodInfo {
        let mut p = PodInfo {
            key: key.into(),
            namespace: key.split('/').next().unwrap().into(),
            requests: Resources::parse(requests.iter().copied()).unwrap(),
            node_name: node.map(String::from),
            ..PodInfo::default()
        };
        p.labels.insert(TEAM_LABEL.into(), team.into());
        p
    }

    #[test]
    fn pods_are_charged_at_their_nodes_unit_prices_and_the_rest_is_idle() {
        let capacity = [("cpu", "48"), ("memory", "192Gi"), ("nvidia.com/gpu", "4")];
        let snapshot = Snapshot {
            nodes: vec![node("gpu-1", Some(5.672), &capacity), node("unpriced", None, &capacity)],
            pods: vec![
                pod(
                    "vision/train",
                    Some("gpu-1"),
                    &[("cpu", "24"), ("memory", "96Gi"), ("nvidia.com/gpu", "2")],
                    "vision",
                ),
                pod("web/api", Some("gpu-1"), &[("cpu", "12"), ("memory", "48Gi")], "web"),
                pod("web/pending", None, &[("cpu", "1")], "web"),
                pod("web/elsewhere", Some("unpriced"), &[("cpu", "1")], "web"),
            ],
            ..Snapshot::default()
        };
        let a = allocate(&snapshot);
        assert_eq!(a.nodes.len(), 1, "unpriced nodes are left out");
        assert_eq!(a.pods.len(), 2, "pending pods and pods on unpriced nodes are left out");
        let train = &a.pods[0];
        assert!((train.hourly - 2.836).abs() < 1e-9, "{train:?}");
        assert_eq!(
            (train.pod.as_str(), train.team.as_str(), train.gpu_model.as_str()),
            ("train", "vision", "a10g")
        );
        assert_eq!(a.pods[1].gpu_model, "", "a pod without GPUs has no GPU model");
        let node = &a.nodes[0];
        let charged: f64 = a.pods.iter().map(|p| p.hourly).sum();
        assert!((node.allocated - charged).abs() < 1e-9);
        assert!((node.idle() + charged - 5.672).abs() < 1e-9);
        assert!(node.idle() > 0.0);
    }
}
