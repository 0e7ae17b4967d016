//! Status conditions on Purser's objects, as JSON so every kind shares one helper.
//!
//! In: a status object's current `conditions` and a new condition. Out: the list with that type
//! replaced (its `lastTransitionTime` kept when the status did not change).

use serde_json::{Value, json};

/// A condition to set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// Type, e.g. `Launched`.
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: bool,
    /// PascalCase reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

impl Condition {
    /// A condition that holds.
    pub fn yes(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.into(),
            status: true,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A condition that does not hold.
    pub fn no(type_: &str, reason: &str, message: impl Into<String>) -> Self {
        Condition {
            type_: type_.into(),
            status: false,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// `conditions` with `condition` set; `now` is the RFC 3339 time of a transition.
pub fn set(conditions: &[Value], condition: &Condition, now: &str) -> Vec<Value> {
    let status = if condition.status { "True" } else { "False" };
    let old = conditions
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(condition.type_.as_str()));
    let unchanged = old.and_then(|c| c.get("status")).and_then(Value::as_str) == Some(status);
    let since = match (unchanged, old.and_then(|c| c.get("lastTransitionTime"))) {
        (true, Some(t)) => t.clone(),
        _ => Value::String(now.to_string()),
    };
    let mut out: Vec<Value> = conditions
        .iter()
        .filter(|c| c.get("type").and_then(Value::as_str) != Some(condition.type_.as_str()))
        .cloned()
        .collect();
    out.push(json!({
        "type": condition.type_,
        "status": status,
        "reason": condition.reason,
        "message": condition.message,
        "lastTransitionTime": since,
    }));
    out.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    out
}

/// The conditions stored on `object` (`status.conditions`; none when absent or not a list).
pub fn current_conditions(object: &Value) -> Vec<Value> {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Is condition `type_` True in `conditions`?
pub fn is_true(conditions: &[Value], type_: &str) -> bool {
    conditions.iter().any(|c| {
        c.get("type").and_then(Value::as_str) == Some(type_) && c.get("status").and_then(Value::as_str) == Some("True")
    })
}

/// The current time in RFC 3339, seconds precision.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_a_condition_replaces_its_type_and_keeps_the_transition_time_when_unchanged() {
        let first = set(
            &[],
            &Condition::yes("Launched", "Launched", "ok"),
            "2026-01-01T00:00:00Z",
        );
        let again = set(
            &first,
            &Condition::yes("Launched", "Launched", "still"),
            "2026-01-02T00:00:00Z",
        );
        assert_eq!(again.len(), 1);
        assert_eq!(again[0]["lastTransitionTime"], "2026-01-01T00:00:00Z");
        assert_eq!(again[0]["message"], "still");
        let flipped = set(
            &again,
            &Condition::no("Launched", "Failed", "no"),
            "2026-01-03T00:00:00Z",
        );
        assert_eq!(flipped[0]["lastTransitionTime"], "2026-01-03T00:00:00Z");
        assert!(!is_true(&flipped, "Launched"));
        let two = set(
            &flipped,
            &Condition::yes("Registered", "Registered", ""),
            "2026-01-03T00:00:00Z",
        );
        assert_eq!(two.len(), 2);
        assert!(is_true(&two, "Registered"));
    }

    #[test]
    fn the_current_conditions_are_read_from_the_status_or_are_none() {
        let ready = json!({"type": "Ready", "status": "True"});
        let object = json!({"status": {"conditions": [ready.clone()], "nodes": 2}});
        assert_eq!(current_conditions(&object), vec![ready]);
        assert!(current_conditions(&json!({"spec": {}})).is_empty());
        assert!(current_conditions(&json!({"status": {}})).is_empty());
        assert!(current_conditions(&json!({"status": {"conditions": "Ready"}})).is_empty());
    }
}
