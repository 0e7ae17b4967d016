//! Launching: one launch template per NodeClass hash (reused), and an instant `CreateFleet`
//! whose overrides are the plan's instance type first, then the request's alternatives (the
//! controller chose them to meet the pool's and pods' requirements) that are compatible and
//! cost no more, across the allowed subnets.
//!
//! In: a [`LaunchRequest`], its [`ResolvedClass`] and the catalog. Out: the launched instance ID,
//! or [`LaunchError::Capacity`] naming the offering that had no capacity.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{
    DefaultTargetCapacityType, FleetLaunchTemplateConfigRequest, FleetLaunchTemplateOverridesRequest,
    FleetLaunchTemplateSpecificationRequest, FleetOnDemandAllocationStrategy, FleetType, InstanceType,
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateInstanceMetadataProtocolIpv6,
    LaunchTemplateTagSpecificationRequest, OnDemandOptionsRequest, RequestLaunchTemplateData, ResourceType,
    SpotAllocationStrategy, SpotOptionsRequest, Tag, TagSpecification, TargetCapacitySpecificationRequest, VolumeType,
};
use base64::Engine;
use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, LaunchRequest};
use sha2::{Digest, Sha256};

use crate::errors::{AwsError, CAPACITY_CODES, RetryPolicy, call};
use crate::nodeclass::volume_size_gib;
use crate::resolve::ResolvedClass;

/// At most this many overrides go into one fleet request (EC2 allows 300).
pub const MAX_OVERRIDES: usize = 60;
/// At most this many instance types are tried per launch (the plan's first).
pub const MAX_TYPES: usize = 10;

/// Tag keys Purser sets.
pub mod tags {
    /// The cluster (value: its name); the only instances Purser ever lists or terminates.
    pub const CLUSTER: &str = "purser.dev/cluster";
    /// The NodePool.
    pub const NODEPOOL: &str = "purser.dev/nodepool";
    /// The NodeClaim.
    pub const NODECLAIM: &str = "purser.dev/nodeclaim";
    /// The NodeClass.
    pub const NODECLASS: &str = "purser.dev/nodeclass";
    /// Capacity type asked for.
    pub const CAPACITY_TYPE: &str = "purser.dev/capacity-type";
    /// The Kubernetes cluster ownership tag prefix (`kubernetes.io/cluster/<name>=owned`).
    pub const KUBERNETES_CLUSTER_PREFIX: &str = "kubernetes.io/cluster/";
}

/// Why a fleet launched nothing.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LaunchError {
    /// Overrides failed for lack of capacity; names the plan's offering when it was among them.
    #[error("insufficient capacity for {instance_type} in {zone}: {code}")]
    Capacity {
        /// The instance type (the plan's when it failed).
        instance_type: String,
        /// The zone it failed in.
        zone: String,
        /// The EC2 error code.
        code: String,
        /// Every other (instance type, zone) the fleet's error set names with a capacity error.
        others: Vec<(String, String)>,
    },
    /// The request could not be built or EC2 refused it.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// The idempotency token of a claim's launch: the same claim always gets the same token.
pub fn client_token(cluster: &str, node_claim: &str) -> String {
    let digest = Sha256::digest(format!("{cluster}/{node_claim}").as_bytes());
    let hex: String = digest.iter().take(24).map(|b| format!("{b:02x}")).collect();
    format!("purser-{hex}")
}

/// The tags every resource of a NodeClass carries: the class's tags, the cluster's and the
/// NodeClass's (the launch template and, through it, every volume at creation).
pub fn class_tags(cluster: &str, class: &ResolvedClass) -> BTreeMap<String, String> {
    let mut tags = class.tags.clone();
    tags.insert(tags::CLUSTER.into(), cluster.into());
    tags.insert(format!("{}{cluster}", tags::KUBERNETES_CLUSTER_PREFIX), "owned".into());
    tags.insert(tags::NODECLASS.into(), class.name.clone());
    tags
}

/// The tags of an instance, and of its volumes once it runs: the class's, the request's, and
/// its NodePool, NodeClaim and capacity type.
pub fn instance_tags(cluster: &str, request: &LaunchRequest, class: &ResolvedClass) -> BTreeMap<String, String> {
    let mut tags = class.tags.clone();
    tags.extend(request.tags.clone());
    tags.extend(class_tags(cluster, class));
    tags.insert("Name".into(), request.node_claim.clone());
    tags.insert(tags::NODEPOOL.into(), request.node_pool.clone());
    tags.insert(tags::NODECLAIM.into(), request.node_claim.clone());
    tags.insert(tags::CAPACITY_TYPE.into(), request.capacity_type.clone());
    tags
}

fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The instance types to offer the fleet: the plan's type first, then those of the request's
/// alternatives (the controller chose them to meet the NodePool's and the pods' requirements)
/// that are also compatible and no dearer by this provider's catalog. Never a type the request
/// does not name.
pub fn candidate_types(request: &LaunchRequest, catalog: &CatalogFile) -> Vec<String> {
    let Some((first, rest)) = request.instance_types.split_first() else {
        return vec![];
    };
    let find = |n: &String| catalog.instance_types.iter().find(|t| &t.name == n);
    let plan = find(first);
    let ceiling = plan.and_then(|p| best_price(p, request));
    let mut out = vec![first.clone()];
    for name in rest {
        if out.len() >= MAX_TYPES {
            break;
        }
        let allowed = match (plan, ceiling, find(name)) {
            (Some(p), Some(c), Some(t)) => compatible(p, t) && best_price(t, request).is_some_and(|x| x <= c),
            _ => false,
        };
        if allowed && !out.contains(name) {
            out.push(name.clone());
        }
    }
    out
}

fn best_price(t: &InstanceTypeSpec, request: &LaunchRequest) -> Option<f64> {
    t.offerings
        .iter()
        .filter(|o| o.capacity_type == request.capacity_type)
        .filter(|o| request.zones.is_empty() || request.zones.contains(&o.zone))
        .filter_map(|o| o.price)
        .min_by(f64::total_cmp)
}

fn compatible(plan: &InstanceTypeSpec, other: &InstanceTypeSpec) -> bool {
    let label = |t: &InstanceTypeSpec, k: &str| t.labels.get(k).cloned();
    let number = |t: &InstanceTypeSpec, k: &str| t.labels.get(k).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let accelerators = |t: &InstanceTypeSpec| {
        t.capacity
            .iter()
            .filter(|(k, _)| k.contains('/'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    label(plan, "kubernetes.io/arch") == label(other, "kubernetes.io/arch")
        && label(plan, "kubernetes.io/os") == label(other, "kubernetes.io/os")
        && accelerators(plan) == accelerators(other)
        && number(other, "purser.dev/instance-cpu") >= number(plan, "purser.dev/instance-cpu")
        && number(other, "purser.dev/instance-memory") >= number(plan, "purser.dev/instance-memory")
}

/// The launch template data of a class for one architecture.
pub fn template_data(
    class: &ResolvedClass,
    arch: &str,
    tags: &BTreeMap<String, String>,
) -> Result<RequestLaunchTemplateData, AwsError> {
    let Some(ami) = class.ami_for(arch) else {
        return Err(AwsError::local(
            "CreateLaunchTemplate",
            "NoImage",
            format!("NodeClass {}: no image for architecture {arch}", class.name),
        ));
    };
    let metadata = class.spec.metadata_options.clone().unwrap_or_default();
    let mut data = RequestLaunchTemplateData::builder()
        .image_id(&ami.id)
        .set_security_group_ids(Some(
            class.status.security_groups.iter().map(|g| g.id.clone()).collect(),
        ))
        .metadata_options(
            LaunchTemplateInstanceMetadataOptionsRequest::builder()
                .http_endpoint(LaunchTemplateInstanceMetadataEndpointState::from(
                    metadata.http_endpoint.as_str(),
                ))
                .http_tokens(LaunchTemplateHttpTokensState::from(metadata.http_tokens.as_str()))
                .http_put_response_hop_limit(metadata.http_put_response_hop_limit)
                .http_protocol_ipv6(LaunchTemplateInstanceMetadataProtocolIpv6::from(
                    metadata.http_protocol_ipv6.as_str(),
                ))
                .build(),
        )
        .tag_specifications(
            LaunchTemplateTagSpecificationRequest::builder()
                .resource_type(ResourceType::Volume)
                .set_tags(Some(tag_list(tags)))
                .build(),
        );
    if let Some(profile) = &class.status.instance_profile {
        data = data.iam_instance_profile(
            LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                .name(profile)
                .build(),
        );
    }
    if let Some(user_data) = &class.spec.user_data {
        data = data.user_data(base64::engine::general_purpose::STANDARD.encode(user_data));
    }
    for (i, m) in class.spec.block_device_mappings.iter().enumerate() {
        let size = volume_size_gib(&m.ebs.volume_size).map_err(|p| {
            AwsError::local(
                "CreateLaunchTemplate",
                "InvalidNodeClass",
                format!(
                    "NodeClass {}: spec.aws.blockDeviceMappings[{i}].ebs.volumeSize: {p}",
                    class.name
                ),
            )
        })?;
        let ebs = LaunchTemplateEbsBlockDeviceRequest::builder()
            .volume_size(size)
            .volume_type(VolumeType::from(m.ebs.volume_type.as_deref().unwrap_or("gp3")))
            .set_iops(m.ebs.iops)
            .set_throughput(m.ebs.throughput)
            .set_encrypted(m.ebs.encrypted)
            .set_kms_key_id(m.ebs.kms_key_id.clone())
            .set_snapshot_id(m.ebs.snapshot_id.clone())
            .delete_on_termination(m.ebs.delete_on_termination.unwrap_or(true))
            .build();
        data = data.block_device_mappings(
            LaunchTemplateBlockDeviceMappingRequest::builder()
                .device_name(&m.device_name)
                .ebs(ebs)
                .build(),
        );
    }
    Ok(data.build())
}

/// The ID of the launch template `name`, created from `data` when it does not exist yet.
pub async fn ensure_template(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    name: &str,
    data: RequestLaunchTemplateData,
    tags: &BTreeMap<String, String>,
) -> Result<String, AwsError> {
    if let Some(id) = find_template(ec2, retry, name).await? {
        return Ok(id);
    }
    let created = call("CreateLaunchTemplate", retry, || {
        ec2.create_launch_template()
            .launch_template_name(name)
            .launch_template_data(data.clone())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::LaunchTemplate)
                    .set_tags(Some(tag_list(tags)))
                    .build(),
            )
            .send()
    })
    .await;
    match created {
        Ok(out) => out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .map(str::to_string)
            .ok_or_else(|| AwsError::local("CreateLaunchTemplate", "NoId", "the response has no template ID")),
        Err(e) if e.code.contains("AlreadyExists") => find_template(ec2, retry, name).await?.ok_or_else(|| {
            AwsError::local(
                "DescribeLaunchTemplates",
                "NotFound",
                format!("launch template {name} vanished"),
            )
        }),
        Err(e) => Err(e),
    }
}

async fn find_template(ec2: &aws_sdk_ec2::Client, retry: &RetryPolicy, name: &str) -> Result<Option<String>, AwsError> {
    let found = call("DescribeLaunchTemplates", retry, || {
        ec2.describe_launch_templates().launch_template_names(name).send()
    })
    .await;
    match found {
        Ok(out) => Ok(out
            .launch_templates()
            .first()
            .and_then(|t| t.launch_template_id())
            .map(str::to_string)),
        Err(e) if e.code.contains("NotFound") => Ok(None),
        Err(e) => Err(e),
    }
}

/// One instant fleet for one instance.
pub struct FleetRequest<'a> {
    /// The launch template to use.
    pub template_id: &'a str,
    /// Instance types in order of preference.
    pub instance_types: &'a [String],
    /// Subnets (ID, zone) allowed.
    pub subnets: &'a [(String, String)],
    /// `spot` or `on-demand`.
    pub capacity_type: &'a str,
    /// Idempotency token.
    pub client_token: &'a str,
    /// Instance and volume tags.
    pub tags: &'a BTreeMap<String, String>,
}

/// The overrides: every candidate type in every allowed subnet, the plan's type first.
pub fn overrides(types: &[String], subnets: &[(String, String)]) -> Vec<FleetLaunchTemplateOverridesRequest> {
    let mut out = vec![];
    for (rank, t) in types.iter().enumerate() {
        for (subnet, zone) in subnets {
            if out.len() >= MAX_OVERRIDES {
                return out;
            }
            out.push(
                FleetLaunchTemplateOverridesRequest::builder()
                    .instance_type(InstanceType::from(t.as_str()))
                    .subnet_id(subnet)
                    .availability_zone(zone)
                    .priority(rank as f64)
                    .build(),
            );
        }
    }
    out
}

/// Launch one instance through an instant fleet; returns its instance ID.
pub async fn create_fleet(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    request: &FleetRequest<'_>,
) -> Result<String, LaunchError> {
    let spot = request.capacity_type == "spot";
    let config = FleetLaunchTemplateConfigRequest::builder()
        .launch_template_specification(
            FleetLaunchTemplateSpecificationRequest::builder()
                .launch_template_id(request.template_id)
                .version("$Latest")
                .build(),
        )
        .set_overrides(Some(overrides(request.instance_types, request.subnets)))
        .build();
    let capacity = TargetCapacitySpecificationRequest::builder()
        .total_target_capacity(1)
        .default_target_capacity_type(if spot {
            DefaultTargetCapacityType::Spot
        } else {
            DefaultTargetCapacityType::OnDemand
        })
        .build();
    let out = call("CreateFleet", retry, || {
        let mut fleet = ec2
            .create_fleet()
            .r#type(FleetType::Instant)
            .client_token(request.client_token)
            .launch_template_configs(config.clone())
            .target_capacity_specification(capacity.clone())
            .tag_specifications(
                TagSpecification::builder()
                    .resource_type(ResourceType::Instance)
                    .set_tags(Some(tag_list(request.tags)))
                    .build(),
            );
        fleet = if spot {
            fleet.spot_options(
                SpotOptionsRequest::builder()
                    .allocation_strategy(SpotAllocationStrategy::PriceCapacityOptimized)
                    .build(),
            )
        } else {
            fleet.on_demand_options(
                OnDemandOptionsRequest::builder()
                    .allocation_strategy(FleetOnDemandAllocationStrategy::LowestPrice)
                    .build(),
            )
        };
        fleet.send()
    })
    .await?;
    if let Some(id) = out.instances().iter().flat_map(|i| i.instance_ids()).next() {
        return Ok(id.clone());
    }
    Err(fleet_failure(&out, request))
}

/// The error of a fleet that launched nothing: capacity when any override failed for lack of
/// capacity (every such override is named, so all are kept out of plans), else the errors.
fn fleet_failure(
    out: &aws_sdk_ec2::operation::create_fleet::CreateFleetOutput,
    request: &FleetRequest<'_>,
) -> LaunchError {
    let errors = out.errors();
    let plan_type = request.instance_types.first().cloned().unwrap_or_default();
    let first_zone = request.subnets.first().map(|s| s.1.clone()).unwrap_or_default();
    let (capacity, other): (Vec<_>, Vec<_>) = errors
        .iter()
        .partition(|e| CAPACITY_CODES.contains(&e.error_code().unwrap_or_default()));
    let detail: Vec<String> = other
        .iter()
        .map(|e| format!("{}: {}", e.error_code().unwrap_or("?"), e.error_message().unwrap_or("")))
        .collect();
    let mut failed: Vec<(String, String, String)> = vec![];
    for e in &capacity {
        let o = e.launch_template_and_overrides().and_then(|l| l.overrides());
        let offering = (
            o.and_then(|o| o.instance_type())
                .map(|t| t.as_str().to_string())
                .unwrap_or_else(|| plan_type.clone()),
            o.and_then(|o| o.availability_zone())
                .map(str::to_string)
                .unwrap_or_else(|| first_zone.clone()),
            e.error_code().unwrap_or_default().to_string(),
        );
        if !failed.iter().any(|f| f.0 == offering.0 && f.1 == offering.1) {
            failed.push(offering);
        }
    }
    if failed.is_empty() {
        return LaunchError::Aws(AwsError::local(
            "CreateFleet",
            "NothingLaunched",
            if detail.is_empty() {
                "the fleet launched no instance and gave no error".into()
            } else {
                detail.join("; ")
            },
        ));
    }
    if !detail.is_empty() {
        tracing::warn!(errors = %detail.join("; "), "CreateFleet also failed for reasons other than capacity");
    }
    let primary = failed.iter().position(|f| f.0 == plan_type).unwrap_or(0);
    let (instance_type, zone, code) = failed.remove(primary);
    LaunchError::Capacity {
        instance_type,
        zone,
        code,
        others: failed.into_iter().map(|(t, z, _)| (t, z)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_cloudprovider::OfferingSpec;

    fn spec(name: &str, cpu: u32, mem: u32, price: f64) -> InstanceTypeSpec {
        InstanceTypeSpec {
            name: name.into(),
            capacity: [("cpu".to_string(), cpu.to_string())].into(),
            labels: [
                ("kubernetes.io/arch".to_string(), "amd64".to_string()),
                ("purser.dev/instance-cpu".to_string(), cpu.to_string()),
                ("purser.dev/instance-memory".to_string(), mem.to_string()),
            ]
            .into(),
            offerings: vec![OfferingSpec {
                zone: "z1".into(),
                capacity_type: "spot".into(),
                price: Some(price),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn alternatives_are_only_the_requests_compatible_and_no_dearer_types_with_the_plans_first() {
        let catalog = CatalogFile {
            instance_types: vec![
                spec("m5.large", 2, 8192, 0.04),
                spec("m6i.large", 2, 8192, 0.035),
                spec("c5.large", 2, 4096, 0.03),
                spec("m5.xlarge", 4, 16384, 0.08),
                spec("r5.large", 2, 16384, 0.04),
            ],
            ..Default::default()
        };
        let request = LaunchRequest {
            instance_types: vec![
                "m5.large".into(),
                "r5.large".into(),
                "c5.large".into(),
                "m5.xlarge".into(),
                "unknown.large".into(),
            ],
            capacity_type: "spot".into(),
            ..Default::default()
        };
        assert_eq!(
            candidate_types(&request, &catalog),
            ["m5.large", "r5.large"],
            "only the request's types: m6i.large is cheaper but not asked for; c5.large is smaller; m5.xlarge is dearer"
        );
    }

    fn fleet_error(code: &str, instance_type: &str, zone: &str) -> aws_sdk_ec2::types::CreateFleetError {
        use aws_sdk_ec2::types::{CreateFleetError, FleetLaunchTemplateOverrides, LaunchTemplateAndOverridesResponse};
        CreateFleetError::builder()
            .error_code(code)
            .error_message("no")
            .launch_template_and_overrides(
                LaunchTemplateAndOverridesResponse::builder()
                    .overrides(
                        FleetLaunchTemplateOverrides::builder()
                            .instance_type(InstanceType::from(instance_type))
                            .availability_zone(zone)
                            .build(),
                    )
                    .build(),
            )
            .build()
    }

    fn failure_of(errors: Vec<aws_sdk_ec2::types::CreateFleetError>) -> LaunchError {
        let out = aws_sdk_ec2::operation::create_fleet::CreateFleetOutput::builder()
            .set_errors(Some(errors))
            .build();
        let types = ["m5.large".to_string(), "m6i.large".to_string()];
        let subnets = [
            ("s1".to_string(), "z1".to_string()),
            ("s2".to_string(), "z2".to_string()),
        ];
        let tags = BTreeMap::new();
        let request = FleetRequest {
            template_id: "lt",
            instance_types: &types,
            subnets: &subnets,
            capacity_type: "spot",
            client_token: "t",
            tags: &tags,
        };
        fleet_failure(&out, &request)
    }

    #[test]
    fn every_override_that_failed_for_capacity_is_named_even_among_other_errors() {
        let failure = failure_of(vec![
            fleet_error("UnfulfillableCapacity", "m6i.large", "z1"),
            fleet_error("InsufficientInstanceCapacity", "m5.large", "z2"),
            fleet_error("InvalidParameterValue", "m6i.large", "z2"),
            fleet_error("InsufficientInstanceCapacity", "m5.large", "z1"),
        ]);
        assert_eq!(
            failure,
            LaunchError::Capacity {
                instance_type: "m5.large".into(),
                zone: "z2".into(),
                code: "InsufficientInstanceCapacity".into(),
                others: vec![("m6i.large".into(), "z1".into()), ("m5.large".into(), "z1".into())],
            }
        );
        let only_other = failure_of(vec![fleet_error("InvalidParameterValue", "m5.large", "z1")]);
        assert!(matches!(only_other, LaunchError::Aws(e) if e.code == "NothingLaunched"));
    }

    #[test]
    fn the_client_token_depends_only_on_cluster_and_claim() {
        assert_eq!(client_token("c", "n1"), client_token("c", "n1"));
        assert_ne!(client_token("c", "n1"), client_token("c", "n2"));
        assert!(client_token("c", "n1").len() <= 64);
    }

    #[test]
    fn overrides_put_the_plans_type_first_in_every_subnet() {
        let subnets = vec![
            ("s1".to_string(), "z1".to_string()),
            ("s2".to_string(), "z2".to_string()),
        ];
        let o = overrides(&["a.large".into(), "b.large".into()], &subnets);
        assert_eq!(o.len(), 4);
        assert_eq!(o[0].instance_type().map(|t| t.as_str()), Some("a.large"));
        assert_eq!(o[1].subnet_id(), Some("s2"));
        assert_eq!(o[2].instance_type().map(|t| t.as_str()), Some("b.large"));
    }
}
