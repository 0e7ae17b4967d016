//! Pods as the engine sees them: effective requests and scheduling constraints, read from
//! real `v1.Pod` objects.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde::{Deserialize, Serialize};

use super::disruption::{DO_NOT_DISRUPT, DoNotDisrupt, KARPENTER_DO_NOT_DISRUPT, MIRROR_POD, parse_do_not_disrupt};
use super::error::ModelError;
use super::labels::{HOSTNAME, canonical_key};
use super::quantity::Quantity;
use super::requirements::{NodeAffinity, Operator, Requirement, Requirements};
use super::resources::{PODS, Resources};
use super::taints::{Effect, Toleration};

/// A label selector over pod labels (matchLabels AND matchExpressions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LabelSelector {
    /// Requirements on pod labels, all of which must hold.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Does a pod with `labels` match?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// A selector matching pods whose labels include every pair of `labels`.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Self {
        LabelSelector {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Operator::In,
                    values: vec![v.clone()],
                })
                .collect(),
        }
    }

    /// The label keys this selector reads.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.key.as_str())
    }
}

/// A required (or preferred) pod affinity or anti-affinity term.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PodAffinityTerm {
    /// Which pods the term is about.
    pub selector: LabelSelector,
    /// Namespaces the selector applies in; empty means all namespaces.
    pub namespaces: Vec<String>,
    /// The topology key (`kubernetes.io/hostname`, `topology.kubernetes.io/zone`, ...).
    pub topology_key: String,
}

impl PodAffinityTerm {
    /// Does the term select a pod in `namespace` with `labels`?
    pub fn selects(&self, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
        (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == namespace)) && self.selector.matches(labels)
    }
}

/// A topology spread constraint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SpreadConstraint {
    /// Largest allowed difference between the most and least loaded domains.
    pub max_skew: u32,
    /// Domain key (zone, hostname, capacity type).
    pub topology_key: String,
    /// True for `DoNotSchedule`, false for `ScheduleAnyway`.
    pub hard: bool,
    /// Pods counted in each domain.
    pub selector: LabelSelector,
    /// Minimum number of eligible domains before the global minimum counts.
    pub min_domains: Option<u32>,
}

/// A host port a container binds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HostPort {
    /// Protocol (`TCP`, `UDP`, `SCTP`).
    pub protocol: String,
    /// Host IP (`0.0.0.0` when unset).
    pub ip: String,
    /// Port number.
    pub port: i32,
}

impl HostPort {
    /// Do two host ports collide on one node?
    pub fn conflicts(&self, other: &HostPort) -> bool {
        let wildcard = |ip: &str| ip == "0.0.0.0" || ip.is_empty();
        self.port == other.port
            && self.protocol == other.protocol
            && (self.ip == other.ip || wildcard(&self.ip) || wildcard(&other.ip))
    }
}

/// Everything the engine needs to know about one pod.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodInfo {
    /// `namespace/name`.
    pub key: String,
    /// Namespace.
    pub namespace: String,
    /// Pod labels.
    pub labels: BTreeMap<String, String>,
    /// Effective requests, including `pods: 1`.
    pub requests: Resources,
    /// nodeSelector as requirements.
    pub node_selector: Requirements,
    /// Required node affinity (OR of terms).
    pub node_affinity: NodeAffinity,
    /// Preferred node affinity terms with their weights.
    pub preferred_node_affinity: Vec<(i32, Requirements)>,
    /// Tolerations.
    pub tolerations: Vec<Toleration>,
    /// Host ports.
    pub host_ports: Vec<HostPort>,
    /// Topology spread constraints.
    pub spread: Vec<SpreadConstraint>,
    /// Required pod affinity terms.
    pub pod_affinity: Vec<PodAffinityTerm>,
    /// Required pod anti-affinity terms.
    pub pod_anti_affinity: Vec<PodAffinityTerm>,
    /// Preferred pod anti-affinity terms with their weights.
    pub preferred_pod_anti_affinity: Vec<(i32, PodAffinityTerm)>,
    /// Priority (from `spec.priority`).
    pub priority: i32,
    /// Creation time in seconds since the epoch (0 when unknown).
    pub created: i64,
    /// The node it is bound to, if any.
    pub node_name: Option<String>,
    /// The kind of its controlling owner (`ReplicaSet`, `DaemonSet`, `Job`, ...).
    pub owner_kind: Option<String>,
    /// `status.startTime`, seconds since the epoch.
    #[serde(default)]
    pub started: Option<i64>,
    /// The `purser.dev/do-not-disrupt` (or `karpenter.sh/do-not-disrupt`) annotation.
    #[serde(default)]
    pub do_not_disrupt: DoNotDisrupt,
    /// True for a mirror (static) pod.
    #[serde(default)]
    pub mirror: bool,
}

impl PodInfo {
    /// True when the pod is pending (not bound to a node).
    pub fn is_pending(&self) -> bool {
        self.node_name.is_none()
    }

    /// True when the pod belongs to a DaemonSet.
    pub fn is_daemon(&self) -> bool {
        self.owner_kind.as_deref() == Some("DaemonSet")
    }

    /// Does a node with these labels satisfy nodeSelector and required node affinity?
    pub fn accepts_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.node_selector.matches(labels) && self.node_affinity.matches(labels)
    }

    /// Sum of preferred node affinity weights a node with `labels` satisfies.
    pub fn preference_score(&self, labels: &BTreeMap<String, String>) -> i64 {
        self.preferred_node_affinity
            .iter()
            .filter(|(_, t)| t.matches(labels))
            .map(|(w, _)| *w as i64)
            .sum()
    }
}

/// Read a `v1.Pod`.
pub fn pod_from_k8s(pod: &core::Pod) -> Result<PodInfo, ModelError> {
    let namespace = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
    let name = pod.metadata.name.clone().unwrap_or_default();
    let object = format!("Pod {namespace}/{name}");
    if name.is_empty() {
        return Err(ModelError::new("Pod (unnamed)", "metadata.name", "a pod needs a name"));
    }
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| ModelError::new(&object, "spec", "missing"))?;
    let requests = effective_requests(&object, spec)?;
    let (node_affinity, preferred_node_affinity) = node_affinity(&object, spec)?;
    let (pod_affinity, pod_anti_affinity, preferred_pod_anti_affinity) = pod_affinities(&object, &namespace, spec)?;
    Ok(PodInfo {
        key: format!("{namespace}/{name}"),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        requests,
        node_selector: Requirements::from_selector(&spec.node_selector.clone().unwrap_or_default()),
        node_affinity,
        preferred_node_affinity,
        tolerations: tolerations(&object, spec.tolerations.as_deref().unwrap_or(&[]))?,
        host_ports: host_ports(spec),
        spread: spread_constraints(&object, pod, spec)?,
        pod_affinity,
        pod_anti_affinity,
        preferred_pod_anti_affinity,
        priority: spec.priority.unwrap_or(0),
        created: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(0),
        node_name: spec.node_name.clone().filter(|n| !n.is_empty()),
        owner_kind: pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.kind.clone()),
        started: pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map(|t| t.0.as_second()),
        do_not_disrupt: do_not_disrupt(&object, &pod.metadata)?,
        mirror: pod
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(MIRROR_POD)),
        namespace,
    })
}

/// The `do-not-disrupt` annotation (Purser's spelling wins over Karpenter's when both are set).
fn do_not_disrupt(object: &str, metadata: &meta::ObjectMeta) -> Result<DoNotDisrupt, ModelError> {
    let annotations = metadata.annotations.as_ref();
    let Some((key, text)) = [DO_NOT_DISRUPT, KARPENTER_DO_NOT_DISRUPT]
        .into_iter()
        .find_map(|k| annotations.and_then(|a| a.get(k)).map(|v| (k, v)))
    else {
        return Ok(DoNotDisrupt::No);
    };
    parse_do_not_disrupt(text).ok_or_else(|| {
        ModelError::new(
            object,
            &format!("metadata.annotations.{key}"),
            &format!("is {text:?}; expected \"true\", \"false\" or a duration such as 30m or 1h30m"),
        )
    })
}

fn container_requests(object: &str, field: &str, c: &core::Container) -> Result<Resources, ModelError> {
    let res = c.resources.as_ref();
    let mut out = Resources::new();
    let limits = res.and_then(|r| r.limits.as_ref());
    let requests = res.and_then(|r| r.requests.as_ref());
    // A resource with a limit but no request is requested at its limit, as the API server defaults it.
    for (source, map) in [("limits", limits), ("requests", requests)] {
        for (name, q) in map.into_iter().flatten() {
            let value = Quantity::parse(&q.0)
                .map_err(|e| ModelError::new(object, &format!("{field}.resources.{source}.{name}"), &e.to_string()))?;
            if value < Quantity::ZERO {
                return Err(ModelError::new(
                    object,
                    &format!("{field}.resources.{source}.{name}"),
                    "must not be negative",
                ));
            }
            out.set(name, value);
        }
    }
    Ok(out)
}

/// max(sum of containers and sidecars, each init container plus the sidecars started before it)
/// plus pod overhead, plus `pods: 1`.
pub fn effective_requests(object: &str, spec: &core::PodSpec) -> Result<Resources, ModelError> {
    let mut main = Resources::new();
    for (i, c) in spec.containers.iter().enumerate() {
        main.add(&container_requests(object, &format!("spec.containers[{i}]"), c)?);
    }
    let mut sidecars = Resources::new();
    let mut init_peak = Resources::new();
    for (i, c) in spec.init_containers.iter().flatten().enumerate() {
        let r = container_requests(object, &format!("spec.initContainers[{i}]"), c)?;
        if c.restart_policy.as_deref() == Some("Always") {
            sidecars.add(&r);
            init_peak = init_peak.max_each(&sidecars);
        } else {
            init_peak = init_peak.max_each(&r.plus(&sidecars));
        }
    }
    let mut total = main.plus(&sidecars).max_each(&init_peak);
    for (name, q) in spec.overhead.iter().flatten() {
        let value = Quantity::parse(&q.0)
            .map_err(|e| ModelError::new(object, &format!("spec.overhead.{name}"), &e.to_string()))?;
        total.set(name, total.get(name) + value);
    }
    total.set(PODS, Quantity::from_units(1));
    Ok(total)
}

fn parse_term(object: &str, field: &str, term: &core::NodeSelectorTerm) -> Result<Requirements, ModelError> {
    Requirements::from_term(term)
        .map_err(|(i, e)| ModelError::new(object, &format!("{field}.matchExpressions[{i}]"), &e.to_string()))
}

type NodeAffinities = (NodeAffinity, Vec<(i32, Requirements)>);

fn node_affinity(object: &str, spec: &core::PodSpec) -> Result<NodeAffinities, ModelError> {
    let Some(na) = spec.affinity.as_ref().and_then(|a| a.node_affinity.as_ref()) else {
        return Ok((NodeAffinity::default(), vec![]));
    };
    let mut required = NodeAffinity::default();
    if let Some(sel) = &na.required_during_scheduling_ignored_during_execution {
        for (i, term) in sel.node_selector_terms.iter().enumerate() {
            let field = format!(
                "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[{i}]"
            );
            required.terms.push(parse_term(object, &field, term)?);
        }
        if required.terms.is_empty() {
            // An empty list of terms matches no node.
            required.terms.push(Requirements(vec![Requirement {
                key: HOSTNAME.into(),
                op: Operator::In,
                values: vec![],
            }]));
        }
    }
    let mut preferred = vec![];
    for (i, p) in na
        .preferred_during_scheduling_ignored_during_execution
        .iter()
        .flatten()
        .enumerate()
    {
        let field =
            format!("spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].preference");
        preferred.push((p.weight, parse_term(object, &field, &p.preference)?));
    }
    Ok((required, preferred))
}

/// Convert a metav1 LabelSelector; a selector over pod labels keeps keys as written.
pub fn label_selector(object: &str, field: &str, sel: &meta::LabelSelector) -> Result<LabelSelector, ModelError> {
    let mut requirements: Vec<Requirement> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| Requirement {
            key: k.clone(),
            op: Operator::In,
            values: vec![v.clone()],
        })
        .collect();
    for (i, e) in sel.match_expressions.iter().flatten().enumerate() {
        let values = e.values.clone().unwrap_or_default();
        if !matches!(e.operator.as_str(), "In" | "NotIn" | "Exists" | "DoesNotExist") {
            return Err(ModelError::new(
                object,
                &format!("{field}.matchExpressions[{i}].operator"),
                &format!(
                    "unknown operator {:?} (expected In, NotIn, Exists or DoesNotExist)",
                    e.operator
                ),
            ));
        }
        let mut r = Requirement::new(&e.key, &e.operator, &values)
            .map_err(|err| ModelError::new(object, &format!("{field}.matchExpressions[{i}]"), &err.to_string()))?;
        r.key = e.key.clone();
        requirements.push(r);
    }
    requirements.sort();
    Ok(LabelSelector { requirements })
}

type PodAffinities = (Vec<PodAffinityTerm>, Vec<PodAffinityTerm>, Vec<(i32, PodAffinityTerm)>);

fn affinity_term(
    object: &str,
    field: &str,
    namespace: &str,
    t: &core::PodAffinityTerm,
) -> Result<PodAffinityTerm, ModelError> {
    let selector = match &t.label_selector {
        Some(s) => label_selector(object, &format!("{field}.labelSelector"), s)?,
        // A null selector matches no pods.
        None => LabelSelector {
            requirements: vec![Requirement {
                key: "purser.dev/never".into(),
                op: Operator::In,
                values: vec![],
            }],
        },
    };
    if t.topology_key.is_empty() {
        return Err(ModelError::new(
            object,
            &format!("{field}.topologyKey"),
            "must not be empty",
        ));
    }
    let all_namespaces = t.namespace_selector.as_ref().is_some_and(|s| {
        s.match_labels.as_ref().is_none_or(|m| m.is_empty())
            && s.match_expressions.as_ref().is_none_or(|m| m.is_empty())
    });
    let mut namespaces = t.namespaces.clone().unwrap_or_default();
    if namespaces.is_empty() && !all_namespaces {
        namespaces.push(namespace.to_string());
    }
    namespaces.sort();
    Ok(PodAffinityTerm {
        selector,
        namespaces,
        topology_key: canonical_key(&t.topology_key).to_string(),
    })
}

fn pod_affinities(object: &str, namespace: &str, spec: &core::PodSpec) -> Result<PodAffinities, ModelError> {
    let mut affinity = vec![];
    let mut anti = vec![];
    let mut preferred_anti = vec![];
    let Some(a) = spec.affinity.as_ref() else {
        return Ok((affinity, anti, preferred_anti));
    };
    let base = "spec.affinity";
    if let Some(pa) = &a.pod_affinity {
        for (i, t) in pa
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{base}.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[{i}]");
            affinity.push(affinity_term(object, &field, namespace, t)?);
        }
    }
    if let Some(pa) = &a.pod_anti_affinity {
        for (i, t) in pa
            .required_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{base}.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[{i}]");
            anti.push(affinity_term(object, &field, namespace, t)?);
        }
        for (i, w) in pa
            .preferred_during_scheduling_ignored_during_execution
            .iter()
            .flatten()
            .enumerate()
        {
            let field =
                format!("{base}.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].podAffinityTerm");
            preferred_anti.push((
                w.weight,
                affinity_term(object, &field, namespace, &w.pod_affinity_term)?,
            ));
        }
    }
    Ok((affinity, anti, preferred_anti))
}

/// Parse tolerations.
pub fn tolerations(object: &str, list: &[core::Toleration]) -> Result<Vec<Toleration>, ModelError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let exists = match t.operator.as_deref() {
                None | Some("Equal") => false,
                Some("Exists") => true,
                Some(other) => {
                    return Err(ModelError::new(
                        object,
                        &format!("spec.tolerations[{i}].operator"),
                        &format!("unknown operator {other:?} (expected Equal or Exists)"),
                    ));
                }
            };
            let effect = match t.effect.as_deref() {
                None | Some("") => None,
                Some(e) => Some(Effect::parse(e).ok_or_else(|| {
                    ModelError::new(
                        object,
                        &format!("spec.tolerations[{i}].effect"),
                        &format!("unknown effect {e:?} (expected NoSchedule, PreferNoSchedule or NoExecute)"),
                    )
                })?),
            };
            Ok(Toleration {
                key: t.key.clone().unwrap_or_default(),
                exists,
                value: t.value.clone().unwrap_or_default(),
                effect,
            })
        })
        .collect()
}

fn host_ports(spec: &core::PodSpec) -> Vec<HostPort> {
    let containers = spec.containers.iter().chain(spec.init_containers.iter().flatten());
    let mut out: Vec<HostPort> = containers
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            p.host_port.filter(|hp| *hp > 0).map(|port| HostPort {
                protocol: p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                ip: p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
                port,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn spread_constraints(
    object: &str,
    pod: &core::Pod,
    spec: &core::PodSpec,
) -> Result<Vec<SpreadConstraint>, ModelError> {
    let mut out = vec![];
    for (i, c) in spec.topology_spread_constraints.iter().flatten().enumerate() {
        let field = format!("spec.topologySpreadConstraints[{i}]");
        if c.max_skew < 1 {
            return Err(ModelError::new(
                object,
                &format!("{field}.maxSkew"),
                "must be at least 1",
            ));
        }
        let hard = match c.when_unsatisfiable.as_str() {
            "DoNotSchedule" => true,
            "ScheduleAnyway" => false,
            other => {
                return Err(ModelError::new(
                    object,
                    &format!("{field}.whenUnsatisfiable"),
                    &format!("unknown value {other:?} (expected DoNotSchedule or ScheduleAnyway)"),
                ));
            }
        };
        let mut selector = match &c.label_selector {
            Some(s) => label_selector(object, &format!("{field}.labelSelector"), s)?,
            None => LabelSelector {
                requirements: vec![Requirement {
                    key: "purser.dev/never".into(),
                    op: Operator::In,
                    values: vec![],
                }],
            },
        };
        // matchLabelKeys adds the pod's own values for those keys to the selector.
        let labels = pod.metadata.labels.clone().unwrap_or_default();
        for key in c.match_label_keys.iter().flatten() {
            if let Some(v) = labels.get(key) {
                selector.requirements.push(Requirement {
                    key: key.clone(),
                    op: Operator::In,
                    values: vec![v.clone()],
                });
            }
        }
        selector.requirements.sort();
        out.push(SpreadConstraint {
            max_skew: c.max_skew as u32,
            topology_key: canonical_key(&c.topology_key).to_string(),
            hard,
            selector,
            min_domains: c.min_domains.map(|m| m.max(1) as u32),
        });
    }
    Ok(out)
}
