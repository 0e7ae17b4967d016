//! `spec.aws` of a NodeClass (shaped like Karpenter's EC2NodeClass) and its checks.
//!
//! In: the user's settings. Out: the problems found (each naming the field and what was
//! expected) and, once resolved by [`crate::resolve`], the status listing the subnets, security
//! groups and images in use. Nothing here does I/O.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The AWS settings of a NodeClass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsNodeClass {
    /// Images to launch: each term selects by `id`, `name` (with `owner`), `tags` or an `alias`
    /// (`al2023@latest`, `al2@latest`, `bottlerocket@latest`); the newest match per
    /// architecture wins.
    #[serde(default)]
    pub ami_selector_terms: Vec<AmiSelectorTerm>,
    /// Subnets to launch into (by `id` or `tags`); their zones are the zones offered.
    #[serde(default)]
    pub subnet_selector_terms: Vec<SelectorTerm>,
    /// Security groups of the instances (by `id` or `tags`).
    #[serde(default)]
    pub security_group_selector_terms: Vec<SelectorTerm>,
    /// IAM role of the nodes; its instance profile must have the same name (set
    /// `instanceProfile` otherwise). Exactly one of `role` and `instanceProfile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// IAM instance profile of the nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
    /// User data passed to the instances as is (the bootstrap script or NodeConfig).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<String>,
    /// Volumes of the instances.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    /// Instance metadata service settings (default: IMDSv2 required, hop limit 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_options: Option<MetadataOptions>,
    /// Tags for the instances and their volumes (added to the NodeClass's `spec.tags`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// One way to select images.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AmiSelectorTerm {
    /// Image ID (`ami-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Image name (wildcards allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Owner of the images selected by name or tags (account ID, `amazon`, `self`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Tags the image carries (`*` matches any value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// EKS-optimized image alias, `family@version`: resolved through the public SSM parameter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

/// One way to select subnets or security groups.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SelectorTerm {
    /// Resource ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Tags the resource carries (`*` matches any value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// A volume of the instances.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BlockDeviceMapping {
    /// Device name, e.g. `/dev/xvda`.
    pub device_name: String,
    /// The EBS volume.
    pub ebs: Ebs,
}

/// An EBS volume.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ebs {
    /// Size as a quantity in whole GiB (`20Gi`, `1Ti`), 1Gi to 64Ti.
    pub volume_size: String,
    /// Volume type (`gp3`, `gp2`, `io1`, `io2`, `st1`, `sc1`, `standard`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_type: Option<String>,
    /// Provisioned IOPS (gp3, io1, io2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<i32>,
    /// Throughput in MiB/s (gp3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<i32>,
    /// Encrypt the volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypted: Option<bool>,
    /// KMS key for encryption.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// Delete with the instance (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_on_termination: Option<bool>,
    /// Snapshot to create the volume from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
}

/// Instance metadata service settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOptions {
    /// `enabled` or `disabled`.
    #[serde(default = "enabled")]
    pub http_endpoint: String,
    /// `required` (IMDSv2) or `optional`.
    #[serde(default = "required")]
    pub http_tokens: String,
    /// Hop limit of metadata responses, 1 to 64.
    #[serde(default = "one")]
    pub http_put_response_hop_limit: i32,
    /// `enabled` or `disabled`.
    #[serde(default = "disabled")]
    pub http_protocol_ipv6: String,
}

fn enabled() -> String {
    "enabled".into()
}
fn disabled() -> String {
    "disabled".into()
}
fn required() -> String {
    "required".into()
}
fn one() -> i32 {
    1
}

impl Default for MetadataOptions {
    fn default() -> Self {
        MetadataOptions {
            http_endpoint: enabled(),
            http_tokens: required(),
            http_put_response_hop_limit: 1,
            http_protocol_ipv6: disabled(),
        }
    }
}

/// What a NodeClass's selectors resolved to (`status.aws`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AwsNodeClassStatus {
    /// Subnets in use, with their zones.
    #[serde(default)]
    pub subnets: Vec<ResolvedSubnet>,
    /// Security groups in use.
    #[serde(default)]
    pub security_groups: Vec<ResolvedSecurityGroup>,
    /// Images in use, one per architecture.
    #[serde(default)]
    pub amis: Vec<ResolvedAmi>,
    /// Instance profile the instances get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_profile: Option<String>,
}

/// A subnet a NodeClass selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedSubnet {
    /// Subnet ID.
    pub id: String,
    /// Its availability zone.
    pub zone: String,
}

/// A security group a NodeClass selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedSecurityGroup {
    /// Group ID.
    pub id: String,
    /// Group name.
    #[serde(default)]
    pub name: String,
}

/// An image a NodeClass selected.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedAmi {
    /// Image ID, or `resolve:ssm:<parameter>` for an alias (EC2 resolves it at launch).
    pub id: String,
    /// Image name (or the alias).
    #[serde(default)]
    pub name: String,
    /// Kubernetes architecture (`amd64`, `arm64`).
    pub arch: String,
}

/// Image families an alias may name, with the SSM parameter path of each (`{k8s}` and `{arch}`
/// are filled in; `{version}` is `recommended` for `latest` or the image version).
pub const ALIASES: &[(&str, &str)] = &[
    (
        "al2023",
        "/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2023/{arch}/standard/{version}/image_id",
    ),
    (
        "al2",
        "/aws/service/eks/optimized-ami/{k8s}/amazon-linux-2{arch}/{version}/image_id",
    ),
    (
        "bottlerocket",
        "/aws/service/bottlerocket/aws-k8s-{k8s}/{arch}/{version}/image_id",
    ),
];

/// Every problem of a NodeClass's `spec.aws`, each naming the field and what was expected.
pub fn validate(class: &str, spec: &AwsNodeClass) -> Vec<String> {
    let mut problems = vec![];
    let field = |f: &str| format!("NodeClass {class}: spec.aws.{f}");
    if spec.ami_selector_terms.is_empty() {
        problems.push(format!("{}: at least one term is required", field("amiSelectorTerms")));
    }
    for (i, term) in spec.ami_selector_terms.iter().enumerate() {
        if let Some(p) = ami_term_problem(term) {
            problems.push(format!("{}: {p}", field(&format!("amiSelectorTerms[{i}]"))));
        } else if let Some(p) = term.alias.as_deref().and_then(alias_problem) {
            problems.push(format!("{}: {p}", field(&format!("amiSelectorTerms[{i}].alias"))));
        }
    }
    for (name, terms) in [
        ("subnetSelectorTerms", &spec.subnet_selector_terms),
        ("securityGroupSelectorTerms", &spec.security_group_selector_terms),
    ] {
        if terms.is_empty() {
            problems.push(format!("{}: at least one term is required", field(name)));
        }
        for (i, term) in terms.iter().enumerate() {
            if term.id.is_none() == term.tags.is_empty() {
                problems.push(format!(
                    "{}: set exactly one of id and tags",
                    field(&format!("{name}[{i}]"))
                ));
            }
        }
    }
    if spec.role.is_some() == spec.instance_profile.is_some() {
        problems.push(format!(
            "{}: set exactly one of role and instanceProfile",
            field("role")
        ));
    }
    for (i, mapping) in spec.block_device_mappings.iter().enumerate() {
        if let Err(p) = volume_size_gib(&mapping.ebs.volume_size) {
            problems.push(format!(
                "{}: {p}",
                field(&format!("blockDeviceMappings[{i}].ebs.volumeSize"))
            ));
        }
        for p in ebs_problems(&mapping.ebs) {
            problems.push(format!("{}.{p}", field(&format!("blockDeviceMappings[{i}].ebs"))));
        }
        if mapping.device_name.is_empty() {
            problems.push(format!(
                "{}: must not be empty",
                field(&format!("blockDeviceMappings[{i}].deviceName"))
            ));
        }
    }
    if let Some(m) = &spec.metadata_options {
        problems.extend(
            metadata_problems(m)
                .into_iter()
                .map(|p| format!("{}.{p}", field("metadataOptions"))),
        );
    }
    problems
}

fn ami_term_problem(term: &AmiSelectorTerm) -> Option<String> {
    let set = [
        term.id.is_some(),
        term.name.is_some(),
        !term.tags.is_empty(),
        term.alias.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Some("set exactly one of id, name, tags and alias".into());
    }
    None
}

fn alias_problem(alias: &str) -> Option<String> {
    let families: Vec<&str> = ALIASES.iter().map(|(f, _)| *f).collect();
    let Some((family, version)) = alias.split_once('@') else {
        return Some(format!("alias {alias:?} is not family@version (e.g. al2023@latest)"));
    };
    if !families.contains(&family) {
        return Some(format!(
            "unknown alias family {family:?} in {alias:?} (expected one of {})",
            families.join(", ")
        ));
    }
    if version.is_empty() {
        return Some(format!("alias {alias:?} has no version (e.g. {family}@latest)"));
    }
    let (valid, form) = if family == "bottlerocket" {
        (is_release_version(version), "vMAJOR.MINOR.PATCH, e.g. v1.26.2")
    } else {
        (is_dated_version(version), "vYYYYMMDD, e.g. v20240807")
    };
    if version != "latest" && !valid {
        return Some(format!(
            "unknown version {version:?} in {alias:?} (expected latest or {form})"
        ));
    }
    None
}

/// `vYYYYMMDD` with a real month and day: the version of an EKS-optimized Amazon Linux image.
fn is_dated_version(version: &str) -> bool {
    let Some(date) = version.strip_prefix('v') else {
        return false;
    };
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| date[range].parse::<u32>().unwrap_or(0);
    number(0..4) >= 2000 && (1..=12).contains(&number(4..6)) && (1..=31).contains(&number(6..8))
}

/// `vMAJOR.MINOR.PATCH`: the version of a Bottlerocket image.
fn is_release_version(version: &str) -> bool {
    let Some(numbers) = version.strip_prefix('v') else {
        return false;
    };
    let parts: Vec<&str> = numbers.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The SSM parameter an alias names for a Kubernetes version and architecture.
pub fn alias_parameter(alias: &str, kubernetes: &str, arch: &str) -> Option<String> {
    let (family, version) = alias.split_once('@')?;
    let (_, template) = ALIASES.iter().find(|(f, _)| *f == family)?;
    let version = if version == "latest" { "recommended" } else { version };
    let arch = match (family, arch) {
        ("al2", "arm64") => "-arm64",
        ("al2", _) => "",
        (_, "arm64") => "arm64",
        _ => "x86_64",
    };
    Some(
        template
            .replace("{k8s}", kubernetes)
            .replace("{arch}", arch)
            .replace("{version}", version),
    )
}

fn metadata_problems(m: &MetadataOptions) -> Vec<String> {
    let mut problems = vec![];
    for (name, value, allowed) in [
        ("httpEndpoint", &m.http_endpoint, ["enabled", "disabled"]),
        ("httpTokens", &m.http_tokens, ["required", "optional"]),
        ("httpProtocolIPv6", &m.http_protocol_ipv6, ["enabled", "disabled"]),
    ] {
        if !allowed.contains(&value.as_str()) {
            problems.push(format!("{name}: {value:?} is not one of {}", allowed.join(", ")));
        }
    }
    if !(1..=64).contains(&m.http_put_response_hop_limit) {
        problems.push(format!(
            "httpPutResponseHopLimit: {} is outside 1 to 64",
            m.http_put_response_hop_limit
        ));
    }
    problems
}

/// EBS volume types.
pub const VOLUME_TYPES: &[&str] = &["gp3", "gp2", "io1", "io2", "st1", "sc1", "standard"];

/// The problems of an EBS mapping's type, IOPS and throughput, each naming its field.
pub fn ebs_problems(ebs: &Ebs) -> Vec<String> {
    let volume_type = ebs.volume_type.as_deref().unwrap_or("gp3");
    if !VOLUME_TYPES.contains(&volume_type) {
        return vec![format!(
            "volumeType: {volume_type:?} is not an EBS volume type (expected one of {})",
            VOLUME_TYPES.join(", ")
        )];
    }
    let mut problems = vec![];
    let iops_range = match volume_type {
        "gp3" => Some(3_000..=80_000),
        "io1" => Some(100..=64_000),
        "io2" => Some(100..=256_000),
        _ => None,
    };
    match (ebs.iops, iops_range) {
        (Some(_), None) => problems.push(format!(
            "iops: {volume_type} volumes take no iops (only gp3, io1 and io2)"
        )),
        (None, Some(_)) if volume_type.starts_with("io") => {
            problems.push(format!("iops: required for {volume_type} volumes"))
        }
        (Some(n), Some(range)) if !range.contains(&n) => problems.push(format!(
            "iops: {n} is outside {} to {} for {volume_type}",
            range.start(),
            range.end()
        )),
        _ => {}
    }
    match (ebs.throughput, volume_type) {
        (Some(t), "gp3") if !(125..=2_000).contains(&t) => {
            problems.push(format!("throughput: {t} MiB/s is outside 125 to 2000 for gp3"))
        }
        (Some(_), other) if other != "gp3" => {
            problems.push(format!("throughput: {other} volumes take no throughput (only gp3)"))
        }
        _ => {}
    }
    problems
}

/// A volume size in whole GiB (`20Gi`, `1Ti`, or a plain number of GiB), 1 to 65,536 GiB;
/// decimal units (`100G`) are refused rather than silently read as GiB.
pub fn volume_size_gib(size: &str) -> Result<i32, String> {
    let digits = size.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = size.split_at(digits);
    let expected = "expected a whole number of GiB (plain, or with Gi or Ti), e.g. 20Gi, between 1Gi and 64Ti";
    let Ok(n) = number.parse::<i64>() else {
        return Err(format!("{size:?} is not a size ({expected})"));
    };
    let gib = match unit {
        "Gi" | "" => n,
        "Ti" => n.saturating_mul(1024),
        _ => return Err(format!("{size:?} has unit {unit:?} ({expected})")),
    };
    if !(1..=65_536).contains(&gib) {
        return Err(format!("{size:?} is {gib} GiB ({expected})"));
    }
    Ok(gib as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> AwsNodeClass {
        let tags: BTreeMap<String, String> = [("purser.dev/discovery".to_string(), "c1".to_string())].into();
        AwsNodeClass {
            ami_selector_terms: vec![AmiSelectorTerm {
                alias: Some("al2023@latest".into()),
                ..Default::default()
            }],
            subnet_selector_terms: vec![SelectorTerm {
                tags: tags.clone(),
                ..Default::default()
            }],
            security_group_selector_terms: vec![SelectorTerm {
                id: Some("sg-1".into()),
                ..Default::default()
            }],
            role: Some("nodes".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_class_has_no_problems() {
        assert_eq!(validate("default", &good()), Vec::<String>::new());
    }

    #[test]
    fn an_unknown_alias_names_the_field_and_the_families() {
        let mut spec = good();
        spec.ami_selector_terms[0].alias = Some("windows@latest".into());
        let problems = validate("gpu", &spec);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0]
                .starts_with("NodeClass gpu: spec.aws.amiSelectorTerms[0].alias: unknown alias family \"windows\""),
            "{problems:?}"
        );
        assert!(problems[0].contains("al2023, al2, bottlerocket"));
    }

    #[test]
    fn an_unknown_alias_version_names_the_field_and_the_expected_form() {
        for bad in [
            "al2023@bogus",
            "al2023@v2024087",
            "al2023@v20241399",
            "al2@20240807",
            "bottlerocket@v1.2",
        ] {
            let mut spec = good();
            spec.ami_selector_terms[0].alias = Some(bad.into());
            let problems = validate("gpu", &spec);
            assert_eq!(problems.len(), 1, "{bad}: {problems:?}");
            assert!(
                problems[0].starts_with("NodeClass gpu: spec.aws.amiSelectorTerms[0].alias: unknown version"),
                "{problems:?}"
            );
            assert!(problems[0].contains("expected latest or v"), "{problems:?}");
        }
        for good_alias in [
            "al2023@latest",
            "al2023@v20240807",
            "al2@v20231230",
            "bottlerocket@v1.26.2",
        ] {
            let mut spec = good();
            spec.ami_selector_terms[0].alias = Some(good_alias.into());
            assert_eq!(validate("gpu", &spec), Vec::<String>::new(), "{good_alias}");
        }
    }

    #[test]
    fn an_invalid_volume_size_is_reported() {
        let mut spec = good();
        spec.block_device_mappings.push(BlockDeviceMapping {
            device_name: "/dev/xvda".into(),
            ebs: Ebs {
                volume_size: "20Mi".into(),
                ..Default::default()
            },
        });
        let problems = validate("default", &spec);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("spec.aws.blockDeviceMappings[0].ebs.volumeSize: \"20Mi\" has unit \"Mi\""));
        assert_eq!(volume_size_gib("1Ti"), Ok(1024));
        assert_eq!(volume_size_gib("100"), Ok(100));
        assert!(volume_size_gib("100G").is_err(), "100G is not 100 GiB");
        assert!(volume_size_gib("1T").is_err());
        assert!(volume_size_gib("0Gi").is_err());
        assert!(volume_size_gib("65Ti").is_err());
    }

    #[test]
    fn volume_types_iops_and_throughput_are_checked() {
        let problems_of = |volume_type: Option<&str>, iops: Option<i32>, throughput: Option<i32>| {
            let mut spec = good();
            spec.block_device_mappings.push(BlockDeviceMapping {
                device_name: "/dev/xvda".into(),
                ebs: Ebs {
                    volume_size: "20Gi".into(),
                    volume_type: volume_type.map(str::to_string),
                    iops,
                    throughput,
                    ..Default::default()
                },
            });
            validate("v", &spec)
        };
        let one = |problems: Vec<String>, text: &str| {
            assert_eq!(problems.len(), 1, "{problems:?}");
            assert!(
                problems[0].starts_with("NodeClass v: spec.aws.blockDeviceMappings[0].ebs.")
                    && problems[0].contains(text),
                "{problems:?}"
            );
        };
        one(
            problems_of(Some("gp4"), None, None),
            "volumeType: \"gp4\" is not an EBS volume type",
        );
        one(
            problems_of(Some("gp2"), Some(3000), None),
            "iops: gp2 volumes take no iops",
        );
        one(problems_of(Some("io2"), None, None), "iops: required for io2");
        one(
            problems_of(None, Some(100), None),
            "iops: 100 is outside 3000 to 80000 for gp3",
        );
        one(
            problems_of(Some("st1"), None, Some(250)),
            "throughput: st1 volumes take no throughput",
        );
        assert_eq!(problems_of(Some("io1"), Some(5000), None), Vec::<String>::new());
        assert_eq!(problems_of(None, Some(6000), Some(500)), Vec::<String>::new());
    }

    #[test]
    fn empty_selectors_and_both_role_and_profile_are_reported() {
        let mut spec = good();
        spec.subnet_selector_terms.clear();
        spec.instance_profile = Some("p".into());
        let problems = validate("x", &spec).join("\n");
        assert!(problems.contains("spec.aws.subnetSelectorTerms: at least one term is required"));
        assert!(problems.contains("spec.aws.role: set exactly one of role and instanceProfile"));
    }

    #[test]
    fn aliases_name_the_eks_ssm_parameters() {
        assert_eq!(
            alias_parameter("al2023@latest", "1.33", "amd64").as_deref(),
            Some("/aws/service/eks/optimized-ami/1.33/amazon-linux-2023/x86_64/standard/recommended/image_id")
        );
        assert_eq!(
            alias_parameter("bottlerocket@latest", "1.33", "arm64").as_deref(),
            Some("/aws/service/bottlerocket/aws-k8s-1.33/arm64/recommended/image_id")
        );
    }

    #[test]
    fn metadata_defaults_to_imdsv2_with_hop_limit_one() {
        let m: MetadataOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(m, MetadataOptions::default());
        assert_eq!(m.http_tokens, "required");
        assert_eq!(m.http_put_response_hop_limit, 1);
    }
}
