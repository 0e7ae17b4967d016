//! The live catalog: instance types and zone offerings from EC2 (every 5 minutes), on-demand
//! prices from the Pricing API (every 12 hours), spot prices per zone from the spot price
//! history (with the types).
//!
//! In: the embedded snapshot and what the APIs return. Out: a [`CatalogFile`]. The snapshot
//! serves until the first refresh and whenever an API fails; a type known to the snapshot keeps
//! its capacity and labels (the snapshot knows the EKS reservation), a price the APIs do not
//! give falls back to the snapshot's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_ec2::types::{InstanceTypeInfo, LocationType};
use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, OfferingSpec};

use crate::errors::{AwsError, RetryPolicy, call};

/// How often instance types, offerings and spot prices are read.
pub const TYPES_EVERY: Duration = Duration::from_secs(5 * 60);
/// How often on-demand prices are read.
pub const PRICES_EVERY: Duration = Duration::from_secs(12 * 60 * 60);

/// What EC2 says about types and zones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ec2View {
    /// Specs of the types EC2 describes (used for types the snapshot lacks).
    pub described: BTreeMap<String, InstanceTypeSpec>,
    /// Types that support spot.
    pub spot_capable: BTreeSet<String>,
    /// Zones each type is offered in.
    pub zones: BTreeMap<String, BTreeSet<String>>,
    /// Latest spot price per (type, zone).
    pub spot: BTreeMap<(String, String), f64>,
}

#[derive(Default)]
struct Live {
    ec2: Option<Ec2View>,
    on_demand: BTreeMap<String, f64>,
    types_at: Option<Instant>,
    prices_at: Option<Instant>,
}

/// The snapshot and whatever the APIs said last.
pub struct LiveCatalog {
    snapshot: CatalogFile,
    live: Mutex<Live>,
}

impl LiveCatalog {
    /// A catalog serving `snapshot` until refreshed.
    pub fn new(snapshot: CatalogFile) -> Self {
        LiveCatalog {
            snapshot,
            live: Mutex::default(),
        }
    }

    /// The catalog now.
    pub fn current(&self) -> CatalogFile {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        merge(&self.snapshot, live.ec2.as_ref(), &live.on_demand)
    }

    /// True when the types (or the prices) are due for a refresh.
    pub fn due(&self) -> (bool, bool) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let stale = |at: Option<Instant>, every: Duration| at.is_none_or(|t| t.elapsed() >= every);
        (stale(live.types_at, TYPES_EVERY), stale(live.prices_at, PRICES_EVERY))
    }

    /// Store a fresh EC2 view.
    pub fn set_ec2(&self, view: Ec2View) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.ec2 = Some(view);
        live.types_at = Some(Instant::now());
    }

    /// Store fresh on-demand prices (an empty list is ignored: the API said nothing useful).
    pub fn set_on_demand(&self, prices: BTreeMap<String, f64>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !prices.is_empty() {
            live.on_demand = prices;
        }
        live.prices_at = Some(Instant::now());
    }
}

/// The catalog from the snapshot, EC2's view (when there is one) and on-demand prices.
pub fn merge(snapshot: &CatalogFile, ec2: Option<&Ec2View>, on_demand: &BTreeMap<String, f64>) -> CatalogFile {
    if ec2.is_none() && on_demand.is_empty() {
        return snapshot.clone();
    }
    let mut out = CatalogFile {
        region: snapshot.region.clone(),
        source: format!(
            "{} (live prices and offerings from the AWS APIs where available)",
            snapshot.source
        ),
        reservation: snapshot.reservation,
        instance_types: vec![],
    };
    let Some(ec2) = ec2 else {
        out.instance_types = snapshot.instance_types.iter().map(|t| reprice(t, on_demand)).collect();
        return out;
    };
    for (name, zones) in &ec2.zones {
        let base = snapshot
            .instance_types
            .iter()
            .find(|t| &t.name == name)
            .or_else(|| ec2.described.get(name));
        let Some(base) = base else { continue };
        let offerings = offerings(base, zones, ec2, on_demand);
        if !offerings.is_empty() {
            out.instance_types.push(InstanceTypeSpec {
                offerings,
                ..base.clone()
            });
        }
    }
    out
}

fn reprice(t: &InstanceTypeSpec, on_demand: &BTreeMap<String, f64>) -> InstanceTypeSpec {
    let mut t = t.clone();
    if let Some(price) = on_demand.get(&t.name) {
        for o in t.offerings.iter_mut().filter(|o| o.capacity_type == "on-demand") {
            o.price = Some(*price);
        }
    }
    t
}

fn offerings(
    base: &InstanceTypeSpec,
    zones: &BTreeSet<String>,
    ec2: &Ec2View,
    on_demand: &BTreeMap<String, f64>,
) -> Vec<OfferingSpec> {
    let old = |zone: &str, ct: &str| {
        base.offerings
            .iter()
            .find(|o| o.zone == zone && o.capacity_type == ct)
            .or_else(|| base.offerings.iter().find(|o| o.capacity_type == ct))
    };
    let mut out = vec![];
    for zone in zones {
        let od = on_demand
            .get(&base.name)
            .copied()
            .or_else(|| old(zone, "on-demand").and_then(|o| o.price));
        if let Some(price) = od {
            out.push(OfferingSpec {
                zone: zone.clone(),
                capacity_type: "on-demand".into(),
                price: Some(price),
                ..OfferingSpec::default()
            });
        }
        if !ec2.spot_capable.contains(&base.name) && !ec2.described.is_empty() {
            continue;
        }
        let previous = old(zone, "spot");
        let live = ec2.spot.get(&(base.name.clone(), zone.clone())).copied();
        let price = live.or_else(|| previous.and_then(|o| o.price));
        if let Some(price) = price {
            out.push(OfferingSpec {
                zone: zone.clone(),
                capacity_type: "spot".into(),
                price: Some(price),
                price_estimated: live.is_none() && previous.is_some_and(|o| o.price_estimated),
                interruption_rate: previous.and_then(|o| o.interruption_rate),
            });
        }
    }
    out
}

/// A catalog entry from an EC2 description, for types the snapshot does not know.
pub fn spec_of(info: &InstanceTypeInfo) -> Option<InstanceTypeSpec> {
    let name = info.instance_type()?.as_str().to_string();
    let cpu = info.v_cpu_info().and_then(|v| v.default_v_cpus())?;
    let memory = info.memory_info().and_then(|m| m.size_in_mib())?;
    let arch = match info
        .processor_info()
        .map(|p| p.supported_architectures())
        .and_then(|a| a.first())
        .map(|a| a.as_str())
    {
        Some("arm64") => "arm64",
        _ => "amd64",
    };
    let network = info.network_info();
    let enis = network.and_then(|n| n.maximum_network_interfaces()).unwrap_or(1) as i64;
    let ips = network.and_then(|n| n.ipv4_addresses_per_interface()).unwrap_or(1) as i64;
    let pods = (enis * (ips - 1) + 2).clamp(1, 737);
    let mut capacity = BTreeMap::from([
        ("cpu".to_string(), cpu.to_string()),
        ("memory".to_string(), format!("{memory}Mi")),
        ("pods".to_string(), pods.to_string()),
    ]);
    let gpus: i32 = info
        .gpu_info()
        .map(|g| g.gpus().iter().filter_map(|d| d.count()).sum())
        .unwrap_or(0);
    if gpus > 0 {
        capacity.insert("nvidia.com/gpu".into(), gpus.to_string());
    }
    let (family, size) = name.split_once('.').unwrap_or((name.as_str(), ""));
    let labels = BTreeMap::from([
        ("kubernetes.io/arch".to_string(), arch.to_string()),
        ("kubernetes.io/os".to_string(), "linux".to_string()),
        ("node.kubernetes.io/instance-type".to_string(), name.clone()),
        ("purser.dev/instance-family".to_string(), family.to_string()),
        ("purser.dev/instance-size".to_string(), size.to_string()),
        ("purser.dev/instance-cpu".to_string(), cpu.to_string()),
        ("purser.dev/instance-memory".to_string(), memory.to_string()),
    ]);
    Some(InstanceTypeSpec {
        name,
        capacity,
        allocatable: None,
        labels,
        offerings: vec![],
    })
}

/// Read instance types, zone offerings and spot prices from EC2.
pub async fn read_ec2(ec2: &aws_sdk_ec2::Client, retry: &RetryPolicy) -> Result<Ec2View, AwsError> {
    let mut view = Ec2View::default();
    let mut token: Option<String> = None;
    loop {
        let page = call("DescribeInstanceTypes", retry, || {
            ec2.describe_instance_types()
                .max_results(100)
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        for info in page.instance_types() {
            let Some(spec) = spec_of(info) else { continue };
            if info.supported_usage_classes().iter().any(|c| c.as_str() == "spot") {
                view.spot_capable.insert(spec.name.clone());
            }
            view.described.insert(spec.name.clone(), spec);
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    view.zones = read_offerings(ec2, retry).await?;
    view.spot = read_spot_prices(ec2, retry).await?;
    Ok(view)
}

async fn read_offerings(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
) -> Result<BTreeMap<String, BTreeSet<String>>, AwsError> {
    let mut zones: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut token: Option<String> = None;
    loop {
        let page = call("DescribeInstanceTypeOfferings", retry, || {
            ec2.describe_instance_type_offerings()
                .location_type(LocationType::AvailabilityZone)
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        for o in page.instance_type_offerings() {
            if let (Some(t), Some(zone)) = (o.instance_type(), o.location()) {
                zones
                    .entry(t.as_str().to_string())
                    .or_default()
                    .insert(zone.to_string());
            }
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(zones);
        }
    }
}

async fn read_spot_prices(
    ec2: &aws_sdk_ec2::Client,
    retry: &RetryPolicy,
) -> Result<BTreeMap<(String, String), f64>, AwsError> {
    let mut prices = BTreeMap::new();
    let mut token: Option<String> = None;
    let now = aws_smithy_types::DateTime::from(SystemTime::now());
    loop {
        let page = call("DescribeSpotPriceHistory", retry, || {
            ec2.describe_spot_price_history()
                .product_descriptions("Linux/UNIX")
                .start_time(now)
                .set_next_token(token.clone())
                .send()
        })
        .await?;
        for p in page.spot_price_history() {
            let (Some(t), Some(zone), Some(price)) = (p.instance_type(), p.availability_zone(), p.spot_price()) else {
                continue;
            };
            match price.parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => {
                    prices.entry((t.as_str().to_string(), zone.to_string())).or_insert(v);
                }
                _ => tracing::warn!(
                    instance_type = t.as_str(),
                    zone,
                    price,
                    "skipping an unreadable spot price"
                ),
            }
        }
        token = page.next_token().filter(|t| !t.is_empty()).map(str::to_string);
        if token.is_none() {
            return Ok(prices);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> CatalogFile {
        let offering = |zone: &str, ct: &str, price: f64, estimated: bool| OfferingSpec {
            zone: zone.into(),
            capacity_type: ct.into(),
            price: Some(price),
            price_estimated: estimated,
            interruption_rate: None,
        };
        CatalogFile {
            region: "us-east-1".into(),
            instance_types: vec![InstanceTypeSpec {
                name: "m5.large".into(),
                offerings: vec![
                    offering("a", "on-demand", 0.096, false),
                    offering("a", "spot", 0.04, true),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_snapshot_serves_until_the_first_refresh() {
        let catalog = LiveCatalog::new(snapshot());
        assert_eq!(catalog.current().instance_types, snapshot().instance_types);
        assert_eq!(catalog.due(), (true, true));
    }

    #[test]
    fn live_zones_and_prices_replace_the_snapshots_with_fallbacks() {
        let catalog = LiveCatalog::new(snapshot());
        let view = Ec2View {
            spot_capable: ["m5.large".to_string()].into(),
            zones: [("m5.large".to_string(), ["a".to_string(), "b".to_string()].into())].into(),
            spot: [(("m5.large".to_string(), "b".to_string()), 0.03)].into(),
            described: [("m5.large".to_string(), InstanceTypeSpec::default())].into(),
        };
        catalog.set_ec2(view);
        catalog.set_on_demand([("m5.large".to_string(), 0.1)].into());
        let t = &catalog.current().instance_types[0];
        let find = |z: &str, ct: &str| {
            t.offerings
                .iter()
                .find(|o| o.zone == z && o.capacity_type == ct)
                .unwrap()
        };
        assert_eq!(find("b", "on-demand").price, Some(0.1));
        assert_eq!(find("b", "spot").price, Some(0.03));
        assert!(!find("b", "spot").price_estimated);
        assert_eq!(
            find("a", "spot").price,
            Some(0.04),
            "no live price in zone a: the snapshot's estimate"
        );
        assert!(find("a", "spot").price_estimated);
        assert_eq!(catalog.due(), (false, false));
    }
}
