//! Offerings that failed to launch recently (no capacity), kept out of plans for a while.
//!
//! In: launch failures (instance type, zone, capacity type) with a time to live. Out: the set the
//! planner's `PlanOptions::unavailable` takes, so the next plan picks another offering at once.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::catalog::CapacityType;

/// (instance type, zone, capacity type).
pub type OfferingKey = (String, String, CapacityType);

/// A set of offerings with expiry times.
#[derive(Default)]
pub struct Unavailable {
    until: Mutex<HashMap<OfferingKey, Instant>>,
}

impl Unavailable {
    /// Keep `offering` out of plans for `ttl`.
    pub fn mark(&self, offering: OfferingKey, ttl: Duration) {
        if let Ok(mut until) = self.until.lock() {
            until.insert(offering, Instant::now() + ttl);
        }
    }

    /// The offerings still unavailable now (expired ones are forgotten).
    pub fn current(&self) -> HashSet<OfferingKey> {
        let now = Instant::now();
        match self.until.lock() {
            Ok(mut until) => {
                until.retain(|_, t| *t > now);
                until.keys().cloned().collect()
            }
            Err(_) => HashSet::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offering_is_unavailable_until_its_time_to_live_ends() {
        let set = Unavailable::default();
        let key = ("m5.large".to_string(), "us-east-1a".to_string(), CapacityType::Spot);
        set.mark(key.clone(), Duration::from_millis(50));
        assert!(set.current().contains(&key));
        std::thread::sleep(Duration::from_millis(80));
        assert!(set.current().is_empty());
    }
}
