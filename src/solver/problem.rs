//! The planning problem in solver form: node kinds (offerings and existing nodes), pod classes
//! (equivalent pending pods), per-node rules and the global constraints (limits, budgets, mix).
//!
//! In: a `Snapshot` and a `Catalog`. Out: a `Problem` that the FFD baseline and the ILP both
//! read, so the two strategies agree on every constraint.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::catalog::{CapacityType, Catalog};
use crate::cost::UnitPrices;
use crate::model::daemonset::daemon_overhead;
use crate::model::labels::{self, HOSTNAME, ZONE};
use crate::model::pod::{LabelSelector, PodInfo};
use crate::model::requirements::Operator;
use crate::model::resources::{CPU, MEMORY, PODS, Resources};
use crate::model::taints::{Taint, first_blocking};
use crate::model::{NodeInfo, Snapshot};

use super::PlanOptions;
use super::packing::Assignment;

/// Where a node kind comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum KindSource {
    /// A new node: pool index, catalog instance type index.
    New {
        /// Index into `Problem::pools`.
        pool: usize,
        /// Index into the catalog's instance types.
        instance_type: usize,
    },
    /// An existing node (or in-flight claim): index into the snapshot's nodes.
    Existing(usize),
}

/// A node that pods can be packed onto: a priced offering in a pool, or an existing node.
#[derive(Debug, Clone)]
pub struct Kind {
    /// Where it comes from.
    pub source: KindSource,
    /// Instance type name (or the node's label).
    pub instance_type: String,
    /// Node labels.
    pub labels: Arc<BTreeMap<String, String>>,
    /// Taints.
    pub taints: Arc<Vec<Taint>>,
    /// Free capacity for pending pods, per problem dimension.
    pub cap: Vec<i64>,
    /// List price, USD/hour (for existing nodes, what they already cost).
    pub price: f64,
    /// Objective cost: price plus expected interruption cost; 0 for existing nodes.
    pub cost: f64,
    /// Zone.
    pub zone: String,
    /// Capacity type.
    pub capacity_type: CapacityType,
    /// Pool index, when the node belongs to a pool.
    pub pool: Option<usize>,
    /// What the node counts against its pool's limits, per `PoolState::limit_names`.
    pub limit_usage: Vec<i64>,
    /// Unit prices for cost allocation.
    pub unit_prices: UnitPrices,
    /// Allocatable (after DaemonSets) for reporting.
    pub allocatable: Resources,
    /// True when the price is an estimate.
    pub price_estimated: bool,
}

impl Kind {
    /// True for an existing node.
    pub fn is_existing(&self) -> bool {
        matches!(self.source, KindSource::Existing(_))
    }
}

/// A per-node rule: when a node holds any `trigger` class, the `counted` classes on it may total
/// at most `cap` (less what matching pods already run there). Hostname spread and self
/// anti-affinity become such rules.
#[derive(Debug, Clone)]
pub struct NodeRule {
    /// Classes whose presence activates the rule (sorted).
    pub trigger: Vec<usize>,
    /// Classes counted against the cap (sorted).
    pub counted: Vec<usize>,
    /// The cap on a new node.
    pub cap: u32,
    /// Matching pods already bound, per existing kind.
    pub existing: HashMap<usize, u32>,
    /// Human-readable description.
    pub what: String,
}

/// A set of equivalent pending pods.
#[derive(Debug, Clone)]
pub struct Class {
    /// Snapshot pod indices, in placement order (priority, then age).
    pub pods: Vec<usize>,
    /// Requests of one unit, per dimension.
    pub req: Vec<i64>,
    /// Pods per unit (1, or the whole class for hostname self-affinity).
    pub unit_pods: usize,
    /// Units to place.
    pub demand: u32,
    /// Compatible kinds (sorted).
    pub kinds: Vec<usize>,
    /// Classes this one may not share a node with (may contain itself: at most one unit per node).
    pub conflicts: Vec<usize>,
    /// Node rules this class triggers or is counted in.
    pub rules: Vec<usize>,
    /// Budgets covering the class.
    pub budgets: Vec<usize>,
    /// Priority.
    pub priority: i32,
    /// CPU request of one unit in cores (for the capacity mix).
    pub cpu_cores: f64,
    /// Requests of one unit as a resource list.
    pub requests: Resources,
    /// Requests of one unit as cost allocation prices them.
    pub cost_basis: crate::cost::CostBasis,
    /// Why no kind fits, when `kinds` is empty.
    pub no_kind_reason: Option<String>,
    /// The topology domain (`key`, `value`) the class is pinned to, if any.
    pub pin: Option<(String, String)>,
}

/// A pool's global constraints.
#[derive(Debug, Clone)]
pub struct PoolState {
    /// Pool name.
    pub name: String,
    /// Weight.
    pub weight: i32,
    /// Names of limited resources (`nodes` counts nodes).
    pub limit_names: Vec<String>,
    /// Remaining headroom per limited resource.
    pub limit_left: Vec<i64>,
    /// Remaining USD/hour under the pool budget.
    pub budget_left: Option<f64>,
    /// The pool's budget cap (for messages).
    pub budget_cap: Option<f64>,
    /// Committed hourly cost of the pool's existing nodes.
    pub existing_cost: f64,
    /// Minimum on-demand share of placed pod CPU (0–1).
    pub min_on_demand: f64,
    /// Pod CPU (cores) already on the pool's on-demand nodes.
    pub od_cpu_existing: f64,
    /// Pod CPU (cores) already on all the pool's nodes.
    pub cpu_existing: f64,
}

/// A budget's remaining room.
#[derive(Debug, Clone)]
pub struct BudgetState {
    /// Budget name.
    pub name: String,
    /// The cap, USD/hour.
    pub cap: f64,
    /// Already allocated to running pods in scope, USD/hour.
    pub used: f64,
}

/// The whole problem.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Dimension names: cpu, memory, pods, then extended resources.
    pub dims: Vec<String>,
    /// Node kinds.
    pub kinds: Vec<Kind>,
    /// Pod classes.
    pub classes: Vec<Class>,
    /// Per-node rules.
    pub rules: Vec<NodeRule>,
    /// Pools.
    pub pools: Vec<PoolState>,
    /// Budgets.
    pub budgets: Vec<BudgetState>,
    /// Pods rejected while building (pod index, reason).
    pub rejected: Vec<(usize, String)>,
}

fn dim_value(q: crate::model::quantity::Quantity, name: &str) -> i64 {
    if name == MEMORY || name.ends_with("storage") {
        q.units()
    } else {
        q.milli()
    }
}

/// Labels of a node that `pool` launches as instance type `it` (before the offering's zone and
/// capacity type are known): the type's labels, the pool's labels and single-valued requirements.
pub fn pool_node_labels(
    pool: &crate::model::Pool,
    it: &crate::catalog::InstanceType,
    region: &str,
) -> BTreeMap<String, String> {
    let mut base = it.labels.clone();
    for (k, v) in &pool.labels {
        base.insert(k.clone(), v.clone());
    }
    for r in &pool.requirements.0 {
        if r.op == Operator::In && r.values.len() == 1 && !labels::is_offering_key(&r.key) {
            base.entry(r.key.clone()).or_insert_with(|| r.values[0].clone());
        }
    }
    base.insert(labels::NODEPOOL.into(), pool.name.clone());
    base.insert(labels::KARPENTER_NODEPOOL.into(), pool.name.clone());
    base.insert(labels::INSTANCE_TYPE.into(), it.name.clone());
    if !region.is_empty() {
        base.insert(labels::REGION.into(), region.to_string());
    }
    base
}

/// A cheap necessary condition for a node of `pool` to take `pod`: the pod tolerates the pool's
/// taints and its nodeSelector agrees with the pool's template labels. Pools no pending pod
/// passes get no node kinds at all.
fn pool_may_host(pool: &crate::model::Pool, pod: &PodInfo) -> bool {
    first_blocking(&pool.taints, &pod.tolerations).is_none()
        && pod
            .node_selector
            .0
            .iter()
            .all(|r| !pool.labels.contains_key(&r.key) || r.matches(&pool.labels))
}

/// A cheap necessary condition for a pool to launch an instance type: every requirement on a
/// label the type itself carries (and the pool does not set) holds on the type's labels. Saves
/// building the labels of types the pool excludes anyway; the requirements to check are chosen
/// once per pool, not once per type.
struct TypeFilter<'p>(Vec<(&'p str, &'p crate::model::requirements::Requirement)>);

impl<'p> TypeFilter<'p> {
    fn new(pool: &'p crate::model::Pool) -> Self {
        let decided_elsewhere = |key: &str| {
            pool.labels.contains_key(key)
                || [
                    labels::NODEPOOL,
                    labels::INSTANCE_TYPE,
                    labels::REGION,
                    ZONE,
                    labels::CAPACITY_TYPE,
                ]
                .contains(&key)
        };
        TypeFilter(
            pool.requirements
                .0
                .iter()
                .map(|r| (labels::canonical_key(&r.key), r))
                .filter(|(key, _)| !decided_elsewhere(key))
                .collect(),
        )
    }

    fn may_fit(&self, it: &crate::catalog::InstanceType) -> bool {
        self.0.iter().all(|&(key, r)| {
            if key != r.key {
                return !it.labels.contains_key(key) || r.matches(&it.labels);
            }
            match it.labels.get(key) {
                None => true,
                Some(value) => holds(r, value).unwrap_or_else(|| r.matches(&it.labels)),
            }
        })
    }
}

/// Whether `r` holds for a node whose label `r.key` is `value`, without a label map; None for
/// the operators that `Requirement::matches` must decide (Gt, Lt).
fn holds(r: &crate::model::requirements::Requirement, value: &str) -> Option<bool> {
    let listed = || r.values.binary_search_by(|v| v.as_str().cmp(value)).is_ok();
    match r.op {
        Operator::In => Some(listed()),
        Operator::NotIn => Some(!listed()),
        Operator::Exists => Some(true),
        Operator::DoesNotExist => Some(false),
        Operator::Gt | Operator::Lt => None,
    }
}

/// A necessary condition for an offering in `zone` with `capacity_type` to meet `pool`'s
/// requirements on those two labels, checked before the offering's labels are built.
fn offering_may_fit(pool: &crate::model::Pool, zone: &str, capacity_type: CapacityType) -> bool {
    pool.requirements.0.iter().all(|r| {
        let value = match r.key.as_str() {
            ZONE => zone,
            labels::CAPACITY_TYPE | labels::KARPENTER_CAPACITY_TYPE => capacity_type.as_str(),
            _ => return true,
        };
        holds(r, value).unwrap_or(true)
    })
}

/// `labels` with an offering's zone and capacity type (both spellings).
pub fn with_offering(
    mut labels: BTreeMap<String, String>,
    zone: &str,
    capacity_type: CapacityType,
) -> BTreeMap<String, String> {
    labels.insert(ZONE.into(), zone.to_string());
    labels.insert(labels::CAPACITY_TYPE.into(), capacity_type.as_str().into());
    labels.insert(labels::KARPENTER_CAPACITY_TYPE.into(), capacity_type.as_str().into());
    labels
}

/// A problem-dimension value (as `dim_value` stores it) as a quantity, for messages.
pub fn dim_quantity(v: i64, name: &str) -> crate::model::quantity::Quantity {
    if name == MEMORY || name.ends_with("storage") {
        crate::model::quantity::Quantity::from_units(v)
    } else {
        crate::model::quantity::Quantity::from_milli(v)
    }
}

fn to_vec(dims: &[String], r: &Resources) -> Vec<i64> {
    dims.iter().map(|d| dim_value(r.get(d), d)).collect()
}

/// The label keys any selector reads: pod labels outside these never split classes.
fn selector_keys(snapshot: &Snapshot) -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    let mut add = |s: &LabelSelector| keys.extend(s.keys().map(str::to_string));
    for p in &snapshot.pods {
        p.spread.iter().for_each(|c| add(&c.selector));
        p.pod_affinity.iter().for_each(|t| add(&t.selector));
        p.pod_anti_affinity.iter().for_each(|t| add(&t.selector));
        p.preferred_pod_anti_affinity.iter().for_each(|(_, t)| add(&t.selector));
    }
    for b in &snapshot.budgets {
        if let Some(s) = &b.selector {
            add(s);
        }
    }
    keys
}

/// What makes two pending pods interchangeable.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClassKey {
    namespace: String,
    labels: Vec<(String, String)>,
    requests: Resources,
    node_selector: crate::model::requirements::Requirements,
    node_affinity: crate::model::requirements::NodeAffinity,
    tolerations: Vec<crate::model::taints::Toleration>,
    host_ports: Vec<crate::model::pod::HostPort>,
    spread: Vec<crate::model::pod::SpreadConstraint>,
    affinity: Vec<crate::model::pod::PodAffinityTerm>,
    anti: Vec<crate::model::pod::PodAffinityTerm>,
    priority: i32,
    pin: Option<(String, String)>,
}

impl Problem {
    /// Build the problem for the pending pods of `snapshot`.
    pub fn build(snapshot: &Snapshot, catalog: &Catalog, options: &PlanOptions) -> Problem {
        Self::build_excluding(snapshot, catalog, options, &[])
    }

    /// Build the problem leaving out the pending pods in `excluded` (snapshot index, reason):
    /// they are rejected with that reason and count in no topology domain.
    pub fn build_excluding(
        snapshot: &Snapshot,
        catalog: &Catalog,
        options: &PlanOptions,
        excluded: &[(usize, String)],
    ) -> Problem {
        let mut builder = Builder::new(snapshot, catalog, options);
        builder.rejected = excluded.to_vec();
        builder.build()
    }

    /// Pods of domain-pinned classes that `assignment` leaves unplaced, with the reason. Pins
    /// are chosen assuming every pinned pod lands in its domain; when one does not, the counts
    /// the other pins were balanced against are wrong.
    pub fn stranded(&self, assignment: &Assignment) -> Vec<(usize, String)> {
        let mut placed = vec![0usize; self.classes.len()];
        for b in &assignment.bins {
            for &(c, n) in &b.counts {
                placed[c] += n as usize * self.classes[c].unit_pods;
            }
        }
        let mut out = vec![];
        for (c, class) in self.classes.iter().enumerate().filter(|(_, c)| c.pin.is_some()) {
            let reason = class
                .no_kind_reason
                .clone()
                .or_else(|| assignment.unplaced.iter().find(|u| u.0 == c).map(|u| u.2.clone()))
                .unwrap_or_else(|| "no node can hold it".into());
            for &p in &class.pods[placed[c].min(class.pods.len())..] {
                out.push((p, reason.clone()));
            }
        }
        out
    }

    /// Allocated cost of one unit of `class` on `kind`.
    pub fn alloc_cost(&self, class: usize, kind: usize) -> f64 {
        let c = &self.classes[class];
        self.kinds[kind].unit_prices.price_of(&c.cost_basis)
    }
}

/// Bound pods indexed for the per-node checks of a build (one pass over the pods instead of one
/// per class and node).
struct BoundPods<'a> {
    /// Pods by the node they are bound to.
    by_node: HashMap<&'a str, Vec<&'a PodInfo>>,
    /// Zone of each node.
    zone_of: HashMap<&'a str, Option<&'a String>>,
    /// Bound pods with required anti-affinity terms.
    with_anti: Vec<&'a PodInfo>,
    /// Every bound pod.
    bound: Vec<&'a PodInfo>,
}

impl<'a> BoundPods<'a> {
    fn new(snapshot: &'a Snapshot) -> Self {
        let mut by_node: HashMap<&str, Vec<&PodInfo>> = HashMap::new();
        let bound: Vec<&PodInfo> = snapshot.pods.iter().filter(|p| !p.is_pending()).collect();
        for p in &bound {
            if let Some(n) = &p.node_name {
                by_node.entry(n.as_str()).or_default().push(p);
            }
        }
        BoundPods {
            by_node,
            zone_of: snapshot
                .nodes
                .iter()
                .map(|n| (n.name.as_str(), n.zone.as_ref()))
                .collect(),
            with_anti: bound
                .iter()
                .copied()
                .filter(|p| !p.pod_anti_affinity.is_empty())
                .collect(),
            bound,
        }
    }

    /// Pods bound to `node`.
    fn on(&self, node: &str) -> &[&'a PodInfo] {
        self.by_node.get(node).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The zone of the node `pod` is bound to.
    fn zone(&self, pod: &PodInfo) -> Option<&'a String> {
        pod.node_name
            .as_deref()
            .and_then(|n| self.zone_of.get(n).copied().flatten())
    }
}

struct Builder<'a> {
    snapshot: &'a Snapshot,
    bound: BoundPods<'a>,
    catalog: &'a Catalog,
    options: &'a PlanOptions,
    dims: Vec<String>,
    kinds: Vec<Kind>,
    pools: Vec<PoolState>,
    rejected: Vec<(usize, String)>,
}

impl<'a> Builder<'a> {
    fn new(snapshot: &'a Snapshot, catalog: &'a Catalog, options: &'a PlanOptions) -> Self {
        let mut extra: BTreeSet<String> = BTreeSet::new();
        for (_, p) in snapshot.pending() {
            extra.extend(p.requests.names().map(str::to_string));
        }
        let mut dims = vec![CPU.to_string(), MEMORY.to_string(), PODS.to_string()];
        for d in extra {
            if !dims.contains(&d) {
                dims.push(d);
            }
        }
        Builder {
            snapshot,
            bound: BoundPods::new(snapshot),
            catalog,
            options,
            dims,
            kinds: vec![],
            pools: vec![],
            rejected: vec![],
        }
    }

    fn build(mut self) -> Problem {
        self.build_pools();
        self.build_new_kinds();
        self.build_existing_kinds();
        let budgets = self.build_budgets();
        let mut classes = self.build_classes();
        let rules = self.build_rules(&mut classes);
        for c in classes.iter_mut() {
            c.budgets = budgets
                .iter()
                .enumerate()
                .filter(|(_, b)| c.pods.iter().any(|&p| b.1.covers(&self.snapshot.pods[p])))
                .map(|(i, _)| i)
                .collect();
        }
        Problem {
            dims: self.dims,
            kinds: self.kinds,
            classes,
            rules,
            pools: self.pools,
            budgets: budgets.into_iter().map(|(s, _)| s).collect(),
            rejected: self.rejected,
        }
    }

    fn build_pools(&mut self) {
        let mut order: Vec<usize> = (0..self.snapshot.pools.len()).collect();
        let pools = &self.snapshot.pools;
        order.sort_by(|&a, &b| {
            pools[b]
                .weight
                .cmp(&pools[a].weight)
                .then(pools[a].name.cmp(&pools[b].name))
        });
        for i in order {
            let p = &pools[i];
            let limit_names: Vec<String> = p.limits.names().map(str::to_string).collect();
            let mut limit_left: Vec<i64> = limit_names
                .iter()
                .map(|n| {
                    if n == "nodes" {
                        p.limits.get(n).units()
                    } else {
                        dim_value(p.limits.get(n), n)
                    }
                })
                .collect();
            let mut existing_cost = 0.0;
            let mut od_cpu = 0.0;
            let mut cpu = 0.0;
            for n in self
                .snapshot
                .nodes
                .iter()
                .filter(|n| n.pool.as_deref() == Some(&p.name))
            {
                for (j, name) in limit_names.iter().enumerate() {
                    limit_left[j] -= if name == "nodes" {
                        1
                    } else {
                        dim_value(n.capacity.get(name), name)
                    };
                }
                existing_cost += n.price.unwrap_or(0.0);
                let pod_cpu: f64 = self
                    .bound
                    .on(&n.name)
                    .iter()
                    .map(|p| p.requests.get(CPU).as_f64())
                    .sum();
                cpu += pod_cpu;
                if n.capacity_type != Some(CapacityType::Spot) {
                    od_cpu += pod_cpu;
                }
            }
            self.pools.push(PoolState {
                name: p.name.clone(),
                weight: p.weight,
                limit_names,
                limit_left,
                budget_left: p.max_hourly_cost.map(|m| m - existing_cost),
                budget_cap: p.max_hourly_cost,
                existing_cost,
                min_on_demand: p.min_on_demand_percent / 100.0,
                od_cpu_existing: od_cpu,
                cpu_existing: cpu,
            });
        }
    }

    fn pool_index(&self, name: &str) -> Option<usize> {
        self.pools.iter().position(|p| p.name == name)
    }

    fn limit_usage(&self, pool: usize, capacity: &Resources) -> Vec<i64> {
        self.pools[pool]
            .limit_names
            .iter()
            .map(|n| if n == "nodes" { 1 } else { dim_value(capacity.get(n), n) })
            .collect()
    }

    fn build_new_kinds(&mut self) {
        for (pi, pool_state) in self.pools.clone().iter().enumerate() {
            let Some(pool) = self.snapshot.pools.iter().find(|p| p.name == pool_state.name) else {
                continue;
            };
            // Spread and affinity domains count the zones of every pool, so pools are only left
            // out when no pending pod spreads or has pod (anti-)affinity.
            let spreading = self.snapshot.pending().any(|(_, pod)| {
                !pod.spread.is_empty() || !pod.pod_affinity.is_empty() || !pod.pod_anti_affinity.is_empty()
            });
            if !spreading && !self.snapshot.pending().any(|(_, pod)| pool_may_host(pool, pod)) {
                continue;
            }
            let taints = Arc::new(pool.taints.clone());
            let filter = TypeFilter::new(pool);
            for (ti, it) in self.catalog.instance_types.iter().enumerate() {
                if !filter.may_fit(it) {
                    continue;
                }
                let base = pool_node_labels(pool, it, &self.catalog.region);
                // Requirements that do not depend on the offering decide for the whole type.
                let type_fits = pool.requirements.0.iter().all(|r| {
                    let key = labels::canonical_key(&r.key);
                    key == ZONE || key == labels::CAPACITY_TYPE || r.matches(&base)
                });
                if !type_fits {
                    continue;
                }
                let on_demand_price = it
                    .offerings
                    .iter()
                    .filter(|o| o.capacity_type == CapacityType::OnDemand)
                    .map(|o| o.price)
                    .fold(f64::INFINITY, f64::min);
                for o in &it.offerings {
                    if !offering_may_fit(pool, &o.zone, o.capacity_type) {
                        continue;
                    }
                    if self
                        .options
                        .unavailable
                        .contains(&(it.name.clone(), o.zone.clone(), o.capacity_type))
                    {
                        continue;
                    }
                    let labels = with_offering(base.clone(), &o.zone, o.capacity_type);
                    if !pool.requirements.matches(&labels) {
                        continue;
                    }
                    let overhead = daemon_overhead(&self.snapshot.daemonsets, &labels, &pool.taints);
                    let free = it.allocatable.minus(&overhead);
                    if free.0.values().any(|q| *q < crate::model::quantity::Quantity::ZERO) {
                        continue;
                    }
                    let reference = if on_demand_price.is_finite() {
                        on_demand_price
                    } else {
                        o.price
                    };
                    let interruption = o.interruption_rate.unwrap_or(0.0) * self.options.spot_rework_hours * reference;
                    self.kinds.push(Kind {
                        source: KindSource::New {
                            pool: pi,
                            instance_type: ti,
                        },
                        instance_type: it.name.clone(),
                        cap: to_vec(&self.dims, &free),
                        price: o.price,
                        cost: o.price + interruption,
                        zone: o.zone.clone(),
                        capacity_type: o.capacity_type,
                        pool: Some(pi),
                        limit_usage: self.limit_usage(pi, &it.capacity),
                        unit_prices: UnitPrices::split(o.price, &it.capacity),
                        allocatable: free,
                        price_estimated: o.price_estimated,
                        labels: Arc::new(labels),
                        taints: taints.clone(),
                    });
                }
            }
        }
    }

    fn build_existing_kinds(&mut self) {
        for (ni, node) in self.snapshot.nodes.iter().enumerate() {
            if node.cordoned {
                continue;
            }
            let mut free = node.allocatable.clone();
            for p in self.bound.on(&node.name) {
                free.sub(&p.requests);
            }
            if node.in_flight {
                free.sub(&daemon_overhead(&self.snapshot.daemonsets, &node.labels, &node.taints));
            }
            let pool = node.pool.as_deref().and_then(|p| self.pool_index(p));
            let mut labels = node.labels.clone();
            labels.entry(HOSTNAME.into()).or_insert_with(|| node.name.clone());
            self.kinds.push(existing_kind(ni, node, &self.dims, free, labels, pool));
        }
    }

    fn build_budgets(&self) -> Vec<(BudgetState, &'a crate::model::Budget)> {
        let mut nodes: HashMap<&str, &NodeInfo> = HashMap::new();
        for n in &self.snapshot.nodes {
            nodes.entry(n.name.as_str()).or_insert(n);
        }
        self.snapshot
            .budgets
            .iter()
            .map(|b| {
                let used = self
                    .snapshot
                    .pods
                    .iter()
                    .filter(|p| !p.is_pending() && b.covers(p))
                    .filter_map(|p| {
                        let node = nodes.get(p.node_name.as_deref()?)?;
                        Some(UnitPrices::split(node.price.unwrap_or(0.0), &node.capacity).allocate(&p.requests))
                    })
                    .sum();
                (
                    BudgetState {
                        name: b.name.clone(),
                        cap: b.max_hourly_cost,
                        used,
                    },
                    b,
                )
            })
            .collect()
    }

    fn class_key(&self, pod: &PodInfo, keys: &BTreeSet<String>, pin: Option<(String, String)>) -> ClassKey {
        ClassKey {
            namespace: pod.namespace.clone(),
            labels: pod
                .labels
                .iter()
                .filter(|(k, _)| keys.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            requests: pod.requests.clone(),
            node_selector: pod.node_selector.clone(),
            node_affinity: pod.node_affinity.clone(),
            tolerations: pod.tolerations.clone(),
            host_ports: pod.host_ports.clone(),
            spread: pod.spread.clone(),
            affinity: pod.pod_affinity.clone(),
            anti: pod.pod_anti_affinity.clone(),
            priority: pod.priority,
            pin,
        }
    }

    fn build_classes(&mut self) -> Vec<Class> {
        let keys = selector_keys(self.snapshot);
        let mut pending: Vec<usize> = self.snapshot.pending().map(|(i, _)| i).collect();
        let pods = &self.snapshot.pods;
        pending.sort_by(|&a, &b| {
            pods[b]
                .priority
                .cmp(&pods[a].priority)
                .then(pods[a].created.cmp(&pods[b].created))
                .then(pods[a].key.cmp(&pods[b].key))
        });
        pending.retain(|p| !self.rejected.iter().any(|(r, _)| r == p));
        let pins = super::topology::domain_pins(self.snapshot, &self.kinds, &pending, &mut self.rejected);
        let mut index: HashMap<ClassKey, usize> = HashMap::new();
        let mut classes: Vec<Class> = vec![];
        let mut compat_cache: HashMap<(ClassKey, ()), Vec<usize>> = HashMap::new();
        for &pi in &pending {
            if self.rejected.iter().any(|(r, _)| *r == pi) {
                continue;
            }
            let pod = &pods[pi];
            let pin = pins.get(&pi).cloned();
            let key = self.class_key(pod, &keys, pin.clone());
            if let Some(&ci) = index.get(&key) {
                classes[ci].pods.push(pi);
                classes[ci].demand += 1;
                continue;
            }
            let cache_key = (
                ClassKey {
                    labels: vec![],
                    host_ports: vec![],
                    spread: vec![],
                    anti: vec![],
                    affinity: vec![],
                    priority: 0,
                    ..key.clone()
                },
                (),
            );
            let candidate_kinds = compat_cache
                .entry(cache_key)
                .or_insert_with(|| {
                    self.kinds
                        .iter()
                        .enumerate()
                        .filter(|(_, k)| accepts(pod, k, &self.dims))
                        .filter(|(_, k)| pin.as_ref().is_none_or(|(key, value)| k.labels.get(key) == Some(value)))
                        .map(|(i, _)| i)
                        .collect()
                })
                .clone();
            let kinds: Vec<usize> = candidate_kinds
                .into_iter()
                .filter(|&k| existing_allows(self.snapshot, &self.bound, &self.kinds[k], pod))
                .collect();
            let req = to_vec(&self.dims, &pod.requests);
            let no_kind_reason = kinds.is_empty().then(|| self.explain_no_kind(pod, pin.as_ref()));
            index.insert(key, classes.len());
            classes.push(Class {
                pods: vec![pi],
                cpu_cores: pod.requests.get(CPU).as_f64(),
                cost_basis: crate::cost::CostBasis::of(&pod.requests),
                requests: pod.requests.clone(),
                req,
                unit_pods: 1,
                demand: 1,
                kinds,
                conflicts: vec![],
                rules: vec![],
                budgets: vec![],
                priority: pod.priority,
                no_kind_reason,
                pin: pin.clone(),
            });
        }
        self.merge_hostname_affinity_groups(classes)
    }

    /// Pods that require hostname affinity to their own group (a term that selects them and no
    /// running pod) must all share one node. Each such group becomes a single unit holding all
    /// its pods, also when its pods fall into several classes (other requests, tolerations...).
    fn merge_hostname_affinity_groups(&self, classes: Vec<Class>) -> Vec<Class> {
        let pods = &self.snapshot.pods;
        let n = classes.len();
        let snapshot = self.snapshot;
        let self_terms = |p: &'a PodInfo| -> Vec<&'a crate::model::pod::PodAffinityTerm> {
            p.pod_affinity
                .iter()
                .filter(|t| super::topology::is_hostname_self_affinity_term(t, p, snapshot))
                .collect()
        };
        let grouped: Vec<bool> = classes
            .iter()
            .map(|c| !self_terms(&pods[c.pods[0]]).is_empty())
            .collect();
        let mut root: Vec<usize> = (0..n).collect();
        fn find(root: &mut [usize], mut x: usize) -> usize {
            while root[x] != x {
                root[x] = root[root[x]];
                x = root[x];
            }
            x
        }
        for a in (0..n).filter(|&a| grouped[a]) {
            for t in self_terms(&pods[classes[a].pods[0]]) {
                for b in (0..n).filter(|&b| grouped[b] && b != a) {
                    let pb = &pods[classes[b].pods[0]];
                    if t.selects(&pb.namespace, &pb.labels) {
                        let (ra, rb) = (find(&mut root, a), find(&mut root, b));
                        root[ra.max(rb)] = ra.min(rb);
                    }
                }
            }
        }
        let roots: Vec<usize> = (0..n).map(|c| find(&mut root, c)).collect();
        let mut slots: Vec<Option<Class>> = classes.into_iter().map(Some).collect();
        let mut out = vec![];
        for first in 0..n {
            if !grouped[first] || roots[first] != first {
                if let Some(c) = slots[first].take().filter(|_| !grouped[first]) {
                    out.push(c);
                }
                continue;
            }
            let members: Vec<Class> = (first..n)
                .filter(|&c| roots[c] == first)
                .filter_map(|c| slots[c].take())
                .collect();
            let mut unit = members[0].clone();
            unit.req = vec![0; unit.req.len()];
            unit.requests = Resources::new();
            unit.cpu_cores = 0.0;
            unit.pods.clear();
            for m in &members {
                for (u, r) in unit.req.iter_mut().zip(&m.req) {
                    *u += r * m.pods.len() as i64;
                }
                unit.requests.add(&m.requests.times(m.pods.len() as i64));
                unit.cpu_cores += m.cpu_cores * m.pods.len() as f64;
                unit.pods.extend(&m.pods);
                unit.priority = unit.priority.max(m.priority);
                unit.kinds.retain(|k| m.kinds.binary_search(k).is_ok());
                if unit.no_kind_reason.is_none() {
                    unit.no_kind_reason = m.no_kind_reason.clone();
                }
            }
            unit.pods.sort_by(|&a, &b| {
                pods[b]
                    .priority
                    .cmp(&pods[a].priority)
                    .then(pods[a].created.cmp(&pods[b].created))
                    .then(pods[a].key.cmp(&pods[b].key))
            });
            let count = unit.pods.len();
            unit.cost_basis = crate::cost::CostBasis::of(&unit.requests);
            if count > 1 {
                unit.unit_pods = count;
                unit.demand = 1;
                let req = unit.req.clone();
                unit.kinds.retain(|&k| fits(&req, &self.kinds[k].cap));
                if unit.kinds.is_empty() && unit.no_kind_reason.is_none() {
                    unit.no_kind_reason = Some(format!(
                        "its {count} pods require hostname affinity to each other and no single node can hold them all"
                    ));
                }
            }
            out.push(unit);
        }
        out
    }

    fn explain_no_kind(&self, pod: &PodInfo, pin: Option<&(String, String)>) -> String {
        if self.kinds.iter().all(|k| k.is_existing()) {
            return "no NodePool can create nodes and no existing node fits".into();
        }
        let label_ok: Vec<&Kind> = self.kinds.iter().filter(|k| pod.accepts_labels(&k.labels)).collect();
        if label_ok.is_empty() {
            let failing = pod
                .node_selector
                .0
                .iter()
                .find(|r| self.kinds.iter().all(|k| !r.matches(&k.labels)))
                .map(|r| format!("nodeSelector/affinity requirement {r}"))
                .unwrap_or_else(|| "its node selector and affinity terms".into());
            return format!("no instance type in any NodePool satisfies {failing}");
        }
        let taint_ok: Vec<&&Kind> = label_ok
            .iter()
            .filter(|k| first_blocking(&k.taints, &pod.tolerations).is_none())
            .collect();
        if taint_ok.is_empty() {
            let t = first_blocking(&label_ok[0].taints, &pod.tolerations)
                .map(|t| format!("{}={}:{:?}", t.key, t.value, t.effect))
                .unwrap_or_default();
            return format!("every compatible node has a taint the pod does not tolerate (e.g. {t})");
        }
        let req = to_vec(&self.dims, &pod.requests);
        if !taint_ok.iter().any(|k| fits(&req, &k.cap)) {
            let too_big: Vec<&str> = self
                .dims
                .iter()
                .enumerate()
                .filter(|(d, _)| taint_ok.iter().all(|k| k.cap[*d] < req[*d]))
                .map(|(_, n)| n.as_str())
                .collect();
            return format!(
                "requests exceed the allocatable of every compatible instance type ({})",
                too_big.join(", ")
            );
        }
        if let Some((k, v)) = pin {
            return format!("topology: no compatible capacity in {k}={v}");
        }
        "no compatible node: host ports or pod anti-affinity with pods already running".into()
    }

    fn build_rules(&self, classes: &mut [Class]) -> Vec<NodeRule> {
        let pods = &self.snapshot.pods;
        let mut rules: Vec<NodeRule> = vec![];
        let selects = |sel: &LabelSelector, ns: Option<&[String]>, p: &PodInfo| {
            ns.is_none_or(|ns| ns.is_empty() || ns.contains(&p.namespace)) && sel.matches(&p.labels)
        };
        let n = classes.len();
        // A class is represented by its first pod, except a unit of several pods that must
        // share a node (hostname self-affinity), whose pods may differ.
        let reps: Vec<&[usize]> = classes
            .iter()
            .map(|c| if c.unit_pods > 1 { &c.pods[..] } else { &c.pods[..1] })
            .collect();
        let clash = |pa: &PodInfo, pb: &PodInfo| {
            let anti = |x: &PodInfo, y: &PodInfo| {
                x.pod_anti_affinity
                    .iter()
                    .any(|t| t.topology_key == HOSTNAME && t.selects(&y.namespace, &y.labels))
            };
            anti(pa, pb)
                || anti(pb, pa)
                || pa
                    .host_ports
                    .iter()
                    .any(|x| pb.host_ports.iter().any(|y| x.conflicts(y)))
        };
        let mut conflicts: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
        let mut inner_clash = vec![false; n];
        for a in 0..n {
            for b in a..n {
                if a == b && classes[a].unit_pods > 1 {
                    let r = reps[a];
                    inner_clash[a] = (0..r.len()).any(|i| (i + 1..r.len()).any(|j| clash(&pods[r[i]], &pods[r[j]])));
                } else if reps[a]
                    .iter()
                    .any(|&x| reps[b].iter().any(|&y| clash(&pods[x], &pods[y])))
                {
                    conflicts[a].insert(b);
                    conflicts[b].insert(a);
                }
            }
        }
        for (c, clashes) in classes.iter_mut().zip(inner_clash) {
            if clashes {
                c.kinds.clear();
                c.no_kind_reason.get_or_insert_with(|| {
                    format!(
                        "its {} pods require hostname affinity to each other but conflict (host ports or anti-affinity)",
                        c.pods.len()
                    )
                });
            }
        }
        for (c, set) in classes.iter_mut().zip(conflicts) {
            c.conflicts = set.into_iter().collect();
        }
        let mut seen: HashMap<(LabelSelector, String, u32), usize> = HashMap::new();
        for a in 0..n {
            let pa = pods[classes[a].pods[0]].clone();
            for s in pa.spread.iter().filter(|s| s.topology_key == HOSTNAME) {
                let key = (s.selector.clone(), pa.namespace.clone(), s.max_skew);
                if let Some(&r) = seen.get(&key) {
                    rules[r].trigger.push(a);
                    classes[a].rules.push(r);
                    continue;
                }
                let ns = [pa.namespace.clone()];
                let counted: Vec<usize> = (0..n)
                    .filter(|&b| selects(&s.selector, Some(&ns), &pods[classes[b].pods[0]]))
                    .collect();
                let mut existing = HashMap::new();
                for (ki, k) in self.kinds.iter().enumerate() {
                    if let KindSource::Existing(ni) = k.source {
                        let count = self
                            .bound
                            .on(&self.snapshot.nodes[ni].name)
                            .iter()
                            .filter(|p| selects(&s.selector, Some(&ns), p))
                            .count() as u32;
                        if count > 0 {
                            existing.insert(ki, count);
                        }
                    }
                }
                let r = rules.len();
                seen.insert(key, r);
                rules.push(NodeRule {
                    trigger: vec![a],
                    counted: counted.clone(),
                    cap: s.max_skew,
                    existing,
                    what: format!("topology spread on {HOSTNAME} (maxSkew {})", s.max_skew),
                });
                classes[a].rules.push(r);
                for b in counted {
                    if b != a {
                        classes[b].rules.push(r);
                    }
                }
            }
        }
        for c in classes.iter_mut() {
            c.rules.sort();
            c.rules.dedup();
        }
        rules
    }
}

fn existing_kind(
    ni: usize,
    node: &NodeInfo,
    dims: &[String],
    free: Resources,
    labels: BTreeMap<String, String>,
    pool: Option<usize>,
) -> Kind {
    Kind {
        source: KindSource::Existing(ni),
        instance_type: node.instance_type.clone().unwrap_or_default(),
        cap: to_vec(dims, &free),
        price: node.price.unwrap_or(0.0),
        cost: 0.0,
        zone: node.zone.clone().unwrap_or_default(),
        capacity_type: node.capacity_type.unwrap_or(CapacityType::OnDemand),
        pool,
        limit_usage: vec![],
        unit_prices: UnitPrices::split(node.price.unwrap_or(0.0), &node.capacity),
        allocatable: free,
        price_estimated: false,
        labels: Arc::new(labels),
        taints: Arc::new(node.taints.clone()),
    }
}

/// True when every dimension of `req` fits in `cap`.
pub fn fits(req: &[i64], cap: &[i64]) -> bool {
    req.iter().zip(cap).all(|(r, c)| r <= c)
}

/// Node-level compatibility: labels, taints and the empty node's capacity.
fn accepts(pod: &PodInfo, kind: &Kind, dims: &[String]) -> bool {
    pod.accepts_labels(&kind.labels)
        && first_blocking(&kind.taints, &pod.tolerations).is_none()
        && fits(&to_vec(dims, &pod.requests), &kind.cap)
}

/// Constraints against pods already running on an existing node: host ports, anti-affinity
/// both ways, and hostname affinity.
fn existing_allows(snapshot: &Snapshot, bound: &BoundPods, kind: &Kind, pod: &PodInfo) -> bool {
    let KindSource::Existing(ni) = kind.source else {
        return !super::topology::needs_existing_host(pod, snapshot);
    };
    let node = snapshot.nodes[ni].name.as_str();
    let zone = kind.labels.get(ZONE);
    let on_node = bound.on(node);
    let ports_clash = on_node.iter().any(|other| {
        other
            .host_ports
            .iter()
            .any(|x| pod.host_ports.iter().any(|y| x.conflicts(y)))
    });
    if ports_clash {
        return false;
    }
    let near = |other: &PodInfo, key: &str| {
        if key == HOSTNAME {
            other.node_name.as_deref() == Some(node)
        } else {
            key == ZONE && bound.zone(other) == zone
        }
    };
    let repelled = bound.with_anti.iter().any(|other| {
        other
            .pod_anti_affinity
            .iter()
            .any(|t| near(other, &t.topology_key) && t.selects(&pod.namespace, &pod.labels))
    });
    if repelled {
        return false;
    }
    for t in &pod.pod_anti_affinity {
        let candidates: &[&PodInfo] = if t.topology_key == HOSTNAME {
            on_node
        } else {
            &bound.bound
        };
        if candidates
            .iter()
            .any(|other| near(other, &t.topology_key) && t.selects(&other.namespace, &other.labels))
        {
            return false;
        }
    }
    for t in pod.pod_affinity.iter().filter(|t| t.topology_key == HOSTNAME) {
        let exists_anywhere = bound.bound.iter().any(|p| t.selects(&p.namespace, &p.labels));
        if exists_anywhere && !on_node.iter().any(|p| t.selects(&p.namespace, &p.labels)) {
            return false;
        }
    }
    true
}
