//! Reading and validating scenario files.
//!
//! In: a bundled scenario name (`streamforge`, `quickstart`) or a path to a YAML file. Out: the
//! typed [`Scenario`], the snapshot of its NodePools, CostBudgets and DaemonSets (read by the
//! same loader as `purser plan`, so the same rules apply), and the file's name; or the first
//! [`ScenarioError`], which names the file, the line and the field path (`training[0].pod.cpu`)
//! and says what was expected. Every check is listed in docs/simulate.md.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1 as core;
use serde_json::Value;

use super::scenario::{Lognormal, NodeGroup, PodShape, Scenario};
use crate::catalog::{CapacityType, Catalog};
use crate::model::daemonset::daemon_overhead;
use crate::model::labels;
use crate::model::load::{KARPENTER_API_VERSION, PURSER_API_VERSION, json_type, snapshot_from_objects};
use crate::model::quantity::Quantity;
use crate::model::requirements::Requirements;
use crate::model::resources::{CPU, MEMORY, PODS, Resources};
use crate::model::taints::{Effect, Taint};
use crate::model::{DaemonSetInfo, ModelError, Snapshot};
use crate::solver::problem::{pool_node_labels, with_offering};

/// The scenarios compiled into the binary, by name.
const BUNDLED: [(&str, &str); 2] = [
    ("streamforge", include_str!("../../scenarios/streamforge.yaml")),
    ("quickstart", include_str!("../../scenarios/quickstart.yaml")),
];

const BUNDLED_NAMES: [&str; 2] = [BUNDLED[0].0, BUNDLED[1].0];

/// Names of the bundled scenarios (`--scenario NAME`).
pub fn bundled() -> &'static [&'static str] {
    &BUNDLED_NAMES
}

/// The text of a bundled scenario.
pub fn bundled_text(name: &str) -> Option<&'static str> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// A scenario read and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The scenario as written (defaults filled in).
    pub scenario: Scenario,
    /// Its NodePools, CostBudgets and DaemonSets, validated; no pods, no nodes.
    pub snapshot: Snapshot,
    /// Where it came from: the path, or `<bundled scenarios/NAME.yaml>`.
    pub source: String,
}

/// A problem with a scenario file: where it is and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {field}: {message}", .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ScenarioError {
    /// The file (or `<bundled scenarios/NAME.yaml>`).
    pub file: String,
    /// 1-based line of the field, when it could be found in the text.
    pub line: Option<usize>,
    /// Field path, e.g. `training[0].pod.cpu` or `nodePools[1].spec.weight`.
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Read a bundled scenario by name, or a scenario file by path, and validate it.
pub fn load_scenario(name_or_path: &str, catalog: &Catalog) -> Result<Loaded, ScenarioError> {
    if let Some(text) = bundled_text(name_or_path) {
        let source = format!("<bundled scenarios/{name_or_path}.yaml>");
        return load_scenario_text(text, &source, catalog);
    }
    let text = std::fs::read_to_string(name_or_path).map_err(|e| ScenarioError {
        file: name_or_path.to_string(),
        line: None,
        field: "file".into(),
        message: format!(
            "cannot read: {e} (expected a path to a scenario file or one of the bundled scenarios: {})",
            bundled().join(", ")
        ),
    })?;
    load_scenario_text(&text, name_or_path, catalog)
}

/// Parse and validate scenario text; `source` names it in errors.
pub fn load_scenario_text(text: &str, source: &str, catalog: &Catalog) -> Result<Loaded, ScenarioError> {
    let lines = Lines::new(text);
    let fail = |path: &Path, message: String| ScenarioError {
        file: source.to_string(),
        line: lines.locate(&path.0),
        field: path.to_string(),
        message,
    };
    let scenario = parse(text, source, &lines)?;
    let checker = Checker { catalog };
    checker
        .scenario(&scenario)
        .map_err(|(path, message)| fail(&path, message))?;
    let snapshot = checker
        .objects(&scenario)
        .map_err(|(path, message)| fail(&path, message))?;
    checker
        .fits(&scenario, &snapshot)
        .map_err(|(path, message)| fail(&path, message))?;
    Ok(Loaded {
        scenario,
        snapshot,
        source: source.to_string(),
    })
}

// === Parsing ===

fn parse(text: &str, source: &str, lines: &Lines) -> Result<Scenario, ScenarioError> {
    let deserializer = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize::<_, Scenario>(deserializer).map_err(|e| {
        let path = Path::from_serde(e.path());
        let inner = e.into_inner();
        let line = inner.location().map(|l| l.line()).or_else(|| lines.locate(&path.0));
        let mut message = inner.to_string();
        // serde_norway appends the position and prefixes its own path; both are reported
        // apart, so drop them (a libyaml message that names two positions is kept whole).
        if let Some(at) = message.rfind(" at line ")
            && message.matches(" at line ").count() == 1
            && message[at + " at line ".len()..]
                .split(" column ")
                .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        {
            message.truncate(at);
        }
        let shown = path.to_string();
        if let Some((head, rest)) = message.split_once(": ")
            && !head.is_empty()
            && shown.starts_with(head)
        {
            message = rest.to_string();
        }
        let field = if path.0.is_empty() {
            "(document)".to_string()
        } else {
            path.to_string()
        };
        ScenarioError {
            file: source.to_string(),
            line,
            field,
            message: expectation(message),
        }
    })
}

/// Say what to do about a missing field (serde already lists the expected fields of an
/// unknown one and the expected type of a wrong one).
fn expectation(message: String) -> String {
    if message.starts_with("missing field") {
        format!("{message} (expected it to be set: it has no default)")
    } else {
        message
    }
}

// === Field paths ===

/// One step of a field path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A field path such as `training[0].pod.cpu`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Path(Vec<Seg>);

impl Path {
    fn key(&self, key: &str) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Key(key.to_string()));
        p
    }

    fn index(&self, index: usize) -> Path {
        let mut p = self.clone();
        p.0.push(Seg::Index(index));
        p
    }

    fn from_serde(path: &serde_path_to_error::Path) -> Path {
        Path::default().with_serde(path)
    }

    /// Append a serde path.
    fn with_serde(&self, path: &serde_path_to_error::Path) -> Path {
        use serde_path_to_error::Segment;
        let mut p = self.clone();
        p.0.extend(path.iter().filter_map(|s| match s {
            Segment::Seq { index } => Some(Seg::Index(*index)),
            Segment::Map { key } => Some(Seg::Key(key.clone())),
            Segment::Enum { variant } => Some(Seg::Key(variant.clone())),
            Segment::Unknown => None,
        }));
        p
    }

    /// Append a dotted field of a Kubernetes object (`spec.limits[0].cpu`).
    fn join_dotted(&self, field: &str) -> Path {
        let mut p = self.clone();
        for part in field.split('.').filter(|s| !s.is_empty()) {
            let (name, mut rest) = match part.find('[') {
                Some(i) => part.split_at(i),
                None => (part, ""),
            };
            if !name.is_empty() {
                p.0.push(Seg::Key(name.to_string()));
            }
            while let Some(close) = rest.find(']') {
                match rest[1..close].parse() {
                    Ok(i) => p.0.push(Seg::Index(i)),
                    Err(_) => p.0.push(Seg::Key(rest[1..close].to_string())),
                }
                rest = &rest[close + 1..];
            }
        }
        p
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

// === Finding a field's line in the text ===

/// One logical line: a physical line, or the part after a `- ` sequence marker.
#[derive(Debug)]
struct VLine {
    line: usize,
    indent: usize,
    text: String,
    dash: bool,
}

/// The YAML text as logical lines, for a best-effort search of a path's line.
struct Lines(Vec<VLine>);

impl Lines {
    fn new(text: &str) -> Lines {
        let mut out = Vec::new();
        let mut block: Option<usize> = None;
        for (n, raw) in text.lines().enumerate() {
            let content = strip_comment(raw);
            let trimmed = content.trim_start();
            if trimmed.trim_end().is_empty() {
                continue;
            }
            let indent = content.len() - trimmed.len();
            if let Some(b) = block {
                if indent > b {
                    continue;
                }
                block = None;
            }
            if indent == 0 && (trimmed.starts_with("---") || trimmed.starts_with("...")) {
                continue;
            }
            let start = out.len();
            push_vlines(&mut out, n + 1, indent, trimmed.trim_end());
            // A block scalar (`key: |`) runs while lines are indented deeper than its key.
            if let Some(last) = out[start..].last()
                && let Some((_, value)) = split_key(&last.text)
                && (value.starts_with('|') || value.starts_with('>'))
            {
                block = Some(last.indent);
            }
        }
        Lines(out)
    }

    /// The line of the deepest part of `path` found in the text.
    fn locate(&self, path: &[Seg]) -> Option<usize> {
        let v = &self.0;
        let (mut lo, mut hi) = (0, v.len());
        let mut best = None;
        let mut i = 0;
        while i < path.len() && lo < hi {
            let indent = v[lo..hi].iter().map(|l| l.indent).min()?;
            match &path[i] {
                Seg::Key(_) => {
                    // Label keys contain dots: try the longest run of keys first.
                    let run = path[i..].iter().take_while(|s| matches!(s, Seg::Key(_))).count();
                    let found = (1..=run).rev().find_map(|len| {
                        let key = path[i..i + len]
                            .iter()
                            .filter_map(|s| match s {
                                Seg::Key(k) => Some(k.as_str()),
                                Seg::Index(_) => None,
                            })
                            .collect::<Vec<_>>()
                            .join(".");
                        (lo..hi)
                            .find(|&j| {
                                v[j].indent == indent
                                    && !v[j].dash
                                    && split_key(&v[j].text).is_some_and(|(k, _)| k == key)
                            })
                            .map(|j| (j, len))
                    });
                    let Some((j, len)) = found else { return best };
                    best = Some(v[j].line);
                    i += len;
                    let value = split_key(&v[j].text).map(|(_, value)| value).unwrap_or_default();
                    if !value.is_empty() {
                        // A scalar or flow collection on the same line: nothing deeper to find.
                        return best;
                    }
                    let end = (j + 1..hi)
                        .find(|&k| v[k].indent < indent || (v[k].indent == indent && !v[k].dash))
                        .unwrap_or(hi);
                    (lo, hi) = (j + 1, end);
                }
                Seg::Index(n) => {
                    let Some(j) = (lo..hi).filter(|&j| v[j].indent == indent && v[j].dash).nth(*n) else {
                        return best;
                    };
                    best = Some(v[j].line);
                    i += 1;
                    let end = (j + 1..hi).find(|&k| v[k].indent <= indent).unwrap_or(hi);
                    (lo, hi) = (j + 1, end);
                }
            }
        }
        best
    }
}

fn push_vlines(out: &mut Vec<VLine>, line: usize, indent: usize, text: &str) {
    if text == "-" || text.starts_with("- ") {
        out.push(VLine {
            line,
            indent,
            text: "-".into(),
            dash: true,
        });
        let rest = &text[1..];
        let inner = rest.trim_start();
        if !inner.is_empty() {
            push_vlines(out, line, indent + 1 + (rest.len() - inner.len()), inner);
        }
    } else {
        out.push(VLine {
            line,
            indent,
            text: text.to_string(),
            dash: false,
        });
    }
}

/// The line without a trailing `# comment` (outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

/// `key: value` split into the key (unquoted) and the value (trimmed); None for other lines.
fn split_key(text: &str) -> Option<(&str, &str)> {
    if text.starts_with('{') || text.starts_with('[') {
        return None;
    }
    let (key, rest) = if let Some(q @ ('"' | '\'')) = text.chars().next() {
        let close = text[1..].find(q)? + 1;
        (&text[1..close], text[close + 1..].trim_start())
    } else {
        let colon = text.match_indices(':').find(|(i, _)| {
            let after = &text[i + 1..];
            after.is_empty() || after.starts_with(' ') || after.starts_with('\t')
        })?;
        (text[..colon.0].trim_end(), &text[colon.0..])
    };
    let value = rest.strip_prefix(':')?.trim();
    Some((key, value))
}

// === Semantic checks ===

type Failure = (Path, String);

struct Checker<'a> {
    catalog: &'a Catalog,
}

fn root(key: &str) -> Path {
    Path::default().key(key)
}

fn finite(path: &Path, value: f64, ok: bool, expected: &str) -> Result<(), Failure> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        Err((path.clone(), format!("is {value}; expected {expected}")))
    }
}

fn positive(path: &Path, value: f64, what: &str) -> Result<(), Failure> {
    finite(
        path,
        value,
        value > 0.0,
        &format!("a finite number of {what} greater than 0"),
    )
}

fn non_negative(path: &Path, value: f64, what: &str) -> Result<(), Failure> {
    finite(
        path,
        value,
        value >= 0.0,
        &format!("a finite number of {what}, 0 or more"),
    )
}

fn fraction(path: &Path, value: f64, lowest_open: bool) -> Result<(), Failure> {
    if lowest_open {
        finite(
            path,
            value,
            value > 0.0 && value <= 1.0,
            "a fraction greater than 0 and at most 1",
        )
    } else {
        finite(path, value, (0.0..=1.0).contains(&value), "a fraction from 0 to 1")
    }
}

fn ratio(path: &Path, value: f64) -> Result<(), Failure> {
    finite(path, value, value >= 1.0, "a peak ÷ trough ratio of 1 (flat) or more")
}

/// An RFC 1123 label: lowercase letters, digits and `-`, starting and ending with a letter or digit.
fn dns_label(path: &Path, value: &str) -> Result<(), Failure> {
    let ok = !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err((
            path.clone(),
            format!(
                "is {value:?}; expected a name of lowercase letters, digits and '-' (at most 63, not starting or ending with '-')"
            ),
        ))
    }
}

fn non_empty(path: &Path, value: &str) -> Result<(), Failure> {
    if value.trim().is_empty() {
        Err((path.clone(), "is empty; expected a non-empty string".into()))
    } else {
        Ok(())
    }
}

fn quantity(path: &Path, text: &str) -> Result<Quantity, Failure> {
    let q = Quantity::parse(text).map_err(|e| (path.clone(), e.to_string()))?;
    if q < Quantity::ZERO {
        return Err((path.clone(), format!("is {text}; expected a quantity of 0 or more")));
    }
    Ok(q)
}

/// Parse a `{key, value, effect}` taint.
fn taint(path: &Path, value: &Value) -> Result<Taint, Failure> {
    let t: core::Taint =
        serde_path_to_error::deserialize(value).map_err(|e| (path.with_serde(e.path()), e.into_inner().to_string()))?;
    if t.key.is_empty() {
        return Err((path.key("key"), "is empty; expected a taint key".into()));
    }
    let effect = Effect::parse(&t.effect).ok_or_else(|| {
        (
            path.key("effect"),
            format!(
                "unknown effect {:?} (expected NoSchedule, PreferNoSchedule or NoExecute)",
                t.effect
            ),
        )
    })?;
    Ok(Taint {
        key: t.key,
        value: t.value.unwrap_or_default(),
        effect,
    })
}

/// A validated pod shape: its requests and node selector.
struct Shape {
    requests: Resources,
    selector: Requirements,
    spot: bool,
}

impl Shape {
    fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .requests
            .0
            .iter()
            .filter(|(k, q)| k.as_str() != PODS && !q.is_zero())
            .map(|(k, q)| {
                if k == MEMORY {
                    format!("{k} {:.1}Gi", q.as_f64() / (1u64 << 30) as f64)
                } else {
                    format!("{k} {q}")
                }
            })
            .collect();
        if parts.is_empty() {
            parts.push("no resources".into());
        }
        let mut text = format!("requests {}", parts.join(", "));
        if !self.spot {
            text.push_str(", on-demand only (spot: false)");
        }
        if !self.selector.0.is_empty() {
            let sel: Vec<String> = self.selector.0.iter().map(ToString::to_string).collect();
            text.push_str(&format!(", nodeSelector {}", sel.join(", ")));
        }
        text
    }

    /// Does a node with these labels and free resources take the pod (taints ignored)?
    fn fits(&self, labels: &BTreeMap<String, String>, capacity_type: CapacityType, free: &Resources) -> bool {
        (self.spot || capacity_type == CapacityType::OnDemand)
            && self.selector.matches(labels)
            && self.requests.fits_in(free)
    }
}

impl Checker<'_> {
    /// Numbers, names, quantities, tolerations and node groups.
    fn scenario(&self, s: &Scenario) -> Result<(), Failure> {
        non_empty(&root("name"), &s.name)?;
        positive(&root("durationHours"), s.duration_hours, "hours")?;

        let ca = root("clusterAutoscaler");
        fraction(
            &ca.key("scaleDownUtilizationThreshold"),
            s.cluster_autoscaler.scale_down_utilization_threshold,
            false,
        )?;
        non_negative(
            &ca.key("scaleDownUnneededMinutes"),
            s.cluster_autoscaler.scale_down_unneeded_minutes,
            "minutes",
        )?;
        if s.cluster_autoscaler.node_groups.is_empty() {
            return Err((
                ca.key("nodeGroups"),
                "is empty; expected at least one node group (the cluster-autoscaler policy scales them)".into(),
            ));
        }
        let mut groups = BTreeMap::new();
        for (i, g) in s.cluster_autoscaler.node_groups.iter().enumerate() {
            let at = ca.key("nodeGroups").index(i);
            dns_label(&at.key("name"), &g.name)?;
            if let Some(first) = groups.insert(g.name.as_str(), i) {
                return Err((
                    at.key("name"),
                    format!(
                        "{:?} is also the name of nodeGroups[{first}]; expected unique names",
                        g.name
                    ),
                ));
            }
            self.node_group(&at, g)?;
        }

        let mut names: BTreeMap<String, Path> = BTreeMap::new();
        let mut unique = |at: &Path, name: &str| -> Result<(), Failure> {
            dns_label(&at.key("name"), name)?;
            if let Some(first) = names.insert(name.to_string(), at.clone()) {
                return Err((
                    at.key("name"),
                    format!("{name:?} is also the name of {first}; expected unique workload names"),
                ));
            }
            Ok(())
        };
        for (i, t) in s.training.iter().enumerate() {
            let at = root("training").index(i);
            unique(&at, &t.name)?;
            self.owner(&at, &t.team, &t.namespace)?;
            non_negative(&at.key("jobsPerDay"), t.jobs_per_day, "jobs per day")?;
            ratio(&at.key("diurnalPeakToTrough"), t.diurnal_peak_to_trough)?;
            self.pod(&at.key("pod"), &t.pod)?;
            lognormal(&at.key("duration"), &t.duration)?;
            positive(&at.key("checkpointMinutes"), t.checkpoint_minutes, "minutes")?;
            fraction(&at.key("gpuBusy"), t.gpu_busy, false)?;
        }
        for (i, inf) in s.inference.iter().enumerate() {
            let at = root("inference").index(i);
            unique(&at, &inf.name)?;
            self.owner(&at, &inf.team, &inf.namespace)?;
            self.pod(&at.key("pod"), &inf.pod)?;
            non_negative(&at.key("meanRps"), inf.mean_rps, "requests per second")?;
            ratio(&at.key("diurnalPeakToTrough"), inf.diurnal_peak_to_trough)?;
            non_negative(&at.key("burstiness"), inf.burstiness, "(a coefficient of variation)")?;
            positive(&at.key("replicaRps"), inf.replica_rps, "requests per second")?;
            positive(&at.key("serviceMs"), inf.service_ms, "milliseconds")?;
            positive(&at.key("sloP95Ms"), inf.slo_p95_ms, "milliseconds")?;
            fraction(&at.key("targetUtilization"), inf.target_utilization, true)?;
            if inf.max_replicas == 0 {
                return Err((at.key("maxReplicas"), "is 0; expected at least 1".into()));
            }
            if inf.max_replicas < inf.min_replicas {
                return Err((
                    at.key("maxReplicas"),
                    format!(
                        "is {}, below minReplicas {}; expected maxReplicas ≥ minReplicas",
                        inf.max_replicas, inf.min_replicas
                    ),
                ));
            }
        }
        for (i, b) in s.batch.iter().enumerate() {
            let at = root("batch").index(i);
            unique(&at, &b.name)?;
            self.owner(&at, &b.team, &b.namespace)?;
            non_negative(&at.key("jobsPerDay"), b.jobs_per_day, "jobs per day")?;
            if b.pods_per_job == 0 {
                return Err((at.key("podsPerJob"), "is 0; expected at least 1".into()));
            }
            self.pod(&at.key("pod"), &b.pod)?;
            lognormal(&at.key("duration"), &b.duration)?;
        }
        for (i, n) in s.notebooks.iter().enumerate() {
            let at = root("notebooks").index(i);
            unique(&at, &n.name)?;
            self.owner(&at, &n.team, &n.namespace)?;
            self.pod(&at.key("pod"), &n.pod)?;
            non_negative(&at.key("startHour"), n.start_hour, "hours")?;
            if let Some(h) = n.hours {
                positive(&at.key("hours"), h, "hours")?;
            }
        }
        Ok(())
    }

    fn owner(&self, at: &Path, team: &str, namespace: &str) -> Result<(), Failure> {
        non_empty(&at.key("team"), team)?;
        dns_label(&at.key("namespace"), namespace)
    }

    fn node_group(&self, at: &Path, g: &NodeGroup) -> Result<(), Failure> {
        let Some(it) = self.catalog.find(&g.instance_type) else {
            let family = g.instance_type.split('.').next().unwrap_or_default();
            let same: Vec<&str> = self
                .catalog
                .instance_types
                .iter()
                .filter(|t| t.name.split('.').next() == Some(family))
                .map(|t| t.name.as_str())
                .collect();
            let expected = if same.is_empty() {
                "an instance type name such as m5.4xlarge".to_string()
            } else {
                format!("one of {}", same.join(", "))
            };
            return Err((
                at.key("instanceType"),
                format!(
                    "{:?} is not in the catalog ({}, {} instance types); expected {expected}",
                    g.instance_type,
                    self.catalog.region,
                    self.catalog.instance_types.len()
                ),
            ));
        };
        let Some(ct) = CapacityType::parse(&g.capacity_type) else {
            return Err((
                at.key("capacityType"),
                format!("is {:?}; expected on-demand or spot", g.capacity_type),
            ));
        };
        let known: BTreeSet<&str> = self
            .catalog
            .instance_types
            .iter()
            .flat_map(|t| t.offerings.iter().map(|o| o.zone.as_str()))
            .collect();
        for (z, zone) in g.zones.iter().enumerate() {
            if !known.contains(zone.as_str()) {
                let list: Vec<&str> = known.iter().copied().collect();
                return Err((
                    at.key("zones").index(z),
                    format!(
                        "{zone:?} is not a zone of the catalog; expected one of {}",
                        list.join(", ")
                    ),
                ));
            }
        }
        let offered: Vec<&str> = it
            .offerings
            .iter()
            .filter(|o| o.capacity_type == ct)
            .map(|o| o.zone.as_str())
            .collect();
        if !offered
            .iter()
            .any(|z| g.zones.is_empty() || g.zones.iter().any(|g| g == z))
        {
            let field = if g.zones.is_empty() { "capacityType" } else { "zones" };
            let where_ = if g.zones.is_empty() {
                "any zone".to_string()
            } else {
                g.zones.join(", ")
            };
            let expected = if offered.is_empty() {
                format!("{} is not sold as {ct} at all", it.name)
            } else {
                format!("expected a zone among {}", offered.join(", "))
            };
            return Err((
                at.key(field),
                format!("{} has no {ct} offering in {where_}; {expected}", it.name),
            ));
        }
        for (t, value) in g.taints.iter().enumerate() {
            taint(&at.key("taints").index(t), value)?;
        }
        Ok(())
    }

    fn pod(&self, at: &Path, pod: &PodShape) -> Result<Shape, Failure> {
        let cpu = quantity(&at.key("cpu"), &pod.cpu)?;
        let memory = quantity(&at.key("memory"), &pod.memory)?;
        non_empty(&at.key("gpuResource"), &pod.gpu_resource)?;
        let mut requests = Resources::new()
            .with(CPU, cpu)
            .with(MEMORY, memory)
            .with(PODS, Quantity::from_units(1));
        if pod.gpus > 0 {
            requests.set(&pod.gpu_resource, Quantity::from_units(pod.gpus as i64));
        }
        for (key, value) in &pod.node_selector {
            if key.is_empty() {
                return Err((at.key("nodeSelector"), format!("has an empty key (value {value:?})")));
            }
        }
        let tolerations: Vec<core::Toleration> = pod
            .tolerations
            .iter()
            .enumerate()
            .map(|(i, v)| {
                serde_path_to_error::deserialize(v).map_err(|e| {
                    (
                        at.key("tolerations").index(i).with_serde(e.path()),
                        e.into_inner().to_string(),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        crate::model::pod::tolerations("", &tolerations).map_err(|e| {
            // The model names `spec.tolerations[i].part`; keep `[i].part`.
            let field = e.field.trim_start_matches("spec.tolerations");
            (at.key("tolerations").join_dotted(field), e.message)
        })?;
        Ok(Shape {
            requests,
            selector: Requirements::from_selector(&pod.node_selector),
            spot: pod.spot,
        })
    }

    /// Read the embedded Kubernetes objects with the model's loader.
    fn objects(&self, s: &Scenario) -> Result<Snapshot, Failure> {
        let lists: [(&str, &[Value], &str, &[&str]); 3] = [
            (
                "nodePools",
                &s.node_pools,
                "NodePool",
                &[PURSER_API_VERSION, KARPENTER_API_VERSION],
            ),
            ("costBudgets", &s.cost_budgets, "CostBudget", &[PURSER_API_VERSION]),
            ("daemonSets", &s.daemon_sets, "DaemonSet", &["apps/v1"]),
        ];
        if s.node_pools.is_empty() {
            return Err((
                root("nodePools"),
                "is empty; expected at least one NodePool (the purser and karpenter policies launch nodes from them)"
                    .into(),
            ));
        }
        let mut all = Vec::new();
        let mut places = Vec::new();
        for (list, values, kind, versions) in lists {
            for (i, value) in values.iter().enumerate() {
                let at = root(list).index(i);
                if !value.is_object() {
                    return Err((
                        at,
                        format!("expected a {kind} object (a mapping), found {}", json_type(value)),
                    ));
                }
                match value.get("apiVersion").and_then(Value::as_str) {
                    Some(v) if versions.contains(&v) => {}
                    other => {
                        return Err((
                            at.key("apiVersion"),
                            format!("is {other:?}; expected {}", versions.join(" or ")),
                        ));
                    }
                }
                match value.get("kind").and_then(Value::as_str) {
                    Some(k) if k == kind => {}
                    other => return Err((at.key("kind"), format!("is {other:?}; expected {kind}"))),
                }
                // Each object alone first, so an error names its list and index.
                let alone = snapshot_from_objects(std::slice::from_ref(value), self.catalog)
                    .map_err(|e| model_failure(&at, &e))?;
                // What `purser plan` only warns about (a capacity type nothing offers) is a
                // mistake in a hand-written scenario.
                if let Some(warning) = alone.warnings.first() {
                    return Err((warning_field(&at, value), warning.clone()));
                }
                all.push(value.clone());
                places.push(at);
            }
        }
        let loaded = snapshot_from_objects(&all, self.catalog).map_err(|e| {
            // Only cross-object errors remain (duplicate names): the later object is at fault.
            let at = all
                .iter()
                .zip(&places)
                .rev()
                .find(|(v, _)| e.object.ends_with(&format!(" {}", display_key(v))))
                .map(|(_, at)| at.clone())
                .unwrap_or_default();
            model_failure(&at, &e)
        })?;
        let mut snapshot = loaded.snapshot;
        snapshot.pods.clear();
        snapshot.nodes.clear();
        snapshot.pdbs.clear();
        self.pools_satisfiable(s, &snapshot)?;
        Ok(snapshot)
    }

    /// Every NodePool can launch at least one instance type of the catalog.
    fn pools_satisfiable(&self, s: &Scenario, snapshot: &Snapshot) -> Result<(), Failure> {
        for pool in &snapshot.pools {
            if self.pool_offerings(pool, &snapshot.daemonsets).next().is_none() {
                let index = s
                    .node_pools
                    .iter()
                    .position(|v| v.pointer("/metadata/name").and_then(Value::as_str) == Some(pool.name.as_str()))
                    .unwrap_or_default();
                let reqs: Vec<String> = pool.requirements.0.iter().map(ToString::to_string).collect();
                return Err((
                    root("nodePools")
                        .index(index)
                        .join_dotted("spec.template.spec.requirements"),
                    format!(
                        "NodePool {}: no instance type of the catalog ({}) satisfies [{}] (with room for the DaemonSets); expected requirements that some instance type and offering meet",
                        pool.name,
                        self.catalog.region,
                        reqs.join("; ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The offerings a pool can launch: (labels, capacity type, allocatable left after DaemonSets).
    fn pool_offerings<'p>(
        &'p self,
        pool: &'p crate::model::Pool,
        daemonsets: &'p [DaemonSetInfo],
    ) -> impl Iterator<Item = (BTreeMap<String, String>, CapacityType, Resources)> + 'p {
        self.catalog.instance_types.iter().flat_map(move |it| {
            let base = pool_node_labels(pool, it, &self.catalog.region);
            it.offerings.iter().filter_map(move |o| {
                let labels = with_offering(base.clone(), &o.zone, o.capacity_type);
                if !pool.requirements.matches(&labels) {
                    return None;
                }
                let free = it
                    .allocatable
                    .minus(&daemon_overhead(daemonsets, &labels, &pool.taints));
                if free.0.values().any(|q| *q < Quantity::ZERO) {
                    return None;
                }
                Some((labels, o.capacity_type, free))
            })
        })
    }

    /// Every workload's pod fits some NodePool, and some Cluster Autoscaler node group.
    fn fits(&self, s: &Scenario, snapshot: &Snapshot) -> Result<(), Failure> {
        let mut pools: Vec<Vec<NodeShape>> = Vec::new();
        for pool in &snapshot.pools {
            // Several offerings of a type in one pool differ only in zone: keep one per label set.
            let mut seen = BTreeSet::new();
            let kept = self
                .pool_offerings(pool, &snapshot.daemonsets)
                .filter(|(labels, ct, free)| seen.insert((labels.clone(), *ct, free.clone())))
                .collect();
            pools.push(kept);
        }
        let groups = self.group_nodes(s, &snapshot.daemonsets);
        let workloads = s
            .training
            .iter()
            .enumerate()
            .map(|(i, w)| (root("training").index(i), &w.name, &w.pod))
            .chain(
                s.inference
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (root("inference").index(i), &w.name, &w.pod)),
            )
            .chain(
                s.batch
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (root("batch").index(i), &w.name, &w.pod)),
            )
            .chain(
                s.notebooks
                    .iter()
                    .enumerate()
                    .map(|(i, w)| (root("notebooks").index(i), &w.name, &w.pod)),
            );
        for (at, name, pod) in workloads {
            let at = at.key("pod");
            let shape = self.pod(&at, pod)?;
            let in_pool = pools
                .iter()
                .any(|kept| kept.iter().any(|(labels, ct, free)| shape.fits(labels, *ct, free)));
            if !in_pool {
                let names: Vec<&str> = snapshot.pools.iter().map(|p| p.name.as_str()).collect();
                return Err((
                    at,
                    format!(
                        "workload {name}: the pod fits no NodePool ({}): {}; expected a pod that some instance type a NodePool can launch takes (taints aside)",
                        names.join(", "),
                        shape.describe()
                    ),
                ));
            }
            let in_group = groups.iter().any(|(labels, ct, free)| shape.fits(labels, *ct, free));
            if !in_group {
                let names: Vec<&str> = s
                    .cluster_autoscaler
                    .node_groups
                    .iter()
                    .map(|g| g.name.as_str())
                    .collect();
                return Err((
                    at,
                    format!(
                        "workload {name}: the pod fits no clusterAutoscaler node group ({}): {}; expected a pod that some node group's instance type takes (taints aside)",
                        names.join(", "),
                        shape.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The nodes each Cluster Autoscaler node group can launch (one per offering zone).
    fn group_nodes(
        &self,
        s: &Scenario,
        daemonsets: &[DaemonSetInfo],
    ) -> Vec<(BTreeMap<String, String>, CapacityType, Resources)> {
        let mut out = Vec::new();
        for g in &s.cluster_autoscaler.node_groups {
            let (Some(it), Some(ct)) = (
                self.catalog.find(&g.instance_type),
                CapacityType::parse(&g.capacity_type),
            ) else {
                continue;
            };
            let taints: Vec<Taint> = g
                .taints
                .iter()
                .filter_map(|v| taint(&Path::default(), v).ok())
                .collect();
            for o in it
                .offerings
                .iter()
                .filter(|o| o.capacity_type == ct && (g.zones.is_empty() || g.zones.contains(&o.zone)))
            {
                let mut base = it.labels.clone();
                base.extend(g.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                base.insert(labels::INSTANCE_TYPE.into(), it.name.clone());
                if !self.catalog.region.is_empty() {
                    base.insert(labels::REGION.into(), self.catalog.region.clone());
                }
                let node_labels = labels::normalize(&with_offering(base, &o.zone, ct));
                let free = it
                    .allocatable
                    .minus(&daemon_overhead(daemonsets, &node_labels, &taints));
                out.push((node_labels, ct, free));
            }
        }
        out
    }
}

fn lognormal(at: &Path, d: &Lognormal) -> Result<(), Failure> {
    positive(&at.key("medianMinutes"), d.median_minutes, "minutes")?;
    non_negative(&at.key("sigma"), d.sigma, "(the sigma of the log)")
}

/// `name` or `namespace/name`, as the model's object names end.
fn display_key(value: &Value) -> String {
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (
        value.get("kind").and_then(Value::as_str),
        value.pointer("/metadata/namespace"),
    ) {
        (Some("DaemonSet"), ns) => format!("{}/{name}", ns.and_then(Value::as_str).unwrap_or("default")),
        _ => name.to_string(),
    }
}

/// Where a loader warning about the object at `at` points: its capacity-type requirement.
fn warning_field(at: &Path, value: &Value) -> Path {
    let requirements = value
        .pointer("/spec/template/spec/requirements")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match requirements.iter().position(|r| {
        r.get("key")
            .and_then(Value::as_str)
            .is_some_and(|k| labels::canonical_key(k) == labels::CAPACITY_TYPE)
    }) {
        Some(i) => at.join_dotted(&format!("spec.template.spec.requirements[{i}].values")),
        None => at.clone(),
    }
}

/// A model error inside the object at `at`: the path goes on into the object's field.
fn model_failure(at: &Path, e: &ModelError) -> Failure {
    let field = match e.field.as_str() {
        "object" => at.clone(),
        f => at.join_dotted(f),
    };
    (field, format!("{}: {}", e.object, e.message))
}

/// A node a pool can launch: its labels, capacity type and allocatable after DaemonSets.
type NodeShape = (BTreeMap<String, String>, CapacityType, Resources);

#[cfg(test)]
mod tests {
    use super::*;

    fn path(text: &str) -> Vec<Seg> {
        Path::default().join_dotted(text).0
    }

    const YAML: &str = r#"name: x   # a comment
clusterAutoscaler:
  nodeGroups:
  - name: a
    instanceType: m5.large
    taints:
      - {key: k, effect: NoSchedule}
  - name: b
    instanceType: "c5.large"
nodePools:
  - apiVersion: purser.dev/v1
    kind: NodePool
    metadata: {name: p}
    spec:
      template:
        metadata:
          labels:
            purser.dev/team: ml
        spec:
          requirements:
            - key: purser.dev/instance-family
              operator: In
              values: [m5]
description: |
  name: not a key
training: []
"#;

    #[test]
    fn locates_keys_indices_and_dotted_labels() {
        let lines = Lines::new(YAML);
        assert_eq!(lines.locate(&path("name")), Some(1));
        assert_eq!(
            lines.locate(&path("clusterAutoscaler.nodeGroups[1].instanceType")),
            Some(9)
        );
        assert_eq!(
            lines.locate(&path("clusterAutoscaler.nodeGroups[0].taints[0].effect")),
            Some(7)
        );
        assert_eq!(lines.locate(&path("clusterAutoscaler.nodeGroups[0].maxNodes")), Some(4));
        assert_eq!(
            lines.locate(&path("nodePools[0].spec.template.metadata.labels.purser.dev/team")),
            Some(18)
        );
        assert_eq!(
            lines.locate(&path("nodePools[0].spec.template.spec.requirements[0].values")),
            Some(23)
        );
        assert_eq!(lines.locate(&path("nodePools[0].metadata.name")), Some(13));
        assert_eq!(lines.locate(&path("training")), Some(26));
        assert_eq!(lines.locate(&path("missing")), None);
    }

    #[test]
    fn paths_print_as_written() {
        let p = root("training").index(0).key("pod").key("cpu");
        assert_eq!(p.to_string(), "training[0].pod.cpu");
        assert_eq!(
            root("nodePools")
                .index(1)
                .join_dotted("spec.disruption.budgets[0].nodes")
                .to_string(),
            "nodePools[1].spec.disruption.budgets[0].nodes"
        );
    }

    #[test]
    fn comments_and_keys() {
        assert_eq!(strip_comment("a: 'x # y' # z"), "a: 'x # y' ");
        assert_eq!(split_key("a: b: c"), Some(("a", "b: c")));
        assert_eq!(split_key("\"a.b\": 1"), Some(("a.b", "1")));
        assert_eq!(split_key("image: repo:tag"), Some(("image", "repo:tag")));
        assert_eq!(split_key("{a: 1}"), None);
    }
}
