//! The provisioning loop (`provisioning`): pending pods → one plan → NodeClaims and Events.
//!
//! In: wake-ups when the scheduler marks a pod unschedulable, batched like Karpenter's (the
//! batch closes after 1 s without a new pod or 10 s after the first). Out: NodeClaims for the
//! plan's new nodes (in-flight claims count as capacity, so nothing launches twice), an Event
//! on every pending pod saying which NodeClaim or node it was nominated to and at what price, or
//! why no node can be made for it (the budget, limit or requirement that binds).

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use super::events::{FAILED_SCHEDULING, NOMINATED, pod_ref};
use super::{Context, Error};
use crate::solver::{self, Plan, PlanOptions};

/// When a provisioning batch closes.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// Close after this long without a new trigger.
    pub idle: Duration,
    /// Close at the latest this long after the first trigger.
    pub max: Duration,
}

impl Batch {
    /// Wait for a trigger, then until the batch closes.
    pub async fn wait(&self, notify: &Notify) {
        notify.notified().await;
        let first = tokio::time::Instant::now();
        loop {
            let left = self.max.saturating_sub(first.elapsed());
            if left.is_zero() {
                return;
            }
            let idle = self.idle.min(left);
            if tokio::time::timeout(idle, notify.notified()).await.is_err() {
                return;
            }
        }
    }
}

/// Run the loop until an error ends it.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    let batch = Batch {
        idle: ctx.settings.batch_idle,
        max: ctx.settings.batch_max,
    };
    // Pending pods seen at start-up are a first batch.
    ctx.provision.notify_one();
    let resync = resync(ctx.clone());
    tokio::pin!(resync);
    loop {
        tokio::select! {
            _ = batch.wait(&ctx.provision) => {}
            _ = &mut resync => {}
        }
        let started = Instant::now();
        match provision_once(&ctx).await {
            Ok(Some(outcome)) => tracing::info!(
                claims = outcome.created,
                unschedulable = outcome.plan.unschedulable.len(),
                cost = outcome.plan.hourly_cost,
                seconds = started.elapsed().as_secs_f64(),
                "provisioned"
            ),
            Ok(None) => {}
            Err(e) => {
                ctx.metrics.error("provisioning", &e);
                tracing::error!(error = %e, "provisioning pass failed");
            }
        }
    }
}

/// Wake the loop every 30 s while pods are pending (a failed launch, an expired unavailable
/// offering or a budget that freed up lets them be planned again).
async fn resync(ctx: Arc<Context>) {
    loop {
        tokio::time::sleep(Duration::from_secs(30)).await;
        if ctx
            .cluster
            .pods
            .state()
            .iter()
            .any(|p| super::cluster::is_provisionable(p))
        {
            ctx.provision.notify_one();
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The engine's plan.
    pub plan: Plan,
    /// NodeClaims created.
    pub created: usize,
}

/// One pass: plan the pending pods and create the claims; None when nothing is pending.
pub async fn provision_once(ctx: &Context) -> Result<Option<Outcome>, Error> {
    let closed = Instant::now();
    let built = ctx.snapshot();
    ctx.report_invalid(&built.invalid).await;
    let snapshot = built.snapshot;
    let pending = snapshot.pending().count();
    ctx.metrics.pods_pending.set(pending as i64);
    if pending == 0 {
        return Ok(None);
    }
    let options = PlanOptions {
        strategy: ctx.settings.strategy,
        time_limit: ctx.settings.plan_time_limit,
        spot_rework_hours: ctx.settings.spot_rework_hours,
        unavailable: ctx.unavailable.current(),
    };
    let catalog = ctx.catalog();
    let (plan, snapshot) = tokio::task::spawn_blocking(move || (solver::plan(&snapshot, &catalog, &options), snapshot))
        .await
        .map_err(|e| Error::Other(format!("planner task: {e}")))?;
    ctx.metrics.observe_plan(&plan);
    if let Ok(mut plans) = ctx.plans.lock() {
        if plans.len() >= 16 {
            plans.remove(0);
        }
        plans.push(plan.clone());
    }
    let names = super::claims::create_all(ctx, &snapshot, &plan.node_claims).await;
    let created = names.iter().flatten().count();
    let nominated = names
        .iter()
        .flatten()
        .map(String::as_str)
        .chain(plan.existing_nodes.iter().map(|e| e.node.as_str()));
    ctx.nominated.mark(nominated, nomination_window(ctx));
    ctx.metrics.provisioning_seconds.observe(closed.elapsed().as_secs_f64());
    publish_events(ctx, &plan, &names).await;
    Ok(Some(Outcome { plan, created }))
}

/// How long a node or claim that pods were nominated to stays out of disruption: two batch
/// maxima (Karpenter's window), time for the pods to be bound.
pub fn nomination_window(ctx: &Context) -> Duration {
    ctx.settings.batch_max * 2
}

/// Tell every pending pod where it goes, or why it cannot.
async fn publish_events(ctx: &Context, plan: &Plan, names: &[Option<String>]) {
    let mut notes: Vec<(String, bool, String)> = vec![];
    for (planned, name) in plan.node_claims.iter().zip(names) {
        let Some(name) = name else { continue };
        let estimate = if planned.price_estimated { "~" } else { "" };
        for pod in &planned.pods {
            let note = format!(
                "Pod should schedule on: nodeclaim/{name} ({} {} in {}, {estimate}{:.4} USD/h)",
                planned.instance_type, planned.capacity_type, planned.zone, planned.hourly_price
            );
            notes.push((pod.clone(), true, note));
        }
    }
    for placement in &plan.existing_nodes {
        for pod in &placement.pods {
            notes.push((
                pod.clone(),
                true,
                format!("Pod should schedule on: node/{}", placement.node),
            ));
        }
    }
    for u in &plan.unschedulable {
        notes.push((u.pod.clone(), false, format!("Failed to schedule pod, {}", u.reason)));
    }
    let jobs = notes.into_iter().map(|(pod, ok, note)| async move {
        let regarding = pod_ref(&pod);
        if ok {
            ctx.events.normal(&regarding, NOMINATED, "Provisioning", note).await;
        } else {
            ctx.events
                .warning(&regarding, FAILED_SCHEDULING, "Provisioning", note)
                .await;
        }
    });
    futures::StreamExt::for_each_concurrent(futures::stream::iter(jobs), 32, |job| job).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_batch_closes_after_the_idle_time_or_at_the_maximum() {
        let notify = Arc::new(Notify::new());
        let batch = Batch {
            idle: Duration::from_secs(1),
            max: Duration::from_secs(10),
        };
        notify.notify_one();
        let started = tokio::time::Instant::now();
        batch.wait(&notify).await;
        assert_eq!(started.elapsed().as_secs(), 1, "closes 1 s after the only trigger");

        let feeder = {
            let notify = notify.clone();
            tokio::spawn(async move {
                for _ in 0..30 {
                    notify.notify_one();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            })
        };
        let started = tokio::time::Instant::now();
        batch.wait(&notify).await;
        let waited = started.elapsed();
        feeder.abort();
        assert!(
            waited >= Duration::from_secs(10) && waited < Duration::from_millis(10_600),
            "closes at the maximum: {waited:?}"
        );
    }
}
