//! `purser simulate`: a discrete-time simulation of a cluster and a cloud that drives the real
//! planner and disruption engine, and compares autoscaling policies on the same arrivals.
//! See docs/design/simulator.md.

pub mod load;
pub mod policy;
pub mod report;
pub mod result;
pub mod rng;
pub mod scenario;
pub mod workload;
pub mod world;

use crate::catalog::Catalog;
use crate::model::Snapshot;

use policy::Policy;
use result::{HourRow, Kpis, PolicyResult, SimResult};
use rng::Rng;
use scenario::Scenario;
use workload::Workloads;
use world::{STEP, Work, World};

/// 2026-11-23T00:00:00Z (a Monday): the simulated clock's start.
pub const START: i64 = 1_795_392_000;

/// Settings of one simulation.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Simulated hours.
    pub hours: f64,
    /// Seed of every random stream.
    pub seed: u64,
    /// Policies to compare.
    pub policies: Vec<Policy>,
}

/// Simulate `scenario` (its NodePools, CostBudgets and DaemonSets already read into `base`)
/// under each policy, the policies on parallel threads; `progress` is called with (policy
/// index, fraction done). Each policy has its own world and random streams, so the result is
/// the one `simulate_policy` gives for each policy in turn.
pub fn simulate(
    scenario: &Scenario,
    base: &Snapshot,
    catalog: &Catalog,
    options: &SimOptions,
    progress: &(dyn Fn(usize, f64) + Sync),
) -> SimResult {
    let policies = std::thread::scope(|scope| {
        let runs: Vec<_> = options
            .policies
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                scope.spawn(move || simulate_policy(scenario, base, catalog, options, p, &|f| progress(i, f)))
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    SimResult {
        scenario: scenario.name.clone(),
        seed: options.seed,
        simulated_hours: options.hours,
        policies,
    }
}

/// Hourly accumulators.
#[derive(Default)]
struct Hour {
    spend: f64,
    gpu_used: f64,
    gpu_paid: f64,
    latency: f64,
}

/// Simulate `scenario` under one policy on the calling thread; `progress` is called with the
/// fraction done. The planner's and the disruption engine's limits count work, not time
/// (`solver::clock`), so the same scenario and seed give the same result on any machine.
pub fn simulate_policy(
    scenario: &Scenario,
    base: &Snapshot,
    catalog: &Catalog,
    options: &SimOptions,
    policy: Policy,
    progress: &dyn Fn(f64),
) -> PolicyResult {
    crate::solver::clock::with_work_clock(|| run_policy(scenario, base, catalog, options, policy, progress))
}

fn run_policy(
    scenario: &Scenario,
    base: &Snapshot,
    catalog: &Catalog,
    options: &SimOptions,
    policy: Policy,
    progress: &dyn Fn(f64),
) -> PolicyResult {
    let steps = (options.hours * 3600.0 / STEP as f64).round() as i64;
    let end = START + steps * STEP;
    let mut world = World::new(catalog, base, START, end, Rng::new(options.seed, 1));
    world.budget_gates = policy == Policy::Purser;
    let mut workloads = Workloads::new(scenario, options.seed, START);
    let budgets = base.budgets.clone();
    let mut timeline = vec![];
    let mut hour = Hour::default();
    for step in 0..steps {
        world.now = START + step * STEP;
        workloads.arrivals(&mut world, scenario);
        let load = workloads.inference(&mut world);
        account_inference(&mut world, &workloads, &load, &mut hour);
        let noticed = world.cloud_events();
        // kube-scheduler first: the autoscaler only sees the pods that stay pending.
        world.schedule();
        policy::step(policy, &mut world, &scenario.cluster_autoscaler, &noticed);
        world.schedule();
        world.progress();
        let (used, paid) = (world.ledger.gpu_used, world.ledger.gpu_paid);
        hour.spend += world.bill(&budgets);
        hour.gpu_used += world.ledger.gpu_used - used;
        hour.gpu_paid += world.ledger.gpu_paid - paid;
        if (step + 1) % 60 == 0 {
            timeline.push(hour_row(&world, (step / 60) as u32, &hour));
            hour = Hour::default();
            world.compact();
            progress((step + 1) as f64 / steps as f64);
        }
    }
    PolicyResult {
        name: policy.name().into(),
        kpis: kpis(&world),
        timeline,
    }
}

/// Requests served, SLO minutes and the hour's worst latency ratio.
fn account_inference(world: &mut World, workloads: &Workloads, load: &[(f64, f64)], hour: &mut Hour) {
    for (s, (svc, &(rps, p95))) in workloads.services.iter().zip(load).enumerate() {
        let replicas: Vec<usize> = world
            .live_pods()
            .filter(|(_, p)| p.work == Work::Inference { service: s } && p.info.node_name.is_some())
            .map(|(i, _)| i)
            .collect();
        let capacity = replicas.len() as f64 * svc.spec.replica_rps;
        // Each replica's accelerators are busy for the share of its capacity the load takes.
        let busy = if capacity > 0.0 { (rps / capacity).min(1.0) } else { 0.0 };
        for &i in &replicas {
            world.pods[i].gpu_busy = busy;
        }
        world.ledger.requests += rps.min(capacity) * STEP as f64;
        if p95 > svc.spec.slo_p95_ms {
            world.ledger.slo_minutes += STEP as f64 / 60.0;
        }
        hour.latency = hour.latency.max((p95 / svc.spec.slo_p95_ms).min(10.0));
    }
}

fn hour_row(world: &World, index: u32, hour: &Hour) -> HourRow {
    let count = |ct: crate::catalog::CapacityType| {
        world.nodes.iter().filter(|n| n.info.capacity_type == Some(ct)).count() as u32
    };
    HourRow {
        hour: index,
        spend: hour.spend,
        on_demand_nodes: count(crate::catalog::CapacityType::OnDemand),
        spot_nodes: count(crate::catalog::CapacityType::Spot),
        gpu_allocation: if hour.gpu_paid > 0.0 {
            hour.gpu_used / hour.gpu_paid
        } else {
            0.0
        },
        pending_pods: world.live_pods().filter(|(_, p)| p.info.node_name.is_none()).count() as u32,
        latency_vs_slo: hour.latency,
    }
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = (q * (v.len() - 1) as f64).round() as usize;
    v[rank.min(v.len() - 1)]
}

fn kpis(world: &World) -> Kpis {
    let l = &world.ledger;
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Kpis {
        total_spend: l.spend,
        spend_by_capacity_type: l.spend_by_type.clone(),
        spend_by_team: l.spend_by_team.clone(),
        gpu_allocation: ratio(l.gpu_used, l.gpu_paid),
        gpu_utilisation: ratio(l.gpu_busy, l.gpu_paid),
        cpu_allocation: ratio(l.cpu_share, l.node_seconds),
        memory_allocation: ratio(l.mem_share, l.node_seconds),
        training_queue_p50_seconds: percentile(&l.queue_times, 0.5),
        training_queue_p95_seconds: percentile(&l.queue_times, 0.95),
        training_jobs_finished: l.jobs_finished,
        cost_per_1k_inferences: ratio(l.inference_spend, l.requests) * 1000.0,
        slo_violation_minutes: l.slo_minutes,
        node_hours_reclaimed: l.reclaimed_seconds / 3600.0,
        interruptions: l.interruptions,
        gpu_hours_lost: l.gpu_seconds_lost / 3600.0,
        budget_breaches: l.budget_breaches,
        decisions: l.decision_seconds.len() as u64,
        mean_decision_seconds: ratio(l.decision_seconds.iter().sum(), l.decision_seconds.len() as f64),
        max_decision_seconds: l.decision_seconds.iter().copied().fold(0.0, f64::max),
        launches: l.launches,
        launch_failures: l.launch_failures,
    }
}
