//! The simulator: determinism, budgets, interruption losses and scale-to-zero.

use purser::catalog::Catalog;
use purser::model::Snapshot;
use purser::sim::policy::Policy;
use purser::sim::rng::Rng;
use purser::sim::scenario::Scenario;
use purser::sim::world::{SimPod, Work, World};
use purser::sim::{self, START, SimOptions, load};

fn quickstart(catalog: &Catalog) -> (Scenario, Snapshot) {
    let loaded = load::load_scenario("quickstart", catalog).expect("quickstart loads");
    (loaded.scenario, loaded.snapshot)
}

fn options(hours: f64, policies: Vec<Policy>) -> SimOptions {
    SimOptions {
        hours,
        seed: 3,
        policies,
    }
}

#[test]
fn the_same_seed_gives_identical_kpis() {
    let c = Catalog::embedded();
    let (scenario, base) = quickstart(&c);
    // The ILP (purser) too: its limits count work under the simulator, not time.
    let o = options(6.0, Policy::ALL.to_vec());
    let a = sim::simulate(&scenario, &base, &c, &o, &|_, _| {});
    let b = sim::simulate(&scenario, &base, &c, &o, &|_, _| {});
    for (x, y) in a.policies.iter().zip(&b.policies) {
        let (mut kx, mut ky) = (x.kpis.clone(), y.kpis.clone());
        // Decision times are wall-clock measurements, not simulation output.
        kx.mean_decision_seconds = 0.0;
        kx.max_decision_seconds = 0.0;
        ky.mean_decision_seconds = 0.0;
        ky.max_decision_seconds = 0.0;
        assert_eq!(kx, ky, "{}", x.name);
        assert_eq!(x.timeline, y.timeline);
    }
}

#[test]
fn parallel_policies_give_the_sequential_results() {
    let c = Catalog::embedded();
    let (scenario, base) = quickstart(&c);
    let o = options(6.0, vec![Policy::Karpenter, Policy::ClusterAutoscaler]);
    let parallel = sim::simulate(&scenario, &base, &c, &o, &|_, _| {});
    for (i, &policy) in o.policies.iter().enumerate() {
        let mut alone = sim::simulate_policy(&scenario, &base, &c, &o, policy, &|_| {});
        let mut together = parallel.policies[i].clone();
        for k in [&mut alone.kpis, &mut together.kpis] {
            k.mean_decision_seconds = 0.0;
            k.max_decision_seconds = 0.0;
        }
        assert_eq!(alone, together, "{}", policy.name());
    }
}

#[test]
fn purser_never_exceeds_a_budget() {
    let c = Catalog::embedded();
    let (scenario, base) = quickstart(&c);
    assert!(!base.budgets.is_empty(), "quickstart carries a CostBudget");
    let r = sim::simulate(&scenario, &base, &c, &options(24.0, vec![Policy::Purser]), &|_, _| {});
    assert_eq!(r.policies[0].kpis.budget_breaches, 0);
    assert!(r.policies[0].kpis.total_spend > 0.0);
}

#[test]
fn a_scenario_without_load_ends_with_zero_nodes() {
    let c = Catalog::embedded();
    let (mut scenario, base) = quickstart(&c);
    scenario.training.clear();
    scenario.batch.clear();
    scenario.inference.clear();
    for n in &mut scenario.notebooks {
        n.hours = Some(1.0);
    }
    let r = sim::simulate(&scenario, &base, &c, &options(3.0, Policy::ALL.to_vec()), &|_, _| {});
    for p in &r.policies {
        let last = p.timeline.last().expect("hours");
        assert_eq!(
            last.on_demand_nodes + last.spot_nodes,
            0,
            "{}: {:?}",
            p.name,
            p.timeline
        );
    }
}

#[test]
fn an_interruption_loses_exactly_the_work_since_the_last_checkpoint() {
    let c = Catalog::embedded();
    let (scenario, base) = quickstart(&c);
    let mut world = World::new(&c, &base, START, START + 86_400, Rng::new(1, 1));
    let mut workloads = sim::workload::Workloads::new(&scenario, 1, START);
    // Find a training pod template by running arrivals until one appears.
    while !world.pods.iter().any(|p| matches!(p.work, Work::Training { .. })) {
        workloads.arrivals(&mut world, &scenario);
        world.now += 60;
    }
    let i = world
        .pods
        .iter()
        .position(|p| matches!(p.work, Work::Training { .. }))
        .unwrap();
    let Work::Training { checkpoint, .. } = world.pods[i].work else {
        unreachable!()
    };
    let node = sim_node(&world, i, "trainer", world.now);
    world.nodes.push(node);
    world.pods[i].remaining = checkpoint * 10.0;
    world.schedule();
    assert!(world.pods[i].info.node_name.is_some(), "the pod runs");
    let steps = (checkpoint / 60.0) as i64 + 3;
    for _ in 0..steps {
        world.progress();
        world.now += 60;
    }
    let before = world.pods[i].remaining;
    let since = world.pods[i].since_checkpoint;
    assert!(since > 0.0 && since < checkpoint);
    let lost_before = world.ledger.gpu_seconds_lost;
    let name = world.nodes[0].info.name.clone();
    world.terminate(&name, world.now, false);
    world.cloud_events();
    assert!(world.pods[i].info.node_name.is_none());
    assert_eq!(world.pods[i].remaining, before + since);
    assert_eq!(world.pods[i].since_checkpoint, 0.0);
    assert!((world.ledger.gpu_seconds_lost - lost_before - since * world.pods[i].gpus).abs() < 1e-9);
}

/// A node big enough for `pod`, accepting it (labels from its selector, no taints).
fn base_node(world: &World, pod: &SimPod) -> purser::model::NodeInfo {
    let it = world
        .catalog
        .instance_types
        .iter()
        .filter(|t| pod.info.requests.fits_in(&t.allocatable))
        .min_by(|a, b| a.offerings[0].price.total_cmp(&b.offerings[0].price))
        .expect("some type fits");
    let mut labels = it.labels.clone();
    for r in &pod.info.node_selector.0 {
        if let Some(v) = r.values.first() {
            labels.insert(r.key.clone(), v.clone());
        }
    }
    purser::model::NodeInfo {
        name: "n".into(),
        labels,
        taints: vec![],
        allocatable: it.allocatable.clone(),
        capacity: it.capacity.clone(),
        pool: None,
        instance_type: Some(it.name.clone()),
        capacity_type: None,
        zone: None,
        price: Some(1.0),
        in_flight: false,
        cordoned: false,
        created: START,
        initialized: true,
        deleting: false,
        do_not_disrupt: false,
        pool_hash: None,
        last_pod_event: None,
        interruption: None,
    }
}

/// A world of quickstart whose only pod (index 0) is a pending training pod.
fn world_with_a_pending_pod<'a>(c: &'a Catalog, scenario: &Scenario, base: &'a Snapshot) -> World<'a> {
    let mut world = World::new(c, base, START, START + 86_400, Rng::new(1, 1));
    let mut workloads = sim::workload::Workloads::new(scenario, 1, START);
    while !world.pods.iter().any(|p| matches!(p.work, Work::Training { .. })) {
        workloads.arrivals(&mut world, scenario);
        world.now += 60;
    }
    world.pods.retain(|p| matches!(p.work, Work::Training { .. }));
    world.pods.truncate(1);
    world
}

/// A node named `name` that takes the world's pod number `pod`, Ready at `ready_at`.
fn sim_node(world: &World, pod: usize, name: &str, ready_at: i64) -> sim::world::SimNode {
    let mut info = base_node(world, &world.pods[pod]);
    info.name = name.into();
    sim::world::SimNode {
        info,
        ready_at,
        terminate_at: None,
        reclaimed: false,
        group: None,
        unneeded_since: None,
        used: Default::default(),
        interruption_rate: 0.0,
        unit: Default::default(),
    }
}

#[test]
fn a_pod_nominated_to_a_launching_node_takes_a_free_ready_node() {
    let c = Catalog::embedded();
    let (scenario, base) = quickstart(&c);
    let mut world = world_with_a_pending_pod(&c, &scenario, &base);
    let i = 0;
    let launching = sim_node(&world, 0, "launching", world.now + 600);
    let ready = sim_node(&world, 0, "ready", world.now);
    world.nodes.extend([launching, ready]);
    world.pods[i].nominated = Some("launching".into());
    world.schedule();
    assert_eq!(world.pods[i].info.node_name.as_deref(), Some("ready"));
}

#[test]
fn budget_gates_keep_a_covered_pod_off_room_no_plan_gave_it() {
    let c = Catalog::embedded();
    let (scenario, base) = quickstart(&c);
    let mut world = world_with_a_pending_pod(&c, &scenario, &base);
    let i = 0;
    assert!(
        base.budgets.iter().any(|b| b.covers(&world.pods[i].info)),
        "quickstart's budget covers training"
    );
    let ready = sim_node(&world, 0, "ready", world.now);
    world.nodes.push(ready);
    world.budget_gates = true;
    world.schedule();
    assert!(world.pods[i].info.node_name.is_none(), "held without a nomination");
    world.pods[i].nominated = Some("ready".into());
    world.schedule();
    assert_eq!(world.pods[i].info.node_name.as_deref(), Some("ready"));
    world.evict(i);
    world.pods[i].nominated = None;
    world.budget_gates = false;
    world.schedule();
    assert_eq!(
        world.pods[i].info.node_name.as_deref(),
        Some("ready"),
        "ungated pods take any room"
    );
}

/// Quickstart with only its notebooks (GPUs held, never used) or only its training stream.
fn only(keep_training: bool) -> (Scenario, Snapshot, Catalog) {
    let c = Catalog::embedded();
    let (mut scenario, base) = quickstart(&c);
    scenario.batch.clear();
    scenario.inference.clear();
    if keep_training {
        scenario.notebooks.clear();
        for t in &mut scenario.training {
            t.gpu_busy = 0.25;
        }
    } else {
        scenario.training.clear();
    }
    (scenario, base, c)
}

#[test]
fn idle_notebooks_are_allocated_but_not_utilised() {
    let (scenario, base, c) = only(false);
    let r = sim::simulate(
        &scenario,
        &base,
        &c,
        &options(4.0, vec![Policy::ClusterAutoscaler]),
        &|_, _| {},
    );
    let k = &r.policies[0].kpis;
    assert!(k.gpu_allocation > 0.0, "{k:?}");
    assert_eq!(k.gpu_utilisation, 0.0, "{k:?}");
}

#[test]
fn training_utilisation_is_its_busy_share_of_the_allocation() {
    let (scenario, base, c) = only(true);
    let r = sim::simulate(&scenario, &base, &c, &options(12.0, vec![Policy::Purser]), &|_, _| {});
    let k = &r.policies[0].kpis;
    assert!(k.gpu_allocation > 0.0, "{k:?}");
    assert!((k.gpu_utilisation - 0.25 * k.gpu_allocation).abs() < 1e-9, "{k:?}");
}
