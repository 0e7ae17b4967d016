//! The disruption engine, rule by rule: protections, emptiness, GPU-idle reclaim, m→n
//! consolidation, drift, expiry, interruption and budgets; and no oscillation over 100 passes.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use purser::catalog::Catalog;
use purser::disruption::{Action, Decision, DisruptOptions, Replacement, decide, whatif};
use purser::model::Snapshot;
use purser::model::disruption::{BudgetNodes, DisruptionBudget, DoNotDisrupt, InterruptionKind, PdbInfo, Reason};
use purser::model::pod::LabelSelector;
use serde_json::{Value, json};

/// 2026-11-25T12:00:00Z.
const NOW: i64 = 1_795_608_000;
const DAY: i64 = 86_400;

/// A pod owned by a ReplicaSet (so it comes back when evicted).
fn owned(mut pod: Value) -> Value {
    pod["metadata"]["ownerReferences"] = json!([{
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1", "controller": true
    }]);
    pod
}

/// Load `objects`; every node initialized and two days old, every pod started two days ago.
fn settled(objects: &[Value], catalog: &Catalog) -> Snapshot {
    let mut s = load(objects, catalog);
    for n in &mut s.nodes {
        n.created = NOW - 2 * DAY;
        n.initialized = !n.in_flight;
    }
    for p in &mut s.pods {
        p.started = Some(NOW - 2 * DAY);
    }
    s
}

/// Let every pool disrupt all its nodes at once.
fn unlimited_budgets(s: &mut Snapshot) {
    for p in &mut s.pools {
        p.disruption.budgets.clear();
    }
}

fn options() -> DisruptOptions {
    let mut o = DisruptOptions::at(NOW);
    o.plan.time_limit = Duration::from_millis(300);
    o.search_time = Duration::from_secs(5);
    o
}

fn run(s: &Snapshot, c: &Catalog) -> Decision {
    decide(s, c, &options())
}

fn disrupted(d: &Decision) -> Vec<String> {
    let mut v: Vec<String> = d.commands.iter().flat_map(|c| c.nodes.clone()).collect();
    v.sort();
    v
}

/// Two m6.2xlarge nodes of pool `default`, each holding one 1-CPU pod: consolidation bait.
fn two_idle_nodes() -> Vec<Value> {
    vec![
        nodepool("default").build(),
        node("a", "m6.2xlarge", "test-1a").pool("default").build(),
        node("b", "m6.2xlarge", "test-1a").pool("default").build(),
        owned(pod("pa").cpu("1").memory("2Gi").on_node("a").build()),
        owned(pod("pb").cpu("1").memory("2Gi").on_node("b").build()),
    ]
}

#[test]
fn underutilized_pair_is_consolidated() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert_eq!(disrupted(&d), vec!["a", "b"], "{d:#?}");
    let cmd = &d.commands[0];
    assert_eq!(cmd.reason, Reason::Underutilized);
    assert_eq!(cmd.action, Action::Replace);
    assert!(cmd.launch_before_drain);
    assert!(cmd.cost_after < cmd.cost_before * 0.9, "{cmd:#?}");
    assert!(approx(cmd.saving_per_hour, cmd.cost_before - cmd.cost_after));
}

#[test]
fn do_not_disrupt_pod_is_never_chosen() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    s.pods
        .iter_mut()
        .find(|p| p.key == "default/pa")
        .unwrap()
        .do_not_disrupt = DoNotDisrupt::Always;
    let d = run(&s, &c);
    assert!(!disrupted(&d).contains(&"a".to_string()), "{d:#?}");
    let blocked = d.blocked.iter().find(|b| b.node == "a").expect("a is reported blocked");
    assert!(blocked.reason.contains("do-not-disrupt"), "{}", blocked.reason);
}

#[test]
fn do_not_disrupt_duration_expires() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    let pa = s.pods.iter_mut().find(|p| p.key == "default/pa").unwrap();
    pa.do_not_disrupt = DoNotDisrupt::For(3600);
    pa.started = Some(NOW - 1800);
    assert!(!disrupted(&run(&s, &c)).contains(&"a".to_string()));
    let pa = s.pods.iter_mut().find(|p| p.key == "default/pa").unwrap();
    pa.started = Some(NOW - 3601);
    assert!(disrupted(&run(&s, &c)).contains(&"a".to_string()));
}

#[test]
fn node_annotation_blocks() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    s.nodes[0].do_not_disrupt = true;
    let d = run(&s, &c);
    assert!(!disrupted(&d).contains(&"a".to_string()));
    assert!(d.blocked.iter().any(|b| b.node == "a" && b.reason.contains("node has")));
}

#[test]
fn pdb_with_no_disruptions_allowed_blocks() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    s.pdbs.push(PdbInfo {
        key: "default/pa".into(),
        namespace: "default".into(),
        selector: LabelSelector::from_labels(&[("app".to_string(), "pa".to_string())].into()),
        disruptions_allowed: 0,
    });
    let d = run(&s, &c);
    assert!(!disrupted(&d).contains(&"a".to_string()), "{d:#?}");
    assert!(
        d.blocked
            .iter()
            .any(|b| b.node == "a" && b.reason.contains("PodDisruptionBudget"))
    );
}

#[test]
fn pdb_max_unavailable_zero_from_objects_blocks() {
    let c = standard_catalog();
    let mut objects = two_idle_nodes();
    objects.push(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "pa", "namespace": "default"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "pa"}}}
    }));
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert!(!disrupted(&d).contains(&"a".to_string()), "{d:#?}");
}

#[test]
fn pod_without_controller_blocks() {
    let c = standard_catalog();
    let mut objects = two_idle_nodes();
    objects[3] = pod("pa").cpu("1").memory("2Gi").on_node("a").build();
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert!(!disrupted(&d).contains(&"a".to_string()));
    assert!(
        d.blocked
            .iter()
            .any(|b| b.node == "a" && b.reason.contains("no controller"))
    );
}

#[test]
fn young_or_recently_changed_nodes_are_not_candidates() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    s.nodes[0].created = NOW - 300;
    assert!(!disrupted(&run(&s, &c)).contains(&"a".to_string()));
    s.nodes[0].created = NOW - DAY;
    s.pods.iter_mut().find(|p| p.key == "default/pa").unwrap().started = Some(NOW - 120);
    assert!(!disrupted(&run(&s, &c)).contains(&"a".to_string()));
}

#[test]
fn uninitialized_and_deleting_nodes_are_blocked() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    unlimited_budgets(&mut s);
    s.nodes[0].initialized = false;
    s.nodes[1].deleting = true;
    let d = run(&s, &c);
    assert!(d.commands.is_empty(), "{d:#?}");
    assert_eq!(d.blocked.len(), 2);
}

#[test]
fn pods_never_move_onto_a_node_that_is_not_initialized() {
    let c = standard_catalog();
    let mut objects = two_idle_nodes();
    objects.push(node("c", "m6.2xlarge", "test-1a").pool("default").build());
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let coming = s.nodes.iter_mut().find(|n| n.name == "c").expect("node c");
    coming.initialized = false;
    coming.created = NOW;
    let d = run(&s, &c);
    assert_eq!(disrupted(&d), vec!["a", "b"], "{d:#?}");
    for cmd in &d.commands {
        assert!(cmd.moves.iter().all(|m| m.node != "c"), "{cmd:#?}");
        assert_eq!(cmd.action, Action::Replace, "{cmd:#?}");
    }
}

#[test]
fn three_sparse_m5_2xlarge_become_one_cheaper_node() {
    let c = Catalog::embedded();
    let mut objects = vec![
        nodepool("default")
            .requirement("purser.dev/instance-family", "In", &["m5"])
            .on_demand()
            .build(),
    ];
    for n in ["a", "b", "c"] {
        objects.push(node(n, "m5.2xlarge", "us-east-1a").pool("default").build());
        for i in 0..3 {
            objects.push(owned(
                pod(&format!("{n}{i}")).cpu("800m").memory("3Gi").on_node(n).build(),
            ));
        }
    }
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1, "{d:#?}");
    let cmd = &d.commands[0];
    assert_eq!(cmd.nodes, vec!["a", "b", "c"]);
    assert_eq!(cmd.node_claims.len(), 1, "{cmd:#?}");
    assert_eq!(cmd.node_claims[0].instance_type, "m5.2xlarge");
    assert!(approx(cmd.saving_per_hour, 2.0 * 0.384), "{cmd:#?}");
}

/// Node `a` holds pods that must stay in zone 1a, node `b` pods that must stay in 1b: the
/// cheapest replacement is two different, smaller nodes, which one replacement node cannot be.
fn zone_pinned_pair() -> Vec<Value> {
    vec![
        nodepool("default").on_demand().build(),
        node("a", "m6.4xlarge", "test-1a").pool("default").build(),
        node("b", "m6.4xlarge", "test-1b").pool("default").build(),
        owned(
            pod("pa")
                .cpu("3")
                .memory("8Gi")
                .node_selector(ZONE_KEY, "test-1a")
                .on_node("a")
                .build(),
        ),
        owned(
            pod("pa2")
                .cpu("3")
                .memory("8Gi")
                .node_selector(ZONE_KEY, "test-1a")
                .on_node("a")
                .build(),
        ),
        owned(
            pod("pb")
                .cpu("1")
                .memory("2Gi")
                .node_selector(ZONE_KEY, "test-1b")
                .on_node("b")
                .build(),
        ),
    ]
}

#[test]
fn two_nodes_replaced_by_two_different_cheaper_nodes() {
    let c = standard_catalog();
    let mut s = settled(&zone_pinned_pair(), &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1, "{d:#?}");
    let cmd = &d.commands[0];
    assert_eq!(cmd.nodes, vec!["a", "b"]);
    let mut types: Vec<&str> = cmd.node_claims.iter().map(|n| n.instance_type.as_str()).collect();
    types.sort();
    assert_eq!(types, vec!["c6.large", "m6.2xlarge"], "{cmd:#?}");
    assert!(approx(cmd.cost_after, 0.48));
}

#[test]
fn many_to_one_needs_two_commands_where_many_to_many_needs_one() {
    let c = standard_catalog();
    let mut s = settled(&zone_pinned_pair(), &c);
    unlimited_budgets(&mut s);
    let mut o = options();
    o.replacement = Replacement::ManyToOne;
    let d = decide(&s, &c, &o);
    assert!(d.commands.iter().all(|c| c.node_claims.len() <= 1), "{d:#?}");
    assert_eq!(d.commands.len(), 2, "{d:#?}");
    let after: f64 = d.commands.iter().map(|c| c.cost_after).sum();
    assert!(approx(after, 0.48));
}

#[test]
fn savings_threshold_is_respected() {
    let c = standard_catalog();
    // m6.xlarge (0.20) holding 3 CPU: the best replacement is the same size, no saving.
    let objects = vec![
        nodepool("default").on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        owned(pod("p").cpu("3").memory("6Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
    // c6.large does for 1.5 CPU (0.08 vs 0.20 = 60%), but not when 65% is asked.
    let objects = vec![
        nodepool("default").on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        owned(pod("p").cpu("1500m").memory("3Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    assert_eq!(run(&s, &c).commands.len(), 1);
    s.pools[0].disruption.min_savings_percent = 65.0;
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
    s.pools[0].disruption.min_savings_percent = 0.0;
    s.pools[0].disruption.min_savings_per_hour = 0.2;
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
}

#[test]
fn empty_node_is_deleted_after_the_ttl_and_a_pod_event_resets_it() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        daemonset("agent").cpu("100m").build(),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1);
    assert_eq!(d.commands[0].reason, Reason::Empty);
    assert_eq!(d.commands[0].action, Action::Delete);
    assert!(approx(d.commands[0].saving_per_hour, 0.2));
    s.nodes[0].last_pod_event = Some(NOW - 300);
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
    s.pools[0].disruption.consolidate_after = None;
    s.nodes[0].last_pod_event = None;
    assert!(run(&s, &c).commands.is_empty(), "consolidateAfter: Never");
}

#[test]
fn gpu_node_left_with_cpu_pods_is_reclaimed_after_the_ttl() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("cpu")
            .requirement(INSTANCE_FAMILY_KEY, "In", &["m6", "c6"])
            .build(),
        nodepool("gpu")
            .requirement(INSTANCE_FAMILY_KEY, "In", &["g5"])
            .taint("nvidia.com/gpu", "", "NoSchedule")
            .build(),
        node("g", "g5.xlarge", "test-1a")
            .pool("gpu")
            .taint("nvidia.com/gpu", "", "NoSchedule")
            .build(),
        owned(
            pod("web")
                .cpu("500m")
                .memory("1Gi")
                .tolerate_key("nvidia.com/gpu")
                .on_node("g")
                .build(),
        ),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    s.nodes[0].last_pod_event = Some(NOW - 120);
    assert!(run(&s, &c).commands.is_empty(), "inside the TTL");
    s.nodes[0].last_pod_event = Some(NOW - 601);
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1, "{d:#?}");
    let cmd = &d.commands[0];
    assert_eq!(cmd.reason, Reason::GpuIdle);
    assert_eq!(cmd.nodes, vec!["g"]);
    assert_eq!(cmd.node_claims.len(), 1);
    assert_eq!(cmd.node_claims[0].node_pool, "cpu");
    assert!(cmd.cost_after < 0.2);
}

#[test]
fn gpu_node_with_a_gpu_pod_is_kept() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("gpu")
            .requirement(INSTANCE_FAMILY_KEY, "In", &["g5"])
            .on_demand()
            .build(),
        node("g", "g5.xlarge", "test-1a").pool("gpu").build(),
        owned(pod("train").gpu(1).cpu("2").on_node("g").build()),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
}

#[test]
fn budget_zero_in_a_cron_window_blocks_underutilized_but_not_expired() {
    let c = standard_catalog();
    let mut objects = two_idle_nodes();
    objects.push(node("old", "m6.xlarge", "test-1a").pool("default").build());
    objects.push(owned(pod("po").cpu("3").memory("6Gi").on_node("old").build()));
    let mut s = settled(&objects, &c);
    s.nodes.iter_mut().find(|n| n.name == "old").unwrap().created = NOW - 31 * DAY;
    s.pools[0].disruption.budgets = vec![DisruptionBudget {
        nodes: BudgetNodes::Count(0),
        schedule: Some("0 9 * * *".into()),
        duration: Some(8 * 3600),
        reasons: vec![],
    }];
    let d = run(&s, &c);
    let reasons: Vec<Reason> = d.commands.iter().map(|c| c.reason).collect();
    assert_eq!(reasons, vec![Reason::Expired], "{d:#?}");
    assert_eq!(d.commands[0].nodes, vec!["old"]);
    // Outside the window the budget is inactive and consolidation proceeds.
    let mut o = options();
    o.now = NOW + 6 * 3600;
    let d = decide(&s, &c, &o);
    assert!(d.commands.iter().any(|c| c.reason == Reason::Underutilized), "{d:#?}");
}

#[test]
fn budget_limits_nodes_per_reason() {
    let c = standard_catalog();
    let mut s = settled(&two_idle_nodes(), &c);
    s.pools[0].disruption.budgets = vec![DisruptionBudget {
        nodes: BudgetNodes::Count(1),
        schedule: None,
        duration: None,
        reasons: vec![Reason::Underutilized],
    }];
    let d = run(&s, &c);
    assert!(disrupted(&d).len() <= 1, "{d:#?}");
}

#[test]
fn drifted_node_is_replaced() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").on_demand().label("team", "ml").build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        owned(pod("p").cpu("3").memory("6Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1, "{d:#?}");
    assert_eq!(d.commands[0].reason, Reason::Drifted);
    assert!(d.commands[0].detail.contains("team=ml"), "{}", d.commands[0].detail);
    // A changed template hash drifts too.
    let objects = vec![
        nodepool("default").on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        owned(pod("p").cpu("3").memory("6Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
    s.pools[0].template_hash = "new".into();
    s.nodes[0].pool_hash = Some("old".into());
    assert_eq!(run(&s, &c).commands[0].reason, Reason::Drifted);
}

#[test]
fn expired_node_is_replaced_unless_never() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        owned(pod("p").cpu("3").memory("6Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    s.nodes[0].created = NOW - 721 * 3600;
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1);
    assert_eq!(d.commands[0].reason, Reason::Expired);
    assert_eq!(d.commands[0].node_claims[0].instance_type, "m6.xlarge");
    s.pools[0].disruption.expire_after = None;
    {
        let d = run(&s, &c);
        assert!(d.commands.is_empty(), "{d:#?}");
    }
}

#[test]
fn spot_interruption_replaces_at_once_avoiding_the_offering() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").spot_and_on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").spot().build(),
        owned(pod("p").cpu("3").memory("6Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    s.nodes[0].created = NOW - 60;
    s.nodes[0].do_not_disrupt = true;
    s.nodes[0].interruption = Some(InterruptionKind::SpotInterruption);
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1, "{d:#?}");
    let cmd = &d.commands[0];
    assert_eq!(cmd.reason, Reason::Interrupted);
    assert_eq!(cmd.node_claims.len(), 1);
    let n = &cmd.node_claims[0];
    assert!(
        !(n.instance_type == "m6.xlarge" && n.zone == "test-1a" && n.capacity_type == "spot"),
        "{n:#?}"
    );
}

#[test]
fn rebalance_prelaunches_only_when_the_pool_opts_in() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").spot_and_on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").spot().build(),
        owned(pod("p").cpu("3").memory("6Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    s.nodes[0].interruption = Some(InterruptionKind::Rebalance);
    let d = run(&s, &c);
    assert!(d.commands.is_empty());
    assert!(d.blocked.iter().any(|b| b.reason.contains("rebalance")));
    s.pools[0].disruption.prelaunch_on_rebalance = true;
    let d = run(&s, &c);
    assert_eq!(d.commands.len(), 1);
    assert!(d.commands[0].launch_before_drain);
}

#[test]
fn unmanaged_nodes_are_left_alone() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").build(),
        node("a", "m6.2xlarge", "test-1a").build(),
        owned(pod("pa").cpu("1").on_node("a").build()),
    ];
    let s = settled(&objects, &c);
    let d = run(&s, &c);
    assert!(d.commands.is_empty() && d.blocked.is_empty());
}

#[test]
fn pods_are_never_stranded_by_consolidation() {
    let c = standard_catalog();
    // The only pool is limited to what exists: nothing new may launch, so nothing moves.
    let mut objects = two_idle_nodes();
    objects[0] = nodepool("default").limit("cpu", "16").build();
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    s.nodes[1].do_not_disrupt = true;
    let d = run(&s, &c);
    for cmd in &d.commands {
        assert!(cmd.stranded.is_empty());
    }
}

/// Total hourly price of the nodes.
fn bill(s: &Snapshot) -> f64 {
    s.nodes.iter().filter_map(|n| n.price).sum()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, .. ProptestConfig::default() })]

    /// A steady random cluster: every pass's commands are applied and the clock moves on 11
    /// minutes; over 100 passes the bill never rises, no pod is left pending, and the engine
    /// settles (no node is replaced back and forth).
    #[test]
    fn no_oscillation_over_100_passes(
        nodes in proptest::collection::vec((0usize..4, 0usize..3, 1usize..4), 2..7),
        seed in 0u64..1000,
    ) {
        let c = standard_catalog();
        let types = ["m6.large", "m6.xlarge", "m6.2xlarge", "m6.4xlarge"];
        let mut objects = vec![nodepool("default").on_demand().build()];
        let mut k = seed;
        for (i, (t, z, pods)) in nodes.iter().enumerate() {
            let name = format!("n{i}");
            objects.push(node(&name, types[*t], ZONES[*z]).pool("default").build());
            for j in 0..*pods {
                k = k.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let cpu = ["250m", "500m", "1"][(k >> 33) as usize % 3];
                objects.push(owned(pod(&format!("p{i}-{j}")).cpu(cpu).memory("1Gi").on_node(&name).build()));
            }
        }
        let mut s = settled(&objects, &c);
        unlimited_budgets(&mut s);
        let mut o = options();
        o.plan.time_limit = Duration::from_millis(100);
        let mut last = bill(&s);
        let mut quiet = 0;
        for pass in 0..100 {
            let d = decide(&s, &c, &o);
            if d.commands.is_empty() {
                quiet += 1;
                if quiet >= 3 {
                    break;
                }
            } else {
                quiet = 0;
            }
            for cmd in &d.commands {
                prop_assert!(cmd.saving_per_hour > 0.0, "pass {pass}: {cmd:#?}");
                s = whatif::apply(&s, cmd, &c, o.now, true);
            }
            let now = bill(&s);
            prop_assert!(now <= last + 1e-9, "pass {pass}: bill rose {last} -> {now}");
            prop_assert!(s.pods.iter().all(|p| p.node_name.is_some()), "pass {pass}: a pod is pending");
            last = now;
            o.now += 11 * 60;
            prop_assert!(pass < 30, "still changing after 30 passes");
        }
    }
}

#[test]
fn interrupted_offering_stays_unavailable_for_the_rest_of_the_decision() {
    let c = standard_catalog();
    let pinned = |name: &str, node: &str| {
        owned(
            pod(name)
                .cpu("500m")
                .memory("1Gi")
                .node_selector(ZONE_KEY, "test-1a")
                .on_node(node)
                .build(),
        )
    };
    let objects = vec![
        nodepool("default")
            .requirement(INSTANCE_TYPE_KEY, "In", &["m6.xlarge"])
            .requirement(CAPACITY_TYPE_KEY, "In", &["spot"])
            .build(),
        node("s1", "m6.xlarge", "test-1a").pool("default").spot().build(),
        node("n1", "m6.xlarge", "test-1a").pool("default").spot().build(),
        node("n2", "m6.xlarge", "test-1a").pool("default").spot().build(),
        pinned("ps", "s1"),
        pinned("p1", "n1"),
        pinned("p2", "n2"),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    s.nodes.iter_mut().find(|n| n.name == "s1").unwrap().interruption = Some(InterruptionKind::SpotInterruption);
    let d = run(&s, &c);
    assert_eq!(d.commands[0].reason, Reason::Interrupted, "{d:#?}");
    for cmd in &d.commands {
        for n in &cmd.node_claims {
            assert!(
                !(n.instance_type == "m6.xlarge" && n.zone == "test-1a" && n.capacity_type == "spot"),
                "{cmd:#?}"
            );
        }
    }
}

#[test]
fn expiry_waits_when_a_pdb_allows_fewer_evictions_than_the_node_needs() {
    let c = standard_catalog();
    let objects = vec![
        nodepool("default").on_demand().build(),
        node("a", "m6.xlarge", "test-1a").pool("default").build(),
        owned(pod("p1").label("app", "db").cpu("1").on_node("a").build()),
        owned(pod("p2").label("app", "db").cpu("1").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    s.nodes[0].created = NOW - 721 * 3600;
    s.pdbs.push(PdbInfo {
        key: "default/db".into(),
        namespace: "default".into(),
        selector: LabelSelector::from_labels(&[("app".to_string(), "db".to_string())].into()),
        disruptions_allowed: 1,
    });
    let d = run(&s, &c);
    assert!(d.commands.is_empty(), "{d:#?}");
    assert!(d.blocked[0].reason.contains("PodDisruptionBudget"), "{d:#?}");
}

/// Spot-only test catalog: a steady xlarge (the node to replace), a steady large, and, when
/// `flaky` is set, a cheaper large with a much higher interruption rate.
fn spot_catalog(flaky: bool) -> Catalog {
    let mut c = catalog()
        .with(
            instance("steady.xlarge", "4", "16Gi")
                .on_demand_in("test-1a", 0.20)
                .spot_in("test-1a", 0.08, Some(0.01)),
        )
        .with(
            instance("steady.large", "2", "8Gi")
                .on_demand_in("test-1a", 0.10)
                .spot_in("test-1a", 0.04, Some(0.01)),
        );
    if flaky {
        c = c.with(
            instance("flaky.large", "2", "8Gi")
                .on_demand_in("test-1a", 0.10)
                .spot_in("test-1a", 0.03, Some(0.30)),
        );
    }
    c.build()
}

#[test]
fn spot_to_spot_needs_no_higher_expected_interruption_cost() {
    let c = spot_catalog(true);
    let objects = vec![
        nodepool("default")
            .requirement(CAPACITY_TYPE_KEY, "In", &["spot"])
            .build(),
        node("a", "steady.xlarge", "test-1a").pool("default").spot().build(),
        owned(pod("p").cpu("1").memory("2Gi").on_node("a").build()),
    ];
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let mut o = options();
    // The planner sees list prices only, so it would pick the flaky type.
    o.plan.spot_rework_hours = 0.0;
    let d = decide(&s, &c, &o);
    for cmd in &d.commands {
        assert!(
            cmd.node_claims.iter().all(|n| n.instance_type != "flaky.large"),
            "{cmd:#?}"
        );
    }
    // Without the flaky type, the steady smaller type is a fine spot -> spot move.
    let c = spot_catalog(false);
    let mut s = settled(&objects, &c);
    unlimited_budgets(&mut s);
    let d = decide(&s, &c, &o);
    assert_eq!(d.commands.len(), 1, "{d:#?}");
    assert_eq!(d.commands[0].node_claims[0].instance_type, "steady.large");
}
