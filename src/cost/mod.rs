//! Cost allocation: a node's hourly price split into CPU, memory and GPU parts, and a pod's
//! allocated cost (its requests priced at those unit prices). The rest of a node is idle cost.
//!
//! The split follows OpenCost's method: the node price is divided in proportion to the node's
//! resources weighted by fixed reference prices (OpenCost's defaults: 0.031611 USD per
//! vCPU-hour, 0.004237 USD per GiB-hour of RAM, 0.95 USD per GPU-hour). See
//! docs/cost-allocation.md.

pub mod allocation;
pub mod ledger;
pub mod showback;

use crate::model::resources::Resources;

/// Reference price of one vCPU-hour, used only for the proportions.
pub const CPU_WEIGHT: f64 = 0.031611;
/// Reference price of one GiB-hour of memory, used only for the proportions.
pub const MEMORY_GIB_WEIGHT: f64 = 0.004237;
/// Reference price of one accelerator-hour, used only for the proportions.
pub const GPU_WEIGHT: f64 = 0.95;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// USD per hour for one unit of each resource on one node.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UnitPrices {
    /// USD per vCPU-hour.
    pub cpu: f64,
    /// USD per GiB-hour.
    pub memory_gib: f64,
    /// USD per accelerator-hour.
    pub gpu: f64,
}

impl UnitPrices {
    /// Split `price` over a node with `capacity`.
    pub fn split(price: f64, capacity: &Resources) -> Self {
        let cpu = capacity.get(crate::model::resources::CPU).as_f64();
        let mem = capacity.get(crate::model::resources::MEMORY).as_f64() / GIB;
        let gpu = capacity.accelerators().as_f64();
        let total = cpu * CPU_WEIGHT + mem * MEMORY_GIB_WEIGHT + gpu * GPU_WEIGHT;
        if total <= 0.0 || price <= 0.0 {
            return UnitPrices::default();
        }
        let scale = price / total;
        UnitPrices {
            cpu: CPU_WEIGHT * scale,
            memory_gib: MEMORY_GIB_WEIGHT * scale,
            gpu: GPU_WEIGHT * scale,
        }
    }

    /// The hourly cost allocated to `requests` at these unit prices.
    pub fn allocate(&self, requests: &Resources) -> f64 {
        self.price_of(&CostBasis::of(requests))
    }

    /// The hourly cost allocated to `basis` at these unit prices.
    pub fn price_of(&self, basis: &CostBasis) -> f64 {
        basis.cpu * self.cpu + basis.memory_gib * self.memory_gib + basis.gpu * self.gpu
    }
}

/// The amounts cost allocation prices, read once from a resource list: vCPUs, GiB of memory
/// and accelerators.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CostBasis {
    /// vCPUs.
    pub cpu: f64,
    /// GiB of memory.
    pub memory_gib: f64,
    /// Accelerators of every kind.
    pub gpu: f64,
}

impl CostBasis {
    /// The amounts in `requests`.
    pub fn of(requests: &Resources) -> Self {
        CostBasis {
            cpu: requests.get(crate::model::resources::CPU).as_f64(),
            memory_gib: requests.get(crate::model::resources::MEMORY).as_f64() / GIB,
            gpu: requests.accelerators().as_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_node_is_allocated_its_whole_price() {
        let cap = Resources::parse([("cpu", "48"), ("memory", "192Gi"), ("nvidia.com/gpu", "4")]).unwrap();
        let u = UnitPrices::split(5.672, &cap);
        assert!((u.allocate(&cap) - 5.672).abs() < 1e-9);
        let half = Resources::parse([("cpu", "24"), ("memory", "96Gi"), ("nvidia.com/gpu", "2")]).unwrap();
        assert!((u.allocate(&half) - 2.836).abs() < 1e-9);
    }
}
