//! The simulated cluster and cloud: nodes that take time to launch and are billed per second,
//! pods that bind the way kube-scheduler would, training work with checkpoints, spot
//! interruptions with a two-minute notice, and the KPI ledger.

use std::collections::{BTreeMap, HashMap};

use crate::catalog::{CapacityType, Catalog};
use crate::cost::UnitPrices;
use crate::model::daemonset::daemon_overhead;
use crate::model::disruption::DoNotDisrupt;
use crate::model::pod::PodInfo;
use crate::model::resources::Resources;
use crate::model::taints::first_blocking;
use crate::model::{NodeInfo, Snapshot};

use super::rng::Rng;

/// What a pod does.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// A training job of stream `stream` with its checkpoint interval (seconds).
    Training {
        /// Index into `Scenario::training`.
        stream: usize,
        /// Seconds between checkpoints.
        checkpoint: f64,
    },
    /// A CPU batch pod.
    Batch,
    /// A replica of inference service `service`.
    Inference {
        /// Index into the expanded services.
        service: usize,
    },
    /// A notebook that never finishes on its own.
    Notebook,
}

/// A pod in the simulation.
#[derive(Debug, Clone)]
pub struct SimPod {
    /// The pod as the engine sees it (`node_name` is kept in sync).
    pub info: PodInfo,
    /// Its work.
    pub work: Work,
    /// Team.
    pub team: String,
    /// Seconds of work left (infinite for services and notebooks).
    pub remaining: f64,
    /// Seconds of work since the last checkpoint.
    pub since_checkpoint: f64,
    /// When it first ran.
    pub first_run: Option<i64>,
    /// Node it was nominated to by the provisioner.
    pub nominated: Option<String>,
    /// Accelerators requested.
    pub gpus: f64,
    /// Share of the time its accelerators are busy while it runs (0–1).
    pub gpu_busy: f64,
    /// Set when the pod is to be removed (finished or scaled in).
    pub done: bool,
}

/// A node in the simulation.
#[derive(Debug, Clone)]
pub struct SimNode {
    /// The node as the engine sees it.
    pub info: NodeInfo,
    /// When it becomes Ready.
    pub ready_at: i64,
    /// When it is terminated (interruption, drain), if scheduled.
    pub terminate_at: Option<i64>,
    /// True when its termination was decided to save money (counts as reclaimed).
    pub reclaimed: bool,
    /// Cluster Autoscaler node group, if any.
    pub group: Option<usize>,
    /// When the Cluster Autoscaler first found it unneeded.
    pub unneeded_since: Option<i64>,
    /// Resources its pods and DaemonSets use.
    pub used: Resources,
    /// Spot interruptions per hour.
    pub interruption_rate: f64,
    /// Unit prices for cost allocation.
    pub unit: UnitPrices,
}

impl SimNode {
    /// True once Ready and not going away.
    pub fn schedulable(&self, now: i64) -> bool {
        now >= self.ready_at && self.terminate_at.is_none() && !self.info.cordoned
    }

    /// GPUs it offers.
    pub fn gpus(&self) -> f64 {
        self.info.allocatable.accelerators().as_f64()
    }
}

/// Per-policy running totals.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// Spend so far.
    pub spend: f64,
    /// Spend by capacity type.
    pub spend_by_type: BTreeMap<String, f64>,
    /// Spend by team (allocated) and `idle`.
    pub spend_by_team: BTreeMap<String, f64>,
    /// GPU-seconds requested by running pods.
    pub gpu_used: f64,
    /// GPU-seconds paid for.
    pub gpu_paid: f64,
    /// GPU-seconds busy (requested GPUs × the share of time the work keeps them busy).
    pub gpu_busy: f64,
    /// CPU share × node-seconds, and node-seconds.
    pub cpu_share: f64,
    /// Memory share × node-seconds.
    pub mem_share: f64,
    /// Node-seconds.
    pub node_seconds: f64,
    /// Queue times of training jobs, seconds.
    pub queue_times: Vec<f64>,
    /// Training jobs finished.
    pub jobs_finished: u64,
    /// Inference requests served.
    pub requests: f64,
    /// Spend allocated to inference pods.
    pub inference_spend: f64,
    /// SLO violation minutes.
    pub slo_minutes: f64,
    /// Node-seconds between the removal of an idle or underused node and the end of the run.
    pub reclaimed_seconds: f64,
    /// Spot interruptions.
    pub interruptions: u64,
    /// GPU-seconds of lost work.
    pub gpu_seconds_lost: f64,
    /// Budget breach minutes.
    pub budget_breaches: u64,
    /// Decision wall-clock seconds.
    pub decision_seconds: Vec<f64>,
    /// Launches and failed launches.
    pub launches: u64,
    /// Launches refused for lack of capacity.
    pub launch_failures: u64,
}

/// The cluster of one policy's run.
pub struct World<'a> {
    /// Instance types and prices.
    pub catalog: &'a Catalog,
    /// NodePools, CostBudgets and DaemonSets (no pods, no nodes).
    pub base: &'a Snapshot,
    /// Nodes.
    pub nodes: Vec<SimNode>,
    /// Pods.
    pub pods: Vec<SimPod>,
    /// The clock, seconds since the epoch.
    pub now: i64,
    /// This run's random stream (launch times, capacity errors, interruptions).
    pub rng: Rng,
    /// Totals.
    pub ledger: Ledger,
    /// Offerings unavailable until a time (instance type, zone, capacity type).
    pub unavailable: HashMap<(String, String, CapacityType), i64>,
    /// Counter for node names.
    pub launched: u64,
    /// When the run ends.
    pub end: i64,
    /// Pods a CostBudget covers run only where the provisioner placed them (Purser holds them
    /// with a scheduling gate until a plan fits them under the budget, then binds them to the
    /// planned node); otherwise kube-scheduler could start them on any free room and overrun
    /// the budget.
    pub budget_gates: bool,
}

/// Seconds per simulation step.
pub const STEP: i64 = 60;

impl<'a> World<'a> {
    /// An empty cluster at time `now`.
    pub fn new(catalog: &'a Catalog, base: &'a Snapshot, now: i64, end: i64, rng: Rng) -> Self {
        World {
            catalog,
            base,
            nodes: vec![],
            pods: vec![],
            now,
            rng,
            ledger: Ledger::default(),
            unavailable: HashMap::new(),
            launched: 0,
            end,
            budget_gates: false,
        }
    }

    /// The snapshot the engine plans from: every live node (launching ones in flight) and pod.
    pub fn snapshot(&self) -> Snapshot {
        let mut s = self.base.clone();
        s.nodes = self
            .nodes
            .iter()
            .map(|n| {
                let mut info = n.info.clone();
                info.in_flight = self.now < n.ready_at;
                info.initialized = !info.in_flight;
                info.deleting = n.terminate_at.is_some();
                // A node being disrupted carries Karpenter's `disrupted` NoSchedule taint.
                info.cordoned |= info.deleting;
                info
            })
            .collect();
        s.pods = self.pods.iter().filter(|p| !p.done).map(|p| p.info.clone()).collect();
        s.pods.sort_by(|a, b| a.key.cmp(&b.key));
        s
    }

    /// Offerings currently marked unavailable.
    pub fn unavailable_now(&self) -> std::collections::HashSet<(String, String, CapacityType)> {
        self.unavailable
            .iter()
            .filter(|(_, until)| **until > self.now)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Launch a node; None when the cloud answers with insufficient capacity (the offering is
    /// then unavailable for 3 minutes).
    pub fn launch(&mut self, mut info: NodeInfo, group: Option<usize>) -> Option<String> {
        self.ledger.launches += 1;
        let ct = info.capacity_type.unwrap_or(CapacityType::OnDemand);
        let gpu = info.allocatable.accelerators().as_f64() > 0.0;
        // ASSUMPTION: insufficient-capacity rates per launch (no public measurement).
        let ice = match (ct, gpu) {
            (CapacityType::Spot, true) => 0.05,
            (CapacityType::Spot, false) => 0.01,
            (_, true) => 0.02,
            _ => 0.002,
        };
        let key = (
            info.instance_type.clone().unwrap_or_default(),
            info.zone.clone().unwrap_or_default(),
            ct,
        );
        if self.rng.uniform() < ice {
            self.ledger.launch_failures += 1;
            self.unavailable.insert(key, self.now + 180);
            return None;
        }
        // Launch to Ready: CPU median 55 s; GPU nodes add driver/device-plugin start-up
        // (workload-facts aws.node_launch_to_registered_s; GPU extra 60-300 s).
        let median = if gpu { 240.0 } else { 55.0 };
        let delay = (median * self.rng.lognormal(0.3)).round() as i64;
        self.launched += 1;
        let name = format!("node-{}", self.launched);
        info.name = name.clone();
        info.labels.insert(crate::model::labels::HOSTNAME.into(), name.clone());
        info.created = self.now;
        info.last_pod_event = Some(self.now);
        let rate = self.interruption_rate(&info);
        let overhead = daemon_overhead(&self.base.daemonsets, &info.labels, &info.taints);
        let unit = UnitPrices::split(info.price.unwrap_or(0.0), &info.capacity);
        self.nodes.push(SimNode {
            info,
            ready_at: self.now + delay.max(1),
            terminate_at: None,
            reclaimed: false,
            group,
            unneeded_since: None,
            used: overhead,
            interruption_rate: rate,
            unit,
        });
        Some(name)
    }

    fn interruption_rate(&self, info: &NodeInfo) -> f64 {
        if info.capacity_type != Some(CapacityType::Spot) {
            return 0.0;
        }
        info.instance_type
            .as_deref()
            .and_then(|t| self.catalog.find(t))
            .and_then(|t| {
                t.offerings
                    .iter()
                    .find(|o| Some(&o.zone) == info.zone.as_ref() && o.capacity_type == CapacityType::Spot)
            })
            .and_then(|o| o.interruption_rate)
            .unwrap_or(0.0)
    }

    /// Index of a node by name.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.info.name == name)
    }

    /// Schedule node `name` to terminate at `at`; its pods are evicted then.
    pub fn terminate(&mut self, name: &str, at: i64, reclaimed: bool) {
        if let Some(i) = self.node_index(name) {
            let n = &mut self.nodes[i];
            if n.terminate_at.is_none_or(|t| t > at) {
                n.terminate_at = Some(at);
                n.reclaimed = reclaimed;
            }
        }
    }

    /// Bind pending pods the way kube-scheduler would, with the provisioner's nominations
    /// reserving room on their nodes (as Karpenter's nominations do): a nominated pod goes to
    /// its node when that is Ready and fits, any other pod (or a nominated one whose node is not
    /// Ready) to the first Ready node (by name) whose labels, taints and free resources (less
    /// what is reserved for others) admit it. With `budget_gates`, a pod a CostBudget covers
    /// goes only to its nominated node or a Ready node where it costs the same.
    pub fn schedule(&mut self) {
        let mut order: Vec<usize> = (0..self.pods.len())
            .filter(|&i| !self.pods[i].done && self.pods[i].info.node_name.is_none())
            .collect();
        order.sort_by(|&a, &b| {
            let (pa, pb) = (&self.pods[a].info, &self.pods[b].info);
            pb.priority
                .cmp(&pa.priority)
                .then(pa.created.cmp(&pb.created))
                .then(a.cmp(&b))
        });
        let mut reserved: HashMap<String, Resources> = HashMap::new();
        for &i in &order {
            if let Some(n) = &self.pods[i].nominated {
                reserved.entry(n.clone()).or_default().add(&self.pods[i].info.requests);
            }
        }
        for i in order {
            let nominated = self.pods[i].nominated.clone();
            let pod = self.pods[i].info.clone();
            let fits = |n: &SimNode, mine: bool| {
                let mut need = n.used.plus(&pod.requests);
                if let Some(r) = reserved.get(&n.info.name) {
                    need.add(r);
                    if mine {
                        need.sub(&pod.requests);
                    }
                }
                n.schedulable(self.now)
                    && pod.accepts_labels(&n.info.labels)
                    && first_blocking(&n.info.taints, &pod.tolerations).is_none()
                    && need.fits_in(&n.info.allocatable)
            };
            // A nomination is a hint, not a binding: a pod whose node is still launching takes
            // room on a Ready node when some is free (not reserved for other pods).
            let own = nominated.as_deref().and_then(|name| self.node_index(name));
            let gated = self.budget_gates && self.base.budgets.iter().any(|b| b.covers(&pod));
            let allowed = |n: &SimNode| !gated || own.is_some_and(|o| self.same_cost(o, n));
            let target = own
                .filter(|&n| fits(&self.nodes[n], true))
                .or_else(|| (0..self.nodes.len()).find(|&n| allowed(&self.nodes[n]) && fits(&self.nodes[n], false)));
            if let Some(n) = target {
                if let Some(name) = &nominated
                    && let Some(r) = reserved.get_mut(name)
                {
                    r.sub(&pod.requests);
                }
                self.bind(i, n);
            }
        }
    }

    /// True when a pod costs the same on `node` as on node `own` (same price and capacity, so
    /// the same allocated cost).
    fn same_cost(&self, own: usize, node: &SimNode) -> bool {
        let o = &self.nodes[own].info;
        o.price == node.info.price && o.capacity == node.info.capacity
    }

    fn bind(&mut self, pod: usize, node: usize) {
        let now = self.now;
        let n = &mut self.nodes[node];
        n.used.add(&self.pods[pod].info.requests);
        n.info.last_pod_event = Some(now);
        let p = &mut self.pods[pod];
        p.info.node_name = Some(n.info.name.clone());
        p.info.started = Some(now);
        if p.first_run.is_none() {
            p.first_run = Some(now);
            if matches!(p.work, Work::Training { .. }) {
                self.ledger.queue_times.push((now - p.info.created) as f64);
            }
        }
    }

    /// Take pod `i` off its node; training work since the last checkpoint is lost.
    pub fn evict(&mut self, i: usize) {
        let Some(name) = self.unbind(i) else {
            return;
        };
        let p = &mut self.pods[i];
        // A nomination to another node (the replacement a disruption command launched) stands.
        if p.nominated.as_deref() == Some(name.as_str()) {
            p.nominated = None;
        }
        if matches!(p.work, Work::Training { .. }) {
            let lost = p.since_checkpoint;
            p.remaining += lost;
            p.since_checkpoint = 0.0;
            self.ledger.gpu_seconds_lost += lost * p.gpus;
        }
    }

    /// Remove pod `i` for good (finished, or scaled in).
    pub fn remove_pod(&mut self, i: usize) {
        self.unbind(i);
        self.pods[i].done = true;
    }

    /// Take pod `i` off its node, freeing its requests there; the node it was on.
    fn unbind(&mut self, i: usize) -> Option<String> {
        let name = self.pods[i].info.node_name.take()?;
        if let Some(n) = self.node_index(&name) {
            let node = &mut self.nodes[n];
            node.used.sub(&self.pods[i].info.requests);
            node.info.last_pod_event = Some(self.now);
        }
        Some(name)
    }

    /// Advance running work by one step; finished jobs leave.
    pub fn progress(&mut self) {
        let step = STEP as f64;
        for i in 0..self.pods.len() {
            let p = &self.pods[i];
            if p.done || p.info.node_name.is_none() || !p.remaining.is_finite() {
                continue;
            }
            let p = &mut self.pods[i];
            p.remaining -= step;
            if let Work::Training { checkpoint, .. } = p.work {
                p.since_checkpoint += step;
                if p.since_checkpoint >= checkpoint {
                    p.since_checkpoint = 0.0;
                }
            }
            if p.remaining <= 0.0 {
                if matches!(p.work, Work::Training { .. }) {
                    self.ledger.jobs_finished += 1;
                }
                self.remove_pod(i);
            }
        }
    }

    /// Spot interruptions (two minutes' notice) and terminations that fall due now. Returns
    /// the nodes that received a notice in this step.
    pub fn cloud_events(&mut self) -> Vec<String> {
        let mut noticed = vec![];
        for n in 0..self.nodes.len() {
            let node = &self.nodes[n];
            if node.interruption_rate <= 0.0 || node.terminate_at.is_some() || self.now < node.ready_at {
                continue;
            }
            let p = node.interruption_rate * STEP as f64 / 3600.0;
            if self.rng.uniform() < p {
                self.ledger.interruptions += 1;
                let name = node.info.name.clone();
                self.nodes[n].info.interruption = Some(crate::model::disruption::InterruptionKind::SpotInterruption);
                self.nodes[n].terminate_at = Some(self.now + 120);
                noticed.push(name);
            }
        }
        let due: Vec<usize> = (0..self.nodes.len())
            .filter(|&n| self.nodes[n].terminate_at.is_some_and(|t| t <= self.now))
            .collect();
        for &n in due.iter().rev() {
            let name = self.nodes[n].info.name.clone();
            for i in 0..self.pods.len() {
                if self.pods[i].info.node_name.as_deref() == Some(&name) {
                    self.evict(i);
                }
            }
            let node = self.nodes.remove(n);
            if node.reclaimed {
                self.ledger.reclaimed_seconds += (self.end - self.now).max(0) as f64;
            }
        }
        noticed
    }

    /// Bill one step and accumulate the allocation KPIs; returns the step's spend.
    pub fn bill(&mut self, budgets: &[crate::model::Budget]) -> f64 {
        let dt = STEP as f64;
        let mut spend = 0.0;
        let mut team_cost: BTreeMap<String, f64> = BTreeMap::new();
        let mut budget_rate = vec![0.0; budgets.len()];
        let mut on_node: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, p) in self.pods.iter().enumerate() {
            if let (false, Some(n)) = (p.done, &p.info.node_name) {
                on_node.entry(n.as_str()).or_default().push(i);
            }
        }
        for node in &self.nodes {
            let price = node.info.price.unwrap_or(0.0);
            let cost = price * dt / 3600.0;
            spend += cost;
            let ct = node
                .info
                .capacity_type
                .unwrap_or(CapacityType::OnDemand)
                .as_str()
                .to_string();
            *self.ledger.spend_by_type.entry(ct).or_default() += cost;
            self.ledger.gpu_paid += node.gpus() * dt;
            let mut allocated = 0.0;
            let mut req = Resources::new();
            for &i in on_node.get(node.info.name.as_str()).map(Vec::as_slice).unwrap_or(&[]) {
                let p = &self.pods[i];
                let hourly = node.unit.allocate(&p.info.requests);
                allocated += hourly * dt / 3600.0;
                *team_cost.entry(p.team.clone()).or_default() += hourly * dt / 3600.0;
                if matches!(p.work, Work::Inference { .. }) {
                    self.ledger.inference_spend += hourly * dt / 3600.0;
                }
                for (b, budget) in budgets.iter().enumerate() {
                    if budget.covers(&p.info) {
                        budget_rate[b] += hourly;
                    }
                }
                self.ledger.gpu_used += p.gpus * dt;
                self.ledger.gpu_busy += p.gpus * p.gpu_busy * dt;
                req.add(&p.info.requests);
            }
            *team_cost.entry("idle".into()).or_default() += (cost - allocated).max(0.0);
            let share = |r: &str| {
                let a = node.info.allocatable.get(r).as_f64();
                if a > 0.0 {
                    (req.get(r).as_f64() / a).min(1.0)
                } else {
                    0.0
                }
            };
            self.ledger.cpu_share += share("cpu") * dt;
            self.ledger.mem_share += share("memory") * dt;
            self.ledger.node_seconds += dt;
        }
        for (t, c) in team_cost {
            *self.ledger.spend_by_team.entry(t).or_default() += c;
        }
        for (b, budget) in budgets.iter().enumerate() {
            if budget_rate[b] > budget.max_hourly_cost + 1e-9 {
                self.ledger.budget_breaches += 1;
            }
        }
        self.ledger.spend += spend;
        spend
    }

    /// Pods not done.
    pub fn live_pods(&self) -> impl Iterator<Item = (usize, &SimPod)> {
        self.pods.iter().enumerate().filter(|(_, p)| !p.done)
    }

    /// Drop finished pods from memory (keeps indices stable within a step only).
    pub fn compact(&mut self) {
        self.pods.retain(|p| !p.done);
    }

    /// A pod protected from voluntary eviction (training jobs carry do-not-disrupt).
    pub fn protected(p: &SimPod) -> bool {
        p.info.do_not_disrupt != DoNotDisrupt::No
    }
}
