//! An in-memory `CloudProvider` that tests drive: launches succeed instantly unless an
//! offering is marked out of capacity; instances live in a map until deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt};
use purser_cloudprovider::{CatalogFile, CloudError, CloudProvider, Instance, LaunchRequest};

/// The fake cloud.
#[derive(Debug, Default)]
pub struct FakeCloud {
    catalog: CatalogFile,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    instances: BTreeMap<String, Instance>,
    exhausted: BTreeSet<(String, String, String)>,
    next_id: u64,
    launches: Vec<LaunchRequest>,
}

impl FakeCloud {
    /// A fake cloud offering the instance types of `catalog`.
    pub fn new(catalog: CatalogFile) -> Self {
        FakeCloud {
            catalog,
            state: Mutex::new(State::default()),
        }
    }

    /// Make launches of (instance type, zone, capacity type) fail with insufficient capacity.
    pub fn exhaust(&self, instance_type: &str, zone: &str, capacity_type: &str) {
        self.lock()
            .exhausted
            .insert((instance_type.into(), zone.into(), capacity_type.into()));
    }

    /// Every launch request received so far.
    pub fn launches(&self) -> Vec<LaunchRequest> {
        self.lock().launches.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn launch(&self, request: LaunchRequest) -> Result<Instance, CloudError> {
        let mut state = self.lock();
        state.launches.push(request.clone());
        let zone = request.zones.first().cloned().unwrap_or_default();
        for it in &request.instance_types {
            let key = (it.clone(), zone.clone(), request.capacity_type.clone());
            let offered = self.catalog.instance_types.iter().any(|t| {
                &t.name == it
                    && t.offerings
                        .iter()
                        .any(|o| o.zone == zone && o.capacity_type == request.capacity_type)
            });
            if !offered || state.exhausted.contains(&key) {
                continue;
            }
            state.next_id += 1;
            let instance = Instance {
                provider_id: format!("fake:///{zone}/i-{:08}", state.next_id),
                instance_type: it.clone(),
                zone: zone.clone(),
                capacity_type: request.capacity_type.clone(),
                node_claim: request.node_claim.clone(),
            };
            state.instances.insert(instance.provider_id.clone(), instance.clone());
            return Ok(instance);
        }
        Err(CloudError::InsufficientCapacity {
            instance_type: request.instance_types.first().cloned().unwrap_or_default(),
            zone,
            capacity_type: request.capacity_type,
            others: vec![],
        })
    }
}

impl CloudProvider for FakeCloud {
    fn name(&self) -> &str {
        "fake"
    }

    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>> {
        let result = self.launch(request);
        async move { result }.boxed()
    }

    fn get(&self, provider_id: String) -> BoxFuture<'_, Result<Instance, CloudError>> {
        let result = self
            .lock()
            .instances
            .get(&provider_id)
            .cloned()
            .ok_or(CloudError::NotFound(provider_id));
        async move { result }.boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>> {
        let result = Ok(self.lock().instances.values().cloned().collect());
        async move { result }.boxed()
    }

    fn delete(&self, provider_id: String) -> BoxFuture<'_, Result<(), CloudError>> {
        let result = self
            .lock()
            .instances
            .remove(&provider_id)
            .map(|_| ())
            .ok_or(CloudError::NotFound(provider_id));
        async move { result }.boxed()
    }

    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>> {
        let catalog = self.catalog.clone();
        async move { Ok(catalog) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_cloudprovider::{InstanceTypeSpec, OfferingSpec};

    fn catalog() -> CatalogFile {
        CatalogFile {
            instance_types: vec![InstanceTypeSpec {
                name: "m5.large".into(),
                offerings: vec![OfferingSpec {
                    zone: "z1".into(),
                    capacity_type: "spot".into(),
                    price: Some(0.04),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn request() -> LaunchRequest {
        LaunchRequest {
            node_claim: "nc-1".into(),
            instance_types: vec!["m5.large".into()],
            capacity_type: "spot".into(),
            zones: vec!["z1".into()],
            ..Default::default()
        }
    }

    #[test]
    fn launches_lists_and_deletes() {
        let cloud = FakeCloud::new(catalog());
        let i = futures::executor::block_on(cloud.create(request())).unwrap();
        assert_eq!(futures::executor::block_on(cloud.list()).unwrap().len(), 1);
        futures::executor::block_on(cloud.delete(i.provider_id.clone())).unwrap();
        assert!(futures::executor::block_on(cloud.get(i.provider_id)).is_err());
    }

    #[test]
    fn launch_requests_keep_taints() {
        let cloud = FakeCloud::new(catalog());
        let taint = purser_cloudprovider::Taint {
            key: "example.com/agent-not-ready".into(),
            value: None,
            effect: "NoExecute".into(),
        };
        let req = LaunchRequest {
            startup_taints: vec![taint.clone()],
            ..request()
        };
        futures::executor::block_on(cloud.create(req)).unwrap();
        assert_eq!(cloud.launches()[0].startup_taints, [taint]);
    }

    #[test]
    fn exhausted_offering_fails_with_insufficient_capacity() {
        let cloud = FakeCloud::new(catalog());
        cloud.exhaust("m5.large", "z1", "spot");
        let err = futures::executor::block_on(cloud.create(request())).unwrap_err();
        assert!(matches!(err, CloudError::InsufficientCapacity { .. }));
    }
}
