//! DaemonSet overhead: what the DaemonSets that would land on a node reserve there.
//!
//! In: the snapshot's DaemonSets and a node's labels and taints. Out: the sum of the template
//! requests (including `pods`) of the DaemonSets that would run on that node.

use std::collections::BTreeMap;

use super::resources::Resources;
use super::snapshot::DaemonSetInfo;
use super::taints::{Taint, first_blocking};

/// True when `daemonset` would run a pod on a node with these labels and taints.
pub fn lands_on(daemonset: &DaemonSetInfo, labels: &BTreeMap<String, String>, taints: &[Taint]) -> bool {
    daemonset.template.accepts_labels(labels) && first_blocking(taints, &daemonset.template.tolerations).is_none()
}

/// The summed template requests of the DaemonSets that would land on a node with these labels and taints.
pub fn daemon_overhead(daemonsets: &[DaemonSetInfo], labels: &BTreeMap<String, String>, taints: &[Taint]) -> Resources {
    let mut total = Resources::new();
    for ds in daemonsets.iter().filter(|ds| lands_on(ds, labels, taints)) {
        total.add(&ds.template.requests);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::pod::PodInfo;
    use crate::model::quantity::Quantity;
    use crate::model::requirements::{Requirement, Requirements};
    use crate::model::resources::{CPU, MEMORY, PODS};
    use crate::model::taints::{Effect, Toleration};

    fn daemonset(name: &str, cpu_milli: i64, mem_mi: i64) -> DaemonSetInfo {
        let requests = Resources::new()
            .with(CPU, Quantity::from_milli(cpu_milli))
            .with(MEMORY, Quantity::from_units(mem_mi << 20))
            .with(PODS, Quantity::from_units(1));
        DaemonSetInfo {
            key: format!("kube-system/{name}"),
            template: PodInfo {
                key: format!("kube-system/{name}"),
                namespace: "kube-system".into(),
                labels: BTreeMap::new(),
                requests,
                node_selector: Requirements::default(),
                node_affinity: Default::default(),
                preferred_node_affinity: vec![],
                tolerations: vec![],
                host_ports: vec![],
                spread: vec![],
                pod_affinity: vec![],
                pod_anti_affinity: vec![],
                preferred_pod_anti_affinity: vec![],
                priority: 0,
                created: 0,
                node_name: None,
                owner_kind: Some("DaemonSet".into()),
                started: None,
                do_not_disrupt: Default::default(),
                mirror: false,
            },
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn gpu_taint() -> Taint {
        Taint {
            key: "nvidia.com/gpu".into(),
            value: "true".into(),
            effect: Effect::NoSchedule,
        }
    }

    #[test]
    fn sums_every_daemonset_that_lands() {
        let proxy = daemonset("kube-proxy", 100, 128);
        let logs = daemonset("fluent-bit", 50, 64);
        let total = daemon_overhead(&[proxy, logs], &labels(&[("kubernetes.io/os", "linux")]), &[]);
        assert_eq!(total.get(CPU), Quantity::from_milli(150));
        assert_eq!(total.get(MEMORY), Quantity::from_units(192 << 20));
        assert_eq!(total.get(PODS), Quantity::from_units(2));
    }

    #[test]
    fn node_selector_excludes() {
        let mut gpu_plugin = daemonset("nvidia-device-plugin", 50, 64);
        gpu_plugin.template.node_selector = Requirements(vec![Requirement::equals(
            "purser.dev/instance-gpu-manufacturer",
            "nvidia",
        )]);
        gpu_plugin.template.tolerations = vec![Toleration {
            key: "nvidia.com/gpu".into(),
            exists: true,
            value: String::new(),
            effect: None,
        }];
        let proxy = daemonset("kube-proxy", 100, 128);
        let all = [gpu_plugin, proxy];

        let cpu_node = daemon_overhead(&all, &labels(&[]), &[]);
        assert_eq!(cpu_node.get(PODS), Quantity::from_units(1));
        assert_eq!(cpu_node.get(CPU), Quantity::from_milli(100));

        let gpu_labels = labels(&[("purser.dev/instance-gpu-manufacturer", "nvidia")]);
        let gpu_node = daemon_overhead(&all, &gpu_labels, &[gpu_taint()]);
        // kube-proxy does not tolerate the GPU taint, the device plugin does.
        assert_eq!(gpu_node.get(PODS), Quantity::from_units(1));
        assert_eq!(gpu_node.get(CPU), Quantity::from_milli(50));
    }

    #[test]
    fn taints_block_unless_tolerated() {
        let mut tolerant = daemonset("node-exporter", 10, 32);
        tolerant.template.tolerations = vec![Toleration {
            key: String::new(),
            exists: true,
            value: String::new(),
            effect: None,
        }];
        let strict = daemonset("strict", 100, 100);
        let total = daemon_overhead(&[tolerant.clone(), strict.clone()], &labels(&[]), &[gpu_taint()]);
        assert_eq!(total.get(CPU), Quantity::from_milli(10));
        assert!(lands_on(&tolerant, &labels(&[]), &[gpu_taint()]));
        assert!(!lands_on(&strict, &labels(&[]), &[gpu_taint()]));
        let soft = Taint {
            effect: Effect::PreferNoSchedule,
            ..gpu_taint()
        };
        assert!(lands_on(&strict, &labels(&[]), &[soft]));
    }

    #[test]
    fn nothing_lands_means_zero() {
        assert_eq!(daemon_overhead(&[], &labels(&[]), &[]), Resources::new());
    }
}
