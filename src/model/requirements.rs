//! Node selector requirements: `In`, `NotIn`, `Exists`, `DoesNotExist`, `Gt`, `Lt`, evaluated
//! against concrete node labels.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::core::v1::{NodeSelectorRequirement, NodeSelectorTerm};
use serde::{Deserialize, Serialize};

use super::labels::canonical_key;

/// A requirement operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operator {
    /// The label value is one of the values.
    In,
    /// The label is absent or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
    /// The label is an integer greater than the single value.
    Gt,
    /// The label is an integer less than the single value.
    Lt,
}

/// Why a requirement is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequirementError {
    /// The operator is not one Kubernetes defines.
    #[error("unknown operator {0:?} (expected In, NotIn, Exists, DoesNotExist, Gt or Lt)")]
    UnknownOperator(String),
    /// Gt/Lt need exactly one integer value.
    #[error("operator {op} on key {key:?} needs exactly one integer value, got {values:?}")]
    NotAnInteger {
        /// The operator.
        op: &'static str,
        /// The label key.
        key: String,
        /// The values given.
        values: Vec<String>,
    },
    /// In/NotIn need at least one value.
    #[error("operator {op} on key {key:?} needs at least one value")]
    NoValues {
        /// The operator.
        op: &'static str,
        /// The label key.
        key: String,
    },
    /// Exists/DoesNotExist take no values.
    #[error("operator {op} on key {key:?} takes no values, got {values:?}")]
    UnexpectedValues {
        /// The operator.
        op: &'static str,
        /// The label key.
        key: String,
        /// The values given.
        values: Vec<String>,
    },
}

/// One requirement on a node label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Requirement {
    /// Label key, with Karpenter spellings mapped to Purser's.
    pub key: String,
    /// Operator.
    pub op: Operator,
    /// Values (sorted).
    pub values: Vec<String>,
}

impl Requirement {
    /// Build and validate a requirement from its parts.
    pub fn new(key: &str, op: &str, values: &[String]) -> Result<Self, RequirementError> {
        let op = match op {
            "In" => Operator::In,
            "NotIn" => Operator::NotIn,
            "Exists" => Operator::Exists,
            "DoesNotExist" => Operator::DoesNotExist,
            "Gt" => Operator::Gt,
            "Lt" => Operator::Lt,
            other => return Err(RequirementError::UnknownOperator(other.to_string())),
        };
        let mut values = values.to_vec();
        values.sort();
        values.dedup();
        let req = Requirement {
            key: canonical_key(key).to_string(),
            op,
            values,
        };
        req.validate()?;
        Ok(req)
    }

    /// A requirement that the label equals `value`.
    pub fn equals(key: &str, value: &str) -> Self {
        Requirement {
            key: canonical_key(key).to_string(),
            op: Operator::In,
            values: vec![value.to_string()],
        }
    }

    fn op_name(&self) -> &'static str {
        match self.op {
            Operator::In => "In",
            Operator::NotIn => "NotIn",
            Operator::Exists => "Exists",
            Operator::DoesNotExist => "DoesNotExist",
            Operator::Gt => "Gt",
            Operator::Lt => "Lt",
        }
    }

    fn validate(&self) -> Result<(), RequirementError> {
        let op = self.op_name();
        match self.op {
            Operator::In | Operator::NotIn if self.values.is_empty() => Err(RequirementError::NoValues {
                op,
                key: self.key.clone(),
            }),
            Operator::Exists | Operator::DoesNotExist if !self.values.is_empty() => {
                Err(RequirementError::UnexpectedValues {
                    op,
                    key: self.key.clone(),
                    values: self.values.clone(),
                })
            }
            Operator::Gt | Operator::Lt if self.values.len() != 1 || self.values[0].parse::<i64>().is_err() => {
                Err(RequirementError::NotAnInteger {
                    op,
                    key: self.key.clone(),
                    values: self.values.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// Does a node with `labels` satisfy this requirement?
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Operator::In => value.is_some_and(|v| self.values.binary_search(v).is_ok()),
            Operator::NotIn => value.is_none_or(|v| self.values.binary_search(v).is_err()),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::Gt => compare(value, &self.values, |a, b| a > b),
            Operator::Lt => compare(value, &self.values, |a, b| a < b),
        }
    }

    /// The values this requirement admits for its key, when it is an `In` list.
    pub fn allowed_values(&self) -> Option<&[String]> {
        (self.op == Operator::In).then_some(self.values.as_slice())
    }
}

fn compare(value: Option<&String>, bound: &[String], cmp: fn(i64, i64) -> bool) -> bool {
    let (Some(v), Some(b)) = (value, bound.first()) else {
        return false;
    };
    match (v.parse::<i64>(), b.parse::<i64>()) {
        (Ok(v), Ok(b)) => cmp(v, b),
        _ => false,
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.op {
            Operator::Exists | Operator::DoesNotExist => {
                write!(f, "{} {}", self.key, self.op_name())
            }
            _ => write!(f, "{} {} {:?}", self.key, self.op_name(), self.values),
        }
    }
}

/// A conjunction of requirements (one node selector term).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Requirements(pub Vec<Requirement>);

impl Requirements {
    /// True when every requirement matches.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| r.matches(labels))
    }

    /// The first requirement `labels` fails, if any.
    pub fn first_failure(&self, labels: &BTreeMap<String, String>) -> Option<&Requirement> {
        self.0.iter().find(|r| !r.matches(labels))
    }

    /// Requirements from a nodeSelector map (each pair is `key In [value]`).
    pub fn from_selector(selector: &BTreeMap<String, String>) -> Self {
        Requirements(selector.iter().map(|(k, v)| Requirement::equals(k, v)).collect())
    }

    /// Parse a Kubernetes node selector term (matchExpressions and matchFields on metadata.name).
    pub fn from_term(term: &NodeSelectorTerm) -> Result<Self, (usize, RequirementError)> {
        let exprs = term.match_expressions.iter().flatten();
        let fields = term.match_fields.iter().flatten().map(|f| NodeSelectorRequirement {
            key: if f.key == "metadata.name" {
                super::labels::HOSTNAME.to_string()
            } else {
                f.key.clone()
            },
            operator: f.operator.clone(),
            values: f.values.clone(),
        });
        let reqs = exprs
            .cloned()
            .chain(fields)
            .enumerate()
            .map(|(i, r)| Requirement::new(&r.key, &r.operator, r.values.as_deref().unwrap_or(&[])).map_err(|e| (i, e)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Requirements(reqs))
    }

    /// A description of a contradiction inside this term, if it can never match any node.
    pub fn contradiction(&self) -> Option<String> {
        for (i, a) in self.0.iter().enumerate() {
            for b in &self.0[i + 1..] {
                if a.key != b.key {
                    continue;
                }
                if let Some(why) = contradicts(a, b) {
                    return Some(why);
                }
            }
        }
        None
    }
}

fn contradicts(a: &Requirement, b: &Requirement) -> Option<String> {
    use Operator::*;
    let conflict = match (a.op, b.op) {
        (In, In) => !a.values.iter().any(|v| b.values.contains(v)),
        (In, NotIn) => a.values.iter().all(|v| b.values.contains(v)),
        (NotIn, In) => b.values.iter().all(|v| a.values.contains(v)),
        (Exists, DoesNotExist) | (DoesNotExist, Exists) => true,
        (In, DoesNotExist) | (DoesNotExist, In) => true,
        (Gt, DoesNotExist) | (DoesNotExist, Gt) | (Lt, DoesNotExist) | (DoesNotExist, Lt) => true,
        (Gt, Lt) | (Lt, Gt) => {
            let (gt, lt) = if a.op == Gt { (a, b) } else { (b, a) };
            match (gt.values[0].parse::<i64>(), lt.values[0].parse::<i64>()) {
                (Ok(g), Ok(l)) => l <= g.saturating_add(1),
                _ => false,
            }
        }
        (In, Gt) | (Gt, In) | (In, Lt) | (Lt, In) => {
            let (inn, cmp) = if a.op == In { (a, b) } else { (b, a) };
            !inn.values.iter().any(|v| {
                let labels = BTreeMap::from([(inn.key.clone(), v.clone())]);
                cmp.matches(&labels)
            })
        }
        _ => false,
    };
    conflict.then(|| format!("{a} contradicts {b}"))
}

/// A node affinity: an OR of terms. An empty list of terms means "any node".
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeAffinity {
    /// Terms, any one of which must match; empty means no constraint.
    pub terms: Vec<Requirements>,
}

impl NodeAffinity {
    /// True when a node with `labels` satisfies at least one term (or there are none).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.is_empty() || self.terms.iter().any(|t| t.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> Requirement {
        let values: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        Requirement::new(key, op, &values).unwrap()
    }

    #[test]
    fn operators_match_as_kubernetes_defines() {
        let l = labels(&[("zone", "a"), ("cpu", "8")]);
        assert!(req("zone", "In", &["a", "b"]).matches(&l));
        assert!(!req("zone", "NotIn", &["a"]).matches(&l));
        assert!(req("missing", "NotIn", &["a"]).matches(&l));
        assert!(req("zone", "Exists", &[]).matches(&l));
        assert!(req("missing", "DoesNotExist", &[]).matches(&l));
        assert!(req("cpu", "Gt", &["4"]).matches(&l));
        assert!(!req("cpu", "Lt", &["8"]).matches(&l));
        assert!(!req("zone", "Gt", &["1"]).matches(&l));
    }

    #[test]
    fn rejects_bad_requirements() {
        assert!(matches!(
            Requirement::new("k", "Like", &[]),
            Err(RequirementError::UnknownOperator(_))
        ));
        assert!(Requirement::new("k", "Gt", &["x".into()]).is_err());
        assert!(Requirement::new("k", "In", &[]).is_err());
        assert!(Requirement::new("k", "Exists", &["a".into()]).is_err());
    }

    #[test]
    fn finds_contradictions() {
        let t = Requirements(vec![req("a", "In", &["x"]), req("a", "NotIn", &["x"])]);
        assert!(t.contradiction().is_some());
        let t = Requirements(vec![req("a", "Gt", &["5"]), req("a", "Lt", &["6"])]);
        assert!(t.contradiction().is_some());
        let t = Requirements(vec![req("a", "Gt", &["5"]), req("a", "Lt", &["7"])]);
        assert!(t.contradiction().is_none());
        let t = Requirements(vec![req("a", "In", &["2"]), req("a", "Gt", &["4"])]);
        assert!(t.contradiction().is_some());
    }

    #[test]
    fn karpenter_spellings_are_aliases() {
        let r = req("karpenter.sh/capacity-type", "In", &["spot"]);
        assert_eq!(r.key, "purser.dev/capacity-type");
    }
}
