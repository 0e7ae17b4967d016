//! Loading bad input: every mistake names the file or object and the field at fault.

use std::path::PathBuf;

use purser::catalog::{CapacityType, Catalog};
use purser::model::ModelError;
use purser::model::daemonset::daemon_overhead;
use purser::model::load::{Loaded, load_files, parse_documents, snapshot_from_objects};
use purser::model::quantity::Quantity;
use purser::model::resources::{CPU, PODS};

fn load(yaml: &str) -> Result<Loaded, ModelError> {
    let objects = parse_documents(yaml, "input.yaml")?;
    snapshot_from_objects(&objects, Catalog::embedded_ref())
}

fn load_err(yaml: &str) -> ModelError {
    match load(yaml) {
        Ok(loaded) => panic!("expected an error, loaded {} pods", loaded.snapshot.pods.len()),
        Err(e) => e,
    }
}

/// Write `text` to a fresh file under the temp dir and return its path.
fn temp_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("purser-load-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  name: trainer-0
  namespace: ml
  labels: {team: vision}
spec:
  containers:
    - name: trainer
      image: nvcr.io/nvidia/pytorch:25.05-py3
      resources:
        requests: {cpu: "12", memory: 48Gi, nvidia.com/gpu: "4"}
        limits: {memory: 48Gi, nvidia.com/gpu: "4"}
  tolerations:
    - {key: nvidia.com/gpu, operator: Exists, effect: NoSchedule}
status: {phase: Pending}
"#;

const POOL: &str = r#"
apiVersion: purser.dev/v1
kind: NodePool
metadata: {name: gpu}
spec:
  weight: 50
  limits: {nvidia.com/gpu: "16"}
  budget: {maxHourlyCost: 60}
  capacityMix: {minOnDemandPercent: 25}
  template:
    spec:
      requirements:
        - {key: karpenter.k8s.aws/instance-family, operator: In, values: [g5, g6]}
        - {key: karpenter.sh/capacity-type, operator: In, values: [spot, on-demand]}
        - {key: purser.dev/instance-gpu-count, operator: Gt, values: ["0"]}
      taints:
        - {key: nvidia.com/gpu, value: "true", effect: NoSchedule}
"#;

fn pool_error(from: &str, to: &str) -> ModelError {
    let text = POOL.replace(from, to);
    assert_ne!(text, POOL, "the replacement {from:?} must apply");
    let e = load_err(&text);
    assert_eq!(e.object, "NodePool gpu", "{e}");
    e
}

#[test]
fn good_inputs_load() {
    let loaded = load(&format!("{POOL}---{POD}")).unwrap();
    assert_eq!(loaded.snapshot.pods.len(), 1);
    assert_eq!(loaded.snapshot.pools[0].weight, 50);
    assert_eq!(loaded.snapshot.pools[0].max_hourly_cost, Some(60.0));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
}

#[test]
fn malformed_quantity_names_pod_and_field() {
    let e = load_err(&POD.replace(r#"cpu: "12""#, "cpu: 12x"));
    assert_eq!(e.object, "Pod ml/trainer-0");
    assert_eq!(e.field, "spec.containers[0].resources.requests.cpu");
    assert!(e.message.contains("12x"), "{e}");
}

#[test]
fn unknown_requirement_operator() {
    let e = pool_error("operator: Gt", "operator: GreaterThan");
    assert_eq!(e.field, "spec.template.spec.requirements[2].operator");
    assert!(e.message.contains("GreaterThan"), "{e}");
}

#[test]
fn contradictory_requirements() {
    let e = pool_error(
        "values: [g5, g6]}",
        "values: [g5, g6]}\n        - {key: purser.dev/instance-family, operator: NotIn, values: [g5, g6]}",
    );
    assert_eq!(e.field, "spec.template.spec.requirements");
    assert!(e.message.starts_with("contradictory requirements:"), "{e}");
}

#[test]
fn bad_toleration_operator() {
    let e = load_err(&POD.replace("operator: Exists", "operator: Matches"));
    assert_eq!(e.object, "Pod ml/trainer-0");
    assert_eq!(e.field, "spec.tolerations[0].operator");
}

#[test]
fn weight_out_of_range() {
    for weight in ["0", "101", "-3"] {
        let e = pool_error("weight: 50", &format!("weight: {weight}"));
        assert_eq!(e.field, "spec.weight", "{weight}");
    }
    let unset = POOL.replace("  weight: 50\n", "");
    assert_eq!(load(&unset).unwrap().snapshot.pools[0].weight, 0);
}

#[test]
fn on_demand_percent_out_of_range() {
    let e = pool_error("minOnDemandPercent: 25", "minOnDemandPercent: 150");
    assert_eq!(e.field, "spec.capacityMix.minOnDemandPercent");
    let e = pool_error("minOnDemandPercent: 25", "minOnDemandPercent: -1");
    assert_eq!(e.field, "spec.capacityMix.minOnDemandPercent");
}

#[test]
fn negative_budgets() {
    let e = pool_error("maxHourlyCost: 60", "maxHourlyCost: -5");
    assert_eq!(e.field, "spec.budget.maxHourlyCost");
    let budget =
        "apiVersion: purser.dev/v1\nkind: CostBudget\nmetadata: {name: team-vision}\nspec: {maxHourlyCost: -0.5}\n";
    let e = load_err(budget);
    assert_eq!(e.object, "CostBudget team-vision");
    assert_eq!(e.field, "spec.maxHourlyCost");
}

#[test]
fn bad_taint_effect_and_limit() {
    let e = pool_error("effect: NoSchedule}", "effect: NoScheduling}");
    assert_eq!(e.field, "spec.template.spec.taints[0].effect");
    let e = pool_error(r#"nvidia.com/gpu: "16""#, "nvidia.com/gpu: sixteen");
    assert_eq!(e.field, "spec.limits.nvidia.com/gpu");
}

#[test]
fn template_label_contradicting_a_requirement() {
    let text = POOL.replace(
        "  template:\n",
        "  template:\n    metadata:\n      labels: {purser.dev/instance-family: p5}\n",
    );
    let e = load_err(&text);
    assert_eq!(e.field, "spec.template.metadata.labels.purser.dev/instance-family");
}

#[test]
fn yaml_syntax_error_names_the_file() {
    let path = temp_file("broken.yaml", &format!("{POD}---\nkind: Pod\nmetadata: {{name: [x\n"));
    let e = load_files(std::slice::from_ref(&path), Catalog::embedded_ref()).unwrap_err();
    assert_eq!(e.object, path.display().to_string());
    assert_eq!(e.field, "document 2");
    assert!(e.to_string().contains("broken.yaml"), "{e}");
}

#[test]
fn missing_file_names_the_file() {
    let path = PathBuf::from("/nonexistent/purser/cluster.yaml");
    let e = load_files(&[path], Catalog::embedded_ref()).unwrap_err();
    assert_eq!(e.object, "/nonexistent/purser/cluster.yaml");
}

#[test]
fn list_documents_load() {
    let list = format!(
        "apiVersion: v1\nkind: List\nmetadata: {{resourceVersion: \"\"}}\nitems:\n{}",
        POD.trim_start()
            .lines()
            .enumerate()
            .map(|(i, l)| if i == 0 { format!("- {l}\n") } else { format!("  {l}\n") })
            .collect::<String>()
    );
    let loaded = load(&list).unwrap();
    assert_eq!(loaded.snapshot.pods.len(), 1);
    assert_eq!(loaded.snapshot.pods[0].key, "ml/trainer-0");
}

#[test]
fn json_loads_too() {
    let value: serde_json::Value = serde_norway::from_str(POD).unwrap();
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "apiVersion": "v1", "kind": "PodList", "items": [value]
    }))
    .unwrap();
    let path = temp_file("pods.json", &json);
    let loaded = load_files(&[path], Catalog::embedded_ref()).unwrap();
    assert_eq!(loaded.snapshot.pods.len(), 1);
}

#[test]
fn unknown_kind_warns() {
    let service =
        "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: shop}\nspec: {ports: [{port: 80}]}\n";
    let loaded = load(&format!("{service}---{POD}")).unwrap();
    assert_eq!(loaded.warnings, ["skipped Service shop/web: not an input kind"]);
    assert_eq!(loaded.snapshot.pods.len(), 1);
}

#[test]
fn duplicate_pods_error() {
    let e = load_err(&format!("{POD}---{POD}"));
    assert_eq!(e.object, "Pod ml/trainer-0");
    assert!(e.message.contains("more than once"), "{e}");
}

const NODE: &str = r#"
apiVersion: v1
kind: Node
metadata:
  name: ip-10-0-3-21.ec2.internal
  labels:
    node.kubernetes.io/instance-type: g5.12xlarge
    topology.kubernetes.io/zone: us-east-1c
    karpenter.sh/capacity-type: spot
    karpenter.sh/nodepool: gpu
spec:
  providerID: aws:///us-east-1c/i-0123456789abcdef0
  taints:
    - {key: nvidia.com/gpu, value: "true", effect: NoSchedule}
status:
  capacity: {cpu: "48", memory: 195784352Ki, nvidia.com/gpu: "4", pods: "737"}
  allocatable: {cpu: 47810m, memory: 188120224Ki, nvidia.com/gpu: "4", pods: "737"}
"#;

const CLAIM: &str = r#"
apiVersion: purser.dev/v1
kind: NodeClaim
metadata:
  name: gpu-4kx9z
  labels: {purser.dev/nodepool: gpu}
spec:
  requirements:
    - {key: node.kubernetes.io/instance-type, operator: In, values: [g5.12xlarge]}
    - {key: topology.kubernetes.io/zone, operator: In, values: [us-east-1c]}
    - {key: purser.dev/capacity-type, operator: In, values: [spot]}
  taints:
    - {key: nvidia.com/gpu, value: "true", effect: NoSchedule}
"#;

#[test]
fn node_claim_with_its_node_counts_once() {
    let launched = format!("{CLAIM}status:\n  providerId: aws:///us-east-1c/i-0123456789abcdef0\n");
    let loaded = load(&format!("{POOL}---{launched}---{NODE}")).unwrap();
    assert_eq!(loaded.snapshot.nodes.len(), 1);
    let node = &loaded.snapshot.nodes[0];
    assert!(!node.in_flight);
    assert_eq!(node.pool.as_deref(), Some("gpu"));
    assert_eq!(node.capacity_type, Some(CapacityType::Spot));
    assert!(node.price.is_some_and(|p| p > 0.0));
    let node_price = node.price;

    // Before the node registers, the claim is in-flight capacity priced from the catalog.
    let loaded = load(&format!("{POOL}---{CLAIM}")).unwrap();
    let claim = &loaded.snapshot.nodes[0];
    assert!(claim.in_flight);
    assert_eq!(claim.allocatable.get("nvidia.com/gpu"), Quantity::from_units(4));
    assert_eq!(claim.price, node_price, "same type, zone and capacity type");
}

#[test]
fn node_claim_of_unknown_type_without_status() {
    let e = load_err(&CLAIM.replace("[g5.12xlarge]", "[g5.12xlarge, g6.12xlarge]"));
    assert_eq!(e.object, "NodeClaim gpu-4kx9z");
    assert_eq!(e.field, "spec.requirements");
}

#[test]
fn bundled_example_loads() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/cluster.yaml");
    let loaded = load_files(&[path], Catalog::embedded_ref()).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let s = &loaded.snapshot;
    let pools: Vec<&str> = s.pools.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(pools, ["general", "gpu-infer", "gpu-train"]);
    assert_eq!(s.budgets.len(), 1);
    assert_eq!(s.daemonsets.len(), 1);
    assert_eq!(s.nodes.len(), 2);
    assert!(s.nodes.iter().all(|n| n.price.is_some_and(|p| p > 0.0)));
    let pending = s.pending().count();
    assert!((35..=45).contains(&pending), "{pending} pending pods");
    let training = s.pods.iter().filter(|p| s.budgets[0].covers(p)).count();
    assert!(training >= 1);
    // kube-proxy tolerates everything, so it lands on the GPU node too.
    for node in &s.nodes {
        let overhead = daemon_overhead(&s.daemonsets, &node.labels, &node.taints);
        assert_eq!(overhead.get(PODS), Quantity::from_units(1), "{}", node.name);
        assert_eq!(overhead.get(CPU), Quantity::from_milli(100));
    }
}

#[test]
fn disruption_budget_errors_name_the_field() {
    let with_budgets = |budgets: &str| {
        POOL.replace(
            "  weight: 50\n",
            &format!("  weight: 50\n  disruption:\n    budgets: {budgets}\n"),
        )
    };
    let cases = [
        ("[{nodes: \"150%\"}]", "spec.disruption.budgets[0].nodes"),
        ("[{nodes: \"1\"}, {nodes: \"-1\"}]", "spec.disruption.budgets[1].nodes"),
        (
            "[{nodes: \"1\", schedule: \"@daily\"}]",
            "spec.disruption.budgets[0].duration",
        ),
        ("[{nodes: \"1\", duration: 1h}]", "spec.disruption.budgets[0].schedule"),
        (
            "[{nodes: \"1\", schedule: \"61 * * * *\", duration: 1h}]",
            "spec.disruption.budgets[0].schedule",
        ),
        (
            "[{nodes: \"1\", reasons: [Empty, Bored]}]",
            "spec.disruption.budgets[0].reasons[1]",
        ),
    ];
    for (budgets, field) in cases {
        let e = load_err(&with_budgets(budgets));
        assert_eq!(e.object, "NodePool gpu", "{budgets}");
        assert_eq!(e.field, field, "{budgets}: {e}");
    }
    let good = load(&with_budgets("[{nodes: \"1\", schedule: \"@daily\", duration: 10m}]")).unwrap();
    assert_eq!(good.snapshot.pools[0].disruption.budgets[0].duration, Some(600));
}

#[test]
fn bad_expire_after_names_the_field() {
    let e = pool_error("    spec:\n", "    spec:\n      expireAfter: 1w\n");
    assert_eq!(e.field, "spec.template.spec.expireAfter");
    assert!(e.message.contains("1w"), "{e}");
}

#[test]
fn bad_do_not_disrupt_annotation_names_pod_and_key() {
    let e = load_err(&POD.replace(
        "  labels: {team: vision}\n",
        "  labels: {team: vision}\n  annotations: {karpenter.sh/do-not-disrupt: forever}\n",
    ));
    assert_eq!(e.object, "Pod ml/trainer-0");
    assert_eq!(e.field, "metadata.annotations.karpenter.sh/do-not-disrupt");
    assert!(e.message.contains("forever"), "{e}");
}

#[test]
fn bad_pdb_names_budget_and_field() {
    let pdb = "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: trainers, namespace: ml}\n\
               spec: {selector: {matchLabels: {team: vision}}, maxUnavailable: \"200%\"}\n";
    let e = load_err(&format!("{POD}---\n{pdb}"));
    assert_eq!(e.object, "PodDisruptionBudget ml/trainers");
    assert_eq!(e.field, "spec.maxUnavailable");
    let fine = load(&format!("{POD}---\n{}", pdb.replace("\"200%\"", "1"))).unwrap();
    assert_eq!(
        fine.snapshot.pdbs[0].disruptions_allowed, 0,
        "its only pod is pending: already unavailable"
    );
}

const PERIOD_BUDGET: &str = "apiVersion: purser.dev/v1\nkind: CostBudget\nmetadata: {name: team-vision}\nspec: {maxHourlyCost: 40, period: Weekly, maxPeriodCost: 5000}\n";

#[test]
fn period_budgets_load_and_their_allowed_run_rate_lowers_the_hourly_cap() {
    let b = &load(PERIOD_BUDGET).unwrap().snapshot.budgets[0];
    assert_eq!(
        (b.period.as_deref(), b.max_period_cost, b.max_hourly_cost),
        (Some("Weekly"), Some(5000.0), 40.0)
    );
    // Only a period cap: the period defaults to Monthly.
    let monthly = PERIOD_BUDGET.replace("period: Weekly, ", "");
    assert_eq!(
        load(&monthly).unwrap().snapshot.budgets[0].period.as_deref(),
        Some("Monthly")
    );
    // The ledger's allowed run-rate in the status binds when it is the lower cap.
    let with_status = format!("{PERIOD_BUDGET}status: {{allowedRunRate: 12.5}}\n");
    assert_eq!(load(&with_status).unwrap().snapshot.budgets[0].max_hourly_cost, 12.5);
    let loose = format!("{PERIOD_BUDGET}status: {{allowedRunRate: 90}}\n");
    assert_eq!(load(&loose).unwrap().snapshot.budgets[0].max_hourly_cost, 40.0);
    // Without a period cap the status's rate is not used.
    let no_cap = format!(
        "{}status: {{allowedRunRate: 1}}\n",
        PERIOD_BUDGET.replace(", maxPeriodCost: 5000", "")
    );
    assert_eq!(load(&no_cap).unwrap().snapshot.budgets[0].max_hourly_cost, 40.0);
}

#[test]
fn bad_periods_and_period_caps_name_the_field() {
    let e = load_err(&PERIOD_BUDGET.replace("Weekly", "Fortnightly"));
    assert_eq!(
        (e.object.as_str(), e.field.as_str()),
        ("CostBudget team-vision", "spec.period")
    );
    assert!(
        e.message.contains("expected Monthly, Weekly, or a cron expression"),
        "{e}"
    );
    let e = load_err(&PERIOD_BUDGET.replace("Weekly", "'0 0 32 * *'"));
    assert_eq!(e.field, "spec.period");
    assert!(e.message.contains("not a valid cron expression"), "{e}");
    let e = load_err(&PERIOD_BUDGET.replace("5000", "-1"));
    assert_eq!(e.field, "spec.maxPeriodCost");
    assert!(e.message.contains("0 or more"), "{e}");
}
