//! Workload generation: training and batch arrivals with a diurnal shape, inference load with
//! an HPA-like replica controller and a queueing latency model, and notebooks. Everything is
//! drawn from streams seeded by the run's seed alone, so every policy sees the same arrivals.

use serde_json::{Value, json};

use crate::model::pod::{PodInfo, pod_from_k8s};

use super::rng::Rng;
use super::scenario::{Inference, PodShape, Scenario};
use super::world::{STEP, SimPod, Work, World};

/// Multiplier (mean 1 over a day) for hour-of-day `hour` with the given peak-to-trough ratio;
/// the peak is at 15:00 and the trough at 03:00.
pub fn diurnal(hour: f64, peak_to_trough: f64) -> f64 {
    let a = (peak_to_trough - 1.0) / (peak_to_trough + 1.0);
    1.0 + a * (2.0 * std::f64::consts::PI * (hour - 9.0) / 24.0).sin()
}

/// One expanded inference service.
#[derive(Debug, Clone)]
pub struct Service {
    /// Spec.
    pub spec: Inference,
    /// Pod template.
    pub template: PodInfo,
    /// Load noise stream.
    pub rng: Rng,
    /// Desired replicas of the last five minutes (scale-down stabilisation).
    pub recent: Vec<u32>,
    /// Replicas created so far (for names).
    pub created: u64,
}

/// The workload side of one run.
pub struct Workloads {
    training: Vec<(PodInfo, f64, f64, f64, Rng)>,
    batch: Vec<(PodInfo, u32, f64, f64, Rng)>,
    /// Inference services.
    pub services: Vec<Service>,
    notebooks: Vec<(PodInfo, u32, i64, Option<i64>, bool)>,
    counter: u64,
    start: i64,
}

/// A pod of `shape` as kube would store it, read with the loader's own conversion.
fn template(name: &str, namespace: &str, team: &str, shape: &PodShape, protect: bool) -> PodInfo {
    let mut requests = serde_json::Map::new();
    requests.insert("cpu".into(), json!(shape.cpu));
    requests.insert("memory".into(), json!(shape.memory));
    let mut limits = serde_json::Map::new();
    if shape.gpus > 0 {
        requests.insert(shape.gpu_resource.clone(), json!(shape.gpus.to_string()));
        limits.insert(shape.gpu_resource.clone(), json!(shape.gpus.to_string()));
    }
    let mut selector = serde_json::Map::new();
    for (k, v) in &shape.node_selector {
        selector.insert(k.clone(), json!(v));
    }
    if !shape.spot {
        selector.insert("karpenter.sh/capacity-type".into(), json!("on-demand"));
    }
    let mut annotations = serde_json::Map::new();
    if protect {
        annotations.insert("karpenter.sh/do-not-disrupt".into(), json!("true"));
    }
    let pod: Value = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": namespace,
            "labels": {"team": team, "app": name},
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": name, "controller": true}],
        },
        "spec": {
            "containers": [{"name": "main", "image": "sim", "resources": {"requests": requests, "limits": limits}}],
            "nodeSelector": selector,
            "tolerations": shape.tolerations,
        },
    });
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(pod).expect("the simulator writes valid pods");
    pod_from_k8s(&pod).expect("scenario pods were validated when the scenario loaded")
}

impl Workloads {
    /// The workloads of `scenario`, seeded by `seed`, starting at `start`.
    pub fn new(scenario: &Scenario, seed: u64, start: i64) -> Self {
        let training = scenario
            .training
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    template(&t.name, &t.namespace, &t.team, &t.pod, true),
                    t.jobs_per_day,
                    t.diurnal_peak_to_trough,
                    t.checkpoint_minutes * 60.0,
                    Rng::new(seed, 100 + i as u64),
                )
            })
            .collect();
        let batch = scenario
            .batch
            .iter()
            .enumerate()
            .map(|(i, b)| {
                (
                    template(&b.name, &b.namespace, &b.team, &b.pod, false),
                    b.pods_per_job,
                    b.jobs_per_day,
                    b.duration.median_minutes,
                    Rng::new(seed, 200 + i as u64),
                )
            })
            .collect();
        let mut services = vec![];
        for spec in &scenario.inference {
            for k in 0..spec.count {
                let name = if spec.count > 1 {
                    format!("{}-{k}", spec.name)
                } else {
                    spec.name.clone()
                };
                services.push(Service {
                    template: template(&name, &spec.namespace, &spec.team, &spec.pod, false),
                    spec: spec.clone(),
                    rng: Rng::new(seed, 300 + services.len() as u64),
                    recent: vec![],
                    created: 0,
                });
            }
        }
        let notebooks = scenario
            .notebooks
            .iter()
            .map(|n| {
                let from = start + (n.start_hour * 3600.0) as i64;
                let until = n.hours.map(|h| from + (h * 3600.0) as i64);
                (
                    template(&n.name, &n.namespace, &n.team, &n.pod, false),
                    n.count,
                    from,
                    until,
                    false,
                )
            })
            .collect();
        Workloads {
            training,
            batch,
            services,
            notebooks,
            counter: 0,
            start,
        }
    }

    fn hour(&self, now: i64) -> f64 {
        ((now - self.start) as f64 / 3600.0) % 24.0
    }

    /// Add a pod of `template` doing `work`; `gpu_busy` is the share of time its GPUs are busy.
    fn add(&mut self, world: &mut World, template: &PodInfo, work: Work, remaining: f64, gpu_busy: f64) {
        self.counter += 1;
        let mut info = template.clone();
        let name = format!("{}-{}", info.key, self.counter);
        info.key = name;
        info.created = world.now;
        let gpus = info.requests.accelerators().as_f64();
        let team = info.labels.get("team").cloned().unwrap_or_default();
        world.pods.push(SimPod {
            info,
            work,
            team,
            remaining,
            since_checkpoint: 0.0,
            first_run: None,
            nominated: None,
            gpus,
            gpu_busy,
            done: false,
        });
    }

    /// New training jobs, batch bursts and notebooks for this step.
    pub fn arrivals(&mut self, world: &mut World, scenario: &Scenario) {
        let hour = self.hour(world.now);
        let step_days = STEP as f64 / 86_400.0;
        for i in 0..self.training.len() {
            let (template, per_day, ratio, checkpoint, _) = self.training[i].clone();
            let spec = &scenario.training[i].duration;
            let busy = scenario.training[i].gpu_busy;
            let rng = &mut self.training[i].4;
            let n = rng.poisson(per_day * step_days * diurnal(hour, ratio));
            let durations: Vec<f64> = (0..n)
                .map(|_| spec.median_minutes * 60.0 * rng.lognormal(spec.sigma))
                .collect();
            for d in durations {
                self.add(
                    world,
                    &template,
                    Work::Training { stream: i, checkpoint },
                    d.max(60.0),
                    busy,
                );
            }
        }
        for i in 0..self.batch.len() {
            let (template, pods, per_day, _, _) = self.batch[i].clone();
            let spec = &scenario.batch[i].duration;
            let rng = &mut self.batch[i].4;
            let jobs = rng.poisson(per_day * step_days * diurnal(hour, 2.0));
            let durations: Vec<f64> = (0..jobs * pods)
                .map(|_| spec.median_minutes * 60.0 * rng.lognormal(spec.sigma))
                .collect();
            for d in durations {
                self.add(world, &template, Work::Batch, d.max(60.0), 0.0);
            }
        }
        for i in 0..self.notebooks.len() {
            let (template, count, from, until, started) = self.notebooks[i].clone();
            if !started && world.now >= from {
                self.notebooks[i].4 = true;
                for _ in 0..count {
                    let life = until.map_or(f64::INFINITY, |u| (u - from) as f64);
                    // A forgotten notebook holds its GPU and does nothing with it.
                    self.add(world, &template, Work::Notebook, life, 0.0);
                }
            }
        }
    }

    /// Scale every service to its load; returns, per service, (requests per second, p95 ms).
    pub fn inference(&mut self, world: &mut World) -> Vec<(f64, f64)> {
        let hour = self.hour(world.now);
        let mut out = vec![];
        for s in 0..self.services.len() {
            let svc = &mut self.services[s];
            let spec = &svc.spec;
            let noise = (1.0 + spec.burstiness * svc.rng.normal()).max(0.0);
            let rps = spec.mean_rps * diurnal(hour, spec.diurnal_peak_to_trough) * noise;
            let want = (rps / (spec.replica_rps * spec.target_utilization)).ceil() as u32;
            let want = want.clamp(spec.min_replicas, spec.max_replicas);
            svc.recent.push(want);
            if svc.recent.len() > 5 {
                svc.recent.remove(0);
            }
            let desired = *svc.recent.iter().max().unwrap_or(&want);
            let mine: Vec<usize> = world
                .live_pods()
                .filter(|(_, p)| p.work == Work::Inference { service: s })
                .map(|(i, _)| i)
                .collect();
            // A replica serves from the moment it is bound until it is evicted, also on a node
            // that is to be drained once its replacement is Ready.
            let running = mine.iter().filter(|&&i| world.pods[i].info.node_name.is_some()).count() as f64;
            let template = svc.template.clone();
            let (replica_rps, service_ms) = (spec.replica_rps, spec.service_ms);
            if (mine.len() as u32) < desired {
                for _ in mine.len() as u32..desired {
                    self.services[s].created += 1;
                    self.add(world, &template, Work::Inference { service: s }, f64::INFINITY, 0.0);
                }
            } else {
                let mut excess = mine.len() - desired as usize;
                let mut by_pending = mine.clone();
                by_pending.sort_by_key(|&i| (world.pods[i].info.node_name.is_some(), std::cmp::Reverse(i)));
                for i in by_pending {
                    if excess == 0 {
                        break;
                    }
                    world.remove_pod(i);
                    excess -= 1;
                }
            }
            out.push((rps, p95_ms(rps, running, replica_rps, service_ms)));
        }
        out
    }
}

/// p95 latency of an M/M/1 queue per replica (sojourn time is exponential with rate μ − λ):
/// ln(20) / (μ − λ); infinite when the replicas cannot keep up.
pub fn p95_ms(rps: f64, replicas: f64, replica_rps: f64, service_ms: f64) -> f64 {
    if rps <= 0.0 {
        return service_ms;
    }
    if replicas <= 0.0 {
        return f64::INFINITY;
    }
    let rho = rps / (replicas * replica_rps);
    if rho >= 0.999 {
        return f64::INFINITY;
    }
    service_ms * 20f64.ln() / (1.0 - rho)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diurnal_has_mean_one_and_the_ratio() {
        let xs: Vec<f64> = (0..2400).map(|i| diurnal(i as f64 / 100.0, 3.0)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 1.0).abs() < 1e-3);
        let (lo, hi) = xs.iter().fold((f64::MAX, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
        assert!((hi / lo - 3.0).abs() < 0.01);
    }

    #[test]
    fn latency_grows_with_load() {
        assert!(p95_ms(5.0, 1.0, 10.0, 50.0) < p95_ms(9.0, 1.0, 10.0, 50.0));
        assert!(p95_ms(10.0, 1.0, 10.0, 50.0).is_infinite());
        assert!(p95_ms(1.0, 0.0, 10.0, 50.0).is_infinite());
    }
}
