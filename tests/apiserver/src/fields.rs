//! Field ownership for server-side apply, a simplified `managedFields`.
//!
//! Each (manager, operation) owns a set of leaf field paths. Non-apply writes move the
//! fields they change to their manager; an apply without `force` conflicts when another
//! manager owns a field the apply sets to a different value, and fields a manager stops
//! applying are removed unless someone else owns them. Maps are granular, lists atomic.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// A path of map keys from the object root to a leaf.
pub type FieldPath = Vec<String>;

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Create, update or a non-apply patch.
    Update,
}

/// Ownership of the fields of one object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManagedFields(BTreeMap<(String, Operation), BTreeSet<FieldPath>>);

/// One apply conflict: who owns which field.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The other manager.
    pub manager: String,
    /// The contested field, dotted with a leading dot as the real server prints it.
    pub field: String,
}

const UNTRACKED_META: [&str; 10] = [
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Leaf paths set (non-null, not an empty map) in `value`, skipping system metadata.
pub fn leaf_paths(value: &Value) -> BTreeSet<FieldPath> {
    let mut out = BTreeSet::new();
    collect_leaves(value, &mut Vec::new(), &mut out);
    out.retain(|p| tracked(p));
    out
}

fn tracked(path: &[String]) -> bool {
    match path.first().map(String::as_str) {
        Some("apiVersion" | "kind") | None => false,
        Some("metadata") => path.get(1).is_none_or(|k| !UNTRACKED_META.contains(&k.as_str())),
        _ => true,
    }
}

fn collect_leaves(value: &Value, prefix: &mut Vec<String>, out: &mut BTreeSet<FieldPath>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(key.clone());
                collect_leaves(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Null => {}
        _ => {
            out.insert(prefix.clone());
        }
    }
}

/// Value at `path` in `value`, if any.
pub fn value_at<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn related(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

fn shorter<'a>(a: &'a [String], b: &'a [String]) -> &'a [String] {
    if a.len() <= b.len() { a } else { b }
}

impl ManagedFields {
    /// Give `manager` (operation Update) the fields that differ between `old` and `new`, and
    /// forget fields that `new` no longer has.
    pub fn record_update(&mut self, manager: &str, old: &Value, new: &Value) {
        let old_leaves = leaf_paths(old);
        let new_leaves = leaf_paths(new);
        for gone in old_leaves.difference(&new_leaves) {
            if value_at(new, gone).is_none_or(Value::is_null) {
                self.release_all(gone);
            }
        }
        let changed: Vec<FieldPath> = new_leaves
            .into_iter()
            .filter(|p| value_at(old, p) != value_at(new, p))
            .collect();
        let key = (manager.to_owned(), Operation::Update);
        for path in changed {
            self.release_others(&key, &path);
            self.0.entry(key.clone()).or_default().insert(path);
        }
        self.0.retain(|_, set| !set.is_empty());
    }

    /// Fields of `applied` that another manager owns with a different value in `current`.
    pub fn conflicts(&self, manager: &str, applied: &Value, current: &Value) -> Vec<Conflict> {
        let me = (manager.to_owned(), Operation::Apply);
        let mut out = Vec::new();
        for path in leaf_paths(applied) {
            for (owner, owned) in self.0.iter().filter(|(k, _)| **k != me) {
                for theirs in owned.iter().filter(|q| related(q, &path)) {
                    let at = shorter(theirs, &path);
                    if value_at(current, at) != value_at(applied, at) {
                        out.push(Conflict {
                            manager: owner.0.clone(),
                            field: format!(".{}", at.join(".")),
                        });
                    }
                }
            }
        }
        out.dedup();
        out
    }

    /// Record that `manager` now applies exactly the fields of `applied`; with `force`, take
    /// them from other managers. Returns the fields it stopped applying that nobody else
    /// owns, which the caller removes from the object.
    pub fn record_apply(&mut self, manager: &str, applied: &Value, force: bool) -> Vec<FieldPath> {
        let me = (manager.to_owned(), Operation::Apply);
        let new_set = leaf_paths(applied);
        if force {
            for path in &new_set {
                self.release_others(&me, path);
            }
        }
        let previous = self.0.insert(me.clone(), new_set.clone()).unwrap_or_default();
        let dropped = previous
            .difference(&new_set)
            .filter(|p| {
                !self
                    .0
                    .iter()
                    .any(|(k, set)| *k != me && set.iter().any(|q| related(q, p)))
            })
            .cloned()
            .collect();
        self.0.retain(|_, set| !set.is_empty());
        dropped
    }

    fn release_others(&mut self, me: &(String, Operation), path: &[String]) {
        for (owner, owned) in self.0.iter_mut() {
            if owner != me {
                owned.retain(|q| !related(q, path));
            }
        }
    }

    fn release_all(&mut self, path: &[String]) {
        for owned in self.0.values_mut() {
            owned.retain(|q| !related(q, path));
        }
    }
}

/// Remove the field at `path` from `value`.
pub fn remove_path(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let parent = parents.iter().try_fold(value, |v, key| v.get_mut(key));
    if let Some(map) = parent.and_then(Value::as_object_mut) {
        map.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn apply_conflicts_with_other_owner_of_different_value() {
        let mut fields = ManagedFields::default();
        let a = json!({"spec": {"holder": "a", "duration": 15}});
        fields.record_apply("a", &a, false);
        let b = json!({"spec": {"holder": "b", "duration": 15}});
        let conflicts = fields.conflicts("b", &b, &a);
        assert_eq!(
            conflicts,
            vec![Conflict {
                manager: "a".into(),
                field: ".spec.holder".into()
            }]
        );
        assert!(fields.conflicts("a", &b, &a).is_empty());
    }

    #[test]
    fn update_that_removes_fields_frees_them() {
        let mut fields = ManagedFields::default();
        let a = json!({"spec": {"holder": "a"}});
        fields.record_apply("a", &a, false);
        fields.record_update("a", &a, &json!({"spec": {}}));
        assert!(
            fields
                .conflicts("b", &json!({"spec": {"holder": "b"}}), &json!({"spec": {}}))
                .is_empty()
        );
    }

    #[test]
    fn dropped_applied_field_is_returned() {
        let mut fields = ManagedFields::default();
        fields.record_apply("a", &json!({"metadata": {"labels": {"x": "1", "y": "2"}}}), false);
        let dropped = fields.record_apply("a", &json!({"metadata": {"labels": {"x": "1"}}}), false);
        assert_eq!(
            dropped,
            vec![vec!["metadata".to_owned(), "labels".to_owned(), "y".to_owned()]]
        );
    }
}
