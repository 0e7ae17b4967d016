//! The leaked-instance collector (`nodeclaim.garbagecollection`).
//!
//! In: the cloud's instances (only those it tagged for this cluster: the provider's `list`) and
//! the NodeClaims on the API server (listed fresh, not from the cache, so a lagging watch never
//! makes a live instance look leaked). Out: instances with no claim, once seen leaked for the
//! grace period, terminated. Runs at start-up too, so a crash between launch and status write
//! leaves nothing behind.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use kube::api::Api;
use purser_cloudprovider::CloudError;

use super::{Context, Error};
use crate::api::NodeClaim;

/// Run the collector every `gc_interval`.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    let mut first_seen: HashMap<String, Instant> = HashMap::new();
    loop {
        if let Err(e) = collect_once(&ctx, &mut first_seen).await {
            ctx.metrics.error("gc", &e);
            tracing::warn!(error = %e, "garbage collection pass failed");
        }
        tokio::time::sleep(ctx.settings.gc_interval).await;
    }
}

/// One pass; returns the provider IDs terminated. `first_seen` remembers when each leaked
/// instance was first noticed.
pub async fn collect_once(ctx: &Context, first_seen: &mut HashMap<String, Instant>) -> Result<Vec<String>, Error> {
    let instances = ctx.cloud.list().await?;
    let claims = Api::<NodeClaim>::all(ctx.client.clone())
        .list(&Default::default())
        .await?;
    let names: HashSet<String> = claims.items.iter().filter_map(|c| c.metadata.name.clone()).collect();
    let ids: HashSet<String> = claims
        .items
        .iter()
        .filter_map(|c| c.status.as_ref().and_then(|s| s.provider_id.clone()))
        .collect();
    let leaked: Vec<_> = instances
        .into_iter()
        .filter(|i| !names.contains(&i.node_claim) && !ids.contains(&i.provider_id))
        .collect();
    let live: HashSet<&str> = leaked.iter().map(|i| i.provider_id.as_str()).collect();
    first_seen.retain(|id, _| live.contains(id.as_str()));
    let mut terminated = vec![];
    for instance in &leaked {
        let seen = *first_seen
            .entry(instance.provider_id.clone())
            .or_insert_with(Instant::now);
        if seen.elapsed() < ctx.settings.leak_grace {
            continue;
        }
        tracing::warn!(provider_id = %instance.provider_id, claim = %instance.node_claim, "terminating a leaked instance");
        match ctx.cloud.delete(instance.provider_id.clone()).await {
            Ok(()) | Err(CloudError::NotFound(_)) => terminated.push(instance.provider_id.clone()),
            Err(e) => return Err(e.into()),
        }
        ctx.metrics.leaked.inc();
    }
    Ok(terminated)
}
