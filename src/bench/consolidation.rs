//! Consolidation benchmark: a fragmented 1,000-node cluster with 10,000 running pods (the state
//! a cluster is left in after a scale-in), consolidated by Purser's m→n rule and by Karpenter's
//! m→1 rule on the same input, pass after pass until a pass decides nothing.
//!
//! Each pass calls `disruption::decide` (timed) and applies its commands with
//! `disruption::whatif::apply`; the clock then moves on 11 minutes so that replacement nodes
//! are older than `consolidateAfter` (10 minutes) in the next pass.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::objects::{self, PodTemplate, node_pool, pod_object};
use super::rng::SplitMix64;
use crate::catalog::Catalog;
use crate::disruption::{self, DisruptOptions, Replacement, whatif};
use crate::model::Snapshot;
use crate::solver::plan::PlannedNode;

/// Seed of the cluster generator.
pub const SEED: u64 = 7;
/// 2026-11-25T12:00:00Z, the clock of the first pass.
pub const START: i64 = 1_795_608_000;
/// Instance types of the fragmented cluster, with their vCPU and GiB.
const TYPES: [(&str, u32, u32); 5] = [
    ("m5.xlarge", 4, 16),
    ("m5.2xlarge", 8, 32),
    ("m5.4xlarge", 16, 64),
    ("c5.2xlarge", 8, 16),
    ("r5.xlarge", 4, 32),
];
const ZONES: [&str; 3] = ["us-east-1a", "us-east-1b", "us-east-1c"];
/// Pod CPU requests (milli-cores) and memory requests (MiB).
const CPU_M: [u32; 4] = [50, 100, 250, 500];
const MEM_MI: [u32; 4] = [128, 256, 512, 1024];
/// Most passes per run.
pub const MAX_PASSES: usize = 30;

/// One consolidation run's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsolidationRun {
    /// `m-to-n` or `m-to-1`.
    pub rule: String,
    /// Hourly price of all nodes before, USD.
    pub cost_before: f64,
    /// Hourly price of all nodes after the last pass, USD.
    pub cost_after: f64,
    /// Nodes before and after.
    pub nodes_before: usize,
    /// Nodes after the last pass.
    pub nodes_after: usize,
    /// Nodes taken away over all passes (replacements launched in one pass and taken away in a
    /// later one count again).
    pub nodes_disrupted: usize,
    /// New nodes launched over all passes.
    pub nodes_launched: usize,
    /// Of the disrupted nodes, those this run had launched in an earlier pass.
    pub relaunched_disrupted: usize,
    /// Commands over all passes.
    pub commands: usize,
    /// Passes that decided something.
    pub passes: usize,
    /// Slowest `decide` call, seconds.
    pub max_decision_seconds: f64,
    /// Mean `decide` call, seconds.
    pub mean_decision_seconds: f64,
    /// Pods left pending at the end (must be 0).
    pub pending_after: usize,
}

/// The fragmented cluster: `nodes` nodes of pool `default` (m5/c5/r5, on-demand), each holding
/// pods that request 15–45% of its CPU and memory, about `pods_per_node` pods on average.
pub fn cluster(nodes: usize, catalog: &Catalog) -> Result<Snapshot, String> {
    let pool = node_pool(
        "default",
        json!({
            "template": {"spec": {"requirements": [
                {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": ["m5", "c5", "r5"]},
                {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["on-demand"]},
            ]}},
            "disruption": {"budgets": [{"nodes": "100%"}]},
        }),
    );
    let mut rng = SplitMix64::new(SEED);
    let mut pods = vec![];
    let mut placements: Vec<(String, Vec<String>, &str, &str)> = vec![];
    for n in 0..nodes {
        let (it, cpu, gib) = *rng.pick(&TYPES);
        let zone = *rng.pick(&ZONES);
        let name = format!("node-{n:04}");
        let target = 0.15 + 0.30 * rng.below(1000) as f64 / 1000.0;
        let (mut used_cpu, mut used_mem) = (0u32, 0u32);
        let mut on_node = vec![];
        loop {
            let c = *rng.pick(&CPU_M);
            let m = *rng.pick(&MEM_MI);
            if (used_cpu + c) as f64 > target * (cpu * 1000) as f64
                || (used_mem + m) as f64 > target * (gib * 1024) as f64
            {
                break;
            }
            used_cpu += c;
            used_mem += m;
            let pod = format!("app-{n:04}-{}", on_node.len());
            let mut t = PodTemplate::new("default", &pod, n);
            t.label("app", &format!("app-{}", n % 50))
                .request("cpu", &format!("{c}m"))
                .request("memory", &format!("{m}Mi"));
            pods.push(pod_object(&t));
            on_node.push(format!("default/{pod}"));
        }
        placements.push((name, on_node, it, zone));
    }
    let mut snapshot = objects::snapshot(&[pool], pods, catalog)?;
    for (name, on_node, it, zone) in placements {
        let price = catalog
            .find(it)
            .and_then(|t| {
                t.offerings
                    .iter()
                    .find(|o| o.zone == zone && o.capacity_type.as_str() == "on-demand")
            })
            .map(|o| o.price)
            .ok_or_else(|| format!("{it} has no on-demand offering in {zone}"))?;
        let claim = PlannedNode {
            node_pool: "default".into(),
            instance_type: it.into(),
            capacity_type: "on-demand".into(),
            zone: zone.into(),
            hourly_price: price,
            price_estimated: false,
            allocatable: Default::default(),
            pods: vec![],
        };
        let node = whatif::claim_node(&snapshot, &claim, &name, catalog, START - 7 * 86_400, true)
            .ok_or_else(|| format!("cannot build node {name}"))?;
        snapshot.nodes.push(node);
        for pod in snapshot.pods.iter_mut().filter(|p| on_node.contains(&p.key)) {
            pod.node_name = Some(name.clone());
            pod.started = Some(START - 7 * 86_400);
        }
    }
    snapshot.nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(snapshot)
}

/// Consolidate `snapshot` pass after pass with `rule`.
pub fn consolidate(snapshot: &Snapshot, catalog: &Catalog, rule: Replacement) -> ConsolidationRun {
    let bill = |s: &Snapshot| s.nodes.iter().filter_map(|n| n.price).sum::<f64>();
    let mut s = snapshot.clone();
    let mut options = DisruptOptions::at(START);
    options.replacement = rule;
    let mut run = ConsolidationRun {
        rule: match rule {
            Replacement::ManyToMany => "m-to-n".into(),
            Replacement::ManyToOne => "m-to-1".into(),
        },
        cost_before: bill(&s),
        cost_after: 0.0,
        nodes_before: s.nodes.len(),
        nodes_after: 0,
        nodes_disrupted: 0,
        nodes_launched: 0,
        relaunched_disrupted: 0,
        commands: 0,
        passes: 0,
        max_decision_seconds: 0.0,
        mean_decision_seconds: 0.0,
        pending_after: 0,
    };
    let original: std::collections::HashSet<String> = s.nodes.iter().map(|n| n.name.clone()).collect();
    let mut total_seconds = 0.0;
    let mut calls = 0;
    for _ in 0..MAX_PASSES {
        let started = Instant::now();
        let decision = disruption::decide(&s, catalog, &options);
        let seconds = started.elapsed().as_secs_f64();
        calls += 1;
        total_seconds += seconds;
        run.max_decision_seconds = run.max_decision_seconds.max(seconds);
        if decision.commands.is_empty() {
            break;
        }
        run.passes += 1;
        for command in &decision.commands {
            run.commands += 1;
            run.nodes_disrupted += command.nodes.len();
            run.relaunched_disrupted += command.nodes.iter().filter(|n| !original.contains(*n)).count();
            run.nodes_launched += command.node_claims.len();
            s = whatif::apply(&s, command, catalog, options.now, true);
        }
        options.now += 11 * 60;
    }
    run.mean_decision_seconds = total_seconds / calls as f64;
    run.cost_after = bill(&s);
    run.nodes_after = s.nodes.len();
    run.pending_after = s.pods.iter().filter(|p| p.is_pending()).count();
    run
}

/// The comparison as a Markdown table, with the cluster's size and the target.
pub fn table(cluster: &Snapshot, runs: &[ConsolidationRun]) -> String {
    let pods = cluster.pods.len();
    let mut out = format!(
        "Consolidation: {} nodes, {pods} pods (m5/c5/r5 on-demand, 15-45% requested), passes until nothing is decided (at most {MAX_PASSES}).\n\n",
        cluster.nodes.len()
    );
    out.push_str("| rule | cost before $/h | cost after $/h | saving % | nodes before / after | nodes disrupted (of them launched earlier) | saving per disrupted node $/h | nodes launched | commands | passes | max decision s | mean decision s | pods pending after |\n");
    out.push_str("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in runs {
        out.push_str(&format!(
            "| {} | {:.2} | {:.2} | {:.1} | {} / {} | {} ({}) | {:.3} | {} | {} | {} | {:.3} | {:.3} | {} |\n",
            r.rule,
            r.cost_before,
            r.cost_after,
            100.0 * (r.cost_before - r.cost_after) / r.cost_before.max(f64::MIN_POSITIVE),
            r.nodes_before,
            r.nodes_after,
            r.nodes_disrupted,
            r.relaunched_disrupted,
            (r.cost_before - r.cost_after) / (r.nodes_disrupted.max(1) as f64),
            r.nodes_launched,
            r.commands,
            r.passes,
            r.max_decision_seconds,
            r.mean_decision_seconds,
            r.pending_after
        ));
    }
    if let [ours, baseline] = runs {
        out.push_str(&format!(
            "\nTarget: decision under 2 s ({}), lower cost than m-to-1 ({:.2} vs {:.2}: {}).\n",
            if ours.max_decision_seconds < 2.0 {
                "met"
            } else {
                "NOT met"
            },
            ours.cost_after,
            baseline.cost_after,
            if ours.cost_after < baseline.cost_after {
                "met"
            } else {
                "NOT met"
            }
        ));
    }
    out
}
