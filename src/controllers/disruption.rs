//! The disruption loop (`disruption`): the engine's commands, carried out safely.
//!
//! In: the snapshot every `disruption_interval`, through `disruption::decide` (the same engine
//! as `purser plan --disrupt` and the simulator). Out, per command: replacement NodeClaims
//! launched and initialized first (when the command says so), the nodes tainted
//! `purser.dev/disrupted:NoSchedule` and marked `Disrupting`, then their NodeClaims deleted —
//! the termination finalizer drains them through the Eviction API and terminates the instances.
//! A node is never in two commands at once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::conditions::Condition;
use super::nodeclaim::{self, types};
use super::{Context, DISRUPTED_TAINT, Error};
use crate::api::NodeClaim;
use crate::disruption::{self as engine, Action, Command, DisruptOptions};

/// Nodes some command is working on.
#[derive(Default)]
pub struct Busy {
    nodes: Mutex<HashSet<String>>,
}

impl Busy {
    /// Claim every node of `nodes`, or none when one is already taken.
    pub fn try_take(&self, nodes: &[String]) -> bool {
        let Ok(mut busy) = self.nodes.lock() else { return false };
        if nodes.iter().any(|n| busy.contains(n)) {
            return false;
        }
        busy.extend(nodes.iter().cloned());
        true
    }

    /// Release `nodes`.
    pub fn release(&self, nodes: &[String]) {
        if let Ok(mut busy) = self.nodes.lock() {
            for n in nodes {
                busy.remove(n);
            }
        }
    }

    /// Is `node` taken?
    pub fn contains(&self, node: &str) -> bool {
        self.nodes.lock().map(|b| b.contains(node)).unwrap_or(true)
    }
}

/// Run the loop; a zero interval turns disruption off.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    if ctx.settings.disruption_interval.is_zero() {
        futures::future::pending::<()>().await;
    }
    loop {
        tokio::time::sleep(ctx.settings.disruption_interval).await;
        if let Err(e) = disrupt_once(&ctx).await {
            ctx.metrics.error("disruption", &e);
            tracing::error!(error = %e, "disruption pass failed");
        }
    }
}

/// One pass: decide, and start every command whose nodes are free.
pub async fn disrupt_once(ctx: &Arc<Context>) -> Result<usize, Error> {
    let built = ctx.snapshot();
    let mut snapshot = built.snapshot;
    // Nodes under a command look like nodes going away to the engine: it must not plan onto them.
    for node in snapshot.nodes.iter_mut().filter(|n| ctx.busy.contains(&n.name)) {
        node.deleting = true;
    }
    // Replacements and nodes pods were just nominated to wait for their pods.
    // A registered node names its claim in a label; an in-flight claim is a node of that name.
    for node in snapshot.nodes.iter_mut() {
        let claim = node.labels.get(super::NODECLAIM_LABEL);
        if ctx.nominated.contains(&node.name) || claim.is_some_and(|c| ctx.nominated.contains(c)) {
            node.do_not_disrupt = true;
        }
    }
    let mut options = DisruptOptions::at(chrono::Utc::now().timestamp());
    options.plan.spot_rework_hours = ctx.settings.spot_rework_hours;
    options.plan.unavailable = ctx.unavailable.current();
    let catalog = ctx.catalog();
    let decision = tokio::task::spawn_blocking(move || engine::decide(&snapshot, &catalog, &options))
        .await
        .map_err(|e| Error::Other(format!("disruption engine task: {e}")))?;
    tracing::debug!(commands = decision.commands.len(), blocked = ?decision.blocked, "disruption decision");
    let mut started = 0;
    for command in decision.commands {
        if !ctx.busy.try_take(&command.nodes) {
            continue;
        }
        started += 1;
        ctx.metrics.disruptions.inc();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let nodes = command.nodes.clone();
            if let Err(e) = execute(&ctx, &command).await {
                ctx.metrics.error("disruption", &e);
                tracing::error!(nodes = ?nodes, error = %e, "disruption command failed");
            }
            ctx.busy.release(&nodes);
        });
    }
    Ok(started)
}

/// Carry out one command.
pub async fn execute(ctx: &Context, command: &Command) -> Result<(), Error> {
    tracing::info!(reason = ?command.reason, nodes = ?command.nodes, saving = command.saving_per_hour, detail = %command.detail, "disrupting");
    let claims = claims_of(ctx, &command.nodes);
    for claim in &claims {
        let message = format!("{:?}: {}", command.reason, command.detail);
        let _ = nodeclaim::set_condition(
            ctx,
            claim,
            Condition::yes(types::DISRUPTING, &format!("{:?}", command.reason), message.clone()),
        )
        .await;
        if matches!(command.reason, crate::model::disruption::Reason::Drifted) {
            let _ = nodeclaim::set_condition(
                ctx,
                claim,
                Condition::yes(types::DRIFTED, "Drifted", command.detail.clone()),
            )
            .await;
        }
        ctx.events
            .normal(&nodeclaim::claim_ref(claim), "Disrupting", "Disrupt", message)
            .await;
    }
    if command.action == Action::Replace && !command.node_claims.is_empty() {
        let snapshot = ctx.snapshot().snapshot;
        let created: Vec<String> = super::claims::create_all(ctx, &snapshot, &command.node_claims)
            .await
            .into_iter()
            .flatten()
            .collect();
        // The replacements stay out of disruption for the whole command and until the evicted
        // pods have been planned onto them.
        let covers = ctx.settings.registration_ttl
            + ctx.settings.termination_grace
            + super::provisioning::nomination_window(ctx);
        ctx.nominated.mark(created.iter().map(String::as_str), covers);
        if created.len() < command.node_claims.len() {
            delete_claims(ctx, &created).await?;
            clear_disrupting(ctx, &claims).await;
            return Err(Error::Other(
                "could not create every replacement; command abandoned".into(),
            ));
        }
        if command.launch_before_drain && !wait_initialized(ctx, &created).await {
            delete_claims(ctx, &created).await?;
            clear_disrupting(ctx, &claims).await;
            return Err(Error::Other(
                "replacements did not initialize in time; command abandoned".into(),
            ));
        }
    }
    taint_nodes(ctx, &command.nodes).await?;
    delete_claims(ctx, &claims).await?;
    wait_gone(ctx, &claims).await;
    Ok(())
}

/// The NodeClaims behind `nodes`.
fn claims_of(ctx: &Context, nodes: &[String]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| {
            let node = ctx
                .cluster
                .nodes
                .find(|x| x.metadata.name.as_deref() == Some(n.as_str()));
            match node {
                Some(node) => ctx.cluster.claim_of_node(&node).and_then(|c| c.metadata.name.clone()),
                None => ctx
                    .cluster
                    .claims
                    .find(|c| c.metadata.name.as_deref() == Some(n.as_str()))
                    .and_then(|c| c.metadata.name.clone()),
            }
        })
        .collect()
}

async fn clear_disrupting(ctx: &Context, claims: &[String]) {
    for claim in claims {
        let _ = nodeclaim::set_condition(
            ctx,
            claim,
            Condition::no(types::DISRUPTING, "Abandoned", "the command was abandoned"),
        )
        .await;
    }
}

/// Wait until every claim in `names` is Initialized (at most the registration TTL).
async fn wait_initialized(ctx: &Context, names: &[String]) -> bool {
    let deadline = Instant::now() + ctx.settings.registration_ttl;
    while Instant::now() < deadline {
        let ready = names.iter().all(|n| {
            ctx.cluster
                .claims
                .find(|c| c.metadata.name.as_deref() == Some(n.as_str()))
                .is_some_and(|c| super::conditions::is_true(&nodeclaim::conditions_of(&c), types::INITIALIZED))
        });
        if ready {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Wait until the claims are gone (their finalizer has terminated the instances).
async fn wait_gone(ctx: &Context, names: &[String]) {
    let deadline = Instant::now() + ctx.settings.termination_grace + Duration::from_secs(60);
    while Instant::now() < deadline {
        let left = names.iter().any(|n| {
            ctx.cluster
                .claims
                .find(|c| c.metadata.name.as_deref() == Some(n.as_str()))
                .is_some()
        });
        if !left {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn taint_nodes(ctx: &Context, nodes: &[String]) -> Result<(), Error> {
    let api: Api<Node> = Api::all(ctx.client.clone());
    for name in nodes {
        match api.get(name).await {
            Ok(node) => nodeclaim::taint_disrupted(ctx, &node).await?,
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

async fn delete_claims(ctx: &Context, names: &[String]) -> Result<(), Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    for name in names {
        match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// After a restart no command is running: remove the disrupted taint from nodes whose claims
/// are not being deleted (Karpenter does the same), so they serve pods again.
pub async fn clear_stale_taints(ctx: &Context) {
    let api: Api<Node> = Api::all(ctx.client.clone());
    for node in ctx.cluster.nodes.state() {
        let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
        if !taints.iter().any(|t| t.key == DISRUPTED_TAINT) {
            continue;
        }
        let deleting = ctx
            .cluster
            .claim_of_node(&node)
            .is_some_and(|c| c.metadata.deletion_timestamp.is_some());
        if deleting {
            continue;
        }
        let kept: Vec<_> = taints.into_iter().filter(|t| t.key != DISRUPTED_TAINT).collect();
        let patch = json!({"spec": {"taints": kept}});
        let name = node.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            tracing::warn!(node = %name, error = %e, "cannot remove a stale disrupted taint");
        }
    }
}
