//! Case (a): Karpenter's scheduling benchmark setup, rebuilt for Purser.
//!
//! Karpenter's `scheduling_benchmark_test.go` plans synthetic pods against 400 fake instance
//! types (`fake.InstanceTypes(400)`): type i has i+1 vCPU, 2(i+1) GiB and 10(i+1) pods, priced
//! as the fake cloud provider prices (0.1 per vCPU plus 0.1 per 10^9 bytes of memory). The pods
//! are one fifth each of: plain pods, zone topology spread, hostname topology spread, zone
//! self-affinity and hostname anti-affinity, with CPU and memory requests drawn at random from
//! Karpenter's lists and labels from the groups `a`..`g`.
//!
//! Differences from Karpenter, on purpose: the RNG is SplitMix64 (Go's `math/rand` stream is not
//! reproduced), allocatable equals capacity (Karpenter's fake types reserve 100m/10Mi),
//! offerings are on-demand in three zones (Karpenter also lists two spot offerings at the same
//! price), and a spread pod's selector is its own label group (Karpenter draws it separately).

use serde_json::{Value, json};

use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, OfferingSpec, Reservation};

use super::Workload;
use super::objects::{self, PodTemplate, node_pool, pod_object};
use super::rng::SplitMix64;
use crate::catalog::Catalog;
use crate::model::labels::{ARCH, HOSTNAME, OS, ZONE};

/// Instance types in Karpenter's benchmark.
pub const INSTANCE_TYPES: usize = 400;
/// Zones of the synthetic offerings.
pub const ZONES: [&str; 3] = ["test-zone-1", "test-zone-2", "test-zone-3"];
/// CPU requests Karpenter draws from.
pub const CPU_CHOICES: [&str; 5] = ["100m", "250m", "500m", "1", "1500m"];
/// Memory requests Karpenter draws from.
pub const MEMORY_CHOICES: [&str; 6] = ["100Mi", "256Mi", "512Mi", "1Gi", "2Gi", "4Gi"];
/// Label values Karpenter draws from.
pub const LABEL_VALUES: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];
/// Seed of the pod generator (Karpenter seeds its generator with 42 too).
pub const SEED: u64 = 42;

/// Price of a fake instance type, as Karpenter's `fake.PriceFromResources` computes it.
pub fn fake_price(vcpu: u64, memory_bytes: u64) -> f64 {
    0.1 * vcpu as f64 + 0.1 * memory_bytes as f64 / 1e9
}

/// The 400 synthetic instance types, with `Reservation::None` (allocatable = capacity).
pub fn catalog() -> Catalog {
    let instance_types = (0..INSTANCE_TYPES as u64)
        .map(|i| {
            let cpu = i + 1;
            let gib = 2 * (i + 1);
            let price = fake_price(cpu, gib << 30);
            InstanceTypeSpec {
                name: format!("fake-it-{i}"),
                capacity: [
                    ("cpu".to_string(), cpu.to_string()),
                    ("memory".to_string(), format!("{gib}Gi")),
                    ("pods".to_string(), (10 * (i + 1)).to_string()),
                ]
                .into(),
                allocatable: None,
                labels: [
                    (ARCH.to_string(), "amd64".to_string()),
                    (OS.to_string(), "linux".to_string()),
                ]
                .into(),
                offerings: ZONES
                    .iter()
                    .map(|z| OfferingSpec {
                        zone: z.to_string(),
                        capacity_type: "on-demand".into(),
                        price: Some(price),
                        price_estimated: false,
                        interruption_rate: None,
                    })
                    .collect(),
            }
        })
        .collect();
    Catalog::from_spec(CatalogFile {
        region: String::new(),
        source: "Karpenter fake.InstanceTypes(400)".into(),
        reservation: Reservation::None,
        instance_types,
    })
    .expect("the synthetic Karpenter catalog is valid")
}

/// The five pod shapes of Karpenter's `makeDiversePods`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Plain,
    ZoneSpread,
    HostnameSpread,
    ZoneAffinity,
    HostnameAntiAffinity,
}

/// Pod objects for `count` pods: `count / 5` of each constrained shape, the rest plain.
pub fn pods(count: usize) -> impl Iterator<Item = Value> {
    let mut rng = SplitMix64::new(SEED);
    let fifth = count / 5;
    let mut shapes = vec![];
    for shape in [
        Shape::Plain,
        Shape::ZoneSpread,
        Shape::HostnameSpread,
        Shape::ZoneAffinity,
        Shape::HostnameAntiAffinity,
    ] {
        shapes.extend(std::iter::repeat_n(shape, fifth));
    }
    shapes.extend(std::iter::repeat_n(Shape::Plain, count - shapes.len()));
    shapes.into_iter().enumerate().map(move |(i, shape)| {
        let group = *rng.pick(&LABEL_VALUES);
        let cpu = *rng.pick(&CPU_CHOICES);
        let memory = *rng.pick(&MEMORY_CHOICES);
        let mut t = PodTemplate::new("default", &format!("pod-{i:05}"), i);
        t.request("cpu", cpu).request("memory", memory);
        match shape {
            Shape::Plain => {
                t.label("my-label", group);
            }
            Shape::ZoneSpread | Shape::HostnameSpread => {
                let key = if shape == Shape::ZoneSpread { ZONE } else { HOSTNAME };
                t.label("my-label", group).spec(
                    "topologySpreadConstraints",
                    json!([{
                        "maxSkew": 1,
                        "topologyKey": key,
                        "whenUnsatisfiable": "DoNotSchedule",
                        "labelSelector": {"matchLabels": {"my-label": group}},
                    }]),
                );
            }
            Shape::ZoneAffinity => {
                t.label("my-affinity", group).spec(
                    "affinity",
                    json!({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": {"my-affinity": group}},
                        "topologyKey": ZONE,
                    }]}}),
                );
            }
            Shape::HostnameAntiAffinity => {
                t.label("app", "nginx").spec(
                    "affinity",
                    json!({"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": {"app": "nginx"}},
                        "topologyKey": HOSTNAME,
                    }]}}),
                );
            }
        }
        pod_object(&t)
    })
}

/// The whole case: one NodePool without requirements, `count` pods, the synthetic catalog.
pub fn workload(count: usize) -> Result<Workload, String> {
    let catalog = catalog();
    let pool = node_pool("default", json!({"template": {"spec": {}}}));
    let snapshot = objects::snapshot(&[pool], pods(count), &catalog)?;
    Ok(Workload {
        name: format!("karpenter-{count}"),
        snapshot,
        catalog,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_matches_karpenter_fake_types() {
        let c = catalog();
        assert_eq!(c.instance_types.len(), INSTANCE_TYPES);
        let it = c.find("fake-it-3").unwrap();
        assert_eq!(it.capacity.get("cpu").units(), 4);
        assert_eq!(it.allocatable.get("memory").units(), 8 << 30);
        assert_eq!(it.allocatable.get("pods").units(), 40);
        assert_eq!(it.offerings.len(), 3);
        let expected = 0.4 + 0.1 * (8u64 << 30) as f64 / 1e9;
        assert!((it.offerings[0].price - expected).abs() < 1e-12);
    }

    #[test]
    fn generated_pods_load_like_kubectl_output() {
        let catalog = catalog();
        let pool = node_pool("default", json!({"template": {"spec": {}}}));
        let mut objects = vec![pool.clone()];
        objects.extend(pods(50));
        let loaded = crate::model::load::snapshot_from_objects(&objects, &catalog).unwrap();
        assert_eq!(loaded.snapshot, workload(50).unwrap().snapshot);
    }

    #[test]
    fn pods_are_deterministic_and_split_in_fifths() {
        let a = workload(1003).unwrap();
        let b = workload(1003).unwrap();
        assert_eq!(a.snapshot, b.snapshot);
        let pods = &a.snapshot.pods;
        assert_eq!(pods.len(), 1003);
        assert_eq!(pods.iter().filter(|p| !p.spread.is_empty()).count(), 400);
        assert_eq!(pods.iter().filter(|p| !p.pod_affinity.is_empty()).count(), 200);
        assert_eq!(pods.iter().filter(|p| !p.pod_anti_affinity.is_empty()).count(), 200);
    }
}
