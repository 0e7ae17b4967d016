//! `purser-kwok`: a CloudProvider whose instances are Kubernetes Node objects, like Karpenter's
//! kwok provider, so the controller can run against any cluster (or an in-process API server)
//! without a cloud.
//!
//! ```text
//!  controller ──create/get/list/delete──▶ KwokProvider ──▶ ConfigMap purser-kwok-instances
//!                                                              (one JSON record per instance)
//!                                                                  │ read every tick
//!  Nodes ◀──create, Ready, untaint, delete orphans── Kubelet loop ◀┘
//! ```
//!
//! The "cloud" is durable in the cluster, so killing and restarting the controller (or the
//! loop) between "instance launched" and "Node registered" loses nothing:
//! - `create` is idempotent per NodeClaim (the instance is named after the claim and a second
//!   create returns the existing instance, the client-token rule); it picks, in the request's
//!   order of preference, the first instance type with an offering of the capacity type in the
//!   first allowed zone that has one, records the instance and returns at once.
//! - The [`Kubelet`] loop, which runs apart from the controller, creates the Node after the
//!   registration delay (provider ID `kwok://<name>`, capacity and allocatable, well-known and
//!   requested labels, the request's taints and startup taints plus `purser.dev/unregistered`,
//!   which the controller removes when it registers the node), then after the ready delay marks
//!   it Ready and removes the startup taints, standing in for the agent that owns them.
//! - Allocatable is the request's (the controller derives it from Purser's catalog, which knows
//!   the EKS reservation rule), else the instance type's explicit allocatable, else its capacity.
//! - Records change with optimistic concurrency (replace with the read `resourceVersion`,
//!   retry on 409), so a provider and a loop in different processes can share them.
//!
//! The loop does not send heartbeats or run pods: in a real cluster, run kwok's controller
//! too (it adopts Nodes annotated `kwok.x-k8s.io/node: fake`), or kube-controller-manager marks
//! the Nodes NotReady after its grace period.

pub mod kubelet;
pub mod node;
pub mod record;
pub mod store;

use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Client};
use purser_cloudprovider::{CatalogFile, CloudError, CloudProvider, Instance, LaunchRequest};

pub use kubelet::{Action, Kubelet};
pub use record::InstanceRecord;
pub use store::InstanceStore;

/// Where the instance records live and how fast simulated instances boot.
#[derive(Debug, Clone, PartialEq)]
pub struct KwokOptions {
    /// Namespace of the instance ConfigMap.
    pub namespace: String,
    /// Name of the instance ConfigMap.
    pub config_map: String,
    /// Time from launch until the Node is created.
    pub registration_delay: Duration,
    /// Time from Node creation until it is Ready and its startup taints are gone.
    pub ready_delay: Duration,
    /// How often the kubelet loop looks at the records and Nodes.
    pub poll_interval: Duration,
}

impl Default for KwokOptions {
    fn default() -> Self {
        KwokOptions {
            namespace: "kube-system".into(),
            config_map: "purser-kwok-instances".into(),
            registration_delay: Duration::from_secs(2),
            ready_delay: Duration::from_secs(1),
            poll_interval: Duration::from_millis(250),
        }
    }
}

/// The kwok cloud provider.
#[derive(Clone)]
pub struct KwokProvider {
    client: Client,
    catalog: CatalogFile,
    options: KwokOptions,
    store: InstanceStore,
    nodes: Api<Node>,
}

impl std::fmt::Debug for KwokProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KwokProvider")
            .field("store", &self.store)
            .field("instance_types", &self.catalog.instance_types.len())
            .finish()
    }
}

impl KwokProvider {
    /// A provider offering `catalog`, keeping its records where `options` says.
    pub fn new(client: Client, catalog: CatalogFile, options: KwokOptions) -> Self {
        KwokProvider {
            store: InstanceStore::new(client.clone(), &options.namespace, &options.config_map),
            nodes: Api::all(client.clone()),
            client,
            catalog,
            options,
        }
    }

    /// The kubelet loop for this provider's records; spawn `kubelet().run(shutdown)`.
    pub fn kubelet(&self) -> Kubelet {
        Kubelet::new(self.client.clone(), self.options.clone())
    }

    /// The instance record store.
    pub fn store(&self) -> &InstanceStore {
        &self.store
    }

    /// Record a new instance for the request, or return the claim's existing one.
    async fn launch(&self, request: LaunchRequest) -> Result<Instance, CloudError> {
        let planned = record::plan_launch(&request, &self.catalog, &Timestamp::now().to_string());
        let name = request.node_claim.clone();
        let instance = self
            .store
            .update(|records| record::admit(records, &name, &planned))
            .await??;
        tracing::info!(provider_id = %instance.provider_id, instance_type = %instance.instance_type, zone = %instance.zone, "kwok instance launched");
        Ok(instance)
    }

    /// The record of a provider ID.
    async fn find(&self, provider_id: String) -> Result<Instance, CloudError> {
        let Some(name) = record::instance_name(&provider_id) else {
            return Err(CloudError::NotFound(provider_id));
        };
        let records = self.store.load().await?;
        records
            .get(name)
            .map(InstanceRecord::instance)
            .ok_or(CloudError::NotFound(provider_id))
    }

    /// Remove the record, then the Node; `NotFound` when there was no record.
    async fn terminate(&self, provider_id: String) -> Result<(), CloudError> {
        let Some(name) = record::instance_name(&provider_id).map(str::to_string) else {
            return Err(CloudError::NotFound(provider_id));
        };
        let existed = self.store.update(|records| records.remove(&name).is_some()).await?;
        kubelet::delete_node(&self.nodes, &name).await?;
        if existed {
            tracing::info!(%provider_id, "kwok instance terminated");
            Ok(())
        } else {
            Err(CloudError::NotFound(provider_id))
        }
    }
}

impl CloudProvider for KwokProvider {
    fn name(&self) -> &str {
        "kwok"
    }

    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>> {
        self.launch(request).boxed()
    }

    fn get(&self, provider_id: String) -> BoxFuture<'_, Result<Instance, CloudError>> {
        self.find(provider_id).boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>> {
        async move {
            let records = self.store.load().await?;
            Ok(records.values().map(InstanceRecord::instance).collect())
        }
        .boxed()
    }

    fn delete(&self, provider_id: String) -> BoxFuture<'_, Result<(), CloudError>> {
        self.terminate(provider_id).boxed()
    }

    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>> {
        let catalog = self.catalog.clone();
        async move { Ok(catalog) }.boxed()
    }
}
