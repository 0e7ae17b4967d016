//! The AWS provider against moto's EC2 and SQS on 127.0.0.1 (`moto_server` must be installed:
//! the tests fail, not skip, without it).

mod common;

use std::time::Duration;

use aws_sdk_ec2::types::{Filter, InstanceType};
use common::{CLUSTER, provider, request};
use purser_aws::testing::{CapacityInjector, Moto};
use purser_cloudprovider::{CloudError, CloudProvider, InterruptionKind};

/// Every test ends within this time.
const LIMIT: Duration = Duration::from_secs(120);

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(LIMIT, test)
        .await
        .expect("the test finished in time");
}

async fn live_instances(ec2: &aws_sdk_ec2::Client, claim: &str) -> usize {
    let out = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag:purser.dev/nodeclaim").values(claim).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .expect("describe");
    out.reservations().iter().map(|r| r.instances().len()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_and_on_demand_launch_describe_and_terminate_through_create_fleet_with_one_reused_template() {
    bounded(async {
        let moto = Moto::start();
        let injector = CapacityInjector::default();
        let cloud = provider(&moto, &injector).await;
        let ec2 = cloud.clients().ec2.clone();

        let on_demand = cloud
            .create(request("claim-od", "m5.large", "on-demand"))
            .await
            .expect("on-demand launch");
        assert!(
            on_demand.provider_id.starts_with("aws:///us-east-1a/i-"),
            "{}",
            on_demand.provider_id
        );
        assert_eq!(
            (
                on_demand.instance_type.as_str(),
                on_demand.zone.as_str(),
                on_demand.capacity_type.as_str()
            ),
            ("m5.large", "us-east-1a", "on-demand")
        );
        assert_eq!(on_demand.node_claim, "claim-od");
        let spot = cloud
            .create(request("claim-spot", "c5.large", "spot"))
            .await
            .expect("spot launch");
        assert_eq!(
            (spot.instance_type.as_str(), spot.capacity_type.as_str()),
            ("c5.large", "spot")
        );

        assert_eq!(cloud.get(on_demand.provider_id.clone()).await.expect("get"), on_demand);
        let mut listed: Vec<String> = cloud
            .list()
            .await
            .expect("list")
            .into_iter()
            .map(|i| i.node_claim)
            .collect();
        listed.sort();
        assert_eq!(listed, ["claim-od", "claim-spot"]);

        let templates = ec2.describe_launch_templates().send().await.expect("templates");
        assert_eq!(
            templates.launch_templates().len(),
            1,
            "one template per NodeClass hash, reused"
        );
        let id = on_demand.provider_id.rsplit('/').next().expect("id").to_string();
        let described = ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .expect("describe");
        let instance = &described.reservations()[0].instances()[0];
        let tag = |k: &str| {
            instance
                .tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        assert_eq!(tag("purser.dev/cluster").as_deref(), Some(CLUSTER));
        assert_eq!(tag("purser.dev/nodepool").as_deref(), Some("general"));
        assert_eq!(tag("kubernetes.io/cluster/test-cluster").as_deref(), Some("owned"));
        assert_eq!(tag("team").as_deref(), Some("ml"), "NodeClass tags reach the instance");

        for i in [&on_demand, &spot] {
            cloud.delete(i.provider_id.clone()).await.expect("terminate");
            assert_eq!(
                cloud.get(i.provider_id.clone()).await,
                Err(CloudError::NotFound(i.provider_id.clone()))
            );
        }
        assert!(cloud.list().await.expect("list").is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_launch_for_the_same_claim_sends_the_same_client_token_and_launches_once() {
    bounded(async {
        let moto = Moto::start();
        let injector = CapacityInjector::default();
        let cloud = provider(&moto, &injector).await;
        let retries = common::fast_retry().max_retries;
        injector.drop_fleet_requests(retries + 1);
        let dropped = cloud.create(request("claim-a", "m5.large", "on-demand")).await;
        assert!(dropped.is_err(), "every CreateFleet attempt was dropped: {dropped:?}");
        assert_eq!(live_instances(&cloud.clients().ec2, "claim-a").await, 0);

        injector.lose_fleet_responses(1);
        let first = cloud
            .create(request("claim-a", "m5.large", "on-demand"))
            .await
            .expect("the launch survives a lost CreateFleet answer");
        let again = cloud
            .create(request("claim-a", "m5.large", "on-demand"))
            .await
            .expect("retry");
        assert_eq!(first.provider_id, again.provider_id);

        let tokens = injector.fleet_tokens();
        assert_eq!(
            tokens.len(),
            retries + 3,
            "dropped attempts, the lost answer and its retry reached CreateFleet; the last launch found the instance by tag: {tokens:?}"
        );
        let expected = purser_aws::fleet::client_token(CLUSTER, "claim-a");
        assert!(tokens.iter().all(|t| *t == expected), "{tokens:?} vs {expected}");
        assert_eq!(live_instances(&cloud.clients().ec2, "claim-a").await, 1);

        cloud
            .create(request("claim-b", "m5.large", "on-demand"))
            .await
            .expect("another claim");
        assert_ne!(injector.fleet_tokens().last(), Some(&expected), "another claim, another token");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_insufficient_capacity_error_names_the_offering_and_launches_nothing() {
    bounded(async {
        let moto = Moto::start();
        let injector = CapacityInjector::default();
        let cloud = provider(&moto, &injector).await;
        injector.poison("m5.large");
        let failed = cloud.create(request("claim-x", "m5.large", "spot")).await;
        assert_eq!(
            failed,
            Err(CloudError::InsufficientCapacity {
                instance_type: "m5.large".into(),
                zone: "us-east-1a".into(),
                capacity_type: "spot".into(),
                others: vec![],
            })
        );
        assert_eq!(injector.injected(), 1);
        assert_eq!(live_instances(&cloud.clients().ec2, "claim-x").await, 0);
        let other = cloud
            .create(request("claim-y", "m5.xlarge", "spot"))
            .await
            .expect("another type launches");
        assert_eq!(other.instance_type, "m5.xlarge");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untagged_instance_is_never_listed_nor_terminated() {
    bounded(async {
        let moto = Moto::start();
        let cloud = provider(&moto, &CapacityInjector::default()).await;
        let ec2 = cloud.clients().ec2.clone();
        let image = ec2.describe_images().send().await.expect("images").images()[0]
            .image_id()
            .expect("id")
            .to_string();
        let run = ec2
            .run_instances()
            .image_id(image)
            .instance_type(InstanceType::from("t3.micro"))
            .min_count(1)
            .max_count(1)
            .send()
            .await
            .expect("run");
        let id = run.instances()[0].instance_id().expect("id").to_string();
        assert!(
            cloud.list().await.expect("list").is_empty(),
            "only instances tagged for the cluster are listed"
        );
        let refused = cloud.delete(format!("aws:///us-east-1a/{id}")).await;
        assert!(
            matches!(&refused, Err(CloudError::Other(m)) if m.contains("refusing to terminate")),
            "{refused:?}"
        );
        let state = ec2
            .describe_instances()
            .instance_ids(&id)
            .send()
            .await
            .expect("describe");
        let name = state.reservations()[0].instances()[0]
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string());
        assert_eq!(name.as_deref(), Some("running"));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_class_whose_selectors_match_nothing_is_not_ready_and_says_why() {
    bounded(async {
        let moto = Moto::start();
        let cloud = provider(&moto, &CapacityInjector::default()).await;
        let mut spec = common::node_class("ami-00000000");
        spec.subnet_selector_terms[0].tags = [("purser.dev/discovery".to_string(), "nobody".to_string())].into();
        let err = cloud
            .resolve_class("empty", &spec, Default::default())
            .await
            .expect_err("nothing matches");
        assert_eq!(
            err.to_string(),
            "NodeClass empty: spec.aws.subnetSelectorTerms match no subnet"
        );
        let launch = cloud
            .create(purser_cloudprovider::LaunchRequest {
                node_class: "empty".into(),
                ..request("claim-e", "m5.large", "on-demand")
            })
            .await;
        assert!(
            matches!(&launch, Err(CloudError::Other(m)) if m.contains("NodeClass empty is not ready")),
            "{launch:?}"
        );
        assert_eq!(
            live_instances(&cloud.clients().ec2, "claim-e").await,
            0,
            "no launch with half-resolved settings"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interruption_notices_are_deleted_once_acknowledged_and_bad_messages_at_once() {
    bounded(async {
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        let sqs = aws_sdk_sqs::Client::new(&sdk);
        let queue = sqs
            .create_queue()
            .queue_name("purser-interruptions")
            .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "1")
            .send()
            .await
            .expect("queue");
        let url = queue.queue_url().expect("url").to_string();
        for body in [
            r#"{"version":"0","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","detail":{"instance-id":"i-0123","instance-action":"terminate"}}"#,
            "not json at all",
            r#"{"source":"aws.s3","detail-type":"Object Created","detail":{}}"#,
        ] {
            sqs.send_message().queue_url(&url).message_body(body).send().await.expect("send");
        }
        let options = purser_aws::AwsOptions {
            cluster_name: CLUSTER.into(),
            interruption_queue_url: Some(url.clone()),
            retry: common::fast_retry(),
            queue_wait_seconds: 1,
            ..Default::default()
        };
        let cloud = purser_aws::AwsProvider::new(purser_aws::Clients::new(&sdk, None), options, None, common::snapshot());
        let spot_notices = |events: &[purser_cloudprovider::InterruptionEvent]| {
            events
                .iter()
                .filter(|e| e.instance_id == "i-0123" && e.kind == InterruptionKind::SpotInterruption)
                .count()
        };
        let mut first = vec![];
        for _ in 0..5 {
            first.extend(cloud.interruptions().await.expect("poll"));
            if !first.is_empty() {
                break;
            }
        }
        assert_eq!(spot_notices(&first), 1, "{first:?}");
        assert!(first[0].receipt.is_some(), "the notice carries its message's receipt");

        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut again = vec![];
        for _ in 0..5 {
            again.extend(cloud.interruptions().await.expect("poll"));
            if !again.is_empty() {
                break;
            }
        }
        assert_eq!(
            spot_notices(&again),
            1,
            "a notice not acknowledged is delivered again; the bad messages are not: {again:?}"
        );
        cloud.acknowledge(again).await.expect("acknowledge");

        tokio::time::sleep(Duration::from_millis(1500)).await;
        let rest = sqs.receive_message().queue_url(&url).wait_time_seconds(1).send().await.expect("receive");
        assert!(rest.messages().is_empty(), "every message, good or bad, was deleted: {rest:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_class_that_no_longer_resolves_cannot_launch_with_its_old_settings() {
    bounded(async {
        let moto = Moto::start();
        let cloud = provider(&moto, &CapacityInjector::default()).await;
        let not_ready = |launch: &Result<purser_cloudprovider::Instance, CloudError>, what: &str| {
            matches!(launch, Err(CloudError::Other(m)) if m.contains(what))
        };

        let err = cloud
            .resolve_class("default", &common::node_class("ami-12345678"), Default::default())
            .await
            .expect_err("an unknown image is not transient");
        assert!(
            err.to_string()
                .starts_with("NodeClass default: spec.aws.amiSelectorTerms[0].id: image ami-12345678 does not exist"),
            "{err}"
        );
        let launch = cloud.create(request("claim-ami", "m5.large", "on-demand")).await;
        assert!(not_ready(&launch, "NodeClass default is not ready"), "{launch:?}");

        let image = common::prepare_vpc(&cloud.clients().ec2).await;
        cloud
            .resolve_class("default", &common::node_class(&image), Default::default())
            .await
            .expect("resolves again");
        cloud.invalidate_class("default", "NodeClass default: spec.aws.subnetSelectorTerms: invalid type");
        let launch = cloud.create(request("claim-parse", "m5.large", "on-demand")).await;
        assert!(
            not_ready(&launch, "spec.aws.subnetSelectorTerms: invalid type"),
            "{launch:?}"
        );

        cloud
            .resolve_class("default", &common::node_class(&image), Default::default())
            .await
            .expect("resolves again");
        cloud.retain_classes(&[]);
        let launch = cloud.create(request("claim-gone", "m5.large", "on-demand")).await;
        assert!(not_ready(&launch, "NodeClass default was not resolved"), "{launch:?}");
        for claim in ["claim-ami", "claim-parse", "claim-gone"] {
            assert_eq!(live_instances(&cloud.clients().ec2, claim).await, 0, "{claim}");
        }
    })
    .await;
}

/// The tags of the volumes attached to the instance of `provider_id`.
async fn volume_tags(ec2: &aws_sdk_ec2::Client, provider_id: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let id = provider_id.rsplit('/').next().expect("id");
    let out = ec2
        .describe_volumes()
        .filters(Filter::builder().name("attachment.instance-id").values(id).build())
        .send()
        .await
        .expect("volumes");
    out.volumes()
        .iter()
        .map(|v| {
            v.tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
                .collect()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volumes_carry_the_cluster_nodepool_and_nodeclaim_of_their_own_launch() {
    bounded(async {
        let moto = Moto::start();
        let cloud = provider(&moto, &CapacityInjector::default()).await;
        let ec2 = cloud.clients().ec2.clone();
        let general = cloud
            .create(request("claim-g", "m5.large", "on-demand"))
            .await
            .expect("launch");
        let batch = cloud
            .create(purser_cloudprovider::LaunchRequest {
                node_pool: "batch".into(),
                ..request("claim-b", "m5.large", "spot")
            })
            .await
            .expect("launch from the same template");
        let templates = ec2.describe_launch_templates().send().await.expect("templates");
        assert_eq!(templates.launch_templates().len(), 1, "one shared template");
        for (instance, claim, pool, capacity) in [
            (&general, "claim-g", "general", "on-demand"),
            (&batch, "claim-b", "batch", "spot"),
        ] {
            let volumes = volume_tags(&ec2, &instance.provider_id).await;
            assert!(!volumes.is_empty(), "{claim}: the instance has volumes");
            for tags in volumes {
                let tag = |k: &str| tags.get(k).map(String::as_str);
                assert_eq!(tag("purser.dev/cluster"), Some(CLUSTER), "{tags:?}");
                assert_eq!(tag("purser.dev/nodeclaim"), Some(claim), "{tags:?}");
                assert_eq!(tag("purser.dev/nodepool"), Some(pool), "{tags:?}");
                assert_eq!(tag("purser.dev/capacity-type"), Some(capacity), "{tags:?}");
                assert_eq!(tag("team"), Some("ml"), "{tags:?}");
            }
        }
    })
    .await;
}
