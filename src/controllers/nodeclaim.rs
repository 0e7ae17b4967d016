//! The NodeClaim lifecycle controller (`nodeclaim.lifecycle`).
//!
//! In: NodeClaims (and the Nodes that join for them). Out, in order: an instance launched
//! through the cloud (`Launched`); the Node found by provider ID, given the pool's labels and
//! taints and freed of the `purser.dev/unregistered` taint (`Registered`); the Node Ready, its
//! startup taints gone and its extended resources advertised (`Initialized`). A launch that fails
//! for lack of capacity, or a Node that does not register in time, deletes the claim and keeps
//! the offering out of plans for a while. Deletion is held by the termination finalizer until
//! the node is drained (evictions honour PodDisruptionBudgets; at most the termination grace
//! period) and the instance is gone.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Taint};
use kube::api::{Api, DeleteParams, EvictParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use purser_cloudprovider::{CloudError, LaunchRequest};
use serde_json::{Value, json};

use super::conditions::{self, Condition};
use super::events::cluster_ref;
use super::{Context, DISRUPTED_TAINT, Error, NODECLAIM_LABEL, TERMINATION_FINALIZER, UNREGISTERED_TAINT};
use crate::api::NodeClaim;
use crate::catalog::CapacityType;
use crate::model::labels::{CAPACITY_TYPE, INSTANCE_TYPE, NODEPOOL, ZONE};

/// Condition types on a NodeClaim.
pub mod types {
    /// The instance exists.
    pub const LAUNCHED: &str = "Launched";
    /// Its Node joined and carries the pool's labels and taints.
    pub const REGISTERED: &str = "Registered";
    /// The Node is Ready, startup taints are gone and extended resources are advertised.
    pub const INITIALIZED: &str = "Initialized";
    /// The node no longer matches its NodePool.
    pub const DRIFTED: &str = "Drifted";
    /// A disruption command is taking the node away.
    pub const DISRUPTING: &str = "Disrupting";
}

/// Run the controller until its stream ends.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    let claims: Api<NodeClaim> = Api::all(ctx.client.clone());
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    Controller::new(claims, watcher::Config::default())
        .watches(nodes, watcher::Config::default(), |node: Node| {
            node.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(NODECLAIM_LABEL))
                .map(|name| ObjectRef::<NodeClaim>::new(name))
        })
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
    Err(Error::Other("the NodeClaim controller stopped".into()))
}

fn error_policy(claim: Arc<NodeClaim>, error: &Error, ctx: Arc<Context>) -> Action {
    ctx.metrics.error("nodeclaim.lifecycle", error);
    tracing::warn!(claim = claim.metadata.name.as_deref().unwrap_or(""), error = %error, "reconcile failed");
    Action::requeue(Duration::from_secs(2))
}

/// One reconcile of a NodeClaim.
pub async fn reconcile(claim: Arc<NodeClaim>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let finalizers = claim.metadata.finalizers.clone().unwrap_or_default();
    if claim.metadata.deletion_timestamp.is_some() {
        ctx.recent_claims.forget(&name);
        if !finalizers.iter().any(|f| f == TERMINATION_FINALIZER) {
            return Ok(Action::await_change());
        }
        return terminate(&claim, &ctx, &api).await;
    }
    if !finalizers.iter().any(|f| f == TERMINATION_FINALIZER) {
        let mut with_ours = finalizers.clone();
        with_ours.push(TERMINATION_FINALIZER.to_string());
        let patch = json!({"metadata": {"finalizers": with_ours}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await?;
    }
    let status = claim.status.clone().unwrap_or_default();
    let conds = conditions_of(&claim);
    if status.provider_id.is_none() {
        return launch(&claim, &ctx, &api).await;
    }
    if !conditions::is_true(&conds, types::REGISTERED) {
        return register(&claim, &ctx, &api).await;
    }
    if !conditions::is_true(&conds, types::INITIALIZED) {
        return initialize(&claim, &ctx, &api).await;
    }
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// The claim's status conditions as JSON.
pub fn conditions_of(claim: &NodeClaim) -> Vec<Value> {
    serde_json::to_value(&claim.status)
        .ok()
        .and_then(|s| s.get("conditions").cloned())
        .and_then(|c| c.as_array().cloned())
        .unwrap_or_default()
}

/// Merge `fields` into the claim's status, with `condition` set.
async fn patch_status(
    api: &Api<NodeClaim>,
    claim: &NodeClaim,
    mut fields: Value,
    condition: Condition,
) -> Result<(), Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let conds = conditions::set(&conditions_of(claim), &condition, &conditions::now());
    fields["conditions"] = Value::Array(conds);
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": fields})),
    )
    .await?;
    Ok(())
}

/// A single `In` value of requirement `key` on the claim.
fn pinned(claim: &NodeClaim, key: &str) -> Option<String> {
    claim
        .spec
        .requirements
        .iter()
        .find(|r| r.key == key && r.operator == "In")
        .and_then(|r| r.values.first().cloned())
}

fn launch_taints(taints: &[crate::api::TaintSpec]) -> Vec<purser_cloudprovider::Taint> {
    taints
        .iter()
        .map(|t| purser_cloudprovider::Taint {
            key: t.key.clone(),
            value: t.value.clone(),
            effect: t.effect.clone(),
        })
        .collect()
}

/// The launch request for a claim: its pinned offering, labels and taints.
pub fn launch_request(claim: &NodeClaim) -> LaunchRequest {
    let labels = claim.metadata.labels.clone().unwrap_or_default();
    let values = |key: &str| -> Vec<String> {
        claim
            .spec
            .requirements
            .iter()
            .filter(|r| r.key == key && r.operator == "In")
            .flat_map(|r| r.values.clone())
            .collect()
    };
    LaunchRequest {
        node_claim: claim.metadata.name.clone().unwrap_or_default(),
        node_pool: labels.get(NODEPOOL).cloned().unwrap_or_default(),
        node_class: claim
            .spec
            .node_class_ref
            .as_ref()
            .map(|r| r.name.clone())
            .unwrap_or_default(),
        instance_types: values(INSTANCE_TYPE),
        capacity_type: pinned(claim, CAPACITY_TYPE).unwrap_or_else(|| "on-demand".into()),
        zones: values(ZONE),
        labels: super::claims::node_labels(claim),
        taints: launch_taints(&claim.spec.taints),
        startup_taints: launch_taints(&claim.spec.startup_taints),
        ..LaunchRequest::default()
    }
}

/// The claim labels that say what the cloud really launched (instance type, zone, capacity
/// type), which may differ from the plan when the cloud picked an alternative; the Node gets
/// them at registration.
pub fn launched_labels(instance: &purser_cloudprovider::Instance) -> BTreeMap<String, String> {
    [
        (INSTANCE_TYPE, &instance.instance_type),
        (ZONE, &instance.zone),
        (CAPACITY_TYPE, &instance.capacity_type),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

async fn launch(claim: &NodeClaim, ctx: &Context, api: &Api<NodeClaim>) -> Result<Action, Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let mut request = launch_request(claim);
    let catalog = ctx.catalog();
    if let Some(it) = request.instance_types.first().and_then(|t| catalog.find(t)) {
        request.allocatable = it.allocatable.to_strings();
    }
    match ctx.cloud.create(request.clone()).await {
        Ok(instance) => {
            let it = catalog.find(&instance.instance_type);
            let price = catalog
                .find(&instance.instance_type)
                .and_then(|t| {
                    t.offerings
                        .iter()
                        .find(|o| o.zone == instance.zone && o.capacity_type.as_str() == instance.capacity_type)
                })
                .map(|o| o.price);
            let fields = json!({
                "providerId": instance.provider_id,
                "instanceType": instance.instance_type,
                "zone": instance.zone,
                "capacityType": instance.capacity_type,
                "price": price,
                "capacity": it.map(|t| t.capacity.to_strings()).unwrap_or_default(),
                "allocatable": it.map(|t| t.allocatable.to_strings()).unwrap_or_default(),
            });
            let message = format!(
                "{} {} in {}",
                instance.instance_type, instance.capacity_type, instance.zone
            );
            let labels = json!({"metadata": {"labels": launched_labels(&instance)}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&labels))
                .await?;
            patch_status(
                api,
                claim,
                fields,
                Condition::yes(types::LAUNCHED, "Launched", message.clone()),
            )
            .await?;
            ctx.metrics.launches.inc();
            ctx.events
                .normal(
                    &claim_ref(&name),
                    "Launched",
                    "Launch",
                    format!("Launched {message} as {}", instance.provider_id),
                )
                .await;
            Ok(Action::requeue(Duration::from_secs(1)))
        }
        Err(CloudError::InsufficientCapacity {
            instance_type,
            zone,
            capacity_type,
            others,
        }) => {
            let also = if others.is_empty() {
                String::new()
            } else {
                format!(" (also {others:?})")
            };
            let note = format!(
                "no capacity for {instance_type} {capacity_type} in {zone}{also}; offerings unavailable for {:?}, re-planning",
                ctx.settings.unavailable_for
            );
            if let Some(ct) = CapacityType::parse(&capacity_type) {
                for (t, z) in std::iter::once((instance_type, zone)).chain(others) {
                    ctx.unavailable.mark((t, z, ct), ctx.settings.unavailable_for);
                }
            }
            give_up(claim, ctx, api, "InsufficientCapacity", note).await
        }
        Err(e) => {
            let created = claim
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(0);
            if chrono::Utc::now().timestamp() - created > ctx.settings.registration_ttl.as_secs() as i64 {
                return give_up(
                    claim,
                    ctx,
                    api,
                    "LaunchFailed",
                    format!("launch failed for too long: {e}"),
                )
                .await;
            }
            patch_status(
                api,
                claim,
                json!({}),
                Condition::no(types::LAUNCHED, "LaunchFailed", e.to_string()),
            )
            .await?;
            Err(Error::Cloud(e))
        }
    }
}

/// Delete a claim that cannot become a node; its pods are planned again.
async fn give_up(
    claim: &NodeClaim,
    ctx: &Context,
    api: &Api<NodeClaim>,
    reason: &str,
    note: String,
) -> Result<Action, Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    tracing::warn!(claim = %name, reason, note, "deleting the claim");
    ctx.events.warning(&claim_ref(&name), reason, "Launch", note).await;
    ctx.recent_claims.forget(&name);
    match api.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => {}
        Err(e) => return Err(e.into()),
    }
    ctx.provision.notify_one();
    Ok(Action::requeue(Duration::from_secs(1)))
}

async fn register(claim: &NodeClaim, ctx: &Context, api: &Api<NodeClaim>) -> Result<Action, Error> {
    let provider_id = claim
        .status
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_default();
    let Some(node) = find_node(ctx, &provider_id).await? else {
        let launched = launched_at(claim);
        if chrono::Utc::now().timestamp() - launched > ctx.settings.registration_ttl.as_secs() as i64 {
            mark_unavailable(claim, ctx);
            let note = format!(
                "no Node with provider ID {provider_id} registered within {:?}",
                ctx.settings.registration_ttl
            );
            return give_up(claim, ctx, api, "RegistrationTimeout", note).await;
        }
        return Ok(Action::requeue(Duration::from_secs(1)));
    };
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let labels = super::claims::node_labels(claim);
    let mut taints: Vec<Taint> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.clone())
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t.key != UNREGISTERED_TAINT)
        .collect();
    for t in claim.spec.taints.iter().chain(&claim.spec.startup_taints) {
        if !taints.iter().any(|x| x.key == t.key && x.effect == t.effect) {
            taints.push(Taint {
                key: t.key.clone(),
                value: t.value.clone(),
                effect: t.effect.clone(),
                time_added: None,
            });
        }
    }
    let hash = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(super::claims::NODEPOOL_HASH))
        .cloned();
    let mut annotations = BTreeMap::new();
    if let Some(h) = hash {
        annotations.insert(super::claims::NODEPOOL_HASH.to_string(), h);
    }
    let patch = json!({"metadata": {"labels": labels, "annotations": annotations}, "spec": {"taints": taints}});
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    nodes
        .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    patch_status(
        api,
        claim,
        json!({"nodeName": node_name}),
        Condition::yes(types::REGISTERED, "Registered", format!("Node {node_name} joined")),
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(1)))
}

/// The Node with `provider_id`, from the cache or, when the cache lags, the API server.
async fn find_node(ctx: &Context, provider_id: &str) -> Result<Option<Node>, Error> {
    if let Some(node) = ctx.cluster.node_by_provider_id(provider_id) {
        return Ok(Some(node.as_ref().clone()));
    }
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let list = nodes.list(&Default::default()).await?;
    Ok(list
        .items
        .into_iter()
        .find(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_deref()) == Some(provider_id)))
}

fn launched_at(claim: &NodeClaim) -> i64 {
    let conds = conditions_of(claim);
    conds
        .iter()
        .find(|c| c["type"] == types::LAUNCHED)
        .and_then(|c| c["lastTransitionTime"].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp())
        .unwrap_or_else(|| {
            claim
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second())
                .unwrap_or(0)
        })
}

/// The offering a claim launched (from its status), else the one it was planned on.
fn launched_offering(claim: &NodeClaim) -> (Option<String>, Option<String>, Option<String>) {
    let status = claim.status.clone().unwrap_or_default();
    let or_pinned = |v: Option<String>, key: &str| v.filter(|v| !v.is_empty()).or_else(|| pinned(claim, key));
    (
        or_pinned(status.instance_type, INSTANCE_TYPE),
        or_pinned(status.zone, ZONE),
        or_pinned(status.capacity_type, CAPACITY_TYPE),
    )
}

fn mark_unavailable(claim: &NodeClaim, ctx: &Context) {
    let (t, z, c) = launched_offering(claim);
    let offering = (t, z, c.and_then(|c| CapacityType::parse(&c)));
    if let (Some(t), Some(z), Some(c)) = offering {
        ctx.unavailable.mark((t, z, c), ctx.settings.unavailable_for);
    }
}

async fn initialize(claim: &NodeClaim, ctx: &Context, api: &Api<NodeClaim>) -> Result<Action, Error> {
    let provider_id = claim
        .status
        .as_ref()
        .and_then(|s| s.provider_id.clone())
        .unwrap_or_default();
    let Some(node) = find_node(ctx, &provider_id).await? else {
        return Ok(Action::requeue(Duration::from_secs(2)));
    };
    if let Some(missing) = not_initialized_because(claim, &node) {
        tracing::debug!(
            claim = claim.metadata.name.as_deref().unwrap_or(""),
            missing,
            "not initialized yet"
        );
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    let node_name = node.metadata.name.clone().unwrap_or_default();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"metadata": {"labels": {super::INITIALIZED_LABEL: "true"}}});
    nodes
        .patch(&node_name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    patch_status(
        api,
        claim,
        json!({}),
        Condition::yes(types::INITIALIZED, "Initialized", format!("Node {node_name} is ready")),
    )
    .await?;
    let refreshed = api.get(claim.metadata.name.as_deref().unwrap_or("")).await?;
    patch_status(
        api,
        &refreshed,
        json!({}),
        Condition::yes("Ready", "Ready", "launched, registered and initialized"),
    )
    .await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

/// Why `node` does not count as initialized for `claim` yet, or None when it does.
pub fn not_initialized_because(claim: &NodeClaim, node: &Node) -> Option<String> {
    let status = node.status.as_ref();
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if !ready {
        return Some("the Node is not Ready".into());
    }
    let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    if let Some(t) = claim
        .spec
        .startup_taints
        .iter()
        .find(|s| taints.iter().any(|t| t.key == s.key && t.effect == s.effect))
    {
        return Some(format!("startup taint {} is still present", t.key));
    }
    let allocatable = status.and_then(|s| s.allocatable.clone()).unwrap_or_default();
    let requests = claim
        .spec
        .resources
        .as_ref()
        .map(|r| r.requests.clone())
        .unwrap_or_default();
    let extended = requests
        .keys()
        .find(|k| k.contains('/') && !allocatable.contains_key(*k));
    extended.map(|k| format!("extended resource {k} is not advertised yet"))
}

/// Finalizer work: drain the node (bounded by the termination grace period), terminate the
/// instance, delete the Node, then release the claim.
async fn terminate(claim: &NodeClaim, ctx: &Context, api: &Api<NodeClaim>) -> Result<Action, Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let provider_id = claim.status.as_ref().and_then(|s| s.provider_id.clone());
    let node = match &provider_id {
        Some(id) => find_node(ctx, id).await?,
        None => None,
    };
    if let Some(node) = &node {
        let since = claim
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| t.0.as_second())
            .unwrap_or(0);
        let waited = chrono::Utc::now().timestamp() - since;
        let left = drain(ctx, node).await?;
        if left > 0 && waited < ctx.settings.termination_grace.as_secs() as i64 {
            return Ok(Action::requeue(Duration::from_secs(1)));
        }
    }
    if let Some(id) = &provider_id {
        match ctx.cloud.delete(id.clone()).await {
            Ok(()) | Err(CloudError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    } else {
        terminate_unrecorded(ctx, &name).await?;
    }
    if let Some(node) = &node {
        let nodes: Api<Node> = Api::all(ctx.client.clone());
        match nodes
            .delete(node.metadata.name.as_deref().unwrap_or(""), &DeleteParams::default())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    remove_finalizer(api, claim).await?;
    ctx.events
        .normal(
            &claim_ref(&name),
            "Terminated",
            "Terminate",
            "instance terminated".into(),
        )
        .await;
    Ok(Action::await_change())
}

/// A claim deleted before its provider ID was recorded may still have an instance (the launch
/// returned, the status write did not happen): find it by claim name and terminate it.
async fn terminate_unrecorded(ctx: &Context, claim: &str) -> Result<(), Error> {
    for instance in ctx.cloud.list().await? {
        if instance.node_claim == claim {
            match ctx.cloud.delete(instance.provider_id).await {
                Ok(()) | Err(CloudError::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

async fn remove_finalizer(api: &Api<NodeClaim>, claim: &NodeClaim) -> Result<(), Error> {
    let name = claim.metadata.name.clone().unwrap_or_default();
    let kept: Vec<String> = claim
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != TERMINATION_FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"finalizers": kept, "resourceVersion": claim.metadata.resource_version}});
    match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Taint `node` so nothing new lands, evict its pods (a PDB's 429 is retried on the next
/// pass); returns how many evictable pods remain.
pub async fn drain(ctx: &Context, node: &Node) -> Result<usize, Error> {
    let name = node.metadata.name.clone().unwrap_or_default();
    taint_disrupted(ctx, node).await?;
    let pods: Api<Pod> = Api::all(ctx.client.clone());
    let on_node = pods
        .list(&kube::api::ListParams::default().fields(&format!("spec.nodeName={name}")))
        .await?;
    let evictable: Vec<Pod> = on_node.items.into_iter().filter(evictable).collect();
    let mut left = 0;
    for pod in &evictable {
        let ns = pod.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
        match evict(&api, &pod_name).await {
            Ok(_) => {
                ctx.metrics.evictions.inc();
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(kube::Error::Api(s)) if s.code == 429 => {
                left += 1;
                tracing::info!(pod = %format!("{ns}/{pod_name}"), node = %name, "eviction refused by a PodDisruptionBudget; retrying");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(left)
}

/// Evict one pod; a PodDisruptionBudget's 429 is retried with exponential backoff and jitter
/// (100 ms to 1 s, four tries) before the drain moves on and tries again next pass.
async fn evict(api: &Api<Pod>, name: &str) -> Result<kube::core::Status, kube::Error> {
    use backon::{ExponentialBuilder, Retryable};
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_secs(1))
        .with_max_times(3)
        .with_jitter();
    (|| async { api.evict(name, &EvictParams::default()).await })
        .retry(backoff)
        .when(|e| matches!(e, kube::Error::Api(s) if s.code == 429))
        .await
}

/// Pods a drain evicts: not DaemonSet pods, not mirror pods, not already finished or deleting.
fn evictable(pod: &Pod) -> bool {
    let daemon = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "DaemonSet");
    let mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"));
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    !daemon && !mirror && !finished && pod.metadata.deletion_timestamp.is_none()
}

/// Add `purser.dev/disrupted:NoSchedule` to `node` (once).
pub async fn taint_disrupted(ctx: &Context, node: &Node) -> Result<(), Error> {
    let mut taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
    if taints.iter().any(|t| t.key == DISRUPTED_TAINT) {
        return Ok(());
    }
    taints.push(Taint {
        key: DISRUPTED_TAINT.into(),
        value: None,
        effect: "NoSchedule".into(),
        time_added: None,
    });
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let patch = json!({"spec": {"taints": taints}, "metadata": {"resourceVersion": node.metadata.resource_version}});
    nodes
        .patch(
            node.metadata.name.as_deref().unwrap_or(""),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await?;
    Ok(())
}

/// A reference to NodeClaim `name`.
pub fn claim_ref(name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    cluster_ref("purser.dev/v1", "NodeClaim", name)
}

/// Set a condition on a claim by name (used by the disruption executor).
pub async fn set_condition(ctx: &Context, name: &str, condition: Condition) -> Result<(), Error> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let claim = api.get(name).await?;
    patch_status(&api, &claim, json!({}), condition).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_is_labelled_with_what_the_cloud_launched() {
        let instance = purser_cloudprovider::Instance {
            provider_id: "aws:///z2/i-1".into(),
            instance_type: "m6i.large".into(),
            zone: "z2".into(),
            capacity_type: "on-demand".into(),
            node_claim: "c".into(),
        };
        let labels = launched_labels(&instance);
        assert_eq!(labels.get(INSTANCE_TYPE).map(String::as_str), Some("m6i.large"));
        assert_eq!(labels.get(ZONE).map(String::as_str), Some("z2"));
        assert_eq!(labels.get(CAPACITY_TYPE).map(String::as_str), Some("on-demand"));
        let mut claim = NodeClaim::new("c", Default::default());
        claim.spec.requirements = vec![crate::api::NodeSelectorRequirement {
            key: INSTANCE_TYPE.into(),
            operator: "In".into(),
            values: vec!["m5.large".into(), "m6i.large".into()],
            min_values: None,
        }];
        assert_eq!(launched_offering(&claim).0.as_deref(), Some("m5.large"));
        claim.status = Some(crate::api::nodeclaim::NodeClaimStatus {
            instance_type: Some("m6i.large".into()),
            ..Default::default()
        });
        assert_eq!(launched_offering(&claim).0.as_deref(), Some("m6i.large"));
    }
}
