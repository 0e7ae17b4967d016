//! How EC2 instance-type facts become catalog entries: capacity, Karpenter-style labels and
//! estimated spot offerings.
//!
//! In: the few facts of an EC2 `DescribeInstanceTypes` entry Purser needs ([`Ec2Facts`]), and
//! an on-demand price. Out: capacity and labels in the catalog wire format, and a spot
//! estimate (price and interruption rate) when no live spot price is known.
//! `purser-catalog-gen` uses this to build the embedded snapshot.

use std::collections::BTreeMap;

use crate::catalog::eks;
use crate::model::labels;
use crate::model::resources::{AMD_GPU, AWS_NEURON, CPU, MEMORY, NVIDIA_GPU, PODS};

/// The parts of an instance type name, following Karpenter's AWS conventions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameParts {
    /// Family: the part before the dot (`g5` of `g5.12xlarge`).
    pub family: Option<String>,
    /// Size: the part after the dot (`12xlarge`).
    pub size: Option<String>,
    /// Category: the letters before the generation digit (`g`, `inf`, `p`).
    pub category: Option<String>,
    /// Generation: the digits after the category (`5`; `4` for `p4d`; `7` for `m7i-flex`).
    pub generation: Option<String>,
}

/// Split a name the way Karpenter does.
///
/// Family and size come from splitting on the one dot. Category and generation follow
/// Karpenter's pattern `(^[a-z]+)(-[0-9]+tb)?([0-9]+).*\.`; names that do not match it (for
/// example `mac-m4.metal`) get neither.
pub fn parse_name(name: &str) -> NameParts {
    let mut parts = NameParts::default();
    if let Some((family, size)) = name.split_once('.')
        && !family.is_empty()
        && !size.is_empty()
        && !size.contains('.')
    {
        parts.family = Some(family.to_string());
        parts.size = Some(size.to_string());
    }
    if let Some((category, generation)) = category_and_generation(name) {
        parts.category = Some(category.to_string());
        parts.generation = Some(generation.to_string());
    }
    parts
}

fn category_and_generation(name: &str) -> Option<(&str, &str)> {
    let letters = name.bytes().take_while(u8::is_ascii_lowercase).count();
    if letters == 0 {
        return None;
    }
    let (category, rest) = name.split_at(letters);
    // The optional `-<digits>tb` group (u-6tb1) is tried first, then skipped.
    let candidates = [skip_terabyte_group(rest), Some(rest)];
    for rest in candidates.into_iter().flatten() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && rest[digits..].contains('.') {
            return Some((category, &rest[..digits]));
        }
    }
    None
}

fn skip_terabyte_group(rest: &str) -> Option<&str> {
    let after_dash = rest.strip_prefix('-')?;
    let digits = after_dash.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    after_dash[digits..].strip_prefix("tb")
}

/// Karpenter's `lowerKabobCase`: lower case with spaces turned into dashes (`RTX PRO 4500` →
/// `rtx-pro-4500`).
pub fn lower_kebab(text: &str) -> String {
    text.trim().replace(' ', "-").to_lowercase()
}

/// The Kubernetes architecture for an EC2 architecture list (`x86_64` → `amd64`,
/// `arm64` → `arm64`); `None` for Mac (`arm64_mac`, `x86_64_mac`) and unknown ones.
pub fn kube_arch<'a>(ec2_architectures: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let mut found = None;
    for arch in ec2_architectures {
        match arch {
            "x86_64" => return Some("amd64"),
            "arm64" => found = Some("arm64"),
            _ => {}
        }
    }
    found
}

/// The GPUs of an instance type (EC2 `GpuInfo.Gpus[0]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GpuFacts {
    /// Manufacturer as EC2 spells it (`NVIDIA`, `AMD`).
    pub manufacturer: String,
    /// Model as EC2 spells it (`A10G`).
    pub name: String,
    /// Whole GPUs; 0 for fractional-GPU types (g6f), which get no GPU resource.
    pub count: u32,
    /// Memory per GPU (or per GPU slice) in MiB.
    pub memory_mib: u64,
}

/// The facts of one EC2 instance type that the catalog needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ec2Facts {
    /// Instance type name.
    pub name: String,
    /// Default vCPUs.
    pub vcpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Kubernetes architecture (`amd64`, `arm64`).
    pub arch: String,
    /// GPUs, if any.
    pub gpu: Option<GpuFacts>,
    /// AWS Neuron devices (Inferentia, Trainium).
    pub neuron_devices: u32,
    /// `(ENIs on the default network card, IPv4 addresses per ENI)`, when known.
    pub network: Option<(u32, u32)>,
    /// True when EC2 sells the type as spot.
    pub spot_supported: bool,
}

impl Ec2Facts {
    /// Max pods as EKS computes them (ENI-limited, 110 without network facts).
    pub fn max_pods(&self) -> i64 {
        eks::max_pods(self.network)
    }

    /// Capacity in quantity strings: cpu, memory (`<MiB>Mi`), pods and accelerators.
    pub fn capacity(&self) -> BTreeMap<String, String> {
        let mut capacity = BTreeMap::new();
        capacity.insert(CPU.to_string(), self.vcpus.to_string());
        capacity.insert(MEMORY.to_string(), format!("{}Mi", self.memory_mib));
        capacity.insert(PODS.to_string(), self.max_pods().to_string());
        if let Some(gpu) = &self.gpu
            && gpu.count > 0
        {
            let resource = match lower_kebab(&gpu.manufacturer).as_str() {
                "nvidia" => Some(NVIDIA_GPU),
                "amd" => Some(AMD_GPU),
                _ => None,
            };
            if let Some(resource) = resource {
                capacity.insert(resource.to_string(), gpu.count.to_string());
            }
        }
        if self.neuron_devices > 0 {
            capacity.insert(AWS_NEURON.to_string(), self.neuron_devices.to_string());
        }
        capacity
    }

    /// Node labels: arch, os, instance type and the `purser.dev/instance-*` keys.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            out.insert(key.to_string(), value);
        };
        put(labels::ARCH, self.arch.clone());
        put(labels::OS, "linux".to_string());
        put(labels::INSTANCE_TYPE, self.name.clone());
        let parts = parse_name(&self.name);
        if let Some(family) = parts.family {
            put(labels::INSTANCE_FAMILY, family);
        }
        if let Some(size) = parts.size {
            put(labels::INSTANCE_SIZE, size);
        }
        if let Some(category) = parts.category {
            put(labels::INSTANCE_CATEGORY, category);
        }
        if let Some(generation) = parts.generation {
            put(labels::INSTANCE_GENERATION, generation);
        }
        put(labels::INSTANCE_CPU, self.vcpus.to_string());
        put(labels::INSTANCE_MEMORY, self.memory_mib.to_string());
        if let Some(gpu) = &self.gpu {
            put(labels::INSTANCE_GPU_COUNT, gpu.count.to_string());
            put(labels::INSTANCE_GPU_NAME, lower_kebab(&gpu.name));
            put(labels::INSTANCE_GPU_MANUFACTURER, lower_kebab(&gpu.manufacturer));
            put(labels::INSTANCE_GPU_MEMORY, gpu.memory_mib.to_string());
        }
        out
    }
}

/// One row of the spot estimate table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpotBand {
    /// Short name of the band.
    pub band: &'static str,
    /// Which families it covers, for documentation.
    pub covers: &'static str,
    /// Spot price as a fraction of on-demand (0.38 = 62% off).
    pub pay_fraction: f64,
    /// Assumed interruptions per instance-hour.
    pub interruption_rate: f64,
}

/// Families EC2 lists as previous generation (non-accelerated).
const PREVIOUS_GENERATION: &[&str] = &[
    "a1", "c1", "c3", "c4", "d2", "i2", "m1", "m2", "m3", "m4", "r3", "r4", "t1", "t2",
];

/// The spot estimate table, first match wins. These are ASSUMPTIONS, not market data: spot
/// prices are live (EC2 DescribeSpotPriceHistory) and interruption frequencies come from the
/// Spot Instance Advisor; the AWS provider replaces them when it can reach EC2.
pub const SPOT_BANDS: [SpotBand; 6] = [
    SpotBand {
        band: "p-large",
        covers: "p-category generation 4 and later (p4d, p4de, p5, p5e, p5en, p6-*)",
        pay_fraction: 0.60,
        interruption_rate: 0.02,
    },
    SpotBand {
        band: "p-older",
        covers: "p-category generation 3 and earlier (p3, p3dn)",
        pay_fraction: 0.35,
        interruption_rate: 0.02,
    },
    SpotBand {
        band: "g-gpu",
        covers: "g and gr categories (g4dn, g5, g5g, g6, g6e, g6f, gr6, g7, g7e)",
        pay_fraction: 0.40,
        interruption_rate: 0.01,
    },
    SpotBand {
        band: "previous-generation",
        covers: "a1, c1, c3, c4, d2, i2, m1, m2, m3, m4, r3, r4, t1, t2",
        pay_fraction: 0.35,
        interruption_rate: 0.005,
    },
    SpotBand {
        band: "general",
        covers: "general purpose, compute and memory categories (m, c, r, t, x, z)",
        pay_fraction: 0.38,
        interruption_rate: 0.005,
    },
    SpotBand {
        band: "default",
        covers: "everything else (storage i/d/h, hpc, inf, trn, dl, f, vt, u)",
        pay_fraction: 0.40,
        interruption_rate: 0.01,
    },
];

/// The spot estimate band for an instance type name.
pub fn spot_band(name: &str) -> &'static SpotBand {
    let parts = parse_name(name);
    let category = parts.category.as_deref().unwrap_or("");
    let generation: u32 = parts.generation.as_deref().and_then(|g| g.parse().ok()).unwrap_or(0);
    let family = parts.family.as_deref().unwrap_or("");
    let index = match category {
        "p" if generation >= 4 => 0,
        "p" => 1,
        "g" | "gr" => 2,
        _ if PREVIOUS_GENERATION.contains(&family) => 3,
        "m" | "c" | "r" | "t" | "x" | "z" => 4,
        _ => 5,
    };
    &SPOT_BANDS[index]
}

/// Estimated spot price (USD/h, rounded to 6 decimals) from an on-demand price.
pub fn estimated_spot_price(name: &str, on_demand: f64) -> f64 {
    let raw = on_demand * spot_band(name).pay_fraction;
    (raw * 1e6).round() / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(name: &str) -> [Option<String>; 4] {
        let p = parse_name(name);
        [p.family, p.category, p.generation, p.size]
    }

    fn some(values: [&str; 4]) -> [Option<String>; 4] {
        values.map(|v| (!v.is_empty()).then(|| v.to_string()))
    }

    #[test]
    fn name_parts_follow_karpenter() {
        assert_eq!(parts("g5.12xlarge"), some(["g5", "g", "5", "12xlarge"]));
        assert_eq!(parts("inf2.xlarge"), some(["inf2", "inf", "2", "xlarge"]));
        assert_eq!(parts("p4d.24xlarge"), some(["p4d", "p", "4", "24xlarge"]));
        assert_eq!(parts("m7i-flex.large"), some(["m7i-flex", "m", "7", "large"]));
        assert_eq!(parts("u-6tb1.metal"), some(["u-6tb1", "u", "1", "metal"]));
        assert_eq!(parts("u7i-12tb.224xlarge"), some(["u7i-12tb", "u", "7", "224xlarge"]));
        assert_eq!(parts("p6-b200.48xlarge"), some(["p6-b200", "p", "6", "48xlarge"]));
        assert_eq!(parts("c7a.metal-48xl"), some(["c7a", "c", "7", "metal-48xl"]));
        assert_eq!(parts("mac-m4.metal"), some(["mac-m4", "", "", "metal"]));
        assert_eq!(parts("n2-standard-4"), some(["", "", "", ""]));
        assert_eq!(parts("Standard_D4s_v5"), some(["", "", "", ""]));
    }

    fn g5_12xlarge() -> Ec2Facts {
        Ec2Facts {
            name: "g5.12xlarge".into(),
            vcpus: 48,
            memory_mib: 196_608,
            arch: "amd64".into(),
            gpu: Some(GpuFacts {
                manufacturer: "NVIDIA".into(),
                name: "A10G".into(),
                count: 4,
                memory_mib: 22_888,
            }),
            neuron_devices: 0,
            network: Some((15, 50)),
            spot_supported: true,
        }
    }

    #[test]
    fn g5_12xlarge_labels_and_capacity() {
        let facts = g5_12xlarge();
        let l = facts.labels();
        let get = |k: &str| l.get(k).map(String::as_str);
        assert_eq!(get(labels::ARCH), Some("amd64"));
        assert_eq!(get(labels::OS), Some("linux"));
        assert_eq!(get(labels::INSTANCE_TYPE), Some("g5.12xlarge"));
        assert_eq!(get(labels::INSTANCE_FAMILY), Some("g5"));
        assert_eq!(get(labels::INSTANCE_CATEGORY), Some("g"));
        assert_eq!(get(labels::INSTANCE_GENERATION), Some("5"));
        assert_eq!(get(labels::INSTANCE_SIZE), Some("12xlarge"));
        assert_eq!(get(labels::INSTANCE_CPU), Some("48"));
        assert_eq!(get(labels::INSTANCE_MEMORY), Some("196608"));
        assert_eq!(get(labels::INSTANCE_GPU_COUNT), Some("4"));
        assert_eq!(get(labels::INSTANCE_GPU_NAME), Some("a10g"));
        assert_eq!(get(labels::INSTANCE_GPU_MANUFACTURER), Some("nvidia"));
        assert_eq!(get(labels::INSTANCE_GPU_MEMORY), Some("22888"));
        let c = facts.capacity();
        assert_eq!(c.get(NVIDIA_GPU).map(String::as_str), Some("4"));
        assert_eq!(c.get(PODS).map(String::as_str), Some("737"));
        assert_eq!(c.get(MEMORY).map(String::as_str), Some("196608Mi"));
    }

    #[test]
    fn inf2_has_neuron_and_no_gpu_labels() {
        let facts = Ec2Facts {
            name: "inf2.xlarge".into(),
            vcpus: 4,
            memory_mib: 16_384,
            arch: "amd64".into(),
            gpu: None,
            neuron_devices: 1,
            network: Some((4, 15)),
            spot_supported: true,
        };
        let l = facts.labels();
        assert_eq!(l[labels::INSTANCE_CATEGORY], "inf");
        assert_eq!(l[labels::INSTANCE_GENERATION], "2");
        assert!(!l.contains_key(labels::INSTANCE_GPU_COUNT));
        assert!(!l.contains_key(labels::INSTANCE_GPU_NAME));
        let c = facts.capacity();
        assert_eq!(c[AWS_NEURON], "1");
        assert_eq!(c[PODS], "58");
        assert!(!c.contains_key(NVIDIA_GPU));
    }

    #[test]
    fn fractional_gpu_gets_labels_but_no_resource() {
        let facts = Ec2Facts {
            name: "g6f.large".into(),
            gpu: Some(GpuFacts {
                manufacturer: "NVIDIA".into(),
                name: "L4".into(),
                count: 0,
                memory_mib: 2_861,
            }),
            ..g5_12xlarge()
        };
        assert!(!facts.capacity().contains_key(NVIDIA_GPU));
        assert_eq!(facts.labels()[labels::INSTANCE_GPU_COUNT], "0");
        let amd = Ec2Facts {
            gpu: Some(GpuFacts {
                manufacturer: "AMD".into(),
                name: "Radeon Pro V520".into(),
                count: 1,
                memory_mib: 8_192,
            }),
            ..g5_12xlarge()
        };
        assert_eq!(amd.capacity()[AMD_GPU], "1");
        assert_eq!(amd.labels()[labels::INSTANCE_GPU_NAME], "radeon-pro-v520");
    }

    #[test]
    fn architectures() {
        assert_eq!(kube_arch(["x86_64"]), Some("amd64"));
        assert_eq!(kube_arch(["i386", "x86_64"]), Some("amd64"));
        assert_eq!(kube_arch(["arm64"]), Some("arm64"));
        assert_eq!(kube_arch(["arm64_mac"]), None);
    }

    #[test]
    fn spot_bands() {
        assert_eq!(spot_band("m5.large").band, "general");
        assert_eq!(spot_band("m7i-flex.large").band, "general");
        assert_eq!(spot_band("m4.large").band, "previous-generation");
        assert_eq!(spot_band("g5.12xlarge").band, "g-gpu");
        assert_eq!(spot_band("g4dn.xlarge").band, "g-gpu");
        assert_eq!(spot_band("p4d.24xlarge").band, "p-large");
        assert_eq!(spot_band("p6-b200.48xlarge").band, "p-large");
        assert_eq!(spot_band("p3dn.24xlarge").band, "p-older");
        assert_eq!(spot_band("inf2.xlarge").band, "default");
        assert_eq!(estimated_spot_price("m5.large", 0.096), 0.03648);
        assert_eq!(estimated_spot_price("p4d.24xlarge", 10.0), 6.0);
    }
}
