//! The status loop (`nodepool.status`, `costbudget.status`): what the controller concluded,
//! written where `kubectl get` shows it, and the gauges that follow the same numbers.
//!
//! In: the snapshot (nodes with prices, pods, pools, budgets), the objects that do not load and
//! the NodeClasses. Out: NodePool status (nodes, resources, hourly cost; conditions Ready,
//! BudgetExceeded, LimitsExceeded), CostBudget status through `budgets` (run-rate, ledger,
//! forecast; conditions Ready, Warning, Exceeded),
//! `Ready=False` with the loader's message and a Warning Event on any object that does not
//! load, and the per-pool node and cost gauges.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::json;

use super::conditions::{self, Condition};
use super::events::cluster_ref;
use super::metrics::{PoolCapacity, PoolLabel};
use super::snapshot::Invalid;
use super::{Context, Error};
use crate::api::{CostBudget, NodePool};
use crate::cost::UnitPrices;
use crate::model::resources::Resources;
use crate::model::{Budget, NodeInfo, Snapshot};

/// NodePools left out of plans because their NodeClass is missing, and invalid objects already
/// reported (so each problem gets one Event, not one per pass).
#[derive(Default)]
pub struct Findings {
    /// Pools whose `nodeClassRef` names no NodeClass.
    pub pools_without_class: Mutex<HashSet<String>>,
    reported: Mutex<HashSet<(String, String, String, String)>>,
}

/// Run the loop.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    loop {
        if let Err(e) = refresh(&ctx).await {
            ctx.metrics.error("status", &e);
            tracing::warn!(error = %e, "status pass failed");
        }
        tokio::time::sleep(ctx.settings.status_interval).await;
    }
}

/// One pass over pools and budgets.
pub async fn refresh(ctx: &Context) -> Result<(), Error> {
    let missing = pools_missing_class(ctx).await;
    if let Ok(mut set) = ctx.findings.pools_without_class.lock() {
        let now: HashSet<String> = missing.keys().cloned().collect();
        // A pool whose NodeClass appeared can take pending pods from now on.
        if set.iter().any(|pool| !now.contains(pool)) {
            ctx.provision.notify_one();
        }
        *set = now;
    }
    let built = ctx.snapshot();
    report_invalid(ctx, &built.invalid).await;
    let invalid: HashSet<(String, String)> = built.invalid.iter().map(|i| (i.kind.clone(), i.name.clone())).collect();
    update_gauges(ctx, &built.snapshot);
    let allocation = crate::cost::allocation::allocate(&built.snapshot);
    let nodes = ctx.cluster.nodes.state();
    ctx.metrics.cost.observe(&allocation, &nodes, &ctx.cluster.pods.state());
    if let Err(e) = super::showback::update(ctx, &allocation, &nodes).await {
        ctx.metrics.error("showback", &e);
        tracing::warn!(error = %e, "showback ledger not updated");
    }
    for (pool, class) in &missing {
        let note =
            format!("NodePool {pool}: spec.template.spec.nodeClassRef names NodeClass {class}, which does not exist");
        report_once(ctx, "NodePool", "", pool, &note).await;
        set_ready::<NodePool>(ctx, pool, Condition::no("Ready", "NodeClassNotFound", note)).await?;
    }
    for pool in &built.snapshot.pools {
        let ready = Condition::yes("Ready", "Ready", "the pool is used for provisioning");
        pool_status(ctx, &built.snapshot, pool, ready).await?;
    }
    for budget in &built.snapshot.budgets {
        if invalid.contains(&("CostBudget".to_string(), budget.name.clone())) {
            continue;
        }
        super::budgets::update(ctx, &built.snapshot, budget).await?;
    }
    Ok(())
}

/// Pools whose NodeClass is missing, with the class name.
async fn pools_missing_class(ctx: &Context) -> HashMap<String, String> {
    let resource = ApiResource {
        group: "purser.dev".into(),
        version: "v1".into(),
        api_version: "purser.dev/v1".into(),
        kind: "NodeClass".into(),
        plural: "nodeclasses".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &resource);
    let classes: HashSet<String> = match api.list(&Default::default()).await {
        Ok(list) => list.items.into_iter().filter_map(|c| c.metadata.name).collect(),
        Err(_) => HashSet::new(),
    };
    ctx.cluster
        .pools
        .state()
        .iter()
        .filter_map(|p| {
            let class = p.spec.template.spec.node_class_ref.as_ref()?;
            (!classes.contains(&class.name)).then(|| (p.metadata.name.clone().unwrap_or_default(), class.name.clone()))
        })
        .collect()
}

/// A Warning Event and `Ready=False` for every object that does not load (once per problem).
pub async fn report_invalid(ctx: &Context, invalid: &[Invalid]) {
    for item in invalid {
        if !report_once(ctx, &item.kind, &item.namespace, &item.name, &item.message).await {
            continue;
        }
        let condition = Condition::no("Ready", "InvalidSpec", item.message.clone());
        let result = match item.kind.as_str() {
            "NodePool" => set_ready::<NodePool>(ctx, &item.name, condition).await,
            "CostBudget" => set_ready::<CostBudget>(ctx, &item.name, condition).await,
            "NodeClaim" => set_ready::<crate::api::NodeClaim>(ctx, &item.name, condition).await,
            _ => Ok(()),
        };
        if let Err(e) = result {
            tracing::warn!(kind = %item.kind, name = %item.name, error = %e, "cannot report an invalid object");
        }
    }
}

/// Publish the Warning Event for a problem unless it was already reported; true when new.
async fn report_once(ctx: &Context, kind: &str, namespace: &str, name: &str, message: &str) -> bool {
    let key = (
        kind.to_string(),
        namespace.to_string(),
        name.to_string(),
        message.to_string(),
    );
    let fresh = ctx.findings.reported.lock().map(|mut r| r.insert(key)).unwrap_or(false);
    if !fresh {
        return false;
    }
    tracing::warn!(kind, namespace, name, message, "object left out of planning");
    let mut regarding = match kind {
        "Pod" => super::events::pod_ref(&format!("{namespace}/{name}")),
        "Node" => cluster_ref("v1", "Node", name),
        "DaemonSet" => cluster_ref("apps/v1", "DaemonSet", name),
        "PodDisruptionBudget" => cluster_ref("policy/v1", "PodDisruptionBudget", name),
        other => cluster_ref("purser.dev/v1", other, name),
    };
    if !namespace.is_empty() {
        regarding.namespace = Some(namespace.into());
    }
    ctx.events
        .warning(&regarding, "InvalidSpec", "Validate", message.to_string())
        .await;
    true
}

async fn set_ready<K>(ctx: &Context, name: &str, condition: Condition) -> Result<(), Error>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::all(ctx.client.clone());
    let current = api.get(name).await?;
    let value = serde_json::to_value(&current)?;
    let old = conditions::current_conditions(&value);
    let conds = conditions::set(&old, &condition, &conditions::now());
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": {"conditions": conds}})),
    )
    .await?;
    Ok(())
}

fn pool_nodes<'a>(snapshot: &'a Snapshot, pool: &'a str) -> impl Iterator<Item = &'a NodeInfo> + 'a {
    snapshot.nodes.iter().filter(move |n| n.pool.as_deref() == Some(pool))
}

async fn pool_status(
    ctx: &Context,
    snapshot: &Snapshot,
    pool: &crate::model::Pool,
    ready: Condition,
) -> Result<(), Error> {
    let mut used = Resources::new();
    let mut cost = 0.0;
    let mut count = 0i64;
    for node in pool_nodes(snapshot, &pool.name) {
        used.add(&node.capacity);
        cost += node.price.unwrap_or(0.0);
        count += 1;
    }
    let over: Vec<String> = pool
        .limits
        .names()
        .filter(|r| *r != "nodes" && used.get(r) >= pool.limits.get(r))
        .map(String::from)
        .chain(
            (pool.limits.get("nodes").as_f64() > 0.0 && count as f64 >= pool.limits.get("nodes").as_f64())
                .then(|| "nodes".to_string()),
        )
        .collect();
    let limits = if over.is_empty() {
        Condition::no("LimitsExceeded", "WithinLimits", "every limit has room")
    } else {
        Condition::yes(
            "LimitsExceeded",
            "LimitReached",
            format!("limits reached: {}", over.join(", ")),
        )
    };
    let budget = match pool.max_hourly_cost {
        Some(cap) if cost >= cap => Condition::yes(
            "BudgetExceeded",
            "BudgetReached",
            format!("{cost:.2} of {cap:.2} USD/h"),
        ),
        Some(cap) => Condition::no("BudgetExceeded", "WithinBudget", format!("{cost:.2} of {cap:.2} USD/h")),
        None => Condition::no("BudgetExceeded", "NoBudget", "no spec.budget.maxHourlyCost"),
    };
    let mut resources: BTreeMap<String, String> = used.to_strings();
    resources.insert("nodes".into(), count.to_string());
    let api: Api<NodePool> = Api::all(ctx.client.clone());
    let current = api.get(&pool.name).await?;
    let value = serde_json::to_value(&current)?;
    let mut conds = conditions::current_conditions(&value);
    let now = conditions::now();
    for c in [&ready, &limits, &budget] {
        conds = conditions::set(&conds, c, &now);
    }
    let status =
        json!({"status": {"nodes": count, "resources": resources, "hourlyCost": round(cost), "conditions": conds}});
    api.patch_status(&pool.name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// The hourly cost allocated to the pods `budget` covers, on the nodes they run on.
pub fn run_rate(snapshot: &Snapshot, budget: &Budget) -> f64 {
    let nodes: HashMap<&str, &NodeInfo> = snapshot.nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    snapshot
        .pods
        .iter()
        .filter(|p| !p.is_pending() && budget.covers(p))
        .filter_map(|p| {
            let node = nodes.get(p.node_name.as_deref()?)?;
            Some(UnitPrices::split(node.price.unwrap_or(0.0), &node.capacity).allocate(&p.requests))
        })
        .sum()
}

/// Per-pool node counts and hourly cost.
fn update_gauges(ctx: &Context, snapshot: &Snapshot) {
    ctx.metrics.nodes.clear();
    ctx.metrics.hourly_cost.clear();
    for node in snapshot.nodes.iter().filter(|n| n.pool.is_some()) {
        let pool = node.pool.clone().unwrap_or_default();
        let capacity_type = node.capacity_type.map(|c| c.as_str().to_string()).unwrap_or_default();
        ctx.metrics
            .nodes
            .get_or_create(&PoolCapacity {
                nodepool: pool.clone(),
                capacity_type,
            })
            .inc();
        ctx.metrics
            .hourly_cost
            .get_or_create(&PoolLabel { nodepool: pool })
            .inc_by(node.price.unwrap_or(0.0));
    }
}
