//! The interruption loop (`interruption`): the cloud's notices become the disruption engine's
//! interruption input.
//!
//! In: [`InterruptionEvent`]s from [`CloudProvider::interruptions`](purser_cloudprovider::CloudProvider::interruptions)
//! (for AWS, the SQS queue EventBridge feeds). Out: the `purser.dev/interruption` annotation on
//! the instance's Node (the same input `purser plan --disrupt --interruption` takes), so the next
//! disruption pass replaces the node and drains it. A notice for an instance with no Node is
//! logged and dropped. Notices are acknowledged to the cloud (for AWS: their SQS messages
//! deleted) only after the Node is annotated; one that could not be is delivered again.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, Patch, PatchParams};
use purser_cloudprovider::{InterruptionEvent, InterruptionKind};
use serde_json::json;

use super::{Context, Error};
use crate::model::disruption::INTERRUPTION;

/// Poll the cloud for notices and mark their nodes, until the cloud's feed fails for good.
pub async fn run(ctx: Arc<Context>) -> Result<(), Error> {
    loop {
        match ctx.cloud.interruptions().await {
            Ok(events) => {
                let done = act_on(&ctx, events).await;
                if let Err(e) = ctx.cloud.acknowledge(done).await {
                    let e = Error::from(e);
                    ctx.metrics.error("interruption", &e);
                    tracing::warn!(error = %e, "cannot acknowledge interruption notices; they will be delivered again");
                }
            }
            Err(e) => {
                let e = Error::from(e);
                ctx.metrics.error("interruption", &e);
                tracing::warn!(error = %e, "reading interruption notices failed");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

/// Mark the Node of every notice; returns the notices to acknowledge: all but those sharing a
/// receipt with a notice that could not be marked (the feed delivers them again).
async fn act_on(ctx: &Context, events: Vec<InterruptionEvent>) -> Vec<InterruptionEvent> {
    let mut failed = vec![];
    for event in &events {
        if let Err(e) = mark(ctx, event).await {
            ctx.metrics.error("interruption", &e);
            tracing::warn!(instance = %event.instance_id, error = %e, "cannot mark an interrupted node; the notice stays in the feed");
            failed.push(event.receipt.clone());
        }
    }
    acknowledgeable(events, &failed)
}

/// The notices to acknowledge when those with the receipts in `failed` could not be acted on.
pub fn acknowledgeable(events: Vec<InterruptionEvent>, failed: &[Option<String>]) -> Vec<InterruptionEvent> {
    events
        .into_iter()
        .filter(|e| e.receipt.is_none() || !failed.contains(&e.receipt))
        .collect()
}

/// The annotation value for a notice (the engine's interruption kinds).
pub fn annotation_value(kind: InterruptionKind) -> &'static str {
    match kind {
        InterruptionKind::SpotInterruption => "spot-interruption",
        InterruptionKind::Rebalance => "rebalance",
        InterruptionKind::ScheduledChange | InterruptionKind::StateChange => "scheduled-change",
    }
}

/// True when `provider_id` names the instance `instance_id` (`aws:///zone/i-1` and `i-1`).
pub fn names_instance(provider_id: &str, instance_id: &str) -> bool {
    provider_id == instance_id || provider_id.rsplit('/').next() == Some(instance_id)
}

/// Annotate the Node of the event's instance; returns its name, or None when no Node has it.
pub async fn mark(ctx: &Context, event: &InterruptionEvent) -> Result<Option<String>, Error> {
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let listed = nodes.list(&Default::default()).await?;
    let node = listed.items.into_iter().find(|n| {
        n.spec
            .as_ref()
            .and_then(|s| s.provider_id.as_deref())
            .is_some_and(|p| names_instance(p, &event.instance_id))
    });
    let Some(name) = node.and_then(|n| n.metadata.name) else {
        tracing::info!(instance = %event.instance_id, kind = ?event.kind, "interruption notice for an instance with no Node");
        return Ok(None);
    };
    let value = annotation_value(event.kind);
    let patch = json!({"metadata": {"annotations": {INTERRUPTION: value}}});
    nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(node = %name, instance = %event.instance_id, notice = value, detail = %event.detail, "interruption notice");
    ctx.events
        .warning(
            &super::events::cluster_ref("v1", "Node", &name),
            "Interrupted",
            "Interrupt",
            format!("{}: {value}", event.detail),
        )
        .await;
    ctx.provision.notify_one();
    Ok(Some(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_sharing_a_message_with_a_failed_one_are_not_acknowledged() {
        let event = |id: &str, receipt: Option<&str>| InterruptionEvent {
            instance_id: id.into(),
            kind: InterruptionKind::ScheduledChange,
            detail: String::new(),
            receipt: receipt.map(str::to_string),
        };
        let events = vec![
            event("i-1", Some("m1")),
            event("i-2", Some("m1")),
            event("i-3", Some("m2")),
            event("i-4", None),
        ];
        let kept: Vec<String> = acknowledgeable(events, &[Some("m1".into())])
            .into_iter()
            .map(|e| e.instance_id)
            .collect();
        assert_eq!(kept, ["i-3", "i-4"]);
    }

    #[test]
    fn provider_ids_match_instance_ids() {
        assert!(names_instance("aws:///us-east-1a/i-0abc", "i-0abc"));
        assert!(!names_instance("aws:///us-east-1a/i-0abcd", "i-0abc"));
        assert_eq!(annotation_value(InterruptionKind::StateChange), "scheduled-change");
    }
}
