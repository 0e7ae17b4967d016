//! Admission policies for pods, as data: each is on or off, enforced or dry-run (warn), and
//! skipped for a pod that carries the exception label. Pure: the caller supplies the pod, its
//! namespace's labels, the budgets with their current run-rates, and the pod's estimated
//! hourly cost.
//!
//! In: a [`Policies`] configuration and a [`Review`]. Out: a [`Verdict`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Budget;
use crate::model::labels::CAPACITY_TYPE;
use crate::model::pod::PodInfo;
use crate::model::requirements::Requirements;

/// The label that exempts a pod from every policy (value `"true"`).
pub const EXCEPTION_LABEL: &str = "purser.dev/cost-exception";

/// Enforce (deny) or dry-run (allow with a warning).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mode {
    /// Deny the pod.
    #[default]
    Enforce,
    /// Allow the pod with a warning.
    Warn,
}

/// Which namespaces a policy judges: listed names and/or namespaces with all these labels;
/// both empty means every namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Namespaces {
    /// Namespace names.
    #[serde(default)]
    pub names: Vec<String>,
    /// Namespace labels that must all match.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

impl Namespaces {
    /// Whether a namespace named `name` with `labels` is selected.
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        if self.names.is_empty() && self.match_labels.is_empty() {
            return true;
        }
        self.names.iter().any(|n| n == name)
            || (!self.match_labels.is_empty() && self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
    }
}

/// Require a cost-allocation label on pods.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequireLabel {
    /// On or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Enforce or warn.
    #[serde(default)]
    pub mode: Mode,
    /// The label key pods must carry with a non-empty value.
    #[serde(default = "cost_centre")]
    pub key: String,
    /// Namespaces judged.
    #[serde(default)]
    pub namespaces: Namespaces,
}

/// Deny a pod whose estimated cost would take a CostBudget over its hourly cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BudgetCheck {
    /// On or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Enforce or warn.
    #[serde(default)]
    pub mode: Mode,
}

/// Cap the accelerators one pod may request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MaxGpus {
    /// On or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Enforce or warn.
    #[serde(default)]
    pub mode: Mode,
    /// Most accelerators (GPUs, MIG slices, Neuron devices) per pod.
    #[serde(default = "four")]
    pub max: u32,
    /// Namespaces judged.
    #[serde(default)]
    pub namespaces: Namespaces,
}

/// Require spot capacity for pods in namespaces marked dev.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DevSpot {
    /// On or off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Enforce or warn.
    #[serde(default)]
    pub mode: Mode,
    /// The namespaces that count as dev (default: label `purser.dev/environment: dev`).
    #[serde(default = "dev_namespaces")]
    pub namespaces: Namespaces,
}

/// Every policy, as the webhook's configuration file holds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policies {
    /// The cost-allocation label policy.
    #[serde(default = "RequireLabel::default_on")]
    pub require_label: RequireLabel,
    /// The budget policy.
    #[serde(default = "BudgetCheck::default_on")]
    pub budget: BudgetCheck,
    /// The GPU cap.
    #[serde(default = "MaxGpus::default_on")]
    pub max_gpus_per_pod: MaxGpus,
    /// The dev-namespace spot policy.
    #[serde(default = "DevSpot::default_on")]
    pub dev_requires_spot: DevSpot,
}

impl Default for Policies {
    fn default() -> Self {
        Policies {
            require_label: RequireLabel::default_on(),
            budget: BudgetCheck::default_on(),
            max_gpus_per_pod: MaxGpus::default_on(),
            dev_requires_spot: DevSpot::default_on(),
        }
    }
}

impl RequireLabel {
    fn default_on() -> Self {
        RequireLabel {
            enabled: true,
            mode: Mode::Enforce,
            key: cost_centre(),
            namespaces: Namespaces::default(),
        }
    }
}

impl BudgetCheck {
    fn default_on() -> Self {
        BudgetCheck {
            enabled: true,
            mode: Mode::Enforce,
        }
    }
}

impl MaxGpus {
    fn default_on() -> Self {
        MaxGpus {
            enabled: true,
            mode: Mode::Enforce,
            max: four(),
            namespaces: Namespaces::default(),
        }
    }
}

impl DevSpot {
    fn default_on() -> Self {
        DevSpot {
            enabled: true,
            mode: Mode::Enforce,
            namespaces: dev_namespaces(),
        }
    }
}

fn yes() -> bool {
    true
}

fn four() -> u32 {
    4
}

fn cost_centre() -> String {
    "cost-centre".into()
}

fn dev_namespaces() -> Namespaces {
    Namespaces {
        names: vec![],
        match_labels: BTreeMap::from([("purser.dev/environment".to_string(), "dev".to_string())]),
    }
}

/// A budget as the webhook sees it: its scope, the cap the planner applies and the cost its
/// pods are allocated now.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetView {
    /// Scope and cap.
    pub budget: Budget,
    /// USD per hour allocated to the covered pods now (`status.runRate`).
    pub run_rate: f64,
}

/// What one admission review judges.
#[derive(Debug, Clone)]
pub struct Review<'a> {
    /// The pod, as the engine reads it.
    pub pod: &'a PodInfo,
    /// Its namespace's labels.
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Every CostBudget.
    pub budgets: &'a [BudgetView],
    /// The pod's estimated hourly cost on the cheapest compatible capacity (None when no
    /// capacity fits it or no estimate could be made).
    pub estimated_cost: Option<f64>,
}

/// The answer: allowed or not, why, and warnings for dry-run findings.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Admit the pod.
    pub allowed: bool,
    /// Why it was denied (the first enforced finding).
    pub message: Option<String>,
    /// Dry-run findings and notes, shown to the client.
    pub warnings: Vec<String>,
}

/// Judge a pod against every enabled policy.
pub fn judge(policies: &Policies, review: &Review) -> Verdict {
    let pod = review.pod;
    if pod.labels.get(EXCEPTION_LABEL).map(String::as_str) == Some("true") {
        return Verdict {
            allowed: true,
            message: None,
            warnings: vec![format!(
                "{EXCEPTION_LABEL}=true: cost policies skipped for pod {}",
                pod.key
            )],
        };
    }
    let findings = [
        require_label(&policies.require_label, review),
        max_gpus(&policies.max_gpus_per_pod, review),
        dev_spot(&policies.dev_requires_spot, review),
        budget(&policies.budget, review),
    ];
    let mut verdict = Verdict {
        allowed: true,
        ..Verdict::default()
    };
    for (mode, message) in findings.into_iter().flatten() {
        match mode {
            Mode::Enforce if verdict.allowed => {
                verdict.allowed = false;
                verdict.message = Some(message);
            }
            Mode::Enforce => verdict.warnings.push(message),
            Mode::Warn => verdict.warnings.push(format!("dry-run: {message}")),
        }
    }
    verdict
}

/// A policy's finding: its mode and the message.
type Finding = Option<(Mode, String)>;

fn require_label(p: &RequireLabel, r: &Review) -> Finding {
    if !p.enabled || !p.namespaces.selects(&r.pod.namespace, r.namespace_labels) {
        return None;
    }
    let present = r.pod.labels.get(&p.key).is_some_and(|v| !v.is_empty());
    (!present).then(|| {
        (
            p.mode,
            format!(
                "pod {}: metadata.labels must carry {:?} so that its cost rolls up to an owner",
                r.pod.key, p.key
            ),
        )
    })
}

fn max_gpus(p: &MaxGpus, r: &Review) -> Finding {
    if !p.enabled || !p.namespaces.selects(&r.pod.namespace, r.namespace_labels) {
        return None;
    }
    let gpus = r.pod.requests.accelerators().as_f64();
    (gpus > f64::from(p.max)).then(|| {
        (
            p.mode,
            format!(
                "pod {}: requests {gpus} accelerators, more than the {} allowed per pod",
                r.pod.key, p.max
            ),
        )
    })
}

fn dev_spot(p: &DevSpot, r: &Review) -> Finding {
    if !p.enabled || !p.namespaces.selects(&r.pod.namespace, r.namespace_labels) {
        return None;
    }
    (!requires_spot(r.pod)).then(|| {
        (
            p.mode,
            format!(
                "pod {}: namespace {} is marked dev, so the pod must require spot capacity \
                 (nodeSelector {CAPACITY_TYPE}: spot, or a required node affinity with only spot)",
                r.pod.key, r.pod.namespace
            ),
        )
    })
}

/// Whether every node the pod may land on is spot: its nodeSelector, or every term of its
/// required node affinity, admits only `spot` for the capacity type.
fn requires_spot(pod: &PodInfo) -> bool {
    let only_spot = |reqs: &Requirements| {
        reqs.0
            .iter()
            .any(|r| r.key == CAPACITY_TYPE && r.allowed_values() == Some(&["spot".to_string()][..]))
    };
    only_spot(&pod.node_selector)
        || (!pod.node_affinity.terms.is_empty() && pod.node_affinity.terms.iter().all(only_spot))
}

fn budget(p: &BudgetCheck, r: &Review) -> Finding {
    if !p.enabled {
        return None;
    }
    let cost = r.estimated_cost?;
    r.budgets
        .iter()
        .filter(|b| b.budget.covers(r.pod))
        .find(|b| b.run_rate + cost > b.budget.max_hourly_cost + 1e-9)
        .map(|b| {
            (
                p.mode,
                format!(
                    "budget {}: {:.2} + {:.2} > {:.2} USD/h (pod {}; its cost is an estimate on the cheapest capacity that fits it)",
                    b.budget.name, b.run_rate, cost, b.budget.max_hourly_cost, r.pod.key
                ),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::requirements::Requirement;
    use crate::model::resources::Resources;

    fn pod(namespace: &str, labels: &[(&str, &str)], requests: &[(&str, &str)]) -> PodInfo {
        PodInfo {
            key: format!("{namespace}/p"),
            namespace: namespace.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            requests: Resources::parse(requests.iter().copied()).unwrap(),
            ..PodInfo::default()
        }
    }

    fn vision_budget(run_rate: f64) -> BudgetView {
        BudgetView {
            budget: Budget {
                name: "team-vision".into(),
                namespaces: vec!["vision".into()],
                selector: None,
                max_hourly_cost: 40.0,
                period: None,
                max_period_cost: None,
            },
            run_rate,
        }
    }

    fn review<'a>(
        pod: &'a PodInfo,
        ns: &'a BTreeMap<String, String>,
        budgets: &'a [BudgetView],
        cost: Option<f64>,
    ) -> Review<'a> {
        Review {
            pod,
            namespace_labels: ns,
            budgets,
            estimated_cost: cost,
        }
    }

    fn with_mode(mode: Mode) -> Policies {
        let mut p = Policies::default();
        p.require_label.mode = mode;
        p.budget.mode = mode;
        p.max_gpus_per_pod.mode = mode;
        p.dev_requires_spot.mode = mode;
        p
    }

    #[test]
    fn the_cost_label_is_required_denied_or_warned() {
        let ns = BTreeMap::new();
        let unlabelled = pod("web", &[], &[("cpu", "1")]);
        let labelled = pod("web", &[("cost-centre", "cc-42")], &[("cpu", "1")]);
        let v = judge(&Policies::default(), &review(&unlabelled, &ns, &[], None));
        assert!(!v.allowed && v.message.unwrap().contains("\"cost-centre\""));
        assert!(judge(&Policies::default(), &review(&labelled, &ns, &[], None)).allowed);
        let v = judge(&with_mode(Mode::Warn), &review(&unlabelled, &ns, &[], None));
        assert!(v.allowed && v.warnings[0].starts_with("dry-run:"), "{v:?}");
        let mut only_team = Policies::default();
        only_team.require_label.namespaces.names = vec!["team-a".into()];
        assert!(
            judge(&only_team, &review(&unlabelled, &ns, &[], None)).allowed,
            "other namespaces are not judged"
        );
    }

    #[test]
    fn a_pod_over_its_budget_is_denied_with_the_numbers() {
        let ns = BTreeMap::new();
        let p = pod("vision", &[("cost-centre", "cc")], &[("cpu", "8")]);
        let budgets = [vision_budget(38.2)];
        let v = judge(&Policies::default(), &review(&p, &ns, &budgets, Some(4.1)));
        assert!(!v.allowed);
        assert!(
            v.message
                .as_deref()
                .unwrap()
                .starts_with("budget team-vision: 38.20 + 4.10 > 40.00 USD/h"),
            "{v:?}"
        );
        assert!(judge(&Policies::default(), &review(&p, &ns, &budgets, Some(1.8))).allowed);
        let other = pod("web", &[("cost-centre", "cc")], &[("cpu", "8")]);
        assert!(
            judge(&Policies::default(), &review(&other, &ns, &budgets, Some(4.1))).allowed,
            "not in scope"
        );
        assert!(judge(&with_mode(Mode::Warn), &review(&p, &ns, &budgets, Some(4.1))).allowed);
        assert!(
            judge(&Policies::default(), &review(&p, &ns, &budgets, None)).allowed,
            "no estimate, no verdict"
        );
    }

    #[test]
    fn gpus_per_pod_are_capped() {
        let ns = BTreeMap::new();
        let five = pod("ml", &[("cost-centre", "cc")], &[("nvidia.com/gpu", "5")]);
        let four = pod("ml", &[("cost-centre", "cc")], &[("nvidia.com/gpu", "4")]);
        let v = judge(&Policies::default(), &review(&five, &ns, &[], None));
        assert!(!v.allowed && v.message.unwrap().contains("requests 5 accelerators, more than the 4"));
        assert!(judge(&Policies::default(), &review(&four, &ns, &[], None)).allowed);
    }

    #[test]
    fn dev_namespaces_require_spot() {
        let dev = BTreeMap::from([("purser.dev/environment".to_string(), "dev".to_string())]);
        let mut on_demand = pod("sandbox", &[("cost-centre", "cc")], &[("cpu", "1")]);
        let v = judge(&Policies::default(), &review(&on_demand, &dev, &[], None));
        assert!(!v.allowed && v.message.unwrap().contains("marked dev"));
        let mut spot = on_demand.clone();
        spot.node_selector = Requirements(vec![Requirement::equals("karpenter.sh/capacity-type", "spot")]);
        assert!(
            judge(&Policies::default(), &review(&spot, &dev, &[], None)).allowed,
            "the Karpenter key is an alias"
        );
        on_demand.node_selector = Requirements(vec![Requirement::equals(CAPACITY_TYPE, "on-demand")]);
        assert!(!judge(&Policies::default(), &review(&on_demand, &dev, &[], None)).allowed);
        assert!(judge(&Policies::default(), &review(&on_demand, &BTreeMap::new(), &[], None)).allowed);
    }

    #[test]
    fn the_exception_label_skips_every_policy_and_says_so() {
        let ns = BTreeMap::new();
        let p = pod("vision", &[(EXCEPTION_LABEL, "true")], &[("nvidia.com/gpu", "8")]);
        let v = judge(
            &Policies::default(),
            &review(&p, &ns, &[vision_budget(39.0)], Some(9.0)),
        );
        assert!(v.allowed && v.warnings[0].contains("skipped"));
    }

    #[test]
    fn the_first_enforced_finding_denies_and_the_rest_are_warnings() {
        let ns = BTreeMap::new();
        let p = pod("ml", &[], &[("nvidia.com/gpu", "8")]);
        let v = judge(&Policies::default(), &review(&p, &ns, &[], None));
        assert!(!v.allowed && v.message.as_deref().unwrap().contains("cost-centre"));
        assert!(v.warnings.iter().any(|w| w.contains("accelerators")), "{v:?}");
    }

    #[test]
    fn the_configuration_reads_from_yaml_and_refuses_unknown_fields() {
        let p: Policies =
            serde_norway::from_str("requireLabel: {key: team, mode: warn}\nmaxGpusPerPod: {max: 2}\n").unwrap();
        assert_eq!(
            (
                p.require_label.key.as_str(),
                p.require_label.mode,
                p.max_gpus_per_pod.max
            ),
            ("team", Mode::Warn, 2)
        );
        assert!(p.budget.enabled && p.dev_requires_spot.enabled);
        let err = serde_norway::from_str::<Policies>("requireLabel: {keys: team}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("keys"), "{err}");
    }
}
