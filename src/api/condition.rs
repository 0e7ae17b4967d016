//! Status conditions shared by every Purser resource, shaped like `metav1.Condition`, with the
//! condition types and reasons Purser's controllers write.
//!
//! In: a controller's view of one aspect of an object (launched, ready, over budget). Out: a
//! condition list where each type appears once and `lastTransitionTime` changes only when the
//! status does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition types.
pub mod conditions {
    /// The object is usable: a NodePool or NodeClass can launch nodes, a NodeClaim's node is ready.
    pub const READY: &str = "Ready";
    /// NodePool: its run-rate has reached `spec.budget.maxHourlyCost`, or a CostBudget covering it is exceeded.
    pub const BUDGET_EXCEEDED: &str = "BudgetExceeded";
    /// NodePool: its resources in use have reached `spec.limits`.
    pub const LIMITS_EXCEEDED: &str = "LimitsExceeded";
    /// CostBudget: the covered pods' run-rate has reached `spec.maxHourlyCost`.
    pub const EXCEEDED: &str = "Exceeded";
    /// NodeClaim: the cloud accepted the launch and returned an instance.
    pub const LAUNCHED: &str = "Launched";
    /// NodeClaim: a Node with the instance's provider ID joined the cluster.
    pub const REGISTERED: &str = "Registered";
    /// NodeClaim: the Node is Ready, its startup taints are gone and its resources are reported.
    pub const INITIALIZED: &str = "Initialized";
    /// NodeClaim: the claim no longer matches its NodePool or NodeClass.
    pub const DRIFTED: &str = "Drifted";
    /// NodeClaim: the disruption engine has chosen the node and is draining it.
    pub const DISRUPTING: &str = "Disrupting";
}

/// Condition reasons (CamelCase, as the API server's condition pattern requires).
pub mod reasons {
    /// Waiting for the controller to look at the object.
    pub const AWAITING_RECONCILIATION: &str = "AwaitingReconciliation";
    /// Ready.
    pub const READY: &str = "Ready";
    /// The referenced NodeClass does not exist.
    pub const NODE_CLASS_NOT_FOUND: &str = "NodeClassNotFound";
    /// The referenced NodeClass exists but is not Ready.
    pub const NODE_CLASS_NOT_READY: &str = "NodeClassNotReady";
    /// The spec cannot be used; the message names the field.
    pub const INVALID_SPEC: &str = "InvalidSpec";
    /// Run-rate or usage is under the cap.
    pub const WITHIN_BUDGET: &str = "WithinBudget";
    /// Run-rate is at or over the cap.
    pub const OVER_BUDGET: &str = "OverBudget";
    /// Resources in use are under `spec.limits`.
    pub const WITHIN_LIMITS: &str = "WithinLimits";
    /// Resources in use are at or over `spec.limits`.
    pub const OVER_LIMITS: &str = "OverLimits";
    /// The cloud returned an instance.
    pub const LAUNCHED: &str = "Launched";
    /// No offering had capacity.
    pub const INSUFFICIENT_CAPACITY: &str = "InsufficientCapacity";
    /// The cloud refused the launch for another reason.
    pub const LAUNCH_FAILED: &str = "LaunchFailed";
    /// The Node joined.
    pub const REGISTERED: &str = "Registered";
    /// No Node with the claim's provider ID has joined yet.
    pub const NODE_NOT_FOUND: &str = "NodeNotFound";
    /// The Node is initialized.
    pub const INITIALIZED: &str = "Initialized";
    /// The Node is not Ready yet.
    pub const NODE_NOT_READY: &str = "NodeNotReady";
    /// Startup taints are still on the Node.
    pub const STARTUP_TAINTS_PRESENT: &str = "StartupTaintsPresent";
    /// The claim matches its NodePool and NodeClass.
    pub const NOT_DRIFTED: &str = "NotDrifted";
    /// The NodePool's template changed since the claim was made.
    pub const NODE_POOL_DRIFTED: &str = "NodePoolDrifted";
    /// The NodeClass changed since the claim was made.
    pub const NODE_CLASS_DRIFTED: &str = "NodeClassDrifted";
    /// The claim's requirements are no longer allowed by its NodePool.
    pub const REQUIREMENTS_DRIFTED: &str = "RequirementsDrifted";
    /// Disrupted because the node is empty.
    pub const EMPTY: &str = "Empty";
    /// Disrupted because cheaper nodes can hold its pods.
    pub const UNDERUTILIZED: &str = "Underutilized";
    /// Disrupted because its GPUs are idle.
    pub const GPU_IDLE: &str = "GpuIdle";
    /// Disrupted because it drifted.
    pub const DRIFTED: &str = "Drifted";
    /// Disrupted because it reached `expireAfter`.
    pub const EXPIRED: &str = "Expired";
    /// Disrupted because the cloud is reclaiming it (spot interruption, scheduled event).
    pub const INTERRUPTED: &str = "Interrupted";
}

/// The pattern the API server requires of a condition reason (from `metav1.Condition`).
pub const REASON_PATTERN: &str = "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$";

/// The status of a condition.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell (yet).
    #[default]
    Unknown,
}

impl From<bool> for ConditionStatus {
    fn from(value: bool) -> Self {
        if value {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

/// One aspect of an object's state, like `metav1.Condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type, e.g. `Ready` (see [`conditions`]).
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 316))]
    pub type_: String,
    /// True, False or Unknown.
    pub status: ConditionStatus,
    /// A CamelCase word saying why (see [`reasons`]).
    #[schemars(length(min = 1, max = 1024), pattern(REASON_PATTERN))]
    pub reason: String,
    /// A human-readable explanation.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub message: String,
    /// When the status last changed.
    pub last_transition_time: Time,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition of `type_` with a status, reason and message, changed at `now`.
    pub fn new(type_: &str, status: ConditionStatus, reason: &str, message: impl Into<String>, now: Time) -> Self {
        Condition {
            type_: type_.to_string(),
            status,
            reason: reason.to_string(),
            message: message.into(),
            last_transition_time: now,
            observed_generation: None,
        }
    }

    /// The same condition, computed from `generation` of the object.
    pub fn observed(mut self, generation: Option<i64>) -> Self {
        self.observed_generation = generation;
        self
    }

    /// True when the status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// Set `new` in `list`, replacing the condition of the same type; the old
/// `lastTransitionTime` is kept when the status did not change. Returns true when the list changed.
pub fn set_condition(list: &mut Vec<Condition>, mut new: Condition) -> bool {
    match list.iter_mut().find(|c| c.type_ == new.type_) {
        None => {
            list.push(new);
            true
        }
        Some(old) => {
            if old.status == new.status {
                new.last_transition_time = old.last_transition_time.clone();
            }
            let changed = *old != new;
            *old = new;
            changed
        }
    }
}

/// The condition of `type_` in `list`.
pub fn find_condition<'a>(list: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    list.iter().find(|c| c.type_ == type_)
}

/// Remove the condition of `type_`; returns true when there was one.
pub fn remove_condition(list: &mut Vec<Condition>, type_: &str) -> bool {
    let before = list.len();
    list.retain(|c| c.type_ != type_);
    list.len() != before
}

/// A status that carries a condition list.
pub trait HasConditions {
    /// The conditions.
    fn conditions(&self) -> &[Condition];
    /// The conditions, for changing.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;

    /// Set a condition (see [`set_condition`]); returns true when the list changed.
    fn set_condition(&mut self, condition: Condition) -> bool {
        set_condition(self.conditions_mut(), condition)
    }

    /// The condition of `type_`.
    fn condition(&self, type_: &str) -> Option<&Condition> {
        find_condition(self.conditions(), type_)
    }

    /// True when the condition of `type_` exists and is `True`.
    fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(Condition::is_true)
    }
}

/// Implement [`HasConditions`] for a status struct with a `conditions: Vec<Condition>` field.
macro_rules! impl_has_conditions {
    ($($status:ty),+ $(,)?) => {
        $(impl $crate::api::condition::HasConditions for $status {
            fn conditions(&self) -> &[$crate::api::condition::Condition] {
                &self.conditions
            }
            fn conditions_mut(&mut self) -> &mut Vec<$crate::api::condition::Condition> {
                &mut self.conditions
            }
        })+
    };
}
pub(crate) use impl_has_conditions;

/// The schema attributes of a `conditions` list: a list-map keyed by `type`, as in core types.
pub fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap_or(Timestamp::UNIX_EPOCH))
    }

    fn ready(status: ConditionStatus, reason: &str, now: i64) -> Condition {
        Condition::new(conditions::READY, status, reason, "", at(now))
    }

    #[test]
    fn set_adds_then_replaces_by_type() {
        let mut list = Vec::new();
        assert!(set_condition(
            &mut list,
            ready(ConditionStatus::False, reasons::NODE_NOT_READY, 10)
        ));
        assert!(set_condition(
            &mut list,
            Condition::new(
                conditions::LAUNCHED,
                ConditionStatus::True,
                reasons::LAUNCHED,
                "",
                at(10)
            )
        ));
        assert!(set_condition(
            &mut list,
            ready(ConditionStatus::True, reasons::READY, 20)
        ));
        assert_eq!(list.len(), 2);
        let r = find_condition(&list, conditions::READY).unwrap();
        assert!(r.is_true());
        assert_eq!(r.last_transition_time, at(20));
    }

    #[test]
    fn same_status_keeps_transition_time() {
        let mut list = vec![ready(ConditionStatus::True, reasons::READY, 10)];
        assert!(!set_condition(
            &mut list,
            ready(ConditionStatus::True, reasons::READY, 30)
        ));
        assert_eq!(list[0].last_transition_time, at(10));
        let msg = Condition::new(
            conditions::READY,
            ConditionStatus::True,
            reasons::READY,
            "now with words",
            at(40),
        );
        assert!(set_condition(&mut list, msg));
        assert_eq!(list[0].last_transition_time, at(10));
        assert_eq!(list[0].message, "now with words");
    }

    #[test]
    fn remove_and_status_from_bool() {
        let mut list = vec![ready(ConditionStatus::True, reasons::READY, 10)];
        assert!(remove_condition(&mut list, conditions::READY));
        assert!(!remove_condition(&mut list, conditions::READY));
        assert_eq!(ConditionStatus::from(false), ConditionStatus::False);
    }

    #[test]
    fn serializes_like_metav1() {
        let c = ready(ConditionStatus::True, reasons::READY, 0).observed(Some(3));
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["type"], "Ready");
        assert_eq!(v["status"], "True");
        assert_eq!(v["lastTransitionTime"], "1970-01-01T00:00:00Z");
        assert_eq!(v["observedGeneration"], 3);
    }
}
