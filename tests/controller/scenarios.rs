//! The controller scenarios, run against the in-process API server (tests/controller) and,
//! with `PURSER_E2E=1`, against the cluster in KUBECONFIG (tests/e2e): provisioning, the
//! NodeClaim lifecycle across crashes, leader election, disruption execution, budgets and bad
//! input.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams};
use purser::api::{CostBudget, NodeClaim, NodePool};
use purser_cloudprovider::{CatalogFile, CloudError, CloudProvider, Instance, LaunchRequest};
use serde_json::json;

use super::harness::{Cluster, fast_settings, nodepool, pod};

pub const MINUTE: Duration = Duration::from_secs(60);

/// Fifty pods of five shapes.
fn fifty_shapes(prefix: &str) -> Vec<(String, &'static str, &'static str)> {
    let shapes = [
        ("250m", "512Mi"),
        ("500m", "1Gi"),
        ("1", "2Gi"),
        ("2", "3Gi"),
        ("1500m", "6Gi"),
    ];
    (0..50)
        .map(|i| {
            let (cpu, mem) = shapes[i % shapes.len()];
            (format!("{prefix}-{i}"), cpu, mem)
        })
        .collect()
}

fn claim_price(claim: &NodeClaim) -> f64 {
    claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("purser.dev/hourly-price"))
        .and_then(|p| p.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn events_for(cluster: &Cluster, reason: &str) -> Vec<Event> {
    Api::<Event>::all(cluster.client.clone())
        .list(&ListParams::default())
        .await
        .expect("events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

async fn delete_pods(cluster: &Cluster, namespace: &str) {
    let api: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    for p in api.list(&ListParams::default()).await.expect("pods").items {
        let name = p.metadata.name.unwrap_or_default();
        let _ = api.delete(&name, &DeleteParams::default()).await;
    }
}

/// Scenario `fifty_pending_pods_become_kwok_nodes_at_the_plans_cost_and_the_same_pods_again_launch_nothing`.
pub async fn fifty_pending_pods_become_kwok_nodes_at_the_plans_cost_and_the_same_pods_again_launch_nothing(
    cluster: Cluster,
) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    cluster.pods("default", &fifty_shapes("web")).await;
    cluster
        .until("the scheduler marks 50 pods unschedulable", MINUTE, || {
            cluster.all_marked(50)
        })
        .await;
    let controller = cluster.controller(fast_settings("a"));
    let took = cluster
        .until("all 50 pods are bound", 2 * MINUTE, || cluster.all_bound())
        .await;
    eprintln!("50 pods bound in {took:?}");

    let claims = cluster.claims().await;
    let plans = controller.ctx.decisions();
    assert_eq!(plans.len(), 1, "one batch, one plan");
    let plan = &plans[0];
    assert!(plan.unschedulable.is_empty());
    assert_eq!(claims.len(), plan.node_claims.len(), "one NodeClaim per planned node");
    let launched: f64 = claims.iter().map(claim_price).sum();
    assert!(
        (launched - plan.hourly_cost).abs() < 1e-3,
        "launched {launched} vs plan {}",
        plan.hourly_cost
    );
    let instances = cluster.cloud.list().await.expect("instances");
    assert_eq!(instances.len(), claims.len(), "one instance per claim");
    let nodes = cluster.nodes().await;
    assert_eq!(nodes.len(), claims.len());
    for claim in &claims {
        let status = claim.status.clone().expect("status");
        assert!(status.node_name.is_some(), "claim {:?} registered", claim.metadata.name);
    }
    let nominated = events_for(&cluster, "Nominated").await;
    assert!(nominated.len() >= 50, "every pod got a Nominated event");

    // The same pods again, planned by a controller started once they are all pending (as the
    // first fifty were): pods created while a controller runs reach it over several batches on
    // a loaded machine, and a plan for some of them may place them on the nodes so that the
    // rest no longer fit, which is packing in arrival order, not what this checks.
    controller.stop().await;
    delete_pods(&cluster, "default").await;
    cluster
        .until("the pods are gone", MINUTE, || async {
            cluster.all_pods().await.is_empty()
        })
        .await;
    cluster.pods("default", &fifty_shapes("again")).await;
    cluster
        .until("the scheduler has seen the 50 new pods", MINUTE, || {
            cluster.all_marked(50)
        })
        .await;
    let controller = cluster.controller(fast_settings("b"));
    cluster
        .until("the same pods bind to the same nodes", 2 * MINUTE, || {
            cluster.all_bound()
        })
        .await;
    assert!(
        controller.ctx.decisions().iter().all(|p| p.node_claims.is_empty()),
        "no plan asked for a new node"
    );
    assert_eq!(cluster.claims().await.len(), claims.len(), "nothing new launched");
    assert_eq!(cluster.cloud.list().await.expect("instances").len(), claims.len());
    controller.stop().await;
}

/// A cloud whose `create` never returns for the first `hold` calls (after doing the launch when
/// `launch_first` is set): the controller dies with a call in flight.
#[derive(Clone)]
struct Stalling {
    inner: Arc<dyn CloudProvider>,
    launch_first: bool,
}

impl CloudProvider for Stalling {
    fn name(&self) -> &str {
        "stalling"
    }
    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>> {
        Box::pin(async move {
            if self.launch_first {
                let _ = self.inner.create(request).await;
            }
            futures::future::pending().await
        })
    }
    fn get(&self, id: String) -> BoxFuture<'_, Result<Instance, CloudError>> {
        self.inner.get(id)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>> {
        self.inner.list()
    }
    fn delete(&self, id: String) -> BoxFuture<'_, Result<(), CloudError>> {
        self.inner.delete(id)
    }
    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>> {
        self.inner.instance_types()
    }
}

async fn crash_and_restart(cluster: Cluster, launch_first: bool) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    cluster.pods("default", &fifty_shapes("job")[..8]).await;
    cluster
        .until("the scheduler marks the pods", MINUTE, || cluster.all_marked(8))
        .await;
    let stalling = Arc::new(Stalling {
        inner: cluster.cloud.clone(),
        launch_first,
    });
    let first = cluster.controller_with(fast_settings("first"), stalling);
    // Every claim of the first plan (they are created one request each, not all at once).
    cluster
        .until("the plan's NodeClaims are created", MINUTE, || async {
            let planned = first.ctx.decisions().first().map_or(0, |p| p.node_claims.len());
            planned > 0 && cluster.claims().await.len() == planned
        })
        .await;
    let expected = cluster.claims().await.len();
    if launch_first {
        cluster
            .until("the instances are launched", MINUTE, || async {
                cluster.cloud.list().await.map(|l| l.len()).unwrap_or(0) == expected
            })
            .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill();
    let claims = cluster.claims().await;
    assert!(
        claims
            .iter()
            .all(|c| c.status.as_ref().and_then(|s| s.provider_id.as_ref()).is_none()),
        "no launch was recorded before the crash"
    );

    let second = cluster.controller(fast_settings("second"));
    cluster
        .until("every pod is bound after the restart", 2 * MINUTE, || {
            cluster.all_bound()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let claims = cluster.claims().await;
    let instances = cluster.cloud.list().await.expect("instances");
    assert_eq!(claims.len(), expected, "the claims completed; no new claim was needed");
    assert_eq!(instances.len(), expected, "no duplicate and no leaked instance");
    let mut per_claim: HashMap<String, usize> = HashMap::new();
    for i in &instances {
        *per_claim.entry(i.node_claim.clone()).or_default() += 1;
    }
    assert!(
        per_claim.values().all(|&n| n == 1),
        "one instance per claim: {per_claim:?}"
    );
    for claim in &claims {
        let id = claim
            .status
            .as_ref()
            .and_then(|s| s.provider_id.clone())
            .expect("launched");
        assert!(instances.iter().any(|i| i.provider_id == id));
    }
    second.stop().await;
}

/// Scenario `a_crash_between_claim_created_and_instance_launched_leaves_no_duplicate`.
pub async fn a_crash_between_claim_created_and_instance_launched_leaves_no_duplicate(cluster: Cluster) {
    crash_and_restart(cluster, false).await;
}

/// Scenario `a_crash_between_instance_launched_and_node_registered_leaves_no_duplicate`.
pub async fn a_crash_between_instance_launched_and_node_registered_leaves_no_duplicate(cluster: Cluster) {
    crash_and_restart(cluster, true).await;
}

/// Scenario `two_replicas_one_acts_and_the_other_takes_over_when_it_dies`.
pub async fn two_replicas_one_acts_and_the_other_takes_over_when_it_dies(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    let a = cluster.controller(fast_settings("replica-a"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = cluster.controller(fast_settings("replica-b"));
    cluster.pods("default", &fifty_shapes("one")[..5]).await;
    cluster
        .until("the first pods are bound", MINUTE, || cluster.all_bound())
        .await;
    let (leader, follower) = if a.ctx.decisions().is_empty() { (b, a) } else { (a, b) };
    assert!(!leader.ctx.decisions().is_empty());
    assert!(follower.ctx.decisions().is_empty(), "exactly one replica acts");

    leader.kill();
    let started = std::time::Instant::now();
    cluster.pods("default", &fifty_shapes("two")[..5]).await;
    cluster
        .until("the other replica provisions the new pods", MINUTE, || {
            cluster.all_bound()
        })
        .await;
    let failover = started.elapsed();
    eprintln!("failover and provisioning took {failover:?}");
    assert!(!follower.ctx.decisions().is_empty(), "the follower took over");
    assert!(failover < Duration::from_secs(15), "failover within 15 s: {failover:?}");
    follower.stop().await;
}

/// Scenario `a_budget_that_binds_leaves_pods_pending_with_an_event_naming_it`.
pub async fn a_budget_that_binds_leaves_pods_pending_with_an_event_naming_it(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    cluster
        .apply::<CostBudget>(json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget",
            "metadata": {"name": "team-vision"},
            "spec": {"selector": {"namespaces": ["vision"]}, "maxHourlyCost": 0.05}}))
        .await;
    cluster.pods("vision", &[("big".to_string(), "4", "8Gi")]).await;
    let controller = cluster.controller(fast_settings("a"));
    cluster
        .until("a FailedScheduling event names the budget", MINUTE, || async {
            events_for(&cluster, "FailedScheduling")
                .await
                .iter()
                .any(|e| e.note.as_deref().unwrap_or("").contains("budget team-vision"))
        })
        .await;
    assert!(cluster.claims().await.is_empty(), "nothing launched over the budget");
    assert!(!cluster.all_bound().await);
    controller.stop().await;
}

/// Scenario `bad_objects_get_a_condition_and_an_event_while_the_rest_is_served`.
pub async fn bad_objects_get_a_condition_and_an_event_while_the_rest_is_served(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    cluster
        .apply::<NodePool>(nodepool(
            "classless",
            json!({"spec": {"weight": 100, "template": {"spec": {
            "nodeClassRef": {"group": "purser.dev", "kind": "NodeClass", "name": "missing"}}}}}),
        ))
        .await;
    let controller = cluster.controller(fast_settings("a"));
    cluster.pods("default", &fifty_shapes("ok")[..3]).await;
    cluster
        .until("the valid pool serves the pods", MINUTE, || cluster.all_bound())
        .await;
    let claims = cluster.claims().await;
    assert!(claims.iter().all(|c| {
        c.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("purser.dev/nodepool"))
            .map(String::as_str)
            == Some("general")
    }));
    cluster
        .until(
            "the pool without a NodeClass is not Ready, with an event",
            MINUTE,
            || async {
                let pool = Api::<NodePool>::all(cluster.client.clone())
                    .get("classless")
                    .await
                    .expect("pool");
                let value = serde_json::to_value(&pool).unwrap_or_default();
                let ready = value
                    .pointer("/status/conditions")
                    .and_then(|c| c.as_array())
                    .cloned()
                    .unwrap_or_default();
                let not_ready = ready
                    .iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "False" && c["reason"] == "NodeClassNotFound");
                let event = events_for(&cluster, "InvalidSpec")
                    .await
                    .iter()
                    .any(|e| e.note.as_deref().unwrap_or("").contains("missing"));
                not_ready && event
            },
        )
        .await;
    hand_edits_are_refused_or_reported(&cluster).await;
    assert!(controller.is_running(), "nothing crashed");
    cluster.pods("default", &fifty_shapes("after")[..2]).await;
    cluster
        .until("pods created after the bad objects are served", MINUTE, || {
            cluster.all_bound()
        })
        .await;
    controller.stop().await;
}

/// Ready=False with `reason` on the cluster-scoped `K` named `name`, and an Event whose note
/// contains `needle`.
async fn reported<K>(cluster: &Cluster, name: &str, reason: &str, needle: &str) -> bool
where
    K: kube::Resource<Scope = kube::core::ClusterResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let Ok(object) = Api::<K>::all(cluster.client.clone()).get(name).await else {
        return false;
    };
    let value = serde_json::to_value(&object).unwrap_or_default();
    let conditions = value
        .pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default();
    let condition = conditions
        .iter()
        .any(|c| c["type"] == "Ready" && c["status"] == "False" && c["reason"] == reason);
    let event = events_for(cluster, reason).await.iter().any(|e| {
        e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            && e.note.as_deref().unwrap_or("").contains(needle)
    });
    condition && event
}

/// A CostBudget whose selector the schema lets through but Kubernetes does not define, and a
/// NodeClaim edited by hand: the spec edit is refused by the API server (the spec is immutable,
/// as Karpenter's), the status edit is reported on the claim.
async fn hand_edits_are_refused_or_reported(cluster: &Cluster) {
    cluster
        .apply::<CostBudget>(json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget",
            "metadata": {"name": "broken"},
            "spec": {"maxHourlyCost": 10, "selector": {"podSelector": {"matchExpressions": [
                {"key": "team", "operator": "Like", "values": ["vision"]}]}}}}))
        .await;
    cluster
        .until("the broken CostBudget is reported", MINUTE, || {
            reported::<CostBudget>(cluster, "broken", "InvalidSpec", "operator")
        })
        .await;

    let claim = cluster.claims().await.into_iter().next().expect("a claim");
    let name = claim.metadata.name.clone().expect("named");
    let api: Api<NodeClaim> = Api::all(cluster.client.clone());
    let spec_edit = json!({"spec": {"requirements": [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["huge.metal"]}]}});
    let refused = api
        .patch(
            &name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&spec_edit),
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("immutable")),
        "a hand edit of a NodeClaim's spec is refused: {refused:?}"
    );
    let status_edit = json!({"status": {"allocatable": {"cpu": "lots"}}});
    api.patch_status(
        &name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&status_edit),
    )
    .await
    .expect("status edited by hand");
    cluster
        .until("the hand-edited NodeClaim is reported", MINUTE, || {
            reported::<NodeClaim>(cluster, &name, "InvalidSpec", "status.allocatable")
        })
        .await;
}

/// Scenario `an_unreachable_api_server_is_survived_without_duplicate_launches`.
pub async fn an_unreachable_api_server_is_survived_without_duplicate_launches(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    let controller = cluster.controller(fast_settings("a"));
    cluster.pods("default", &fifty_shapes("pre")[..4]).await;
    cluster
        .until("the first pods are bound", MINUTE, || cluster.all_bound())
        .await;
    let before = cluster.claims().await.len();
    let Some(server) = &cluster.server else {
        eprintln!("skipped: an outage needs the in-process API server");
        return;
    };
    server.set_available(false);
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.set_available(true);
    cluster.pods("default", &fifty_shapes("post")[..4]).await;
    cluster
        .until("pods created after the outage are bound", 2 * MINUTE, || {
            cluster.all_bound()
        })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let claims = cluster.claims().await.len();
    let instances = cluster.cloud.list().await.expect("instances").len();
    assert_eq!(instances, claims, "every instance has its claim");
    assert!(claims >= before && claims <= before + 4);
    assert!(controller.is_running());
    controller.stop().await;
}

/// Scenario `an_empty_node_is_removed_after_its_ttl`.
pub async fn an_empty_node_is_removed_after_its_ttl(cluster: Cluster) {
    cluster
        .apply::<NodePool>(nodepool(
            "general",
            json!({"spec": {"disruption": {"consolidateAfter": "2s", "budgets": [{"nodes": "100%"}]}}}),
        ))
        .await;
    let mut settings = fast_settings("a");
    settings.disruption_interval = Duration::from_secs(1);
    let controller = cluster.controller(settings);
    cluster.pods("default", &[("solo".to_string(), "1", "1Gi")]).await;
    cluster.until("the pod is bound", MINUTE, || cluster.all_bound()).await;
    assert_eq!(cluster.nodes().await.len(), 1);
    delete_pods(&cluster, "default").await;
    let took = cluster
        .until("the empty node and its claim are gone", MINUTE, || async {
            cluster.nodes().await.is_empty() && cluster.claims().await.is_empty()
        })
        .await;
    eprintln!("empty node removed {took:?} after its pod left");
    assert!(took >= Duration::from_secs(2), "not before consolidateAfter");
    assert!(
        cluster.cloud.list().await.expect("instances").is_empty(),
        "the instance is terminated"
    );
    controller.stop().await;
}

/// Stage `count` nodes, each holding one big pod (which fills it) and one small pod; with
/// `held`, the last stage goes to the tainted pool `held` and its small pod is PDB-protected.
async fn staged_nodes(cluster: &Cluster, count: usize, held: bool) {
    for i in 0..count {
        let mut small = pod("default", &format!("small-{i}"), "250m", "256Mi");
        let mut big = pod("default", &format!("big-{i}"), "3600m", "7Gi");
        if held && i + 1 == count {
            small["metadata"]["labels"]["protected"] = json!("yes");
            for p in [&mut small, &mut big] {
                p["spec"]["nodeSelector"] = json!({"purser.dev/nodepool": "held"});
                p["spec"]["tolerations"] =
                    json!([{"key": "dedicated", "operator": "Equal", "value": "held", "effect": "NoSchedule"}]);
            }
        }
        cluster.apply_ns::<Pod>(small).await;
        cluster.apply_ns::<Pod>(big).await;
        cluster
            .until("the stage is bound", MINUTE, || cluster.all_bound())
            .await;
    }
}

/// Scenario `consolidation_replaces_three_underused_nodes_launching_first_and_a_pdb_holds_a_fourth`.
pub async fn consolidation_replaces_three_underused_nodes_launching_first_and_a_pdb_holds_a_fourth(cluster: Cluster) {
    let mut cluster = cluster;
    cluster
        .apply::<NodePool>(nodepool(
            "general",
            json!({"spec": {"disruption": {"consolidateAfter": "1s",
            "consolidationPolicy": "WhenEmptyOrUnderutilized", "budgets": [{"nodes": "100%"}]}}}),
        ))
        .await;
    cluster
        .apply_ns::<PodDisruptionBudget>(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "hold", "namespace": "default"},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"protected": "yes"}}}}))
        .await;
    cluster
        .apply::<NodePool>(nodepool("held", json!({"spec": {"disruption": {"consolidateAfter": "1s",
            "budgets": [{"nodes": "100%"}]}, "template": {"spec": {"taints": [{"key": "dedicated", "value": "held", "effect": "NoSchedule"}]}}}})))
        .await;
    let setup = cluster.controller(fast_settings("setup"));
    staged_nodes(&cluster, 4, true).await;
    let before: Vec<String> = cluster
        .nodes()
        .await
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert_eq!(before.len(), 4, "four staged nodes");
    setup.stop().await;
    for i in 0..4 {
        let api: Api<Pod> = Api::namespaced(cluster.client.clone(), "default");
        api.delete(&format!("big-{i}"), &DeleteParams::default())
            .await
            .expect("delete");
    }
    cluster
        .until("the big pods are gone", MINUTE, || async {
            cluster.all_pods().await.len() == 4
        })
        .await;
    // From here on, evicted pods come back as a ReplicaSet would bring them (the deleted big
    // pods stay deleted: scaled down).
    cluster.with_replicasets();
    let held_node = cluster
        .all_pods()
        .await
        .into_iter()
        .find(|p| p.metadata.name.as_deref() == Some("small-3"))
        .and_then(|p| p.spec.and_then(|s| s.node_name))
        .expect("the held pod's node");

    let order = tokio::spawn(watch_order(cluster.client.clone(), before.clone()));
    let mut settings = fast_settings("consolidator");
    settings.disruption_interval = Duration::from_secs(1);
    let controller = cluster.controller(settings);
    cluster
        .until("three underused nodes are replaced", 2 * MINUTE, || async {
            let names: Vec<String> = cluster
                .nodes()
                .await
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .collect();
            let old_left = before.iter().filter(|n| names.contains(n)).count();
            old_left == 1 && cluster.all_bound().await
        })
        .await;
    let nodes: Vec<String> = cluster
        .nodes()
        .await
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    assert!(
        nodes.contains(&held_node),
        "the PDB with maxUnavailable 0 holds its node"
    );
    assert!(nodes.len() <= 2, "three nodes became at most one: {nodes:?}");
    let order = order.await.expect("the order watcher");
    let (initialized, evicted) = (
        order.0.expect("a replacement initialized"),
        order.1.expect("a small pod was evicted"),
    );
    assert!(
        initialized <= evicted,
        "the replacement was initialized ({initialized:?}) before the first eviction ({evicted:?})"
    );
    controller.stop().await;
}

/// When a replacement claim (a node not in `before`) first reported Initialized, and when one
/// of the small pods on the old nodes first disappeared (evicted), both since the start.
async fn watch_order(client: kube::Client, before: Vec<String>) -> (Option<Duration>, Option<Duration>) {
    let start = std::time::Instant::now();
    let (mut initialized, mut evicted) = (None, None);
    while start.elapsed() < 2 * MINUTE && (initialized.is_none() || evicted.is_none()) {
        let claims = Api::<NodeClaim>::all(client.clone())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let new_ready = claims.iter().any(|c| {
            let value = serde_json::to_value(c).unwrap_or_default();
            let node = value.pointer("/status/nodeName").and_then(|n| n.as_str()).unwrap_or("");
            let ready = value
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .cloned()
                .unwrap_or_default();
            !node.is_empty()
                && !before.iter().any(|b| b == node)
                && ready
                    .iter()
                    .any(|c| c["type"] == "Initialized" && c["status"] == "True")
        });
        if new_ready && initialized.is_none() {
            initialized = Some(start.elapsed());
        }
        let pods = Api::<Pod>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        let names: Vec<String> = pods.into_iter().filter_map(|p| p.metadata.name).collect();
        if evicted.is_none() && (0..3).any(|i| !names.contains(&format!("small-{i}"))) {
            evicted = Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (initialized, evicted)
}

/// The offering a launch request asks for first: (instance type, zone, capacity type).
fn first_offering(request: &LaunchRequest) -> (String, String, String) {
    (
        request.instance_types.first().cloned().unwrap_or_default(),
        request.zones.first().cloned().unwrap_or_default(),
        request.capacity_type.clone(),
    )
}

/// The offering a claim's status says it runs on.
fn claim_offering(claim: &NodeClaim) -> Option<(String, String, String)> {
    let status = serde_json::to_value(claim.status.as_ref()?).ok()?;
    let field = |k: &str| status.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Some((field("instanceType")?, field("zone")?, field("capacityType")?))
}

/// A cloud with no capacity for the first offering it is asked for (then or ever after).
struct NoCapacity {
    inner: Arc<dyn CloudProvider>,
    refused: std::sync::Mutex<Option<(String, String, String)>>,
    refusals: std::sync::atomic::AtomicUsize,
}

impl CloudProvider for NoCapacity {
    fn name(&self) -> &str {
        "no-capacity"
    }
    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>> {
        Box::pin(async move {
            let asked = first_offering(&request);
            let refuse = {
                let mut refused = self.refused.lock().expect("lock");
                refused.get_or_insert_with(|| asked.clone()) == &asked
            };
            if refuse {
                self.refusals.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Err(CloudError::InsufficientCapacity {
                    instance_type: asked.0,
                    zone: asked.1,
                    capacity_type: asked.2,
                    others: vec![],
                });
            }
            self.inner.create(request).await
        })
    }
    fn get(&self, id: String) -> BoxFuture<'_, Result<Instance, CloudError>> {
        self.inner.get(id)
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>> {
        self.inner.list()
    }
    fn delete(&self, id: String) -> BoxFuture<'_, Result<(), CloudError>> {
        self.inner.delete(id)
    }
    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>> {
        self.inner.instance_types()
    }
}

/// Scenario `an_offering_without_capacity_is_marked_unavailable_and_the_next_plan_avoids_it`.
pub async fn an_offering_without_capacity_is_marked_unavailable_and_the_next_plan_avoids_it(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    let cloud = Arc::new(NoCapacity {
        inner: cluster.cloud.clone(),
        refused: std::sync::Mutex::new(None),
        refusals: std::sync::atomic::AtomicUsize::new(0),
    });
    let controller = cluster.controller_with(fast_settings("a"), cloud.clone());
    cluster.pods("default", &fifty_shapes("ice")[..6]).await;
    cluster
        .until("every pod is bound despite the refusal", 2 * MINUTE, || {
            cluster.all_bound()
        })
        .await;
    let refused = cloud
        .refused
        .lock()
        .expect("lock")
        .clone()
        .expect("a launch was refused");
    let first_refusals = cloud.refusals.load(std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        cloud.refusals.load(std::sync::atomic::Ordering::SeqCst),
        first_refusals,
        "no later plan asked for the refused offering again"
    );
    let claims = cluster.claims().await;
    assert!(!claims.is_empty());
    for claim in &claims {
        assert_ne!(
            claim_offering(claim).as_ref(),
            Some(&refused),
            "a claim runs on the refused offering"
        );
    }
    let events = events_for(&cluster, "InsufficientCapacity").await;
    assert!(
        events
            .iter()
            .any(|e| e.note.as_deref().unwrap_or("").contains(&refused.0)),
        "an Event names the refused instance type"
    );
    assert_eq!(
        cluster.cloud.list().await.expect("instances").len(),
        claims.len(),
        "one instance per claim, none for the refused launches"
    );
    controller.stop().await;
}

/// A cloud whose first launch succeeds but never becomes a Node (the instance exists; its
/// kubelet never joins).
struct NeverJoins {
    inner: Arc<dyn CloudProvider>,
    ghost: std::sync::Mutex<Option<Instance>>,
    terminated: std::sync::Mutex<Vec<String>>,
}

impl CloudProvider for NeverJoins {
    fn name(&self) -> &str {
        "never-joins"
    }
    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>> {
        Box::pin(async move {
            let ghost = {
                let mut ghost = self.ghost.lock().expect("lock");
                if ghost.is_some() {
                    None
                } else {
                    let (instance_type, zone, capacity_type) = first_offering(&request);
                    let instance = Instance {
                        provider_id: format!("kwok://ghost-{}", request.node_claim),
                        instance_type,
                        zone,
                        capacity_type,
                        node_claim: request.node_claim.clone(),
                    };
                    *ghost = Some(instance.clone());
                    Some(instance)
                }
            };
            match ghost {
                Some(instance) => Ok(instance),
                None => self.inner.create(request).await,
            }
        })
    }
    fn get(&self, id: String) -> BoxFuture<'_, Result<Instance, CloudError>> {
        Box::pin(async move {
            let ghost = self.ghost.lock().expect("lock").clone();
            let gone = self.terminated.lock().expect("lock").contains(&id);
            match ghost {
                Some(g) if g.provider_id == id && !gone => Ok(g),
                _ => self.inner.get(id).await,
            }
        })
    }
    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>> {
        Box::pin(async move {
            let mut all = self.inner.list().await?;
            let ghost = self.ghost.lock().expect("lock").clone();
            let terminated = self.terminated.lock().expect("lock").clone();
            all.extend(ghost.filter(|g| !terminated.contains(&g.provider_id)));
            Ok(all)
        })
    }
    fn delete(&self, id: String) -> BoxFuture<'_, Result<(), CloudError>> {
        Box::pin(async move {
            let is_ghost = self
                .ghost
                .lock()
                .expect("lock")
                .as_ref()
                .is_some_and(|g| g.provider_id == id);
            if is_ghost {
                self.terminated.lock().expect("lock").push(id);
                return Ok(());
            }
            self.inner.delete(id).await
        })
    }
    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>> {
        self.inner.instance_types()
    }
}

/// Scenario `a_node_that_does_not_register_in_time_is_terminated_and_replaced`.
pub async fn a_node_that_does_not_register_in_time_is_terminated_and_replaced(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    let cloud = Arc::new(NeverJoins {
        inner: cluster.cloud.clone(),
        ghost: std::sync::Mutex::new(None),
        terminated: std::sync::Mutex::new(vec![]),
    });
    let mut settings = fast_settings("a");
    settings.registration_ttl = Duration::from_secs(3);
    let controller = cluster.controller_with(settings, cloud.clone());
    cluster.pods("default", &[("late".to_string(), "1", "2Gi")]).await;
    let took = cluster
        .until("the pod is bound on a replacement", 2 * MINUTE, || cluster.all_bound())
        .await;
    let ghost = cloud
        .ghost
        .lock()
        .expect("lock")
        .clone()
        .expect("the first launch was a ghost");
    assert!(
        took >= Duration::from_secs(3),
        "not replaced before the registration TTL: {took:?}"
    );
    assert_eq!(
        cloud.terminated.lock().expect("lock").clone(),
        vec![ghost.provider_id.clone()],
        "the instance that never joined was terminated, once"
    );
    let claims = cluster.claims().await;
    assert_eq!(claims.len(), 1, "one claim left: the replacement");
    assert_ne!(
        claims[0].metadata.name.as_deref(),
        Some(ghost.node_claim.as_str()),
        "the claim that never registered is gone"
    );
    assert_ne!(
        claim_offering(&claims[0]),
        Some((
            ghost.instance_type.clone(),
            ghost.zone.clone(),
            ghost.capacity_type.clone()
        )),
        "the replacement avoids the offering that failed to register"
    );
    let events = events_for(&cluster, "RegistrationTimeout").await;
    assert!(!events.is_empty(), "an Event says the node did not register");
    controller.stop().await;
}

/// Scenario `a_leaked_instance_is_terminated_after_the_grace_period_and_claimed_ones_are_kept`.
pub async fn a_leaked_instance_is_terminated_after_the_grace_period_and_claimed_ones_are_kept(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    let controller = cluster.controller(fast_settings("a"));
    cluster.pods("default", &[("kept".to_string(), "1", "2Gi")]).await;
    cluster.until("the pod is bound", MINUTE, || cluster.all_bound()).await;
    let claimed = cluster.cloud.list().await.expect("instances");
    assert_eq!(claimed.len(), 1);
    let leaked = cluster
        .cloud
        .create(LaunchRequest {
            node_claim: "general-gone".into(),
            node_pool: "general".into(),
            instance_types: vec!["ctest.1x".into()],
            capacity_type: "on-demand".into(),
            zones: vec!["zone-a".into()],
            ..LaunchRequest::default()
        })
        .await
        .expect("an instance launched behind the controller's back");
    let took = cluster
        .until("the leaked instance is terminated", MINUTE, || async {
            let ids: Vec<String> = cluster
                .cloud
                .list()
                .await
                .expect("instances")
                .into_iter()
                .map(|i| i.provider_id)
                .collect();
            !ids.contains(&leaked.provider_id)
        })
        .await;
    assert!(took >= Duration::from_secs(2), "not before the grace period: {took:?}");
    let left = cluster.cloud.list().await.expect("instances");
    assert_eq!(left, claimed, "the claimed instance is kept");
    assert!(cluster.all_bound().await);
    controller.stop().await;
}

/// The ledger a budget's ConfigMap holds: (USD so far, accrued until in Unix seconds, run-rate).
async fn stored_ledger(cluster: &Cluster, budget: &str) -> Option<(f64, i64, f64)> {
    let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(cluster.client.clone(), "purser");
    let map = api.get_opt(&format!("purser-ledger-{budget}")).await.ok()??;
    let text = map.data?.get("ledger.json")?.clone();
    let stored: serde_json::Value = serde_json::from_str(&text).ok()?;
    let spend: f64 = stored
        .pointer("/ledger/hours")?
        .as_object()?
        .values()
        .filter_map(|v| v.as_f64())
        .sum();
    let until = stored.pointer("/ledger/accruedUntil")?.as_i64()?;
    let rate = stored.pointer("/runRate")?.as_f64()?;
    Some((spend, until, rate))
}

/// Scenario `a_restart_mid_period_loses_no_budget_spend`: a budget's spend accrues while its
/// pods run, a controller killed mid-period and a new one started later charge the time in
/// between at the run-rate last seen, the status shows the spend, forecast and allowed
/// run-rate, and the Warning transition gives one Event and one counted transition, not one per
/// controller.
pub async fn a_restart_mid_period_loses_no_budget_spend(cluster: Cluster) {
    cluster.apply::<NodePool>(nodepool("general", json!({}))).await;
    let first = cluster.controller(budget_settings("a"));
    cluster.pods("vision", &[("train".to_string(), "15", "56Gi")]).await;
    cluster
        .until("the budget's pod runs", MINUTE, || cluster.all_bound())
        .await;
    // A yearly period (from 1 January) and a 5 USD cap: the forecast at the pod's run-rate
    // passes 80% of the cap at once except in the last hours of a year.
    cluster
        .apply::<CostBudget>(json!({"apiVersion": "purser.dev/v1", "kind": "CostBudget",
            "metadata": {"name": "team-vision"},
            "spec": {"selector": {"namespaces": ["vision"]}, "maxHourlyCost": 100.0,
                "period": "0 0 1 1 *", "maxPeriodCost": 5.0}}))
        .await;
    cluster
        .until("the ledger accrues at the pod's run-rate", MINUTE, || async {
            stored_ledger(&cluster, "team-vision")
                .await
                .is_some_and(|(spend, _, rate)| spend > 0.0 && rate > 0.0)
        })
        .await;
    cluster
        .until("the forecast raises Warning", MINUTE, || async {
            condition(&cluster, "team-vision", "Warning").await.as_deref() == Some("True")
        })
        .await;
    let metrics = first.ctx.metrics.encode();
    assert!(
        metrics.contains(r#"purser_budget_transitions_total{budget="team-vision",to="Warning"} 1"#),
        "{metrics}"
    );
    first.kill();
    let (spend_before, until_before, rate) = stored_ledger(&cluster, "team-vision").await.expect("a stored ledger");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = cluster.controller(budget_settings("b"));
    cluster
        .until("the new controller accrues past the downtime", MINUTE, || async {
            stored_ledger(&cluster, "team-vision")
                .await
                .is_some_and(|(_, until, _)| until >= until_before + 4)
        })
        .await;
    let (spend_after, until_after, _) = stored_ledger(&cluster, "team-vision").await.expect("a stored ledger");
    let expected = spend_before + rate * (until_after - until_before) as f64 / 3600.0;
    assert!(
        (spend_after - expected).abs() < 1e-9,
        "spend {spend_after} after the restart, expected {expected}: {spend_before} before it plus \
         {rate} USD/h over {} s",
        until_after - until_before
    );
    let status = Api::<CostBudget>::all(cluster.client.clone())
        .get("team-vision")
        .await
        .expect("budget");
    let status = serde_json::to_value(&status).expect("json");
    let spend_to_date = status
        .pointer("/status/spendToDate")
        .and_then(|v| v.as_f64())
        .expect("spendToDate");
    assert!(spend_to_date >= spend_before - 1e-4, "{status}");
    let allowed = status
        .pointer("/status/allowedRunRate")
        .and_then(|v| v.as_f64())
        .expect("allowedRunRate");
    assert!(
        allowed < 5.0,
        "5 USD over the rest of a month allows well under 5 USD/h: {status}"
    );
    let forecast = status
        .pointer("/status/forecast")
        .and_then(|v| v.as_f64())
        .expect("forecast");
    assert!(
        forecast >= 4.0,
        "a forecast at 80% of the cap or more raised Warning: {status}"
    );
    let warnings = events_for(&cluster, "BudgetWarning").await;
    assert_eq!(
        warnings.len(),
        1,
        "one Event for one transition, not one per controller"
    );
    assert!(
        second.ctx.metrics.encode().contains("purser_budget_spend_usd"),
        "the new controller exports the budget gauges"
    );
    second.stop().await;
}

/// The settings of the budget scenario: status (and the ledger) every half second.
fn budget_settings(identity: &str) -> purser::controllers::Settings {
    purser::controllers::Settings {
        status_interval: Duration::from_millis(500),
        ..fast_settings(identity)
    }
}

/// The status of a CostBudget's condition of `type_`.
async fn condition(cluster: &Cluster, budget: &str, type_: &str) -> Option<String> {
    let object = Api::<CostBudget>::all(cluster.client.clone()).get(budget).await.ok()?;
    let value = serde_json::to_value(&object).ok()?;
    value
        .pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(|t| t.as_str()) == Some(type_))?
        .get("status")?
        .as_str()
        .map(String::from)
}
