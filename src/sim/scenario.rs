//! Scenario files: the cluster's NodePools and CostBudgets (in CRD shapes), the Cluster
//! Autoscaler's node groups, and the workloads (training jobs, inference services, CPU batch,
//! forgotten notebooks). See docs/simulate.md for every field.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Name (shown in the report).
    pub name: String,
    /// One line for people.
    #[serde(default)]
    pub description: String,
    /// Simulated hours when `--duration` is not given.
    #[serde(default = "default_hours")]
    pub duration_hours: f64,
    /// NodePool objects (`purser.dev/v1` or `karpenter.sh/v1`), used by `purser` and `karpenter`.
    #[serde(default)]
    pub node_pools: Vec<Value>,
    /// CostBudget objects (`purser.dev/v1`), enforced by `purser` only.
    #[serde(default)]
    pub cost_budgets: Vec<Value>,
    /// DaemonSet objects (overhead on every node they land on).
    #[serde(default)]
    pub daemon_sets: Vec<Value>,
    /// The `cluster-autoscaler` policy's configuration.
    pub cluster_autoscaler: ClusterAutoscaler,
    /// Training job streams.
    #[serde(default)]
    pub training: Vec<Training>,
    /// Inference services.
    #[serde(default)]
    pub inference: Vec<Inference>,
    /// CPU batch job streams (Spark/Ray-style bursts).
    #[serde(default)]
    pub batch: Vec<Batch>,
    /// Notebooks that hold resources (often a GPU) and do nothing.
    #[serde(default)]
    pub notebooks: Vec<Notebook>,
}

fn default_hours() -> f64 {
    168.0
}

/// Cluster Autoscaler settings: fixed node groups, least-waste expander.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterAutoscaler {
    /// Node groups (one instance type each).
    pub node_groups: Vec<NodeGroup>,
    /// A node below this utilisation (0–1) is unneeded.
    #[serde(default = "default_utilisation")]
    pub scale_down_utilization_threshold: f64,
    /// Minutes a node must be unneeded before removal.
    #[serde(default = "default_unneeded")]
    pub scale_down_unneeded_minutes: f64,
}

fn default_utilisation() -> f64 {
    0.5
}

fn default_unneeded() -> f64 {
    10.0
}

/// One Cluster Autoscaler node group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeGroup {
    /// Name.
    pub name: String,
    /// Instance type (must be in the catalog).
    pub instance_type: String,
    /// `on-demand` or `spot`.
    #[serde(default = "default_on_demand")]
    pub capacity_type: String,
    /// Zones it may launch in (default: every zone the type is offered in).
    #[serde(default)]
    pub zones: Vec<String>,
    /// Largest size.
    pub max_nodes: u32,
    /// Labels of its nodes.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Taints of its nodes (`{key, value, effect}`).
    #[serde(default)]
    pub taints: Vec<Value>,
}

fn default_on_demand() -> String {
    "on-demand".into()
}

/// Resources and placement shared by every workload's pods.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodShape {
    /// CPU request (Kubernetes quantity).
    pub cpu: String,
    /// Memory request (Kubernetes quantity).
    pub memory: String,
    /// GPUs per pod (0 for CPU pods).
    #[serde(default)]
    pub gpus: u32,
    /// The GPU resource name.
    #[serde(default = "default_gpu_resource")]
    pub gpu_resource: String,
    /// nodeSelector.
    #[serde(default)]
    pub node_selector: std::collections::BTreeMap<String, String>,
    /// Tolerations (`{key, operator, value, effect}`).
    #[serde(default)]
    pub tolerations: Vec<Value>,
    /// True when the pod may run on spot capacity.
    #[serde(default)]
    pub spot: bool,
}

fn default_gpu_resource() -> String {
    "nvidia.com/gpu".into()
}

/// A lognormal duration in minutes: median and sigma of the underlying normal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lognormal {
    /// Median, minutes.
    pub median_minutes: f64,
    /// Sigma (0 for a fixed duration).
    #[serde(default)]
    pub sigma: f64,
}

/// A stream of training jobs (one pod each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Training {
    /// Name (pods are `<name>-<n>`).
    pub name: String,
    /// Team (label `team`, and the cost roll-up).
    pub team: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Mean arrivals per day.
    pub jobs_per_day: f64,
    /// Peak-to-trough ratio of the diurnal arrival shape (1 = flat).
    #[serde(default = "one")]
    pub diurnal_peak_to_trough: f64,
    /// The pod.
    pub pod: PodShape,
    /// Run time without interruptions.
    pub duration: Lognormal,
    /// Minutes between checkpoints (work since the last one is lost on interruption).
    pub checkpoint_minutes: f64,
    /// Share of the time the job's GPUs are busy while it runs (0–1); default 0.47, the mean
    /// per-minute utilisation of the GPUs Philly jobs held (workload facts, [ACME-PKL]).
    #[serde(default = "default_gpu_busy")]
    pub gpu_busy: f64,
}

/// An inference service with an HPA-like replica controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inference {
    /// Name (with `count` > 1, services are `<name>-<i>`).
    pub name: String,
    /// Team.
    pub team: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Services of this shape.
    #[serde(default = "one_u32")]
    pub count: u32,
    /// One replica.
    pub pod: PodShape,
    /// Mean requests per second of one service.
    pub mean_rps: f64,
    /// Peak-to-trough ratio of the diurnal load.
    #[serde(default = "one")]
    pub diurnal_peak_to_trough: f64,
    /// Coefficient of variation of per-minute noise (burstiness).
    #[serde(default)]
    pub burstiness: f64,
    /// Requests per second one replica serves at full utilisation.
    pub replica_rps: f64,
    /// Mean service time of one request, milliseconds.
    pub service_ms: f64,
    /// p95 latency SLO, milliseconds.
    pub slo_p95_ms: f64,
    /// HPA target utilisation (0–1).
    #[serde(default = "default_target")]
    pub target_utilization: f64,
    /// Fewest replicas.
    #[serde(default = "one_u32")]
    pub min_replicas: u32,
    /// Most replicas.
    pub max_replicas: u32,
}

fn default_target() -> f64 {
    0.7
}

/// A stream of CPU batch jobs, each a burst of identical pods.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Batch {
    /// Name.
    pub name: String,
    /// Team.
    pub team: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Mean jobs per day.
    pub jobs_per_day: f64,
    /// Pods per job.
    pub pods_per_job: u32,
    /// One pod.
    pub pod: PodShape,
    /// Run time of each pod.
    pub duration: Lognormal,
}

/// Notebooks that hold their resources for the whole simulation and do no work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notebook {
    /// Name.
    pub name: String,
    /// Team.
    pub team: String,
    /// Namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// How many.
    pub count: u32,
    /// One notebook pod.
    pub pod: PodShape,
    /// Hours after the start at which the notebooks are created.
    #[serde(default)]
    pub start_hour: f64,
    /// Hours they live (the simulation's end when unset).
    #[serde(default)]
    pub hours: Option<f64>,
}

fn default_namespace() -> String {
    "default".into()
}

fn default_gpu_busy() -> f64 {
    DEFAULT_TRAINING_GPU_BUSY
}

/// Mean per-minute utilisation of the GPUs a training job holds, from the Philly trace.
pub const DEFAULT_TRAINING_GPU_BUSY: f64 = 0.47;

fn one() -> f64 {
    1.0
}

fn one_u32() -> u32 {
    1
}
