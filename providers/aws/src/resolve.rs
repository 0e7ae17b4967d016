//! Resolving a NodeClass's selectors against EC2: subnets, security groups and images.
//!
//! In: a checked [`AwsNodeClass`]. Out: a [`ResolvedClass`] with every setting a launch needs,
//! or the reason the class cannot be used (a selector that matches nothing), so a launch never
//! goes out with half-resolved settings.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_ec2::types::{Filter, Image};
use sha2::{Digest, Sha256};

use crate::errors::{AwsError, RetryPolicy, call};
use crate::nodeclass::{
    AwsNodeClass, AwsNodeClassStatus, ResolvedAmi, ResolvedSecurityGroup, ResolvedSubnet, SelectorTerm,
    alias_parameter, validate,
};

/// A NodeClass ready to launch from.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedClass {
    /// NodeClass name.
    pub name: String,
    /// The settings as written.
    pub spec: AwsNodeClass,
    /// Tags from the NodeClass's `spec.tags` and `spec.aws.tags`.
    pub tags: BTreeMap<String, String>,
    /// What the selectors matched.
    pub status: AwsNodeClassStatus,
}

/// Why a NodeClass cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    /// The spec is invalid or a selector matched nothing: the user must fix it.
    #[error("{0}")]
    Invalid(String),
    /// EC2 failed; the next attempt may work.
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl ResolvedClass {
    /// A hash of everything a launch template holds, so a changed class gets a new template.
    pub fn hash(&self, arch: &str) -> String {
        let material = serde_json::json!({
            "spec": self.spec,
            "tags": self.tags,
            "securityGroups": self.status.security_groups,
            "amis": self.status.amis,
            "arch": arch,
        });
        let digest = Sha256::digest(material.to_string().as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The image for an architecture.
    pub fn ami_for(&self, arch: &str) -> Option<&ResolvedAmi> {
        self.status.amis.iter().find(|a| a.arch == arch)
    }

    /// The subnets in `zones` (all when `zones` is empty).
    pub fn subnets_in(&self, zones: &[String]) -> Vec<&ResolvedSubnet> {
        self.status
            .subnets
            .iter()
            .filter(|s| zones.is_empty() || zones.contains(&s.zone))
            .collect()
    }
}

/// Resolve `spec` (NodeClass `name`) against EC2; `kubernetes` is the cluster's minor version
/// (`1.33`), used by image aliases.
pub async fn resolve(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    name: &str,
    spec: &AwsNodeClass,
    mut tags: BTreeMap<String, String>,
    kubernetes: &str,
) -> Result<ResolvedClass, ResolveError> {
    let problems = validate(name, spec);
    if !problems.is_empty() {
        return Err(ResolveError::Invalid(problems.join("; ")));
    }
    let subnets = subnets(ec2, retry, &spec.subnet_selector_terms).await?;
    if subnets.is_empty() {
        return Err(ResolveError::Invalid(format!(
            "NodeClass {name}: spec.aws.subnetSelectorTerms match no subnet"
        )));
    }
    let security_groups = security_groups(ec2, retry, &spec.security_group_selector_terms).await?;
    if security_groups.is_empty() {
        return Err(ResolveError::Invalid(format!(
            "NodeClass {name}: spec.aws.securityGroupSelectorTerms match no security group"
        )));
    }
    let amis = amis(ec2, retry, name, spec, kubernetes).await?;
    if amis.is_empty() {
        return Err(ResolveError::Invalid(format!(
            "NodeClass {name}: spec.aws.amiSelectorTerms match no image"
        )));
    }
    tags.extend(spec.tags.clone());
    Ok(ResolvedClass {
        name: name.to_string(),
        spec: spec.clone(),
        tags,
        status: AwsNodeClassStatus {
            subnets,
            security_groups,
            amis,
            instance_profile: spec.instance_profile.clone().or_else(|| spec.role.clone()),
        },
    })
}

/// EC2 filters for a term's tags (`*` selects any value).
pub fn tag_filters(tags: &BTreeMap<String, String>) -> Vec<Filter> {
    tags.iter()
        .map(|(k, v)| {
            if v == "*" {
                Filter::builder().name("tag-key").values(k).build()
            } else {
                Filter::builder().name(format!("tag:{k}")).values(v).build()
            }
        })
        .collect()
}

async fn subnets(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    terms: &[SelectorTerm],
) -> Result<Vec<ResolvedSubnet>, AwsError> {
    let mut found = BTreeSet::new();
    for term in terms {
        let mut filters = tag_filters(&term.tags);
        if let Some(id) = &term.id {
            filters.push(Filter::builder().name("subnet-id").values(id).build());
        }
        let out = call("DescribeSubnets", retry, || {
            ec2.describe_subnets().set_filters(Some(filters.clone())).send()
        })
        .await?;
        for s in out.subnets() {
            if let (Some(id), Some(zone)) = (s.subnet_id(), s.availability_zone()) {
                found.insert(ResolvedSubnet {
                    id: id.into(),
                    zone: zone.into(),
                });
            }
        }
    }
    Ok(found.into_iter().collect())
}

async fn security_groups(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    terms: &[SelectorTerm],
) -> Result<Vec<ResolvedSecurityGroup>, AwsError> {
    let mut found = BTreeSet::new();
    for term in terms {
        let mut filters = tag_filters(&term.tags);
        if let Some(id) = &term.id {
            filters.push(Filter::builder().name("group-id").values(id).build());
        }
        let out = call("DescribeSecurityGroups", retry, || {
            ec2.describe_security_groups().set_filters(Some(filters.clone())).send()
        })
        .await?;
        for g in out.security_groups() {
            if let Some(id) = g.group_id() {
                found.insert(ResolvedSecurityGroup {
                    id: id.into(),
                    name: g.group_name().unwrap_or_default().into(),
                });
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// The newest image per architecture among every term's matches; aliases resolve at launch
/// through `resolve:ssm:` for both architectures. A term naming an image ID that EC2 does not
/// know makes the class invalid.
async fn amis(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
    name: &str,
    spec: &AwsNodeClass,
    kubernetes: &str,
) -> Result<Vec<ResolvedAmi>, ResolveError> {
    let mut newest: BTreeMap<String, (String, ResolvedAmi)> = BTreeMap::new();
    for (i, term) in spec.ami_selector_terms.iter().enumerate() {
        if let Some(alias) = &term.alias {
            for arch in ["amd64", "arm64"] {
                if let Some(parameter) = alias_parameter(alias, kubernetes, arch) {
                    let ami = ResolvedAmi {
                        id: format!("resolve:ssm:{parameter}"),
                        name: alias.clone(),
                        arch: arch.into(),
                    };
                    newest.entry(arch.into()).or_insert((String::new(), ami));
                }
            }
            continue;
        }
        let mut request = ec2.describe_images();
        if let Some(id) = &term.id {
            request = request.image_ids(id);
        }
        if let Some(owner) = &term.owner {
            request = request.owners(owner);
        }
        if let Some(name) = &term.name {
            request = request.filters(Filter::builder().name("name").values(name).build());
        }
        for f in tag_filters(&term.tags) {
            request = request.filters(f);
        }
        let out = match call("DescribeImages", retry, || request.clone().send()).await {
            Ok(out) => out,
            Err(e) if e.code.starts_with("InvalidAMIID") => {
                return Err(unknown_image(name, i, term.id.as_deref(), &e.code));
            }
            Err(e) => return Err(e.into()),
        };
        if out.images().is_empty()
            && let Some(id) = &term.id
        {
            return Err(unknown_image(name, i, Some(id), "no image"));
        }
        for image in out.images() {
            keep_newest(&mut newest, image);
        }
    }
    Ok(newest.into_values().map(|(_, ami)| ami).collect())
}

/// The error of an image ID term that matches no image.
fn unknown_image(name: &str, term: usize, id: Option<&str>, why: &str) -> ResolveError {
    ResolveError::Invalid(format!(
        "NodeClass {name}: spec.aws.amiSelectorTerms[{term}].id: image {} does not exist ({why})",
        id.unwrap_or_default()
    ))
}

fn keep_newest(newest: &mut BTreeMap<String, (String, ResolvedAmi)>, image: &Image) {
    let arch = match image.architecture().map(|a| a.as_str()) {
        Some("arm64") => "arm64",
        Some("x86_64") | None => "amd64",
        Some(_) => return,
    };
    let (Some(id), created) = (image.image_id(), image.creation_date().unwrap_or_default()) else {
        return;
    };
    let candidate = ResolvedAmi {
        id: id.into(),
        name: image.name().unwrap_or_default().into(),
        arch: arch.into(),
    };
    match newest.get(arch) {
        Some((date, _)) if date.as_str() >= created => {}
        _ => {
            newest.insert(arch.into(), (created.to_string(), candidate));
        }
    }
}
