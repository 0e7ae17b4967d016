//! From the engine's planned nodes to NodeClaim objects, created once.
//!
//! In: a [`PlannedNode`] (pool, instance type, zone, capacity type, pods), the NodePool it
//! belongs to and the pods' requests. Out: a NodeClaim pinned to that offering, carrying the
//! pool's taints, startup taints, NodeClass and template hash (for drift), and the termination
//! finalizer; plus [`RecentClaims`], which counts claims the watch cache has not shown yet as
//! capacity so that no pass launches the same node twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kube::api::{Api, ObjectMeta, PostParams};
use serde_json::Value;

use super::unavailable::OfferingKey;
use super::{NODECLAIM_LABEL, TERMINATION_FINALIZER};
use crate::api::nodeclaim::ClaimResources;
use crate::api::{NodeClaim, NodeClaimSpec, NodePool, NodeSelectorRequirement};
use crate::catalog::{CapacityType, Catalog, InstanceType};
use crate::model::labels::{ARCH, CAPACITY_TYPE, INSTANCE_TYPE, NODEPOOL, OS, ZONE};
use crate::model::pod::PodInfo;
use crate::model::resources::Resources;
use crate::model::{Pool, Snapshot};
use crate::solver::PlannedNode;
use crate::solver::problem::{pool_node_labels, with_offering};

/// Annotation with the pool template hash a claim was made from (the drift check reads it).
pub const NODEPOOL_HASH: &str = "purser.dev/nodepool-hash";
/// Annotation with the planned hourly price, USD.
pub const HOURLY_PRICE: &str = "purser.dev/hourly-price";

/// At most this many alternative instance types go on a claim besides the planned one.
pub const MAX_ALTERNATIVES: usize = 9;

/// What an alternative to a planned node must satisfy: the pool, the pods placed on the node,
/// and the offerings that failed recently.
pub struct AlternativeRules<'a> {
    /// The validated NodePool of the planned node.
    pub pool: &'a Pool,
    /// The pods the plan put on the node.
    pub pods: Vec<&'a PodInfo>,
    /// Offerings that failed to launch recently.
    pub unavailable: &'a HashSet<OfferingKey>,
}

/// Instance types the cloud may launch instead of the planned one, cheapest first: in the
/// planned zone and capacity type, no dearer than the planned offering, meeting the pool's
/// requirements and every placed pod's node selector and required node affinity, with the
/// planned type's architecture and OS and at least its allocatable (cpu, memory, pods, GPUs and
/// every other resource).
pub fn alternatives(planned: &PlannedNode, catalog: &Catalog, rules: &AlternativeRules<'_>) -> Vec<String> {
    let Some(ct) = CapacityType::parse(&planned.capacity_type) else {
        return vec![];
    };
    let Some(plan_type) = catalog.find(&planned.instance_type) else {
        return vec![];
    };
    let mut found: Vec<(f64, &str)> = catalog
        .instance_types
        .iter()
        .filter(|it| it.name != planned.instance_type && same_platform(plan_type, it))
        .filter(|it| plan_type.allocatable.fits_in(&it.allocatable))
        .filter_map(|it| offering_price(it, planned, ct, rules).map(|p| (p, it)))
        .filter(|(_, it)| meets_rules(it, planned, ct, catalog, rules))
        .map(|(p, it)| (p, it.name.as_str()))
        .collect();
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    found
        .into_iter()
        .take(MAX_ALTERNATIVES)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn same_platform(plan: &InstanceType, other: &InstanceType) -> bool {
    [ARCH, OS].iter().all(|k| plan.labels.get(*k) == other.labels.get(*k))
}

/// The price of `it` in the planned zone and capacity type, when it is available and no
/// dearer than the planned offering.
fn offering_price(
    it: &InstanceType,
    planned: &PlannedNode,
    ct: CapacityType,
    rules: &AlternativeRules<'_>,
) -> Option<f64> {
    if rules.unavailable.contains(&(it.name.clone(), planned.zone.clone(), ct)) {
        return None;
    }
    it.offerings
        .iter()
        .find(|o| o.zone == planned.zone && o.capacity_type == ct)
        .map(|o| o.price)
        .filter(|p| *p <= planned.hourly_price)
}

fn meets_rules(
    it: &InstanceType,
    planned: &PlannedNode,
    ct: CapacityType,
    catalog: &Catalog,
    rules: &AlternativeRules<'_>,
) -> bool {
    let labels = with_offering(pool_node_labels(rules.pool, it, &catalog.region), &planned.zone, ct);
    rules.pool.requirements.matches(&labels)
        && rules
            .pods
            .iter()
            .all(|p| p.node_selector.matches(&labels) && p.node_affinity.matches(&labels))
}

/// The NodeClaim for `planned`, in pool `pool`, with `hash` the pool's template hash; the
/// claim's instance-type requirement lists the planned type first, then `alternatives`.
pub fn claim_for(
    planned: &PlannedNode,
    pool: &NodePool,
    hash: &str,
    requests: &Resources,
    alternatives: &[String],
) -> NodeClaim {
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
    let mut types = vec![planned.instance_type.clone()];
    types.extend(alternatives.iter().cloned());
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
                NodeSelectorRequirement {
                    key: INSTANCE_TYPE.into(),
                    operator: "In".into(),
                    values: types,
                    min_values: None,
                },
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
    let catalog = ctx.catalog();
    let unavailable = ctx.unavailable.current();
    let catalog = &catalog;
    let unavailable = &unavailable;
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
            let others = alternatives_in(snapshot, p, catalog, unavailable);
            let claim = claim_for(p, &pool, &hash, &requests_of(snapshot, &p.pods), &others);
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

/// The alternatives of `planned` with the pool and pods of `snapshot` (none when the pool is
/// not in the snapshot).
fn alternatives_in(
    snapshot: &Snapshot,
    planned: &PlannedNode,
    catalog: &Catalog,
    unavailable: &HashSet<OfferingKey>,
) -> Vec<String> {
    let Some(pool) = snapshot.pools.iter().find(|sp| sp.name == planned.node_pool) else {
        return vec![];
    };
    let rules = AlternativeRules {
        pool,
        pods: snapshot.pods.iter().filter(|p| planned.pods.contains(&p.key)).collect(),
        unavailable,
    };
    alternatives(planned, catalog, &rules)
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
    use crate::catalog::Offering;
    use crate::model::requirements::{Requirement, Requirements};

    fn it(name: &str, arch: &str, alloc: &[(&str, &str)], price: f64) -> InstanceType {
        let family = name.split('.').next().unwrap_or_default();
        InstanceType {
            name: name.into(),
            capacity: Resources::parse(alloc.iter().copied()).unwrap(),
            allocatable: Resources::parse(alloc.iter().copied()).unwrap(),
            labels: [
                (ARCH.to_string(), arch.to_string()),
                (OS.to_string(), "linux".to_string()),
                (INSTANCE_TYPE.to_string(), name.to_string()),
                ("purser.dev/instance-family".to_string(), family.to_string()),
            ]
            .into(),
            offerings: vec![Offering {
                zone: "z1".into(),
                capacity_type: CapacityType::Spot,
                price,
                price_estimated: false,
                interruption_rate: None,
            }],
        }
    }

    fn pool(requirements: Vec<Requirement>) -> Pool {
        Pool {
            name: "p".into(),
            weight: 0,
            labels: BTreeMap::new(),
            requirements: Requirements(requirements),
            taints: vec![],
            startup_taints: vec![],
            limits: Resources::new(),
            max_hourly_cost: None,
            min_on_demand_percent: 0.0,
            disruption: Default::default(),
            template_hash: String::new(),
        }
    }

    #[test]
    fn alternatives_meet_the_pools_requirements_and_the_planned_allocatable_and_price() {
        let base = [("cpu", "2"), ("memory", "8Gi"), ("pods", "29")];
        let catalog = Catalog {
            region: "r".into(),
            instance_types: vec![
                it("m5.large", "amd64", &base, 0.04),
                it("m6i.large", "amd64", &base, 0.035),
                it("c5.large", "amd64", &base, 0.02),
                it(
                    "r5.large",
                    "amd64",
                    &[("cpu", "2"), ("memory", "16Gi"), ("pods", "29")],
                    0.04,
                ),
                it(
                    "t3.large",
                    "amd64",
                    &[("cpu", "2"), ("memory", "8Gi"), ("pods", "11")],
                    0.01,
                ),
                it(
                    "m5.xlarge",
                    "amd64",
                    &[("cpu", "4"), ("memory", "16Gi"), ("pods", "58")],
                    0.08,
                ),
                it("m6g.large", "arm64", &base, 0.03),
                it("m7i.large", "amd64", &base, 0.03),
            ],
        };
        let planned = PlannedNode {
            node_pool: "p".into(),
            instance_type: "m5.large".into(),
            capacity_type: "spot".into(),
            zone: "z1".into(),
            hourly_price: 0.04,
            price_estimated: false,
            allocatable: BTreeMap::new(),
            pods: vec![],
        };
        let no_c = Requirement::new("purser.dev/instance-family", "NotIn", &["c5".to_string()]).unwrap();
        let np = pool(vec![no_c]);
        let unavailable: HashSet<OfferingKey> =
            [("m7i.large".to_string(), "z1".to_string(), CapacityType::Spot)].into();
        let rules = AlternativeRules {
            pool: &np,
            pods: vec![],
            unavailable: &unavailable,
        };
        assert_eq!(
            alternatives(&planned, &catalog, &rules),
            ["m6i.large", "r5.large"],
            "c5 violates the pool's NotIn, t3 has fewer pods, m5.xlarge is dearer, m6g another arch, m7i unavailable"
        );
        let claim = claim_for(
            &planned,
            &NodePool::new("p", Default::default()),
            "h",
            &Resources::new(),
            &["m6i.large".into()],
        );
        let types = claim
            .spec
            .requirements
            .iter()
            .find(|r| r.key == INSTANCE_TYPE)
            .map(|r| r.values.clone());
        assert_eq!(types, Some(vec!["m5.large".to_string(), "m6i.large".to_string()]));
    }

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
