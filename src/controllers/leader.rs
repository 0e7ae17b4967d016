//! Leader election on a coordination.k8s.io Lease (kube-lease-manager).
//!
//! In: the Lease name, namespace, this replica's identity and the lease duration. Out: a
//! [`Lead`] once this replica holds the Lease; [`Lead::lost`] resolves if it stops holding it,
//! and the process then ends (a restarted process rebuilds its state from the API server and
//! the cloud, never from memory). With two replicas, one acts; when it stops renewing, the
//! other takes over within one lease duration.

use std::sync::Arc;
use std::time::Duration;

use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};

use super::{Context, Error};

/// Holding the Lease.
pub struct Lead {
    manager: Option<Arc<LeaseManager>>,
    lease: String,
}

/// Wait until this replica holds the Lease (at once when leader election is off).
pub async fn acquire(ctx: &Context) -> Result<Lead, Error> {
    let s = &ctx.settings;
    if !s.leader_elect {
        return Ok(Lead {
            manager: None,
            lease: String::new(),
        });
    }
    let duration = s.lease_duration.as_secs().max(2);
    let manager = LeaseManagerBuilder::new(ctx.client.clone(), &s.lease_name)
        .with_namespace(&s.lease_namespace)
        .with_identity(&s.identity)
        .with_duration(duration)
        .with_grace((duration / 3).max(1))
        .with_field_manager(format!("{}-{}", super::MANAGER, s.identity))
        .build()
        .await
        .map_err(|e| {
            Error::Other(format!(
                "leader election on Lease {}/{}: {e}",
                s.lease_namespace, s.lease_name
            ))
        })?;
    let manager = Arc::new(manager);
    loop {
        match manager.changed().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "leader election failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
    Ok(Lead {
        manager: Some(manager),
        lease: format!("{}/{}", s.lease_namespace, s.lease_name),
    })
}

impl Lead {
    /// Keep renewing the Lease; resolves with an error when it is lost, never while it is
    /// held. It runs inside the controller's own future, so a killed controller stops renewing.
    pub async fn lost(&self) -> Result<(), Error> {
        let Some(manager) = &self.manager else {
            return futures::future::pending().await;
        };
        loop {
            match manager.changed().await {
                Ok(true) => {}
                Ok(false) => return Err(Error::LostLease(self.lease.clone())),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot renew the Lease; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// Give the Lease up (graceful shutdown), so the other replica takes over at once.
    pub async fn release(self) {
        if let Some(manager) = &self.manager
            && let Err(e) = manager.release().await
        {
            tracing::warn!(error = %e, "cannot release the Lease");
        }
    }
}
