//! Resource lists (`cpu`, `memory`, `pods`, extended resources) with exact arithmetic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::quantity::{Quantity, QuantityError};

/// The CPU resource name.
pub const CPU: &str = "cpu";
/// The memory resource name.
pub const MEMORY: &str = "memory";
/// The pod-count resource name.
pub const PODS: &str = "pods";
/// NVIDIA GPUs.
pub const NVIDIA_GPU: &str = "nvidia.com/gpu";
/// AMD GPUs.
pub const AMD_GPU: &str = "amd.com/gpu";
/// AWS Neuron devices (Inferentia, Trainium).
pub const AWS_NEURON: &str = "aws.amazon.com/neuron";

/// A map from resource name to quantity; absent means zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Resources(pub BTreeMap<String, Quantity>);

impl Resources {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse a Kubernetes resource list whose values are quantity strings.
    pub fn parse<'a>(items: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, (String, QuantityError)> {
        let mut out = Resources::new();
        for (name, value) in items {
            let q = Quantity::parse(value).map_err(|e| (name.to_string(), e))?;
            out.0.insert(name.to_string(), q);
        }
        Ok(out)
    }

    /// Builder: set one resource.
    pub fn with(mut self, name: &str, q: Quantity) -> Self {
        self.0.insert(name.to_string(), q);
        self
    }

    /// The quantity of `name` (zero when absent).
    pub fn get(&self, name: &str) -> Quantity {
        self.0.get(name).copied().unwrap_or_default()
    }

    /// Set the quantity of `name`.
    pub fn set(&mut self, name: &str, q: Quantity) {
        self.0.insert(name.to_string(), q);
    }

    /// Add every resource of `other`.
    pub fn add(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() += *v;
        }
    }

    /// Subtract every resource of `other` (may go negative).
    pub fn sub(&mut self, other: &Resources) {
        for (k, v) in &other.0 {
            *self.0.entry(k.clone()).or_default() -= *v;
        }
    }

    /// Sum of two lists.
    pub fn plus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.add(other);
        r
    }

    /// Difference of two lists.
    pub fn minus(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        r.sub(other);
        r
    }

    /// Per-resource maximum of two lists.
    pub fn max_each(&self, other: &Resources) -> Resources {
        let mut r = self.clone();
        for (k, v) in &other.0 {
            let e = r.0.entry(k.clone()).or_default();
            if *v > *e {
                *e = *v;
            }
        }
        r
    }

    /// True when every requested resource is available in `capacity`.
    pub fn fits_in(&self, capacity: &Resources) -> bool {
        self.0.iter().all(|(k, v)| v.is_zero() || *v <= capacity.get(k))
    }

    /// The resources of `self` that exceed `capacity`, by name.
    pub fn exceeding<'a>(&'a self, capacity: &'a Resources) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(|(k, v)| !v.is_zero() && **v > capacity.get(k))
            .map(|(k, _)| k.as_str())
    }

    /// Multiply every quantity by `n`.
    pub fn times(&self, n: i64) -> Resources {
        Resources(self.0.iter().map(|(k, v)| (k.clone(), *v * n)).collect())
    }

    /// Names of the resources present.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Convert to the string map Kubernetes objects use.
    pub fn to_strings(&self) -> BTreeMap<String, String> {
        self.0.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
    }

    /// True when the resource is an accelerator (GPU, MIG slice, Neuron device).
    pub fn is_accelerator(name: &str) -> bool {
        name == NVIDIA_GPU
            || name == AMD_GPU
            || name == AWS_NEURON
            || name.starts_with("nvidia.com/mig-")
            || name.starts_with("aws.amazon.com/neuroncore")
    }

    /// Total accelerator units requested (GPUs, MIG slices counted as units, Neuron devices).
    pub fn accelerators(&self) -> Quantity {
        self.0
            .iter()
            .filter(|(k, _)| Self::is_accelerator(k))
            .fold(Quantity::ZERO, |a, (_, v)| a + *v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_and_exceeds() {
        let cap = Resources::parse([("cpu", "2"), ("memory", "4Gi")]).unwrap();
        let small = Resources::parse([("cpu", "1500m"), ("memory", "1Gi")]).unwrap();
        let gpu = Resources::parse([("nvidia.com/gpu", "1")]).unwrap();
        assert!(small.fits_in(&cap));
        assert!(!gpu.fits_in(&cap));
        assert_eq!(gpu.exceeding(&cap).collect::<Vec<_>>(), vec!["nvidia.com/gpu"]);
        let zero_gpu = Resources::parse([("nvidia.com/gpu", "0")]).unwrap();
        assert!(zero_gpu.fits_in(&cap));
    }

    #[test]
    fn names_the_bad_resource() {
        let e = Resources::parse([("cpu", "1"), ("memory", "12Q")]).unwrap_err();
        assert_eq!(e.0, "memory");
    }
}
