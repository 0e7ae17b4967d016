//! `purser-aws`: the [`CloudProvider`] for AWS EC2, on the AWS SDK for Rust.
//!
//! ```text
//!  LaunchRequest ─► NodeClass (spec.aws, resolved: subnets, groups, images) ─► launch template (per hash)
//!                                                                            └► CreateFleet instant ─► Instance
//!  DescribeInstanceTypes / Offerings / SpotPriceHistory (5 min), Pricing GetProducts (12 h) ─► instance_types()
//!  SQS (EventBridge: spot warning, rebalance, health, state change) ─────────────────────────► interruptions()
//!  NodeClass loop: resolve selectors, write status.aws and the Ready condition
//! ```
//! Every call retries throttling and transient errors with exponential backoff and jitter
//! ([`errors::call`]); credentials come from the standard chain (environment, IRSA, EKS Pod
//! Identity, profiles). Only instances tagged `purser.dev/cluster=<cluster>` are listed, and
//! no other instance is ever terminated.

pub mod catalog;
pub mod errors;
pub mod fleet;
pub mod instances;
pub mod interruption;
pub mod nodeclass;
pub mod nodeclasses;
pub mod pricing;
pub mod resolve;
pub mod testing;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use purser_cloudprovider::{CatalogFile, CloudError, CloudProvider, Instance, InterruptionEvent, LaunchRequest};

use errors::{AwsError, RetryPolicy};
use fleet::{FleetRequest, LaunchError};
use resolve::ResolvedClass;

/// Settings of the AWS provider.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsOptions {
    /// Cluster name: instances are tagged with it, and only tagged instances are touched.
    pub cluster_name: String,
    /// Region of the instances and prices.
    pub region: String,
    /// URL of the SQS interruption queue (none: no interruption handling).
    pub interruption_queue_url: Option<String>,
    /// Kubernetes minor version for image aliases (`1.33`).
    pub kubernetes_version: String,
    /// Retry policy of every call.
    pub retry: RetryPolicy,
    /// Longest SQS long poll, in seconds (20 in production).
    pub queue_wait_seconds: i32,
}

impl Default for AwsOptions {
    fn default() -> Self {
        AwsOptions {
            cluster_name: String::new(),
            region: "us-east-1".into(),
            interruption_queue_url: None,
            kubernetes_version: "1.33".into(),
            retry: RetryPolicy::default(),
            queue_wait_seconds: interruption::WAIT_SECONDS,
        }
    }
}

/// The SDK clients the provider uses.
#[derive(Debug, Clone)]
pub struct Clients {
    /// EC2.
    pub ec2: aws_sdk_ec2::Client,
    /// The Pricing API.
    pub pricing: aws_sdk_pricing::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

/// The HTTPS client of every AWS call: hyper 1 and rustls with the `ring` provider, the one the
/// Kubernetes client uses (a second rustls provider in the process would leave rustls unable to
/// pick a default).
pub fn http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The shared SDK configuration: the standard credential chain, `region` (else the SDK's
/// default), an optional endpoint override (testing), and SDK retries off (the provider retries
/// with backon).
pub async fn sdk_config(region: Option<&str>, endpoint_url: Option<&str>) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_string()));
    }
    if let Some(url) = endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

impl Clients {
    /// Clients from one configuration; the Pricing API lives in us-east-1 unless
    /// `pricing_endpoint_url` points elsewhere.
    pub fn new(sdk: &aws_config::SdkConfig, pricing_endpoint_url: Option<&str>) -> Self {
        let mut pricing = aws_sdk_pricing::config::Builder::from(sdk).region(aws_config::Region::new("us-east-1"));
        if let Some(url) = pricing_endpoint_url {
            pricing = pricing.endpoint_url(url);
        }
        Clients {
            ec2: aws_sdk_ec2::Client::new(sdk),
            pricing: aws_sdk_pricing::Client::from_conf(pricing.build()),
            sqs: aws_sdk_sqs::Client::new(sdk),
        }
    }
}

/// The AWS cloud provider.
pub struct AwsProvider {
    clients: Clients,
    options: AwsOptions,
    kube: Option<kube::Client>,
    classes: Mutex<HashMap<String, Result<ResolvedClass, String>>>,
    templates: Mutex<HashMap<String, String>>,
    catalog: catalog::LiveCatalog,
}

impl std::fmt::Debug for AwsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProvider").field("options", &self.options).finish()
    }
}

impl AwsProvider {
    /// A provider over `clients`, serving `snapshot` until the live catalog is read; `kube`
    /// reads NodeClasses (without it, classes must be given with [`AwsProvider::resolve_class`]).
    pub fn new(clients: Clients, options: AwsOptions, kube: Option<kube::Client>, snapshot: CatalogFile) -> Self {
        AwsProvider {
            clients,
            options,
            kube,
            classes: Mutex::default(),
            templates: Mutex::default(),
            catalog: catalog::LiveCatalog::new(snapshot),
        }
    }

    /// The options.
    pub fn options(&self) -> &AwsOptions {
        &self.options
    }

    /// The SDK clients.
    pub fn clients(&self) -> &Clients {
        &self.clients
    }

    /// The kube client, if any.
    pub fn kube(&self) -> Option<&kube::Client> {
        self.kube.as_ref()
    }

    /// Resolve NodeClass `name` and remember the result for launches; returns what it resolved
    /// to, or the reason it cannot be used.
    pub async fn resolve_class(
        &self,
        name: &str,
        spec: &nodeclass::AwsNodeClass,
        tags: BTreeMap<String, String>,
    ) -> Result<ResolvedClass, resolve::ResolveError> {
        let result = resolve::resolve(
            &self.clients.ec2,
            &self.options.retry,
            name,
            spec,
            tags.clone(),
            &self.options.kubernetes_version,
        )
        .await;
        match &result {
            Ok(class) => self.cache_class(name, Ok(class.clone())),
            Err(resolve::ResolveError::Invalid(why)) => self.cache_class(name, Err(why.clone())),
            Err(resolve::ResolveError::Aws(_)) => self.keep_if_current(name, spec, &tags),
        }
        result
    }

    fn cache_class(&self, name: &str, entry: Result<ResolvedClass, String>) {
        if let Ok(mut classes) = self.classes.lock() {
            classes.insert(name.to_string(), entry);
        }
    }

    /// After a transient failure: keep the cached resolution only when it was made from the
    /// same settings; otherwise drop it, so a changed class never launches with the old ones.
    fn keep_if_current(&self, name: &str, spec: &nodeclass::AwsNodeClass, tags: &BTreeMap<String, String>) {
        let mut merged = tags.clone();
        merged.extend(spec.tags.clone());
        if let Ok(mut classes) = self.classes.lock() {
            let current = matches!(classes.get(name), Some(Ok(c)) if c.spec == *spec && c.tags == merged);
            if !current {
                classes.remove(name);
            }
        }
    }

    /// Mark NodeClass `name` unusable (its `spec.aws` cannot be read), replacing any earlier
    /// resolution: launches from it fail with `why` until it resolves again.
    pub fn invalidate_class(&self, name: &str, why: &str) {
        self.cache_class(name, Err(why.to_string()));
    }

    /// Forget every resolved NodeClass not in `names` (deleted ones).
    pub fn retain_classes(&self, names: &[String]) {
        if let Ok(mut classes) = self.classes.lock() {
            classes.retain(|name, _| names.contains(name));
        }
    }

    /// The resolved class of a launch, reading the NodeClass when it was not resolved yet.
    async fn class(&self, name: &str) -> Result<ResolvedClass, CloudError> {
        if name.is_empty() {
            return Err(CloudError::Other(
                "the NodePool has no spec.template.spec.nodeClassRef; the aws provider needs a NodeClass with spec.aws"
                    .into(),
            ));
        }
        let cached = self.classes.lock().ok().and_then(|c| c.get(name).cloned());
        match cached {
            Some(Ok(class)) => Ok(class),
            Some(Err(why)) => Err(CloudError::Other(format!("NodeClass {name} is not ready: {why}"))),
            None => nodeclasses::load_and_resolve(self, name).await,
        }
    }

    /// Refresh whatever part of the live catalog is due; failures keep the previous data.
    pub async fn refresh_catalog(&self) {
        let (types_due, prices_due) = self.catalog.due();
        if types_due {
            match catalog::read_ec2(&self.clients.ec2, &self.options.retry).await {
                Ok(view) => self.catalog.set_ec2(view),
                Err(e) => tracing::warn!(error = %e, "cannot read instance types; keeping the previous catalog"),
            }
        }
        if prices_due {
            match pricing::on_demand_prices(&self.clients.pricing, &self.options.retry, &self.options.region).await {
                Ok((prices, skipped)) => {
                    tracing::info!(prices = prices.len(), skipped, "on-demand prices read");
                    self.catalog.set_on_demand(prices);
                }
                Err(e) => tracing::warn!(error = %e, "cannot read on-demand prices; keeping the previous ones"),
            }
        }
    }

    /// Refresh the catalog every `every` (it reads only what is due), forever.
    pub async fn run_catalog_refresh(&self, every: Duration) {
        loop {
            self.refresh_catalog().await;
            tokio::time::sleep(every).await;
        }
    }

    async fn template_id(
        &self,
        class: &ResolvedClass,
        arch: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<String, AwsError> {
        let name = format!(
            "purser-{}-{}-{}",
            self.options.cluster_name,
            class.name,
            class.hash(arch)
        );
        if let Some(id) = self.templates.lock().ok().and_then(|t| t.get(&name).cloned()) {
            return Ok(id);
        }
        let data = fleet::template_data(class, arch, tags)?;
        let id = fleet::ensure_template(&self.clients.ec2, &self.options.retry, &name, data, tags).await?;
        if let Ok(mut t) = self.templates.lock() {
            t.insert(name, id.clone());
        }
        Ok(id)
    }

    async fn launch(&self, request: LaunchRequest) -> Result<Instance, CloudError> {
        let class = self.class(&request.node_class).await?;
        let (ec2, retry, cluster) = (&self.clients.ec2, &self.options.retry, &self.options.cluster_name);
        if let Some(existing) = instances::find_claim(ec2, retry, cluster, &request.node_claim).await? {
            tracing::info!(claim = %request.node_claim, provider_id = %existing.instance.provider_id, "instance already launched for this claim");
            return Ok(existing.instance);
        }
        let catalog = self.catalog.current();
        let types = fleet::candidate_types(&request, &catalog);
        let arch = arch_of(&catalog, types.first().map(String::as_str).unwrap_or_default());
        let subnets: Vec<(String, String)> = class
            .subnets_in(&request.zones)
            .into_iter()
            .map(|s| (s.id.clone(), s.zone.clone()))
            .collect();
        if subnets.is_empty() {
            return Err(CloudError::Other(format!(
                "NodeClass {}: no selected subnet is in the zones {:?} (selected: {:?})",
                class.name, request.zones, class.status.subnets
            )));
        }
        let tags = fleet::instance_tags(cluster, &request, &class);
        let template_id = self
            .template_id(&class, &arch, &fleet::class_tags(cluster, &class))
            .await?;
        let token = fleet::client_token(cluster, &request.node_claim);
        let fleet_request = FleetRequest {
            template_id: &template_id,
            instance_types: &types,
            subnets: &subnets,
            capacity_type: &request.capacity_type,
            client_token: &token,
            tags: &tags,
        };
        let id = match fleet::create_fleet(ec2, retry, &fleet_request).await {
            Ok(id) => id,
            Err(LaunchError::Capacity {
                instance_type,
                zone,
                code,
                others,
            }) => {
                tracing::warn!(claim = %request.node_claim, %instance_type, %zone, %code, ?others, "no capacity");
                return Err(CloudError::InsufficientCapacity {
                    instance_type,
                    zone,
                    capacity_type: request.capacity_type.clone(),
                    others,
                });
            }
            Err(LaunchError::Aws(e)) => return Err(e.into()),
        };
        let described = self.await_visible(&id).await?;
        if let Err(e) = instances::tag_volumes(ec2, retry, &described.volumes, &tags).await {
            tracing::warn!(claim = %request.node_claim, volumes = ?described.volumes, error = %e, "cannot tag the volumes; they keep the NodeClass's tags only");
        }
        let instance = described.instance;
        tracing::info!(claim = %request.node_claim, provider_id = %instance.provider_id, instance_type = %instance.instance_type, "launched");
        Ok(instance)
    }

    /// The new instance, once DescribeInstances shows it (EC2 is eventually consistent).
    async fn await_visible(&self, id: &str) -> Result<instances::Described, CloudError> {
        let mut last = CloudError::NotFound(id.to_string());
        for attempt in 0..10u64 {
            match self.find(id).await {
                Ok(d) => return Ok(d),
                Err(e @ CloudError::NotFound(_)) => last = e,
                Err(e) => return Err(e),
            }
            tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await;
        }
        Err(last)
    }

    async fn find(&self, id: &str) -> Result<instances::Described, CloudError> {
        let found = instances::describe(&self.clients.ec2, &self.options.retry, &[id.to_string()], &[]).await;
        match found {
            Ok(list) => list
                .into_iter()
                .find(|d| !instances::is_gone(&d.state))
                .ok_or_else(|| CloudError::NotFound(id.to_string())),
            Err(e) if e.is_not_found() => Err(CloudError::NotFound(id.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    async fn terminate(&self, provider_id: String) -> Result<(), CloudError> {
        let Some(id) = instances::instance_id(&provider_id) else {
            return Err(CloudError::NotFound(provider_id));
        };
        let found = match self.find(id).await {
            Ok(found) => found,
            Err(CloudError::NotFound(_)) => return Err(CloudError::NotFound(provider_id)),
            Err(e) => return Err(e),
        };
        if found.cluster.as_deref() != Some(self.options.cluster_name.as_str()) {
            return Err(CloudError::Other(format!(
                "refusing to terminate {id}: it is not tagged {}={}",
                fleet::tags::CLUSTER,
                self.options.cluster_name
            )));
        }
        instances::terminate(&self.clients.ec2, &self.options.retry, id).await?;
        tracing::info!(%provider_id, "terminated");
        Ok(())
    }
}

fn arch_of(catalog: &CatalogFile, instance_type: &str) -> String {
    catalog
        .instance_types
        .iter()
        .find(|t| t.name == instance_type)
        .and_then(|t| t.labels.get("kubernetes.io/arch").cloned())
        .unwrap_or_else(|| "amd64".into())
}

impl CloudProvider for AwsProvider {
    fn name(&self) -> &str {
        "aws"
    }

    fn create(&self, request: LaunchRequest) -> BoxFuture<'_, Result<Instance, CloudError>> {
        self.launch(request).boxed()
    }

    fn get(&self, provider_id: String) -> BoxFuture<'_, Result<Instance, CloudError>> {
        async move {
            let id = instances::instance_id(&provider_id).ok_or_else(|| CloudError::NotFound(provider_id.clone()))?;
            match self.find(id).await {
                Ok(found) => Ok(found.instance),
                Err(CloudError::NotFound(_)) => Err(CloudError::NotFound(provider_id)),
                Err(e) => Err(e),
            }
        }
        .boxed()
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Instance>, CloudError>> {
        async move {
            let filters = instances::cluster_filters(&self.options.cluster_name);
            let found = instances::describe(&self.clients.ec2, &self.options.retry, &[], &filters).await?;
            Ok(found.into_iter().map(|d| d.instance).collect())
        }
        .boxed()
    }

    fn delete(&self, provider_id: String) -> BoxFuture<'_, Result<(), CloudError>> {
        self.terminate(provider_id).boxed()
    }

    fn instance_types(&self) -> BoxFuture<'_, Result<CatalogFile, CloudError>> {
        let catalog = self.catalog.current();
        async move { Ok(catalog) }.boxed()
    }

    fn interruptions(&self) -> BoxFuture<'_, Result<Vec<InterruptionEvent>, CloudError>> {
        async move {
            let Some(url) = &self.options.interruption_queue_url else {
                return futures::future::pending().await;
            };
            let wait = self.options.queue_wait_seconds;
            Ok(interruption::poll(&self.clients.sqs, &self.options.retry, url, wait).await?)
        }
        .boxed()
    }

    fn acknowledge(&self, events: Vec<InterruptionEvent>) -> BoxFuture<'_, Result<(), CloudError>> {
        async move {
            let Some(url) = &self.options.interruption_queue_url else {
                return Ok(());
            };
            Ok(interruption::acknowledge(&self.clients.sqs, &self.options.retry, url, &events).await?)
        }
        .boxed()
    }
}
