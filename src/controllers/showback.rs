//! The showback ledger in the cluster, read by `purser report` when there is no Prometheus:
//! one ConfigMap per UTC day (`purser-showback-YYYY-MM-DD`, key `ledger.json`) and one with the
//! rates seen at the last pass (`purser-showback-rates`, key `rates.json`), in the controller's
//! namespace. Days older than `cost::showback::ledger::KEPT_DAYS` are deleted.
//!
//! Each status pass (leader only) charges the rates seen at the previous pass over the time
//! since then, then stores the current rates: a restarted controller charges the time it was
//! down at the last rates, as the budget ledger does.
//!
//! In: the allocation of the snapshot and the Node objects. Out: the ConfigMaps.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{Context, Error};
use crate::cost::allocation::Allocation;
use crate::cost::showback::ledger::{self, DayLedger, Rates};

/// Name of the ConfigMap holding the last rates.
pub const RATES_NAME: &str = "purser-showback-rates";
/// Key of the rates in it.
pub const RATES_KEY: &str = "rates.json";
/// Key of a day's ledger in its ConfigMap.
pub const DAY_KEY: &str = "ledger.json";
/// Label on every showback ConfigMap; `day` on the daily ones.
pub const LABEL: &str = "purser.dev/showback";

/// Name of the ConfigMap of day `day` (`YYYY-MM-DD`).
pub fn day_name(day: &str) -> String {
    format!("purser-showback-{day}")
}

/// Charge the last rates up to now, store the current ones and drop expired days.
pub async fn update(ctx: &Context, allocation: &Allocation, nodes: &[Arc<Node>]) -> Result<(), Error> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ctx.settings.lease_namespace);
    let now = Utc::now().timestamp();
    let last: Rates = load(&api, RATES_NAME, RATES_KEY).await?.unwrap_or_default();
    if let Some(from) = last.accrued_until.filter(|&t| t < now) {
        let mut days = BTreeMap::new();
        for day in ledger::days_between(from.max(now - ledger::KEPT_DAYS * 86_400), now) {
            let stored = load(&api, &day_name(&day), DAY_KEY).await?.unwrap_or_default();
            days.insert(day, stored);
        }
        ledger::accrue(&mut days, &last, from, now);
        for (day, ledger) in &days {
            save(&api, &day_name(day), DAY_KEY, ledger, "day").await?;
        }
        if from / 3600 != now / 3600 {
            prune(&api, now).await?;
        }
    }
    let rates = Rates::of(allocation, &node_meta(nodes), now);
    save(&api, RATES_NAME, RATES_KEY, &rates, "rates").await
}

/// Each node's (region, provider id).
fn node_meta(nodes: &[Arc<Node>]) -> HashMap<String, (String, String)> {
    nodes
        .iter()
        .filter_map(|n| {
            let region = n
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("topology.kubernetes.io/region").cloned())
                .unwrap_or_default();
            let provider = n.spec.as_ref().and_then(|s| s.provider_id.clone()).unwrap_or_default();
            Some((n.metadata.name.clone()?, (region, provider)))
        })
        .collect()
}

/// The value stored under `key` in ConfigMap `name`; an unreadable one is reported and
/// started again (the ConfigMap is the only copy: a bad hand edit must not stop the ledger).
async fn load<T: DeserializeOwned>(api: &Api<ConfigMap>, name: &str, key: &str) -> Result<Option<T>, Error> {
    let found = api.get_opt(name).await?;
    let Some(text) = found.as_ref().and_then(|c| c.data.as_ref()).and_then(|d| d.get(key)) else {
        return Ok(None);
    };
    match serde_json::from_str(text) {
        Ok(value) => Ok(Some(value)),
        Err(e) => {
            tracing::warn!(
                configmap = name,
                "data.{key} is not a showback ledger ({e}); starting it again"
            );
            Ok(None)
        }
    }
}

/// Write `value` under `key` in ConfigMap `name` (created on first use).
async fn save<T: Serialize>(api: &Api<ConfigMap>, name: &str, key: &str, value: &T, kind: &str) -> Result<(), Error> {
    let data = json!({ key: serde_json::to_string(value)? });
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(&json!({ "data": data })))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => {
            let map: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": name,
                    "labels": {"app.kubernetes.io/managed-by": "purser", LABEL: kind}},
                "data": data,
            }))?;
            api.create(&PostParams::default(), &map).await?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Delete the daily ConfigMaps older than the retention.
async fn prune(api: &Api<ConfigMap>, now: i64) -> Result<(), Error> {
    let days = api.list(&ListParams::default().labels(&format!("{LABEL}=day"))).await?;
    for map in days.items {
        let Some(name) = map.metadata.name else { continue };
        let day = name.trim_start_matches("purser-showback-");
        if ledger::expired(day, now) {
            api.delete(&name, &DeleteParams::default()).await?;
        }
    }
    Ok(())
}

/// Read the days of `from..to` (Unix seconds) from the cluster.
pub async fn read_days(api: &Api<ConfigMap>, from: i64, to: i64) -> Result<Vec<DayLedger>, Error> {
    let mut days = vec![];
    for day in ledger::days_between(from, to) {
        if let Some(d) = load(api, &day_name(&day), DAY_KEY).await? {
            days.push(d);
        }
    }
    Ok(days)
}
