//! Conversion between the wire format (`CatalogFile`) and the validated `Catalog`.
//!
//! In: a `CatalogFile` whose quantities are strings. Out: a `Catalog` with parsed quantities,
//! derived allocatable, completed labels and offerings sorted for determinism; or a
//! `CatalogError` naming the instance type and field at fault.

use std::collections::{BTreeMap, BTreeSet};

use purser_cloudprovider::{CatalogFile, InstanceTypeSpec, OfferingSpec, Reservation};

use super::error::CatalogError;
use super::{CapacityType, Catalog, InstanceType, Offering, aws, eks};
use crate::model::labels;
use crate::model::quantity::Quantity;
use crate::model::resources::{AMD_GPU, CPU, MEMORY, NVIDIA_GPU, PODS, Resources};

const MIB: i128 = 1 << 20;
const NANO: i128 = 1_000_000_000;

impl Catalog {
    /// Validate a wire-format catalog: parse quantities, derive allocatable, complete labels.
    pub fn from_spec(spec: CatalogFile) -> Result<Catalog, CatalogError> {
        if spec.instance_types.is_empty() {
            return Err(CatalogError::Empty);
        }
        let mut seen = BTreeSet::new();
        let mut instance_types = Vec::with_capacity(spec.instance_types.len());
        for (index, it) in spec.instance_types.into_iter().enumerate() {
            if it.name.trim().is_empty() {
                return Err(CatalogError::EmptyName { index });
            }
            if !seen.insert(it.name.clone()) {
                return Err(CatalogError::DuplicateName { name: it.name });
            }
            instance_types.push(instance_type(it, spec.reservation)?);
        }
        instance_types.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Catalog {
            region: spec.region,
            instance_types,
        })
    }

    /// The wire format of this catalog, with allocatable written out explicitly.
    pub fn to_spec(&self) -> CatalogFile {
        CatalogFile {
            region: self.region.clone(),
            source: String::new(),
            reservation: Reservation::Eks,
            instance_types: self
                .instance_types
                .iter()
                .map(|it| InstanceTypeSpec {
                    name: it.name.clone(),
                    capacity: it.capacity.to_strings(),
                    allocatable: Some(it.allocatable.to_strings()),
                    labels: it.labels.clone(),
                    offerings: it
                        .offerings
                        .iter()
                        .map(|o| OfferingSpec {
                            zone: o.zone.clone(),
                            capacity_type: o.capacity_type.as_str().to_string(),
                            price: Some(o.price),
                            price_estimated: o.price_estimated,
                            interruption_rate: o.interruption_rate,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn instance_type(spec: InstanceTypeSpec, reservation: Reservation) -> Result<InstanceType, CatalogError> {
    let name = spec.name;
    let mut capacity = resources(&name, "capacity", &spec.capacity)?;
    for (resource, example) in [(CPU, "4"), (MEMORY, "16Gi")] {
        if !capacity.0.contains_key(resource) {
            return Err(CatalogError::MissingCapacity {
                name,
                resource: resource.to_string(),
                example,
            });
        }
    }
    if !capacity.0.contains_key(PODS) {
        capacity.set(PODS, Quantity::from_units(eks::DEFAULT_MAX_PODS));
    }
    let mut allocatable = match reservation {
        Reservation::Eks => eks::allocatable(&capacity),
        Reservation::None => capacity.clone(),
    };
    if let Some(explicit) = &spec.allocatable {
        let explicit = resources(&name, "allocatable", explicit)?;
        for (resource, q) in explicit.0 {
            let cap = capacity.get(&resource);
            if q > cap {
                return Err(CatalogError::AllocatableExceedsCapacity {
                    name,
                    resource,
                    allocatable: q,
                    capacity: cap,
                });
            }
            allocatable.set(&resource, q);
        }
    }
    let labels = complete_labels(&name, spec.labels, &capacity)?;
    let offerings = offerings(&name, spec.offerings)?;
    Ok(InstanceType {
        name,
        capacity,
        allocatable,
        labels,
        offerings,
    })
}

fn resources(name: &str, section: &str, items: &BTreeMap<String, String>) -> Result<Resources, CatalogError> {
    let mut out = Resources::new();
    for (resource, text) in items {
        let field = format!("{section}.{resource}");
        let q = Quantity::parse(text).map_err(|source| CatalogError::Quantity {
            name: name.to_string(),
            field: field.clone(),
            source,
        })?;
        if q < Quantity::ZERO {
            return Err(CatalogError::NegativeQuantity {
                name: name.to_string(),
                field,
                value: q,
            });
        }
        out.set(resource, q);
    }
    Ok(out)
}

/// Canonical keys from Karpenter spellings, the instance-type label, defaults for os/arch,
/// name- and capacity-derived instance labels where missing, then every alias.
fn complete_labels(
    name: &str,
    given: BTreeMap<String, String>,
    capacity: &Resources,
) -> Result<BTreeMap<String, String>, CatalogError> {
    let mut out = given.clone();
    for (key, value) in &given {
        let canonical = labels::canonical_key(key);
        if canonical == key {
            continue;
        }
        match out.get(canonical) {
            Some(other) if other != value => {
                return Err(CatalogError::LabelConflict {
                    name: name.to_string(),
                    key: key.clone(),
                    value: value.clone(),
                    other_key: canonical.to_string(),
                    other_value: other.clone(),
                });
            }
            Some(_) => {}
            None => {
                out.insert(canonical.to_string(), value.clone());
            }
        }
    }
    match out.get(labels::INSTANCE_TYPE) {
        Some(value) if value != name => {
            return Err(CatalogError::LabelConflict {
                name: name.to_string(),
                key: labels::INSTANCE_TYPE.to_string(),
                value: value.clone(),
                other_key: "name".to_string(),
                other_value: name.to_string(),
            });
        }
        Some(_) => {}
        None => {
            out.insert(labels::INSTANCE_TYPE.to_string(), name.to_string());
        }
    }
    let mut default = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            out.entry(key.to_string()).or_insert(value);
        }
    };
    default(labels::OS, Some("linux".to_string()));
    default(labels::ARCH, Some("amd64".to_string()));
    let parts = aws::parse_name(name);
    default(labels::INSTANCE_FAMILY, parts.family);
    default(labels::INSTANCE_SIZE, parts.size);
    default(labels::INSTANCE_CATEGORY, parts.category);
    default(labels::INSTANCE_GENERATION, parts.generation);
    default(labels::INSTANCE_CPU, whole(capacity.get(CPU), NANO));
    default(labels::INSTANCE_MEMORY, whole(capacity.get(MEMORY), NANO * MIB));
    let gpus = capacity.get(NVIDIA_GPU) + capacity.get(AMD_GPU);
    if !gpus.is_zero() {
        default(labels::INSTANCE_GPU_COUNT, whole(gpus, NANO));
    }
    let keys: Vec<String> = out.keys().cloned().collect();
    for key in keys {
        for alias in labels::aliases(&key) {
            if let Some(value) = out.get(&key).cloned() {
                out.insert((*alias).to_string(), value);
            }
        }
    }
    Ok(out)
}

/// `q` as a whole number of `unit_nanos`, when it is one.
fn whole(q: Quantity, unit_nanos: i128) -> Option<String> {
    let nanos = q.nanos();
    (nanos > 0 && nanos % unit_nanos == 0).then(|| (nanos / unit_nanos).to_string())
}

fn offerings(name: &str, specs: Vec<OfferingSpec>) -> Result<Vec<Offering>, CatalogError> {
    if specs.is_empty() {
        return Err(CatalogError::NoOfferings { name: name.to_string() });
    }
    let mut out: Vec<Offering> = Vec::with_capacity(specs.len());
    let mut seen = BTreeSet::new();
    for (index, o) in specs.into_iter().enumerate() {
        if o.zone.trim().is_empty() {
            return Err(CatalogError::EmptyZone {
                name: name.to_string(),
                index,
            });
        }
        let Some(capacity_type) = CapacityType::parse(&o.capacity_type) else {
            return Err(CatalogError::UnknownCapacityType {
                name: name.to_string(),
                zone: o.zone,
                capacity_type: o.capacity_type,
            });
        };
        let price = match o.price {
            None => {
                return Err(CatalogError::MissingPrice {
                    name: name.to_string(),
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                });
            }
            Some(p) if !p.is_finite() || p < 0.0 => {
                return Err(CatalogError::InvalidPrice {
                    name: name.to_string(),
                    zone: o.zone,
                    capacity_type: o.capacity_type,
                    price: p,
                });
            }
            Some(p) => p,
        };
        if let Some(rate) = o.interruption_rate
            && (!rate.is_finite() || rate < 0.0)
        {
            return Err(CatalogError::InvalidInterruptionRate {
                name: name.to_string(),
                zone: o.zone,
                capacity_type: o.capacity_type,
                rate,
            });
        }
        if !seen.insert((o.zone.clone(), capacity_type)) {
            return Err(CatalogError::DuplicateOffering {
                name: name.to_string(),
                zone: o.zone,
                capacity_type: o.capacity_type,
            });
        }
        out.push(Offering {
            zone: o.zone,
            capacity_type,
            price,
            price_estimated: o.price_estimated,
            interruption_rate: o.interruption_rate,
        });
    }
    out.sort_by(|a, b| (a.zone.as_str(), a.capacity_type).cmp(&(b.zone.as_str(), b.capacity_type)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    fn offering(zone: &str, capacity_type: &str, price: Option<f64>) -> OfferingSpec {
        OfferingSpec {
            zone: zone.to_string(),
            capacity_type: capacity_type.to_string(),
            price,
            price_estimated: false,
            interruption_rate: None,
        }
    }

    fn m5_large() -> InstanceTypeSpec {
        InstanceTypeSpec {
            name: "m5.large".to_string(),
            capacity: [("cpu", "2"), ("memory", "8Gi"), ("pods", "29")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            allocatable: None,
            labels: BTreeMap::new(),
            offerings: vec![
                offering("us-east-1b", "spot", Some(0.04)),
                offering("us-east-1a", "spot", Some(0.035)),
                offering("us-east-1a", "on-demand", Some(0.096)),
            ],
        }
    }

    fn file(types: Vec<InstanceTypeSpec>) -> CatalogFile {
        CatalogFile {
            region: "us-east-1".to_string(),
            source: String::new(),
            reservation: Reservation::Eks,
            instance_types: types,
        }
    }

    fn error(types: Vec<InstanceTypeSpec>) -> String {
        Catalog::from_spec(file(types)).unwrap_err().to_string()
    }

    #[test]
    fn derives_allocatable_labels_and_order() {
        let mut c5 = m5_large();
        c5.name = "c5.large".to_string();
        let catalog = Catalog::from_spec(file(vec![m5_large(), c5])).unwrap();
        let names: Vec<_> = catalog.instance_types.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["c5.large", "m5.large"]);
        let m5 = catalog.find("m5.large").unwrap();
        assert_eq!(m5.allocatable.get(CPU), q("1930m"));
        assert_eq!(m5.allocatable.get(MEMORY), q("7518Mi"));
        assert_eq!(m5.allocatable.get(PODS), q("29"));
        let order: Vec<_> = m5
            .offerings
            .iter()
            .map(|o| (o.zone.as_str(), o.capacity_type))
            .collect();
        assert_eq!(
            order,
            [
                ("us-east-1a", CapacityType::OnDemand),
                ("us-east-1a", CapacityType::Spot),
                ("us-east-1b", CapacityType::Spot),
            ]
        );
        let l = &m5.labels;
        assert_eq!(l[labels::INSTANCE_TYPE], "m5.large");
        assert_eq!(l[labels::OS], "linux");
        assert_eq!(l[labels::ARCH], "amd64");
        assert_eq!(l[labels::INSTANCE_FAMILY], "m5");
        assert_eq!(l["karpenter.k8s.aws/instance-family"], "m5");
        assert_eq!(l[labels::INSTANCE_CATEGORY], "m");
        assert_eq!(l[labels::INSTANCE_GENERATION], "5");
        assert_eq!(l[labels::INSTANCE_SIZE], "large");
        assert_eq!(l[labels::INSTANCE_CPU], "2");
        assert_eq!(l["karpenter.k8s.aws/instance-cpu"], "2");
        assert_eq!(l[labels::INSTANCE_MEMORY], "8192");
        assert!(!l.contains_key(labels::INSTANCE_GPU_COUNT));
        assert!(catalog.find("r5.large").is_none());
    }

    #[test]
    fn explicit_allocatable_overrides_per_resource() {
        let mut it = m5_large();
        it.allocatable = Some(
            [("cpu", "1800m")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let catalog = Catalog::from_spec(file(vec![it])).unwrap();
        let m5 = &catalog.instance_types[0];
        assert_eq!(m5.allocatable.get(CPU), q("1800m"));
        assert_eq!(m5.allocatable.get(MEMORY), q("7518Mi"));
    }

    #[test]
    fn reservation_none_keeps_capacity_and_defaults_pods() {
        let mut it = m5_large();
        it.capacity.remove(PODS);
        let mut spec = file(vec![it]);
        spec.reservation = Reservation::None;
        let catalog = Catalog::from_spec(spec).unwrap();
        let m5 = &catalog.instance_types[0];
        assert_eq!(m5.allocatable, m5.capacity);
        assert_eq!(m5.capacity.get(PODS), q("110"));
    }

    #[test]
    fn karpenter_spellings_become_canonical() {
        let mut it = m5_large();
        it.name = "custom-node".to_string();
        it.labels
            .insert("karpenter.k8s.aws/instance-family".to_string(), "custom".to_string());
        it.labels.insert(labels::ARCH.to_string(), "arm64".to_string());
        let catalog = Catalog::from_spec(file(vec![it])).unwrap();
        let l = &catalog.instance_types[0].labels;
        assert_eq!(l[labels::INSTANCE_FAMILY], "custom");
        assert_eq!(l[labels::ARCH], "arm64");
        assert!(!l.contains_key(labels::INSTANCE_SIZE));
        assert!(!l.contains_key(labels::INSTANCE_CATEGORY));
    }

    #[test]
    fn round_trips_through_the_wire_format() {
        let mut gpu = m5_large();
        gpu.name = "g5.xlarge".to_string();
        gpu.capacity.insert(NVIDIA_GPU.to_string(), "1".to_string());
        gpu.offerings[0].price_estimated = true;
        gpu.offerings[0].interruption_rate = Some(0.01);
        let catalog = Catalog::from_spec(file(vec![m5_large(), gpu])).unwrap();
        assert_eq!(
            catalog.find("g5.xlarge").unwrap().labels[labels::INSTANCE_GPU_COUNT],
            "1"
        );
        let again = Catalog::from_spec(catalog.to_spec()).unwrap();
        assert_eq!(again, catalog);
        let json = serde_json::to_string(&catalog.to_spec()).unwrap();
        let parsed: CatalogFile = serde_json::from_str(&json).unwrap();
        assert_eq!(Catalog::from_spec(parsed).unwrap(), catalog);
    }

    #[test]
    fn malformed_quantity_names_type_and_field() {
        let mut it = m5_large();
        it.name = "x.large".to_string();
        it.capacity.insert("memory".to_string(), "12Q".to_string());
        let e = error(vec![it]);
        assert!(
            e.starts_with("instance type \"x.large\": capacity.memory: invalid quantity \"12Q\""),
            "{e}"
        );
        let mut it = m5_large();
        it.allocatable = Some([("cpu".to_string(), "lots".to_string())].into());
        assert!(error(vec![it]).starts_with("instance type \"m5.large\": allocatable.cpu: invalid quantity"),);
        let mut it = m5_large();
        it.capacity.insert("cpu".to_string(), "-2".to_string());
        assert_eq!(
            error(vec![it]),
            "instance type \"m5.large\": capacity.cpu: -2 is negative (expected zero or more)"
        );
    }

    #[test]
    fn missing_price_names_offering() {
        let mut it = m5_large();
        it.name = "x".to_string();
        it.offerings = vec![offering("us-east-1a", "spot", None)];
        assert_eq!(
            error(vec![it]),
            "instance type \"x\": offering us-east-1a/spot: price is missing (expected USD per hour)"
        );
    }

    #[test]
    fn bad_prices_and_rates() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let mut it = m5_large();
            it.offerings = vec![offering("us-east-1a", "on-demand", Some(bad))];
            let e = error(vec![it]);
            assert!(
                e.starts_with("instance type \"m5.large\": offering us-east-1a/on-demand: price "),
                "{e}"
            );
            assert!(e.contains("expected a finite USD per hour of zero or more"), "{e}");
        }
        let mut it = m5_large();
        it.offerings[0].interruption_rate = Some(-1.0);
        let e = error(vec![it]);
        assert!(
            e.contains("offering us-east-1b/spot: interruptionRate -1 is invalid"),
            "{e}"
        );
    }

    #[test]
    fn unknown_capacity_type() {
        let mut it = m5_large();
        it.offerings = vec![offering("us-east-1a", "reserved", Some(0.05))];
        assert_eq!(
            error(vec![it]),
            "instance type \"m5.large\": offering us-east-1a/reserved: capacityType \"reserved\" \
             is unknown (expected on-demand or spot)"
        );
    }

    #[test]
    fn no_offerings_and_duplicates() {
        let mut it = m5_large();
        it.offerings.clear();
        assert!(error(vec![it]).starts_with("instance type \"m5.large\": offerings: the list is empty"));
        let mut it = m5_large();
        it.offerings.push(offering("us-east-1a", "spot", Some(0.03)));
        assert!(error(vec![it]).contains("offering us-east-1a/spot: listed more than once"));
        let mut it = m5_large();
        it.offerings[1].zone = String::new();
        assert!(error(vec![it]).contains("offerings[1]: zone is empty"));
        assert_eq!(
            error(vec![m5_large(), m5_large()]),
            "instance type \"m5.large\": name: listed more than once (expected each instance type once)"
        );
        assert!(error(vec![]).starts_with("instanceTypes: the list is empty"));
        let mut it = m5_large();
        it.name = " ".to_string();
        assert!(error(vec![it]).starts_with("instanceTypes[0]: name is empty"));
    }

    #[test]
    fn missing_cpu_or_memory() {
        for resource in [CPU, MEMORY] {
            let mut it = m5_large();
            it.capacity.remove(resource);
            let e = error(vec![it]);
            assert!(
                e.starts_with(&format!("instance type \"m5.large\": capacity.{resource}: missing")),
                "{e}"
            );
        }
    }

    #[test]
    fn allocatable_above_capacity_and_label_conflicts() {
        let mut it = m5_large();
        it.allocatable = Some([("memory".to_string(), "9Gi".to_string())].into());
        assert!(
            error(vec![it])
                .starts_with("instance type \"m5.large\": allocatable.memory: 9663676416 exceeds capacity 8589934592")
        );
        let mut it = m5_large();
        it.labels
            .insert(labels::INSTANCE_TYPE.to_string(), "m5.xlarge".to_string());
        assert!(
            error(vec![it])
                .contains("labels.node.kubernetes.io/instance-type: \"m5.xlarge\" conflicts with name=\"m5.large\"")
        );
        let mut it = m5_large();
        it.labels.insert(labels::INSTANCE_FAMILY.to_string(), "m5".to_string());
        it.labels
            .insert("karpenter.k8s.aws/instance-family".to_string(), "m6".to_string());
        assert!(error(vec![it]).contains("labels.karpenter.k8s.aws/instance-family: \"m6\" conflicts"));
    }
}
