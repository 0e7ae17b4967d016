//! Fixtures for the planner tests: builders that produce Kubernetes objects as JSON (exactly what
//! `kubectl get -o json` would print), a small custom catalog with exact prices, and helpers
//! that plan with both strategies and check every plan with the independent validator.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use purser::catalog::Catalog;
use purser::model::Snapshot;
use purser::model::load::snapshot_from_objects;
use purser::solver::{self, Plan, PlanOptions, PlannedNode, Strategy, validate};
use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, OfferingSpec, Reservation};
use serde_json::{Map, Value, json};

/// The three zones of the test catalog.
pub const ZONES: [&str; 3] = ["test-1a", "test-1b", "test-1c"];
/// Region of the test catalog.
pub const REGION: &str = "test-1";

pub const ZONE_KEY: &str = "topology.kubernetes.io/zone";
pub const HOSTNAME_KEY: &str = "kubernetes.io/hostname";
pub const INSTANCE_TYPE_KEY: &str = "node.kubernetes.io/instance-type";
pub const CAPACITY_TYPE_KEY: &str = "karpenter.sh/capacity-type";
pub const INSTANCE_CPU_KEY: &str = "purser.dev/instance-cpu";
pub const INSTANCE_FAMILY_KEY: &str = "purser.dev/instance-family";

fn strings(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| Value::String(v.to_string())).collect()
}

fn requirement(key: &str, op: &str, values: &[&str]) -> Value {
    if values.is_empty() {
        json!({"key": key, "operator": op})
    } else {
        json!({"key": key, "operator": op, "values": strings(values)})
    }
}

fn taint_json(key: &str, value: &str, effect: &str) -> Value {
    if value.is_empty() {
        json!({"key": key, "effect": effect})
    } else {
        json!({"key": key, "value": value, "effect": effect})
    }
}

fn resource_map(pairs: &[(String, String)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    Value::Object(m)
}

fn set_resource(list: &mut Vec<(String, String)>, name: &str, value: &str) {
    list.retain(|(k, _)| k != name);
    list.push((name.to_string(), value.to_string()));
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

/// A pod (or a set of replicas) under construction.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
    requests: Vec<(String, String)>,
    init_requests: Vec<Vec<(String, String)>>,
    overhead: Vec<(String, String)>,
    node_selector: BTreeMap<String, String>,
    affinity_terms: Vec<Vec<Value>>,
    tolerations: Vec<Value>,
    host_ports: Vec<(i64, String)>,
    spread: Vec<Value>,
    pod_affinity: Vec<Value>,
    pod_anti_affinity: Vec<Value>,
    priority: Option<i32>,
    node_name: Option<String>,
    created: Option<String>,
}

/// A pending pod in namespace `default` labelled `app=<name>`, requesting nothing yet.
pub fn pod(name: &str) -> PodBuilder {
    PodBuilder {
        name: name.to_string(),
        namespace: "default".into(),
        labels: BTreeMap::from([("app".to_string(), name.to_string())]),
        requests: vec![],
        init_requests: vec![],
        overhead: vec![],
        node_selector: BTreeMap::new(),
        affinity_terms: vec![],
        tolerations: vec![],
        host_ports: vec![],
        spread: vec![],
        pod_affinity: vec![],
        pod_anti_affinity: vec![],
        priority: None,
        node_name: None,
        created: None,
    }
}

impl PodBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespace = ns.to_string();
        self
    }
    /// Replace the `app` label (the label every self-selector below uses).
    pub fn app(mut self, app: &str) -> Self {
        self.labels.insert("app".into(), app.to_string());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }
    pub fn cpu(self, q: &str) -> Self {
        self.request("cpu", q)
    }
    pub fn memory(self, q: &str) -> Self {
        self.request("memory", q)
    }
    pub fn gpu(self, n: u32) -> Self {
        self.request("nvidia.com/gpu", &n.to_string())
    }
    pub fn request(mut self, name: &str, q: &str) -> Self {
        set_resource(&mut self.requests, name, q);
        self
    }
    /// An init container with these requests (`[(resource, quantity)]`).
    pub fn init_container(mut self, requests: &[(&str, &str)]) -> Self {
        self.init_requests
            .push(requests.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
        self
    }
    /// `spec.overhead` (RuntimeClass overhead).
    pub fn overhead(mut self, name: &str, q: &str) -> Self {
        set_resource(&mut self.overhead, name, q);
        self
    }
    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.node_selector.insert(key.to_string(), value.to_string());
        self
    }
    /// Add a requirement to the first required node-affinity term (creating it).
    pub fn require(mut self, key: &str, op: &str, values: &[&str]) -> Self {
        if self.affinity_terms.is_empty() {
            self.affinity_terms.push(vec![]);
        }
        self.affinity_terms[0].push(requirement(key, op, values));
        self
    }
    /// Add a whole required node-affinity term (terms are ORed).
    pub fn affinity_term(mut self, reqs: &[(&str, &str, &[&str])]) -> Self {
        self.affinity_terms
            .push(reqs.iter().map(|(k, o, v)| requirement(k, o, v)).collect());
        self
    }
    /// Tolerate `key=value:effect` (operator Equal).
    pub fn toleration(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.tolerations
            .push(json!({"key": key, "operator": "Equal", "value": value, "effect": effect}));
        self
    }
    /// Tolerate every taint with `key` (operator Exists, any effect).
    pub fn tolerate_key(mut self, key: &str) -> Self {
        self.tolerations.push(json!({"key": key, "operator": "Exists"}));
        self
    }
    pub fn host_port(mut self, port: i64) -> Self {
        self.host_ports.push((port, "TCP".into()));
        self
    }
    pub fn host_port_proto(mut self, port: i64, protocol: &str) -> Self {
        self.host_ports.push((port, protocol.to_string()));
        self
    }
    fn app_selector(&self) -> Value {
        json!({"matchLabels": {"app": self.labels.get("app").cloned().unwrap_or_default()}})
    }
    /// Hard topology spread over zones, counting pods with the same `app`.
    pub fn zone_spread(self, max_skew: i32) -> Self {
        self.spread_on(ZONE_KEY, max_skew)
    }
    /// Hard topology spread over hostnames, counting pods with the same `app`.
    pub fn hostname_spread(self, max_skew: i32) -> Self {
        self.spread_on(HOSTNAME_KEY, max_skew)
    }
    pub fn spread_on(mut self, key: &str, max_skew: i32) -> Self {
        let sel = self.app_selector();
        self.spread.push(json!({"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": "DoNotSchedule", "labelSelector": sel}));
        self
    }
    /// Required pod anti-affinity to pods with the same `app` on `key`.
    pub fn anti_affinity_self(mut self, key: &str) -> Self {
        let sel = self.app_selector();
        self.pod_anti_affinity
            .push(json!({"labelSelector": sel, "topologyKey": key}));
        self
    }
    /// Required pod anti-affinity to pods labelled `app=<app>` on `key`.
    pub fn anti_affinity_to(mut self, app: &str, key: &str) -> Self {
        self.pod_anti_affinity
            .push(json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}));
        self
    }
    /// Required pod affinity to pods with the same `app` on `key`.
    pub fn affinity_self(mut self, key: &str) -> Self {
        let sel = self.app_selector();
        self.pod_affinity
            .push(json!({"labelSelector": sel, "topologyKey": key}));
        self
    }
    /// Required pod affinity to pods labelled `app=<app>` on `key`.
    pub fn affinity_to(mut self, app: &str, key: &str) -> Self {
        self.pod_affinity
            .push(json!({"labelSelector": {"matchLabels": {"app": app}}, "topologyKey": key}));
        self
    }
    /// `spec.priority` (what the PriorityClass admission plugin writes).
    pub fn priority(mut self, p: i32) -> Self {
        self.priority = Some(p);
        self
    }
    /// Bind the pod to a node (a running pod).
    pub fn on_node(mut self, node: &str) -> Self {
        self.node_name = Some(node.to_string());
        self
    }
    /// Creation timestamp, RFC 3339.
    pub fn created(mut self, t: &str) -> Self {
        self.created = Some(t.to_string());
        self
    }
    /// The same pod under another name (labels unchanged).
    pub fn named(&self, name: &str) -> Self {
        let mut p = self.clone();
        p.name = name.to_string();
        p
    }
    /// `n` replicas called `<name>-0` … `<name>-<n-1>`.
    pub fn replicas(&self, n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| self.named(&format!("{}-{i}", self.name)).build())
            .collect()
    }
    /// The pod's `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    pub fn build(&self) -> Value {
        let mut container = json!({"name": "main", "image": "registry.example/app:1"});
        if !self.requests.is_empty() {
            container["resources"] = json!({"requests": resource_map(&self.requests)});
        }
        if !self.host_ports.is_empty() {
            container["ports"] = Value::Array(
                self.host_ports
                    .iter()
                    .map(|(p, proto)| json!({"containerPort": p, "hostPort": p, "protocol": proto}))
                    .collect(),
            );
        }
        let mut spec = json!({"containers": [container]});
        if !self.init_requests.is_empty() {
            spec["initContainers"] = Value::Array(
                self.init_requests
                    .iter()
                    .enumerate()
                    .map(|(i, r)| json!({"name": format!("init-{i}"), "image": "registry.example/init:1", "resources": {"requests": resource_map(r)}}))
                    .collect(),
            );
        }
        if !self.overhead.is_empty() {
            spec["overhead"] = resource_map(&self.overhead);
        }
        if !self.node_selector.is_empty() {
            spec["nodeSelector"] = json!(self.node_selector);
        }
        if !self.tolerations.is_empty() {
            spec["tolerations"] = Value::Array(self.tolerations.clone());
        }
        if !self.spread.is_empty() {
            spec["topologySpreadConstraints"] = Value::Array(self.spread.clone());
        }
        let mut affinity = Map::new();
        if !self.affinity_terms.is_empty() {
            let terms: Vec<Value> = self
                .affinity_terms
                .iter()
                .map(|t| json!({"matchExpressions": t}))
                .collect();
            affinity.insert(
                "nodeAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}),
            );
        }
        if !self.pod_affinity.is_empty() {
            affinity.insert(
                "podAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": self.pod_affinity}),
            );
        }
        if !self.pod_anti_affinity.is_empty() {
            affinity.insert(
                "podAntiAffinity".into(),
                json!({"requiredDuringSchedulingIgnoredDuringExecution": self.pod_anti_affinity}),
            );
        }
        if !affinity.is_empty() {
            spec["affinity"] = Value::Object(affinity);
        }
        if let Some(p) = self.priority {
            spec["priority"] = json!(p);
        }
        if let Some(n) = &self.node_name {
            spec["nodeName"] = json!(n);
        }
        let mut metadata = json!({"name": self.name, "namespace": self.namespace, "labels": self.labels});
        if let Some(t) = &self.created {
            metadata["creationTimestamp"] = json!(t);
        }
        let phase = if self.node_name.is_some() { "Running" } else { "Pending" };
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec, "status": {"phase": phase}})
    }
}

// ---------------------------------------------------------------------------------------------
// NodePools
// ---------------------------------------------------------------------------------------------

/// A NodePool under construction.
#[derive(Debug, Clone)]
pub struct NodePoolBuilder {
    name: String,
    api_version: String,
    weight: Option<i32>,
    labels: BTreeMap<String, String>,
    requirements: Vec<Value>,
    taints: Vec<Value>,
    startup_taints: Vec<Value>,
    limits: BTreeMap<String, String>,
    max_hourly_cost: Option<f64>,
    min_on_demand_percent: Option<f64>,
}

/// A `purser.dev/v1` NodePool with no requirements, taints or limits.
pub fn nodepool(name: &str) -> NodePoolBuilder {
    NodePoolBuilder {
        name: name.to_string(),
        api_version: "purser.dev/v1".into(),
        weight: None,
        labels: BTreeMap::new(),
        requirements: vec![],
        taints: vec![],
        startup_taints: vec![],
        limits: BTreeMap::new(),
        max_hourly_cost: None,
        min_on_demand_percent: None,
    }
}

impl NodePoolBuilder {
    /// Write it as a `karpenter.sh/v1` NodePool.
    pub fn karpenter(mut self) -> Self {
        self.api_version = "karpenter.sh/v1".into();
        self
    }
    pub fn requirement(mut self, key: &str, op: &str, values: &[&str]) -> Self {
        self.requirements.push(requirement(key, op, values));
        self
    }
    /// Only on-demand capacity.
    pub fn on_demand(self) -> Self {
        self.requirement(CAPACITY_TYPE_KEY, "In", &["on-demand"])
    }
    /// Spot and on-demand capacity.
    pub fn spot_and_on_demand(self) -> Self {
        self.requirement(CAPACITY_TYPE_KEY, "In", &["spot", "on-demand"])
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(taint_json(key, value, effect));
        self
    }
    pub fn startup_taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.startup_taints.push(taint_json(key, value, effect));
        self
    }
    pub fn limit(mut self, resource: &str, q: &str) -> Self {
        self.limits.insert(resource.to_string(), q.to_string());
        self
    }
    pub fn weight(mut self, w: i32) -> Self {
        self.weight = Some(w);
        self
    }
    /// `spec.budget.maxHourlyCost`.
    pub fn max_hourly_cost(mut self, usd: f64) -> Self {
        self.max_hourly_cost = Some(usd);
        self
    }
    /// `spec.capacityMix.minOnDemandPercent`.
    pub fn min_on_demand_percent(mut self, p: f64) -> Self {
        self.min_on_demand_percent = Some(p);
        self
    }

    pub fn build(&self) -> Value {
        let mut template_spec = json!({});
        if !self.requirements.is_empty() {
            template_spec["requirements"] = Value::Array(self.requirements.clone());
        }
        if !self.taints.is_empty() {
            template_spec["taints"] = Value::Array(self.taints.clone());
        }
        if !self.startup_taints.is_empty() {
            template_spec["startupTaints"] = Value::Array(self.startup_taints.clone());
        }
        let mut template = json!({"spec": template_spec});
        if !self.labels.is_empty() {
            template["metadata"] = json!({"labels": self.labels});
        }
        let mut spec = json!({"template": template});
        if let Some(w) = self.weight {
            spec["weight"] = json!(w);
        }
        if !self.limits.is_empty() {
            spec["limits"] = json!(self.limits);
        }
        if let Some(c) = self.max_hourly_cost {
            spec["budget"] = json!({"maxHourlyCost": c});
        }
        if let Some(p) = self.min_on_demand_percent {
            spec["capacityMix"] = json!({"minOnDemandPercent": p});
        }
        json!({"apiVersion": self.api_version, "kind": "NodePool", "metadata": {"name": self.name}, "spec": spec})
    }
}

// ---------------------------------------------------------------------------------------------
// Nodes, NodeClaims, DaemonSets, CostBudgets
// ---------------------------------------------------------------------------------------------

/// A registered Node under construction.
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    labels: BTreeMap<String, String>,
    taints: Vec<Value>,
    cordoned: bool,
    allocatable: Vec<(String, String)>,
}

/// A Node of `instance_type` in `zone`, on-demand, owned by no pool; allocatable from the catalog.
pub fn node(name: &str, instance_type: &str, zone: &str) -> NodeBuilder {
    NodeBuilder {
        name: name.to_string(),
        labels: BTreeMap::from([
            (INSTANCE_TYPE_KEY.to_string(), instance_type.to_string()),
            (ZONE_KEY.to_string(), zone.to_string()),
            (HOSTNAME_KEY.to_string(), name.to_string()),
            (CAPACITY_TYPE_KEY.to_string(), "on-demand".to_string()),
        ]),
        taints: vec![],
        cordoned: false,
        allocatable: vec![],
    }
}

impl NodeBuilder {
    pub fn pool(mut self, pool: &str) -> Self {
        self.labels.insert("karpenter.sh/nodepool".into(), pool.to_string());
        self
    }
    pub fn spot(mut self) -> Self {
        self.labels.insert(CAPACITY_TYPE_KEY.into(), "spot".into());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_string(), value.to_string());
        self
    }
    pub fn taint(mut self, key: &str, value: &str, effect: &str) -> Self {
        self.taints.push(taint_json(key, value, effect));
        self
    }
    pub fn cordoned(mut self) -> Self {
        self.cordoned = true;
        self
    }
    /// Explicit `status.allocatable` (otherwise the catalog's).
    pub fn allocatable(mut self, name: &str, q: &str) -> Self {
        set_resource(&mut self.allocatable, name, q);
        self
    }
    pub fn build(&self) -> Value {
        let mut spec = json!({"providerID": format!("test:///{}", self.name)});
        if !self.taints.is_empty() {
            spec["taints"] = Value::Array(self.taints.clone());
        }
        if self.cordoned {
            spec["unschedulable"] = json!(true);
        }
        let mut v = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": self.labels}, "spec": spec});
        if !self.allocatable.is_empty() {
            v["status"] = json!({"allocatable": resource_map(&self.allocatable)});
        }
        v
    }
}

/// An in-flight NodeClaim (no Node registered yet) of a pool.
pub fn nodeclaim(name: &str, pool: &str, instance_type: &str, zone: &str, capacity_type: &str) -> Value {
    json!({
        "apiVersion": "purser.dev/v1",
        "kind": "NodeClaim",
        "metadata": {"name": name, "labels": {"karpenter.sh/nodepool": pool}},
        "spec": {"requirements": [
            requirement(INSTANCE_TYPE_KEY, "In", &[instance_type]),
            requirement(ZONE_KEY, "In", &[zone]),
            requirement(CAPACITY_TYPE_KEY, "In", &[capacity_type]),
        ]}
    })
}

/// A DaemonSet under construction.
#[derive(Debug, Clone)]
pub struct DaemonSetBuilder {
    name: String,
    requests: Vec<(String, String)>,
    tolerations: Vec<Value>,
    node_selector: BTreeMap<String, String>,
}

/// A DaemonSet in `kube-system`.
pub fn daemonset(name: &str) -> DaemonSetBuilder {
    DaemonSetBuilder {
        name: name.to_string(),
        requests: vec![],
        tolerations: vec![],
        node_selector: BTreeMap::new(),
    }
}

impl DaemonSetBuilder {
    pub fn cpu(mut self, q: &str) -> Self {
        set_resource(&mut self.requests, "cpu", q);
        self
    }
    pub fn memory(mut self, q: &str) -> Self {
        set_resource(&mut self.requests, "memory", q);
        self
    }
    pub fn tolerate_key(mut self, key: &str) -> Self {
        self.tolerations.push(json!({"key": key, "operator": "Exists"}));
        self
    }
    pub fn tolerate_all(mut self) -> Self {
        self.tolerations.push(json!({"operator": "Exists"}));
        self
    }
    pub fn node_selector(mut self, key: &str, value: &str) -> Self {
        self.node_selector.insert(key.to_string(), value.to_string());
        self
    }
    pub fn build(&self) -> Value {
        let mut pod_spec = json!({"containers": [{"name": "agent", "image": "registry.example/agent:1", "resources": {"requests": resource_map(&self.requests)}}]});
        if !self.tolerations.is_empty() {
            pod_spec["tolerations"] = Value::Array(self.tolerations.clone());
        }
        if !self.node_selector.is_empty() {
            pod_spec["nodeSelector"] = json!(self.node_selector);
        }
        json!({
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": self.name, "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"app": self.name}},
                "template": {"metadata": {"labels": {"app": self.name}}, "spec": pod_spec}
            }
        })
    }
}

/// A CostBudget under construction.
#[derive(Debug, Clone)]
pub struct CostBudgetBuilder {
    name: String,
    max: f64,
    namespaces: Vec<String>,
    match_labels: BTreeMap<String, String>,
}

/// A CostBudget capping the allocated hourly cost of the pods it selects (all pods by default).
pub fn cost_budget(name: &str, max_hourly_cost: f64) -> CostBudgetBuilder {
    CostBudgetBuilder {
        name: name.to_string(),
        max: max_hourly_cost,
        namespaces: vec![],
        match_labels: BTreeMap::new(),
    }
}

impl CostBudgetBuilder {
    pub fn namespace(mut self, ns: &str) -> Self {
        self.namespaces.push(ns.to_string());
        self
    }
    pub fn match_label(mut self, key: &str, value: &str) -> Self {
        self.match_labels.insert(key.to_string(), value.to_string());
        self
    }
    pub fn build(&self) -> Value {
        let mut selector = json!({});
        if !self.namespaces.is_empty() {
            selector["namespaces"] = json!(self.namespaces);
        }
        if !self.match_labels.is_empty() {
            selector["podSelector"] = json!({"matchLabels": self.match_labels});
        }
        json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget", "metadata": {"name": self.name}, "spec": {"maxHourlyCost": self.max, "selector": selector}})
    }
}

// ---------------------------------------------------------------------------------------------
// Catalogs
// ---------------------------------------------------------------------------------------------

/// An instance type under construction (allocatable = capacity: the catalog reserves nothing).
#[derive(Debug, Clone)]
pub struct InstanceBuilder {
    spec: InstanceTypeSpec,
}

/// An instance type with `cpu` and `memory`, 110 pods, no offerings yet.
pub fn instance(name: &str, cpu: &str, memory: &str) -> InstanceBuilder {
    InstanceBuilder {
        spec: InstanceTypeSpec {
            name: name.to_string(),
            capacity: BTreeMap::from([
                ("cpu".to_string(), cpu.to_string()),
                ("memory".to_string(), memory.to_string()),
                ("pods".to_string(), "110".to_string()),
            ]),
            allocatable: None,
            labels: BTreeMap::new(),
            offerings: vec![],
        },
    }
}

impl InstanceBuilder {
    pub fn resource(mut self, name: &str, q: &str) -> Self {
        self.spec.capacity.insert(name.to_string(), q.to_string());
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.spec.labels.insert(key.to_string(), value.to_string());
        self
    }
    fn offer(mut self, zone: &str, capacity_type: &str, price: f64, rate: Option<f64>) -> Self {
        self.spec.offerings.push(OfferingSpec {
            zone: zone.to_string(),
            capacity_type: capacity_type.to_string(),
            price: Some(price),
            price_estimated: false,
            interruption_rate: rate,
        });
        self
    }
    pub fn on_demand_in(self, zone: &str, price: f64) -> Self {
        self.offer(zone, "on-demand", price, None)
    }
    pub fn spot_in(self, zone: &str, price: f64, interruption_rate: Option<f64>) -> Self {
        self.offer(zone, "spot", price, interruption_rate)
    }
    /// On-demand at `od` and spot at `spot` in every zone of [`ZONES`].
    pub fn everywhere(mut self, od: f64, spot: Option<f64>) -> Self {
        for z in ZONES {
            self = self.on_demand_in(z, od);
            if let Some(s) = spot {
                self = self.spot_in(z, s, None);
            }
        }
        self
    }
}

/// A catalog under construction.
#[derive(Debug, Clone)]
pub struct CatalogBuilder {
    file: CatalogFile,
}

/// An empty catalog in [`REGION`] with allocatable equal to capacity.
pub fn catalog() -> CatalogBuilder {
    CatalogBuilder {
        file: CatalogFile {
            region: REGION.to_string(),
            source: "tests".into(),
            reservation: Reservation::None,
            instance_types: vec![],
        },
    }
}

impl CatalogBuilder {
    pub fn with(mut self, it: InstanceBuilder) -> Self {
        self.file.instance_types.push(it.spec);
        self
    }
    pub fn spec(self) -> CatalogFile {
        self.file
    }
    pub fn build(self) -> Catalog {
        Catalog::from_spec(self.file).expect("test catalog is valid")
    }
}

/// An instance type row: name, cpu, memory, extended resource and count, on-demand price.
pub type TypeRow = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    f64,
);

/// The catalog most scenarios use: prices are linear in size except `m6.4xlarge` (a slight
/// volume discount), spot is 40% of on-demand, three zones with equal prices.
///
/// | type        | cpu | memory | extra                    | on-demand | spot  |
/// |-------------|-----|--------|--------------------------|-----------|-------|
/// | c6.large    | 2   | 4Gi    |                          | 0.080     | 0.032 |
/// | m6.large    | 2   | 8Gi    |                          | 0.100     | 0.040 |
/// | m6.xlarge   | 4   | 16Gi   |                          | 0.200     | 0.080 |
/// | r6.xlarge   | 4   | 32Gi   |                          | 0.260     | 0.104 |
/// | m6.2xlarge  | 8   | 32Gi   |                          | 0.400     | 0.160 |
/// | m6.4xlarge  | 16  | 64Gi   |                          | 0.760     | 0.304 |
/// | g5.xlarge   | 4   | 16Gi   | nvidia.com/gpu 1         | 1.000     | 0.400 |
/// | g5.12xlarge | 48  | 192Gi  | nvidia.com/gpu 4         | 5.600     | 2.240 |
/// | inf2.xlarge | 4   | 16Gi   | aws.amazon.com/neuron 1  | 0.760     | 0.304 |
pub fn standard_catalog() -> Catalog {
    let types: [TypeRow; 9] = [
        ("c6.large", "2", "4Gi", None, 0.08),
        ("m6.large", "2", "8Gi", None, 0.10),
        ("m6.xlarge", "4", "16Gi", None, 0.20),
        ("r6.xlarge", "4", "32Gi", None, 0.26),
        ("m6.2xlarge", "8", "32Gi", None, 0.40),
        ("m6.4xlarge", "16", "64Gi", None, 0.76),
        ("g5.xlarge", "4", "16Gi", Some(("nvidia.com/gpu", "1")), 1.00),
        ("g5.12xlarge", "48", "192Gi", Some(("nvidia.com/gpu", "4")), 5.60),
        ("inf2.xlarge", "4", "16Gi", Some(("aws.amazon.com/neuron", "1")), 0.76),
    ];
    let mut c = catalog();
    for (name, cpu, mem, extra, od) in types {
        let mut it = instance(name, cpu, mem).everywhere(od, Some(round6(od * 0.4)));
        if let Some((r, q)) = extra {
            it = it.resource(r, q);
        }
        c = c.with(it);
    }
    c.build()
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

/// Options for tests: a 1 s limit.
pub fn options() -> PlanOptions {
    PlanOptions {
        time_limit: Duration::from_secs(1),
        ..PlanOptions::default()
    }
}

/// Build the snapshot (panics on a loader error: fixtures must be valid).
pub fn load(objects: &[Value], catalog: &Catalog) -> Snapshot {
    match snapshot_from_objects(objects, catalog) {
        Ok(l) => l.snapshot,
        Err(e) => panic!("fixture does not load: {e}"),
    }
}

/// Plan with one strategy and check the plan.
pub fn plan_one(snapshot: &Snapshot, catalog: &Catalog, base: &PlanOptions, strategy: Strategy) -> Plan {
    let options = PlanOptions {
        strategy,
        ..base.clone()
    };
    let plan = solver::plan(snapshot, catalog, &options);
    check(snapshot, catalog, &plan);
    plan
}

/// Everything wrong with a plan: the validator's findings, pending pods missing or repeated,
/// pods that are not pending, a lower bound above the cost.
pub fn problems(snapshot: &Snapshot, catalog: &Catalog, plan: &Plan) -> Vec<String> {
    let mut out = validate::violations(snapshot, catalog, plan);
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for key in plan
        .node_claims
        .iter()
        .flat_map(|c| &c.pods)
        .chain(plan.existing_nodes.iter().flat_map(|e| &e.pods))
        .chain(plan.unschedulable.iter().map(|u| &u.pod))
    {
        *seen.entry(key.as_str()).or_default() += 1;
    }
    let pending: BTreeSet<&str> = snapshot.pending().map(|(_, p)| p.key.as_str()).collect();
    for p in &pending {
        let n = seen.get(p).copied().unwrap_or(0);
        if n != 1 {
            out.push(format!("pending pod {p} appears {n} times"));
        }
    }
    for p in seen.keys().filter(|p| !pending.contains(*p)) {
        out.push(format!("{p} is in the plan but is not a pending pod"));
    }
    if plan.lower_bound > plan.hourly_cost + 1e-9 {
        out.push(format!(
            "lower bound {} above cost {}",
            plan.lower_bound, plan.hourly_cost
        ));
    }
    out
}

/// Panic unless the plan has no [`problems`].
pub fn check(snapshot: &Snapshot, catalog: &Catalog, plan: &Plan) {
    let v = problems(snapshot, catalog, plan);
    assert!(
        v.is_empty(),
        "{} plan has violations: {v:#?}\nplan: {}",
        plan.solver.strategy,
        to_json(plan)
    );
}

/// Plan with one strategy, without checking.
pub fn plan_unchecked(snapshot: &Snapshot, catalog: &Catalog, base: &PlanOptions, strategy: Strategy) -> Plan {
    let options = PlanOptions {
        strategy,
        ..base.clone()
    };
    solver::plan(snapshot, catalog, &options)
}

/// Plan with the ILP and with FFD (1 s limit), checking both.
pub fn plan_both(objects: &[Value], catalog: &Catalog) -> (Plan, Plan) {
    plan_both_with(objects, catalog, &options())
}

/// [`plan_both`] with options.
pub fn plan_both_with(objects: &[Value], catalog: &Catalog, base: &PlanOptions) -> (Plan, Plan) {
    let snapshot = load(objects, catalog);
    let ilp = plan_one(&snapshot, catalog, base, Strategy::Ilp);
    let ffd = plan_one(&snapshot, catalog, base, Strategy::Ffd);
    (ilp, ffd)
}

/// The plan as pretty JSON (for failure messages).
pub fn to_json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).unwrap()
}

/// Queries on a plan.
pub trait PlanExt {
    /// Pods placed on new or existing nodes.
    fn placed(&self) -> BTreeSet<String>;
    /// Pods placed on new nodes.
    fn placed_new(&self) -> BTreeSet<String>;
    /// The reason a pod is unschedulable, when it is.
    fn reason(&self, pod: &str) -> Option<&str>;
    /// The new node holding `pod`.
    fn claim(&self, pod: &str) -> Option<&PlannedNode>;
    /// The existing node holding `pod`.
    fn existing(&self, pod: &str) -> Option<&str>;
    /// Instance types of the new nodes, sorted.
    fn types(&self) -> Vec<&str>;
    /// Number of placed pods per zone of the new nodes whose pods have the prefix.
    fn zone_counts(&self, prefix: &str) -> BTreeMap<String, usize>;
    /// The plan as JSON.
    fn json(&self) -> String;
}

impl PlanExt for Plan {
    fn placed(&self) -> BTreeSet<String> {
        self.node_claims
            .iter()
            .flat_map(|c| c.pods.iter())
            .chain(self.existing_nodes.iter().flat_map(|e| e.pods.iter()))
            .cloned()
            .collect()
    }
    fn placed_new(&self) -> BTreeSet<String> {
        self.node_claims.iter().flat_map(|c| c.pods.iter()).cloned().collect()
    }
    fn reason(&self, pod: &str) -> Option<&str> {
        self.unschedulable
            .iter()
            .find(|u| u.pod == pod)
            .map(|u| u.reason.as_str())
    }
    fn claim(&self, pod: &str) -> Option<&PlannedNode> {
        self.node_claims.iter().find(|c| c.pods.iter().any(|p| p == pod))
    }
    fn existing(&self, pod: &str) -> Option<&str> {
        self.existing_nodes
            .iter()
            .find(|e| e.pods.iter().any(|p| p == pod))
            .map(|e| e.node.as_str())
    }
    fn types(&self) -> Vec<&str> {
        let mut t: Vec<&str> = self.node_claims.iter().map(|c| c.instance_type.as_str()).collect();
        t.sort();
        t
    }
    fn zone_counts(&self, prefix: &str) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in &self.node_claims {
            let n = c.pods.iter().filter(|p| p.starts_with(prefix)).count();
            if n > 0 {
                *out.entry(c.zone.clone()).or_default() += n;
            }
        }
        out
    }
    fn json(&self) -> String {
        to_json(self)
    }
}

/// Approximate float equality for prices.
pub fn approx(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}
