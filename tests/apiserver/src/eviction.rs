//! The `pods/eviction` and `pods/binding` subresources.
//!
//! In: an Eviction (policy/v1) or Binding (v1) body for a pod, with the store locked. Out: the
//! pod deleted (eviction allowed by every matching PodDisruptionBudget) or bound to a node,
//! answered with a `Status` Success; or 429 / 409 Status errors.

use serde_json::{Value, json};

use crate::error::{ApiError, Cause, Result};
use crate::path::Target;
use crate::selectors::LabelSelector;
use crate::store::{ObjectKey, Store};
use crate::writes::{self, WriteParams};

/// A `Status` with status Success and `code`.
pub fn success(code: u16) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code})
}

/// Evict the target pod if its PodDisruptionBudgets allow it.
pub fn evict(store: &mut Store, target: &Target, body: &Value, params: &WriteParams) -> Result<Value> {
    let key = target.key()?;
    let pod = store
        .get(&key)
        .map(|e| e.object.clone())
        .ok_or_else(|| ApiError::not_found("", "pods", &key.name))?;
    if let Some(body_name) = body.pointer("/metadata/name").and_then(Value::as_str)
        && body_name != key.name
    {
        return Err(ApiError::BadRequest(format!(
            "name in URL does not match name in Eviction object ({body_name} != {})",
            key.name
        )));
    }
    if pod.pointer("/metadata/deletionTimestamp").is_none() && !is_terminal(&pod) && is_healthy(&pod) {
        check_budgets(store, &key, &pod)?;
    }
    let mut pod_target = target.clone();
    pod_target.subresource = None;
    let options = body.get("deleteOptions").cloned().unwrap_or(Value::Null);
    writes::delete(store, &pod_target, &options, params)?;
    Ok(success(201))
}

fn is_terminal(pod: &Value) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn phase(pod: &Value) -> &str {
    pod.pointer("/status/phase").and_then(Value::as_str).unwrap_or_default()
}

/// Healthy for disruption accounting: bound to a node, Running and not being deleted.
fn is_healthy(pod: &Value) -> bool {
    let bound = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    bound && phase(pod) == "Running" && pod.pointer("/metadata/deletionTimestamp").is_none()
}

fn check_budgets(store: &Store, key: &ObjectKey, pod: &Value) -> Result<()> {
    let pods: Vec<&Value> = store.list("/pods", Some(&key.namespace));
    let mut matching_budgets = Vec::new();
    for pdb in store.list("policy/poddisruptionbudgets", Some(&key.namespace)) {
        let selector = LabelSelector::from_object(pdb.pointer("/spec/selector"))?;
        if let Some(selector) = selector.filter(|s| s.matches_object(pod)) {
            matching_budgets.push((pdb, selector));
        }
    }
    if matching_budgets.len() > 1 {
        return Err(ApiError::Internal(
            "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                .to_owned(),
        ));
    }
    for (pdb, selector) in matching_budgets {
        let covered: Vec<&&Value> = pods.iter().filter(|p| selector.matches_object(p)).collect();
        let expected = covered.len() as i64;
        let healthy = covered.iter().filter(|p| is_healthy(p)).count() as i64;
        let desired = desired_healthy(pdb, expected);
        if healthy - desired <= 0 {
            let name = pdb
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Err(ApiError::TooManyRequests {
                message: "Cannot evict pod as it would violate the pod's disruption budget.".to_owned(),
                causes: vec![Cause::new(
                    "DisruptionBudget",
                    "",
                    format!("The disruption budget {name} needs {desired} healthy pods and has {healthy} currently"),
                )],
            });
        }
    }
    Ok(())
}

/// Healthy pods the budget requires out of `expected`, rounding percentages up as the
/// disruption controller does.
fn desired_healthy(pdb: &Value, expected: i64) -> i64 {
    if let Some(min) = pdb.pointer("/spec/minAvailable") {
        return scaled(min, expected);
    }
    if let Some(max) = pdb.pointer("/spec/maxUnavailable") {
        return (expected - scaled(max, expected)).max(0);
    }
    0
}

fn scaled(value: &Value, total: i64) -> i64 {
    match value {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            let percent: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            (percent * total + 99) / 100
        }
        _ => 0,
    }
}

/// Bind the target pod to the node named in the Binding body.
pub fn bind(store: &mut Store, target: &Target, body: &Value) -> Result<Value> {
    let key = target.key()?;
    let entry = store
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found("", "pods", &key.name))?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid(
                "",
                "Binding",
                &key.name,
                vec![Cause::new("FieldValueRequired", "target.name", "Required value")],
            )
        })?;
    if let Some(current) = entry
        .object
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Err(ApiError::conflict(
            "",
            "pods/binding",
            &key.name,
            &format!("pod {} is already assigned to node \"{current}\"", key.name),
        ));
    }
    if entry.object.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(
            "",
            "pods/binding",
            &key.name,
            "pod is being deleted",
        ));
    }
    let mut pod = entry.object.clone();
    pod["spec"]["nodeName"] = json!(node);
    add_scheduled_condition(&mut pod);
    store.commit(key, pod, entry.managed);
    Ok(success(201))
}

fn add_scheduled_condition(pod: &mut Value) {
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let condition = json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": writes::now()});
    match pod["status"].get_mut("conditions").and_then(Value::as_array_mut) {
        Some(conditions) => {
            conditions.retain(|c| c.get("type") != Some(&json!("PodScheduled")));
            conditions.push(condition);
        }
        None => pod["status"]["conditions"] = json!([condition]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_up() {
        assert_eq!(desired_healthy(&json!({"spec": {"minAvailable": "50%"}}), 3), 2);
        assert_eq!(desired_healthy(&json!({"spec": {"maxUnavailable": "34%"}}), 3), 1);
        assert_eq!(desired_healthy(&json!({"spec": {"maxUnavailable": 0}}), 3), 3);
        assert_eq!(desired_healthy(&json!({"spec": {"minAvailable": 1}}), 3), 1);
    }
}
