//! Well-known node label keys and the Karpenter spellings accepted as aliases.

/// Instance type name.
pub const INSTANCE_TYPE: &str = "node.kubernetes.io/instance-type";
/// Availability zone.
pub const ZONE: &str = "topology.kubernetes.io/zone";
/// Region.
pub const REGION: &str = "topology.kubernetes.io/region";
/// Host name (unknown for nodes not yet launched).
pub const HOSTNAME: &str = "kubernetes.io/hostname";
/// CPU architecture (`amd64`, `arm64`).
pub const ARCH: &str = "kubernetes.io/arch";
/// Operating system.
pub const OS: &str = "kubernetes.io/os";
/// `spot` or `on-demand`.
pub const CAPACITY_TYPE: &str = "purser.dev/capacity-type";
/// The NodePool a node belongs to.
pub const NODEPOOL: &str = "purser.dev/nodepool";
/// Instance family, e.g. `g5`.
pub const INSTANCE_FAMILY: &str = "purser.dev/instance-family";
/// Instance category: the letters before the generation digit (`g`, `inf`).
pub const INSTANCE_CATEGORY: &str = "purser.dev/instance-category";
/// Instance generation, e.g. `5`.
pub const INSTANCE_GENERATION: &str = "purser.dev/instance-generation";
/// Instance size, e.g. `12xlarge`.
pub const INSTANCE_SIZE: &str = "purser.dev/instance-size";
/// vCPUs.
pub const INSTANCE_CPU: &str = "purser.dev/instance-cpu";
/// Memory in MiB.
pub const INSTANCE_MEMORY: &str = "purser.dev/instance-memory";
/// Number of GPUs.
pub const INSTANCE_GPU_COUNT: &str = "purser.dev/instance-gpu-count";
/// GPU model in lower case, e.g. `a10g`.
pub const INSTANCE_GPU_NAME: &str = "purser.dev/instance-gpu-name";
/// GPU manufacturer in lower case, e.g. `nvidia`.
pub const INSTANCE_GPU_MANUFACTURER: &str = "purser.dev/instance-gpu-manufacturer";
/// Memory per GPU in MiB.
pub const INSTANCE_GPU_MEMORY: &str = "purser.dev/instance-gpu-memory";

/// Karpenter's capacity-type label.
pub const KARPENTER_CAPACITY_TYPE: &str = "karpenter.sh/capacity-type";
/// Karpenter's NodePool label.
pub const KARPENTER_NODEPOOL: &str = "karpenter.sh/nodepool";
/// Prefix of Karpenter's AWS instance labels (`karpenter.k8s.aws/instance-*`).
pub const KARPENTER_AWS_PREFIX: &str = "karpenter.k8s.aws/";
/// Prefix of Purser's own instance labels.
pub const PURSER_PREFIX: &str = "purser.dev/";

/// Map a Karpenter spelling to Purser's key; other keys are returned unchanged.
pub fn canonical_key(key: &str) -> &str {
    match key {
        KARPENTER_CAPACITY_TYPE => CAPACITY_TYPE,
        KARPENTER_NODEPOOL => NODEPOOL,
        "karpenter.k8s.aws/instance-family" => INSTANCE_FAMILY,
        "karpenter.k8s.aws/instance-category" => INSTANCE_CATEGORY,
        "karpenter.k8s.aws/instance-generation" => INSTANCE_GENERATION,
        "karpenter.k8s.aws/instance-size" => INSTANCE_SIZE,
        "karpenter.k8s.aws/instance-cpu" => INSTANCE_CPU,
        "karpenter.k8s.aws/instance-memory" => INSTANCE_MEMORY,
        "karpenter.k8s.aws/instance-gpu-count" => INSTANCE_GPU_COUNT,
        "karpenter.k8s.aws/instance-gpu-name" => INSTANCE_GPU_NAME,
        "karpenter.k8s.aws/instance-gpu-manufacturer" => INSTANCE_GPU_MANUFACTURER,
        "karpenter.k8s.aws/instance-gpu-memory" => INSTANCE_GPU_MEMORY,
        "beta.kubernetes.io/instance-type" => INSTANCE_TYPE,
        "failure-domain.beta.kubernetes.io/zone" => ZONE,
        "beta.kubernetes.io/arch" => ARCH,
        "beta.kubernetes.io/os" => OS,
        other => other,
    }
}

/// The alias spellings a node should also carry for `key`, so selectors in either spelling match.
pub fn aliases(key: &str) -> &'static [&'static str] {
    match key {
        CAPACITY_TYPE => &[KARPENTER_CAPACITY_TYPE],
        NODEPOOL => &[KARPENTER_NODEPOOL],
        INSTANCE_FAMILY => &["karpenter.k8s.aws/instance-family"],
        INSTANCE_CATEGORY => &["karpenter.k8s.aws/instance-category"],
        INSTANCE_GENERATION => &["karpenter.k8s.aws/instance-generation"],
        INSTANCE_SIZE => &["karpenter.k8s.aws/instance-size"],
        INSTANCE_CPU => &["karpenter.k8s.aws/instance-cpu"],
        INSTANCE_MEMORY => &["karpenter.k8s.aws/instance-memory"],
        INSTANCE_GPU_COUNT => &["karpenter.k8s.aws/instance-gpu-count"],
        INSTANCE_GPU_NAME => &["karpenter.k8s.aws/instance-gpu-name"],
        INSTANCE_GPU_MANUFACTURER => &["karpenter.k8s.aws/instance-gpu-manufacturer"],
        INSTANCE_GPU_MEMORY => &["karpenter.k8s.aws/instance-gpu-memory"],
        _ => &[],
    }
}

/// Labels that describe the cloud offering rather than the node template; a NodePool
/// requirement on them filters instance types and offerings.
pub fn is_offering_key(key: &str) -> bool {
    let key = canonical_key(key);
    key == INSTANCE_TYPE
        || key == ZONE
        || key == REGION
        || key == ARCH
        || key == OS
        || key == CAPACITY_TYPE
        || key.starts_with("purser.dev/instance-")
}

/// Labels with every aliased key present in both spellings, so selectors written either way match.
pub fn normalize(labels: &std::collections::BTreeMap<String, String>) -> std::collections::BTreeMap<String, String> {
    let mut out = labels.clone();
    for (k, v) in labels {
        let canonical = canonical_key(k);
        out.entry(canonical.to_string()).or_insert_with(|| v.clone());
        for alias in aliases(canonical) {
            out.entry(alias.to_string()).or_insert_with(|| v.clone());
        }
    }
    out
}
