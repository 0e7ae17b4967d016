//! The catalog refresh loop (`catalog.refresh`): the cloud's live instance types and prices
//! become the planner's catalog.
//!
//! In: [`CloudProvider::instance_types`](purser_cloudprovider::CloudProvider::instance_types)
//! every `catalog_refresh`. Out: the context's catalog, replaced when the cloud's loads and
//! differs; a catalog that does not load is logged and the previous one kept.

use std::sync::Arc;

use super::{Context, Error};
use crate::catalog::Catalog;

/// Run the loop; a zero interval turns it off.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    if ctx.settings.catalog_refresh.is_zero() {
        futures::future::pending::<()>().await;
    }
    let mut last = None;
    loop {
        if let Err(e) = refresh_once(&ctx, &mut last).await {
            ctx.metrics.error("catalog.refresh", &e);
            tracing::warn!(error = %e, "catalog refresh failed; keeping the previous catalog");
        }
        tokio::time::sleep(ctx.settings.catalog_refresh).await;
    }
}

/// Read the cloud's catalog and use it when it changed since `last`; true when replaced.
pub async fn refresh_once(ctx: &Context, last: &mut Option<purser_cloudprovider::CatalogFile>) -> Result<bool, Error> {
    let spec = ctx.cloud.instance_types().await?;
    if last.as_ref() == Some(&spec) {
        return Ok(false);
    }
    let catalog = Catalog::from_spec(spec.clone()).map_err(|e| Error::Other(format!("the cloud's catalog: {e}")))?;
    tracing::info!(
        instance_types = spec.instance_types.len(),
        "catalog updated from the cloud"
    );
    ctx.set_catalog(catalog);
    *last = Some(spec);
    Ok(true)
}
