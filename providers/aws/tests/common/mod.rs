//! Shared set-up of the moto tests: a tagged VPC, a NodeClass and a small catalog.
#![allow(dead_code, reason = "each test binary uses part of the set-up")]

use std::collections::BTreeMap;
use std::time::Duration;

use purser_aws::errors::RetryPolicy;
use purser_aws::nodeclass::{AmiSelectorTerm, AwsNodeClass, SelectorTerm};
use purser_aws::testing::{self, CapacityInjector, Moto};
use purser_aws::{AwsOptions, AwsProvider};
use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, LaunchRequest, OfferingSpec};

/// The tag the test subnets and security group carry.
pub const DISCOVERY: &str = "purser.dev/discovery";
/// The cluster name of the tests.
pub const CLUSTER: &str = "test-cluster";

/// Retries fast enough for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
        max_retries: 3,
    }
}

/// A small catalog of real EC2 types in two zones.
pub fn snapshot() -> CatalogFile {
    let spec = |name: &str, cpu: u32, mem: u32, od: f64| InstanceTypeSpec {
        name: name.into(),
        capacity: BTreeMap::from([
            ("cpu".to_string(), cpu.to_string()),
            ("memory".to_string(), format!("{mem}Mi")),
            ("pods".to_string(), "29".to_string()),
        ]),
        labels: BTreeMap::from([
            ("kubernetes.io/arch".to_string(), "amd64".to_string()),
            ("kubernetes.io/os".to_string(), "linux".to_string()),
            ("purser.dev/instance-cpu".to_string(), cpu.to_string()),
            ("purser.dev/instance-memory".to_string(), mem.to_string()),
        ]),
        offerings: ["us-east-1a", "us-east-1b"]
            .iter()
            .flat_map(|z| {
                [("on-demand", od), ("spot", od * 0.4)].map(|(ct, price)| OfferingSpec {
                    zone: z.to_string(),
                    capacity_type: ct.into(),
                    price: Some(price),
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    };
    CatalogFile {
        region: "us-east-1".into(),
        source: "tests".into(),
        instance_types: vec![
            spec("m5.large", 2, 8192, 0.096),
            spec("m5.xlarge", 4, 16384, 0.192),
            spec("c5.large", 2, 4096, 0.085),
        ],
        ..Default::default()
    }
}

/// Tag the VPC for discovery; returns an x86_64 image ID.
pub async fn prepare_vpc(ec2: &aws_sdk_ec2::Client) -> String {
    testing::prepare_vpc(ec2, DISCOVERY, CLUSTER).await
}

/// A NodeClass selecting the tagged subnets and group and `image`.
pub fn node_class(image: &str) -> AwsNodeClass {
    let tags = BTreeMap::from([(DISCOVERY.to_string(), CLUSTER.to_string())]);
    AwsNodeClass {
        ami_selector_terms: vec![AmiSelectorTerm {
            id: Some(image.into()),
            ..Default::default()
        }],
        subnet_selector_terms: vec![SelectorTerm {
            tags: tags.clone(),
            ..Default::default()
        }],
        security_group_selector_terms: vec![SelectorTerm {
            tags,
            ..Default::default()
        }],
        instance_profile: Some("nodes".into()),
        ..Default::default()
    }
}

/// A provider over moto with the class `default` resolved.
pub async fn provider(moto: &Moto, injector: &CapacityInjector) -> AwsProvider {
    let sdk = moto.sdk_config().await;
    let clients = testing::clients(&sdk, injector, None);
    let image = prepare_vpc(&clients.ec2).await;
    let options = AwsOptions {
        cluster_name: CLUSTER.into(),
        retry: fast_retry(),
        queue_wait_seconds: 1,
        ..AwsOptions::default()
    };
    let provider = AwsProvider::new(clients, options, None, snapshot());
    provider
        .resolve_class(
            "default",
            &node_class(&image),
            BTreeMap::from([("team".to_string(), "ml".to_string())]),
        )
        .await
        .expect("the class resolves");
    provider
}

/// A launch request for `claim`.
pub fn request(claim: &str, instance_type: &str, capacity_type: &str) -> LaunchRequest {
    LaunchRequest {
        node_claim: claim.into(),
        node_pool: "general".into(),
        node_class: "default".into(),
        instance_types: vec![instance_type.into()],
        capacity_type: capacity_type.into(),
        zones: vec!["us-east-1a".into()],
        ..Default::default()
    }
}
