//! The instance catalog: instance types, their allocatable capacity, labels and priced offerings.
//!
//! In: a `CatalogFile` (the JSON wire format of `purser-cloudprovider`), either the embedded
//! AWS us-east-1 snapshot or a user's file. Out: a validated `Catalog` the planner prices from.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::resources::Resources;

pub mod aws;
pub mod eks;
pub mod error;
pub mod load;
pub mod spec;

pub use error::CatalogError;

/// How an instance is bought.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CapacityType {
    /// On-demand capacity.
    #[serde(rename = "on-demand")]
    OnDemand,
    /// Spot capacity, which the cloud may reclaim.
    #[serde(rename = "spot")]
    Spot,
}

impl CapacityType {
    /// The label value (`on-demand` or `spot`).
    pub fn as_str(self) -> &'static str {
        match self {
            CapacityType::OnDemand => "on-demand",
            CapacityType::Spot => "spot",
        }
    }

    /// Parse a label value.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "on-demand" => Some(CapacityType::OnDemand),
            "spot" => Some(CapacityType::Spot),
            _ => None,
        }
    }
}

impl fmt::Display for CapacityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way to buy an instance type: zone, capacity type and hourly price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Offering {
    /// Availability zone.
    pub zone: String,
    /// On-demand or spot.
    pub capacity_type: CapacityType,
    /// USD per hour.
    pub price: f64,
    /// True when the price is an estimate rather than a quoted price.
    pub price_estimated: bool,
    /// Expected interruptions per hour, when known.
    pub interruption_rate: Option<f64>,
}

/// An instance type with parsed capacity and allocatable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceType {
    /// Name, e.g. `m5.large`.
    pub name: String,
    /// Raw capacity.
    pub capacity: Resources,
    /// What pods can use: capacity minus kube-reserved and the eviction threshold.
    pub allocatable: Resources,
    /// Node labels of this type (well-known keys plus Karpenter aliases).
    pub labels: BTreeMap<String, String>,
    /// Priced offerings.
    pub offerings: Vec<Offering>,
}

/// A validated catalog.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Region the prices apply to.
    pub region: String,
    /// Instance types, sorted by name.
    pub instance_types: Vec<InstanceType>,
}

impl Catalog {
    /// The instance type called `name`.
    pub fn find(&self, name: &str) -> Option<&InstanceType> {
        // Sorted by name after `from_spec`; fall back to a scan for hand-built catalogs.
        match self.instance_types.binary_search_by(|it| it.name.as_str().cmp(name)) {
            Ok(i) => Some(&self.instance_types[i]),
            Err(_) => self.instance_types.iter().find(|it| it.name == name),
        }
    }
}
