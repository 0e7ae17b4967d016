//! The kwok "cloud": one durable record per instance, and the pure rules that turn a launch
//! request into a record.
//!
//! In: launch requests and the catalog. Out: records (kept as JSON, one ConfigMap key per
//! instance) and errors naming the request and the field at fault.

use std::collections::BTreeMap;

use purser_cloudprovider::{CatalogFile, CloudError, Instance, InstanceTypeSpec, LaunchRequest, Taint};
use serde::{Deserialize, Serialize};

/// The provider ID scheme of kwok instances.
pub const PROVIDER_ID_PREFIX: &str = "kwok://";

/// One simulated instance, as stored in the instance ConfigMap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceRecord {
    /// Instance name, also the Node name (the NodeClaim's name).
    pub name: String,
    /// `kwok://<name>`.
    pub provider_id: String,
    /// Instance type launched.
    pub instance_type: String,
    /// Zone it runs in.
    pub zone: String,
    /// `on-demand`, `spot` or `reserved`.
    pub capacity_type: String,
    /// NodeClaim that owns it.
    pub node_claim: String,
    /// NodePool of the claim.
    #[serde(default)]
    pub node_pool: String,
    /// USD per hour of the offering, when the catalog prices it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<f64>,
    /// Launch time, RFC 3339.
    pub launch_time: String,
    /// When the kubelet loop created the Node (RFC 3339); unset until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registered_time: Option<String>,
    /// True once the kubelet loop marked the Node Ready and removed its startup taints.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub initialized: bool,
    /// Node labels: the instance type's, the well-known ones and the request's.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints for the node's whole life.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<Taint>,
    /// Taints removed when the node becomes Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_taints: Vec<Taint>,
    /// Tags from the request.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Node capacity (quantity strings).
    #[serde(default)]
    pub capacity: BTreeMap<String, String>,
    /// Node allocatable (quantity strings).
    #[serde(default)]
    pub allocatable: BTreeMap<String, String>,
}

impl InstanceRecord {
    /// The instance as the CloudProvider trait reports it.
    pub fn instance(&self) -> Instance {
        Instance {
            provider_id: self.provider_id.clone(),
            instance_type: self.instance_type.clone(),
            zone: self.zone.clone(),
            capacity_type: self.capacity_type.clone(),
            node_claim: self.node_claim.clone(),
        }
    }
}

/// The provider ID of an instance name.
pub fn provider_id(name: &str) -> String {
    format!("{PROVIDER_ID_PREFIX}{name}")
}

/// The instance name of a kwok provider ID; `None` for other schemes.
pub fn instance_name(provider_id: &str) -> Option<&str> {
    provider_id.strip_prefix(PROVIDER_ID_PREFIX).filter(|n| !n.is_empty())
}

/// All records, by instance name.
pub type Records = BTreeMap<String, InstanceRecord>;

/// Parse the ConfigMap's data; a bad entry is an error naming the ConfigMap and key.
pub fn parse_records(config_map: &str, data: &BTreeMap<String, String>) -> Result<Records, CloudError> {
    data.iter()
        .map(|(key, json)| {
            serde_json::from_str::<InstanceRecord>(json)
                .map(|r| (key.clone(), r))
                .map_err(|e| {
                    CloudError::Other(format!(
                        "kwok: ConfigMap {config_map}: data.{key}: not an instance record ({e})"
                    ))
                })
        })
        .collect()
}

/// Serialize records back to ConfigMap data.
pub fn records_data(records: &Records) -> BTreeMap<String, String> {
    records
        .iter()
        .filter_map(|(k, r)| serde_json::to_string(r).ok().map(|json| (k.clone(), json)))
        .collect()
}

/// A bad launch request: names the NodeClaim, the field and what was expected.
fn bad_request(request: &LaunchRequest, field: &str, message: &str) -> CloudError {
    let claim = if request.node_claim.is_empty() {
        "(unnamed)"
    } else {
        &request.node_claim
    };
    CloudError::Other(format!(
        "kwok: launch request for NodeClaim {claim}: {field}: {message}"
    ))
}

/// Check the fields every launch needs.
fn check_request(request: &LaunchRequest, catalog: &CatalogFile) -> Result<(), CloudError> {
    if request.node_claim.is_empty() {
        return Err(bad_request(
            request,
            "nodeClaim",
            "missing (the instance is named after it)",
        ));
    }
    if request.instance_types.is_empty() {
        return Err(bad_request(
            request,
            "instanceTypes",
            "empty (expected at least one instance type)",
        ));
    }
    if request.capacity_type.is_empty() {
        return Err(bad_request(
            request,
            "capacityType",
            "missing (expected on-demand, spot or reserved)",
        ));
    }
    for (i, name) in request.instance_types.iter().enumerate() {
        if !catalog.instance_types.iter().any(|t| &t.name == name) {
            return Err(bad_request(
                request,
                &format!("instanceTypes[{i}]"),
                &format!("instance type {name} is not in the kwok catalog"),
            ));
        }
    }
    Ok(())
}

/// The first (instance type, zone, price) in the request's order of preference that the catalog
/// offers with the request's capacity type; an empty zone list allows every zone.
fn choose_offering<'a>(
    request: &LaunchRequest,
    catalog: &'a CatalogFile,
) -> Option<(&'a InstanceTypeSpec, String, Option<f64>)> {
    request.instance_types.iter().find_map(|name| {
        let it = catalog.instance_types.iter().find(|t| &t.name == name)?;
        let offered = |zone: &str| {
            it.offerings
                .iter()
                .find(|o| o.zone == zone && o.capacity_type == request.capacity_type)
        };
        if request.zones.is_empty() {
            let o = it.offerings.iter().find(|o| o.capacity_type == request.capacity_type)?;
            return Some((it, o.zone.clone(), o.price));
        }
        request
            .zones
            .iter()
            .find_map(|z| offered(z).map(|o| (it, z.clone(), o.price)))
    })
}

/// The record for a new launch at `now` (RFC 3339), or why the request cannot be served.
pub fn plan_launch(request: &LaunchRequest, catalog: &CatalogFile, now: &str) -> Result<InstanceRecord, CloudError> {
    check_request(request, catalog)?;
    let Some((it, zone, price)) = choose_offering(request, catalog) else {
        return Err(CloudError::InsufficientCapacity {
            instance_type: request.instance_types.first().cloned().unwrap_or_default(),
            zone: request.zones.first().cloned().unwrap_or_default(),
            capacity_type: request.capacity_type.clone(),
            others: vec![],
        });
    };
    let name = request.node_claim.clone();
    let allocatable = if !request.allocatable.is_empty() {
        request.allocatable.clone()
    } else {
        it.allocatable.clone().unwrap_or_else(|| it.capacity.clone())
    };
    Ok(InstanceRecord {
        provider_id: provider_id(&name),
        labels: node_labels(request, catalog, it, &zone, &name),
        instance_type: it.name.clone(),
        zone,
        capacity_type: request.capacity_type.clone(),
        node_claim: request.node_claim.clone(),
        node_pool: request.node_pool.clone(),
        price,
        launch_time: now.to_string(),
        registered_time: None,
        initialized: false,
        taints: request.taints.clone(),
        startup_taints: request.startup_taints.clone(),
        tags: request.tags.clone(),
        capacity: it.capacity.clone(),
        allocatable,
        name,
    })
}

/// Add the planned record for the claim `name` unless the claim has an instance already, in
/// which case that one is returned (the client-token rule: a retried create launches nothing).
pub fn admit(
    records: &mut Records,
    name: &str,
    planned: &Result<InstanceRecord, CloudError>,
) -> Result<Instance, CloudError> {
    if let Some(existing) = records.get(name) {
        return Ok(existing.instance());
    }
    let new = planned.clone()?;
    let instance = new.instance();
    records.insert(name.to_string(), new);
    Ok(instance)
}

/// Node labels: the instance type's catalog labels, then the well-known ones, then the request's.
fn node_labels(
    request: &LaunchRequest,
    catalog: &CatalogFile,
    it: &InstanceTypeSpec,
    zone: &str,
    name: &str,
) -> BTreeMap<String, String> {
    let mut labels = it.labels.clone();
    labels
        .entry("kubernetes.io/arch".into())
        .or_insert_with(|| "amd64".into());
    labels
        .entry("kubernetes.io/os".into())
        .or_insert_with(|| "linux".into());
    let well_known = [
        ("node.kubernetes.io/instance-type", it.name.as_str()),
        ("topology.kubernetes.io/zone", zone),
        ("purser.dev/capacity-type", request.capacity_type.as_str()),
        ("karpenter.sh/capacity-type", request.capacity_type.as_str()),
        ("kubernetes.io/hostname", name),
    ];
    for (k, v) in well_known {
        labels.insert(k.into(), v.into());
    }
    if !catalog.region.is_empty() {
        labels.insert("topology.kubernetes.io/region".into(), catalog.region.clone());
    }
    if !request.node_pool.is_empty() {
        labels.insert("purser.dev/nodepool".into(), request.node_pool.clone());
    }
    labels.extend(request.labels.clone());
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use purser_cloudprovider::OfferingSpec;

    fn offering(zone: &str, capacity_type: &str, price: f64) -> OfferingSpec {
        OfferingSpec {
            zone: zone.into(),
            capacity_type: capacity_type.into(),
            price: Some(price),
            ..Default::default()
        }
    }

    fn catalog() -> CatalogFile {
        let capacity = BTreeMap::from([("cpu".to_string(), "2".to_string()), ("memory".into(), "8Gi".into())]);
        CatalogFile {
            region: "kwok-1".into(),
            instance_types: vec![
                InstanceTypeSpec {
                    name: "m5.large".into(),
                    capacity: capacity.clone(),
                    labels: BTreeMap::from([("kubernetes.io/arch".to_string(), "arm64".to_string())]),
                    offerings: vec![offering("z1", "on-demand", 0.096), offering("z2", "spot", 0.03)],
                    ..Default::default()
                },
                InstanceTypeSpec {
                    name: "c5.large".into(),
                    capacity,
                    offerings: vec![offering("z1", "spot", 0.02)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn request() -> LaunchRequest {
        LaunchRequest {
            node_claim: "general-abc12".into(),
            node_pool: "general".into(),
            instance_types: vec!["m5.large".into(), "c5.large".into()],
            capacity_type: "spot".into(),
            zones: vec!["z1".into(), "z2".into()],
            labels: BTreeMap::from([("team".to_string(), "ml".to_string())]),
            ..Default::default()
        }
    }

    const NOW: &str = "2026-12-04T03:00:00Z";

    #[test]
    fn first_type_then_first_allowed_zone_with_the_capacity_type() {
        let r = plan_launch(&request(), &catalog(), NOW).unwrap();
        assert_eq!((r.instance_type.as_str(), r.zone.as_str()), ("m5.large", "z2"));
        assert_eq!(r.price, Some(0.03));
        assert_eq!(r.provider_id, "kwok://general-abc12");
        assert_eq!(r.labels["purser.dev/nodepool"], "general");
        assert_eq!(r.labels["karpenter.sh/capacity-type"], "spot");
        assert_eq!(r.labels["kubernetes.io/arch"], "arm64");
        assert_eq!(r.labels["kubernetes.io/hostname"], "general-abc12");
        assert_eq!(r.labels["topology.kubernetes.io/region"], "kwok-1");
        assert_eq!(r.labels["team"], "ml");
        assert_eq!(r.allocatable, r.capacity);
    }

    #[test]
    fn falls_back_to_the_next_type_when_the_zone_has_no_offering() {
        let mut req = request();
        req.zones = vec!["z1".into()];
        let r = plan_launch(&req, &catalog(), NOW).unwrap();
        assert_eq!((r.instance_type.as_str(), r.zone.as_str()), ("c5.large", "z1"));
    }

    #[test]
    fn no_zones_means_any_zone() {
        let mut req = request();
        req.zones.clear();
        req.capacity_type = "on-demand".into();
        assert_eq!(plan_launch(&req, &catalog(), NOW).unwrap().zone, "z1");
    }

    #[test]
    fn request_allocatable_wins() {
        let mut req = request();
        req.allocatable = BTreeMap::from([("cpu".to_string(), "1930m".to_string())]);
        assert_eq!(plan_launch(&req, &catalog(), NOW).unwrap().allocatable["cpu"], "1930m");
    }

    #[test]
    fn no_offering_is_insufficient_capacity() {
        let mut req = request();
        req.capacity_type = "reserved".into();
        let e = plan_launch(&req, &catalog(), NOW).unwrap_err();
        assert!(matches!(e, CloudError::InsufficientCapacity { .. }), "{e}");
    }

    #[test]
    fn unknown_instance_type_is_named() {
        let mut req = request();
        req.instance_types.push("x9.huge".into());
        let e = plan_launch(&req, &catalog(), NOW).unwrap_err().to_string();
        assert!(e.contains("NodeClaim general-abc12"), "{e}");
        assert!(e.contains("instanceTypes[2]"), "{e}");
        assert!(e.contains("x9.huge"), "{e}");
    }

    #[test]
    fn missing_fields_are_named() {
        type Case = (fn(&mut LaunchRequest), &'static str);
        let cases: [Case; 3] = [
            (|r: &mut LaunchRequest| r.node_claim.clear(), "nodeClaim"),
            (|r: &mut LaunchRequest| r.instance_types.clear(), "instanceTypes"),
            (|r: &mut LaunchRequest| r.capacity_type.clear(), "capacityType"),
        ];
        for (change, field) in cases {
            let mut req = request();
            change(&mut req);
            let e = plan_launch(&req, &catalog(), NOW).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn create_is_idempotent_per_claim() {
        let mut records = Records::new();
        let first = plan_launch(&request(), &catalog(), NOW);
        let a = admit(&mut records, "general-abc12", &first).unwrap();
        let mut cheaper = request();
        cheaper.instance_types = vec!["c5.large".into()];
        let retry = plan_launch(&cheaper, &catalog(), "2026-12-04T03:05:00Z");
        let b = admit(&mut records, "general-abc12", &retry).unwrap();
        assert_eq!(a, b);
        assert_eq!(records.len(), 1);
        assert_eq!(records["general-abc12"].launch_time, NOW);
        // Even a request that would now fail returns the instance already launched.
        let failing = Err(CloudError::Other("catalog changed".into()));
        assert_eq!(admit(&mut records, "general-abc12", &failing).unwrap(), a);
        assert!(admit(&mut records, "other", &failing).is_err());
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn records_round_trip_and_bad_entries_are_named() {
        let r = plan_launch(&request(), &catalog(), NOW).unwrap();
        let records = Records::from([(r.name.clone(), r)]);
        let data = records_data(&records);
        assert_eq!(
            parse_records("kube-system/purser-kwok-instances", &data).unwrap(),
            records
        );
        let bad = BTreeMap::from([("n1".to_string(), "{".to_string())]);
        let e = parse_records("kube-system/purser-kwok-instances", &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("data.n1"), "{e}");
    }

    #[test]
    fn provider_ids() {
        assert_eq!(instance_name("kwok://n1"), Some("n1"));
        assert_eq!(instance_name("aws:///z/i-1"), None);
        assert_eq!(instance_name("kwok://"), None);
    }
}
