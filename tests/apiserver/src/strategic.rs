//! Strategic merge patch for built-in types: maps merge, null deletes, and the lists that
//! Kubernetes marks `patchStrategy: merge` are merged by their `patchMergeKey` (or as sets of
//! primitives, like `metadata.finalizers`) instead of being replaced. Directives `$patch`
//! (`replace`, `delete`), `$retainKeys` and `$deleteFromPrimitiveList/<field>` are honoured;
//! `$setElementOrder/<field>` is accepted and ignored.
//!
//! In: the stored object and a patch. Out: the patched object.

use serde_json::{Map, Value};

/// How a list field is patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListStrategy {
    Replace,
    MergeByKey(&'static str),
    PrimitiveSet,
}

/// The built-in lists with a merge strategy, keyed by field name and, for `ports`, context.
fn list_strategy(field: &str, parents: &[String]) -> ListStrategy {
    let in_container = parents
        .iter()
        .any(|p| matches!(p.as_str(), "containers" | "initContainers" | "ephemeralContainers"));
    match field {
        "finalizers" => ListStrategy::PrimitiveSet,
        "ownerReferences" => ListStrategy::MergeByKey("uid"),
        "conditions" | "addresses" => ListStrategy::MergeByKey("type"),
        "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => {
            ListStrategy::MergeByKey("name")
        }
        "volumeMounts" => ListStrategy::MergeByKey("mountPath"),
        "volumeDevices" => ListStrategy::MergeByKey("devicePath"),
        "hostAliases" => ListStrategy::MergeByKey("ip"),
        "ports" if in_container => ListStrategy::MergeByKey("containerPort"),
        "ports" => ListStrategy::MergeByKey("port"),
        _ => ListStrategy::Replace,
    }
}

const DELETE_FROM: &str = "$deleteFromPrimitiveList/";
const SET_ORDER: &str = "$setElementOrder/";

/// `original` with the strategic merge `patch` applied.
pub fn merge(original: &Value, patch: &Value) -> Value {
    let mut out = original.clone();
    merge_value(&mut out, patch, &mut Vec::new());
    out
}

fn merge_value(target: &mut Value, patch: &Value, path: &mut Vec<String>) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if directive(patch_map) == Some("replace") {
        *target = without_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Some(map) = target.as_object_mut() else {
        return;
    };
    if let Some(keep) = patch_map.get("$retainKeys").and_then(Value::as_array) {
        map.retain(|k, _| keep.iter().any(|v| v.as_str() == Some(k)));
    }
    for (key, value) in patch_map {
        if key == "$patch" || key == "$retainKeys" || key.starts_with(SET_ORDER) {
            continue;
        }
        if let Some(field) = key.strip_prefix(DELETE_FROM) {
            delete_from_list(map, field, value);
            continue;
        }
        merge_field(map, key, value, path);
    }
}

fn merge_field(map: &mut Map<String, Value>, key: &str, value: &Value, path: &mut Vec<String>) {
    let deletes = value.is_null() || value.as_object().and_then(directive) == Some("delete");
    if deletes {
        map.remove(key);
        return;
    }
    path.push(key.to_owned());
    match value {
        Value::Array(items) => {
            let strategy = list_strategy(key, &path[..path.len() - 1]);
            let current = map.remove(key).unwrap_or(Value::Null);
            map.insert(key.to_owned(), merge_list(current, items, strategy, path));
        }
        Value::Object(_) => {
            let slot = map.entry(key.to_owned()).or_insert(Value::Null);
            merge_value(slot, value, path);
        }
        _ => {
            map.insert(key.to_owned(), value.clone());
        }
    }
    path.pop();
}

fn merge_list(current: Value, patch: &[Value], strategy: ListStrategy, path: &mut Vec<String>) -> Value {
    let replace_all = patch
        .iter()
        .any(|p| p.as_object().and_then(directive) == Some("replace"));
    let Value::Array(mut items) = current else {
        return without_directives(&Value::Array(patch.to_vec()));
    };
    if replace_all {
        let rest: Vec<Value> = patch
            .iter()
            .filter(|p| p.as_object().and_then(directive) != Some("replace"))
            .cloned()
            .collect();
        return without_directives(&Value::Array(rest));
    }
    match strategy {
        ListStrategy::Replace => return without_directives(&Value::Array(patch.to_vec())),
        ListStrategy::PrimitiveSet => {
            for p in patch {
                if !items.contains(p) {
                    items.push(p.clone());
                }
            }
        }
        ListStrategy::MergeByKey(merge_key) => {
            for p in patch {
                merge_element(&mut items, p, merge_key, path);
            }
        }
    }
    Value::Array(items)
}

fn merge_element(items: &mut Vec<Value>, patch: &Value, merge_key: &str, path: &mut Vec<String>) {
    let Some(wanted) = patch.get(merge_key) else {
        items.push(without_directives(patch));
        return;
    };
    let position = items.iter().position(|i| i.get(merge_key) == Some(wanted));
    let deletes = patch.as_object().and_then(directive) == Some("delete");
    match (position, deletes) {
        (Some(i), true) => {
            items.remove(i);
        }
        (Some(i), false) => merge_value(&mut items[i], patch, path),
        (None, true) => {}
        (None, false) => items.push(without_directives(patch)),
    }
}

fn delete_from_list(map: &mut Map<String, Value>, field: &str, values: &Value) {
    let Some(remove) = values.as_array() else {
        return;
    };
    if let Some(list) = map.get_mut(field).and_then(Value::as_array_mut) {
        list.retain(|v| !remove.contains(v));
    }
}

fn directive(map: &Map<String, Value>) -> Option<&str> {
    map.get("$patch").and_then(Value::as_str)
}

/// `value` with every `$`-directive key removed, for content inserted as is.
pub fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finalizers_are_a_set_and_conditions_merge_by_type() {
        let pod = json!({
            "metadata": {"finalizers": ["a"]},
            "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}]}
        });
        let patch = json!({
            "metadata": {"finalizers": ["b"]},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Custom", "status": "True"}]}
        });
        let out = merge(&pod, &patch);
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}, {"type": "Custom", "status": "True"}])
        );
    }

    #[test]
    fn directives() {
        let node = json!({"metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
            "spec": {"taints": [{"key": "k"}]},
            "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "h"}]}});
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"], "labels": {"$patch": "replace", "z": "3"}},
            "spec": {"taints": [{"key": "j"}]},
            "status": {"addresses": [{"type": "Hostname", "$patch": "delete"}], "$setElementOrder/addresses": []}
        });
        let out = merge(&node, &patch);
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
        assert_eq!(out["metadata"]["labels"], json!({"z": "3"}));
        assert_eq!(out["spec"]["taints"], json!([{"key": "j"}]), "taints are replaced");
        assert_eq!(
            out["status"]["addresses"],
            json!([{"type": "InternalIP", "address": "10.0.0.1"}])
        );
    }

    #[test]
    fn container_ports_merge_by_container_port() {
        let pod = json!({"spec": {"containers": [{"name": "c", "image": "a", "ports": [{"containerPort": 80}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "c", "image": "b", "ports": [{"containerPort": 81}]}]}});
        let out = merge(&pod, &patch);
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "b", "ports": [{"containerPort": 80}, {"containerPort": 81}]}])
        );
    }
}
