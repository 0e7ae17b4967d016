//! Taints and tolerations, with Kubernetes' matching rules.

use serde::{Deserialize, Serialize};

/// A taint effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Effect {
    /// New pods that do not tolerate it are not scheduled.
    NoSchedule,
    /// The scheduler avoids the node when it can.
    PreferNoSchedule,
    /// Pods that do not tolerate it are evicted and not scheduled.
    NoExecute,
}

impl Effect {
    /// Parse the Kubernetes spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "NoSchedule" => Some(Effect::NoSchedule),
            "PreferNoSchedule" => Some(Effect::PreferNoSchedule),
            "NoExecute" => Some(Effect::NoExecute),
            _ => None,
        }
    }
}

/// A node taint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Taint {
    /// Key.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
    /// Effect.
    pub effect: Effect,
}

/// A pod toleration.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Toleration {
    /// Key; empty with `Exists` tolerates every taint.
    pub key: String,
    /// True for `Exists`, false for `Equal`.
    pub exists: bool,
    /// Value compared with `Equal`.
    pub value: String,
    /// Effect; `None` matches every effect.
    pub effect: Option<Effect>,
}

impl Toleration {
    /// Does this toleration tolerate `taint`?
    pub fn tolerates(&self, taint: &Taint) -> bool {
        if self.effect.is_some_and(|e| e != taint.effect) {
            return false;
        }
        if self.key.is_empty() {
            return self.exists;
        }
        self.key == taint.key && (self.exists || self.value == taint.value)
    }
}

/// True when `taint` blocks scheduling (NoSchedule or NoExecute) and no toleration covers it.
pub fn blocks(taint: &Taint, tolerations: &[Toleration]) -> bool {
    taint.effect != Effect::PreferNoSchedule && !tolerations.iter().any(|t| t.tolerates(taint))
}

/// The first taint in `taints` that blocks a pod with `tolerations`.
pub fn first_blocking<'a>(taints: &'a [Taint], tolerations: &[Toleration]) -> Option<&'a Taint> {
    taints.iter().find(|t| blocks(t, tolerations))
}

/// True when some PreferNoSchedule taint is not tolerated (the placement is allowed but not preferred).
pub fn prefers_not(taints: &[Taint], tolerations: &[Toleration]) -> bool {
    taints
        .iter()
        .any(|t| t.effect == Effect::PreferNoSchedule && !tolerations.iter().any(|tol| tol.tolerates(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taint(key: &str, value: &str, effect: Effect) -> Taint {
        Taint {
            key: key.into(),
            value: value.into(),
            effect,
        }
    }

    #[test]
    fn matching_rules() {
        let gpu = taint("nvidia.com/gpu", "true", Effect::NoSchedule);
        let equal = Toleration {
            key: "nvidia.com/gpu".into(),
            exists: false,
            value: "true".into(),
            effect: Some(Effect::NoSchedule),
        };
        let wrong_value = Toleration {
            value: "false".into(),
            ..equal.clone()
        };
        let exists_all = Toleration {
            key: String::new(),
            exists: true,
            value: String::new(),
            effect: None,
        };
        let wrong_effect = Toleration {
            effect: Some(Effect::NoExecute),
            ..equal.clone()
        };
        assert!(equal.tolerates(&gpu));
        assert!(!wrong_value.tolerates(&gpu));
        assert!(exists_all.tolerates(&gpu));
        assert!(!wrong_effect.tolerates(&gpu));
        assert!(blocks(&gpu, &[]));
        assert!(!blocks(&taint("x", "", Effect::PreferNoSchedule), &[]));
        assert!(prefers_not(&[taint("x", "", Effect::PreferNoSchedule)], &[]));
    }
}
