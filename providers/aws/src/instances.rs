//! Instances: described, listed by the cluster tag, terminated only when Purser tagged them.
//!
//! In: instance IDs and the cluster name. Out: [`Instance`]s with their provider IDs
//! (`aws:///<zone>/<id>`) and owning NodeClaim, read from the tags Purser set at launch.

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use purser_cloudprovider::Instance;

use crate::errors::{AwsError, RetryPolicy, call};
use crate::fleet::tags;

/// States of an instance that is (or will be) running.
pub const LIVE_STATES: &[&str] = &["pending", "running", "stopping", "stopped"];

/// The instance ID of a provider ID (`aws:///us-east-1a/i-0abc` → `i-0abc`).
pub fn instance_id(provider_id: &str) -> Option<&str> {
    let id = provider_id.strip_prefix("aws://")?.rsplit('/').next()?;
    id.starts_with("i-").then_some(id)
}

/// The provider ID of an instance in a zone.
pub fn provider_id(zone: &str, id: &str) -> String {
    format!("aws:///{zone}/{id}")
}

/// An EC2 instance as Purser sees it, with its cluster tag.
#[derive(Debug, Clone, PartialEq)]
pub struct Described {
    /// The instance.
    pub instance: Instance,
    /// Value of the `purser.dev/cluster` tag, if any.
    pub cluster: Option<String>,
    /// `pending`, `running`, `terminated`, ...
    pub state: String,
    /// IDs of the EBS volumes attached to it.
    pub volumes: Vec<String>,
}

fn describe_one(i: &aws_sdk_ec2::types::Instance) -> Option<Described> {
    let id = i.instance_id()?;
    let zone = i.placement().and_then(|p| p.availability_zone()).unwrap_or_default();
    let tag = |key: &str| {
        i.tags()
            .iter()
            .find(|t| t.key() == Some(key))
            .and_then(|t| t.value())
            .map(str::to_string)
    };
    let spot = i.instance_lifecycle().is_some_and(|l| l.as_str() == "spot");
    let capacity_type =
        tag(tags::CAPACITY_TYPE).unwrap_or_else(|| if spot { "spot".into() } else { "on-demand".into() });
    Some(Described {
        instance: Instance {
            provider_id: provider_id(zone, id),
            instance_type: i.instance_type().map(|t| t.as_str().to_string()).unwrap_or_default(),
            zone: zone.to_string(),
            capacity_type,
            node_claim: tag(tags::NODECLAIM).unwrap_or_default(),
        },
        cluster: tag(tags::CLUSTER),
        state: i
            .state()
            .and_then(|s| s.name())
            .map(|n| n.as_str().to_string())
            .unwrap_or_default(),
        volumes: i
            .block_device_mappings()
            .iter()
            .filter_map(|m| m.ebs().and_then(|e| e.volume_id()))
            .map(str::to_string)
            .collect(),
    })
}

/// Tag `volumes` with `tags` (the launch template can only give them the NodeClass's tags, as
/// it is shared by every launch of the class).
pub async fn tag_volumes(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    volumes: &[String],
    tags: &std::collections::BTreeMap<String, String>,
) -> Result<(), AwsError> {
    if volumes.is_empty() {
        return Ok(());
    }
    let list: Vec<aws_sdk_ec2::types::Tag> = tags
        .iter()
        .map(|(k, v)| aws_sdk_ec2::types::Tag::builder().key(k).value(v).build())
        .collect();
    call("CreateTags", retry, || {
        ec2.create_tags()
            .set_resources(Some(volumes.to_vec()))
            .set_tags(Some(list.clone()))
            .send()
    })
    .await?;
    Ok(())
}

/// Every instance matching `filters` (all pages).
pub async fn describe(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    ids: &[String],
    filters: &[Filter],
) -> Result<Vec<Described>, AwsError> {
    let mut out = vec![];
    let mut token: Option<String> = None;
    loop {
        let page = call("DescribeInstances", retry, || {
            ec2.describe_instances()
                .set_instance_ids((!ids.is_empty()).then(|| ids.to_vec()))
                .set_filters((!filters.is_empty()).then(|| filters.to_vec()))
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        for reservation in page.reservations() {
            out.extend(reservation.instances().iter().filter_map(describe_one));
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
}

/// Filters for live instances tagged for `cluster`.
pub fn cluster_filters(cluster: &str) -> Vec<Filter> {
    vec![
        Filter::builder()
            .name(format!("tag:{}", tags::CLUSTER))
            .values(cluster)
            .build(),
        Filter::builder()
            .name("instance-state-name")
            .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
            .build(),
    ]
}

/// The live instance of `node_claim` in `cluster`, if one was launched already.
pub async fn find_claim(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    cluster: &str,
    node_claim: &str,
) -> Result<Option<Described>, AwsError> {
    let mut filters = cluster_filters(cluster);
    filters.push(
        Filter::builder()
            .name(format!("tag:{}", tags::NODECLAIM))
            .values(node_claim)
            .build(),
    );
    Ok(describe(ec2, retry, &[], &filters).await?.into_iter().next())
}

/// True when the state means the instance is gone or going.
pub fn is_gone(state: &str) -> bool {
    state == InstanceStateName::Terminated.as_str() || state == InstanceStateName::ShuttingDown.as_str()
}

/// Terminate `id`.
pub async fn terminate(ec2: &aws_sdk_ec2::Client, retry: &RetryPolicy, id: &str) -> Result<(), AwsError> {
    call("TerminateInstances", retry, || {
        ec2.terminate_instances().instance_ids(id).send()
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_ids_round_trip() {
        let p = provider_id("us-east-1a", "i-0abc");
        assert_eq!(p, "aws:///us-east-1a/i-0abc");
        assert_eq!(instance_id(&p), Some("i-0abc"));
        assert_eq!(instance_id("kwok://n1"), None);
        assert_eq!(instance_id("aws:///us-east-1a/vol-1"), None);
    }
}
