//! The generated CRDs: the copies checked in under `charts/purser/crds/` are current, every CEL
//! rule compiles, good objects pass, and bad objects are rejected by the schema (a small
//! structural-schema walk for types, enums, patterns and bounds, plus kube-cel for the
//! `x-kubernetes-validations` rules, as the API server would).

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use purser::api::crds;
use regex::Regex;
use serde_json::{Value, json};

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/charts/purser/crds");

#[test]
fn checked_in_crds_are_current() {
    let fix = "run `cargo run -- crds --out charts/purser/crds` and commit the result";
    let mut expected = Vec::new();
    for crd in crds::all() {
        let file = crds::file_name(&crd);
        let generated = crds::to_yaml(&crd).unwrap();
        let checked_in = std::fs::read_to_string(Path::new(CHECKED_IN).join(&file)).unwrap_or_default();
        assert!(
            checked_in == generated,
            "charts/purser/crds/{file} differs from what the code generates: {fix}"
        );
        expected.push(file);
    }
    let mut present: Vec<String> = std::fs::read_dir(CHECKED_IN)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    present.sort();
    expected.sort();
    assert_eq!(present, expected, "charts/purser/crds/ holds other files: {fix}");
}

#[test]
fn crds_are_cluster_scoped_with_status_and_columns() {
    for crd in crds::all() {
        assert_eq!(crd.spec.scope, "Cluster");
        assert_eq!(crd.spec.group, "purser.dev");
        let v = &crd.spec.versions[0];
        assert!(v.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some());
        let columns = v.additional_printer_columns.as_ref().unwrap();
        assert!(columns.iter().any(|c| c.name == "Age"), "{}", crd.spec.names.kind);
    }
}

#[test]
fn multi_document_yaml_has_four_crds() {
    let yaml = crds::all_yaml().unwrap();
    assert_eq!(yaml.matches("kind: CustomResourceDefinition").count(), 4);
    assert_eq!(yaml.matches("---\n").count(), 4);
}

fn crd(kind: &str) -> CustomResourceDefinition {
    crds::all().into_iter().find(|c| c.spec.names.kind == kind).unwrap()
}

fn schema(kind: &str) -> Value {
    let crd = crd(kind);
    let s = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    serde_json::to_value(s).unwrap()
}

#[test]
fn every_cel_rule_compiles() {
    for kind in ["NodePool", "NodeClaim", "NodeClass", "CostBudget"] {
        let compiled = kube_cel::compile_schema(&schema(kind));
        assert!(!compiled.has_errors(), "{kind}: {:?}", compiled.compilation_errors());
    }
}

// === A structural-schema walk (the OpenAPI subset CRDs use) ===

fn type_ok(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    }
}

fn check_scalar(s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(values) = s.get("enum").and_then(Value::as_array)
        && !values.contains(v)
    {
        errors.push(format!("{at}: {v} not in {values:?}"));
    }
    if let (Some(p), Some(text)) = (s.get("pattern").and_then(Value::as_str), v.as_str())
        && !Regex::new(p).unwrap().is_match(text)
    {
        errors.push(format!("{at}: {text:?} does not match {p}"));
    }
    if let Some(text) = v.as_str() {
        let n = text.chars().count() as f64;
        if s.get("maxLength").and_then(Value::as_f64).is_some_and(|m| n > m) {
            errors.push(format!("{at}: longer than maxLength"));
        }
        if s.get("minLength").and_then(Value::as_f64).is_some_and(|m| n < m) {
            errors.push(format!("{at}: shorter than minLength"));
        }
    }
    if let Some(x) = v.as_f64() {
        if s.get("minimum").and_then(Value::as_f64).is_some_and(|m| x < m) {
            errors.push(format!("{at}: {x} below minimum"));
        }
        if s.get("maximum").and_then(Value::as_f64).is_some_and(|m| x > m) {
            errors.push(format!("{at}: {x} above maximum"));
        }
    }
}

fn check_object(s: &Value, map: &serde_json::Map<String, Value>, at: &str, errors: &mut Vec<String>) {
    for r in s.get("required").and_then(Value::as_array).into_iter().flatten() {
        if let Some(r) = r.as_str()
            && !map.contains_key(r)
        {
            errors.push(format!("{at}.{r}: required"));
        }
    }
    if s.get("maxProperties")
        .and_then(Value::as_u64)
        .is_some_and(|m| map.len() as u64 > m)
    {
        errors.push(format!("{at}: more than maxProperties"));
    }
    let props = s.get("properties").and_then(Value::as_object);
    for (k, child) in map {
        if at.is_empty() && ["apiVersion", "kind", "metadata"].contains(&k.as_str()) {
            continue;
        }
        let sub = props.and_then(|p| p.get(k)).or_else(|| s.get("additionalProperties"));
        match sub {
            Some(sub) => walk(sub, child, &format!("{at}.{k}"), errors),
            None if props.is_some() && s.get("x-kubernetes-preserve-unknown-fields").is_none() => {
                errors.push(format!("{at}.{k}: unknown field"));
            }
            None => {}
        }
    }
}

fn walk(s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if v.is_null() {
        if s.get("nullable") != Some(&json!(true)) {
            errors.push(format!("{at}: null"));
        }
        return;
    }
    if s.get("x-kubernetes-int-or-string") == Some(&json!(true)) {
        if !(v.is_string() || v.is_i64() || v.is_u64()) {
            errors.push(format!("{at}: not an integer or string"));
        }
    } else if let Some(ty) = s.get("type").and_then(Value::as_str)
        && !type_ok(ty, v)
    {
        errors.push(format!("{at}: not of type {ty}"));
        return;
    }
    check_scalar(s, v, at, errors);
    match v {
        Value::Object(map) => check_object(s, map, at, errors),
        Value::Array(items) => {
            if s.get("maxItems")
                .and_then(Value::as_u64)
                .is_some_and(|m| items.len() as u64 > m)
            {
                errors.push(format!("{at}: more than maxItems"));
            }
            if let Some(item) = s.get("items") {
                for (i, x) in items.iter().enumerate() {
                    walk(item, x, &format!("{at}[{i}]"), errors);
                }
            }
        }
        _ => {}
    }
}

/// Every way the API server would reject `object` (as an update of `old` when given).
fn rejections(kind: &str, object: &Value, old: Option<&Value>) -> Vec<String> {
    let s = schema(kind);
    let mut errors = Vec::new();
    walk(&s, object, "", &mut errors);
    if let Err(e) = kube_cel::validate(&s, object, old) {
        errors.extend(e.as_slice().iter().map(|e| format!("{e}")));
    }
    errors
}

// === Objects ===

fn nodepool() -> Value {
    json!({
        "apiVersion": "purser.dev/v1",
        "kind": "NodePool",
        "metadata": {"name": "general"},
        "spec": {
            "weight": 10,
            "template": {
                "metadata": {"labels": {"team": "platform"}},
                "spec": {
                    "requirements": [
                        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["spot", "on-demand"], "minValues": 2},
                        {"key": "purser.dev/instance-generation", "operator": "Gt", "values": ["5"]},
                        {"key": "purser.dev/instance-gpu-count", "operator": "DoesNotExist"}
                    ],
                    "taints": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
                    "startupTaints": [{"key": "example.com/agent-not-ready", "effect": "NoExecute"}],
                    "nodeClassRef": {"group": "purser.dev", "kind": "NodeClass", "name": "default"},
                    "expireAfter": "720h",
                    "terminationGracePeriod": "1h30m"
                }
            },
            "limits": {"cpu": 1000, "memory": "4000Gi", "nvidia.com/gpu": "8"},
            "disruption": {
                "consolidationPolicy": "WhenEmptyOrUnderutilized",
                "consolidateAfter": "10m",
                "minSavingsPercent": 10,
                "budgets": [{"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * * 1-5", "duration": "8h", "reasons": ["Drifted"]}]
            },
            "budget": {"maxHourlyCost": 60},
            "capacityMix": {"minOnDemandPercent": 30}
        },
        "status": {
            "nodes": 3,
            "hourlyCost": 1.25,
            "resources": {"cpu": "12", "memory": "48Gi"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": "", "lastTransitionTime": "2026-12-04T03:00:00Z", "observedGeneration": 1}]
        }
    })
}

fn nodeclaim() -> Value {
    json!({
        "apiVersion": "purser.dev/v1",
        "kind": "NodeClaim",
        "metadata": {"name": "general-x7k2p", "labels": {"purser.dev/nodepool": "general"}},
        "spec": {
            "requirements": [
                {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["m6i.2xlarge"]},
                {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-east-1a"]},
                {"key": "purser.dev/capacity-type", "operator": "In", "values": ["on-demand"]}
            ],
            "resources": {"requests": {"cpu": "3500m", "memory": "12Gi", "pods": 7}},
            "taints": [{"key": "dedicated", "value": "ml", "effect": "NoSchedule"}],
            "startupTaints": [{"key": "example.com/agent-not-ready", "effect": "NoExecute"}],
            "nodeClassRef": {"group": "purser.dev", "kind": "NodeClass", "name": "default"},
            "expireAfter": "Never",
            "terminationGracePeriod": "48h"
        },
        "status": {
            "providerId": "kwok://general-x7k2p",
            "nodeName": "general-x7k2p",
            "instanceType": "m6i.2xlarge",
            "zone": "us-east-1a",
            "capacityType": "on-demand",
            "price": 0.384,
            "conditions": [{"type": "Launched", "status": "True", "reason": "Launched", "lastTransitionTime": "2026-12-04T03:00:00Z"}]
        }
    })
}

fn nodeclass() -> Value {
    json!({
        "apiVersion": "purser.dev/v1",
        "kind": "NodeClass",
        "metadata": {"name": "default"},
        "spec": {"tags": {"team": "platform", "cost-center": "1234"}, "kwok": {"nodeLabels": {"kwok": "true"}}}
    })
}

fn costbudget() -> Value {
    json!({
        "apiVersion": "purser.dev/v1",
        "kind": "CostBudget",
        "metadata": {"name": "ml"},
        "spec": {"selector": {"namespaces": ["ml"]}, "maxHourlyCost": 40},
        "status": {"runRate": 12.5, "conditions": [{"type": "Exceeded", "status": "False", "reason": "WithinBudget", "lastTransitionTime": "2026-12-04T03:00:00Z"}]}
    })
}

fn changed(mut object: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let target = object.pointer_mut(parent).unwrap();
    match target {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        Value::Object(map) => {
            map.insert(key.to_string(), value);
        }
        _ => panic!("{pointer}: not a container"),
    }
    object
}

#[test]
fn good_objects_pass() {
    for (kind, object) in [
        ("NodePool", nodepool()),
        ("NodeClaim", nodeclaim()),
        ("NodeClass", nodeclass()),
        ("CostBudget", costbudget()),
    ] {
        assert_eq!(rejections(kind, &object, None), Vec::<String>::new(), "{kind}");
    }
    let never = changed(nodepool(), "/spec/template/spec/expireAfter", json!("Never"));
    assert_eq!(rejections("NodePool", &never, None), Vec::<String>::new());
}

const REQ: &str = "/spec/template/spec/requirements";

#[test]
fn bad_nodepools_are_rejected() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "unknown operator",
            json!({"key": "a", "operator": "Above", "values": ["1"]}),
            "not in",
        ),
        (
            "In without values",
            json!({"key": "a", "operator": "In"}),
            "at least one value",
        ),
        (
            "NotIn with empty values",
            json!({"key": "a", "operator": "NotIn", "values": []}),
            "at least one value",
        ),
        (
            "Exists with values",
            json!({"key": "a", "operator": "Exists", "values": ["x"]}),
            "take no values",
        ),
        (
            "Gt with two values",
            json!({"key": "a", "operator": "Gt", "values": ["1", "2"]}),
            "exactly one integer",
        ),
        (
            "Lt with a word",
            json!({"key": "a", "operator": "Lt", "values": ["five"]}),
            "exactly one integer",
        ),
        (
            "minValues above the values",
            json!({"key": "a", "operator": "In", "values": ["x"], "minValues": 2}),
            "minValues",
        ),
        (
            "bad capacity type",
            json!({"key": "karpenter.sh/capacity-type", "operator": "In", "values": ["cheap"]}),
            "capacity type",
        ),
        (
            "bad key",
            json!({"key": "no spaces/allowed here", "operator": "Exists"}),
            "does not match",
        ),
    ];
    for (what, requirement, expected) in cases {
        let object = changed(nodepool(), &format!("{REQ}/1"), requirement);
        let errors = rejections("NodePool", &object, None);
        assert!(errors.iter().any(|e| e.contains(expected)), "{what}: {errors:?}");
    }
}

#[test]
fn bad_nodepool_fields_are_rejected() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/spec/weight", json!(0), "below minimum"),
        ("/spec/weight", json!(101), "above maximum"),
        ("/spec/template/spec/taints/0/effect", json!("Never"), "not in"),
        ("/spec/template/spec/expireAfter", json!("30 days"), "does not match"),
        (
            "/spec/template/spec/terminationGracePeriod",
            json!("Never"),
            "does not match",
        ),
        ("/spec/disruption/consolidationPolicy", json!("Sometimes"), "not in"),
        ("/spec/disruption/consolidateAfter", json!("1d"), "does not match"),
        ("/spec/disruption/minSavingsPercent", json!(120), "above maximum"),
        ("/spec/disruption/budgets/0/nodes", json!("150%"), "does not match"),
        ("/spec/disruption/budgets/1/reasons/0", json!("Bored"), "not in"),
        (
            "/spec/disruption/budgets/0/schedule",
            json!("@daily"),
            "schedule and duration",
        ),
        ("/spec/limits/cpu", json!("lots"), "does not match"),
        ("/spec/limits/cpu", json!(true), "not an integer or string"),
        ("/spec/budget/maxHourlyCost", json!(0), "greater than 0"),
        ("/spec/budget/maxHourlyCost", json!(-5.5), "greater than 0"),
        ("/spec/capacityMix/minOnDemandPercent", json!(150), "above maximum"),
        ("/spec/capacityMix/minOnDemandPercent", json!(-1), "below minimum"),
        (
            "/spec/template/metadata/labels/purser.dev~1nodepool",
            json!("x"),
            "set by Purser",
        ),
        (
            "/spec/template/metadata/labels/team",
            json!("has spaces"),
            "does not match",
        ),
        ("/status/conditions/0/status", json!("Maybe"), "not in"),
        ("/status/conditions/0/reason", json!("not camel case"), "does not match"),
    ];
    for (pointer, value, expected) in cases {
        let object = changed(nodepool(), &pointer.replace("~1", "\u{0}"), value.clone());
        let object = unescape_keys(object);
        let errors = rejections("NodePool", &object, None);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{pointer} = {value}: {errors:?}"
        );
    }
}

/// `changed` splits on `/`; keys holding a slash are written with NUL and restored here.
fn unescape_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.replace('\u{0}', "/"), unescape_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(unescape_keys).collect()),
        other => other,
    }
}

#[test]
fn nodeclaim_spec_is_immutable() {
    let old = nodeclaim();
    let new = changed(nodeclaim(), "/spec/expireAfter", json!("24h"));
    let errors = rejections("NodeClaim", &new, Some(&old));
    assert!(errors.iter().any(|e| e.contains("spec is immutable")), "{errors:?}");
    let status_only = changed(nodeclaim(), "/status/nodeName", json!("other"));
    assert_eq!(rejections("NodeClaim", &status_only, Some(&old)), Vec::<String>::new());
}

#[test]
fn bad_nodeclaims_nodeclasses_and_budgets_are_rejected() {
    let cases: Vec<(&str, Value, &str, Value, &str)> = vec![
        (
            "NodeClaim",
            nodeclaim(),
            "/spec/requirements/0/operator",
            json!("Like"),
            "not in",
        ),
        (
            "NodeClaim",
            nodeclaim(),
            "/spec/resources/requests/cpu",
            json!("a lot"),
            "does not match",
        ),
        (
            "NodeClaim",
            nodeclaim(),
            "/status/capacityType",
            json!("cheap"),
            "not in",
        ),
        (
            "NodeClaim",
            nodeclaim(),
            "/spec/nodeClassRef/name",
            json!(""),
            "shorter than minLength",
        ),
        (
            "NodeClass",
            nodeclass(),
            "/spec/tags/purser.dev~1owner",
            json!("me"),
            "set by Purser",
        ),
        (
            "NodeClass",
            nodeclass(),
            "/spec/kwok/nodeLabels/x",
            json!("bad value!"),
            "does not match",
        ),
        (
            "CostBudget",
            costbudget(),
            "/spec/maxHourlyCost",
            json!(-1),
            "must not be negative",
        ),
        (
            "CostBudget",
            costbudget(),
            "/spec/maxHourlyCost",
            json!("forty"),
            "not of type number",
        ),
    ];
    for (kind, object, pointer, value, expected) in cases {
        let object = unescape_keys(changed(object, &pointer.replace("~1", "\u{0}"), value.clone()));
        let errors = rejections(kind, &object, None);
        assert!(
            errors.iter().any(|e| e.contains(expected)),
            "{kind} {pointer} = {value}: {errors:?}"
        );
    }
}
