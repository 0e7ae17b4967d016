//! From the engine's planned nodes to NodeClaim objects, created once.
//!
//! In: a [`PlannedNode`] (pool, instance type, zone, capacity type, pods), the NodePool it
//! belongs to and the pods' requests. Out: a NodeClaim pinned to that offering, carrying the
//! pool's taints, startup taints, NodeClass and template hash (for drift), and the termination
//! finalizer; plus [`RecentClaims`], which counts claims the watch cache has not shown yet as
//! capacity so that no pass launches the same node twice.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::Value;

use super::{NODECLAIM_LABEL, TERMINATION_FINALIZER};
use crate::api::nodeclaim::ClaimResources;
use crate::api::{NodeClaim, NodeClaimSpec, NodePool, NodeSelectorRequirement};
use crate::model::Snapshot;
use crate::model::labels::{CAPACITY_TYPE, INSTANCE_TYPE, NODEPOOL, ZONE};
use crate::model::resources::Resources;
use crate::solver::PlannedNode;

/// Annotation with the pool template hash a claim was made from (the drift check reads it).
pub const NODEPOOL_HASH: &str = "purser.dev/nodepool-hash";
/// Annotation with the planned hourly price, USD.
pub const HOURLY_PRICE: &str = "purser.dev/hourly-price";

/// The NodeClaim for `planned`, in pool `pool`, with `hash` the pool's template hash.
pub fn claim_for(planned: &PlannedNode, pool: &NodePool, hash: &str, requests: &Resources) -> NodeClaim {
    let template = &pool.spec.template;
    let mut labels: BTreeMap<String, String> = template.metadata.labels.clone();
    labels.insert(NODEPOOL.into(), planned.node_pool.clone());
    labels.insert(INSTANCE_TYPE.into(), planned.instance_type.clone());
    labels.insert(ZONE.into(), planned.zone.clone());
    labels.insert(CAPACITY_TYPE.into(), planned.capacity_type.clone());
    let pin = |key: &str, value: &str| NodeSelectorRequirement {
        key: key.into(),
        operator: "In".into(),
        values: vec![value.into()],
        min_values: None,
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(NODEPOOL_HASH.to_string(), hash.to_string());
    annotations.insert(HOURLY_PRICE.to_string(), format!("{:.4}", planned.hourly_price));
    NodeClaim {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", planned.node_pool)),
            labels: Some(labels),
            annotations: Some(annotations),
            finalizers: Some(vec![TERMINATION_FINALIZER.into()]),
            ..ObjectMeta::default()
        },
        spec: NodeClaimSpec {
            requirements: vec![
                pin(INSTANCE_TYPE, &planned.instance_type),
                pin(ZONE, &planned.zone),
                pin(CAPACITY_TYPE, &planned.capacity_type),
            ],
            resources: Some(ClaimResources {
                requests: requests.to_strings(),
            }),
            taints: template.spec.taints.clone(),
            startup_taints: template.spec.startup_taints.clone(),
            node_class_ref: template.spec.node_class_ref.clone(),
            expire_after: template.spec.expire_after.clone(),
            termination_grace_period: template.spec.termination_grace_period.clone(),
        },
        status: None,
    }
}

/// The summed requests of `pods` (`namespace/name` keys) in `snapshot`.
pub fn requests_of(snapshot: &Snapshot, pods: &[String]) -> Resources {
    let mut total = Resources::new();
    for pod in snapshot.pods.iter().filter(|p| pods.contains(&p.key)) {
        total.add(&pod.requests);
    }
    total
}

/// Create NodeClaims for `planned` (in order); returns the names given, None where creation
/// failed (the error is logged; the pods stay pending and the next pass plans them again).
pub async fn create_all(ctx: &super::Context, snapshot: &Snapshot, planned: &[PlannedNode]) -> Vec<Option<String>> {
    let api: Api<NodeClaim> = Api::all(ctx.client.clone());
    let jobs = planned.iter().map(|p| {
        let api = api.clone();
        async move {
            let pool = ctx.cluster.pools.state().into_iter().find(|np| np.metadata.name.as_deref() == Some(&p.node_pool));
            let Some(pool) = pool else {
                tracing::warn!(pool = %p.node_pool, "planned a node for a NodePool that is gone");
                return None;
            };
            let hash = snapshot
                .pools
                .iter()
                .find(|sp| sp.name == p.node_pool)
                .map(|sp| sp.template_hash.clone())
                .unwrap_or_default();
            let claim = claim_for(p, &pool, &hash, &requests_of(snapshot, &p.pods));
            match api.create(&PostParams::default(), &claim).await {
                Ok(created) => {
                    ctx.recent_claims.add(&created);
                    created.metadata.name
                }
                Err(e) => {
                    tracing::error!(pool = %p.node_pool, instance_type = %p.instance_type, error = %e, "cannot create a NodeClaim");
                    None
                }
            }
        }
    });
    futures::future::join_all(jobs).await
}

/// Claims created by this process that the watch cache may not show yet.
#[derive(Default)]
pub struct RecentClaims {
    claims: Mutex<Vec<(Instant, Value)>>,
}

/// How long a created claim is remembered in case the watch cache lags.
const REMEMBER_FOR: Duration = Duration::from_secs(60);

impl RecentClaims {
    /// Remember a claim just created.
    pub fn add(&self, claim: &NodeClaim) {
        if let (Ok(mut claims), Ok(value)) = (self.claims.lock(), super::snapshot::to_object(claim)) {
            claims.push((Instant::now(), value));
        }
    }

    /// Forget a claim that is being deleted, so it never comes back as capacity once the watch
    /// cache has dropped it.
    pub fn forget(&self, name: &str) {
        if let Ok(mut claims) = self.claims.lock() {
            claims.retain(|(_, c)| c.pointer("/metadata/name").and_then(Value::as_str) != Some(name));
        }
    }

    /// Claims still not in `known` (names the watch cache has), forgetting the others.
    pub fn missing_from(&self, known: &dyn Fn(&str) -> bool) -> Vec<Value> {
        let Ok(mut claims) = self.claims.lock() else {
            return vec![];
        };
        let now = Instant::now();
        claims.retain(|(at, c)| {
            let name = c.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
            now.duration_since(*at) < REMEMBER_FOR && !known(name)
        });
        claims.iter().map(|(_, c)| c.clone()).collect()
    }
}

/// Label a NodeClaim's Node gets, naming the claim.
pub fn node_labels(claim: &NodeClaim) -> BTreeMap<String, String> {
    let mut labels = claim.metadata.labels.clone().unwrap_or_default();
    if let Some(name) = &claim.metadata.name {
        labels.insert(NODECLAIM_LABEL.into(), name.clone());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> NodeClaim {
        NodeClaim {
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..ObjectMeta::default()
            },
            spec: NodeClaimSpec::default(),
            status: None,
        }
    }

    fn names(values: Vec<Value>) -> Vec<String> {
        values
            .iter()
            .filter_map(|v| v.pointer("/metadata/name").and_then(Value::as_str).map(str::to_string))
            .collect()
    }

    #[test]
    fn a_recent_claim_counts_until_the_cache_has_it_and_a_forgotten_one_never_comes_back() {
        let recent = RecentClaims::default();
        recent.add(&named("a"));
        recent.add(&named("b"));
        assert_eq!(names(recent.missing_from(&|_| false)), ["a", "b"]);
        recent.forget("a");
        assert_eq!(names(recent.missing_from(&|_| false)), ["b"]);
        assert!(
            recent.missing_from(&|n| n == "b").is_empty(),
            "seen in the cache: dropped"
        );
        assert!(
            recent.missing_from(&|_| false).is_empty(),
            "and not back once the cache drops it"
        );
    }
}
