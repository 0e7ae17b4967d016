//! Interruption notices from an SQS queue fed by EventBridge: spot interruption warnings,
//! rebalance recommendations, AWS Health scheduled changes and instance state changes.
//!
//! In: SQS messages (long poll). Out: [`InterruptionEvent`]s carrying their message's receipt
//! handle; the message is deleted when the controller acknowledges its notices ([`acknowledge`])
//! after acting on them, so a notice the controller could not act on is delivered again. A
//! malformed message, one that is not an EC2 event, or one that needs no action is logged
//! (saying what is wrong) and deleted at once, so it never blocks or crashes the loop.

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use purser_cloudprovider::{InterruptionEvent, InterruptionKind};
use serde_json::Value;

use crate::errors::{AwsError, RetryPolicy, call};

/// Longest SQS long poll.
pub const WAIT_SECONDS: i32 = 20;

/// What one message meant.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// Notices for instances.
    Events(Vec<InterruptionEvent>),
    /// A well-formed event that needs no action (e.g. an instance starting).
    Ignored(String),
}

/// Parse one message body (an EventBridge event); `Err` says what is wrong with it.
pub fn parse(body: &str) -> Result<Parsed, String> {
    let event: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    let source = event["source"]
        .as_str()
        .ok_or("no \"source\" field: not an EventBridge event")?;
    let detail_type = event["detail-type"].as_str().ok_or("no \"detail-type\" field")?;
    let detail = &event["detail"];
    let one = |kind: InterruptionKind| -> Result<Parsed, String> {
        let id = detail["instance-id"]
            .as_str()
            .ok_or_else(|| format!("{detail_type}: no detail.instance-id"))?;
        Ok(Parsed::Events(vec![InterruptionEvent {
            instance_id: id.to_string(),
            kind,
            detail: format!("{source}: {detail_type}"),
            receipt: None,
        }]))
    };
    match (source, detail_type) {
        ("aws.ec2", "EC2 Spot Instance Interruption Warning") => one(InterruptionKind::SpotInterruption),
        ("aws.ec2", "EC2 Instance Rebalance Recommendation") => one(InterruptionKind::Rebalance),
        ("aws.ec2", "EC2 Instance State-change Notification") => {
            let state = detail["state"]
                .as_str()
                .ok_or_else(|| format!("{detail_type}: no detail.state"))?;
            if matches!(state, "stopping" | "stopped" | "shutting-down" | "terminated") {
                one(InterruptionKind::StateChange)
            } else {
                Ok(Parsed::Ignored(format!("instance state {state}")))
            }
        }
        ("aws.health", "AWS Health Event") => health(detail, source, detail_type),
        _ => Err(format!(
            "unexpected event {source}/{detail_type} (expected an EC2 or AWS Health event)"
        )),
    }
}

fn health(detail: &Value, source: &str, detail_type: &str) -> Result<Parsed, String> {
    if detail["service"].as_str() != Some("EC2") {
        return Ok(Parsed::Ignored(format!("AWS Health event for {}", detail["service"])));
    }
    if detail["eventTypeCategory"].as_str() != Some("scheduledChange") {
        return Ok(Parsed::Ignored(format!(
            "AWS Health {} event",
            detail["eventTypeCategory"]
        )));
    }
    let entities = detail["affectedEntities"]
        .as_array()
        .ok_or("AWS Health Event: no detail.affectedEntities")?;
    let events: Vec<InterruptionEvent> = entities
        .iter()
        .filter_map(|e| e["entityValue"].as_str())
        .filter(|id| id.starts_with("i-"))
        .map(|id| InterruptionEvent {
            instance_id: id.to_string(),
            kind: InterruptionKind::ScheduledChange,
            detail: format!("{source}: {detail_type}"),
            receipt: None,
        })
        .collect();
    if events.is_empty() {
        return Err("AWS Health Event: no instance in detail.affectedEntities".into());
    }
    Ok(Parsed::Events(events))
}

/// Receive one batch (waiting up to [`WAIT_SECONDS`]) and return its notices, each with its
/// message's receipt handle; messages with no notice in them are deleted now.
pub async fn poll(
    sqs: &aws_sdk_sqs::Client,
    retry: &RetryPolicy,
    queue_url: &str,
    wait_seconds: i32,
) -> Result<Vec<InterruptionEvent>, AwsError> {
    let out = call("ReceiveMessage", retry, || {
        sqs.receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(wait_seconds)
            .send()
    })
    .await?;
    let mut events = vec![];
    let mut delete = vec![];
    for message in out.messages() {
        let handle = message.receipt_handle().map(str::to_string);
        match parse(message.body().unwrap_or_default()) {
            Ok(Parsed::Events(found)) if handle.is_some() => {
                events.extend(found.into_iter().map(|e| InterruptionEvent {
                    receipt: handle.clone(),
                    ..e
                }));
                continue;
            }
            Ok(Parsed::Events(found)) => events.extend(found),
            Ok(Parsed::Ignored(why)) => tracing::debug!(why, "interruption queue: nothing to do"),
            Err(problem) => tracing::warn!(
                queue = queue_url,
                message_id = message.message_id().unwrap_or(""),
                problem,
                "interruption queue: deleting a message that is not a usable EC2 event"
            ),
        }
        delete.extend(handle);
    }
    delete_messages(sqs, retry, queue_url, &delete).await?;
    Ok(events)
}

/// Delete the messages of notices that were acted on (each message once, whatever number of
/// notices it held).
pub async fn acknowledge(
    sqs: &aws_sdk_sqs::Client,
    retry: &RetryPolicy,
    queue_url: &str,
    events: &[InterruptionEvent],
) -> Result<(), AwsError> {
    let mut handles: Vec<String> = events.iter().filter_map(|e| e.receipt.clone()).collect();
    handles.sort();
    handles.dedup();
    delete_messages(sqs, retry, queue_url, &handles).await
}

/// Delete messages by receipt handle, ten per `DeleteMessageBatch`; entries SQS could not delete
/// are logged (SQS delivers them again).
async fn delete_messages(
    sqs: &aws_sdk_sqs::Client,
    retry: &RetryPolicy,
    queue_url: &str,
    handles: &[String],
) -> Result<(), AwsError> {
    for chunk in handles.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, h)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(h)
                    .build()
                    .ok()
            })
            .collect();
        let out = call("DeleteMessageBatch", retry, || {
            sqs.delete_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries.clone()))
                .send()
        })
        .await?;
        for line in failed_deletes(out.failed()) {
            tracing::warn!(
                queue = queue_url,
                "interruption queue: {line}; SQS will deliver it again"
            );
        }
    }
    Ok(())
}

/// One line per entry that `DeleteMessageBatch` could not delete, naming the entry and why.
pub fn failed_deletes(failed: &[aws_sdk_sqs::types::BatchResultErrorEntry]) -> Vec<String> {
    failed
        .iter()
        .map(|f| {
            format!(
                "message {} was not deleted: {} {}",
                f.id(),
                f.code(),
                f.message().unwrap_or_default()
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_deletes_are_reported_with_their_entry_and_code() {
        let failed = aws_sdk_sqs::types::BatchResultErrorEntry::builder()
            .id("3")
            .code("ReceiptHandleIsInvalid")
            .message("expired")
            .sender_fault(true)
            .build()
            .expect("entry");
        assert_eq!(
            failed_deletes(&[failed]),
            ["message 3 was not deleted: ReceiptHandleIsInvalid expired"]
        );
    }

    #[test]
    fn a_spot_warning_names_the_instance() {
        let body = r#"{"version":"0","source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","detail":{"instance-id":"i-1","instance-action":"terminate"}}"#;
        let Ok(Parsed::Events(events)) = parse(body) else {
            panic!("parsed")
        };
        assert_eq!(events[0].instance_id, "i-1");
        assert_eq!(events[0].kind, InterruptionKind::SpotInterruption);
    }

    #[test]
    fn state_changes_health_events_and_rebalances_are_understood() {
        let stopping = r#"{"source":"aws.ec2","detail-type":"EC2 Instance State-change Notification","detail":{"instance-id":"i-2","state":"stopping"}}"#;
        assert!(matches!(parse(stopping), Ok(Parsed::Events(e)) if e[0].kind == InterruptionKind::StateChange));
        let running = stopping.replace("stopping", "running");
        assert!(matches!(parse(&running), Ok(Parsed::Ignored(_))));
        let health = r#"{"source":"aws.health","detail-type":"AWS Health Event","detail":{"service":"EC2","eventTypeCategory":"scheduledChange","affectedEntities":[{"entityValue":"i-3"},{"entityValue":"i-4"}]}}"#;
        assert!(matches!(parse(health), Ok(Parsed::Events(e)) if e.len() == 2 && e[1].instance_id == "i-4"));
        let rebalance = r#"{"source":"aws.ec2","detail-type":"EC2 Instance Rebalance Recommendation","detail":{"instance-id":"i-5"}}"#;
        assert!(matches!(parse(rebalance), Ok(Parsed::Events(e)) if e[0].kind == InterruptionKind::Rebalance));
    }

    #[test]
    fn malformed_and_foreign_messages_say_what_is_wrong() {
        assert!(parse("hello").unwrap_err().starts_with("not JSON"));
        assert!(parse(r#"{"a":1}"#).unwrap_err().contains("not an EventBridge event"));
        let s3 = r#"{"source":"aws.s3","detail-type":"Object Created","detail":{}}"#;
        assert!(
            parse(s3)
                .unwrap_err()
                .contains("unexpected event aws.s3/Object Created")
        );
        let no_id = r#"{"source":"aws.ec2","detail-type":"EC2 Spot Instance Interruption Warning","detail":{}}"#;
        assert!(parse(no_id).unwrap_err().contains("no detail.instance-id"));
    }
}
