//! Label and field selectors, parsed from the `labelSelector` and `fieldSelector` query
//! parameters (or a PDB's `spec.selector`) and matched against stored JSON objects.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{ApiError, Result};

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parse the string grammar: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`,
    /// `a>1`, `a<1`, joined by commas.
    pub fn parse(text: &str) -> Result<Self> {
        let mut requirements = Vec::new();
        for term in split_top_level(text) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            requirements.push(
                parse_requirement(term)
                    .map_err(|why| ApiError::BadRequest(format!("unable to parse requirement \"{term}\": {why}")))?,
            );
        }
        Ok(LabelSelector(requirements))
    }

    /// The selector of a `metav1.LabelSelector` object (`matchLabels` and `matchExpressions`).
    /// A missing selector matches nothing, as for a PodDisruptionBudget.
    pub fn from_object(selector: Option<&Value>) -> Result<Option<Self>> {
        let Some(selector) = selector else {
            return Ok(None);
        };
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or_default().to_owned();
                requirements.push(Requirement::In(key.clone(), vec![value]));
            }
        }
        let expressions = selector.get("matchExpressions").and_then(Value::as_array);
        for expression in expressions.into_iter().flatten() {
            requirements.push(expression_requirement(expression)?);
        }
        Ok(Some(LabelSelector(requirements)))
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| requirement_matches(r, labels))
    }

    /// Whether the object's `metadata.labels` satisfy the selector.
    pub fn matches_object(&self, object: &Value) -> bool {
        self.matches(&labels_of(object))
    }
}

/// The labels of a stored object.
pub fn labels_of(object: &Value) -> BTreeMap<String, String> {
    object
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn expression_requirement(expression: &Value) -> Result<Requirement> {
    let key = expression
        .get("key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let values: Vec<String> = expression
        .get("values")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default();
    match expression.get("operator").and_then(Value::as_str) {
        Some("In") => Ok(Requirement::In(key, values)),
        Some("NotIn") => Ok(Requirement::NotIn(key, values)),
        Some("Exists") => Ok(Requirement::Exists(key)),
        Some("DoesNotExist") => Ok(Requirement::NotExists(key)),
        other => Err(ApiError::BadRequest(format!(
            "{other:?} is not a valid label selector operator"
        ))),
    }
}

fn requirement_matches(requirement: &Requirement, labels: &BTreeMap<String, String>) -> bool {
    match requirement {
        Requirement::Exists(k) => labels.contains_key(k),
        Requirement::NotExists(k) => !labels.contains_key(k),
        Requirement::In(k, values) => labels.get(k).is_some_and(|v| values.contains(v)),
        Requirement::NotIn(k, values) => labels.get(k).is_none_or(|v| !values.contains(v)),
        Requirement::Gt(k, n) => labels
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v > *n),
        Requirement::Lt(k, n) => labels
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|v| v < *n),
    }
}

fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/')
}

fn parse_requirement(term: &str) -> std::result::Result<Requirement, String> {
    if let Some(rest) = term.strip_prefix('!') {
        let key = rest.trim();
        check_key(key)?;
        return Ok(Requirement::NotExists(key.to_owned()));
    }
    let key_end = term.find(|c: char| !is_key_char(c)).unwrap_or(term.len());
    let key = &term[..key_end];
    check_key(key)?;
    let rest = term[key_end..].trim_start();
    if rest.is_empty() {
        return Ok(Requirement::Exists(key.to_owned()));
    }
    parse_operator(key.to_owned(), rest)
}

fn parse_operator(key: String, rest: &str) -> std::result::Result<Requirement, String> {
    if let Some(v) = rest.strip_prefix("!=") {
        return Ok(Requirement::NotIn(key, vec![single_value(v)?]));
    }
    if let Some(v) = rest.strip_prefix("==").or_else(|| rest.strip_prefix('=')) {
        return Ok(Requirement::In(key, vec![single_value(v)?]));
    }
    if let Some(v) = rest.strip_prefix('>') {
        return Ok(Requirement::Gt(key, integer(v)?));
    }
    if let Some(v) = rest.strip_prefix('<') {
        return Ok(Requirement::Lt(key, integer(v)?));
    }
    if let Some(v) = rest.strip_prefix("notin") {
        return Ok(Requirement::NotIn(key, value_set(v)?));
    }
    if let Some(v) = rest.strip_prefix("in") {
        return Ok(Requirement::In(key, value_set(v)?));
    }
    Err(format!("unknown operator in \"{rest}\""))
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() || !key.chars().all(is_key_char) {
        return Err(format!("invalid label key \"{key}\""));
    }
    Ok(())
}

fn single_value(text: &str) -> std::result::Result<String, String> {
    let value = text.trim();
    if !value.chars().all(is_key_char) {
        return Err(format!("invalid label value \"{value}\""));
    }
    Ok(value.to_owned())
}

fn integer(text: &str) -> std::result::Result<i64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("\"{}\" is not an integer", text.trim()))
}

fn value_set(text: &str) -> std::result::Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| "expected a parenthesised set of values".to_owned())?;
    inner.split(',').map(single_value).collect()
}

/// A parsed field selector: conjunction of `path=value` / `path!=value` terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parse `a=b,c!=d`; `supported` says which field paths the resource allows.
    pub fn parse(text: &str, supported: impl Fn(&str) -> bool) -> Result<Self> {
        let mut terms = Vec::new();
        for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (path, equal, value) = split_field_term(term).ok_or_else(|| {
                ApiError::BadRequest(format!("invalid selector: '{text}'; can't understand '{term}'"))
            })?;
            if !supported(path) {
                return Err(ApiError::BadRequest(format!("field label not supported: {path}")));
            }
            terms.push((path.to_owned(), equal, value.to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether every term holds for `object`; a missing field counts as the empty string.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let actual = field_value(object, path);
            (actual == *value) == *equal
        })
    }
}

fn split_field_term(term: &str) -> Option<(&str, bool, &str)> {
    if let Some((path, value)) = term.split_once("!=") {
        return Some((path.trim(), false, value.trim()));
    }
    if let Some((path, value)) = term.split_once("==") {
        return Some((path.trim(), true, value.trim()));
    }
    term.split_once('=')
        .map(|(path, value)| (path.trim(), true, value.trim()))
}

fn field_value(object: &Value, path: &str) -> String {
    let pointer = format!("/{}", path.replace('.', "/"));
    match object.pointer(&pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Field paths the real server accepts in a field selector for resource `group/plural`.
pub fn field_supported(group: &str, plural: &str, path: &str) -> bool {
    if matches!(path, "metadata.name" | "metadata.namespace") {
        return true;
    }
    match (group, plural) {
        ("", "pods") => matches!(
            path,
            "spec.nodeName"
                | "spec.schedulerName"
                | "spec.serviceAccountName"
                | "spec.restartPolicy"
                | "spec.hostNetwork"
                | "status.phase"
                | "status.podIP"
                | "status.nominatedNodeName"
        ),
        ("", "nodes") => path == "spec.unschedulable",
        ("", "events") => {
            path.starts_with("involvedObject.") || matches!(path, "reason" | "reportingComponent" | "source" | "type")
        }
        ("events.k8s.io", "events") => path.starts_with("regarding.") || matches!(path, "reason" | "type"),
        ("", "namespaces") => path == "status.phase",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn set_based_grammar() {
        let s = LabelSelector::parse("app in (web, api),tier notin (db),!legacy,env,x!=y").unwrap();
        assert!(s.matches(&labels(&[("app", "web"), ("env", "prod")])));
        assert!(!s.matches(&labels(&[("app", "web")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "p"), ("legacy", "1")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "p"), ("tier", "db")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("env", "p"), ("x", "y")])));
    }

    #[test]
    fn bad_selector_is_bad_request() {
        assert!(LabelSelector::parse("a in b").is_err());
        assert!(LabelSelector::parse("a ~ b").is_err());
    }

    #[test]
    fn field_selector_missing_field_is_empty() {
        let s = FieldSelector::parse("spec.nodeName=", |_| true).unwrap();
        assert!(s.matches(&serde_json::json!({"spec": {}})));
        let s = FieldSelector::parse("status.phase!=Running", |_| true).unwrap();
        assert!(!s.matches(&serde_json::json!({"status": {"phase": "Running"}})));
    }
}
