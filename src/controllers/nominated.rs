//! Nodes and NodeClaims pods were just nominated to, or that a disruption command launched as
//! replacements: kept out of disruption until their pods have had time to arrive.
//!
//! In: names (node or NodeClaim) with a time to live, from the provisioning loop (every claim
//! and node a plan nominated pods to) and the disruption loop (replacements, for the whole
//! command). Out: whether a name is protected now. Without it, a replacement that initialized
//! before its pods were evicted looked empty and was deleted by the next pass (Karpenter keeps
//! nominated nodes out of consolidation the same way).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Names protected from disruption until a deadline.
#[derive(Default)]
pub struct Nominated {
    until: Mutex<HashMap<String, Instant>>,
}

impl Nominated {
    /// Protect every name of `names` for at least `ttl` from now.
    pub fn mark<'a>(&self, names: impl IntoIterator<Item = &'a str>, ttl: Duration) {
        let deadline = Instant::now() + ttl;
        if let Ok(mut until) = self.until.lock() {
            for name in names {
                let entry = until.entry(name.to_string()).or_insert(deadline);
                *entry = (*entry).max(deadline);
            }
        }
    }

    /// Is `name` protected now? (Expired names are forgotten.)
    pub fn contains(&self, name: &str) -> bool {
        let now = Instant::now();
        match self.until.lock() {
            Ok(mut until) => {
                until.retain(|_, t| *t > now);
                until.contains_key(name)
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_protected_until_its_longest_time_to_live_ends() {
        let set = Nominated::default();
        set.mark(["a"], Duration::from_millis(150));
        set.mark(["a", "b"], Duration::from_millis(30));
        assert!(set.contains("a") && set.contains("b") && !set.contains("c"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(set.contains("a"), "the longer time to live wins");
        assert!(!set.contains("b"));
        std::thread::sleep(Duration::from_millis(120));
        assert!(!set.contains("a"));
    }
}
