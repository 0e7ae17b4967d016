//! Why a catalog could not be loaded: each message names the file or the instance type, the
//! field, and what was expected.

use crate::model::quantity::{Quantity, QuantityError};

/// A catalog that could not be read or validated.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file looks gzip-compressed but does not decompress.
    #[error("catalog file {path}: invalid gzip data: {source} (expected JSON or gzip-compressed JSON)")]
    Gzip {
        /// The file.
        path: String,
        /// The decompression error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a catalog in JSON.
    #[error("catalog file {path}: invalid JSON: {source} (expected the format in docs/catalog.md)")]
    Json {
        /// The file.
        path: String,
        /// The parse error, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The file parsed but one of its entries is invalid.
    #[error("catalog file {path}: {source}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: Box<CatalogError>,
    },
    /// The catalog lists no instance types.
    #[error("instanceTypes: the list is empty (expected at least one instance type)")]
    Empty,
    /// An instance type has an empty name.
    #[error("instanceTypes[{index}]: name is empty (expected an instance type name such as m5.large)")]
    EmptyName {
        /// Position in `instanceTypes`.
        index: usize,
    },
    /// Two instance types share a name.
    #[error("instance type {name:?}: name: listed more than once (expected each instance type once)")]
    DuplicateName {
        /// The repeated name.
        name: String,
    },
    /// A resource quantity does not parse.
    #[error("instance type {name:?}: {field}: {source}")]
    Quantity {
        /// Instance type.
        name: String,
        /// Field path, e.g. `capacity.memory`.
        field: String,
        /// The parse error.
        #[source]
        source: QuantityError,
    },
    /// A resource quantity is negative.
    #[error("instance type {name:?}: {field}: {value} is negative (expected zero or more)")]
    NegativeQuantity {
        /// Instance type.
        name: String,
        /// Field path, e.g. `capacity.cpu`.
        field: String,
        /// The value given.
        value: Quantity,
    },
    /// `cpu` or `memory` capacity is missing.
    #[error("instance type {name:?}: capacity.{resource}: missing (expected a quantity such as {example:?})")]
    MissingCapacity {
        /// Instance type.
        name: String,
        /// `cpu` or `memory`.
        resource: String,
        /// An example value.
        example: &'static str,
    },
    /// Explicit allocatable exceeds capacity.
    #[error(
        "instance type {name:?}: allocatable.{resource}: {allocatable} exceeds capacity {capacity} (expected at most the capacity)"
    )]
    AllocatableExceedsCapacity {
        /// Instance type.
        name: String,
        /// Resource name.
        resource: String,
        /// Allocatable given.
        allocatable: Quantity,
        /// Capacity of that resource.
        capacity: Quantity,
    },
    /// An instance type has no offerings.
    #[error(
        "instance type {name:?}: offerings: the list is empty (expected at least one offering with zone, capacityType and price)"
    )]
    NoOfferings {
        /// Instance type.
        name: String,
    },
    /// An offering has no zone.
    #[error(
        "instance type {name:?}: offerings[{index}]: zone is empty (expected an availability zone such as us-east-1a)"
    )]
    EmptyZone {
        /// Instance type.
        name: String,
        /// Position in `offerings`.
        index: usize,
    },
    /// An offering's capacity type is neither `on-demand` nor `spot`.
    #[error(
        "instance type {name:?}: offering {zone}/{capacity_type}: capacityType {capacity_type:?} is unknown (expected on-demand or spot)"
    )]
    UnknownCapacityType {
        /// Instance type.
        name: String,
        /// Zone.
        zone: String,
        /// The value given.
        capacity_type: String,
    },
    /// An offering has no price.
    #[error("instance type {name:?}: offering {zone}/{capacity_type}: price is missing (expected USD per hour)")]
    MissingPrice {
        /// Instance type.
        name: String,
        /// Zone.
        zone: String,
        /// Capacity type.
        capacity_type: String,
    },
    /// An offering's price is negative, infinite or NaN.
    #[error(
        "instance type {name:?}: offering {zone}/{capacity_type}: price {price} is invalid (expected a finite USD per hour of zero or more)"
    )]
    InvalidPrice {
        /// Instance type.
        name: String,
        /// Zone.
        zone: String,
        /// Capacity type.
        capacity_type: String,
        /// The value given.
        price: f64,
    },
    /// An offering's interruption rate is negative, infinite or NaN.
    #[error(
        "instance type {name:?}: offering {zone}/{capacity_type}: interruptionRate {rate} is invalid (expected a finite number of interruptions per hour, zero or more)"
    )]
    InvalidInterruptionRate {
        /// Instance type.
        name: String,
        /// Zone.
        zone: String,
        /// Capacity type.
        capacity_type: String,
        /// The value given.
        rate: f64,
    },
    /// Two offerings share zone and capacity type.
    #[error(
        "instance type {name:?}: offering {zone}/{capacity_type}: listed more than once (expected one price per zone and capacity type)"
    )]
    DuplicateOffering {
        /// Instance type.
        name: String,
        /// Zone.
        zone: String,
        /// Capacity type.
        capacity_type: String,
    },
    /// Two spellings of one label disagree, or the instance-type label disagrees with the name.
    #[error(
        "instance type {name:?}: labels.{key}: {value:?} conflicts with {other_key}={other_value:?} (expected the same value)"
    )]
    LabelConflict {
        /// Instance type.
        name: String,
        /// Label key.
        key: String,
        /// Its value.
        value: String,
        /// The other key (or `name`).
        other_key: String,
        /// The other value.
        other_value: String,
    },
}

impl CatalogError {
    /// A short, stable label for metrics and logs.
    pub fn metric_label(&self) -> &'static str {
        match self {
            CatalogError::Read { .. } => "read",
            CatalogError::Gzip { .. } => "gzip",
            CatalogError::Json { .. } => "json",
            CatalogError::Invalid { source, .. } => source.metric_label(),
            CatalogError::Empty | CatalogError::EmptyName { .. } => "empty",
            CatalogError::DuplicateName { .. } | CatalogError::DuplicateOffering { .. } => "duplicate",
            CatalogError::Quantity { .. }
            | CatalogError::NegativeQuantity { .. }
            | CatalogError::MissingCapacity { .. }
            | CatalogError::AllocatableExceedsCapacity { .. } => "resources",
            CatalogError::NoOfferings { .. }
            | CatalogError::EmptyZone { .. }
            | CatalogError::UnknownCapacityType { .. }
            | CatalogError::MissingPrice { .. }
            | CatalogError::InvalidPrice { .. }
            | CatalogError::InvalidInterruptionRate { .. } => "offering",
            CatalogError::LabelConflict { .. } => "labels",
        }
    }
}
