//! Node allocatable as the EKS-optimised AMI computes it.
//!
//! In: an instance type's capacity (`cpu`, `memory`, `pods`, extended resources). Out: its
//! allocatable, i.e. capacity minus kube-reserved CPU and memory and minus the kubelet's hard
//! memory eviction threshold, with `pods` set to the ENI-limited maximum.
//!
//! The numbers follow the EKS AMI bootstrap script and the VPC CNI's `eni-max-pods.txt`:
//! - kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of cores 3–4 and 0.25% of
//!   every core above four, each band truncated to whole millicores as the script's integer
//!   arithmetic does;
//! - kube-reserved memory: 255Mi + 11Mi per pod the node may run;
//! - eviction threshold: `memory.available<100Mi`;
//! - max pods: `ENIs × (IPv4 addresses per ENI − 1) + 2`, counting the ENIs of the default
//!   network card only (as `eni-max-pods.txt` does for multi-card types such as p5.48xlarge).
//!
//! Ephemeral storage is not modelled: any other resource passes through unchanged.

use crate::model::quantity::Quantity;
use crate::model::resources::{CPU, MEMORY, PODS, Resources};

/// Max pods for an instance type without network information.
pub const DEFAULT_MAX_PODS: i64 = 110;
/// Fixed part of kube-reserved memory, in MiB.
pub const KUBE_RESERVED_MEMORY_BASE_MIB: i64 = 255;
/// kube-reserved memory per pod the node may run, in MiB.
pub const KUBE_RESERVED_MEMORY_PER_POD_MIB: i64 = 11;
/// The kubelet's hard eviction threshold for `memory.available`, in MiB.
pub const EVICTION_HARD_MEMORY_MIB: i64 = 100;

const MIB: i64 = 1 << 20;

/// CPU bands as (start, end) in millicores and the share reserved in basis points (1/100 %).
const CPU_BANDS: [(i64, i64, i64); 4] = [
    (0, 1_000, 600),
    (1_000, 2_000, 100),
    (2_000, 4_000, 50),
    (4_000, i64::MAX, 25),
];

/// Max pods with the VPC CNI in secondary-IP mode: `enis × (ipv4_per_eni − 1) + 2`.
pub fn eni_max_pods(enis: u32, ipv4_per_eni: u32) -> i64 {
    i64::from(enis) * (i64::from(ipv4_per_eni) - 1).max(0) + 2
}

/// Max pods from optional ENI facts `(enis, ipv4_per_eni)`; [`DEFAULT_MAX_PODS`] without them.
pub fn max_pods(network: Option<(u32, u32)>) -> i64 {
    match network {
        Some((enis, ips)) if enis > 0 && ips > 0 => eni_max_pods(enis, ips),
        _ => DEFAULT_MAX_PODS,
    }
}

/// kube-reserved CPU for a node with `cpu` capacity (vCPUs count as cores).
pub fn kube_reserved_cpu(cpu: Quantity) -> Quantity {
    let total = cpu.milli().max(0);
    let reserved: i64 = CPU_BANDS
        .iter()
        .filter(|(start, _, _)| total > *start)
        .map(|&(start, end, basis_points)| (total.min(end) - start) * basis_points / 10_000)
        .sum();
    Quantity::from_milli(reserved)
}

/// kube-reserved memory for a node that may run `max_pods` pods: `255Mi + 11Mi × max_pods`.
pub fn kube_reserved_memory(max_pods: i64) -> Quantity {
    Quantity::from_units((KUBE_RESERVED_MEMORY_BASE_MIB + KUBE_RESERVED_MEMORY_PER_POD_MIB * max_pods.max(0)) * MIB)
}

/// The hard eviction threshold for memory (100Mi).
pub fn eviction_threshold_memory() -> Quantity {
    Quantity::from_units(EVICTION_HARD_MEMORY_MIB * MIB)
}

/// Allocatable from capacity: cpu and memory less the reservations (never below zero),
/// `pods` = capacity `pods` (or [`DEFAULT_MAX_PODS`]), every other resource unchanged.
pub fn allocatable(capacity: &Resources) -> Resources {
    let mut out = capacity.clone();
    let pods = capacity.0.get(PODS).map(|q| q.units()).unwrap_or(DEFAULT_MAX_PODS);
    out.set(PODS, Quantity::from_units(pods));
    if let Some(cpu) = capacity.0.get(CPU) {
        out.set(CPU, non_negative(*cpu - kube_reserved_cpu(*cpu)));
    }
    if let Some(memory) = capacity.0.get(MEMORY) {
        let reserved = kube_reserved_memory(pods) + eviction_threshold_memory();
        out.set(MEMORY, non_negative(*memory - reserved));
    }
    out
}

fn non_negative(q: Quantity) -> Quantity {
    if q < Quantity::ZERO { Quantity::ZERO } else { q }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        s.parse().unwrap()
    }

    #[test]
    fn max_pods_follow_eni_max_pods_txt() {
        // m5.large: 3 ENIs × 10 IPv4 → 29; t3.nano: 2 × 2 → 4.
        assert_eq!(eni_max_pods(3, 10), 29);
        assert_eq!(eni_max_pods(2, 2), 4);
        // m5.24xlarge: 15 × 50 → 737; p5.48xlarge default card: 2 × 50 → 100.
        assert_eq!(eni_max_pods(15, 50), 737);
        assert_eq!(eni_max_pods(2, 50), 100);
        assert_eq!(max_pods(None), 110);
        assert_eq!(max_pods(Some((0, 10))), 110);
        assert_eq!(max_pods(Some((4, 15))), 58);
    }

    #[test]
    fn cpu_reservation_by_band() {
        assert_eq!(kube_reserved_cpu(q("1")), q("60m"));
        assert_eq!(kube_reserved_cpu(q("2")), q("70m"));
        assert_eq!(kube_reserved_cpu(q("4")), q("80m"));
        // 5 cores: 60 + 10 + 10 + 2.5 truncated to 2.
        assert_eq!(kube_reserved_cpu(q("5")), q("82m"));
        // 48 cores: 60 + 10 + 10 + 44 × 2.5 = 190.
        assert_eq!(kube_reserved_cpu(q("48")), q("190m"));
        // 96 cores: 60 + 10 + 10 + 92 × 2.5 = 310.
        assert_eq!(kube_reserved_cpu(q("96")), q("310m"));
        // Half a core: 6% of 500m.
        assert_eq!(kube_reserved_cpu(q("500m")), q("30m"));
        assert_eq!(kube_reserved_cpu(Quantity::ZERO), Quantity::ZERO);
    }

    #[test]
    fn m5_large_worked_example() {
        let capacity = Resources::parse([("cpu", "2"), ("memory", "8192Mi"), ("pods", "29")]).unwrap();
        let alloc = allocatable(&capacity);
        assert_eq!(alloc.get(CPU), q("1930m"));
        // 8192 − (255 + 11 × 29) − 100 = 8192 − 574 − 100 = 7518 Mi.
        assert_eq!(kube_reserved_memory(29), q("574Mi"));
        assert_eq!(alloc.get(MEMORY), q("7518Mi"));
        assert_eq!(alloc.get(PODS), q("29"));
    }

    #[test]
    fn gpu_node_keeps_extended_resources() {
        // g5.12xlarge: 48 vCPU, 192Gi, 15 ENIs × 50 IPv4 → 737 pods, 4 GPUs.
        let capacity = Resources::parse([
            ("cpu", "48"),
            ("memory", "196608Mi"),
            ("pods", "737"),
            ("nvidia.com/gpu", "4"),
        ])
        .unwrap();
        let alloc = allocatable(&capacity);
        assert_eq!(alloc.get(CPU), q("47810m"));
        // 196608 − (255 + 11 × 737) − 100 = 196608 − 8362 − 100 = 188146 Mi.
        assert_eq!(alloc.get(MEMORY), q("188146Mi"));
        assert_eq!(alloc.get("nvidia.com/gpu"), q("4"));
    }

    #[test]
    fn missing_pods_default_and_tiny_nodes_clamp() {
        let capacity = Resources::parse([("cpu", "1"), ("memory", "256Mi")]).unwrap();
        let alloc = allocatable(&capacity);
        assert_eq!(alloc.get(PODS), q("110"));
        assert_eq!(alloc.get(MEMORY), Quantity::ZERO);
        assert_eq!(alloc.get(CPU), q("940m"));
    }
}
