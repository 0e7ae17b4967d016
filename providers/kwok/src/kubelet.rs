//! The kwok "kubelet": a loop, independent of the controller, that turns instance records into
//! Nodes the way real instances boot and join.
//!
//! In: the instance records and the provider's Nodes, read fresh from the API server on every
//! tick (so a restarted loop carries on where the last one stopped). Out: a Node per instance
//! after the registration delay; Ready, without its startup taints, after the ready delay; Nodes
//! whose instance is gone deleted. Progress is written back to the records, so each step
//! happens once even across restarts.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use purser_cloudprovider::CloudError;
use serde_json::json;

use crate::KwokOptions;
use crate::node::{self, OWNER_LABEL};
use crate::record::{InstanceRecord, Records};
use crate::store::{InstanceStore, api_error, has_code};

/// The field manager of the kubelet loop's writes.
const FIELD_MANAGER: &str = "purser.kwok.kubelet";

/// Patch parameters naming the loop as the field manager.
fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PatchParams::default()
    }
}

/// One step the loop takes for one instance.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// Create the instance's Node (and record that it registered).
    CreateNode(String),
    /// The Node exists already (a previous loop created it): record that it registered.
    Registered(String),
    /// Mark the Node Ready and remove its startup taints (and record that).
    MarkReady(String),
    /// Delete a Node of this provider whose instance no longer exists.
    DeleteNode(String),
}

/// What the loop needs to know of a Node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeView {
    /// Created by this provider.
    pub owned: bool,
}

/// Parse an RFC 3339 time of a record; an unreadable one counts as long past.
fn parse_time(text: &str) -> Timestamp {
    text.parse().unwrap_or(Timestamp::UNIX_EPOCH)
}

/// True when `delay` has passed since `since` at `now`.
fn elapsed(since: &str, delay: Duration, now: Timestamp) -> bool {
    let delay = SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX);
    parse_time(since).checked_add(delay).is_ok_and(|due| now >= due)
}

/// The step due for one record, if any.
fn due(record: &InstanceRecord, has_node: bool, now: Timestamp, options: &KwokOptions) -> Option<Action> {
    let name = record.name.clone();
    match &record.registered_time {
        None if elapsed(&record.launch_time, options.registration_delay, now) => Some(if has_node {
            Action::Registered(name)
        } else {
            Action::CreateNode(name)
        }),
        Some(at) if !record.initialized && has_node && elapsed(at, options.ready_delay, now) => {
            Some(Action::MarkReady(name))
        }
        _ => None,
    }
}

/// Every step due at `now`, given the records and the provider's Nodes by name.
pub fn decide(
    records: &Records,
    nodes: &BTreeMap<String, NodeView>,
    now: Timestamp,
    options: &KwokOptions,
) -> Vec<Action> {
    let mut actions: Vec<Action> = records
        .values()
        .filter_map(|r| due(r, nodes.contains_key(&r.name), now, options))
        .collect();
    actions.extend(
        nodes
            .iter()
            .filter(|(name, view)| view.owned && !records.contains_key(*name))
            .map(|(name, _)| Action::DeleteNode(name.clone())),
    );
    actions
}

/// The kubelet loop.
#[derive(Clone)]
pub struct Kubelet {
    nodes: Api<Node>,
    store: InstanceStore,
    options: KwokOptions,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet").field("store", &self.store).finish()
    }
}

impl Kubelet {
    /// A kubelet loop over the instance ConfigMap named in `options`.
    pub fn new(client: Client, options: KwokOptions) -> Self {
        Kubelet {
            nodes: Api::all(client.clone()),
            store: InstanceStore::new(client, &options.namespace, &options.config_map),
            options,
        }
    }

    /// Run ticks every `poll_interval` until `shutdown` completes; failures are logged and retried.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "kwok kubelet tick failed; retrying");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = tokio::time::sleep(self.options.poll_interval) => {}
            }
        }
    }

    /// One pass: read records and Nodes, take every step due now; returns the steps taken.
    pub async fn tick(&self) -> Result<Vec<Action>, CloudError> {
        let records = self.store.load().await?;
        let nodes = self.owned_nodes().await?;
        let actions = decide(&records, &nodes, Timestamp::now(), &self.options);
        for action in &actions {
            self.apply(action, &records).await?;
        }
        Ok(actions)
    }

    /// The Nodes of this provider, by name (filtered here too, for API servers without selectors).
    async fn owned_nodes(&self) -> Result<BTreeMap<String, NodeView>, CloudError> {
        let lp = ListParams::default().labels(&format!("{OWNER_LABEL}=true"));
        let list = self.nodes.list(&lp).await.map_err(|e| api_error("list Nodes", e))?;
        Ok(list
            .items
            .iter()
            .filter(|n| node::is_owned(n))
            .filter_map(|n| n.metadata.name.clone().map(|name| (name, NodeView { owned: true })))
            .collect())
    }

    /// Take one step.
    async fn apply(&self, action: &Action, records: &Records) -> Result<(), CloudError> {
        let record = |name: &str| records.get(name);
        match action {
            Action::CreateNode(name) => match record(name) {
                Some(r) => self.create_node(r).await,
                None => Ok(()),
            },
            Action::Registered(name) => self.mark_registered(name).await,
            Action::MarkReady(name) => match record(name) {
                Some(r) => self.mark_ready(r).await,
                None => Ok(()),
            },
            Action::DeleteNode(name) => self.delete_node(name).await,
        }
    }

    /// Create the Node (an existing one is fine), write its status, record the registration.
    async fn create_node(&self, record: &InstanceRecord) -> Result<(), CloudError> {
        let node = node::new_node(record);
        let context = format!("create Node {}", record.name);
        match self.nodes.create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(e) if has_code(&e, 409) => {}
            Err(e) => return Err(api_error(&context, e)),
        }
        // Some API servers drop the status on create, as for any object with a status subresource.
        let status = json!({"status": node.status});
        self.nodes
            .patch_status(&record.name, &params(), &Patch::Merge(status))
            .await
            .map_err(|e| api_error(&format!("write status of Node {}", record.name), e))?;
        tracing::info!(node = %record.name, instance_type = %record.instance_type, "kwok node registered");
        self.mark_registered(&record.name).await
    }

    /// Record that the instance's Node exists.
    async fn mark_registered(&self, name: &str) -> Result<(), CloudError> {
        let now = Timestamp::now().to_string();
        self.store
            .update(|records| {
                if let Some(r) = records.get_mut(name)
                    && r.registered_time.is_none()
                {
                    r.registered_time = Some(now.clone());
                }
            })
            .await
    }

    /// Mark the Node Ready, remove its startup taints, record that it is initialized.
    async fn mark_ready(&self, record: &InstanceRecord) -> Result<(), CloudError> {
        let name = &record.name;
        let status = json!({"status": node::ready_status(record)});
        self.nodes
            .patch_status(name, &params(), &Patch::Merge(status))
            .await
            .map_err(|e| api_error(&format!("mark Node {name} Ready"), e))?;
        self.remove_startup_taints(record).await?;
        tracing::info!(node = %name, "kwok node ready");
        self.store
            .update(|records| {
                if let Some(r) = records.get_mut(name) {
                    r.initialized = true;
                }
            })
            .await
    }

    /// Remove the record's startup taints from the Node, keeping every other taint (the
    /// controller may be removing the unregistered taint at the same time: a conflict retries).
    async fn remove_startup_taints(&self, record: &InstanceRecord) -> Result<(), CloudError> {
        let name = &record.name;
        let context = format!("remove startup taints of Node {name}");
        for _ in 0..10 {
            let Some(node) = self.nodes.get_opt(name).await.map_err(|e| api_error(&context, e))? else {
                return Ok(());
            };
            let taints = node.spec.as_ref().and_then(|s| s.taints.clone()).unwrap_or_default();
            let kept = node::without_startup_taints(record, &taints);
            if kept.len() == taints.len() {
                return Ok(());
            }
            let patch = json!({
                "metadata": {"resourceVersion": node.metadata.resource_version},
                "spec": {"taints": kept},
            });
            match self.nodes.patch(name, &params(), &Patch::Merge(patch)).await {
                Ok(_) => return Ok(()),
                Err(e) if has_code(&e, 409) => continue,
                Err(e) => return Err(api_error(&context, e)),
            }
        }
        Err(CloudError::Other(format!(
            "kwok: {context}: still conflicting after 10 attempts"
        )))
    }

    /// Delete a Node (a missing one is fine).
    async fn delete_node(&self, name: &str) -> Result<(), CloudError> {
        delete_node(&self.nodes, name).await
    }
}

/// Delete a Node; a Node already gone is not an error.
pub async fn delete_node(nodes: &Api<Node>, name: &str) -> Result<(), CloudError> {
    match nodes.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if has_code(&e, 404) => Ok(()),
        Err(e) => Err(api_error(&format!("delete Node {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> KwokOptions {
        KwokOptions {
            registration_delay: Duration::from_secs(2),
            ready_delay: Duration::from_secs(1),
            ..KwokOptions::default()
        }
    }

    fn record(name: &str, registered: Option<&str>, initialized: bool) -> InstanceRecord {
        InstanceRecord {
            name: name.into(),
            launch_time: "2026-12-04T03:00:00Z".into(),
            registered_time: registered.map(String::from),
            initialized,
            ..Default::default()
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn owned(names: &[&str]) -> BTreeMap<String, NodeView> {
        names
            .iter()
            .map(|n| (n.to_string(), NodeView { owned: true }))
            .collect()
    }

    #[test]
    fn node_appears_after_the_registration_delay() {
        let records = Records::from([("a".to_string(), record("a", None, false))]);
        assert!(decide(&records, &owned(&[]), at("2026-12-04T03:00:01Z"), &options()).is_empty());
        assert_eq!(
            decide(&records, &owned(&[]), at("2026-12-04T03:00:02Z"), &options()),
            [Action::CreateNode("a".into())]
        );
    }

    #[test]
    fn a_node_created_before_a_restart_is_only_recorded() {
        let records = Records::from([("a".to_string(), record("a", None, false))]);
        assert_eq!(
            decide(&records, &owned(&["a"]), at("2026-12-04T03:00:05Z"), &options()),
            [Action::Registered("a".into())]
        );
    }

    #[test]
    fn ready_after_the_ready_delay_once() {
        let registered = Some("2026-12-04T03:00:02Z");
        let records = Records::from([("a".to_string(), record("a", registered, false))]);
        assert!(decide(&records, &owned(&["a"]), at("2026-12-04T03:00:02.5Z"), &options()).is_empty());
        assert_eq!(
            decide(&records, &owned(&["a"]), at("2026-12-04T03:00:03Z"), &options()),
            [Action::MarkReady("a".into())]
        );
        let done = Records::from([("a".to_string(), record("a", registered, true))]);
        assert!(decide(&done, &owned(&["a"]), at("2026-12-04T04:00:00Z"), &options()).is_empty());
    }

    #[test]
    fn a_deleted_node_is_not_recreated_and_orphans_are_deleted() {
        let records = Records::from([("a".to_string(), record("a", Some("2026-12-04T03:00:02Z"), true))]);
        assert!(decide(&records, &owned(&[]), at("2026-12-04T04:00:00Z"), &options()).is_empty());
        assert_eq!(
            decide(&Records::new(), &owned(&["b"]), at("2026-12-04T04:00:00Z"), &options()),
            [Action::DeleteNode("b".into())]
        );
    }

    #[test]
    fn zero_delays_act_at_once() {
        let zero = KwokOptions {
            registration_delay: Duration::ZERO,
            ready_delay: Duration::ZERO,
            ..KwokOptions::default()
        };
        let records = Records::from([("a".to_string(), record("a", None, false))]);
        assert_eq!(
            decide(&records, &owned(&[]), at("2026-12-04T03:00:00Z"), &zero),
            [Action::CreateNode("a".into())]
        );
    }
}
