//! CEL rules (`x-kubernetes-validations`) of a CRD schema, evaluated with the `kube-cel`
//! crate, which provides Kubernetes' CEL library and binds `self` / `oldSelf` per schema node.
//!
//! In: the schema, the new object and (on update) the old one. Out: one cause per failed rule.

use serde_json::Value;

use crate::error::Cause;

/// The compiled CEL rules of one schema.
#[derive(Debug)]
pub struct Rules(kube_cel::CompiledSchema);

impl Rules {
    /// Compile every rule in `schema`; the error names the first rule that does not compile.
    pub fn compile(schema: &Value) -> Result<Self, String> {
        let compiled = kube_cel::compile_schema(schema);
        if let Some(error) = first_error(&compiled) {
            return Err(error);
        }
        Ok(Rules(compiled))
    }

    /// One cause per failed rule; transition rules run only when `old` is given.
    pub fn evaluate(&self, object: &Value, old: Option<&Value>) -> Vec<Cause> {
        match kube_cel::Validator::new().validate_compiled(&self.0, object, old) {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(|e| to_cause(e, object)).collect(),
        }
    }
}

/// Fill missing fields from the schema's `default`s.
pub fn apply_defaults(schema: &Value, object: &Value) -> Value {
    kube_cel::apply_defaults(schema, object)
}

fn first_error(node: &kube_cel::CompiledSchema) -> Option<String> {
    if let Some(error) = node.compilation_errors().first() {
        return Some(format!("invalid x-kubernetes-validations rule: {error}"));
    }
    let children = node
        .properties
        .values()
        .chain(node.items.as_deref())
        .chain(node.additional_properties.as_deref())
        .chain(node.all_of.iter())
        .chain(node.one_of.iter())
        .chain(node.any_of.iter());
    children.into_iter().find_map(first_error)
}

/// The JSON type of the value at a dotted `path` such as `spec.items[0].size`, as the API
/// server names it in `Invalid value: "<type>"`.
fn type_at(object: &Value, path: &str) -> &'static str {
    let mut current = Some(object);
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        current = current.and_then(|v| v.get(name));
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let index = index.trim_end_matches(']');
            current = current.and_then(|v| match index.parse::<usize>() {
                Ok(i) => v.get(i),
                Err(_) => v.get(index),
            });
        }
    }
    match current {
        Some(Value::Array(_)) => "array",
        Some(Value::String(_)) => "string",
        Some(Value::Number(n)) if n.is_f64() => "number",
        Some(Value::Number(_)) => "integer",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Null) => "null",
        _ => "object",
    }
}

fn to_cause(error: &kube_cel::ValidationError, object: &Value) -> Cause {
    let reason = error.reason.clone().unwrap_or_else(|| "FieldValueInvalid".to_owned());
    let message = if error.message.is_empty() {
        format!("failed rule: {}", error.rule)
    } else {
        error.message.clone()
    };
    Cause::new(
        &reason,
        &error.field_path,
        format!("Invalid value: \"{}\": {message}", type_at(object, &error.field_path)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rule_and_transition_rule() {
        let schema = json!({
            "type": "object",
            "properties": {"spec": {
                "type": "object",
                "x-kubernetes-validations": [
                    {"rule": "self.min <= self.max", "message": "min must not exceed max"},
                    {"rule": "self.max >= oldSelf.max", "message": "max may not shrink"}
                ],
                "properties": {"min": {"type": "integer"}, "max": {"type": "integer"}}
            }}
        });
        let rules = Rules::compile(&schema).unwrap();
        let bad = rules.evaluate(&json!({"spec": {"min": 3, "max": 2}}), None);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].field, "spec");
        assert!(bad[0].message.contains("min must not exceed max"));
        let old = json!({"spec": {"min": 1, "max": 5}});
        let shrunk = rules.evaluate(&json!({"spec": {"min": 1, "max": 4}}), Some(&old));
        assert!(shrunk[0].message.contains("max may not shrink"));
        assert!(bad[0].message.starts_with("Invalid value: \"object\""));
        assert_eq!(type_at(&json!({"a": {"b": [1, {"c": "x"}]}}), "a.b[1].c"), "string");
        assert_eq!(type_at(&json!({"a": {"b": [1]}}), "a.b[0]"), "integer");
    }

    #[test]
    fn bad_rule_does_not_compile() {
        assert!(Rules::compile(&json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.(("}]})).is_err());
    }
}
