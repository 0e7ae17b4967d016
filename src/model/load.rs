//! Reading cluster objects into a validated [`Snapshot`].
//!
//! In: YAML or JSON text exactly as `kubectl get ... -o yaml|json` prints it (several
//! `---`-separated documents, `kind: List` wrappers), or already-parsed objects. Out: a
//! [`Loaded`] snapshot plus warnings about what was skipped, or the first [`ModelError`], which
//! names the file and document, or the object (`Kind namespace/name`) and the field at fault.
//!
//! Kinds read: `v1` Pod and Node, `apps/v1` DaemonSet, `policy/v1` PodDisruptionBudget,
//! `purser.dev/v1` NodePool, NodeClaim and CostBudget (and `karpenter.sh/v1` NodePool and
//! NodeClaim, which have the same shape).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::str::FromStr;

use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::disruption::{
    BUDGET_REASONS, BudgetNodes, DO_NOT_DISRUPT, DisruptionBudget, DisruptionPolicy, INITIALIZED, INTERRUPTION,
    InterruptionKind, KARPENTER_DO_NOT_DISRUPT, KARPENTER_INITIALIZED, LAST_POD_EVENT, NODEPOOL_HASH, PdbInfo, Reason,
    fnv1a64, parse_budget_nodes, parse_budget_reason, parse_consolidation_policy, parse_duration_or_never,
    parse_go_duration,
};
use super::error::ModelError;
use super::labels::{self, CAPACITY_TYPE, INSTANCE_TYPE, NODEPOOL, ZONE, canonical_key};
use super::pod::{LabelSelector, PodInfo, label_selector, pod_from_k8s};
use super::quantity::Quantity;
use super::requirements::{Operator, Requirement, RequirementError, Requirements};
use super::resources::{PODS, Resources};
use super::snapshot::{Budget, DaemonSetInfo, NodeInfo, Pool, Snapshot};
use super::taints::{Effect, Taint, Toleration};
use crate::api::nodepool::{DisruptionBudgetSpec, NodeClaimTemplate};
use crate::api::{self, NodeClassRef, NodeSelectorRequirement, TaintSpec};
use crate::catalog::{CapacityType, Catalog, InstanceType};

/// The API group of Purser's custom resources.
pub const PURSER_API_VERSION: &str = "purser.dev/v1";
/// Karpenter's API version, whose NodePool and NodeClaim Purser reads as its own.
pub const KARPENTER_API_VERSION: &str = "karpenter.sh/v1";

/// Taint a node carries from joining until Purser's controller registers it (and removes it).
pub const UNREGISTERED_TAINT: &str = "purser.dev/unregistered";

/// Taints the node lifecycle controllers (Purser's registration among them) add and remove on
/// their own; they never decide a plan. A Node that joined but is not registered yet is the
/// capacity its NodeClaim was launched for: read with its unregistered taint, it would have no
/// room for the pods planned onto it, and a plan made during registration would launch a second
/// node for them.
pub const EPHEMERAL_TAINTS: [&str; 4] = [
    "node.kubernetes.io/not-ready",
    "node.kubernetes.io/unreachable",
    "node.cloudprovider.kubernetes.io/uninitialized",
    UNREGISTERED_TAINT,
];

/// The kubelet's default `maxPods`, used when a node reports no `pods` allocatable.
pub const DEFAULT_MAX_PODS: i64 = 110;

/// A snapshot read from files or objects, with warnings about what was skipped or guessed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Loaded {
    /// The validated snapshot.
    pub snapshot: Snapshot,
    /// Human-readable notes: skipped objects, unknown prices, guessed values.
    pub warnings: Vec<String>,
}

/// Split YAML (`---`-separated documents) or JSON text into objects, flattening `List`s.
///
/// Empty documents are skipped. Every object must be a mapping with `apiVersion` and `kind`.
/// Errors name `source` and the 1-based document number.
pub fn parse_documents(text: &str, source: &str) -> Result<Vec<Value>, ModelError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let trimmed = text.trim_start();
    let documents = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON first (better error positions); YAML flow style also starts with `{` or `[`.
        match parse_json(text, source) {
            Ok(docs) => docs,
            Err(json_error) => parse_yaml(text, source).map_err(|_| json_error)?,
        }
    } else {
        parse_yaml(text, source)?
    };
    let mut out = Vec::new();
    for (index, doc) in documents.into_iter().enumerate() {
        let place = format!("document {}", index + 1);
        match doc {
            Value::Null => {}
            // A bare JSON or YAML array of objects is read as a list.
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    flatten(item, source, &format!("{place} item {i}"), None, &mut out)?;
                }
            }
            other => flatten(other, source, &place, None, &mut out)?,
        }
    }
    Ok(out)
}

fn parse_json(text: &str, source: &str) -> Result<Vec<Value>, ModelError> {
    let mut docs = Vec::new();
    for (index, doc) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let doc = doc.map_err(|e| {
            ModelError::new(
                source,
                &format!("document {}", index + 1),
                &format!("invalid JSON: {e}"),
            )
        })?;
        docs.push(doc);
    }
    Ok(docs)
}

fn parse_yaml(text: &str, source: &str) -> Result<Vec<Value>, ModelError> {
    let mut docs = Vec::new();
    for (index, document) in serde_norway::Deserializer::from_str(text).enumerate() {
        // After a syntax error the iterator repeats the error: stop at the first one.
        let doc = Value::deserialize(document).map_err(|e| {
            ModelError::new(
                source,
                &format!("document {}", index + 1),
                &format!("invalid YAML: {e}"),
            )
        })?;
        docs.push(doc);
    }
    Ok(docs)
}

/// Push `value` (or, for a list, its items) onto `out`. `defaults` are the `apiVersion` and
/// `kind` a typed list (`PodList`) implies for items that omit them.
fn flatten(
    value: Value,
    source: &str,
    place: &str,
    defaults: Option<(&str, &str)>,
    out: &mut Vec<Value>,
) -> Result<(), ModelError> {
    let Value::Object(mut map) = value else {
        if value.is_null() {
            return Ok(());
        }
        return Err(ModelError::new(
            source,
            place,
            &format!(
                "expected a Kubernetes object (a mapping with apiVersion and kind), found {}",
                json_type(&value)
            ),
        ));
    };
    if let Some((api_version, kind)) = defaults {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(api_version.to_string()));
        map.entry("kind").or_insert_with(|| Value::String(kind.to_string()));
    }
    let api_version = match map.get("apiVersion") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(ModelError::new(
                source,
                &format!("{place}.apiVersion"),
                "missing (expected a string such as v1)",
            ));
        }
    };
    let kind = match map.get("kind") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(ModelError::new(
                source,
                &format!("{place}.kind"),
                "missing (expected a string such as Pod)",
            ));
        }
    };
    if kind == "List" || kind.ends_with("List") {
        let item_kind = kind.strip_suffix("List").unwrap_or_default();
        let item_defaults = (!item_kind.is_empty()).then_some((api_version.as_str(), item_kind));
        match map.remove("items") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.into_iter().enumerate() {
                    flatten(item, source, &format!("{place} items[{i}]"), item_defaults, out)?;
                }
            }
            Some(other) => {
                return Err(ModelError::new(
                    source,
                    &format!("{place}.items"),
                    &format!("expected a list, found {}", json_type(&other)),
                ));
            }
        }
        return Ok(());
    }
    out.push(Value::Object(map));
    Ok(())
}

/// How a JSON value's type is named in error messages ("a string", "a list", ...).
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Read every file (`-` reads standard input) and build one snapshot from all their objects.
pub fn load_files(paths: &[PathBuf], catalog: &Catalog) -> Result<Loaded, ModelError> {
    let mut objects = Vec::new();
    for path in paths {
        let source = path.display().to_string();
        let text = if source == "-" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| ModelError::new("<stdin>", "file", &format!("cannot read: {e}")))?;
            text
        } else {
            std::fs::read_to_string(path).map_err(|e| ModelError::new(&source, "file", &format!("cannot read: {e}")))?
        };
        objects.extend(parse_documents(&text, &source)?);
    }
    snapshot_from_objects(&objects, catalog)
}

/// The kinds this loader reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Pod,
    Node,
    DaemonSet,
    NodePool,
    NodeClaim,
    CostBudget,
    PodDisruptionBudget,
}

impl Kind {
    fn namespaced(self) -> bool {
        matches!(self, Kind::Pod | Kind::DaemonSet | Kind::PodDisruptionBudget)
    }

    /// The API versions accepted for a kind name, and the kind.
    fn from_kind(kind: &str) -> Option<(Kind, &'static [&'static str])> {
        const CORE: &[&str] = &["v1"];
        const APPS: &[&str] = &["apps/v1"];
        const POOLS: &[&str] = &[PURSER_API_VERSION, KARPENTER_API_VERSION];
        const PURSER: &[&str] = &[PURSER_API_VERSION];
        const POLICY: &[&str] = &["policy/v1"];
        Some(match kind {
            "Pod" => (Kind::Pod, CORE),
            "Node" => (Kind::Node, CORE),
            "DaemonSet" => (Kind::DaemonSet, APPS),
            "NodePool" => (Kind::NodePool, POOLS),
            "NodeClaim" => (Kind::NodeClaim, POOLS),
            "CostBudget" => (Kind::CostBudget, PURSER),
            "PodDisruptionBudget" => (Kind::PodDisruptionBudget, POLICY),
            _ => return None,
        })
    }
}

/// One object accepted for reading, with the name used in errors.
struct Input<'a> {
    kind: Kind,
    object: String,
    name: String,
    namespace: String,
    value: &'a Value,
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// `Kind namespace/name` (namespaced kinds) or `Kind name`.
fn display_name(kind: &str, namespaced: bool, namespace: &str, name: &str) -> String {
    if namespaced {
        format!("{kind} {namespace}/{name}")
    } else {
        format!("{kind} {name}")
    }
}

/// Build a snapshot from parsed objects (as [`parse_documents`] returns them).
///
/// Unknown kinds are skipped with a warning; duplicates (same kind, namespace and name) and
/// invalid objects are errors. Output is sorted: pods by key, nodes and pools by name.
pub fn snapshot_from_objects(objects: &[Value], catalog: &Catalog) -> Result<Loaded, ModelError> {
    let mut warnings = Vec::new();
    let mut inputs = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, value) in objects.iter().enumerate() {
        let here = format!("object #{}", index + 1);
        let api_version = str_at(value, "/apiVersion")
            .ok_or_else(|| ModelError::new(&here, "apiVersion", "missing (expected a string such as v1)"))?;
        let kind_name = str_at(value, "/kind")
            .ok_or_else(|| ModelError::new(&here, "kind", "missing (expected a string such as Pod)"))?;
        let name = str_at(value, "/metadata/name").unwrap_or_default().to_string();
        let namespace = str_at(value, "/metadata/namespace").unwrap_or("default").to_string();
        let Some((kind, versions)) = Kind::from_kind(kind_name) else {
            let namespaced = value.pointer("/metadata/namespace").is_some();
            warnings.push(format!(
                "skipped {}: not an input kind",
                display_name(kind_name, namespaced, &namespace, &name)
            ));
            continue;
        };
        let object = display_name(kind_name, kind.namespaced(), &namespace, &name);
        if !versions.contains(&api_version) {
            warnings.push(format!(
                "skipped {object}: apiVersion {api_version} is not read (expected {})",
                versions.join(" or ")
            ));
            continue;
        }
        if name.is_empty() {
            return Err(ModelError::new(
                &format!("{kind_name} ({here}, unnamed)"),
                "metadata.name",
                "missing",
            ));
        }
        let ns_key = if kind.namespaced() {
            namespace.clone()
        } else {
            String::new()
        };
        if !seen.insert((kind, ns_key, name.clone())) {
            return Err(ModelError::new(
                &object,
                "metadata.name",
                "appears more than once in the input",
            ));
        }
        inputs.push(Input {
            kind,
            object,
            name,
            namespace,
            value,
        });
    }

    let of = |kind: Kind| inputs.iter().filter(move |i| i.kind == kind);
    let mut snapshot = Snapshot::default();

    for input in of(Kind::NodePool) {
        snapshot.pools.push(read_pool(input, &mut warnings)?);
    }
    snapshot.pools.sort_by(|a, b| a.name.cmp(&b.name));

    for input in of(Kind::CostBudget) {
        snapshot.budgets.push(read_budget(input)?);
    }
    snapshot.budgets.sort_by(|a, b| a.name.cmp(&b.name));

    for input in of(Kind::DaemonSet) {
        snapshot.daemonsets.push(read_daemonset(input)?);
    }
    snapshot.daemonsets.sort_by(|a, b| a.key.cmp(&b.key));

    for input in of(Kind::Pod) {
        if matches!(str_at(input.value, "/status/phase"), Some("Succeeded" | "Failed")) {
            // Finished pods hold no resources.
            continue;
        }
        let pod: core::Pod = decode(input.value, &input.object)?;
        snapshot.pods.push(pod_from_k8s(&pod)?);
    }
    snapshot.pods.sort_by(|a, b| a.key.cmp(&b.key));

    for input in of(Kind::PodDisruptionBudget) {
        snapshot.pdbs.push(read_pdb(input, &snapshot.pods, &mut warnings)?);
    }
    snapshot.pdbs.sort_by(|a, b| a.key.cmp(&b.key));

    let mut registered = Registered::default();
    for input in of(Kind::Node) {
        let node: core::Node = decode(input.value, &input.object)?;
        registered.names.insert(input.name.clone());
        if let Some(id) = node
            .spec
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .filter(|s| !s.is_empty())
        {
            registered.provider_ids.insert(id);
        }
        snapshot
            .nodes
            .push(read_node(input, &node, &snapshot.pools, catalog, &mut warnings)?);
    }
    for input in of(Kind::NodeClaim) {
        if let Some(node) = read_claim(input, &registered, &snapshot.pools, catalog, &mut warnings)? {
            snapshot.nodes.push(node);
        }
    }
    snapshot
        .nodes
        .sort_by(|a, b| a.name.cmp(&b.name).then(a.in_flight.cmp(&b.in_flight)));

    Ok(Loaded { snapshot, warnings })
}

/// Deserialize with the serde path of a failure in the error's field.
fn decode<T: DeserializeOwned>(value: &Value, object: &str) -> Result<T, ModelError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "object".to_string() } else { path };
        ModelError::new(object, &field, &e.into_inner().to_string())
    })
}

/// Turn numbers into strings in a quantity map of a custom resource (`cpu: 2` means `"2"`).
fn stringify_numbers(value: Option<&mut Value>) {
    if let Some(Value::Object(map)) = value {
        for v in map.values_mut() {
            if let Value::Number(n) = v {
                *v = Value::String(n.to_string());
            }
        }
    }
}

/// Parse a resource list of quantity strings; errors name `field.<resource>`.
fn parse_resources<'a>(
    object: &str,
    field: &str,
    items: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Resources, ModelError> {
    let resources = Resources::parse(items)
        .map_err(|(name, e)| ModelError::new(object, &format!("{field}.{name}"), &e.to_string()))?;
    if let Some((name, _)) = resources.0.iter().find(|(_, q)| **q < Quantity::ZERO) {
        return Err(ModelError::new(
            object,
            &format!("{field}.{name}"),
            "must not be negative",
        ));
    }
    Ok(resources)
}

fn parse_effect(object: &str, field: &str, effect: &str) -> Result<Effect, ModelError> {
    Effect::parse(effect).ok_or_else(|| {
        ModelError::new(
            object,
            field,
            &format!("unknown effect {effect:?} (expected NoSchedule, PreferNoSchedule or NoExecute)"),
        )
    })
}

fn template_taints(object: &str, field: &str, list: &[TaintSpec]) -> Result<Vec<Taint>, ModelError> {
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            if t.key.is_empty() {
                return Err(ModelError::new(
                    object,
                    &format!("{field}[{i}].key"),
                    "must not be empty",
                ));
            }
            Ok(Taint {
                key: t.key.clone(),
                value: t.value.clone().unwrap_or_default(),
                effect: parse_effect(object, &format!("{field}[{i}].effect"), &t.effect)?,
            })
        })
        .collect()
}

/// Parse requirements; errors name `field[i]` and the part at fault.
fn parse_requirements(object: &str, field: &str, list: &[NodeSelectorRequirement]) -> Result<Requirements, ModelError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let at = format!("{field}[{i}]");
        if r.key.is_empty() {
            return Err(ModelError::new(object, &format!("{at}.key"), "must not be empty"));
        }
        let req = Requirement::new(&r.key, &r.operator, &r.values).map_err(|e| {
            let part = match e {
                RequirementError::UnknownOperator(_) => "operator",
                _ => "values",
            };
            ModelError::new(object, &format!("{at}.{part}"), &e.to_string())
        })?;
        if let Some(min) = r.min_values {
            if min < 1 {
                return Err(ModelError::new(
                    object,
                    &format!("{at}.minValues"),
                    "must be at least 1",
                ));
            }
            if req.op == Operator::In && (min as usize) > req.values.len() {
                return Err(ModelError::new(
                    object,
                    &format!("{at}.minValues"),
                    &format!(
                        "is {min} but the requirement lists only {} distinct values",
                        req.values.len()
                    ),
                ));
            }
        }
        out.push(req);
    }
    Ok(Requirements(out))
}

fn read_pool(input: &Input<'_>, warnings: &mut Vec<String>) -> Result<Pool, ModelError> {
    let object = &input.object;
    let mut value = input.value.clone();
    stringify_numbers(value.pointer_mut("/spec/limits"));
    stringify_budget_nodes(value.pointer_mut("/spec/disruption/budgets"));
    let pool: api::NodePool = decode(&value, object)?;
    let spec = &pool.spec;
    let tspec = &spec.template.spec;

    let requirements = parse_requirements(object, "spec.template.spec.requirements", &tspec.requirements)?;
    if let Some(why) = requirements.contradiction() {
        return Err(ModelError::new(
            object,
            "spec.template.spec.requirements",
            &format!("contradictory requirements: {why}"),
        ));
    }
    for r in requirements
        .0
        .iter()
        .filter(|r| r.key == CAPACITY_TYPE && r.op == Operator::In)
    {
        for v in r.values.iter().filter(|v| CapacityType::parse(v).is_none()) {
            warnings.push(format!(
                "{object}: capacity type {v:?} is not offered (expected spot or on-demand); it matches no offering"
            ));
        }
    }

    let taints = template_taints(object, "spec.template.spec.taints", &tspec.taints)?;
    let startup_taints = template_taints(object, "spec.template.spec.startupTaints", &tspec.startup_taints)?;

    let limits = parse_resources(
        object,
        "spec.limits",
        spec.limits.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;

    let weight = match spec.weight {
        None => 0,
        Some(w) if (1..=100).contains(&w) => w,
        Some(w) => {
            return Err(ModelError::new(
                object,
                "spec.weight",
                &format!("is {w}; must be between 1 and 100 when set"),
            ));
        }
    };

    let max_hourly_cost = match &spec.budget {
        None => None,
        Some(b) => Some(non_negative(object, "spec.budget.maxHourlyCost", b.max_hourly_cost)?),
    };

    let min_on_demand_percent = match &spec.capacity_mix {
        None => 0.0,
        Some(m) => percent(object, "spec.capacityMix.minOnDemandPercent", m.min_on_demand_percent)?,
    };

    let template_labels = &spec.template.metadata.labels;
    for (key, value) in template_labels {
        let canonical = canonical_key(key);
        let single = BTreeMap::from([(canonical.to_string(), value.clone())]);
        if let Some(r) = requirements
            .0
            .iter()
            .find(|r| r.key == canonical && !r.matches(&single))
        {
            return Err(ModelError::new(
                object,
                &format!("spec.template.metadata.labels.{key}"),
                &format!("value {value:?} is excluded by the requirement {r}"),
            ));
        }
    }
    let mut pool_labels = template_labels.clone();
    pool_labels.insert(NODEPOOL.to_string(), input.name.clone());

    Ok(Pool {
        name: input.name.clone(),
        weight,
        labels: labels::normalize(&pool_labels),
        requirements,
        taints,
        startup_taints,
        limits,
        max_hourly_cost,
        min_on_demand_percent,
        disruption: read_disruption(object, spec)?,
        template_hash: template_hash(&spec.template),
    })
}

fn percent(object: &str, field: &str, p: f64) -> Result<f64, ModelError> {
    if p.is_finite() && (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err(ModelError::new(
            object,
            field,
            &format!("is {p}; must be between 0 and 100"),
        ))
    }
}

/// Turn a number in a budget's `nodes` into a string (`nodes: 5` means `"5"`).
fn stringify_budget_nodes(value: Option<&mut Value>) {
    if let Some(Value::Array(budgets)) = value {
        for budget in budgets {
            if let Some(v @ Value::Number(_)) = budget.get_mut("nodes") {
                *v = Value::String(v.to_string());
            }
        }
    }
}

fn duration_or_never(object: &str, field: &str, text: &str) -> Result<Option<i64>, ModelError> {
    parse_duration_or_never(text).ok_or_else(|| {
        ModelError::new(
            object,
            field,
            &format!("invalid duration {text:?} (expected whole h, m and s parts such as 90s, 10m or 1h30m, or Never)"),
        )
    })
}

/// `spec.disruption` and `spec.template.spec.expireAfter`, with Karpenter's defaults.
fn read_disruption(object: &str, spec: &api::NodePoolSpec) -> Result<DisruptionPolicy, ModelError> {
    let defaults = DisruptionPolicy::default();
    let d = spec.disruption.clone().unwrap_or_default();
    let consolidation_policy = match &d.consolidation_policy {
        None => defaults.consolidation_policy,
        Some(p) => parse_consolidation_policy(p).ok_or_else(|| {
            ModelError::new(
                object,
                "spec.disruption.consolidationPolicy",
                &format!("unknown policy {p:?} (expected WhenEmpty or WhenEmptyOrUnderutilized)"),
            )
        })?,
    };
    let consolidate_after = match &d.consolidate_after {
        None => defaults.consolidate_after,
        Some(t) => duration_or_never(object, "spec.disruption.consolidateAfter", t)?,
    };
    let expire_after = match &spec.template.spec.expire_after {
        None => defaults.expire_after,
        Some(t) => duration_or_never(object, "spec.template.spec.expireAfter", t)?,
    };
    let min_savings_percent = match d.min_savings_percent {
        None => defaults.min_savings_percent,
        Some(p) => percent(object, "spec.disruption.minSavingsPercent", p)?,
    };
    let min_savings_per_hour = match d.min_savings_per_hour {
        None => defaults.min_savings_per_hour,
        Some(v) => non_negative(object, "spec.disruption.minSavingsPerHour", v)?,
    };
    let budgets = match &d.budgets {
        None => defaults.budgets,
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, b)| read_disruption_budget(object, &format!("spec.disruption.budgets[{i}]"), b))
            .collect::<Result<_, _>>()?,
    };
    Ok(DisruptionPolicy {
        consolidation_policy,
        consolidate_after,
        min_savings_percent,
        min_savings_per_hour,
        budgets,
        expire_after,
        prelaunch_on_rebalance: d.prelaunch_on_rebalance,
    })
}

fn read_disruption_budget(object: &str, at: &str, b: &DisruptionBudgetSpec) -> Result<DisruptionBudget, ModelError> {
    let nodes = parse_budget_nodes(&b.nodes).ok_or_else(|| {
        ModelError::new(
            object,
            &format!("{at}.nodes"),
            &format!(
                "is {:?}; expected a node count (an integer 0 or more, e.g. \"5\") or a percent from 0% to 100% (e.g. \"10%\")",
                b.nodes
            ),
        )
    })?;
    if let Some(s) = &b.schedule {
        croner::Cron::from_str(s).map_err(|e| {
            ModelError::new(
                object,
                &format!("{at}.schedule"),
                &format!("invalid cron schedule {s:?}: {e}"),
            )
        })?;
    }
    let duration = match &b.duration {
        None => None,
        Some(t) => Some(parse_go_duration(t).ok_or_else(|| {
            ModelError::new(
                object,
                &format!("{at}.duration"),
                &format!("invalid duration {t:?} (expected whole h, m and s parts such as 30m or 1h30m)"),
            )
        })?),
    };
    match (&b.schedule, duration) {
        (Some(_), None) => Err(ModelError::new(
            object,
            &format!("{at}.duration"),
            "missing: a budget with a schedule needs a duration (set both or neither)",
        )),
        (None, Some(_)) => Err(ModelError::new(
            object,
            &format!("{at}.schedule"),
            "missing: a budget with a duration needs a schedule (set both or neither)",
        )),
        _ => Ok(DisruptionBudget {
            nodes,
            schedule: b.schedule.clone(),
            duration,
            reasons: budget_reasons(object, at, b.reasons.as_deref().unwrap_or(&[]))?,
        }),
    }
}

fn budget_reasons(object: &str, at: &str, list: &[String]) -> Result<Vec<Reason>, ModelError> {
    let mut reasons = list
        .iter()
        .enumerate()
        .map(|(i, r)| {
            parse_budget_reason(r).ok_or_else(|| {
                let accepted: Vec<&str> = BUDGET_REASONS.iter().map(|r| r.as_str()).collect();
                ModelError::new(
                    object,
                    &format!("{at}.reasons[{i}]"),
                    &format!("unknown reason {r:?} (expected one of {})", accepted.join(", ")),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    reasons.sort();
    reasons.dedup();
    Ok(reasons)
}

/// What the template hash covers, in a fixed field order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct HashedTemplate<'a> {
    labels: &'a BTreeMap<String, String>,
    taints: Vec<&'a TaintSpec>,
    startup_taints: Vec<&'a TaintSpec>,
    node_class_ref: Option<&'a NodeClassRef>,
}

/// FNV-1a 64 (hex) of the canonical JSON of the template's labels, taints (sorted), startup taints (sorted) and nodeClassRef.
fn template_hash(template: &NodeClaimTemplate) -> String {
    let hashed = HashedTemplate {
        labels: &template.metadata.labels,
        taints: sorted_taints(&template.spec.taints),
        startup_taints: sorted_taints(&template.spec.startup_taints),
        node_class_ref: template.spec.node_class_ref.as_ref(),
    };
    // Maps, strings and options of strings always serialize.
    let canonical = serde_json::to_vec(&hashed).unwrap_or_default();
    format!("{:016x}", fnv1a64(&canonical))
}

fn sorted_taints(list: &[TaintSpec]) -> Vec<&TaintSpec> {
    let mut v: Vec<&TaintSpec> = list.iter().collect();
    v.sort_by(|a, b| (&a.key, &a.value, &a.effect).cmp(&(&b.key, &b.value, &b.effect)));
    v
}

fn non_negative(object: &str, field: &str, value: f64) -> Result<f64, ModelError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ModelError::new(
            object,
            field,
            &format!("is {value}; must be a finite number of USD per hour, 0 or more"),
        ))
    }
}

fn read_budget(input: &Input<'_>) -> Result<Budget, ModelError> {
    let object = &input.object;
    let budget: api::CostBudget = decode(input.value, object)?;
    let max_hourly_cost = non_negative(object, "spec.maxHourlyCost", budget.spec.max_hourly_cost)?;
    let selector = match &budget.spec.selector.pod_selector {
        None => None,
        Some(sel) => Some(label_selector(object, "spec.selector.podSelector", sel)?),
    };
    let (period, max_period_cost) = budget_period(object, &budget)?;
    // The controller's ledger writes the run-rate the period cap still allows; the planner
    // holds the scope to it at once.
    let allowed = budget
        .status
        .as_ref()
        .and_then(|s| s.allowed_run_rate)
        .filter(|r| max_period_cost.is_some() && r.is_finite() && *r >= 0.0);
    Ok(Budget {
        name: input.name.clone(),
        namespaces: budget.spec.selector.namespaces.clone(),
        selector,
        max_hourly_cost: allowed.map_or(max_hourly_cost, |a| a.min(max_hourly_cost)),
        period,
        max_period_cost,
    })
}

/// A CostBudget's period and period cap, validated: the period defaults to Monthly when only
/// the cap is set.
fn budget_period(object: &str, budget: &api::CostBudget) -> Result<(Option<String>, Option<f64>), ModelError> {
    let cap = match budget.spec.max_period_cost {
        None => None,
        Some(c) if c.is_finite() && c >= 0.0 => Some(c),
        Some(c) => {
            return Err(ModelError::new(
                object,
                "spec.maxPeriodCost",
                &format!("is {c}; must be a finite number of USD per period, 0 or more"),
            ));
        }
    };
    let period = match (&budget.spec.period, cap) {
        (Some(p), _) => {
            p.parse::<crate::cost::ledger::Period>()
                .map_err(|e| ModelError::new(object, "spec.period", &e))?;
            Some(p.clone())
        }
        (None, Some(_)) => Some("Monthly".to_string()),
        (None, None) => None,
    };
    Ok((period, cap))
}

/// The tolerations the DaemonSet controller adds to every pod it creates.
pub fn daemonset_tolerations() -> Vec<Toleration> {
    [
        ("node.kubernetes.io/not-ready", Effect::NoExecute),
        ("node.kubernetes.io/unreachable", Effect::NoExecute),
        ("node.kubernetes.io/disk-pressure", Effect::NoSchedule),
        ("node.kubernetes.io/memory-pressure", Effect::NoSchedule),
        ("node.kubernetes.io/pid-pressure", Effect::NoSchedule),
        ("node.kubernetes.io/unschedulable", Effect::NoSchedule),
        ("node.kubernetes.io/network-unavailable", Effect::NoSchedule),
    ]
    .into_iter()
    .map(|(key, effect)| Toleration {
        key: key.to_string(),
        exists: true,
        value: String::new(),
        effect: Some(effect),
    })
    .collect()
}

fn read_daemonset(input: &Input<'_>) -> Result<DaemonSetInfo, ModelError> {
    let object = &input.object;
    let ds: apps::DaemonSet = decode(input.value, object)?;
    let template = ds.spec.template;
    let template_meta = template.metadata.unwrap_or_default();
    let pod = core::Pod {
        metadata: meta::ObjectMeta {
            name: Some(input.name.clone()),
            namespace: Some(input.namespace.clone()),
            labels: template_meta.labels,
            creation_timestamp: ds.metadata.creation_timestamp.clone(),
            owner_references: Some(vec![meta::OwnerReference {
                api_version: "apps/v1".into(),
                kind: "DaemonSet".into(),
                name: input.name.clone(),
                uid: ds.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        spec: template.spec,
        status: None,
    };
    let mut info = pod_from_k8s(&pod).map_err(|e| ModelError {
        object: object.clone(),
        field: format!("spec.template.{}", e.field),
        message: e.message,
    })?;
    for t in daemonset_tolerations() {
        if !info.tolerations.contains(&t) {
            info.tolerations.push(t);
        }
    }
    Ok(DaemonSetInfo {
        key: format!("{}/{}", input.namespace, input.name),
        template: info,
    })
}

/// Names and provider IDs of the Nodes read, so NodeClaims that became Nodes are not counted twice.
#[derive(Default)]
struct Registered {
    names: BTreeSet<String>,
    provider_ids: BTreeSet<String>,
}

fn capacity_type_of(object: &str, labels: &BTreeMap<String, String>, warnings: &mut Vec<String>) -> CapacityType {
    match labels.get(CAPACITY_TYPE) {
        None => CapacityType::OnDemand,
        Some(v) => CapacityType::parse(v).unwrap_or_else(|| {
            warnings.push(format!(
                "{object}: capacity type {v:?} is not spot or on-demand; priced as on-demand"
            ));
            CapacityType::OnDemand
        }),
    }
}

/// The hourly price of an instance type in a zone: that exact offering, else the cheapest
/// offering of that capacity type, else None with a warning.
fn price_of(
    who: &str,
    instance_type: Option<&str>,
    found: Option<&InstanceType>,
    zone: Option<&str>,
    capacity_type: CapacityType,
    warnings: &mut Vec<String>,
) -> Option<f64> {
    let Some(name) = instance_type else {
        warnings.push(format!(
            "{who}: no {INSTANCE_TYPE} label; its price is unknown and counted as 0"
        ));
        return None;
    };
    let Some(it) = found else {
        warnings.push(format!(
            "{who}: instance type {name} not in the catalog; its price is unknown and counted as 0"
        ));
        return None;
    };
    let same_type = || it.offerings.iter().filter(|o| o.capacity_type == capacity_type);
    let exact = zone.and_then(|z| same_type().find(|o| o.zone == z));
    let price = exact
        .or_else(|| same_type().min_by(|a, b| a.price.total_cmp(&b.price)))
        .map(|o| o.price);
    if price.is_none() {
        warnings.push(format!(
            "{who}: instance type {name} has no {capacity_type} offering in the catalog; its price is unknown and counted as 0"
        ));
    }
    price
}

/// Allocatable and capacity from a status (when it reports allocatable) or the catalog.
fn node_resources(
    status_allocatable: Option<Resources>,
    status_capacity: Option<Resources>,
    found: Option<&InstanceType>,
) -> Option<(Resources, Resources)> {
    let (mut allocatable, capacity) = match (status_allocatable, found) {
        (Some(a), _) => {
            let c = status_capacity
                .or_else(|| found.map(|it| it.capacity.clone()))
                .unwrap_or_else(|| a.clone());
            (a, c)
        }
        (None, Some(it)) => (
            it.allocatable.clone(),
            status_capacity.unwrap_or_else(|| it.capacity.clone()),
        ),
        (None, None) => return None,
    };
    if !allocatable.0.contains_key(PODS) {
        let pods = found
            .map(|it| it.allocatable.get(PODS))
            .filter(|q| !q.is_zero())
            .unwrap_or_else(|| Quantity::from_units(DEFAULT_MAX_PODS));
        allocatable.set(PODS, pods);
    }
    Some((allocatable, capacity))
}

fn read_node(
    input: &Input<'_>,
    node: &core::Node,
    pools: &[Pool],
    catalog: &Catalog,
    warnings: &mut Vec<String>,
) -> Result<NodeInfo, ModelError> {
    let object = &input.object;
    let node_labels = labels::normalize(&node.metadata.labels.clone().unwrap_or_default());
    let pool_name = node_labels.get(NODEPOOL).cloned();
    let pool = pool_name
        .as_ref()
        .and_then(|p| pools.iter().find(|pool| &pool.name == p));
    let spec = node.spec.clone().unwrap_or_default();

    let mut taints = Vec::new();
    for (i, t) in spec.taints.iter().flatten().enumerate() {
        let effect = parse_effect(object, &format!("spec.taints[{i}].effect"), &t.effect)?;
        if EPHEMERAL_TAINTS.contains(&t.key.as_str()) {
            continue;
        }
        if pool.is_some_and(|p| p.startup_taints.iter().any(|s| s.key == t.key && s.effect == effect)) {
            continue;
        }
        taints.push(Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
            effect,
        });
    }

    let instance_type = node_labels.get(INSTANCE_TYPE).cloned();
    let found = instance_type.as_deref().and_then(|n| catalog.find(n));
    let status = node.status.as_ref();
    let status_allocatable = match status.and_then(|s| s.allocatable.as_ref()).filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(parse_resources(
            object,
            "status.allocatable",
            m.iter().map(|(k, v)| (k.as_str(), v.0.as_str())),
        )?),
    };
    let status_capacity = match status.and_then(|s| s.capacity.as_ref()).filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(parse_resources(
            object,
            "status.capacity",
            m.iter().map(|(k, v)| (k.as_str(), v.0.as_str())),
        )?),
    };
    let (allocatable, capacity) = node_resources(status_allocatable, status_capacity, found).ok_or_else(|| {
        let why = match &instance_type {
            Some(t) => format!("missing, and instance type {t} is not in the catalog"),
            None => format!("missing, and the node has no {INSTANCE_TYPE} label to look it up in the catalog"),
        };
        ModelError::new(object, "status.allocatable", &why)
    })?;

    let capacity_type = capacity_type_of(object, &node_labels, warnings);
    let zone = node_labels.get(ZONE).cloned();
    let marks = read_marks(object, &node.metadata)?;
    let price = price_of(
        &format!("node {}", input.name),
        instance_type.as_deref(),
        found,
        zone.as_deref(),
        capacity_type,
        warnings,
    );

    Ok(NodeInfo {
        name: input.name.clone(),
        labels: node_labels,
        taints,
        allocatable,
        capacity,
        pool: pool_name,
        instance_type,
        capacity_type: Some(capacity_type),
        zone,
        price,
        in_flight: false,
        cordoned: spec.unschedulable.unwrap_or(false),
        created: marks.created,
        initialized: node_initialized(node),
        deleting: marks.deleting,
        do_not_disrupt: marks.do_not_disrupt,
        pool_hash: marks.pool_hash,
        last_pod_event: marks.last_pod_event,
        interruption: marks.interruption,
    })
}

fn read_claim(
    input: &Input<'_>,
    registered: &Registered,
    pools: &[Pool],
    catalog: &Catalog,
    warnings: &mut Vec<String>,
) -> Result<Option<NodeInfo>, ModelError> {
    let object = &input.object;
    let mut value = input.value.clone();
    if let Some(Value::Object(status)) = value.pointer_mut("/status") {
        // Karpenter spells it `providerID`.
        if !status.contains_key("providerId")
            && let Some(id) = status.remove("providerID")
        {
            status.insert("providerId".into(), id);
        }
    }
    for pointer in ["/spec/resources/requests", "/status/allocatable", "/status/capacity"] {
        stringify_numbers(value.pointer_mut(pointer));
    }
    let claim: api::NodeClaim = decode(&value, object)?;
    let status = claim.status.clone().unwrap_or_default();
    let has_node = registered.names.contains(&input.name)
        || status.node_name.as_ref().is_some_and(|n| registered.names.contains(n))
        || status
            .provider_id
            .as_ref()
            .is_some_and(|p| registered.provider_ids.contains(p));
    if has_node {
        return Ok(None);
    }

    let requirements = parse_requirements(object, "spec.requirements", &claim.spec.requirements)?;
    let mut claim_labels = labels::normalize(&claim.metadata.labels.clone().unwrap_or_default());
    for r in &requirements.0 {
        if r.op == Operator::In
            && let [only] = r.values.as_slice()
        {
            claim_labels.entry(r.key.clone()).or_insert_with(|| only.clone());
        }
    }
    let instance_type = claim_labels.get(INSTANCE_TYPE).cloned();
    let found = instance_type.as_deref().and_then(|n| catalog.find(n));
    if let Some(it) = found {
        for (k, v) in &it.labels {
            claim_labels
                .entry(canonical_key(k).to_string())
                .or_insert_with(|| v.clone());
        }
    }
    let pool_name = claim_labels.get(NODEPOOL).cloned();
    if let Some(pool) = pool_name
        .as_ref()
        .and_then(|p| pools.iter().find(|pool| &pool.name == p))
    {
        for (k, v) in &pool.labels {
            claim_labels
                .entry(canonical_key(k).to_string())
                .or_insert_with(|| v.clone());
        }
    }
    let claim_labels = labels::normalize(&claim_labels);

    let status_allocatable = if status.allocatable.is_empty() {
        None
    } else {
        Some(parse_resources(
            object,
            "status.allocatable",
            status.allocatable.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?)
    };
    let status_capacity = if status.capacity.is_empty() {
        None
    } else {
        Some(parse_resources(
            object,
            "status.capacity",
            status.capacity.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?)
    };
    let (allocatable, capacity) = node_resources(status_allocatable, status_capacity, found)
        .ok_or_else(|| {
            let why = match &instance_type {
                Some(t) => format!("instance type {t} is not in the catalog and the claim has no status.allocatable"),
                None => format!(
                    "no single {INSTANCE_TYPE} (a requirement In with one value) and no status.allocatable: its capacity is unknown"
                ),
            };
            ModelError::new(object, "spec.requirements", &why)
        })?;

    let taints = template_taints(object, "spec.taints", &claim.spec.taints)?;
    let marks = read_marks(object, &claim.metadata)?;
    let capacity_type = capacity_type_of(object, &claim_labels, warnings);
    let zone = claim_labels.get(ZONE).cloned();
    let price = price_of(
        &format!("node claim {}", input.name),
        instance_type.as_deref(),
        found,
        zone.as_deref(),
        capacity_type,
        warnings,
    );

    Ok(Some(NodeInfo {
        name: input.name.clone(),
        labels: claim_labels,
        taints,
        allocatable,
        capacity,
        pool: pool_name,
        instance_type,
        capacity_type: Some(capacity_type),
        zone,
        price,
        in_flight: true,
        cordoned: false,
        created: marks.created,
        initialized: false,
        deleting: marks.deleting,
        do_not_disrupt: marks.do_not_disrupt,
        pool_hash: marks.pool_hash,
        last_pod_event: marks.last_pod_event,
        interruption: marks.interruption,
    }))
}

/// What the disruption engine reads from a Node's or NodeClaim's metadata.
struct Marks {
    created: i64,
    deleting: bool,
    do_not_disrupt: bool,
    pool_hash: Option<String>,
    last_pod_event: Option<i64>,
    interruption: Option<InterruptionKind>,
}

fn annotation_field(key: &str) -> String {
    format!("metadata.annotations.{key}")
}

fn read_marks(object: &str, metadata: &meta::ObjectMeta) -> Result<Marks, ModelError> {
    let annotations = metadata.annotations.clone().unwrap_or_default();
    let last_pod_event = match annotations.get(LAST_POD_EVENT) {
        None => None,
        Some(text) => Some(
            chrono::DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    ModelError::new(
                        object,
                        &annotation_field(LAST_POD_EVENT),
                        &format!("invalid time {text:?}: {e} (expected RFC 3339, e.g. 2025-06-01T12:00:00Z)"),
                    )
                })?
                .timestamp(),
        ),
    };
    let interruption = match annotations.get(INTERRUPTION) {
        None => None,
        Some(text) => Some(InterruptionKind::parse(text).ok_or_else(|| {
            ModelError::new(
                object,
                &annotation_field(INTERRUPTION),
                &format!("unknown value {text:?} (expected spot-interruption, rebalance or scheduled-change)"),
            )
        })?),
    };
    Ok(Marks {
        created: metadata.creation_timestamp.as_ref().map_or(0, |t| t.0.as_second()),
        deleting: metadata.deletion_timestamp.is_some(),
        do_not_disrupt: [DO_NOT_DISRUPT, KARPENTER_DO_NOT_DISRUPT]
            .iter()
            .any(|k| annotations.get(*k).is_some_and(|v| v == "true")),
        pool_hash: annotations.get(NODEPOOL_HASH).cloned(),
        last_pod_event,
        interruption,
    })
}

/// Ready condition True, or the `purser.dev/initialized` (or Karpenter's) label set to `"true"`.
fn node_initialized(node: &core::Node) -> bool {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let labels = node.metadata.labels.as_ref();
    let marked = [INITIALIZED, KARPENTER_INITIALIZED]
        .iter()
        .any(|k| labels.and_then(|l| l.get(*k)).is_some_and(|v| v == "true"));
    ready || marked
}

/// A PodDisruptionBudget, with the evictions it allows now over `pods` (already read).
fn read_pdb(input: &Input<'_>, pods: &[PodInfo], warnings: &mut Vec<String>) -> Result<PdbInfo, ModelError> {
    let object = &input.object;
    let pdb: policy::PodDisruptionBudget = decode(input.value, object)?;
    let spec = pdb.spec.unwrap_or_default();
    let selector = match &spec.selector {
        Some(s) => label_selector(object, "spec.selector", s)?,
        // In policy/v1 a null selector matches no pods (an empty one matches all).
        None => LabelSelector {
            requirements: vec![Requirement {
                key: "purser.dev/never".into(),
                op: Operator::In,
                values: vec![],
            }],
        },
    };
    let min_available = spec.min_available.as_ref();
    let max_unavailable = spec.max_unavailable.as_ref();
    if min_available.is_some() && max_unavailable.is_some() {
        return Err(ModelError::new(
            object,
            "spec.maxUnavailable",
            "cannot be set together with spec.minAvailable (set one of them)",
        ));
    }
    let matching: Vec<&PodInfo> = pods
        .iter()
        .filter(|p| p.namespace == input.namespace && selector.matches(&p.labels))
        .collect();
    let expected = matching.len() as i64;
    let healthy = matching.iter().filter(|p| p.node_name.is_some()).count() as i64;
    let computed = match (min_available, max_unavailable) {
        (Some(m), _) => Some(healthy - scaled(object, "spec.minAvailable", m, expected)?),
        (None, Some(m)) => Some(scaled(object, "spec.maxUnavailable", m, expected)? - (expected - healthy)),
        (None, None) => None,
    };
    let status_allowed = pdb.status.and_then(|s| s.disruptions_allowed).map(i64::from);
    let allowed = match status_allowed.or(computed) {
        Some(n) => u32::try_from(n.max(0)).unwrap_or(u32::MAX),
        None => {
            warnings.push(format!(
                "{object}: neither spec.minAvailable nor spec.maxUnavailable is set; it limits no evictions"
            ));
            u32::MAX
        }
    };
    Ok(PdbInfo {
        key: format!("{}/{}", input.namespace, input.name),
        namespace: input.namespace.clone(),
        selector,
        disruptions_allowed: allowed,
    })
}

/// An int-or-percent of `total` pods (a percent rounds up).
fn scaled(object: &str, field: &str, value: &IntOrString, total: i64) -> Result<i64, ModelError> {
    let bad = |shown: String| {
        ModelError::new(
            object,
            field,
            &format!("is {shown}; expected an integer 0 or more or a percent from 0% to 100% (e.g. \"50%\")"),
        )
    };
    match value {
        IntOrString::Int(n) if *n >= 0 => Ok(i64::from(*n)),
        IntOrString::Int(n) => Err(bad(n.to_string())),
        IntOrString::String(text) => match parse_budget_nodes(text) {
            Some(BudgetNodes::Percent(p)) => Ok((total * i64::from(p) + 99).div_euclid(100)),
            _ => Err(bad(format!("{text:?}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Offering;
    use crate::model::resources::{CPU, MEMORY};

    fn offering(zone: &str, capacity_type: CapacityType, price: f64) -> Offering {
        Offering {
            zone: zone.into(),
            capacity_type,
            price,
            price_estimated: false,
            interruption_rate: None,
        }
    }

    fn catalog() -> Catalog {
        let capacity = Resources::parse([("cpu", "8"), ("memory", "32Gi"), ("pods", "58")]).unwrap();
        let allocatable = Resources::parse([("cpu", "7910m"), ("memory", "30Gi"), ("pods", "58")]).unwrap();
        let labels = BTreeMap::from([
            (INSTANCE_TYPE.to_string(), "m6i.2xlarge".to_string()),
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            ("purser.dev/instance-family".to_string(), "m6i".to_string()),
        ]);
        Catalog {
            region: "us-east-1".into(),
            instance_types: vec![InstanceType {
                name: "m6i.2xlarge".into(),
                capacity,
                allocatable,
                labels,
                offerings: vec![
                    offering("us-east-1a", CapacityType::OnDemand, 0.384),
                    offering("us-east-1b", CapacityType::OnDemand, 0.384),
                    offering("us-east-1a", CapacityType::Spot, 0.15),
                    offering("us-east-1b", CapacityType::Spot, 0.12),
                ],
            }],
        }
    }

    fn load(yaml: &str) -> Result<Loaded, ModelError> {
        let objects = parse_documents(yaml, "test.yaml")?;
        snapshot_from_objects(&objects, &catalog())
    }

    const POOL: &str = r#"
apiVersion: purser.dev/v1
kind: NodePool
metadata: {name: general}
spec:
  weight: 10
  limits: {cpu: 1000, memory: 4000Gi, nodes: "50"}
  template:
    metadata:
      labels: {team: platform}
    spec:
      requirements:
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
        - {key: purser.dev/instance-generation, operator: Gt, values: ["5"]}
      startupTaints:
        - {key: example.com/agent-not-ready, effect: NoExecute}
"#;

    const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: ip-10-0-1-10.ec2.internal
  labels:
    node.kubernetes.io/instance-type: m6i.2xlarge
    topology.kubernetes.io/zone: us-east-1b
    karpenter.sh/capacity-type: spot
    karpenter.sh/nodepool: general
spec:
  providerID: aws:///us-east-1b/i-0abc
  taints:
    - {key: example.com/agent-not-ready, effect: NoExecute}
    - {key: node.kubernetes.io/not-ready, effect: NoSchedule}
    - {key: purser.dev/unregistered, effect: NoExecute}
    - {key: dedicated, value: ml, effect: NoSchedule}
status:
  capacity: {cpu: "8", memory: 32386544Ki, pods: "58"}
  allocatable: {cpu: 7910m, memory: 31369712Ki, pods: "58"}
"#;

    #[test]
    fn splits_documents_and_flattens_lists() {
        let text = "---\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\n\
                    apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: n}}\n\
                    - {apiVersion: v1, kind: ServiceList, items: [{apiVersion: v1, kind: Service, metadata: {name: s}}]}\n---\n";
        let docs = parse_documents(text, "x.yaml").unwrap();
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        assert_eq!(kinds, ["Pod", "Node", "Service"]);
    }

    #[test]
    fn typed_lists_fill_in_kind() {
        let json = r#"{"apiVersion":"v1","kind":"PodList","items":[{"metadata":{"name":"a"}}]}"#;
        let docs = parse_documents(json, "pods.json").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0]["kind"], "Pod");
        assert_eq!(docs[0]["apiVersion"], "v1");
    }

    #[test]
    fn reads_json_streams_and_arrays() {
        let stream = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}
{"apiVersion":"v1","kind":"Pod","metadata":{"name":"b"}}"#;
        assert_eq!(parse_documents(stream, "s.json").unwrap().len(), 2);
        let array = r#"[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"}}]"#;
        assert_eq!(parse_documents(array, "a.json").unwrap().len(), 1);
        // YAML flow style also starts with a brace.
        let flow = "{apiVersion: v1, kind: Pod, metadata: {name: a}}";
        assert_eq!(parse_documents(flow, "f.yaml").unwrap().len(), 1);
    }

    #[test]
    fn syntax_errors_name_file_and_document() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let e = parse_documents(text, "bad.yaml").unwrap_err();
        assert_eq!(e.object, "bad.yaml");
        assert_eq!(e.field, "document 2");
        let e = parse_documents("- 1\n- 2\n", "n.yaml").unwrap_err();
        assert_eq!(e.field, "document 1 item 0");
        let e = parse_documents("metadata: {name: a}\n", "k.yaml").unwrap_err();
        assert_eq!(e.field, "document 1.apiVersion");
    }

    #[test]
    fn node_reads_labels_taints_resources_and_price() {
        let loaded = load(&format!("{POOL}---{NODE}")).unwrap();
        let node = &loaded.snapshot.nodes[0];
        assert_eq!(node.pool.as_deref(), Some("general"));
        assert_eq!(node.capacity_type, Some(CapacityType::Spot));
        assert_eq!(node.labels.get(CAPACITY_TYPE).map(String::as_str), Some("spot"));
        assert_eq!(node.zone.as_deref(), Some("us-east-1b"));
        assert_eq!(node.price, Some(0.12));
        assert_eq!(
            node.taints.len(),
            1,
            "startup, not-ready and unregistered taints are dropped"
        );
        assert_eq!(node.taints[0].key, "dedicated");
        assert_eq!(node.allocatable.get(CPU), Quantity::from_milli(7910));
        assert_eq!(node.capacity.get(CPU), Quantity::from_units(8));
        assert!(!node.in_flight && !node.cordoned);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn node_without_status_takes_catalog_allocatable() {
        let yaml = r#"
apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {node.kubernetes.io/instance-type: m6i.2xlarge, topology.kubernetes.io/zone: us-east-1c}
spec: {unschedulable: true}
"#;
        let loaded = load(yaml).unwrap();
        let node = &loaded.snapshot.nodes[0];
        assert_eq!(node.allocatable.get(MEMORY), Quantity::parse("30Gi").unwrap());
        assert_eq!(node.capacity_type, Some(CapacityType::OnDemand));
        // No on-demand offering in us-east-1c: the cheapest on-demand one.
        assert_eq!(node.price, Some(0.384));
        assert!(node.cordoned);
    }

    #[test]
    fn node_of_unknown_type() {
        let with_status = r#"
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {node.kubernetes.io/instance-type: x9.huge}}
status: {allocatable: {cpu: "4", memory: 16Gi}}
"#;
        let loaded = load(with_status).unwrap();
        let node = &loaded.snapshot.nodes[0];
        assert_eq!(node.price, None);
        assert_eq!(node.allocatable.get(PODS), Quantity::from_units(DEFAULT_MAX_PODS));
        assert_eq!(
            loaded.warnings,
            ["node n1: instance type x9.huge not in the catalog; its price is unknown and counted as 0"]
        );
        let without_status =
            "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {node.kubernetes.io/instance-type: x9.huge}}\n";
        let e = load(without_status).unwrap_err();
        assert_eq!((e.object.as_str(), e.field.as_str()), ("Node n1", "status.allocatable"));
    }

    #[test]
    fn node_field_errors() {
        let bad_effect = NODE.replace("effect: NoSchedule}", "effect: Sometimes}");
        let e = load(&bad_effect).unwrap_err();
        assert_eq!(e.object, "Node ip-10-0-1-10.ec2.internal");
        assert_eq!(e.field, "spec.taints[1].effect");
        let bad_quantity = NODE.replace("cpu: 7910m", "cpu: 7910q");
        let e = load(&bad_quantity).unwrap_err();
        assert_eq!(e.field, "status.allocatable.cpu");
        let bad_type = NODE
            .replace("unschedulable", "x")
            .replace("spec:\n", "spec:\n  unschedulable: maybe\n");
        let e = load(&bad_type).unwrap_err();
        assert_eq!(e.field, "spec.unschedulable");
    }

    const CLAIM: &str = r#"
apiVersion: karpenter.sh/v1
kind: NodeClaim
metadata:
  name: general-x7k2p
  labels: {karpenter.sh/nodepool: general}
spec:
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [m6i.2xlarge]}
    - {key: topology.kubernetes.io/zone, operator: In, values: [us-east-1a]}
    - {key: karpenter.sh/capacity-type, operator: In, values: [on-demand]}
  taints:
    - {key: dedicated, value: ml, effect: NoSchedule}
  startupTaints:
    - {key: example.com/agent-not-ready, effect: NoExecute}
"#;

    #[test]
    fn claim_without_node_is_in_flight() {
        let loaded = load(&format!("{POOL}---{CLAIM}")).unwrap();
        let node = &loaded.snapshot.nodes[0];
        assert!(node.in_flight);
        assert_eq!(node.name, "general-x7k2p");
        assert_eq!(node.instance_type.as_deref(), Some("m6i.2xlarge"));
        assert_eq!(node.price, Some(0.384));
        assert_eq!(node.labels.get("team").map(String::as_str), Some("platform"));
        assert_eq!(
            node.labels.get("purser.dev/instance-family").map(String::as_str),
            Some("m6i")
        );
        assert_eq!(
            node.labels.get("karpenter.sh/capacity-type").map(String::as_str),
            Some("on-demand")
        );
        assert_eq!(node.taints.len(), 1);
        assert_eq!(node.allocatable.get(CPU), Quantity::from_milli(7910));
    }

    #[test]
    fn claim_with_node_counts_once() {
        let by_provider = format!("{CLAIM}status:\n  providerID: aws:///us-east-1b/i-0abc\n---{NODE}");
        let loaded = load(&by_provider).unwrap();
        assert_eq!(loaded.snapshot.nodes.len(), 1);
        assert!(!loaded.snapshot.nodes[0].in_flight);
        let by_name = format!("{CLAIM}status:\n  nodeName: ip-10-0-1-10.ec2.internal\n---{NODE}");
        assert_eq!(load(&by_name).unwrap().snapshot.nodes.len(), 1);
    }

    #[test]
    fn claim_of_unknown_capacity() {
        let unknown = CLAIM.replace("values: [m6i.2xlarge]", "values: [m6i.2xlarge, m6i.4xlarge]");
        let e = load(&unknown).unwrap_err();
        assert_eq!(
            (e.object.as_str(), e.field.as_str()),
            ("NodeClaim general-x7k2p", "spec.requirements")
        );
        let with_status = format!("{unknown}status:\n  allocatable: {{cpu: 15890m, memory: 60Gi, pods: 234}}\n");
        let loaded = load(&with_status).unwrap();
        assert_eq!(
            loaded.snapshot.nodes[0].allocatable.get(PODS),
            Quantity::from_units(234)
        );
        assert_eq!(loaded.snapshot.nodes[0].price, None);
        assert_eq!(loaded.warnings.len(), 1);
    }

    #[test]
    fn pool_is_validated_and_read() {
        let loaded = load(POOL).unwrap();
        let pool = &loaded.snapshot.pools[0];
        assert_eq!(pool.weight, 10);
        assert_eq!(pool.limits.get(CPU), Quantity::from_units(1000));
        assert_eq!(pool.limits.get("nodes"), Quantity::from_units(50));
        assert_eq!(pool.labels.get(NODEPOOL).map(String::as_str), Some("general"));
        assert_eq!(
            pool.labels.get("karpenter.sh/nodepool").map(String::as_str),
            Some("general")
        );
        assert_eq!(pool.startup_taints.len(), 1);
        assert_eq!(pool.requirements.0[0].key, CAPACITY_TYPE);
        assert_eq!(pool.min_on_demand_percent, 0.0);
        assert_eq!(pool.max_hourly_cost, None);
    }

    #[test]
    fn pool_errors_name_the_field() {
        let cases = [
            (
                "operator: Gt",
                "operator: Above",
                "spec.template.spec.requirements[1].operator",
            ),
            (
                "values: [\"5\"]",
                "values: [five]",
                "spec.template.spec.requirements[1].values",
            ),
            (
                "effect: NoExecute",
                "effect: Never",
                "spec.template.spec.startupTaints[0].effect",
            ),
            ("weight: 10", "weight: 0", "spec.weight"),
            ("weight: 10", "weight: 101", "spec.weight"),
            ("cpu: 1000", "cpu: lots", "spec.limits.cpu"),
            ("weight: 10", "weight: ten", "spec.weight"),
            (
                "{team: platform}",
                "{team: platform, purser.dev/instance-generation: \"4\"}",
                "spec.template.metadata.labels.purser.dev/instance-generation",
            ),
            (
                "weight: 10",
                "weight: 10\n  budget: {maxHourlyCost: -1}",
                "spec.budget.maxHourlyCost",
            ),
            (
                "weight: 10",
                "weight: 10\n  capacityMix: {minOnDemandPercent: 150}",
                "spec.capacityMix.minOnDemandPercent",
            ),
            (
                "values: [spot, on-demand]}",
                "values: [spot], minValues: 2}",
                "spec.template.spec.requirements[0].minValues",
            ),
        ];
        for (from, to, field) in cases {
            let text = POOL.replace(from, to);
            assert_ne!(text, POOL, "{from}");
            let e = load(&text).unwrap_err();
            assert_eq!(e.object, "NodePool general", "{to}");
            assert_eq!(e.field, field, "{to}: {e}");
        }
        let contradiction = POOL.replace(
            "values: [\"5\"]}",
            "values: [\"5\"]}\n        - {key: karpenter.k8s.aws/instance-generation, operator: Lt, values: [\"6\"]}",
        );
        let e = load(&contradiction).unwrap_err();
        assert!(e.message.starts_with("contradictory requirements: "), "{e}");
    }

    #[test]
    fn node_is_initialized_only_when_ready_or_labelled() {
        assert!(!load(NODE).unwrap().snapshot.nodes[0].initialized);
        let ready = format!("{NODE}  conditions: [{{type: Ready, status: \"True\"}}]\n");
        assert!(load(&ready).unwrap().snapshot.nodes[0].initialized);
        let labelled = NODE.replace(
            "    karpenter.sh/nodepool: general\n",
            "    karpenter.sh/initialized: \"true\"\n",
        );
        assert!(load(&labelled).unwrap().snapshot.nodes[0].initialized);
    }

    #[test]
    fn pool_without_disruption_takes_defaults() {
        let pool = &load(POOL).unwrap().snapshot.pools[0];
        assert_eq!(pool.disruption, DisruptionPolicy::default());
        assert_eq!(pool.template_hash.len(), 16);
    }

    #[test]
    fn template_hash_ignores_taint_order() {
        let taint = |key: &str| TaintSpec {
            key: key.into(),
            value: None,
            effect: "NoSchedule".into(),
        };
        let mut template = NodeClaimTemplate::default();
        template.spec.taints = vec![taint("a"), taint("b")];
        let hash = template_hash(&template);
        template.spec.taints.reverse();
        assert_eq!(template_hash(&template), hash);
        template.spec.taints.push(taint("c"));
        assert_ne!(template_hash(&template), hash);
    }

    #[test]
    fn int_or_percent_scales_up() {
        let scale = |v: IntOrString, total| scaled("PodDisruptionBudget a/b", "spec.minAvailable", &v, total);
        assert_eq!(scale(IntOrString::Int(3), 10), Ok(3));
        assert_eq!(scale(IntOrString::String("25%".into()), 10), Ok(3));
        assert_eq!(scale(IntOrString::String("100%".into()), 7), Ok(7));
        assert_eq!(scale(IntOrString::String("0%".into()), 7), Ok(0));
        for bad in [
            IntOrString::Int(-1),
            IntOrString::String("101%".into()),
            IntOrString::String("3".into()),
        ] {
            let e = scale(bad, 10).unwrap_err();
            assert_eq!(e.field, "spec.minAvailable");
        }
    }

    #[test]
    fn daemonset_template_becomes_a_pod() {
        let yaml = r#"
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: kube-proxy, namespace: kube-system}
spec:
  selector: {matchLabels: {k8s-app: kube-proxy}}
  template:
    metadata: {labels: {k8s-app: kube-proxy}}
    spec:
      containers:
        - name: kube-proxy
          image: kube-proxy
          resources: {requests: {cpu: 100m, memory: 128Mi}}
"#;
        let loaded = load(yaml).unwrap();
        let ds = &loaded.snapshot.daemonsets[0];
        assert_eq!(ds.key, "kube-system/kube-proxy");
        assert!(ds.template.is_daemon());
        assert_eq!(ds.template.requests.get(PODS), Quantity::from_units(1));
        let unschedulable = Taint {
            key: "node.kubernetes.io/unschedulable".into(),
            value: String::new(),
            effect: Effect::NoSchedule,
        };
        assert!(!crate::model::taints::blocks(&unschedulable, &ds.template.tolerations));
        let e = load(&yaml.replace("cpu: 100m", "cpu: 1x")).unwrap_err();
        assert_eq!(e.object, "DaemonSet kube-system/kube-proxy");
        assert_eq!(e.field, "spec.template.spec.containers[0].resources.requests.cpu");
    }

    #[test]
    fn budget_is_read() {
        let yaml = r#"
apiVersion: purser.dev/v1
kind: CostBudget
metadata: {name: team-vision}
spec:
  selector:
    namespaces: [ml]
    podSelector: {matchLabels: {team: vision}}
  maxHourlyCost: 40
"#;
        let budget = &load(yaml).unwrap().snapshot.budgets[0];
        assert_eq!(budget.max_hourly_cost, 40.0);
        assert_eq!(budget.namespaces, ["ml"]);
        assert!(
            budget
                .selector
                .as_ref()
                .is_some_and(|s| s.matches(&BTreeMap::from([("team".into(), "vision".into())])))
        );
        let e = load(&yaml.replace(
            "{matchLabels: {team: vision}}",
            "{matchExpressions: [{key: team, operator: Like}]}",
        ))
        .unwrap_err();
        assert_eq!(e.field, "spec.selector.podSelector.matchExpressions[0].operator");
    }

    #[test]
    fn skips_finished_pods_and_unknown_kinds_and_sorts() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: default}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: default}
spec: {containers: [{name: c}]}
---
apiVersion: v1
kind: Pod
metadata: {name: done, namespace: default}
spec: {containers: [{name: c}]}
status: {phase: Succeeded}
---
apiVersion: v1
kind: Service
metadata: {name: x, namespace: default}
---
apiVersion: karpenter.sh/v1beta1
kind: NodePool
metadata: {name: old}
"#;
        let loaded = load(yaml).unwrap();
        let keys: Vec<&str> = loaded.snapshot.pods.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["default/a", "default/b"]);
        assert_eq!(loaded.warnings[0], "skipped Service default/x: not an input kind");
        assert!(loaded.warnings[1].starts_with("skipped NodePool old: apiVersion karpenter.sh/v1beta1"));
    }

    #[test]
    fn duplicates_are_errors() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: [{name: c}]}\n";
        let e = load(&format!("{pod}---\n{pod}")).unwrap_err();
        assert_eq!(e.object, "Pod default/a");
        // Same name in another namespace is another pod.
        let other = pod.replace("{name: a}", "{name: a, namespace: ml}");
        assert_eq!(load(&format!("{pod}---\n{other}")).unwrap().snapshot.pods.len(), 2);
    }

    #[test]
    fn deserialization_errors_carry_the_path() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: ml}\nspec: {containers: [{name: c, ports: [{containerPort: http}]}]}\n";
        let e = load(pod).unwrap_err();
        assert_eq!(e.object, "Pod ml/a");
        assert_eq!(e.field, "spec.containers[0].ports[0].containerPort");
    }
}
