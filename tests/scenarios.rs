//! Scenario tests: Karpenter's scheduling behaviours, each planned with the ILP and with FFD over
//! a small catalog with exact prices (see `common::standard_catalog`). Every plan also passes the
//! independent validator and covers every pending pod (checked in `common::plan_both`).

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use purser::catalog::CapacityType;
use purser::model::load::{parse_documents, snapshot_from_objects};
use purser::solver::{Plan, PlanOptions, Strategy};
use serde_json::Value;

fn both<'a>(ilp: &'a Plan, ffd: &'a Plan) -> [(&'static str, &'a Plan); 2] {
    [("ilp", ilp), ("ffd", ffd)]
}

fn default_pool() -> Value {
    nodepool("default").on_demand().build()
}

fn with_pool(mut objects: Vec<Value>) -> Vec<Value> {
    objects.insert(0, default_pool());
    objects
}

// ------------------------------------------------------------------------------------------
// Taints and tolerations
// ------------------------------------------------------------------------------------------

#[test]
fn pods_tolerating_a_pool_taint_land_on_the_tainted_pool() {
    let objects = vec![
        nodepool("general").on_demand().build(),
        nodepool("ml")
            .on_demand()
            .weight(50)
            .taint("team", "ml", "NoSchedule")
            .label("workload", "ml")
            .build(),
        pod("trainer")
            .cpu("1")
            .memory("1Gi")
            .toleration("team", "ml", "NoSchedule")
            .build(),
        pod("web").cpu("1").memory("1Gi").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.claim("default/trainer").map(|c| c.node_pool.as_str()),
            Some("ml"),
            "{name}: {}",
            plan.json()
        );
        assert_eq!(
            plan.claim("default/web").map(|c| c.node_pool.as_str()),
            Some("general"),
            "{name}: {}",
            plan.json()
        );
        assert!(plan.unschedulable.is_empty(), "{name}");
    }
}

#[test]
fn pods_not_tolerating_a_taint_are_unschedulable_with_the_taint_named() {
    let objects = vec![
        nodepool("ml").on_demand().taint("team", "ml", "NoSchedule").build(),
        pod("web").cpu("1").build(),
        // A toleration for another value of the key does not tolerate the taint.
        pod("wrong-value")
            .cpu("1")
            .toleration("team", "vision", "NoSchedule")
            .build(),
        pod("by-key").cpu("1").tolerate_key("team").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        for p in ["default/web", "default/wrong-value"] {
            let reason = plan
                .reason(p)
                .unwrap_or_else(|| panic!("{name}: {p} must be unschedulable: {}", plan.json()));
            assert!(
                reason.contains("team=ml"),
                "{name}: reason must name the taint: {reason}"
            );
        }
        assert_eq!(
            plan.claim("default/by-key").map(|c| c.node_pool.as_str()),
            Some("ml"),
            "{name}"
        );
    }
}

#[test]
fn startup_taints_do_not_block_scheduling() {
    let objects = vec![
        nodepool("default")
            .on_demand()
            .startup_taint("example.com/agent-not-ready", "", "NoExecute")
            .build(),
        // A node of the pool that still carries the startup taint counts as usable capacity.
        node("n1", "m6.xlarge", "test-1a")
            .pool("default")
            .taint("example.com/agent-not-ready", "", "NoExecute")
            .build(),
        pod("a").cpu("3").memory("1Gi").build(),
        pod("b").cpu("3").memory("1Gi").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.unschedulable.is_empty(), "{name}: {}", plan.json());
        assert_eq!(
            plan.existing_nodes.len(),
            1,
            "{name}: one pod goes to the existing node: {}",
            plan.json()
        );
        assert_eq!(plan.existing_nodes[0].node, "n1");
        assert_eq!(plan.existing_nodes[0].pods.len(), 1);
        assert_eq!(plan.types(), ["m6.xlarge"], "{name}");
        assert!(approx(plan.hourly_cost, 0.20), "{name}: {}", plan.hourly_cost);
    }
}

#[test]
fn prefer_no_schedule_taints_do_not_block() {
    let objects = vec![
        nodepool("soft")
            .on_demand()
            .taint("team", "ml", "PreferNoSchedule")
            .build(),
        pod("web").cpu("1").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.claim("default/web").map(|c| c.node_pool.as_str()),
            Some("soft"),
            "{name}: {}",
            plan.json()
        );
    }
}

#[test]
fn existing_node_taints_keep_intolerant_pods_off() {
    let objects = with_pool(vec![
        node("db-node", "m6.2xlarge", "test-1a")
            .taint("dedicated", "db", "NoSchedule")
            .build(),
        pod("db").cpu("1").toleration("dedicated", "db", "NoSchedule").build(),
        pod("web").cpu("1").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.existing("default/db"), Some("db-node"), "{name}: {}", plan.json());
        assert_eq!(plan.existing("default/web"), None, "{name}");
        assert!(plan.claim("default/web").is_some(), "{name}");
    }
}

// ------------------------------------------------------------------------------------------
// Node selectors and node affinity
// ------------------------------------------------------------------------------------------

#[test]
fn conflicting_node_selectors_are_unschedulable_with_a_reason() {
    let objects = with_pool(vec![
        pod("confused")
            .cpu("100m")
            .node_selector(ZONE_KEY, "test-1a")
            .require(ZONE_KEY, "In", &["test-1b"])
            .build(),
        pod("nowhere").cpu("100m").node_selector(ZONE_KEY, "test-9z").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.placed().is_empty(), "{name}: {}", plan.json());
        for p in ["default/confused", "default/nowhere"] {
            let reason = plan.reason(p).unwrap_or_default().to_lowercase();
            assert!(reason.contains("selector"), "{name}: {p}: {reason}");
        }
        let reason = plan.reason("default/nowhere").unwrap();
        assert!(
            reason.contains("test-9z"),
            "{name}: the reason names the unsatisfiable requirement: {reason}"
        );
        assert!(plan.node_claims.is_empty());
    }
}

#[test]
fn node_selector_on_instance_type_is_honoured() {
    let objects = with_pool(vec![
        pod("pinned")
            .cpu("100m")
            .node_selector(INSTANCE_TYPE_KEY, "m6.2xlarge")
            .build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["m6.2xlarge"], "{name}");
        assert!(approx(plan.hourly_cost, 0.40), "{name}");
    }
}

#[test]
fn gt_requirement_on_instance_cpu_is_honoured() {
    let objects = with_pool(vec![
        pod("big-host")
            .cpu("100m")
            .require(INSTANCE_CPU_KEY, "Gt", &["4"])
            .build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        // The cheapest type with more than 4 vCPUs, although c6.large would hold the pod.
        assert_eq!(plan.types(), ["m6.2xlarge"], "{name}: {}", plan.json());
    }
}

#[test]
fn lt_requirement_on_instance_cpu_is_honoured() {
    let pods = pod("worker").cpu("3500m").memory("1Gi");
    // Unconstrained, one m6.4xlarge (0.76) beats four m6.xlarge (0.80).
    let (free, _) = plan_both(&with_pool(pods.replicas(4)), &standard_catalog());
    assert_eq!(free.types(), ["m6.4xlarge"], "{}", free.json());
    let (ilp, ffd) = plan_both(
        &with_pool(pods.require(INSTANCE_CPU_KEY, "Lt", &["8"]).replicas(4)),
        &standard_catalog(),
    );
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["m6.xlarge"; 4], "{name}: {}", plan.json());
        assert!(approx(plan.hourly_cost, 0.80), "{name}");
    }
}

#[test]
fn not_in_requirement_excludes_instance_families() {
    let objects = with_pool(vec![
        pod("no-c")
            .cpu("100m")
            .require(INSTANCE_FAMILY_KEY, "NotIn", &["c6"])
            .build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["m6.large"], "{name}");
    }
}

#[test]
fn does_not_exist_requirement_avoids_labelled_pools() {
    let objects = vec![
        nodepool("default").on_demand().build(),
        nodepool("special")
            .on_demand()
            .weight(50)
            .label("example.com/special", "true")
            .build(),
        pod("plain")
            .cpu("100m")
            .require("example.com/special", "DoesNotExist", &[])
            .build(),
        pod("any").cpu("100m").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.claim("default/plain").map(|c| c.node_pool.as_str()),
            Some("default"),
            "{name}: {}",
            plan.json()
        );
        assert_eq!(
            plan.claim("default/any").map(|c| c.node_pool.as_str()),
            Some("special"),
            "{name}"
        );
    }
}

#[test]
fn required_node_affinity_terms_are_ored() {
    let objects = with_pool(vec![
        pod("a")
            .cpu("3")
            .affinity_term(&[(INSTANCE_TYPE_KEY, "In", &["r6.xlarge"])])
            .affinity_term(&[(INSTANCE_TYPE_KEY, "In", &["m6.xlarge"])])
            .build(),
        // The second term can never match: the first one decides.
        pod("b")
            .cpu("3")
            .affinity_term(&[(INSTANCE_TYPE_KEY, "In", &["r6.xlarge"])])
            .affinity_term(&[(ZONE_KEY, "In", &["test-9z"])])
            .build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.claim("default/a").map(|c| c.instance_type.as_str()),
            Some("m6.xlarge"),
            "{name}: {}",
            plan.json()
        );
        assert_eq!(
            plan.claim("default/b").map(|c| c.instance_type.as_str()),
            Some("r6.xlarge"),
            "{name}"
        );
        assert!(approx(plan.hourly_cost, 0.46), "{name}");
    }
}

#[test]
fn karpenter_alias_keys_work_in_pools_and_pods() {
    let objects = vec![
        nodepool("karp")
            .karpenter()
            .requirement("karpenter.sh/capacity-type", "In", &["spot", "on-demand"])
            .requirement("karpenter.k8s.aws/instance-family", "In", &["m6", "r6"])
            .build(),
        pod("s")
            .cpu("3")
            .node_selector("karpenter.sh/capacity-type", "spot")
            .node_selector("karpenter.k8s.aws/instance-family", "r6")
            .build(),
        pod("o")
            .cpu("3")
            .node_selector("karpenter.sh/capacity-type", "on-demand")
            .build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let s = plan
            .claim("default/s")
            .unwrap_or_else(|| panic!("{name}: {}", plan.json()));
        assert_eq!(
            (s.instance_type.as_str(), s.capacity_type.as_str()),
            ("r6.xlarge", "spot"),
            "{name}"
        );
        let o = plan.claim("default/o").unwrap();
        // c6 is outside the pool's families; m6.xlarge is the cheapest on-demand type left.
        assert_eq!(
            (o.instance_type.as_str(), o.capacity_type.as_str()),
            ("m6.xlarge", "on-demand"),
            "{name}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Instance type selection and packing
// ------------------------------------------------------------------------------------------

#[test]
fn a_small_pod_gets_the_smallest_cheapest_instance_type() {
    let objects = with_pool(vec![pod("tiny").cpu("100m").memory("128Mi").build()]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["c6.large"], "{name}");
        assert_eq!(plan.node_claims[0].capacity_type, "on-demand");
        assert!(approx(plan.hourly_cost, 0.08), "{name}");
    }
}

#[test]
fn small_and_large_pods_pack_together_when_cheaper() {
    let objects = with_pool(vec![
        pod("large").cpu("3").memory("8Gi").build(),
        pod("small").cpu("500m").memory("1Gi").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 1, "{name}: {}", plan.json());
        assert_eq!(plan.node_claims[0].pods, ["default/large", "default/small"]);
        assert_eq!(plan.types(), ["m6.xlarge"], "{name}");
        assert!(approx(plan.hourly_cost, 0.20), "{name}");
    }
}

#[test]
fn pods_with_the_same_host_port_go_to_different_nodes() {
    let objects = with_pool(pod("ingress").cpu("100m").host_port(8080).replicas(3));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 3, "{name}: {}", plan.json());
        assert!(plan.node_claims.iter().all(|c| c.pods.len() == 1), "{name}");
        assert!(approx(plan.hourly_cost, 0.24), "{name}");
    }
}

#[test]
fn pods_with_different_host_ports_share_a_node() {
    let objects = with_pool(vec![
        pod("a").cpu("100m").host_port(8080).build(),
        pod("b").cpu("100m").host_port(8081).build(),
        pod("c").cpu("100m").host_port(8082).build(),
        // Same port number, other protocol: no conflict.
        pod("d").cpu("100m").host_port_proto(8080, "UDP").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 1, "{name}: {}", plan.json());
        assert_eq!(plan.node_claims[0].pods.len(), 4);
        assert!(approx(plan.hourly_cost, 0.08), "{name}");
    }
}

#[test]
fn init_containers_larger_than_containers_drive_the_request() {
    let base = pod("job").cpu("100m").memory("128Mi");
    let (free, _) = plan_both(&with_pool(vec![base.build()]), &standard_catalog());
    assert_eq!(free.types(), ["c6.large"]);
    let objects = with_pool(vec![
        base.init_container(&[("cpu", "1800m"), ("memory", "6Gi")]).build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["m6.large"], "{name}: {}", plan.json());
    }
}

#[test]
fn pod_overhead_counts_towards_the_request() {
    let base = pod("sandboxed").cpu("1800m").memory("3Gi");
    let (free, _) = plan_both(&with_pool(vec![base.build()]), &standard_catalog());
    assert_eq!(free.types(), ["c6.large"]);
    let objects = with_pool(vec![base.overhead("cpu", "250m").build()]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["m6.xlarge"], "{name}: {}", plan.json());
    }
}

#[test]
fn extended_resources_select_the_right_instance_families() {
    let objects = with_pool(vec![
        pod("cuda").cpu("1").memory("4Gi").gpu(1).build(),
        pod("neuron")
            .cpu("1")
            .memory("4Gi")
            .request("aws.amazon.com/neuron", "1")
            .build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.claim("default/cuda").map(|c| c.instance_type.as_str()),
            Some("g5.xlarge"),
            "{name}: {}",
            plan.json()
        );
        assert_eq!(
            plan.claim("default/neuron").map(|c| c.instance_type.as_str()),
            Some("inf2.xlarge"),
            "{name}"
        );
        assert!(approx(plan.hourly_cost, 1.76), "{name}");
    }
}

#[test]
fn a_pod_that_fits_no_instance_type_is_unschedulable_with_a_reason() {
    let objects = with_pool(vec![
        pod("huge").cpu("100").memory("1Gi").build(),
        pod("ok").cpu("1").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let reason = plan
            .reason("default/huge")
            .unwrap_or_else(|| panic!("{name}: {}", plan.json()));
        assert!(reason.contains("exceed") && reason.contains("cpu"), "{name}: {reason}");
        assert!(plan.claim("default/ok").is_some());
    }
}

#[test]
fn unavailable_offerings_are_skipped() {
    let objects = with_pool(vec![pod("tiny").cpu("100m").build()]);
    let catalog = standard_catalog();
    let (before, _) = plan_both(&objects, &catalog);
    let first = before.node_claims[0].clone();
    assert_eq!(first.instance_type, "c6.large");
    let mut options = options();
    options
        .unavailable
        .insert((first.instance_type.clone(), first.zone.clone(), CapacityType::OnDemand));
    let (ilp, ffd) = plan_both_with(&objects, &catalog, &options);
    for (name, plan) in both(&ilp, &ffd) {
        let c = &plan.node_claims[0];
        assert_eq!(
            c.instance_type, "c6.large",
            "{name}: another zone has it at the same price"
        );
        assert_ne!(c.zone, first.zone, "{name}");
    }
}

#[test]
fn flaky_spot_loses_to_slightly_dearer_stable_on_demand() {
    let pool = nodepool("default").spot_and_on_demand().build();
    let objects = vec![pool, pod("web").cpu("1").build()];
    let with_rate = |rate: f64| {
        let mut it = instance("m6.large", "2", "8Gi");
        for z in ZONES {
            it = it.on_demand_in(z, 0.10).spot_in(z, 0.09, Some(rate));
        }
        catalog().with(it).build()
    };
    // 0.09 + 0.5 × 0.10 expected rework = 0.14 > 0.10.
    let (ilp, ffd) = plan_both(&objects, &with_rate(0.5));
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.node_claims[0].capacity_type,
            "on-demand",
            "{name}: {}",
            plan.json()
        );
        assert!(approx(plan.hourly_cost, 0.10));
    }
    // 0.09 + 0.05 × 0.10 = 0.095 < 0.10: stable spot still wins.
    let (ilp, ffd) = plan_both(&objects, &with_rate(0.05));
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims[0].capacity_type, "spot", "{name}: {}", plan.json());
    }
}

// ------------------------------------------------------------------------------------------
// Topology: spread, affinity, anti-affinity
// ------------------------------------------------------------------------------------------

#[test]
fn zonal_spread_max_skew_one_balances_zones() {
    let objects = with_pool(pod("web").cpu("1").memory("1Gi").zone_spread(1).replicas(7));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 7, "{name}: {}", plan.json());
        let counts = plan.zone_counts("default/web");
        assert_eq!(counts.len(), 3, "{name}: every zone is used: {counts:?}");
        let (min, max) = (counts.values().min().unwrap(), counts.values().max().unwrap());
        assert!(max - min <= 1, "{name}: {counts:?}");
    }
}

#[test]
fn zonal_spread_counts_running_pods() {
    let objects = with_pool(vec![
        node("n1", "c6.large", "test-1a").build(),
        pod("web")
            .cpu("1")
            .zone_spread(1)
            .named("web-run-0")
            .on_node("n1")
            .build(),
        pod("web")
            .cpu("1")
            .zone_spread(1)
            .named("web-run-1")
            .on_node("n1")
            .build(),
        pod("web").cpu("1").zone_spread(1).named("web-0").build(),
        pod("web").cpu("1").zone_spread(1).named("web-1").build(),
        pod("web").cpu("1").zone_spread(1).named("web-2").build(),
        pod("web").cpu("1").zone_spread(1).named("web-3").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let counts = plan.zone_counts("default/web");
        let expected = BTreeMap::from([("test-1b".to_string(), 2), ("test-1c".to_string(), 2)]);
        assert_eq!(counts, expected, "{name}: two already run in test-1a: {}", plan.json());
    }
}

#[test]
fn hostname_spread_max_skew_one_puts_one_pod_per_node() {
    let objects = with_pool(pod("web").cpu("500m").hostname_spread(1).replicas(4));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 4, "{name}: {}", plan.json());
        assert!(plan.node_claims.iter().all(|c| c.pods.len() == 1), "{name}");
        assert!(approx(plan.hourly_cost, 0.32), "{name}");
    }
}

#[test]
fn hostname_anti_affinity_separates_pods() {
    let objects = with_pool(pod("db").cpu("500m").anti_affinity_self(HOSTNAME_KEY).replicas(3));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 3, "{name}: {}", plan.json());
        assert!(plan.node_claims.iter().all(|c| c.pods.len() == 1), "{name}");
    }
}

#[test]
fn zone_anti_affinity_puts_one_pod_per_zone_and_the_rest_are_unschedulable() {
    let objects = with_pool(pod("quorum").cpu("500m").anti_affinity_self(ZONE_KEY).replicas(5));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let counts = plan.zone_counts("default/quorum");
        assert_eq!(counts.len(), 3, "{name}: {}", plan.json());
        assert!(counts.values().all(|&n| n == 1), "{name}: {counts:?}");
        assert_eq!(plan.unschedulable.len(), 2, "{name}");
        for u in &plan.unschedulable {
            assert!(u.reason.contains("topology.kubernetes.io/zone"), "{name}: {}", u.reason);
        }
    }
}

#[test]
fn hostname_self_affinity_co_locates_pods() {
    let objects = with_pool(pod("cache").cpu("500m").affinity_self(HOSTNAME_KEY).replicas(4));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 1, "{name}: {}", plan.json());
        assert_eq!(plan.node_claims[0].pods.len(), 4);
        assert_eq!(plan.types(), ["c6.large"], "{name}");
    }
}

#[test]
fn zone_self_affinity_puts_all_pods_in_one_zone() {
    let objects = with_pool(pod("shard").cpu("1500m").affinity_self(ZONE_KEY).replicas(6));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 6, "{name}: {}", plan.json());
        let zones: BTreeSet<&str> = plan.node_claims.iter().map(|c| c.zone.as_str()).collect();
        assert_eq!(zones.len(), 1, "{name}: {zones:?}");
    }
}

#[test]
fn zone_affinity_follows_running_pods() {
    let objects = with_pool(vec![
        node("n1", "c6.large", "test-1b").build(),
        pod("db").cpu("2").on_node("n1").build(),
        pod("cache").cpu("500m").affinity_to("db", ZONE_KEY).build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.claim("default/cache").map(|c| c.zone.as_str()),
            Some("test-1b"),
            "{name}: {}",
            plan.json()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Capacity types and pool preference
// ------------------------------------------------------------------------------------------

#[test]
fn a_spot_only_pod_gets_spot() {
    let objects = vec![
        nodepool("od").on_demand().weight(100).build(),
        nodepool("mixed").spot_and_on_demand().weight(1).build(),
        // Larger, so scheduled first (as Karpenter orders pods): it opens an on-demand node.
        pod("web").cpu("1500m").build(),
        pod("batch")
            .cpu("500m")
            .node_selector(CAPACITY_TYPE_KEY, "spot")
            .build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let batch = plan
            .claim("default/batch")
            .unwrap_or_else(|| panic!("{name}: {}", plan.json()));
        assert_eq!(
            (batch.node_pool.as_str(), batch.capacity_type.as_str()),
            ("mixed", "spot"),
            "{name}"
        );
        let web = plan.claim("default/web").unwrap();
        assert_eq!(
            (web.node_pool.as_str(), web.capacity_type.as_str()),
            ("od", "on-demand"),
            "{name}"
        );
    }
}

#[test]
fn an_on_demand_only_pool_never_yields_spot() {
    let mut objects = vec![default_pool()];
    objects.extend(pod("small").cpu("300m").memory("512Mi").replicas(6));
    objects.extend(pod("big").cpu("3").memory("12Gi").replicas(3));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 9, "{name}");
        assert!(
            plan.node_claims.iter().all(|c| c.capacity_type == "on-demand"),
            "{name}: {}",
            plan.json()
        );
    }
}

#[test]
fn a_higher_weight_pool_is_preferred_even_if_dearer() {
    let objects = vec![
        nodepool("cheap")
            .spot_and_on_demand()
            .weight(1)
            .requirement(INSTANCE_FAMILY_KEY, "In", &["c6", "m6"])
            .build(),
        nodepool("preferred")
            .on_demand()
            .weight(50)
            .requirement(INSTANCE_FAMILY_KEY, "In", &["r6"])
            .build(),
        pod("web").cpu("100m").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let c = &plan.node_claims[0];
        assert_eq!(
            (c.node_pool.as_str(), c.instance_type.as_str()),
            ("preferred", "r6.xlarge"),
            "{name}"
        );
        assert!(approx(plan.hourly_cost, 0.26), "{name}");
    }
}

// ------------------------------------------------------------------------------------------
// Limits, budgets, capacity mix
// ------------------------------------------------------------------------------------------

#[test]
fn pool_cpu_limit_caps_the_plan() {
    let objects = vec![nodepool("default").on_demand().limit("cpu", "8").build()]
        .into_iter()
        .chain(pod("worker").cpu("3").memory("1Gi").replicas(5))
        .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 2, "{name}: {}", plan.json());
        assert_eq!(plan.unschedulable.len(), 3);
        for u in &plan.unschedulable {
            assert!(
                u.reason.starts_with("NodePool default limit cpu: "),
                "{name}: {}",
                u.reason
            );
            assert!(
                u.reason.ends_with(" of 8 left"),
                "{name}: limits read in cores: {}",
                u.reason
            );
        }
    }
}

#[test]
fn pool_node_limit_caps_the_plan() {
    let objects = vec![nodepool("default").on_demand().limit("nodes", "2").build()]
        .into_iter()
        .chain(pod("db").cpu("100m").anti_affinity_self(HOSTNAME_KEY).replicas(4))
        .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 2, "{name}: {}", plan.json());
        assert_eq!(plan.unschedulable.len(), 2);
        for u in &plan.unschedulable {
            assert_eq!(u.reason, "NodePool default limit nodes: 3 of 2 left", "{name}");
        }
    }
}

#[test]
fn pool_gpu_limit_caps_the_plan() {
    let objects = vec![nodepool("gpu").on_demand().limit("nvidia.com/gpu", "2").build()]
        .into_iter()
        .chain(pod("train").cpu("1").memory("4Gi").gpu(1).replicas(3))
        .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 2, "{name}: {}", plan.json());
        assert_eq!(plan.types(), ["g5.xlarge", "g5.xlarge"], "{name}");
        let u = &plan.unschedulable[0];
        assert_eq!(u.reason, "NodePool gpu limit nvidia.com/gpu: 3 of 2 left", "{name}");
    }
}

#[test]
fn higher_priority_pods_win_scarce_capacity() {
    let objects = vec![
        // Room for one 4-vCPU node: one of the two pods.
        nodepool("default").on_demand().limit("cpu", "4").build(),
        pod("low").cpu("3").priority(10).build(),
        pod("high").cpu("3").priority(1000).build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.claim("default/high").is_some(), "{name}: {}", plan.json());
        assert_eq!(
            plan.reason("default/low"),
            Some("NodePool default limit cpu: 8 of 4 left"),
            "{name}"
        );
    }
}

#[test]
fn pool_budget_max_hourly_cost_binds() {
    let objects = vec![nodepool("default").on_demand().max_hourly_cost(0.25).build()]
        .into_iter()
        .chain(pod("worker").cpu("1500m").memory("1Gi").replicas(5))
        .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.hourly_cost <= 0.25 + 1e-9, "{name}: {}", plan.json());
        assert!(!plan.unschedulable.is_empty(), "{name}");
        for u in &plan.unschedulable {
            assert!(u.reason.contains("budget"), "{name}: {}", u.reason);
        }
    }
    // Three c6.large (0.24) hold three pods; nothing fits four under 0.25.
    assert_eq!(ilp.placed().len(), 3, "{}", ilp.json());
    assert!(ffd.placed().len() <= 3);
}

#[test]
fn cost_budget_binds_and_places_highest_priority_first() {
    let train = pod("train")
        .namespace("ml")
        .app("train")
        .label("team", "vision")
        .cpu("4")
        .memory("16Gi")
        .gpu(1);
    let objects = vec![
        nodepool("gpu")
            .on_demand()
            .requirement(INSTANCE_FAMILY_KEY, "In", &["g5"])
            .build(),
        cost_budget("team-vision", 2.5).match_label("team", "vision").build(),
        train.named("train-a").priority(10).build(),
        train.named("train-b").priority(1000).build(),
        train.named("train-c").priority(100).build(),
        train.named("train-d").priority(500).build(),
        // Outside the budget's selector: unaffected.
        pod("other")
            .namespace("ml")
            .label("team", "nlp")
            .cpu("4")
            .memory("16Gi")
            .gpu(1)
            .build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let placed = plan.placed();
        for p in ["ml/train-b", "ml/train-d", "ml/other"] {
            assert!(placed.contains(p), "{name}: {p} must be placed: {}", plan.json());
        }
        for p in ["ml/train-a", "ml/train-c"] {
            let reason = plan
                .reason(p)
                .unwrap_or_else(|| panic!("{name}: {p} must wait: {}", plan.json()));
            assert!(
                reason.starts_with("budget team-vision: ") && reason.ends_with(" of 2.50 USD/h"),
                "{name}: {reason}"
            );
            let amount: f64 = reason["budget team-vision: ".len()..]
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(amount > 2.5, "{name}: {reason}");
        }
    }
    // Two whole g5.xlarge nodes are allocated exactly 1.00 each; a third would make 3.00.
    assert_eq!(
        ilp.reason("ml/train-a"),
        Some("budget team-vision: 3.00 of 2.50 USD/h"),
        "{}",
        ilp.json()
    );
    assert!(approx(ilp.hourly_cost, 3.0), "{}", ilp.json());
}

#[test]
fn capacity_mix_min_on_demand_percent_is_honoured() {
    let objects = vec![
        nodepool("default")
            .spot_and_on_demand()
            .min_on_demand_percent(50.0)
            .build(),
    ]
    .into_iter()
    .chain(pod("worker").cpu("2").memory("1Gi").replicas(4))
    .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 4, "{name}: {}", plan.json());
        let od: usize = plan
            .node_claims
            .iter()
            .filter(|c| c.capacity_type == "on-demand")
            .map(|c| c.pods.len())
            .sum();
        assert!(od >= 2, "{name}: at least half the CPU on on-demand: {}", plan.json());
    }
    // Two on-demand c6.large and two spot c6.large.
    assert!(approx(ilp.hourly_cost, 0.224), "{}", ilp.json());
    // The bound knows the mix: half the CPU must be bought on demand, so the plan is optimal.
    assert!(ilp.lower_bound <= ilp.hourly_cost + 1e-9, "{}", ilp.json());
    assert!(
        ilp.lower_bound > 0.224 - 1e-6,
        "bound {}: {}",
        ilp.lower_bound,
        ilp.json()
    );
    assert_eq!(ilp.solver.status, "optimal", "{}", ilp.json());
    // Without the mix, everything goes to spot.
    let objects = vec![nodepool("default").spot_and_on_demand().build()]
        .into_iter()
        .chain(pod("worker").cpu("2").memory("1Gi").replicas(4))
        .collect::<Vec<_>>();
    let (ilp, _) = plan_both(&objects, &standard_catalog());
    assert!(
        ilp.node_claims.iter().all(|c| c.capacity_type == "spot"),
        "{}",
        ilp.json()
    );
}

// ------------------------------------------------------------------------------------------
// DaemonSets
// ------------------------------------------------------------------------------------------

#[test]
fn daemonset_overhead_pushes_a_pod_to_a_bigger_type() {
    let p = pod("app").cpu("1500m").memory("3800Mi");
    let (free, _) = plan_both(&with_pool(vec![p.build()]), &standard_catalog());
    assert_eq!(free.types(), ["c6.large"], "fits the raw allocatable of c6.large (4Gi)");
    let objects = with_pool(vec![daemonset("logs").cpu("100m").memory("512Mi").build(), p.build()]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["m6.large"], "{name}: {}", plan.json());
        // The reported allocatable is what is left after the DaemonSet.
        assert_eq!(
            plan.node_claims[0].allocatable.get("cpu").map(String::as_str),
            Some("1900m"),
            "{name}"
        );
    }
}

#[test]
fn a_daemonset_that_does_not_tolerate_a_pool_taint_adds_no_overhead_there() {
    let p = pod("app").cpu("1500m").memory("3800Mi").tolerate_key("dedicated");
    let pool = nodepool("dedicated")
        .on_demand()
        .taint("dedicated", "x", "NoSchedule")
        .build();
    let objects = vec![
        pool.clone(),
        daemonset("logs").cpu("100m").memory("512Mi").build(),
        p.build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.types(), ["c6.large"], "{name}: {}", plan.json());
    }
    let objects = vec![
        pool,
        daemonset("logs").cpu("100m").memory("512Mi").tolerate_all().build(),
        p.build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(
            plan.types(),
            ["m6.large"],
            "{name}: a tolerating DaemonSet does land: {}",
            plan.json()
        );
    }
}

// ------------------------------------------------------------------------------------------
// Existing capacity
// ------------------------------------------------------------------------------------------

#[test]
fn pods_fit_existing_nodes_before_new_nodes_are_created() {
    let objects = with_pool(vec![
        node("n1", "m6.xlarge", "test-1a").pool("default").build(),
        pod("running").cpu("1").on_node("n1").build(),
        pod("a").cpu("1").build(),
        pod("b").cpu("1").build(),
        // Does not fit next to the others on n1 (4 cpu): a new node.
        pod("c").cpu("1500m").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let on_n1: usize = plan
            .existing_nodes
            .iter()
            .filter(|e| e.node == "n1")
            .map(|e| e.pods.len())
            .sum();
        assert_eq!(on_n1, 2, "{name}: {}", plan.json());
        assert_eq!(plan.node_claims.len(), 1, "{name}");
        assert!(approx(plan.hourly_cost, 0.08), "{name}");
    }
}

#[test]
fn a_cordoned_node_gets_nothing() {
    let objects = with_pool(vec![
        node("n1", "m6.2xlarge", "test-1a").pool("default").cordoned().build(),
        pod("web").cpu("100m").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.existing_nodes.is_empty(), "{name}: {}", plan.json());
        assert_eq!(plan.types(), ["c6.large"], "{name}");
    }
}

#[test]
fn an_in_flight_node_claim_counts_as_capacity() {
    let mut objects = with_pool(vec![nodeclaim(
        "default-abc12",
        "default",
        "m6.xlarge",
        "test-1a",
        "on-demand",
    )]);
    objects.extend(pod("web").cpu("1").memory("1Gi").replicas(3));
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.node_claims.is_empty(), "{name}: no second launch: {}", plan.json());
        assert_eq!(plan.existing_nodes.len(), 1);
        assert_eq!(plan.existing_nodes[0].node, "default-abc12");
        assert_eq!(plan.existing_nodes[0].pods.len(), 3);
        assert_eq!(plan.hourly_cost, 0.0);
    }
}

// ------------------------------------------------------------------------------------------
// Determinism and the example
// ------------------------------------------------------------------------------------------

fn canonical(plan: &Plan) -> String {
    let mut p = plan.clone();
    p.solver.seconds = 0.0;
    serde_json::to_string(&p).unwrap()
}

/// A cluster using most features at once: two pools (one tainted, GPU-limited), a capacity mix,
/// a DaemonSet, a running node, a CostBudget over every pod, spread, anti-affinity, GPUs and
/// host ports.
fn mixed_cluster() -> Vec<Value> {
    let mut objects = vec![
        nodepool("default")
            .spot_and_on_demand()
            .min_on_demand_percent(20.0)
            .build(),
        nodepool("gpu")
            .on_demand()
            .weight(10)
            .taint("nvidia.com/gpu", "true", "NoSchedule")
            .limit("nvidia.com/gpu", "3")
            .build(),
        daemonset("proxy").cpu("100m").memory("128Mi").tolerate_all().build(),
        node("n1", "m6.xlarge", "test-1b").pool("default").build(),
        pod("run").cpu("2").on_node("n1").build(),
        cost_budget("all", 3.0).build(),
    ];
    objects.extend(pod("web").cpu("700m").memory("1Gi").zone_spread(1).replicas(7));
    objects.extend(
        pod("db")
            .cpu("1500m")
            .memory("6Gi")
            .anti_affinity_self(HOSTNAME_KEY)
            .replicas(3),
    );
    objects.extend(
        pod("gpu")
            .cpu("2")
            .memory("8Gi")
            .gpu(1)
            .tolerate_key("nvidia.com/gpu")
            .replicas(4),
    );
    objects.extend(pod("batch").cpu("250m").memory("256Mi").host_port(9100).replicas(4));
    objects
}

#[test]
fn the_same_input_gives_byte_identical_plans() {
    let objects = mixed_cluster();
    let catalog = standard_catalog();
    let snapshot = load(&objects, &catalog);
    for strategy in [Strategy::Ilp, Strategy::Ffd] {
        let first = canonical(&plan_one(&snapshot, &catalog, &options(), strategy));
        let second = canonical(&plan_one(&snapshot, &catalog, &options(), strategy));
        assert_eq!(first, second, "{strategy:?}");
        // Reloading the objects changes nothing either.
        let again = load(&objects, &catalog);
        assert_eq!(
            first,
            canonical(&plan_one(&again, &catalog, &options(), strategy)),
            "{strategy:?}"
        );
    }
}

#[test]
fn the_example_cluster_plans_without_violations_and_the_ilp_is_no_dearer() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/cluster.yaml")).unwrap();
    let objects = parse_documents(&text, "examples/cluster.yaml").unwrap();
    let catalog = purser::catalog::Catalog::embedded();
    let snapshot = snapshot_from_objects(&objects, &catalog).unwrap().snapshot;
    let options = PlanOptions::default();
    let ilp = plan_one(&snapshot, &catalog, &options, Strategy::Ilp);
    let ffd = plan_one(&snapshot, &catalog, &options, Strategy::Ffd);
    assert!(
        ilp.placed().is_superset(&ffd.placed()),
        "ILP places every pod FFD places"
    );
    assert!(
        ilp.hourly_cost <= ffd.hourly_cost + 1e-9,
        "ilp {} > ffd {}",
        ilp.hourly_cost,
        ffd.hourly_cost
    );
    assert!(!ilp.node_claims.is_empty());
}

// ------------------------------------------------------------------------------------------
// Regressions: behaviours the property tests found broken in the engine
// ------------------------------------------------------------------------------------------

#[test]
fn cost_budget_holds_when_nodes_move_to_cheaper_types() {
    // The ILP's nodes are re-sized to the cheapest type holding their pods; a cheaper type can
    // carry a larger share of the budget than the original. plan_both checks the budget.
    let (ilp, ffd) = plan_both(&mixed_cluster(), &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(!plan.placed().is_empty(), "{name}");
    }
}

#[test]
fn hostname_self_affinity_co_locates_pods_of_different_shapes() {
    // Different requests and tolerations put the pods in different classes; the tolerating one
    // would go to the higher-weight tainted pool on its own.
    let cache = pod("cache").affinity_self(HOSTNAME_KEY);
    let objects = vec![
        default_pool(),
        nodepool("dedicated")
            .on_demand()
            .weight(50)
            .taint("dedicated", "cache", "NoSchedule")
            .build(),
        cache.named("cache-small").cpu("250m").build(),
        cache.named("cache-big").cpu("1").build(),
        cache
            .named("cache-tolerant")
            .cpu("500m")
            .tolerate_key("dedicated")
            .build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.node_claims.len(), 1, "{name}: {}", plan.json());
        assert_eq!(plan.node_claims[0].pods.len(), 3, "{name}");
        assert_eq!(plan.node_claims[0].node_pool, "default", "{name}");
    }
}

#[test]
fn hostname_self_affinity_with_a_shared_host_port_is_unschedulable() {
    let objects = with_pool(
        pod("agent")
            .cpu("100m")
            .affinity_self(HOSTNAME_KEY)
            .host_port(9100)
            .replicas(2),
    );
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.placed().is_empty(), "{name}: {}", plan.json());
        let reason = plan.reason("default/agent-0").unwrap();
        assert!(
            reason.contains("hostname affinity") && reason.contains("conflict"),
            "{name}: {reason}"
        );
    }
}

#[test]
fn zonal_spread_stays_balanced_when_a_zone_has_no_room() {
    // Zone test-1b exists (a full running node) but cannot take more pods; new nodes only go to
    // test-1a. Karpenter places one pod; the others would exceed maxSkew.
    let objects = vec![
        nodepool("default")
            .on_demand()
            .requirement(ZONE_KEY, "In", &["test-1a"])
            .build(),
        node("n1", "c6.large", "test-1b").build(),
        pod("db").cpu("2").on_node("n1").build(),
    ]
    .into_iter()
    .chain(pod("web").cpu("100m").zone_spread(1).replicas(3))
    .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert_eq!(plan.placed().len(), 1, "{name}: {}", plan.json());
        assert_eq!(
            plan.zone_counts("default/web"),
            BTreeMap::from([("test-1a".to_string(), 1)]),
            "{name}"
        );
    }
}

#[test]
fn zonal_spread_counts_zones_of_tainted_pools() {
    // nodeTaintsPolicy defaults to Ignore: test-1c, reachable only through a tainted pool, is
    // still a domain, so untolerating pods cannot pile up in test-1a and test-1b.
    let objects = vec![
        nodepool("general")
            .on_demand()
            .requirement(ZONE_KEY, "In", &["test-1a", "test-1b"])
            .build(),
        nodepool("gpu")
            .on_demand()
            .taint("nvidia.com/gpu", "true", "NoSchedule")
            .build(),
    ]
    .into_iter()
    .chain(pod("web").cpu("100m").zone_spread(1).replicas(4))
    .collect::<Vec<_>>();
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let counts = plan.zone_counts("default/web");
        assert_eq!(
            counts,
            BTreeMap::from([("test-1a".to_string(), 1), ("test-1b".to_string(), 1)]),
            "{name}: {}",
            plan.json()
        );
        for u in &plan.unschedulable {
            assert!(u.reason.contains("topology"), "{name}: {}", u.reason);
        }
    }
}

#[test]
fn a_pool_already_over_its_limits_launches_nothing() {
    // An in-flight g5.12xlarge already holds 4 GPUs against a limit of 1: even a node without
    // GPUs may not be added to the pool.
    let objects = vec![
        nodepool("gpu")
            .spot_and_on_demand()
            .limit("nvidia.com/gpu", "1")
            .build(),
        nodeclaim("gpu-abc12", "gpu", "g5.12xlarge", "test-1a", "spot"),
        pod("web")
            .cpu("100m")
            .node_selector(CAPACITY_TYPE_KEY, "on-demand")
            .build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.node_claims.is_empty(), "{name}: {}", plan.json());
        let reason = plan.reason("default/web").unwrap();
        assert!(reason.contains("limit nvidia.com/gpu"), "{name}: {reason}");
    }
}

#[test]
fn capacity_mix_counts_pods_placed_on_existing_spot_nodes() {
    let objects = vec![
        nodepool("default").on_demand().min_on_demand_percent(80.0).build(),
        node("n1", "m6.xlarge", "test-1a").pool("default").spot().build(),
        pod("a").cpu("2").memory("1Gi").build(),
        pod("b").cpu("1").memory("1Gi").build(),
        pod("c").cpu("1").memory("1Gi").build(),
        pod("d").cpu("100m").memory("128Mi").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let spot: usize = plan.existing_nodes.iter().map(|e| e.pods.len()).sum();
        assert!(
            spot <= 1,
            "{name}: at most the small pod fits the mix on the spot node: {}",
            plan.json()
        );
    }
    // Everything fits: the small pod on the spot node, the rest on on-demand nodes.
    assert_eq!(ilp.placed().len(), 4, "{}", ilp.json());
}

#[test]
fn capacity_mix_of_each_pool_is_enforced() {
    // "legacy" already misses its mix and launches nothing; "spot-only" can never meet its own,
    // so it launches nothing either.
    let objects = vec![
        nodepool("legacy")
            .on_demand()
            .weight(100)
            .min_on_demand_percent(50.0)
            .taint("team", "legacy", "NoSchedule")
            .build(),
        node("n1", "m6.xlarge", "test-1a")
            .pool("legacy")
            .spot()
            .taint("team", "legacy", "NoSchedule")
            .build(),
        pod("old").cpu("1").tolerate_key("team").on_node("n1").build(),
        nodepool("spot-only")
            .requirement(CAPACITY_TYPE_KEY, "In", &["spot"])
            .min_on_demand_percent(20.0)
            .build(),
        pod("web").cpu("1").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let reason = plan
            .reason("default/web")
            .unwrap_or_else(|| panic!("{name}: {}", plan.json()));
        assert!(
            reason.starts_with("capacity mix of NodePool spot-only"),
            "{name}: {reason}"
        );
    }
}

#[test]
fn pods_counted_by_a_running_pods_spread_keep_its_skew() {
    // A running pod's spread holds in the final state too: a pod it counts (same labels, no
    // constraint of its own) may not pile into its zone when the other zones are empty.
    let objects = with_pool(vec![
        node("n1", "c6.large", "test-1a").build(),
        pod("web")
            .cpu("2")
            .zone_spread(1)
            .named("web-run")
            .on_node("n1")
            .build(),
        pod("web")
            .cpu("100m")
            .named("web-extra")
            .node_selector(ZONE_KEY, "test-1a")
            .build(),
        pod("web").cpu("100m").named("web-free").build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let reason = plan
            .reason("default/web-extra")
            .unwrap_or_else(|| panic!("{name}: {}", plan.json()));
        assert!(reason.contains(ZONE_KEY), "{name}: {reason}");
        let free = plan
            .claim("default/web-free")
            .unwrap_or_else(|| panic!("{name}: {}", plan.json()));
        assert_ne!(free.zone, "test-1a", "{name}");
    }
}

#[test]
fn a_spread_pod_that_fits_nowhere_gets_the_real_reason() {
    let objects = with_pool(vec![
        pod("web")
            .cpu("100m")
            .zone_spread(1)
            .node_selector(INSTANCE_TYPE_KEY, "x9.huge")
            .build(),
    ]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let reason = plan.reason("default/web").unwrap();
        assert!(
            reason.contains("x9.huge"),
            "{name}: the reason names the selector, not the topology: {reason}"
        );
    }
}

#[test]
fn a_pod_waiting_for_its_affinity_target_is_unschedulable() {
    // Every pending pod is rejected before packing: the ILP has nothing to decide.
    let objects = with_pool(vec![pod("cache").cpu("100m").affinity_to("db", ZONE_KEY).build()]);
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        let reason = plan.reason("default/cache").unwrap();
        assert!(reason.contains("waits"), "{name}: {reason}");
        assert!(plan.node_claims.is_empty());
    }
}

#[test]
fn hostname_self_affinity_pods_no_node_can_hold_together_are_unschedulable() {
    // Two differently shaped pods that must share a node, and no type of the pool holds both.
    let cache = pod("cache").affinity_self(HOSTNAME_KEY).cpu("10");
    let objects = vec![
        nodepool("default")
            .on_demand()
            .requirement(INSTANCE_FAMILY_KEY, "In", &["c6", "m6", "r6"])
            .build(),
        cache.named("cache-a").memory("1Gi").build(),
        cache.named("cache-b").memory("2Gi").build(),
    ];
    let (ilp, ffd) = plan_both(&objects, &standard_catalog());
    for (name, plan) in both(&ilp, &ffd) {
        assert!(plan.placed().is_empty(), "{name}: {}", plan.json());
        let reason = plan.reason("default/cache-a").unwrap();
        assert!(reason.contains("no single node can hold them all"), "{name}: {reason}");
    }
}

/// GPU pods on a tainted GPU pool and CPU pods on a CPU-only pool never share a node, so the
/// bound is taken for each part with its own weights and the parts add up: here it proves the
/// plan optimal, where one set of weights for both could prove at most the GPU node's price.
#[test]
fn the_bound_adds_up_parts_that_share_no_node() {
    let objects = vec![
        nodepool("cpu")
            .on_demand()
            .requirement("purser.dev/instance-family", "In", &["c6", "m6"])
            .build(),
        nodepool("gpu")
            .on_demand()
            .requirement("purser.dev/instance-family", "In", &["g5"])
            .taint("nvidia.com/gpu", "true", "NoSchedule")
            .build(),
    ]
    .into_iter()
    .chain(pod("web").cpu("2").memory("3Gi").replicas(4))
    .chain(std::iter::once(
        pod("train")
            .cpu("3")
            .memory("8Gi")
            .gpu(1)
            .tolerate_key("nvidia.com/gpu")
            .build(),
    ))
    .collect::<Vec<_>>();
    let (ilp, _) = plan_both(&objects, &standard_catalog());
    // One g5.xlarge (1.00) and four c6.large (0.08 each).
    assert!(approx(ilp.hourly_cost, 1.32), "{}", ilp.json());
    assert!(
        ilp.lower_bound > 1.32 - 1e-6,
        "bound {}: {}",
        ilp.lower_bound,
        ilp.json()
    );
    assert_eq!(ilp.solver.status, "optimal", "{}", ilp.json());
}
