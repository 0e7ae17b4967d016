//! Legacy discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/{group}/{version}`,
//! `/version`), enough for `kube::Discovery::run`. Aggregated discovery is not served.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::resources::ResourceType;

/// `/api`.
pub fn core_versions() -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}],
    })
}

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "34",
        "gitVersion": "v1.34.0-purser-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "none",
        "compiler": "rustc",
        "platform": "linux/amd64",
    })
}

/// `/apis`: every non-core group with its versions.
pub fn groups(resources: &[ResourceType]) -> Value {
    let mut by_group: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for r in resources.iter().filter(|r| !r.group.is_empty()) {
        let versions = by_group.entry(&r.group).or_default();
        for v in &r.versions {
            if !versions.contains(&v.as_str()) {
                versions.push(v);
            }
        }
    }
    let groups: Vec<Value> = by_group
        .into_iter()
        .map(|(group, versions)| {
            let entries: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            json!({"name": group, "versions": entries, "preferredVersion": entries[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/api/{version}` or `/apis/{group}/{version}`.
pub fn resource_list(resources: &[ResourceType], group: &str, version: &str) -> Result<Value> {
    let served: Vec<&ResourceType> = resources
        .iter()
        .filter(|r| r.group == group && r.versions.iter().any(|v| v == version))
        .collect();
    if served.is_empty() {
        return Err(ApiError::NotFound {
            message: format!("the server could not find the requested resource ({group}/{version})"),
            subject: Default::default(),
        });
    }
    let mut entries = Vec::new();
    for r in served {
        entries.push(json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": r.short_names,
        }));
        if r.status_subresource {
            entries.push(subresource(r, "status", &r.kind, &["get", "patch", "update"]));
        }
        for sub in &r.subresources {
            let kind = if sub == "eviction" { "Eviction" } else { "Binding" };
            entries.push(subresource(r, sub, kind, &["create"]));
        }
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Ok(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": entries}))
}

fn subresource(r: &ResourceType, name: &str, kind: &str, verbs: &[&str]) -> Value {
    json!({
        "name": format!("{}/{name}", r.plural),
        "singularName": "",
        "namespaced": r.namespaced,
        "kind": kind,
        "verbs": verbs,
    })
}
