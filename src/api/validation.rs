//! Schema pieces the API server checks: patterns for durations, quantities and label keys, and
//! the int-or-string quantity maps users write as `cpu: 1000` or `memory: 4000Gi`.
//!
//! In: nothing at run time; these feed the generated CRD schemas. Out: JSON-schema fragments and
//! a serde helper that reads numbers in quantity maps as strings.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A Go-style duration as the disruption engine reads it (`90s`, `1h30m`, `0`).
pub const DURATION_PATTERN: &str = "^(0|([0-9]+[hms])+)$";
/// A duration or `Never`.
pub const DURATION_OR_NEVER_PATTERN: &str = "^(0|([0-9]+[hms])+|Never)$";
/// A Kubernetes quantity (`2`, `500m`, `4000Gi`, `1e3`), as `resource.Quantity` parses it.
pub const QUANTITY_PATTERN: &str = r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$";
/// A qualified name with an optional DNS-subdomain prefix: a label or taint key.
pub const QUALIFIED_NAME_PATTERN: &str =
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$";
/// A label value (possibly empty).
pub const LABEL_VALUE_PATTERN: &str = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$";
/// A DNS-1123 subdomain: the name of a cluster object.
pub const DNS_SUBDOMAIN_PATTERN: &str = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";

/// Requirement operators.
pub const OPERATORS: [&str; 6] = ["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"];
/// Taint effects.
pub const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
/// Consolidation policies.
pub const CONSOLIDATION_POLICIES: [&str; 2] = ["WhenEmpty", "WhenEmptyOrUnderutilized"];
/// Capacity types.
pub const CAPACITY_TYPES: [&str; 3] = ["on-demand", "spot", "reserved"];
/// Reasons a disruption budget may name.
pub const BUDGET_REASONS: [&str; 5] = ["Empty", "Underutilized", "GpuIdle", "Drifted", "Expired"];

/// Schema of a map of resource name to quantity, accepting `1000` as well as `"1000"`.
pub fn quantity_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": {"pattern": QUANTITY_PATTERN, "x-kubernetes-int-or-string": true},
    })
}

/// Schema of a label map: at most 100 entries, values that are label values.
pub fn label_map_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "maxProperties": 100,
        "additionalProperties": {"type": "string", "maxLength": 63, "pattern": LABEL_VALUE_PATTERN},
    })
}

/// A quantity map entry as written: a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Int(i64),
    Float(f64),
    Text(String),
}

impl NumberOrString {
    fn into_string(self) -> String {
        match self {
            NumberOrString::Int(n) => n.to_string(),
            NumberOrString::Float(f) => f.to_string(),
            NumberOrString::Text(s) => s,
        }
    }
}

/// Read a quantity map whose values may be numbers (`cpu: 1000`) or strings.
pub fn quantity_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw = BTreeMap::<String, NumberOrString>::deserialize(deserializer)?;
    Ok(raw.into_iter().map(|(k, v)| (k, v.into_string())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Limits {
        #[serde(deserialize_with = "quantity_map")]
        limits: BTreeMap<String, String>,
    }

    #[test]
    fn numbers_in_quantity_maps_become_strings() {
        let l: Limits = serde_json::from_str(r#"{"limits": {"cpu": 1000, "memory": "4000Gi", "x": 1.5}}"#).unwrap();
        assert_eq!(l.limits["cpu"], "1000");
        assert_eq!(l.limits["memory"], "4000Gi");
        assert_eq!(l.limits["x"], "1.5");
    }

    #[test]
    fn quantity_schema_is_int_or_string() {
        let s = quantity_map_schema(&mut schemars::SchemaGenerator::default());
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["additionalProperties"]["x-kubernetes-int-or-string"], true);
        assert_eq!(v["additionalProperties"]["pattern"], QUANTITY_PATTERN);
    }
}
