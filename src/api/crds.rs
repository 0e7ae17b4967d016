//! The CustomResourceDefinitions of Purser's resources, as objects and as YAML.
//!
//! In: the Rust types of `crate::api`. Out: the four CRDs (`purser crds`), and the file names
//! they are checked in under (`charts/purser/crds/<plural>.purser.dev.yaml`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use super::{CostBudget, NodeClaim, NodeClass, NodePool};

/// Every Purser CRD, in a fixed order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![NodePool::crd(), NodeClaim::crd(), NodeClass::crd(), CostBudget::crd()]
}

/// The file a CRD is written to: `<plural>.<group>.yaml`, its object name plus `.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("unnamed"))
}

/// One CRD as a YAML document (without the `---` separator).
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, serde_norway::Error> {
    serde_norway::to_string(crd)
}

/// Every CRD as one multi-document YAML stream.
pub fn all_yaml() -> Result<String, serde_norway::Error> {
    let docs = all().iter().map(to_yaml).collect::<Result<Vec<_>, _>>()?;
    Ok(docs.iter().map(|d| format!("---\n{d}")).collect())
}
