//! Loading what the disruption engine reads: node and pod protections, lifecycle times,
//! interruption notices, NodePool disruption policies and budgets, the template hash and
//! PodDisruptionBudgets. Bad values name the object and the field at fault.

use purser::catalog::Catalog;
use purser::model::ModelError;
use purser::model::disruption::{BudgetNodes, ConsolidationPolicy, DoNotDisrupt, InterruptionKind, Reason};
use purser::model::load::{Loaded, parse_documents, snapshot_from_objects};
use serde_json::json;

/// 2025-06-01T12:00:00Z in seconds since the epoch.
const NOON: i64 = 1_748_779_200;

fn load(yaml: &str) -> Result<Loaded, ModelError> {
    let objects = parse_documents(yaml, "input.yaml")?;
    snapshot_from_objects(&objects, Catalog::embedded_ref())
}

fn load_err(yaml: &str) -> ModelError {
    match load(yaml) {
        Ok(_) => panic!("expected an error loading:\n{yaml}"),
        Err(e) => e,
    }
}

/// Replace `from` (which must occur) with `to` in `text`.
fn edit(text: &str, from: &str, to: &str) -> String {
    let out = text.replacen(from, to, 1);
    assert_ne!(out, text, "the replacement {from:?} must apply");
    out
}

/// Assert the error names `object` and `field`, and its message mentions every `words`.
fn assert_error(e: &ModelError, object: &str, field: &str, words: &[&str]) {
    assert_eq!(e.object, object, "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.to_string().starts_with(&format!("{object}: {field}: ")), "{e}");
    for w in words {
        assert!(e.message.contains(w), "{e} should mention {w:?}");
    }
}

const POOL: &str = r#"
apiVersion: purser.dev/v1
kind: NodePool
metadata: {name: general}
spec:
  disruption:
    consolidationPolicy: WhenEmpty
    consolidateAfter: 1h30m
    minSavingsPercent: 25
    minSavingsPerHour: 0.5
    prelaunchOnRebalance: true
    budgets:
      - nodes: "20%"
      - nodes: "0"
        schedule: "0 9 * * mon-fri"
        duration: 8h
        reasons: [Drifted, Underutilized]
      - nodes: "3"
        reasons: [GpuIdle, Empty, Expired]
  template:
    metadata:
      labels: {team: platform}
    spec:
      expireAfter: 168h
      nodeClassRef: {group: karpenter.k8s.aws, kind: EC2NodeClass, name: default}
      requirements:
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
      taints:
        - {key: dedicated, value: web, effect: NoSchedule}
        - {key: b-first, effect: NoExecute}
      startupTaints:
        - {key: example.com/agent-not-ready, effect: NoExecute}
"#;

const BARE_POOL: &str = "apiVersion: karpenter.sh/v1\nkind: NodePool\nmetadata: {name: bare}\nspec: {}\n";

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: ip-10-0-3-21.ec2.internal
  creationTimestamp: "2025-06-01T12:00:00Z"
  labels:
    node.kubernetes.io/instance-type: g5.12xlarge
    topology.kubernetes.io/zone: us-east-1c
    karpenter.sh/capacity-type: spot
    karpenter.sh/nodepool: general
  annotations:
    purser.dev/nodepool-hash: 0123456789abcdef
    purser.dev/last-pod-event: "2025-06-01T13:30:00+01:00"
    purser.dev/interruption: rebalance
spec:
  providerID: aws:///us-east-1c/i-0123456789abcdef0
status:
  conditions:
    - {type: MemoryPressure, status: "False"}
    - {type: Ready, status: "True"}
  allocatable: {cpu: 47810m, memory: 188120224Ki, nvidia.com/gpu: "4", pods: "737"}
"#;

const CLAIM: &str = r#"
apiVersion: purser.dev/v1
kind: NodeClaim
metadata:
  name: general-4kx9z
  creationTimestamp: "2025-06-01T12:00:00Z"
  labels: {purser.dev/nodepool: general}
spec:
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [g5.12xlarge]}
    - {key: topology.kubernetes.io/zone, operator: In, values: [us-east-1c]}
"#;

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web-0
  namespace: shop
  labels: {app: web}
  annotations: {}
spec:
  nodeName: ip-10-0-3-21.ec2.internal
  containers: [{name: c, resources: {requests: {cpu: 100m}}}]
status:
  phase: Running
  startTime: "2025-06-01T12:00:00Z"
"#;

fn pod_with_annotation(key: &str, value: &str) -> String {
    edit(POD, "annotations: {}", &format!("annotations: {{{key}: \"{value}\"}}"))
}

// ---------------------------------------------------------------------------------------------
// Nodes and NodeClaims
// ---------------------------------------------------------------------------------------------

#[test]
fn node_lifecycle_and_annotations() {
    let loaded = load(NODE).unwrap();
    let node = &loaded.snapshot.nodes[0];
    assert_eq!(node.created, NOON);
    assert!(node.initialized);
    assert!(!node.deleting);
    assert!(!node.do_not_disrupt);
    assert_eq!(node.pool_hash.as_deref(), Some("0123456789abcdef"));
    assert_eq!(node.last_pod_event, Some(NOON + 1800), "offsets are honoured");
    assert_eq!(node.interruption, Some(InterruptionKind::Rebalance));
}

#[test]
fn node_without_annotations_or_conditions() {
    let bare = "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\n  labels: {node.kubernetes.io/instance-type: g5.12xlarge}\n";
    let node = &load(bare).unwrap().snapshot.nodes[0];
    assert_eq!(node.created, 0);
    assert!(!node.initialized, "no Ready condition and no label: not initialized");
    assert!(!node.deleting && !node.do_not_disrupt);
    assert_eq!(
        (node.pool_hash.as_ref(), node.last_pod_event, node.interruption),
        (None, None, None)
    );
}

#[test]
fn node_initialized_by_condition_or_label() {
    let not_ready = edit(
        NODE,
        "{type: Ready, status: \"True\"}",
        "{type: Ready, status: \"False\"}",
    );
    assert!(!load(&not_ready).unwrap().snapshot.nodes[0].initialized);
    let unknown = edit(
        NODE,
        "{type: Ready, status: \"True\"}",
        "{type: Ready, status: Unknown}",
    );
    assert!(!load(&unknown).unwrap().snapshot.nodes[0].initialized);
    for label in ["purser.dev/initialized", "karpenter.sh/initialized"] {
        let labelled = edit(
            &not_ready,
            "    karpenter.sh/nodepool: general\n",
            &format!("    karpenter.sh/nodepool: general\n    {label}: \"true\"\n"),
        );
        assert!(load(&labelled).unwrap().snapshot.nodes[0].initialized, "{label}");
        let labelled_false = labelled.replace(&format!("{label}: \"true\""), &format!("{label}: \"false\""));
        assert!(!load(&labelled_false).unwrap().snapshot.nodes[0].initialized, "{label}");
    }
}

#[test]
fn node_deleting_and_do_not_disrupt() {
    let deleting = edit(
        NODE,
        "  creationTimestamp:",
        "  deletionTimestamp: \"2025-06-01T14:00:00Z\"\n  creationTimestamp:",
    );
    assert!(load(&deleting).unwrap().snapshot.nodes[0].deleting);
    for key in ["purser.dev/do-not-disrupt", "karpenter.sh/do-not-disrupt"] {
        let protected = edit(
            NODE,
            "  annotations:\n",
            &format!("  annotations:\n    {key}: \"true\"\n"),
        );
        assert!(load(&protected).unwrap().snapshot.nodes[0].do_not_disrupt, "{key}");
        let not = edit(
            NODE,
            "  annotations:\n",
            &format!("  annotations:\n    {key}: \"false\"\n"),
        );
        assert!(!load(&not).unwrap().snapshot.nodes[0].do_not_disrupt, "{key}");
    }
}

#[test]
fn node_interruption_kinds() {
    for (text, kind) in [
        ("spot-interruption", InterruptionKind::SpotInterruption),
        ("rebalance", InterruptionKind::Rebalance),
        ("scheduled-change", InterruptionKind::ScheduledChange),
    ] {
        let node = NODE.replace("interruption: rebalance", &format!("interruption: {text}"));
        assert_eq!(load(&node).unwrap().snapshot.nodes[0].interruption, Some(kind));
    }
}

#[test]
fn claim_lifecycle() {
    let loaded = load(&format!("{POOL}---{CLAIM}")).unwrap();
    let claim = &loaded.snapshot.nodes[0];
    assert!(claim.in_flight);
    assert_eq!(claim.created, NOON);
    assert!(!claim.initialized && !claim.deleting);
    let deleting = edit(
        CLAIM,
        "  creationTimestamp:",
        "  deletionTimestamp: \"2025-06-01T14:00:00Z\"\n  creationTimestamp:",
    );
    assert!(load(&format!("{POOL}---{deleting}")).unwrap().snapshot.nodes[0].deleting);
}

// ---------------------------------------------------------------------------------------------
// Pods
// ---------------------------------------------------------------------------------------------

#[test]
fn pod_start_time_and_defaults() {
    let pod = &load(POD).unwrap().snapshot.pods[0];
    assert_eq!(pod.started, Some(NOON));
    assert_eq!(pod.do_not_disrupt, DoNotDisrupt::No);
    assert!(!pod.mirror);
    let pending = edit(POD, "  startTime: \"2025-06-01T12:00:00Z\"\n", "");
    assert_eq!(load(&pending).unwrap().snapshot.pods[0].started, None);
}

#[test]
fn pod_do_not_disrupt_values() {
    for (key, value, expected) in [
        ("purser.dev/do-not-disrupt", "true", DoNotDisrupt::Always),
        ("purser.dev/do-not-disrupt", "false", DoNotDisrupt::No),
        ("purser.dev/do-not-disrupt", "30m", DoNotDisrupt::For(1800)),
        ("purser.dev/do-not-disrupt", "1h30m", DoNotDisrupt::For(5400)),
        ("purser.dev/do-not-disrupt", "90s", DoNotDisrupt::For(90)),
        ("karpenter.sh/do-not-disrupt", "true", DoNotDisrupt::Always),
        ("karpenter.sh/do-not-disrupt", "2h", DoNotDisrupt::For(7200)),
    ] {
        let pod = &load(&pod_with_annotation(key, value)).unwrap().snapshot.pods[0];
        assert_eq!(pod.do_not_disrupt, expected, "{key}: {value}");
    }
}

#[test]
fn pod_purser_annotation_wins_over_karpenter() {
    let both = edit(
        POD,
        "annotations: {}",
        "annotations: {purser.dev/do-not-disrupt: \"false\", karpenter.sh/do-not-disrupt: \"true\"}",
    );
    assert_eq!(load(&both).unwrap().snapshot.pods[0].do_not_disrupt, DoNotDisrupt::No);
}

#[test]
fn mirror_pods() {
    let mirror = pod_with_annotation("kubernetes.io/config.mirror", "3f2a");
    assert!(load(&mirror).unwrap().snapshot.pods[0].mirror);
}

// ---------------------------------------------------------------------------------------------
// NodePool disruption policy
// ---------------------------------------------------------------------------------------------

#[test]
fn pool_disruption_policy_is_read() {
    let loaded = load(POOL).unwrap();
    let d = &loaded.snapshot.pools[0].disruption;
    assert_eq!(d.consolidation_policy, ConsolidationPolicy::WhenEmpty);
    assert_eq!(d.consolidate_after, Some(5400));
    assert_eq!(d.min_savings_percent, 25.0);
    assert_eq!(d.min_savings_per_hour, 0.5);
    assert!(d.prelaunch_on_rebalance);
    assert_eq!(d.expire_after, Some(168 * 3600));
    assert_eq!(d.budgets.len(), 3);
    assert_eq!(d.budgets[0].nodes, BudgetNodes::Percent(20));
    assert_eq!((d.budgets[0].schedule.as_ref(), d.budgets[0].duration), (None, None));
    assert!(d.budgets[0].reasons.is_empty());
    assert_eq!(d.budgets[1].nodes, BudgetNodes::Count(0));
    assert_eq!(d.budgets[1].schedule.as_deref(), Some("0 9 * * mon-fri"));
    assert_eq!(d.budgets[1].duration, Some(8 * 3600));
    assert_eq!(d.budgets[1].reasons, [Reason::Underutilized, Reason::Drifted]);
    assert_eq!(d.budgets[2].reasons, [Reason::Empty, Reason::GpuIdle, Reason::Expired]);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn pool_disruption_defaults() {
    let d = &load(BARE_POOL).unwrap().snapshot.pools[0].disruption;
    assert_eq!(d.consolidation_policy, ConsolidationPolicy::WhenEmptyOrUnderutilized);
    assert_eq!(d.consolidate_after, Some(600));
    assert_eq!(d.min_savings_percent, 10.0);
    assert_eq!(d.min_savings_per_hour, 0.0);
    assert!(!d.prelaunch_on_rebalance);
    assert_eq!(d.expire_after, Some(720 * 3600));
    assert_eq!(d.budgets.len(), 1);
    assert_eq!(d.budgets[0].nodes, BudgetNodes::Percent(10));
    let partial = edit(BARE_POOL, "spec: {}", "spec: {disruption: {consolidateAfter: 30s}}");
    let d = &load(&partial).unwrap().snapshot.pools[0].disruption;
    assert_eq!(d.consolidate_after, Some(30));
    assert_eq!(
        d.budgets[0].nodes,
        BudgetNodes::Percent(10),
        "budgets unset: the default budget"
    );
}

#[test]
fn never_and_empty_budgets() {
    let never = edit(
        BARE_POOL,
        "spec: {}",
        "spec: {disruption: {consolidateAfter: Never, budgets: []}, template: {spec: {expireAfter: Never}}}",
    );
    let d = &load(&never).unwrap().snapshot.pools[0].disruption;
    assert_eq!(d.consolidate_after, None);
    assert_eq!(d.expire_after, None);
    assert!(d.budgets.is_empty(), "an empty list means no budget limit");
}

#[test]
fn numeric_budget_nodes_and_json_input() {
    let pool = json!({
        "apiVersion": "purser.dev/v1", "kind": "NodePool", "metadata": {"name": "j"},
        "spec": {"disruption": {"budgets": [{"nodes": 5}, {"nodes": "100%"}, {}]}}
    });
    let loaded = snapshot_from_objects(&[pool], Catalog::embedded_ref()).unwrap();
    let budgets = &loaded.snapshot.pools[0].disruption.budgets;
    let nodes: Vec<BudgetNodes> = budgets.iter().map(|b| b.nodes).collect();
    assert_eq!(
        nodes,
        [
            BudgetNodes::Count(5),
            BudgetNodes::Percent(100),
            BudgetNodes::Percent(10)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Template hash
// ---------------------------------------------------------------------------------------------

fn hash_of(pool: &str) -> String {
    load(pool).unwrap().snapshot.pools[0].template_hash.clone()
}

#[test]
fn template_hash_is_a_fixed_function_of_the_template() {
    let hash = hash_of(POOL);
    assert_eq!(hash.len(), 16);
    assert!(
        hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{hash}"
    );
    assert_eq!(hash, hash_of(POOL), "same input, same hash");
    // Pinned: FNV-1a 64 of {"labels":{},"taints":[],"startupTaints":[],"nodeClassRef":null},
    // which must not change between machines, builds or releases.
    assert_eq!(hash_of(BARE_POOL), "f26073675c881473");
}

#[test]
fn template_hash_tracks_drift_fields_only() {
    let hash = hash_of(POOL);
    let drifting = [
        ("{team: platform}", "{team: web}"),
        ("value: web, effect: NoSchedule", "value: api, effect: NoSchedule"),
        (
            "{key: example.com/agent-not-ready, effect: NoExecute}",
            "{key: example.com/agent-not-ready, effect: NoSchedule}",
        ),
        ("name: default}", "name: gpu}"),
    ];
    for (from, to) in drifting {
        assert_ne!(hash_of(&edit(POOL, from, to)), hash, "{to}");
    }
    let same = [
        ("values: [spot, on-demand]", "values: [spot]"),
        ("expireAfter: 168h", "expireAfter: 24h"),
        ("consolidateAfter: 1h30m", "consolidateAfter: 5m"),
    ];
    for (from, to) in same {
        assert_eq!(hash_of(&edit(POOL, from, to)), hash, "{to}");
    }
    let reordered = edit(
        POOL,
        "        - {key: dedicated, value: web, effect: NoSchedule}\n        - {key: b-first, effect: NoExecute}\n",
        "        - {key: b-first, effect: NoExecute}\n        - {key: dedicated, value: web, effect: NoSchedule}\n",
    );
    assert_eq!(hash_of(&reordered), hash, "taint order does not matter");
}

// ---------------------------------------------------------------------------------------------
// PodDisruptionBudgets
// ---------------------------------------------------------------------------------------------

fn pod(namespace: &str, name: &str, app: &str, bound: bool) -> String {
    let node = if bound { "  nodeName: n1\n" } else { "" };
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{app: {app}}}}}\nspec:\n{node}  containers: [{{name: c}}]\n---\n"
    )
}

/// Four `web` pods in `shop` (three bound), one `web` pod elsewhere, one other pod.
fn pods() -> String {
    [
        pod("shop", "web-0", "web", true),
        pod("shop", "web-1", "web", true),
        pod("shop", "web-2", "web", true),
        pod("shop", "web-3", "web", false),
        pod("other", "web-0", "web", true),
        pod("shop", "db-0", "db", true),
    ]
    .concat()
}

fn pdb(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: {name}, namespace: shop}}\nspec: {spec}\n"
    )
}

fn allowed(spec: &str) -> u32 {
    let loaded = load(&format!("{}{}", pods(), pdb("web", spec))).unwrap();
    loaded.snapshot.pdbs[0].disruptions_allowed
}

#[test]
fn pdb_from_min_available() {
    let selector = "selector: {matchLabels: {app: web}}";
    assert_eq!(allowed(&format!("{{{selector}, minAvailable: 2}}")), 1, "3 healthy - 2");
    assert_eq!(allowed(&format!("{{{selector}, minAvailable: 5}}")), 0, "clamped at 0");
    assert_eq!(
        allowed(&format!("{{{selector}, minAvailable: \"50%\"}}")),
        1,
        "3 - ceil(4 * 50%)"
    );
    assert_eq!(
        allowed(&format!("{{{selector}, minAvailable: \"30%\"}}")),
        1,
        "3 - ceil(1.2)"
    );
    assert_eq!(allowed(&format!("{{{selector}, minAvailable: \"0%\"}}")), 3);
}

#[test]
fn pdb_from_max_unavailable() {
    let selector = "selector: {matchLabels: {app: web}}";
    assert_eq!(allowed(&format!("{{{selector}, maxUnavailable: 2}}")), 1, "2 - (4 - 3)");
    assert_eq!(allowed(&format!("{{{selector}, maxUnavailable: 1}}")), 0);
    assert_eq!(
        allowed(&format!("{{{selector}, maxUnavailable: \"60%\"}}")),
        2,
        "ceil(2.4) - 1"
    );
    assert_eq!(
        allowed(&format!("{{{selector}, maxUnavailable: 0}}")),
        0,
        "clamped at 0"
    );
}

#[test]
fn pdb_status_wins_and_is_clamped() {
    let spec = "{selector: {matchLabels: {app: web}}, minAvailable: 1}";
    let with_status = format!(
        "{}status: {{disruptionsAllowed: 7, expectedPods: 4}}\n",
        pdb("web", spec)
    );
    let loaded = load(&format!("{}{with_status}", pods())).unwrap();
    assert_eq!(loaded.snapshot.pdbs[0].disruptions_allowed, 7);
    let negative = with_status.replace("disruptionsAllowed: 7", "disruptionsAllowed: -2");
    assert_eq!(
        load(&format!("{}{negative}", pods())).unwrap().snapshot.pdbs[0].disruptions_allowed,
        0
    );
    let without = with_status.replace("disruptionsAllowed: 7, ", "");
    assert_eq!(
        load(&format!("{}{without}", pods())).unwrap().snapshot.pdbs[0].disruptions_allowed,
        2,
        "3 - 1"
    );
}

#[test]
fn pdb_selectors() {
    assert_eq!(
        allowed("{selector: {}, maxUnavailable: 10}"),
        9,
        "an empty selector covers all 5 pods of the namespace"
    );
    assert_eq!(allowed("{minAvailable: 0}"), 0, "a null selector covers no pods");
    let exprs = "{selector: {matchExpressions: [{key: app, operator: In, values: [web, db]}]}, minAvailable: 1}";
    assert_eq!(allowed(exprs), 3, "4 bound web and db pods - 1");
    let loaded = load(&format!(
        "{}{}",
        pods(),
        pdb("web", "{selector: {matchLabels: {app: web}}, minAvailable: 1}")
    ))
    .unwrap();
    let p = &loaded.snapshot.pdbs[0];
    assert_eq!((p.key.as_str(), p.namespace.as_str()), ("shop/web", "shop"));
    let labels = [("app".to_string(), "web".to_string())].into();
    assert!(p.covers("shop", &labels));
    assert!(!p.covers("other", &labels));
}

#[test]
fn pdb_without_limits_warns() {
    let loaded = load(&format!(
        "{}{}",
        pods(),
        pdb("web", "{selector: {matchLabels: {app: web}}}")
    ))
    .unwrap();
    assert_eq!(loaded.snapshot.pdbs[0].disruptions_allowed, u32::MAX);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].contains("PodDisruptionBudget shop/web"),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn pdbs_are_sorted_and_other_versions_skipped() {
    let spec = "{selector: {}, minAvailable: 1}";
    let beta = pdb("old", spec).replace("policy/v1", "policy/v1beta1");
    let text = format!("{}---\n{}---\n{beta}", pdb("zeta", spec), pdb("alpha", spec));
    let loaded = load(&text).unwrap();
    let keys: Vec<&str> = loaded.snapshot.pdbs.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(keys, ["shop/alpha", "shop/zeta"]);
    assert!(
        loaded.warnings[0].starts_with("skipped PodDisruptionBudget shop/old"),
        "{:?}",
        loaded.warnings
    );
}

// ---------------------------------------------------------------------------------------------
// Bad input: every error names the object and the field
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_last_pod_event() {
    let e = load_err(&edit(NODE, "\"2025-06-01T13:30:00+01:00\"", "yesterday"));
    assert_error(
        &e,
        "Node ip-10-0-3-21.ec2.internal",
        "metadata.annotations.purser.dev/last-pod-event",
        &["yesterday", "RFC 3339"],
    );
}

#[test]
fn bad_interruption() {
    let e = load_err(&edit(NODE, "interruption: rebalance", "interruption: eviction"));
    let field = "metadata.annotations.purser.dev/interruption";
    assert_error(
        &e,
        "Node ip-10-0-3-21.ec2.internal",
        field,
        &["eviction", "spot-interruption", "rebalance", "scheduled-change"],
    );
    let claim = edit(
        CLAIM,
        "  labels:",
        "  annotations: {purser.dev/interruption: soon}\n  labels:",
    );
    assert_error(&load_err(&claim), "NodeClaim general-4kx9z", field, &["soon"]);
}

#[test]
fn bad_pod_do_not_disrupt() {
    for (key, value) in [
        ("purser.dev/do-not-disrupt", "maybe"),
        ("purser.dev/do-not-disrupt", "True"),
        ("purser.dev/do-not-disrupt", ""),
        ("karpenter.sh/do-not-disrupt", "-5m"),
        ("karpenter.sh/do-not-disrupt", "1.5h"),
    ] {
        let e = load_err(&pod_with_annotation(key, value));
        assert_error(
            &e,
            "Pod shop/web-0",
            &format!("metadata.annotations.{key}"),
            &["true", "false", "duration"],
        );
    }
}

fn pool_error(from: &str, to: &str) -> ModelError {
    load_err(&edit(POOL, from, to))
}

#[test]
fn bad_budget_nodes() {
    for bad in ["\"150%\"", "\"-1\"", "\"ten\"", "\"5.5\"", "\"\"", "-1"] {
        let e = pool_error("nodes: \"3\"", &format!("nodes: {bad}"));
        assert_error(
            &e,
            "NodePool general",
            "spec.disruption.budgets[2].nodes",
            &["percent", "0%", "100%"],
        );
    }
}

#[test]
fn bad_budget_schedule() {
    let e = pool_error("schedule: \"0 9 * * mon-fri\"", "schedule: \"0 25 * * *\"");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[1].schedule",
        &["cron", "0 25 * * *"],
    );
    let e = pool_error("schedule: \"0 9 * * mon-fri\"", "schedule: \"every morning\"");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[1].schedule",
        &["every morning"],
    );
}

#[test]
fn schedule_and_duration_go_together() {
    let e = pool_error("        duration: 8h\n", "");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[1].duration",
        &["missing", "schedule"],
    );
    let e = pool_error("        schedule: \"0 9 * * mon-fri\"\n", "");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[1].schedule",
        &["missing", "duration"],
    );
}

#[test]
fn bad_budget_duration() {
    let e = pool_error("duration: 8h", "duration: 8 hours");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[1].duration",
        &["8 hours"],
    );
}

#[test]
fn unknown_budget_reason() {
    let e = pool_error("[GpuIdle, Empty, Expired]", "[GpuIdle, Idle]");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[2].reasons[1]",
        &["Idle", "Empty", "Underutilized", "GpuIdle", "Drifted", "Expired"],
    );
    let e = pool_error("[Drifted, Underutilized]", "[Interrupted]");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.budgets[1].reasons[0]",
        &["Interrupted"],
    );
}

#[test]
fn bad_consolidation_settings() {
    let e = pool_error("consolidateAfter: 1h30m", "consolidateAfter: soon");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.consolidateAfter",
        &["soon", "Never"],
    );
    let e = pool_error("consolidateAfter: 1h30m", "consolidateAfter: -10m");
    assert_error(&e, "NodePool general", "spec.disruption.consolidateAfter", &["-10m"]);
    let e = pool_error("consolidationPolicy: WhenEmpty", "consolidationPolicy: WhenIdle");
    assert_error(
        &e,
        "NodePool general",
        "spec.disruption.consolidationPolicy",
        &["WhenIdle", "WhenEmpty", "WhenEmptyOrUnderutilized"],
    );
}

#[test]
fn bad_expire_after() {
    let e = pool_error("expireAfter: 168h", "expireAfter: 30d");
    assert_error(
        &e,
        "NodePool general",
        "spec.template.spec.expireAfter",
        &["30d", "Never"],
    );
    let e = pool_error("expireAfter: 168h", "expireAfter: never");
    assert_error(&e, "NodePool general", "spec.template.spec.expireAfter", &["never"]);
}

#[test]
fn bad_savings_thresholds() {
    for bad in ["150", "-1", "100.5"] {
        let e = pool_error("minSavingsPercent: 25", &format!("minSavingsPercent: {bad}"));
        assert_error(
            &e,
            "NodePool general",
            "spec.disruption.minSavingsPercent",
            &["between 0 and 100"],
        );
    }
    let e = pool_error("minSavingsPerHour: 0.5", "minSavingsPerHour: -0.5");
    assert_error(&e, "NodePool general", "spec.disruption.minSavingsPerHour", &["-0.5"]);
    let e = pool_error("minSavingsPerHour: 0.5", "minSavingsPerHour: cheap");
    assert_error(&e, "NodePool general", "spec.disruption.minSavingsPerHour", &[]);
}

#[test]
fn bad_pdb_int_or_percent() {
    for (field, bad) in [
        ("minAvailable", "\"150%\""),
        ("minAvailable", "\"5\""),
        ("minAvailable", "-1"),
        ("maxUnavailable", "\"half\""),
        ("maxUnavailable", "-3"),
    ] {
        let e = load_err(&pdb("web", &format!("{{selector: {{}}, {field}: {bad}}}")));
        assert_error(
            &e,
            "PodDisruptionBudget shop/web",
            &format!("spec.{field}"),
            &["integer", "percent"],
        );
    }
}

#[test]
fn bad_pdb_spec() {
    let e = load_err(&pdb("web", "{selector: {}, minAvailable: 1, maxUnavailable: 1}"));
    assert_error(
        &e,
        "PodDisruptionBudget shop/web",
        "spec.maxUnavailable",
        &["minAvailable"],
    );
    let e = load_err(&pdb(
        "web",
        "{selector: {matchExpressions: [{key: app, operator: Like}]}, minAvailable: 1}",
    ));
    assert_error(
        &e,
        "PodDisruptionBudget shop/web",
        "spec.selector.matchExpressions[0].operator",
        &["Like"],
    );
    let e = load_err(
        &pdb("web", "{selector: {}, minAvailable: 1}").replace("spec:", "status: {disruptionsAllowed: many}\nspec:"),
    );
    assert_error(&e, "PodDisruptionBudget shop/web", "status.disruptionsAllowed", &[]);
}
