//! The resource types the server serves: built-in ones and those added by CRDs.
//!
//! In: a CustomResourceDefinition object. Out: `ResourceType`s that the router looks up by
//! group, version and plural, with the schema used to validate custom objects.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::schema::CompiledSchema;

/// One served resource: where it lives in the URL space and how writes behave.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group, empty for core.
    pub group: String,
    /// Versions served; the object is stored once and shown in the version asked for.
    pub versions: Vec<String>,
    /// Lower-case plural used in URLs.
    pub plural: String,
    /// Lower-case singular name.
    pub singular: String,
    /// Kind, e.g. `Pod`.
    pub kind: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `/status` is a subresource (main writes keep status, status writes only status).
    pub status_subresource: bool,
    /// Extra subresources handled specially (e.g. `eviction`, `binding`).
    pub subresources: Vec<String>,
    /// Schema per version, for custom resources.
    pub schemas: BTreeMap<String, Arc<CompiledSchema>>,
    /// Short names listed in discovery.
    pub short_names: Vec<String>,
    /// Whether a CRD defines this resource (status is dropped on create, schema applies).
    pub custom: bool,
}

impl ResourceType {
    /// Key identifying this resource in the store, independent of version.
    pub fn key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `apiVersion` string for `version`.
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_owned()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    /// Whether the custom resource has a schema in `version`.
    pub fn schema(&self, version: &str) -> Option<&Arc<CompiledSchema>> {
        self.schemas.get(version)
    }

    fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool, status: bool) -> Self {
        ResourceType {
            group: group.to_owned(),
            versions: vec![version.to_owned()],
            plural: plural.to_owned(),
            singular: kind.to_lowercase(),
            kind: kind.to_owned(),
            namespaced,
            status_subresource: status,
            subresources: Vec::new(),
            schemas: BTreeMap::new(),
            short_names: Vec::new(),
            custom: false,
        }
    }

    fn with_subresources(mut self, subs: &[&str]) -> Self {
        self.subresources = subs.iter().map(|s| (*s).to_owned()).collect();
        self
    }
}

/// The built-in resource types served from start-up.
pub fn builtins() -> Vec<ResourceType> {
    vec![
        ResourceType::builtin("", "v1", "pods", "Pod", true, true).with_subresources(&["eviction", "binding"]),
        ResourceType::builtin("", "v1", "nodes", "Node", false, true),
        ResourceType::builtin("", "v1", "namespaces", "Namespace", false, true),
        ResourceType::builtin("", "v1", "events", "Event", true, false),
        ResourceType::builtin("", "v1", "configmaps", "ConfigMap", true, false),
        ResourceType::builtin("", "v1", "secrets", "Secret", true, false),
        ResourceType::builtin("", "v1", "services", "Service", true, true),
        ResourceType::builtin("", "v1", "serviceaccounts", "ServiceAccount", true, false),
        ResourceType::builtin("events.k8s.io", "v1", "events", "Event", true, false),
        ResourceType::builtin("coordination.k8s.io", "v1", "leases", "Lease", true, false),
        ResourceType::builtin(
            "policy",
            "v1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            true,
        ),
        ResourceType::builtin("apps", "v1", "daemonsets", "DaemonSet", true, true),
        ResourceType::builtin("apps", "v1", "deployments", "Deployment", true, true),
        ResourceType::builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            true,
        ),
    ]
}

/// Why a CRD could not be turned into a served resource.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// A required field of the CRD is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The schema of a version is unusable.
    #[error("spec.versions[{version}].schema.openAPIV3Schema: {message}")]
    Schema {
        /// Version whose schema is bad.
        version: String,
        /// What is wrong.
        message: String,
    },
}

/// The served resource a CRD object describes.
pub fn from_crd(crd: &Value) -> Result<ResourceType, CrdError> {
    let spec = crd.get("spec").ok_or(CrdError::Missing("spec"))?;
    let names = spec.get("names").ok_or(CrdError::Missing("spec.names"))?;
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let group = text(spec, "group").ok_or(CrdError::Missing("spec.group"))?;
    let plural = text(names, "plural").ok_or(CrdError::Missing("spec.names.plural"))?;
    let kind = text(names, "kind").ok_or(CrdError::Missing("spec.names.kind"))?;
    let singular = text(names, "singular").unwrap_or_else(|| kind.to_lowercase());
    let namespaced = text(spec, "scope").as_deref() != Some("Cluster");
    let mut resource = ResourceType {
        group,
        versions: Vec::new(),
        plural,
        singular,
        kind,
        namespaced,
        status_subresource: false,
        subresources: Vec::new(),
        schemas: BTreeMap::new(),
        short_names: names
            .get("shortNames")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default(),
        custom: true,
    };
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or(CrdError::Missing("spec.versions"))?;
    for version in versions {
        add_version(&mut resource, version)?;
    }
    Ok(resource)
}

fn add_version(resource: &mut ResourceType, version: &Value) -> Result<(), CrdError> {
    let name = version
        .get("name")
        .and_then(Value::as_str)
        .ok_or(CrdError::Missing("spec.versions[].name"))?
        .to_owned();
    if version.get("served").and_then(Value::as_bool) == Some(false) {
        return Ok(());
    }
    if version.pointer("/subresources/status").is_some() {
        resource.status_subresource = true;
    }
    if let Some(schema) = version.pointer("/schema/openAPIV3Schema") {
        let compiled = CompiledSchema::new(schema).map_err(|message| CrdError::Schema {
            version: name.clone(),
            message,
        })?;
        resource.schemas.insert(name.clone(), Arc::new(compiled));
    }
    resource.versions.push(name);
    Ok(())
}
