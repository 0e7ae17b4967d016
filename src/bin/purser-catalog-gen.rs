//! `purser-catalog-gen`: builds the embedded AWS catalog snapshot from EC2 reference data.
//!
//! In: `DIR/aws/instance-types.json.gz` (EC2 DescribeInstanceTypes entries keyed by name),
//! `DIR/aws/offerings-REGION.json.gz` (`[{InstanceType, Location}]`) and
//! `DIR/aws/ondemand-prices-REGION.json` (name → USD/h). Out: a gzip-compressed catalog
//! (`catalog/aws-us-east-1.json.gz` by default), sorted and byte-identical for the same input.
//!
//! Regenerate with:
//! `cargo run --release --bin purser-catalog-gen -- --data ../shared/data --out catalog/aws-us-east-1.json.gz`

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use flate2::read::GzDecoder;
use flate2::{Compression, GzBuilder};
use purser::catalog::Catalog;
use purser::catalog::aws::{self, Ec2Facts, GpuFacts};
use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, OfferingSpec, Reservation};
use serde::Deserialize;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(about = "Generate Purser's embedded AWS instance catalog from EC2 reference data")]
struct Args {
    /// Directory holding `aws/instance-types.json.gz` and the region's offerings and prices.
    #[arg(long, default_value = "../shared/data")]
    data: PathBuf,
    /// Output file (gzip-compressed JSON).
    #[arg(long, default_value = "catalog/aws-us-east-1.json.gz")]
    out: PathBuf,
    /// Region whose offerings and on-demand prices to use.
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

/// One EC2 DescribeInstanceTypes entry (only the fields the catalog needs).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ec2InstanceType {
    #[serde(rename = "VCpuInfo")]
    vcpu_info: VCpuInfo,
    memory_info: MemoryInfo,
    #[serde(default)]
    gpu_info: Option<GpuInfo>,
    #[serde(default)]
    neuron_info: Option<NeuronInfo>,
    #[serde(default)]
    inference_accelerator_info: Option<InferenceAcceleratorInfo>,
    processor_info: ProcessorInfo,
    #[serde(default)]
    network_info: Option<NetworkInfo>,
    #[serde(default)]
    supported_usage_classes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct VCpuInfo {
    default_v_cpus: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MemoryInfo {
    size_in_mi_b: u64,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GpuInfo {
    #[serde(default)]
    gpus: Vec<Gpu>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Gpu {
    #[serde(default)]
    count: u32,
    #[serde(default)]
    manufacturer: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    memory_info: Option<MemoryInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NeuronInfo {
    #[serde(default)]
    neuron_devices: Vec<Device>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InferenceAcceleratorInfo {
    #[serde(default)]
    accelerators: Vec<Device>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Device {
    #[serde(default)]
    count: u32,
    #[serde(default)]
    manufacturer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ProcessorInfo {
    #[serde(default)]
    supported_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkInfo {
    #[serde(default)]
    maximum_network_interfaces: Option<u32>,
    #[serde(default)]
    ipv4_addresses_per_interface: Option<u32>,
    #[serde(default)]
    default_network_card_index: Option<usize>,
    #[serde(default)]
    network_cards: Vec<NetworkCard>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NetworkCard {
    #[serde(default)]
    network_card_index: Option<usize>,
    maximum_network_interfaces: u32,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Ec2Offering {
    instance_type: String,
    location: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let aws_dir = args.data.join("aws");
    let types: BTreeMap<String, Ec2InstanceType> = read_json(&aws_dir.join("instance-types.json.gz"))?;
    let offerings: Vec<Ec2Offering> = read_json(&aws_dir.join(format!("offerings-{}.json.gz", args.region)))?;
    let prices: BTreeMap<String, f64> = read_json(&aws_dir.join(format!("ondemand-prices-{}.json", args.region)))?;

    let mut zones: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for o in &offerings {
        zones
            .entry(o.instance_type.as_str())
            .or_default()
            .insert(o.location.as_str());
    }

    let mut skipped = BTreeMap::<&str, usize>::new();
    let mut specs = Vec::new();
    for (name, info) in &types {
        let Some(&price) = prices.get(name) else {
            *skipped.entry("no on-demand price").or_default() += 1;
            continue;
        };
        let Some(type_zones) = zones.get(name.as_str()) else {
            *skipped.entry("no zone offering").or_default() += 1;
            continue;
        };
        if !price.is_finite() || price <= 0.0 {
            *skipped.entry("non-positive price").or_default() += 1;
            continue;
        }
        let Some(facts) = facts(name, info) else {
            *skipped.entry("architecture not amd64/arm64 (Mac)").or_default() += 1;
            continue;
        };
        specs.push(spec(&facts, price, type_zones));
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));

    let file = CatalogFile {
        region: args.region.clone(),
        source: source_text(&args.region),
        reservation: Reservation::Eks,
        instance_types: specs,
    };
    // The snapshot must load: validate before writing.
    let catalog = Catalog::from_spec(file.clone()).context("generated catalog is invalid")?;

    let mut json = serde_json::to_vec_pretty(&file)?;
    json.push(b'\n');
    let mut encoder = GzBuilder::new().mtime(0).write(Vec::new(), Compression::best());
    encoder.write_all(&json)?;
    let gz = encoder.finish()?;
    if let Some(parent) = args.out.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(&args.out, &gz).with_context(|| format!("writing {}", args.out.display()))?;

    let offerings: usize = catalog.instance_types.iter().map(|it| it.offerings.len()).sum();
    println!(
        "wrote {}: {} instance types, {} offerings, {} bytes ({} bytes of JSON)",
        args.out.display(),
        catalog.instance_types.len(),
        offerings,
        gz.len(),
        json.len()
    );
    for (reason, count) in skipped {
        println!("skipped {count} instance types: {reason}");
    }
    Ok(())
}

fn source_text(region: &str) -> String {
    format!(
        "Generated by purser-catalog-gen from EC2 DescribeInstanceTypes data and {region} \
         zone offerings (moto 5.2.5 resource data, Apache-2.0) and Linux on-demand prices \
         (aws/karpenter-provider-aws static price table, generated 2026-07-20 from the AWS \
         Pricing API, Apache-2.0). Allocatable follows the EKS AMI (reservation: eks). Spot \
         prices and interruption rates are ESTIMATES (a per-family discount off on-demand and \
         an assumed rate per family band, see docs/catalog.md), not market data."
    )
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .with_context(|| format!("decompressing {}", path.display()))?;
        out
    } else {
        raw
    };
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// The catalog facts of one EC2 type; `None` for architectures Kubernetes nodes do not use.
fn facts(name: &str, info: &Ec2InstanceType) -> Option<Ec2Facts> {
    let arch = aws::kube_arch(info.processor_info.supported_architectures.iter().map(String::as_str))?;
    let gpu = info.gpu_info.as_ref().and_then(|g| g.gpus.first()).map(|g| GpuFacts {
        manufacturer: g.manufacturer.clone(),
        name: g.name.clone(),
        count: g.count,
        memory_mib: g.memory_info.as_ref().map_or(0, |m| m.size_in_mi_b),
    });
    let neuron_devices = match &info.neuron_info {
        Some(n) => n.neuron_devices.iter().map(|d| d.count).sum(),
        None => info.inference_accelerator_info.as_ref().map_or(0, |i| {
            i.accelerators
                .iter()
                .filter(|a| a.manufacturer.as_deref() == Some("AWS"))
                .map(|a| a.count)
                .sum()
        }),
    };
    Some(Ec2Facts {
        name: name.to_string(),
        vcpus: info.vcpu_info.default_v_cpus,
        memory_mib: info.memory_info.size_in_mi_b,
        arch: arch.to_string(),
        gpu,
        neuron_devices,
        network: info.network_info.as_ref().and_then(network),
        spot_supported: info.supported_usage_classes.iter().any(|c| c == "spot"),
    })
}

/// ENIs of the default network card (as eni-max-pods.txt counts them) and IPv4 per ENI.
fn network(n: &NetworkInfo) -> Option<(u32, u32)> {
    let ips = n.ipv4_addresses_per_interface?;
    let default_index = n.default_network_card_index.unwrap_or(0);
    let enis = n
        .network_cards
        .iter()
        .enumerate()
        .find(|(i, c)| c.network_card_index.unwrap_or(*i) == default_index)
        .map(|(_, c)| c.maximum_network_interfaces)
        .or(n.maximum_network_interfaces)?;
    Some((enis, ips))
}

fn spec(facts: &Ec2Facts, on_demand: f64, zones: &BTreeSet<&str>) -> InstanceTypeSpec {
    let band = aws::spot_band(&facts.name);
    let mut offerings = Vec::new();
    for zone in zones {
        offerings.push(OfferingSpec {
            zone: (*zone).to_string(),
            capacity_type: "on-demand".to_string(),
            price: Some(on_demand),
            price_estimated: false,
            interruption_rate: None,
        });
        if facts.spot_supported {
            offerings.push(OfferingSpec {
                zone: (*zone).to_string(),
                capacity_type: "spot".to_string(),
                price: Some(aws::estimated_spot_price(&facts.name, on_demand)),
                price_estimated: true,
                interruption_rate: Some(band.interruption_rate),
            });
        }
    }
    InstanceTypeSpec {
        name: facts.name.clone(),
        capacity: facts.capacity(),
        allocatable: None,
        labels: facts.labels(),
        offerings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ec2_entry() {
        let json = r#"{
            "InstanceType": "p4d.24xlarge",
            "VCpuInfo": {"DefaultVCpus": 96},
            "MemoryInfo": {"SizeInMiB": 1179648},
            "GpuInfo": {"Gpus": [{"Count": 8, "Manufacturer": "NVIDIA", "Name": "A100",
                                   "MemoryInfo": {"SizeInMiB": 40960}}]},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "NetworkInfo": {"MaximumNetworkInterfaces": 60, "Ipv4AddressesPerInterface": 50,
                            "DefaultNetworkCardIndex": 0,
                            "NetworkCards": [{"NetworkCardIndex": 0, "MaximumNetworkInterfaces": 15},
                                             {"NetworkCardIndex": 1, "MaximumNetworkInterfaces": 15}]},
            "SupportedUsageClasses": ["on-demand", "spot"]
        }"#;
        let info: Ec2InstanceType = serde_json::from_str(json).unwrap();
        let f = facts("p4d.24xlarge", &info).unwrap();
        assert_eq!(f.network, Some((15, 50)));
        assert_eq!(f.max_pods(), 737);
        let zones: BTreeSet<&str> = ["us-east-1b", "us-east-1a"].into_iter().collect();
        let s = spec(&f, 21.96, &zones);
        assert_eq!(s.capacity["nvidia.com/gpu"], "8");
        assert_eq!(s.labels["purser.dev/instance-gpu-name"], "a100");
        assert_eq!(s.offerings.len(), 4);
        assert_eq!(s.offerings[0].zone, "us-east-1a");
        assert!(s.offerings[1].price_estimated);
        assert_eq!(s.offerings[1].interruption_rate, Some(0.02));
    }

    #[test]
    fn mac_types_are_left_out() {
        let json = r#"{"VCpuInfo": {"DefaultVCpus": 12}, "MemoryInfo": {"SizeInMiB": 32768},
                       "ProcessorInfo": {"SupportedArchitectures": ["arm64_mac"]}}"#;
        let info: Ec2InstanceType = serde_json::from_str(json).unwrap();
        assert!(facts("mac2.metal", &info).is_none());
    }
}
