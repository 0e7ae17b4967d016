//! Scenario files: the bundled ones load and validate; bad input is refused with the file, the
//! line, the field path and what was expected.

use std::sync::OnceLock;

use purser::catalog::Catalog;
use purser::model::resources::NVIDIA_GPU;
use purser::sim::load::{ScenarioError, bundled, bundled_text, load_scenario, load_scenario_text};

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(Catalog::embedded)
}

/// A small valid scenario; each bad case changes one thing in it.
const BASE: &str = r#"name: base
durationHours: 12
nodePools:
  - apiVersion: purser.dev/v1
    kind: NodePool
    metadata: {name: cpu}
    spec:
      template:
        spec:
          requirements:
            - {key: purser.dev/instance-family, operator: In, values: [m5, c5]}
  - apiVersion: purser.dev/v1
    kind: NodePool
    metadata: {name: gpu}
    spec:
      weight: 10
      template:
        spec:
          requirements:
            - key: purser.dev/instance-family
              operator: In
              values: [g5, g6]
          taints:
            - {key: nvidia.com/gpu, value: "true", effect: NoSchedule}
      disruption:
        budgets: [{nodes: "20%"}]
costBudgets:
  - apiVersion: purser.dev/v1
    kind: CostBudget
    metadata: {name: ml}
    spec: {selector: {namespaces: [ml]}, maxHourlyCost: 50}
clusterAutoscaler:
  scaleDownUtilizationThreshold: 0.5
  nodeGroups:
    - name: cpu
      instanceType: m5.2xlarge
      maxNodes: 10
    - name: gpu
      instanceType: g5.2xlarge
      capacityType: on-demand
      maxNodes: 4
training:
  - name: train
    team: ml
    namespace: ml
    jobsPerDay: 10
    pod:
      cpu: "6"
      memory: 24Gi
      gpus: 1
      tolerations: [{key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}]
      spot: true
    duration: {medianMinutes: 60, sigma: 1.0}
    checkpointMinutes: 30
inference:
  - name: chat
    team: product
    count: 2
    pod:
      cpu: "3"
      memory: 12Gi
      gpus: 1
    meanRps: 2
    replicaRps: 5
    serviceMs: 200
    sloP95Ms: 2000
    minReplicas: 2
    maxReplicas: 3
batch:
  - name: etl
    team: data
    jobsPerDay: 4
    podsPerJob: 3
    pod: {cpu: "2", memory: 8Gi, spot: true}
    duration: {medianMinutes: 15, sigma: 0.5}
notebooks:
  - name: jupyter
    team: ml
    namespace: ml
    count: 1
    pod: {cpu: "2", memory: 8Gi, gpus: 1}
"#;

const FILE: &str = "bad.yaml";

/// 1-based line of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the text"))
}

/// `BASE` with `from` replaced by `to` (which must occur exactly once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(BASE.matches(from).count(), 1, "{from:?} must occur once in BASE");
    BASE.replacen(from, to, 1)
}

fn refuse(text: &str) -> ScenarioError {
    match load_scenario_text(text, FILE, catalog()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e,
    }
}

/// 1-based line of the `n`th (0-based) line of `text` containing `needle`.
fn nth_line(text: &str, needle: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(n)
        .map(|(i, _)| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not {} times in the text", n + 1))
}

/// The error names the file, the line holding `line_marker`, the field and the expectation.
#[track_caller]
fn check(e: &ScenarioError, text: &str, line_marker: &str, field: &str, expected: &str) {
    check_at(e, line_of(text, line_marker), field, expected);
}

/// The error names the file, `line`, the field and the expectation.
#[track_caller]
fn check_at(e: &ScenarioError, line: usize, field: &str, expected: &str) {
    assert_eq!(e.file, FILE, "{e}");
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(expected), "message lacks {expected:?}: {e}");
    let shown = e.to_string();
    assert!(shown.starts_with(&format!("{FILE}:{line}: {field}: ")), "{shown}");
}

#[test]
fn base_is_valid() {
    let loaded = load_scenario_text(BASE, FILE, catalog()).unwrap();
    assert_eq!(loaded.source, FILE);
    assert_eq!(loaded.scenario.duration_hours, 12.0);
    assert_eq!(loaded.snapshot.pools.len(), 2);
    assert_eq!(loaded.snapshot.budgets.len(), 1);
    assert!(loaded.snapshot.pods.is_empty() && loaded.snapshot.nodes.is_empty());
    // Defaults are filled in.
    let inf = &loaded.scenario.inference[0];
    assert_eq!((inf.namespace.as_str(), inf.target_utilization), ("default", 0.7));
    assert_eq!(loaded.scenario.cluster_autoscaler.scale_down_unneeded_minutes, 10.0);
    assert_eq!(
        loaded.scenario.cluster_autoscaler.node_groups[0].capacity_type,
        "on-demand"
    );
}

#[test]
fn bundled_scenarios_load_and_validate() {
    assert_eq!(bundled(), ["streamforge", "quickstart"]);
    for name in bundled() {
        let loaded = load_scenario(name, catalog()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(loaded.scenario.name, *name);
        assert_eq!(loaded.source, format!("<bundled scenarios/{name}.yaml>"));
        assert!(!loaded.snapshot.pools.is_empty());
        assert!(loaded.snapshot.pods.is_empty() && loaded.snapshot.nodes.is_empty());
        assert!(bundled_text(name).is_some_and(|t| t.contains(&format!("\nname: {name}\n"))));
    }
}

#[test]
fn streamforge_has_the_case_study_shape() {
    let loaded = load_scenario("streamforge", catalog()).unwrap();
    let s = &loaded.scenario;
    assert_eq!(s.duration_hours, 168.0);
    let jobs: f64 = s.training.iter().map(|t| t.jobs_per_day).sum();
    assert!(jobs >= 300.0, "{jobs} training jobs/day");
    assert!(s.training.iter().all(|t| t.pod.spot && t.checkpoint_minutes == 30.0));
    let finetune = &s.training[0];
    assert_eq!(finetune.pod.gpus, 4);
    assert!((60.0..=90.0).contains(&finetune.duration.median_minutes));
    let services: u32 = s.inference.iter().map(|i| i.count).sum();
    assert_eq!(services, 40);
    assert!(s.inference.iter().all(|i| i.pod.gpus == 1 && i.slo_p95_ms > 0.0));
    let notebooks: u32 = s.notebooks.iter().map(|n| n.count).sum();
    assert!((6..=10).contains(&notebooks));
    assert!(s.notebooks.iter().all(|n| n.pod.gpus >= 1));
    assert!(!s.batch.is_empty());

    let pools: Vec<&str> = loaded.snapshot.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pools, ["cpu", "gpu-infer", "gpu-train"]);
    for pool in &loaded.snapshot.pools {
        assert_eq!(pool.disruption.budgets.len(), 1, "{}", pool.name);
        let gpu = pool.name.starts_with("gpu");
        assert_eq!(pool.taints.iter().any(|t| t.key == NVIDIA_GPU), gpu, "{}", pool.name);
    }
    assert_eq!(loaded.snapshot.budgets.len(), 1);
    assert!(loaded.snapshot.budgets[0].max_hourly_cost > 0.0);

    let ca = &s.cluster_autoscaler;
    assert_eq!(ca.scale_down_utilization_threshold, 0.5);
    assert_eq!(ca.scale_down_unneeded_minutes, 10.0);
    assert!(ca.node_groups.iter().all(|g| g.capacity_type == "on-demand"));
    let types: Vec<&str> = ca.node_groups.iter().map(|g| g.instance_type.as_str()).collect();
    assert_eq!(types, ["m5.4xlarge", "p4d.24xlarge", "g5.xlarge"]);
}

#[test]
fn quickstart_is_tiny() {
    let s = load_scenario("quickstart", catalog()).unwrap().scenario;
    assert_eq!(s.duration_hours, 24.0);
    assert_eq!(s.inference.iter().map(|i| i.count).sum::<u32>(), 2);
    assert_eq!((s.batch.len(), s.notebooks.len()), (1, 1));
    assert!(s.training.iter().map(|t| t.jobs_per_day).sum::<f64>() <= 24.0);
}

#[test]
fn a_path_is_read_and_named_in_errors() {
    let dir = std::env::temp_dir().join(format!("purser-sim-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    std::fs::write(&good, BASE).unwrap();
    let path = good.display().to_string();
    assert_eq!(load_scenario(&path, catalog()).unwrap().source, path);

    let bad = dir.join("bad.yaml");
    let text = BASE.replace("jobsPerDay: 10", "jobsPerDay: -10");
    std::fs::write(&bad, &text).unwrap();
    let path = bad.display().to_string();
    let e = load_scenario(&path, catalog()).unwrap_err();
    assert_eq!(e.file, path);
    assert_eq!(e.line, Some(line_of(&text, "jobsPerDay: -10")));
    assert_eq!(e.field, "training[0].jobsPerDay");

    let missing = dir.join("nope.yaml").display().to_string();
    let e = load_scenario(&missing, catalog()).unwrap_err();
    assert_eq!(
        (e.file.as_str(), e.line, e.field.as_str()),
        (missing.as_str(), None, "file")
    );
    assert!(e.message.contains("streamforge, quickstart"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

// === Bad input ===

#[test]
fn unknown_field() {
    let text = edit("      cpu: \"6\"\n", "      cpu: \"6\"\n      gpuCount: 1\n");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "gpuCount: 1",
        "training[0].pod.gpuCount",
        "unknown field `gpuCount`, expected one of",
    );
    // The message is not prefixed with a path again.
    assert!(e.message.starts_with("unknown field"), "{e}");
}

#[test]
fn unknown_top_level_field() {
    let text = edit("durationHours: 12\n", "durationHours: 12\nhours: 3\n");
    let e = refuse(&text);
    check(&e, &text, "hours: 3", "hours", "unknown field `hours`");
}

#[test]
fn negative_rate() {
    let text = edit("jobsPerDay: 10", "jobsPerDay: -10");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "jobsPerDay: -10",
        "training[0].jobsPerDay",
        "is -10; expected a finite number of jobs per day, 0 or more",
    );
}

#[test]
fn negative_rps_and_non_finite_sigma() {
    let text = edit("meanRps: 2", "meanRps: -0.5");
    check(
        &refuse(&text),
        &text,
        "meanRps: -0.5",
        "inference[0].meanRps",
        "0 or more",
    );
    let text = edit("{medianMinutes: 60, sigma: 1.0}", "{medianMinutes: 60, sigma: .nan}");
    check(
        &refuse(&text),
        &text,
        "sigma: .nan",
        "training[0].duration.sigma",
        "expected a finite number",
    );
    let text = edit("{medianMinutes: 15, sigma: 0.5}", "{medianMinutes: 0, sigma: 0.5}");
    check(
        &refuse(&text),
        &text,
        "medianMinutes: 0,",
        "batch[0].duration.medianMinutes",
        "greater than 0",
    );
}

#[test]
fn negative_replicas() {
    let text = edit("minReplicas: 2", "minReplicas: -1");
    let e = refuse(&text);
    check(&e, &text, "minReplicas: -1", "inference[0].minReplicas", "expected u32");
}

#[test]
fn max_replicas_below_min() {
    let text = edit("maxReplicas: 3", "maxReplicas: 1");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "maxReplicas: 1",
        "inference[0].maxReplicas",
        "is 1, below minReplicas 2; expected maxReplicas ≥ minReplicas",
    );
}

#[test]
fn threshold_out_of_range() {
    let text = edit(
        "scaleDownUtilizationThreshold: 0.5",
        "scaleDownUtilizationThreshold: 1.5",
    );
    let e = refuse(&text);
    check(
        &e,
        &text,
        "scaleDownUtilizationThreshold",
        "clusterAutoscaler.scaleDownUtilizationThreshold",
        "is 1.5; expected a fraction from 0 to 1",
    );
}

#[test]
fn bad_quantity() {
    let text = edit("memory: 24Gi", "memory: 24GB");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "memory: 24GB",
        "training[0].pod.memory",
        "invalid quantity \"24GB\"",
    );
    let text = edit(
        "pod: {cpu: \"2\", memory: 8Gi, spot: true}",
        "pod: {cpu: \"-2\", memory: 8Gi, spot: true}",
    );
    check(
        &refuse(&text),
        &text,
        "cpu: \"-2\"",
        "batch[0].pod.cpu",
        "expected a quantity of 0 or more",
    );
}

#[test]
fn wrong_type() {
    let text = edit("jobsPerDay: 4", "jobsPerDay: lots");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "jobsPerDay: lots",
        "batch[0].jobsPerDay",
        "invalid type: string \"lots\", expected f64",
    );
}

#[test]
fn missing_field() {
    let text = edit("    checkpointMinutes: 30\n", "");
    let e = refuse(&text);
    assert_eq!(e.field, "training[0]", "{e}");
    assert!(e.message.contains("missing field `checkpointMinutes`"), "{e}");
    assert!(e.line.is_some(), "{e}");
}

#[test]
fn unknown_instance_type_in_a_node_group() {
    let text = edit("instanceType: m5.2xlarge", "instanceType: m5.huge");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "m5.huge",
        "clusterAutoscaler.nodeGroups[0].instanceType",
        "\"m5.huge\" is not in the catalog",
    );
}

#[test]
fn invalid_capacity_type() {
    let text = edit("capacityType: on-demand", "capacityType: reserved");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "capacityType: reserved",
        "clusterAutoscaler.nodeGroups[1].capacityType",
        "is \"reserved\"; expected on-demand or spot",
    );
    // In a NodePool, a capacity type nothing offers is an error too (plan only warns).
    let text = edit(
        "values: [m5, c5]}\n",
        "values: [m5, c5]}\n            - {key: karpenter.sh/capacity-type, operator: In, values: [spot, reserved]}\n",
    );
    check(
        &refuse(&text),
        &text,
        "reserved]",
        "nodePools[0].spec.template.spec.requirements[1].values",
        "capacity type \"reserved\" is not offered (expected spot or on-demand)",
    );
}

#[test]
fn node_group_zone_without_offering() {
    // g5.2xlarge is not offered in us-east-1e.
    let text = edit(
        "capacityType: on-demand\n",
        "capacityType: on-demand\n      zones: [us-east-1e]\n",
    );
    let e = refuse(&text);
    check(
        &e,
        &text,
        "zones: [us-east-1e]",
        "clusterAutoscaler.nodeGroups[1].zones",
        "g5.2xlarge has no on-demand offering in us-east-1e",
    );
    let text = edit(
        "capacityType: on-demand\n",
        "capacityType: on-demand\n      zones: [us-east-1z]\n",
    );
    check(
        &refuse(&text),
        &text,
        "us-east-1z",
        "clusterAutoscaler.nodeGroups[1].zones[0]",
        "not a zone of the catalog",
    );
}

#[test]
fn nodepool_that_no_instance_type_satisfies() {
    let text = edit("values: [m5, c5]", "values: [nonexistent]");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "requirements:",
        "nodePools[0].spec.template.spec.requirements",
        "NodePool cpu: no instance type of the catalog (us-east-1) satisfies [purser.dev/instance-family In [\"nonexistent\"]]",
    );
}

#[test]
fn workload_that_fits_no_pool() {
    let text = edit("gpus: 1\n      tolerations", "gpus: 9\n      tolerations");
    let e = refuse(&text);
    check_at(
        &e,
        nth_line(&text, "    pod:", 0),
        "training[0].pod",
        "workload train: the pod fits no NodePool (cpu, gpu)",
    );
    assert!(e.message.contains("nvidia.com/gpu 9"), "{e}");
    // On-demand only, and the GPU pool made spot-only: nothing can take the notebook.
    let text = edit(
        "values: [g5, g6]\n",
        "values: [g5, g6]\n            - {key: purser.dev/capacity-type, operator: In, values: [spot]}\n",
    );
    let e = refuse(&text);
    assert_eq!(e.field, "inference[0].pod", "{e}");
    assert!(e.message.contains("on-demand only"), "{e}");
}

#[test]
fn workload_that_fits_no_node_group() {
    // g5.2xlarge has 7.91 vCPU allocatable; a g5.4xlarge would take it, the node group cannot.
    let text = edit("cpu: \"6\"", "cpu: \"12\"");
    let e = refuse(&text);
    check_at(
        &e,
        nth_line(&text, "    pod:", 0),
        "training[0].pod",
        "workload train: the pod fits no clusterAutoscaler node group (cpu, gpu)",
    );
}

#[test]
fn yaml_syntax_error_has_its_line() {
    let text = edit("    team: data\n", "    team: data: x\n");
    let e = refuse(&text);
    assert_eq!(
        (e.file.as_str(), e.line),
        (FILE, Some(line_of(&text, "team: data: x"))),
        "{e}"
    );
    assert!(e.message.contains("mapping values are not allowed"), "{e}");
    let text = edit("name: base", "name: base\n\tbad: tab");
    let e = refuse(&text);
    assert_eq!((e.file.as_str(), e.line), (FILE, Some(2)), "{e}");
    let text = edit(
        "pod: {cpu: \"2\", memory: 8Gi, spot: true}",
        "pod: {cpu: \"2\", memory: 8Gi, spot: true",
    );
    let e = refuse(&text);
    assert_eq!(e.file, FILE);
    assert!(e.line.is_some_and(|l| l >= nth_line(&text, "spot: true", 1)), "{e}");
}

#[test]
fn bad_nodepool_object_names_the_field() {
    let text = edit("weight: 10", "weight: 500");
    let e = refuse(&text);
    check(
        &e,
        &text,
        "weight: 500",
        "nodePools[1].spec.weight",
        "NodePool gpu: is 500; must be between 1 and 100",
    );
    let text = edit("budgets: [{nodes: \"20%\"}]", "budgets: [{nodes: \"150%\"}]");
    check(
        &refuse(&text),
        &text,
        "150%",
        "nodePools[1].spec.disruption.budgets[0].nodes",
        "expected a node count",
    );
    let text = edit("operator: In\n", "operator: Within\n");
    check(
        &refuse(&text),
        &text,
        "operator: Within",
        "nodePools[1].spec.template.spec.requirements[0].operator",
        "NodePool gpu: ",
    );
}

#[test]
fn objects_of_the_wrong_kind_or_twice() {
    let text = edit("kind: CostBudget", "kind: NodePool");
    // `kind: NodePool` occurs three times now; the third is the budget's.
    check_at(
        &refuse(&text),
        nth_line(&text, "kind: NodePool", 2),
        "costBudgets[0].kind",
        "is Some(\"NodePool\"); expected CostBudget",
    );
    let text = edit("metadata: {name: gpu}", "metadata: {name: cpu}");
    check_at(
        &refuse(&text),
        nth_line(&text, "metadata: {name: cpu}", 1),
        "nodePools[1].metadata.name",
        "NodePool cpu: appears more than once",
    );
    let text = edit("maxHourlyCost: 50", "maxHourlyCost: -5");
    check(
        &refuse(&text),
        &text,
        "maxHourlyCost: -5",
        "costBudgets[0].spec.maxHourlyCost",
        "CostBudget ml:",
    );
}

#[test]
fn bad_toleration_and_taint() {
    let text = edit(
        "operator: Exists, effect: NoSchedule}]",
        "operator: Exists, effect: Sometimes}]",
    );
    check(
        &refuse(&text),
        &text,
        "Sometimes",
        "training[0].pod.tolerations[0].effect",
        "expected NoSchedule, PreferNoSchedule or NoExecute",
    );
    let text = edit(
        "      maxNodes: 4\n",
        "      maxNodes: 4\n      taints: [{key: gpu, effect: Always}]\n",
    );
    check(
        &refuse(&text),
        &text,
        "Always",
        "clusterAutoscaler.nodeGroups[1].taints[0].effect",
        "unknown effect \"Always\"",
    );
}

#[test]
fn duplicate_workload_names() {
    let text = edit("  - name: etl", "  - name: train");
    check_at(
        &refuse(&text),
        nth_line(&text, "- name: train", 1),
        "batch[0].name",
        "also the name of training[0]",
    );
}

#[test]
fn errors_in_the_bundled_file_point_into_it() {
    let text = bundled_text("streamforge")
        .unwrap()
        .replace("instanceType: p4d.24xlarge", "instanceType: p9.48xlarge");
    let e = load_scenario_text(&text, "streamforge.yaml", catalog()).unwrap_err();
    assert_eq!(e.field, "clusterAutoscaler.nodeGroups[1].instanceType");
    assert_eq!(e.line, Some(line_of(&text, "p9.48xlarge")));
    let text = bundled_text("streamforge")
        .unwrap()
        .replace("values: [p4d, g6]", "values: [p4d, g6], minValues: 9");
    let e = load_scenario_text(&text, "streamforge.yaml", catalog()).unwrap_err();
    assert_eq!(e.field, "nodePools[1].spec.template.spec.requirements[0].minValues");
    assert_eq!(e.line, Some(line_of(&text, "minValues: 9")));
}

#[test]
fn gpu_busy_outside_zero_to_one() {
    let text = edit(
        "    checkpointMinutes: 30\n",
        "    checkpointMinutes: 30\n    gpuBusy: 1.5\n",
    );
    let e = refuse(&text);
    check(
        &e,
        &text,
        "gpuBusy: 1.5",
        "training[0].gpuBusy",
        "a fraction from 0 to 1",
    );
}

#[test]
fn gpu_busy_defaults_to_the_philly_mean() {
    let loaded = load_scenario_text(BASE, FILE, catalog()).expect("base loads");
    assert_eq!(loaded.scenario.training[0].gpu_busy, 0.47);
}
