//! Case (b): a mixed AI/ML cluster on the embedded AWS us-east-1 catalog.
//!
//! Three NodePools: `cpu` (c/m/r, generation > 5, amd64, spot and on-demand, at least 30% of pod
//! CPU on on-demand), `gpu-train` (g5/g6/p4d, spot and on-demand, tainted `nvidia.com/gpu`) and
//! `gpu-infer` (A10G or L4 GPUs, on-demand, tainted), a CostBudget on team `vision`, two
//! DaemonSets (kube-proxy everywhere, the NVIDIA device plugin on GPU nodes), and 551 pending
//! pods:
//!
//! | group | pods | requests per pod | constraints |
//! |---|---|---|---|
//! | `train-1gpu` | 24 | 1 GPU, 8 CPU, 32Gi | `gpu-train` pool |
//! | `train-4gpu` | 8 | 4 GPU, 32 CPU, 128Gi | `gpu-train` pool |
//! | `train-8gpu` | 3 | 8 GPU, 88 CPU, 320Gi | `gpu-train` pool |
//! | `infer-small` | 48 | 1 GPU, 2 CPU, 8Gi (fractional-GPU style) | `gpu-infer`, zone spread |
//! | `infer-mig` | 32 | 1 GPU, 4 CPU, 15Gi (MIG-slice style) | `gpu-infer` pool |
//! | `web` | 240 | 500m, 1Gi | zone spread |
//! | `api` | 120 | 2 CPU, 8Gi | |
//! | `worker` | 60 | 4 CPU, 16Gi | |
//! | `spark` | 16 | 12500m, 50Gi | |
//!
//! GPU requests per training pod follow common sizing (about 8 vCPU and 32 GiB per GPU, 88 vCPU
//! and 320 GiB for an 8-GPU job); every shape fits at least one instance type of its pool after
//! DaemonSet overhead (a unit test checks it), so nothing is capped. Training and `infer-mig`
//! pods alternate between teams `vision` and `nlp`; the budget covers team `vision`.

use serde_json::{Value, json};

use super::Workload;
use super::objects::{PodTemplate, cost_budget, daemonset, node_pool, pod_object};
use crate::catalog::Catalog;
use crate::model::labels::{
    ARCH, CAPACITY_TYPE, INSTANCE_CATEGORY, INSTANCE_FAMILY, INSTANCE_GENERATION, INSTANCE_GPU_MANUFACTURER,
    INSTANCE_GPU_NAME, ZONE,
};
use crate::model::load::snapshot_from_objects;

/// The GPU resource name.
const GPU: &str = "nvidia.com/gpu";
/// Pool label that GPU pods select.
const WORKLOAD: &str = "purser.dev/workload";
/// USD/hour cap of the `team-vision` CostBudget.
pub const VISION_BUDGET: f64 = 40.0;

/// One group of identical pods.
struct Group {
    name: &'static str,
    namespace: &'static str,
    count: usize,
    cpu: &'static str,
    memory: &'static str,
    gpus: u32,
    /// `training` or `inference` for GPU pods.
    workload: Option<&'static str>,
    zone_spread: bool,
    /// Alternate teams `vision` and `nlp`; otherwise the team is the namespace.
    alternate_teams: bool,
}

const GROUPS: [Group; 9] = [
    Group {
        name: "train-1gpu",
        namespace: "ml-train",
        count: 24,
        cpu: "8",
        memory: "32Gi",
        gpus: 1,
        workload: Some("training"),
        zone_spread: false,
        alternate_teams: true,
    },
    Group {
        name: "train-4gpu",
        namespace: "ml-train",
        count: 8,
        cpu: "32",
        memory: "128Gi",
        gpus: 4,
        workload: Some("training"),
        zone_spread: false,
        alternate_teams: true,
    },
    Group {
        name: "train-8gpu",
        namespace: "ml-train",
        count: 3,
        cpu: "88",
        memory: "320Gi",
        gpus: 8,
        workload: Some("training"),
        zone_spread: false,
        alternate_teams: true,
    },
    Group {
        name: "infer-small",
        namespace: "serving",
        count: 48,
        cpu: "2",
        memory: "8Gi",
        gpus: 1,
        workload: Some("inference"),
        zone_spread: true,
        alternate_teams: false,
    },
    Group {
        name: "infer-mig",
        namespace: "serving",
        count: 32,
        cpu: "4",
        memory: "15Gi",
        gpus: 1,
        workload: Some("inference"),
        zone_spread: false,
        alternate_teams: true,
    },
    Group {
        name: "web",
        namespace: "shop",
        count: 240,
        cpu: "500m",
        memory: "1Gi",
        gpus: 0,
        workload: None,
        zone_spread: true,
        alternate_teams: false,
    },
    Group {
        name: "api",
        namespace: "shop",
        count: 120,
        cpu: "2",
        memory: "8Gi",
        gpus: 0,
        workload: None,
        zone_spread: false,
        alternate_teams: false,
    },
    Group {
        name: "worker",
        namespace: "data",
        count: 60,
        cpu: "4",
        memory: "16Gi",
        gpus: 0,
        workload: None,
        zone_spread: false,
        alternate_teams: false,
    },
    Group {
        name: "spark",
        namespace: "data",
        count: 16,
        cpu: "12500m",
        memory: "50Gi",
        gpus: 0,
        workload: None,
        zone_spread: false,
        alternate_teams: false,
    },
];

fn requirement(key: &str, operator: &str, values: &[&str]) -> Value {
    json!({"key": key, "operator": operator, "values": values})
}

fn gpu_taint() -> Value {
    json!([{"key": GPU, "value": "true", "effect": "NoSchedule"}])
}

/// The NodePools, the CostBudget and the DaemonSets.
pub fn cluster_objects() -> Vec<Value> {
    vec![
        node_pool(
            "cpu",
            json!({
                "weight": 10,
                "limits": {"cpu": "4000", "memory": "16000Gi"},
                "capacityMix": {"minOnDemandPercent": 30},
                "template": {"spec": {"requirements": [
                    requirement(CAPACITY_TYPE, "In", &["spot", "on-demand"]),
                    requirement(INSTANCE_CATEGORY, "In", &["c", "m", "r"]),
                    requirement(INSTANCE_GENERATION, "Gt", &["5"]),
                    requirement(ARCH, "In", &["amd64"]),
                ]}},
            }),
        ),
        node_pool(
            "gpu-train",
            json!({
                "limits": {GPU: "256"},
                "template": {
                    "metadata": {"labels": {WORKLOAD: "training"}},
                    "spec": {
                        "requirements": [
                            requirement(INSTANCE_FAMILY, "In", &["g5", "g6", "p4d"]),
                            requirement(CAPACITY_TYPE, "In", &["spot", "on-demand"]),
                            requirement(ARCH, "In", &["amd64"]),
                        ],
                        "taints": gpu_taint(),
                    },
                },
            }),
        ),
        node_pool(
            "gpu-infer",
            json!({
                "limits": {GPU: "128"},
                "template": {
                    "metadata": {"labels": {WORKLOAD: "inference"}},
                    "spec": {
                        "requirements": [
                            requirement(INSTANCE_GPU_NAME, "In", &["a10g", "l4"]),
                            requirement(CAPACITY_TYPE, "In", &["on-demand"]),
                            requirement(ARCH, "In", &["amd64"]),
                        ],
                        "taints": gpu_taint(),
                    },
                },
            }),
        ),
        cost_budget("team-vision", json!({"team": "vision"}), VISION_BUDGET),
        daemonset(
            "kube-system",
            "kube-proxy",
            json!({"cpu": "100m", "memory": "128Mi"}),
            json!({"tolerations": [{"operator": "Exists"}]}),
        ),
        daemonset(
            "kube-system",
            "nvidia-device-plugin",
            json!({"cpu": "50m", "memory": "128Mi"}),
            json!({
                "tolerations": [{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        requirement(INSTANCE_GPU_MANUFACTURER, "In", &["nvidia"]),
                    ]}],
                }}},
            }),
        ),
    ]
}

/// The 551 pending pods, in a fixed order.
pub fn pods() -> Vec<Value> {
    let mut out = vec![];
    for g in &GROUPS {
        for i in 0..g.count {
            let mut t = PodTemplate::new(g.namespace, &format!("{}-{i:03}", g.name), out.len());
            let team = if g.alternate_teams {
                if i % 2 == 0 { "vision" } else { "nlp" }
            } else {
                g.namespace
            };
            t.label("app", g.name)
                .label("team", team)
                .request("cpu", g.cpu)
                .request("memory", g.memory);
            if g.gpus > 0 {
                t.request(GPU, &g.gpus.to_string()).spec(
                    "tolerations",
                    json!([{"key": GPU, "operator": "Exists", "effect": "NoSchedule"}]),
                );
            }
            if let Some(w) = g.workload {
                t.spec("nodeSelector", json!({WORKLOAD: w}));
            }
            if g.zone_spread {
                t.spec(
                    "topologySpreadConstraints",
                    json!([{
                        "maxSkew": 1,
                        "topologyKey": ZONE,
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"app": g.name}},
                    }]),
                );
            }
            out.push(pod_object(&t));
        }
    }
    out
}

/// The whole case on the embedded catalog.
pub fn workload() -> Result<Workload, String> {
    let catalog = Catalog::embedded();
    let mut objects = cluster_objects();
    objects.extend(pods());
    let snapshot = snapshot_from_objects(&objects, &catalog)
        .map_err(|e| e.to_string())?
        .snapshot;
    Ok(Workload {
        name: "ai-ml-mixed".into(),
        snapshot,
        catalog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::{PlanOptions, Problem};

    #[test]
    fn every_shape_fits_some_instance_type_of_its_pool() {
        let w = workload().unwrap();
        assert_eq!(w.snapshot.pods.len(), GROUPS.iter().map(|g| g.count).sum::<usize>());
        assert_eq!(w.snapshot.pools.len(), 3);
        let problem = Problem::build(&w.snapshot, &w.catalog, &PlanOptions::default());
        assert!(problem.rejected.is_empty(), "{:?}", problem.rejected);
        for c in &problem.classes {
            assert!(
                !c.kinds.is_empty(),
                "{} has no kind: {:?}",
                w.snapshot.pods[c.pods[0]].key,
                c.no_kind_reason
            );
        }
    }
}
