//! The controller with the AWS provider against moto's EC2 and SQS and the in-process API
//! server: capacity errors re-plan, spot interruption notices replace and drain nodes, leaked
//! instances are collected. moto creates no Nodes, so a small fake kubelet here registers a
//! Ready Node for every launched instance.

#[path = "../controller/harness.rs"]
#[allow(dead_code, reason = "the harness serves several test binaries")]
mod harness;
#[path = "../controller/scheduler.rs"]
#[allow(dead_code, reason = "the harness serves several test binaries")]
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceType};
use harness::{Cluster, Running, fast_settings, nodepool};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams, PostParams};
use purser::api::{NodeClaim, NodeClass, NodePool};
use purser::catalog::Catalog;
use purser_aws::testing::{self, CapacityInjector, Moto};
use purser_aws::{AwsOptions, AwsProvider};
use purser_cloudprovider::{CloudProvider, LaunchRequest};
use serde_json::{Value, json};

const CLUSTER: &str = "moto-cluster";
const DISCOVERY: &str = "purser.dev/discovery";

/// Real EC2 type names (moto launches them), two zones, on-demand and spot.
fn catalog() -> Catalog {
    catalog_of(&[
        ("c5.large", 2, 4, 0.085),
        ("m5.large", 2, 8, 0.096),
        ("m5.xlarge", 4, 16, 0.192),
    ])
}

/// A catalog of (name, vCPUs, GiB, on-demand USD/h) in two zones, on-demand and spot.
fn catalog_of(shapes: &[(&str, u32, u32, f64)]) -> Catalog {
    let mut types = vec![];
    for &(name, cpu, gib, price) in shapes {
        let offerings: Vec<Value> = ["us-east-1a", "us-east-1b"]
            .iter()
            .flat_map(|z| {
                [
                    json!({"zone": z, "capacityType": "on-demand", "price": price}),
                    json!({"zone": z, "capacityType": "spot", "price": price * 0.4}),
                ]
            })
            .collect();
        types.push(json!({
            "name": name,
            "capacity": {"cpu": cpu.to_string(), "memory": format!("{gib}Gi"), "pods": "29"},
            "labels": {"kubernetes.io/arch": "amd64", "kubernetes.io/os": "linux",
                "purser.dev/instance-cpu": cpu.to_string(), "purser.dev/instance-memory": (gib * 1024).to_string()},
            "offerings": offerings,
        }));
    }
    let file = json!({"region": "us-east-1", "reservation": "none", "instanceTypes": types});
    Catalog::from_spec(serde_json::from_value(file).expect("catalog file")).expect("catalog")
}

struct AwsCluster {
    cluster: Cluster,
    provider: Arc<AwsProvider>,
    injector: CapacityInjector,
    ec2: aws_sdk_ec2::Client,
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _moto: Moto,
}

impl Drop for AwsCluster {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The API server, moto, a NodeClass `default` over the tagged VPC, the AWS provider (with
/// its NodeClass loop) and the fake kubelet.
async fn start() -> AwsCluster {
    start_with(catalog()).await
}

/// [`start`] with another catalog.
async fn start_with(catalog: Catalog) -> AwsCluster {
    let mut cluster = Cluster::start(Duration::from_millis(300)).await;
    cluster.catalog = catalog;
    let moto = Moto::start();
    let sdk = moto.sdk_config().await;
    let injector = CapacityInjector::default();
    let clients = testing::clients(&sdk, &injector, None);
    let image = testing::prepare_vpc(&clients.ec2, DISCOVERY, CLUSTER).await;
    let sqs = clients.sqs.clone();
    let queue = sqs
        .create_queue()
        .queue_name("interruptions")
        .send()
        .await
        .expect("queue");
    let queue_url = queue.queue_url().expect("url").to_string();
    let options = AwsOptions {
        cluster_name: CLUSTER.into(),
        interruption_queue_url: Some(queue_url.clone()),
        queue_wait_seconds: 1,
        retry: purser_aws::errors::RetryPolicy {
            min_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
            max_retries: 3,
        },
        ..AwsOptions::default()
    };
    let ec2 = clients.ec2.clone();
    let provider = Arc::new(AwsProvider::new(
        clients,
        options,
        Some(cluster.client.clone()),
        cluster.catalog.to_spec(),
    ));
    let selector = json!([{"tags": {DISCOVERY: CLUSTER}}]);
    cluster
        .apply::<NodeClass>(json!({
            "apiVersion": "purser.dev/v1", "kind": "NodeClass", "metadata": {"name": "default"},
            "spec": {"tags": {"team": "ml"}, "aws": {
                "amiSelectorTerms": [{"id": image}], "subnetSelectorTerms": selector,
                "securityGroupSelectorTerms": selector, "instanceProfile": "nodes"}}
        }))
        .await;
    let classes = provider.clone();
    let mut tasks = vec![tokio::spawn(async move {
        purser_aws::nodeclasses::run(&classes, Duration::from_millis(500)).await
    })];
    tasks.push(tokio::spawn(kubelet(cluster.client.clone())));
    AwsCluster {
        cluster,
        provider,
        injector,
        ec2,
        sqs,
        queue_url,
        tasks,
        _moto: moto,
    }
}

impl AwsCluster {
    fn controller(&self, disruption: bool) -> Running {
        let mut settings = fast_settings("aws");
        if disruption {
            settings.disruption_interval = Duration::from_millis(500);
        }
        self.cluster.controller_with(settings, self.provider.clone())
    }

    async fn pool(&self, capacity_type: &str) {
        let extra = json!({"spec": {"template": {"spec": {
            "nodeClassRef": {"group": "purser.dev", "kind": "NodeClass", "name": "default"},
            "requirements": [{"key": "purser.dev/capacity-type", "operator": "In", "values": [capacity_type]}]}}}});
        self.cluster.apply::<NodePool>(nodepool("general", extra)).await;
    }

    async fn state(&self, id: &str) -> String {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(id)
            .send()
            .await
            .expect("describe");
        out.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default()
    }

    async fn launched(&self) -> Vec<(String, String, String)> {
        self.cluster
            .claims()
            .await
            .into_iter()
            .filter_map(|c| {
                let s = c.status?;
                Some((c.metadata.name?, s.provider_id?, s.instance_type.unwrap_or_default()))
            })
            .collect()
    }
}

/// Plays the kubelet moto lacks: a Ready Node for every claim with an `aws://` provider ID.
async fn kubelet(client: kube::Client) {
    let claims: Api<NodeClaim> = Api::all(client.clone());
    let nodes: Api<Node> = Api::all(client);
    loop {
        if let (Ok(claims), Ok(existing)) = (
            claims.list(&Default::default()).await,
            nodes.list(&Default::default()).await,
        ) {
            for claim in claims.items {
                let _ = register(&nodes, &existing.items, &claim).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn register(nodes: &Api<Node>, existing: &[Node], claim: &NodeClaim) -> Result<(), kube::Error> {
    let Some(status) = &claim.status else { return Ok(()) };
    let Some(provider_id) = status.provider_id.clone().filter(|p| p.starts_with("aws://")) else {
        return Ok(());
    };
    if claim.metadata.deletion_timestamp.is_some()
        || existing
            .iter()
            .any(|n| n.spec.as_ref().and_then(|s| s.provider_id.as_ref()) == Some(&provider_id))
    {
        return Ok(());
    }
    let name = provider_id.rsplit('/').next().unwrap_or_default().to_string();
    let quantities = serde_json::to_value(&status.allocatable).unwrap_or(Value::Null);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "spec": {"providerID": provider_id, "taints": [{"key": "purser.dev/unregistered", "effect": "NoExecute"}]},
        "status": {"capacity": quantities, "allocatable": quantities,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "moto instance",
                "lastHeartbeatTime": now, "lastTransitionTime": now}]}
    }))
    .expect("a node");
    nodes.create(&PostParams::default(), &node).await?;
    let status = json!({"status": node.status});
    nodes
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_insufficient_capacity_makes_the_next_plan_pick_another_offering() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let aws = start().await;
        aws.injector.poison("c5.large");
        aws.pool("on-demand").await;
        let running = aws.controller(false);
        let shapes: Vec<(String, &str, &str)> = (0..2).map(|i| (format!("web-{i}"), "500m", "1Gi")).collect();
        aws.cluster.pods("default", &shapes).await;
        aws.cluster
            .until("every pod is bound", Duration::from_secs(90), || {
                aws.cluster.all_bound()
            })
            .await;
        assert!(
            aws.injector.injected() >= 1,
            "the plan's first choice, c5.large, was tried and had no capacity"
        );
        let launched = aws.launched().await;
        assert!(!launched.is_empty());
        assert!(launched.iter().all(|(_, _, t)| t != "c5.large"), "{launched:?}");
        running.stop().await;
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spot_interruption_warning_launches_a_replacement_and_drains_the_node() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let mut aws = start().await;
        aws.cluster.with_replicasets();
        aws.pool("spot").await;
        let running = aws.controller(true);
        aws.cluster.pods("default", &[("api-0".to_string(), "500m", "1Gi")]).await;
        aws.cluster.until("the pod is bound", Duration::from_secs(60), || aws.cluster.all_bound()).await;
        let first = aws.launched().await;
        assert_eq!(first.len(), 1, "{first:?}");
        let (old_claim, old_provider_id, _) = first[0].clone();
        let old_id = old_provider_id.rsplit('/').next().expect("id").to_string();
        let warning = json!({"version": "0", "source": "aws.ec2", "detail-type": "EC2 Spot Instance Interruption Warning",
            "detail": {"instance-id": old_id, "instance-action": "terminate"}});
        aws.sqs.send_message().queue_url(&aws.queue_url).message_body(warning.to_string()).send().await.expect("send");
        aws.cluster
            .until("a replacement is launched and the interrupted node is gone", Duration::from_secs(90), || async {
                let launched = aws.launched().await;
                let nodes = aws.cluster.nodes().await;
                launched.iter().any(|(c, p, _)| c != &old_claim && p != &old_provider_id)
                    && !nodes.iter().any(|n| n.metadata.name.as_deref() == Some(old_id.as_str()))
            })
            .await;
        aws.cluster.until("the pod runs again", Duration::from_secs(60), || aws.cluster.all_bound()).await;
        let pods = aws.cluster.all_pods().await;
        assert!(pods.iter().all(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) != Some(old_id.as_str())));
        assert_eq!(aws.state(&old_id).await, "terminated", "the interrupted instance was terminated");
        running.stop().await;
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tagged_instance_with_no_claim_is_terminated_after_the_grace_period_and_an_untagged_one_never() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let aws = start().await;
        aws.cluster
            .until("the NodeClass is resolved", Duration::from_secs(30), || async {
                let classes: Api<NodeClass> = Api::all(aws.cluster.client.clone());
                classes
                    .get("default")
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .and_then(|s| s.aws)
                    .is_some()
            })
            .await;
        let leaked = aws
            .provider
            .create(LaunchRequest {
                node_claim: "claim-that-never-was".into(),
                node_pool: "general".into(),
                node_class: "default".into(),
                instance_types: vec!["m5.large".into()],
                capacity_type: "on-demand".into(),
                ..LaunchRequest::default()
            })
            .await
            .expect("launch");
        let leaked_id = leaked.provider_id.rsplit('/').next().expect("id").to_string();
        let image = aws.ec2.describe_images().send().await.expect("images").images()[0]
            .image_id()
            .expect("id")
            .to_string();
        let foreign = aws
            .ec2
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::from("t3.micro"))
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("run");
        let foreign_id = foreign.instances()[0].instance_id().expect("id").to_string();
        let running = aws.controller(false);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(
            aws.state(&leaked_id).await,
            "running",
            "not before the grace period (2 s)"
        );
        aws.cluster
            .until("the leaked instance is terminated", Duration::from_secs(30), || async {
                aws.state(&leaked_id).await == "terminated"
            })
            .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            aws.state(&foreign_id).await,
            "running",
            "an instance Purser did not tag is never touched"
        );
        let tagged = aws
            .ec2
            .describe_instances()
            .filters(Filter::builder().name("tag:purser.dev/cluster").values(CLUSTER).build())
            .send()
            .await
            .expect("describe");
        assert!(
            tagged
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .all(|i| i.instance_id() != Some(foreign_id.as_str()))
        );
        running.stop().await;
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_class_that_resolves_to_nothing_is_not_ready_and_says_why() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let aws = start().await;
        let nothing = json!([{"tags": {DISCOVERY: "no-such-cluster"}}]);
        aws.cluster
            .apply::<NodeClass>(json!({
                "apiVersion": "purser.dev/v1", "kind": "NodeClass", "metadata": {"name": "broken"},
                "spec": {"aws": {"amiSelectorTerms": [{"alias": "windows@latest"}], "subnetSelectorTerms": nothing,
                    "securityGroupSelectorTerms": nothing, "role": "nodes"}}
            }))
            .await;
        let classes: Api<NodeClass> = Api::all(aws.cluster.client.clone());
        let message = || async {
            let class = classes.get("broken").await.ok()?;
            let ready = class.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
            (!ready.is_true()).then_some(ready.message)
        };
        // One pass resolves both classes in turn: `broken` fails before `default` is resolved.
        let default_ready = || async {
            let class = classes.get("default").await.ok();
            class
                .and_then(|c| c.status)
                .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.is_true()))
        };
        aws.cluster
            .until(
                "the NodeClass is not Ready and the default one is",
                Duration::from_secs(30),
                || async { message().await.is_some() && default_ready().await },
            )
            .await;
        let text = message().await.expect("a message");
        assert!(
            text.contains("NodeClass broken: spec.aws.amiSelectorTerms[0].alias: unknown alias family \"windows\""),
            "{text}"
        );
        let good = classes.get("default").await.expect("default").status.expect("status");
        let aws_status = good.aws.expect("status.aws");
        assert_eq!(aws_status.subnets.len(), 2, "{aws_status:?}");
        assert_eq!(aws_status.security_groups.len(), 1);
        assert_eq!(aws_status.amis.len(), 1);
        assert!(good.conditions.iter().any(|c| c.type_ == "Ready" && c.is_true()));
    })
    .await
    .expect("in time");
}

/// Plays EC2 choosing an alternative: launches the request's second instance type first.
struct AlternativeFirst(Arc<AwsProvider>);

impl CloudProvider for AlternativeFirst {
    fn name(&self) -> &str {
        "alternative-first"
    }
    fn create(
        &self,
        mut request: LaunchRequest,
    ) -> futures::future::BoxFuture<'_, Result<purser_cloudprovider::Instance, purser_cloudprovider::CloudError>> {
        if request.instance_types.len() > 1 {
            request.instance_types.rotate_left(1);
        }
        self.0.create(request)
    }
    fn get(
        &self,
        id: String,
    ) -> futures::future::BoxFuture<'_, Result<purser_cloudprovider::Instance, purser_cloudprovider::CloudError>> {
        self.0.get(id)
    }
    fn list(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<Vec<purser_cloudprovider::Instance>, purser_cloudprovider::CloudError>>
    {
        self.0.list()
    }
    fn delete(&self, id: String) -> futures::future::BoxFuture<'_, Result<(), purser_cloudprovider::CloudError>> {
        self.0.delete(id)
    }
    fn instance_types(
        &self,
    ) -> futures::future::BoxFuture<'_, Result<purser_cloudprovider::CatalogFile, purser_cloudprovider::CloudError>>
    {
        self.0.instance_types()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_ec2_launches_an_alternative_the_claim_and_node_are_labelled_with_it() {
    tokio::time::timeout(Duration::from_secs(120), async {
        let aws = start_with(catalog_of(&[
            ("c5.large", 2, 4, 0.085),
            ("c5a.large", 2, 4, 0.085),
            ("c5.xlarge", 4, 8, 0.17),
            ("m5.large", 2, 8, 0.096),
        ]))
        .await;
        aws.pool("on-demand").await;
        let running = aws.cluster.controller_with(
            harness::fast_settings("aws"),
            Arc::new(AlternativeFirst(aws.provider.clone())),
        );
        aws.cluster
            .pods("default", &[("web-0".to_string(), "500m", "1Gi")])
            .await;
        aws.cluster
            .until("the pod is bound", Duration::from_secs(90), || aws.cluster.all_bound())
            .await;
        let claims = aws.cluster.claims().await;
        assert_eq!(claims.len(), 1);
        let claim = &claims[0];
        let types = claim
            .spec
            .requirements
            .iter()
            .find(|r| r.key == "node.kubernetes.io/instance-type")
            .map(|r| r.values.clone())
            .unwrap_or_default();
        assert_eq!(
            types.len(),
            2,
            "the planned type and its one equal alternative: {types:?}"
        );
        let launched = claim
            .status
            .as_ref()
            .and_then(|s| s.instance_type.clone())
            .unwrap_or_default();
        assert_eq!(launched, types[1], "EC2 launched the alternative");
        let label = |labels: &Option<std::collections::BTreeMap<String, String>>| {
            labels
                .as_ref()
                .and_then(|l| l.get("node.kubernetes.io/instance-type").cloned())
        };
        assert_eq!(label(&claim.metadata.labels).as_deref(), Some(launched.as_str()));
        let node_name = claim
            .status
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .expect("registered");
        let node = aws
            .cluster
            .nodes()
            .await
            .into_iter()
            .find(|n| n.metadata.name.as_deref() == Some(node_name.as_str()))
            .expect("the node");
        assert_eq!(
            label(&node.metadata.labels).as_deref(),
            Some(launched.as_str()),
            "the Node says what runs"
        );
        running.stop().await;
    })
    .await
    .expect("in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_image_and_a_deleted_node_class_stop_launches() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let aws = start().await;
        let classes: Api<NodeClass> = Api::all(aws.cluster.client.clone());
        let ready = |name: &'static str| {
            let classes = classes.clone();
            async move {
                let class = classes.get(name).await.ok()?;
                let c = class.status?.conditions.into_iter().find(|c| c.type_ == "Ready")?;
                Some((c.is_true(), c.message))
            }
        };
        aws.cluster
            .until("default is Ready", Duration::from_secs(30), || async {
                ready("default").await.is_some_and(|(ok, _)| ok)
            })
            .await;
        let selector = json!([{"tags": {DISCOVERY: CLUSTER}}]);
        aws.cluster
            .apply::<NodeClass>(json!({
                "apiVersion": "purser.dev/v1", "kind": "NodeClass", "metadata": {"name": "noimage"},
                "spec": {"aws": {"amiSelectorTerms": [{"id": "ami-12345678"}], "subnetSelectorTerms": selector,
                    "securityGroupSelectorTerms": selector, "instanceProfile": "nodes"}}
            }))
            .await;
        aws.cluster
            .until("noimage is not Ready", Duration::from_secs(30), || async {
                ready("noimage").await.is_some_and(|(ok, _)| !ok)
            })
            .await;
        let (_, message) = ready("noimage").await.expect("a condition");
        assert!(
            message.contains("NodeClass noimage: spec.aws.amiSelectorTerms[0].id: image ami-12345678 does not exist"),
            "{message}"
        );
        let launch = |class: &str, claim: &str| LaunchRequest {
            node_claim: claim.into(),
            node_pool: "general".into(),
            node_class: class.into(),
            instance_types: vec!["m5.large".into()],
            capacity_type: "on-demand".into(),
            zones: vec!["us-east-1a".into()],
            ..LaunchRequest::default()
        };
        let refused = aws.provider.create(launch("noimage", "claim-noimage")).await;
        assert!(
            format!("{refused:?}").contains("NodeClass noimage is not ready"),
            "{refused:?}"
        );

        classes.delete("default", &Default::default()).await.expect("delete");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let gone = aws.provider.create(launch("default", "claim-gone")).await;
        assert!(
            format!("{gone:?}").contains("NodeClass default does not exist"),
            "{gone:?}"
        );
        assert!(aws.provider.list().await.expect("list").is_empty(), "nothing launched");
    })
    .await
    .expect("in time");
}
