//! Structural-schema handling for custom resources: pruning, defaulting and validation
//! against a CRD version's `openAPIV3Schema`.
//!
//! In: the schema and a candidate object (plus the old object on update). Out: the pruned,
//! defaulted object, or the list of field causes the API server would report with 422.

use serde_json::{Map, Value};

use crate::cel;
use crate::error::Cause;

/// A CRD version's schema, with its CEL rules compiled once.
#[derive(Debug)]
pub struct CompiledSchema {
    raw: Value,
    rules: cel::Rules,
}

impl CompiledSchema {
    /// Compile `schema`; an error names the first rule that does not compile.
    pub fn new(schema: &Value) -> Result<Self, String> {
        if !schema.is_object() {
            return Err("must be an object".to_owned());
        }
        Ok(CompiledSchema {
            raw: schema.clone(),
            rules: cel::Rules::compile(schema)?,
        })
    }

    /// Prune unknown fields and apply defaults, as the server does before validating.
    pub fn prune_and_default(&self, object: &mut Value) {
        prune_root(&self.raw, object);
        *object = cel::apply_defaults(&self.raw, object);
    }

    /// Every violation of the schema and its CEL rules by `object`.
    pub fn validate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        let mut causes = Vec::new();
        validate_root(&self.raw, object, &mut causes);
        if causes.is_empty() {
            causes.extend(self.rules.evaluate(object, old));
        }
        causes
    }
}

const ROOT_META: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn prune_root(schema: &Value, object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    for (key, value) in map.iter_mut() {
        if let Some(sub) = property_schema(schema, key) {
            prune(sub, value);
        }
    }
    if !preserves_unknown(schema) {
        map.retain(|key, _| ROOT_META.contains(&key.as_str()) || property_schema(schema, key).is_some());
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn property_schema<'a>(schema: &'a Value, key: &str) -> Option<&'a Value> {
    schema.get("properties").and_then(|p| p.get(key))
}

fn additional_schema(schema: &Value) -> Option<&Value> {
    schema.get("additionalProperties").filter(|a| a.is_object())
}

fn prune(schema: &Value, value: &mut Value) {
    match value {
        Value::Object(map) => prune_object(schema, map),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                items.iter_mut().for_each(|item| prune(item_schema, item));
            }
        }
        _ => {}
    }
}

fn prune_object(schema: &Value, map: &mut Map<String, Value>) {
    let embedded = schema.get("x-kubernetes-embedded-resource").and_then(Value::as_bool) == Some(true);
    let keep_all = preserves_unknown(schema) || schema.get("additionalProperties") == Some(&Value::Bool(true));
    let additional = additional_schema(schema);
    map.retain(|key, value| {
        let sub = property_schema(schema, key).or(additional);
        let nullable = sub.and_then(|s| s.get("nullable")).and_then(Value::as_bool) == Some(true);
        if value.is_null() && sub.is_some() && !nullable {
            return false;
        }
        sub.is_some() || keep_all || (embedded && ROOT_META.contains(&key.as_str()))
    });
    for (key, value) in map.iter_mut() {
        if let Some(sub) = property_schema(schema, key).or(additional) {
            prune(sub, value);
        }
    }
}

fn validate_root(schema: &Value, object: &Value, causes: &mut Vec<Cause>) {
    let Some(map) = object.as_object() else {
        causes.push(Cause::new("FieldValueTypeInvalid", "", "must be of type object"));
        return;
    };
    check_required(schema, map, "", causes);
    for (key, value) in map {
        if ROOT_META.contains(&key.as_str()) {
            continue;
        }
        if let Some(sub) = property_schema(schema, key) {
            validate(sub, value, key, causes);
        }
    }
}

/// Validate `value` at `path` against `schema`, appending causes.
fn validate(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: \"null\": {path} in body must be of type {}",
                    type_name(schema)
                ),
            ));
        }
        return;
    }
    if !type_matches(schema, value) {
        causes.push(Cause::new(
            "FieldValueTypeInvalid",
            path,
            format!(
                "Invalid value: \"{}\": {path} in body must be of type {}: \"{}\"",
                json_type(value),
                type_name(schema),
                json_type(value)
            ),
        ));
        return;
    }
    check_enum(schema, value, path, causes);
    check_combinators(schema, value, path, causes);
    match value {
        Value::Object(map) => validate_object(schema, map, path, causes),
        Value::Array(items) => validate_array(schema, items, path, causes),
        Value::String(s) => validate_string(schema, s, path, causes),
        Value::Number(_) => validate_number(schema, value, path, causes),
        _ => {}
    }
}

fn type_name(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("object")
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(schema: &Value, value: &Value) -> bool {
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return matches!(json_type(value), "integer" | "string");
    }
    match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("number") => value.is_number(),
        Some(expected) => json_type(value) == expected,
    }
}

fn check_enum(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(allowed) = schema.get("enum").and_then(Value::as_array) else {
        return;
    };
    if allowed.contains(value) {
        return;
    }
    let list = allowed.iter().map(Value::to_string).collect::<Vec<_>>().join(", ");
    causes.push(Cause::new(
        "FieldValueNotSupported",
        path,
        format!("Unsupported value: {value}: supported values: {list}"),
    ));
}

fn passes(schema: &Value, value: &Value, path: &str) -> bool {
    let mut causes = Vec::new();
    validate(schema, value, path, &mut causes);
    causes.is_empty()
}

/// `allOf`, `anyOf`, `oneOf` and `not`, which structural schemas allow as value validations.
fn check_combinators(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let branches = |key: &str| schema.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    for sub in branches("allOf") {
        validate(&sub, value, path, causes);
    }
    let shown = value_text(value);
    let any = branches("anyOf");
    if !any.is_empty() && !any.iter().any(|s| passes(s, value, path)) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {shown}: must validate at least one schema (anyOf)"),
        ));
    }
    let one = branches("oneOf");
    let valid = one.iter().filter(|s| passes(s, value, path)).count();
    if !one.is_empty() && valid != 1 {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {shown}: must validate one and only one schema (oneOf), {valid} valid"),
        ));
    }
    if let Some(not) = schema.get("not")
        && passes(not, value, path)
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {shown}: must not validate the schema (not)"),
        ));
    }
}

fn value_text(value: &Value) -> String {
    match value {
        Value::Object(_) | Value::Array(_) => format!("\"{}\"", json_type(value)),
        other => other.to_string(),
    }
}

fn check_required(schema: &Value, map: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    let required = schema.get("required").and_then(Value::as_array);
    for key in required.into_iter().flatten().filter_map(Value::as_str) {
        if !map.contains_key(key) {
            causes.push(Cause::new("FieldValueRequired", &join(path, key), "Required value"));
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn validate_object(schema: &Value, map: &Map<String, Value>, path: &str, causes: &mut Vec<Cause>) {
    check_required(schema, map, path, causes);
    let count = map.len() as u64;
    if let Some(min) = schema
        .get("minProperties")
        .and_then(Value::as_u64)
        .filter(|m| count < *m)
    {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {count}: {path} in body should have at least {min} properties"),
        ));
    }
    if let Some(max) = schema
        .get("maxProperties")
        .and_then(Value::as_u64)
        .filter(|m| count > *m)
    {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {count}: must have at most {max} items"),
        ));
    }
    let additional = additional_schema(schema);
    for (key, value) in map {
        let child = if additional.is_some() && property_schema(schema, key).is_none() {
            format!("{path}[{key}]")
        } else {
            join(path, key)
        };
        if let Some(sub) = property_schema(schema, key).or(additional) {
            validate(sub, value, &child, causes);
        }
    }
}

fn validate_array(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let count = items.len() as u64;
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64).filter(|m| count < *m) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: {count}: {path} in body should have at least {min} items"),
        ));
    }
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64).filter(|m| count > *m) {
        causes.push(Cause::new(
            "FieldValueTooMany",
            path,
            format!("Too many: {count}: must have at most {max} items"),
        ));
    }
    check_list_type(schema, items, path, causes);
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"), causes);
        }
    }
}

/// Uniqueness of `x-kubernetes-list-type: set` items and `map` keys.
fn check_list_type(schema: &Value, items: &[Value], path: &str, causes: &mut Vec<Cause>) {
    let identity = |item: &Value| -> Value {
        match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("map") => {
                let keys = schema.get("x-kubernetes-list-map-keys").and_then(Value::as_array);
                let pairs = keys
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|k| (k.to_owned(), item.get(k).cloned().unwrap_or(Value::Null)));
                Value::Object(pairs.collect())
            }
            _ => item.clone(),
        }
    };
    if !matches!(
        schema.get("x-kubernetes-list-type").and_then(Value::as_str),
        Some("set" | "map")
    ) {
        return;
    }
    let mut seen: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let id = identity(item);
        if seen.contains(&id) {
            causes.push(Cause::new(
                "FieldValueDuplicate",
                &format!("{path}[{i}]"),
                format!("Duplicate value: {id}"),
            ));
        } else {
            seen.push(id);
        }
    }
}

fn validate_string(schema: &Value, s: &str, path: &str, causes: &mut Vec<Cause>) {
    if schema.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) && schema.get("type").is_none() {
        return;
    }
    let length = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64).filter(|m| length < *m) {
        causes.push(Cause::new(
            "FieldValueInvalid",
            path,
            format!("Invalid value: \"{s}\": {path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64).filter(|m| length > *m) {
        causes.push(Cause::new(
            "FieldValueTooLong",
            path,
            format!("Too long: may not be more than {max} bytes"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        let matched = regex::Regex::new(pattern).map(|re| re.is_match(s)).unwrap_or(false);
        if !matched {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!("Invalid value: \"{s}\": {path} in body should match '{pattern}'"),
            ));
        }
    }
}

fn validate_number(schema: &Value, value: &Value, path: &str, causes: &mut Vec<Cause>) {
    let Some(n) = value.as_f64() else {
        return;
    };
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let (bad, words) = if exclusive("exclusiveMinimum") {
            (n <= min, "greater than")
        } else {
            (n < min, "greater than or equal to")
        };
        if bad {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {value}: {path} in body should be {words} {}",
                    number(min)
                ),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let (bad, words) = if exclusive("exclusiveMaximum") {
            (n >= max, "less than")
        } else {
            (n > max, "less than or equal to")
        };
        if bad {
            causes.push(Cause::new(
                "FieldValueInvalid",
                path,
                format!(
                    "Invalid value: {value}: {path} in body should be {words} {}",
                    number(max)
                ),
            ));
        }
    }
}

fn number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> CompiledSchema {
        CompiledSchema::new(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10},
                        "mode": {"type": "string", "enum": ["a", "b"]},
                        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 5},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "port": {"x-kubernetes-int-or-string": true},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "opt": {"type": "string", "nullable": true}
                    }
                }
            }
        }))
        .unwrap()
    }

    fn fields(causes: &[Cause]) -> Vec<&str> {
        causes.iter().map(|c| c.field.as_str()).collect()
    }

    #[test]
    fn reports_each_violation_with_its_path() {
        let s = schema();
        let obj = json!({"spec": {"size": 0, "mode": "c", "name": "ABCDEFG", "tags": ["x", "y", "z"], "port": true, "labels": {"k": 1}}});
        let causes = s.validate(&obj, None);
        let f = fields(&causes);
        for expected in [
            "spec.size",
            "spec.mode",
            "spec.name",
            "spec.tags",
            "spec.port",
            "spec.labels[k]",
        ] {
            assert!(f.contains(&expected), "{expected} missing from {causes:?}");
        }
        let missing = s.validate(&json!({"spec": {}}), None);
        assert_eq!(missing[0].reason, "FieldValueRequired");
        assert_eq!(missing[0].field, "spec.size");
    }

    #[test]
    fn combinators_and_list_types() {
        let s = CompiledSchema::new(&json!({
            "type": "object",
            "properties": {"spec": {"type": "object", "properties": {
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}], "x-kubernetes-int-or-string": true},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "conds": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                    "items": {"type": "object", "properties": {"type": {"type": "string"}}}},
                "small": {"type": "integer", "not": {"minimum": 5}, "anyOf": [{"maximum": 1}, {"minimum": 3}]}
            }}}
        }))
        .unwrap();
        let good =
            json!({"spec": {"either": 1, "tags": ["a", "b"], "conds": [{"type": "A"}, {"type": "B"}], "small": 3}});
        assert!(s.validate(&good, None).is_empty());
        let bad = json!({"spec": {"tags": ["a", "a"], "conds": [{"type": "A"}, {"type": "A"}], "small": 2}});
        let f: Vec<String> = s.validate(&bad, None).into_iter().map(|c| c.field).collect();
        assert_eq!(f, ["spec.conds[1]", "spec.small", "spec.tags[1]"]);
        let high = json!({"spec": {"small": 7}});
        assert_eq!(s.validate(&high, None)[0].field, "spec.small");
    }

    #[test]
    fn prunes_unknown_fields_but_keeps_preserved_ones() {
        let s = schema();
        let mut obj = json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "n"}, "extra": 1,
            "spec": {"size": 1, "bogus": true, "free": {"anything": [1]}, "labels": {"a": "b"}, "mode": null, "opt": null}});
        s.prune_and_default(&mut obj);
        assert_eq!(obj.get("extra"), None);
        assert_eq!(obj.pointer("/spec/bogus"), None);
        assert_eq!(obj.pointer("/spec/mode"), None);
        assert_eq!(obj.pointer("/spec/opt"), Some(&Value::Null));
        assert_eq!(obj.pointer("/spec/free/anything/0"), Some(&json!(1)));
        assert_eq!(obj.pointer("/spec/labels/a"), Some(&json!("b")));
        assert!(s.validate(&obj, None).is_empty());
    }
}
