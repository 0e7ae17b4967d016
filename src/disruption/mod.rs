//! The disruption engine: which nodes to take away, and what replaces them.
//!
//! Pure: a snapshot, a catalog and a clock in; an ordered list of commands out. Every
//! replacement is found by the planner (`solver::plan`) on a what-if snapshot in which the
//! disrupted nodes are gone and their pods are pending, so provisioning and disruption never
//! disagree about where a pod fits. Interruptions come first, then expiry, drift, empty nodes,
//! idle GPU nodes and finally consolidation of underutilized nodes (m→n). See
//! docs/design/disruption.md.

pub mod budgets;
pub mod candidates;
pub mod consolidation;
pub mod lifecycle;
pub mod whatif;

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::model::Snapshot;
use crate::model::disruption::Reason;
use crate::solver::PlanOptions;
use crate::solver::plan::{ExistingPlacement, PlannedNode};

/// What a command does to its nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Launch the new node claims, wait until they are initialized, then drain and delete.
    Replace,
    /// Drain and delete; the pods fit on existing capacity (or there are none).
    Delete,
}

/// One disruption decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Command {
    /// Replace or Delete.
    pub action: Action,
    /// Why.
    pub reason: Reason,
    /// Nodes taken away.
    pub nodes: Vec<String>,
    /// New nodes to launch first (as in `purser plan` output).
    pub node_claims: Vec<PlannedNode>,
    /// Pods that move onto existing nodes.
    pub moves: Vec<ExistingPlacement>,
    /// Hourly price of the nodes taken away, USD.
    pub cost_before: f64,
    /// Hourly price of the new node claims, USD.
    pub cost_after: f64,
    /// `cost_before - cost_after`, USD/hour (negative for a drift or expiry replacement that
    /// costs more).
    pub saving_per_hour: f64,
    /// True when the replacements must be launched and initialized before any pod is evicted.
    pub launch_before_drain: bool,
    /// Pods the plan could not place elsewhere (only for interruptions, where the node goes
    /// away regardless).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stranded: Vec<String>,
    /// The numbers behind the decision, for people.
    pub detail: String,
}

/// A managed node that may not be disrupted now, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    /// Node name.
    pub node: String,
    /// Why.
    pub reason: String,
}

/// The engine's answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Commands, in the order to carry them out; no node appears in two.
    pub commands: Vec<Command>,
    /// Managed nodes that are protected from voluntary disruption now.
    pub blocked: Vec<Blocked>,
}

/// How consolidation may replace nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Replacement {
    /// Any set of nodes by any set of new nodes (Purser).
    ManyToMany,
    /// Any set of nodes by at most one new node (Karpenter's multi- and single-node
    /// consolidation); kept as the benchmark's baseline.
    ManyToOne,
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct DisruptOptions {
    /// The clock, seconds since the epoch.
    pub now: i64,
    /// Planner settings for every what-if plan (its time limit is per plan).
    pub plan: PlanOptions,
    /// m→n (default) or m→1 consolidation.
    pub replacement: Replacement,
    /// Wall-clock budget for the consolidation search.
    pub search_time: Duration,
    /// Most nodes one consolidation command may take.
    pub max_consolidation_nodes: usize,
    /// Seconds an offering named in an interruption stays unavailable to replacements.
    pub unavailable_for: i64,
    /// Reclaim GPU nodes left with only CPU pods (Karpenter does not; its baseline turns it off).
    pub gpu_idle: bool,
}

impl DisruptOptions {
    /// Defaults at time `now`: m→n, 200 ms per what-if plan, 1.5 s of consolidation search.
    pub fn at(now: i64) -> Self {
        DisruptOptions {
            now,
            plan: PlanOptions {
                time_limit: Duration::from_millis(200),
                ..PlanOptions::default()
            },
            replacement: Replacement::ManyToMany,
            search_time: Duration::from_millis(1500),
            max_consolidation_nodes: 100,
            unavailable_for: 180,
            gpu_idle: true,
        }
    }
}

/// Decide what to disrupt in `snapshot` at `options.now`.
pub fn decide(snapshot: &Snapshot, catalog: &Catalog, options: &DisruptOptions) -> Decision {
    let started = crate::solver::clock::now();
    let mut state = State::new(snapshot, catalog, options);
    lifecycle::interruptions(&mut state);
    lifecycle::expired(&mut state);
    lifecycle::drifted(&mut state);
    consolidation::empty(&mut state);
    if options.gpu_idle {
        consolidation::gpu_idle(&mut state);
    }
    consolidation::underutilized(&mut state, started + options.search_time);
    state.finish()
}

/// The working state of one decision: the snapshot as it will be after the commands so far.
pub struct State<'a> {
    /// The input.
    pub input: &'a Snapshot,
    /// The input minus the nodes of earlier commands, plus their replacements (in flight).
    pub work: Snapshot,
    /// The catalog.
    pub catalog: &'a Catalog,
    /// Settings.
    pub options: &'a DisruptOptions,
    /// Commands so far.
    pub commands: Vec<Command>,
    /// Protected nodes.
    pub blocked: Vec<Blocked>,
    /// Nodes already in a command or blocked (never decided twice).
    pub decided: BTreeSet<String>,
    /// Planner settings for every what-if of this decision; offerings named in interruption
    /// notices are added to its unavailable set, so no later command launches them either.
    pub plan: PlanOptions,
    /// Pods of `work` by node.
    pub index: candidates::PodIndex,
    /// Evictions left per PDB (index into `input.pdbs`).
    pub pdb_left: Vec<u32>,
    /// Nodes disrupted so far per pool and reason, against the budgets.
    pub budget_used: budgets::Usage,
}

impl<'a> State<'a> {
    fn new(snapshot: &'a Snapshot, catalog: &'a Catalog, options: &'a DisruptOptions) -> Self {
        let mut work = whatif::without_pending(snapshot);
        whatif::close_uninitialized(&mut work);
        State {
            input: snapshot,
            index: candidates::PodIndex::new(&work),
            plan: options.plan.clone(),
            work,
            catalog,
            options,
            commands: vec![],
            blocked: vec![],
            decided: BTreeSet::new(),
            pdb_left: snapshot.pdbs.iter().map(|p| p.disruptions_allowed).collect(),
            budget_used: budgets::Usage::default(),
        }
    }

    /// Record a protected node once.
    pub fn block(&mut self, node: &str, reason: String) {
        if self.decided.insert(node.to_string()) {
            self.blocked.push(Blocked {
                node: node.to_string(),
                reason,
            });
        }
    }

    /// Record a command and update the working snapshot, the PDB allowances and the budgets.
    pub fn accept(&mut self, command: Command) {
        for name in &command.nodes {
            self.decided.insert(name.clone());
            if let Some(node) = self.input.nodes.iter().find(|n| &n.name == name)
                && let Some(pool) = &node.pool
            {
                self.budget_used.add(pool, command.reason);
            }
        }
        let moved: Vec<&crate::model::pod::PodInfo> = command
            .nodes
            .iter()
            .flat_map(|n| candidates::pods_on(&self.work, &self.index, n))
            .collect();
        for pod in moved {
            for (i, pdb) in self.input.pdbs.iter().enumerate() {
                if pdb.covers(&pod.namespace, &pod.labels) {
                    self.pdb_left[i] = self.pdb_left[i].saturating_sub(1);
                }
            }
        }
        self.work = whatif::apply(&self.work, &command, self.catalog, self.options.now, false);
        self.index = candidates::PodIndex::new(&self.work);
        self.commands.push(command);
    }

    fn finish(mut self) -> Decision {
        self.blocked.sort_by(|a, b| a.node.cmp(&b.node));
        Decision {
            commands: self.commands,
            blocked: self.blocked,
        }
    }
}
